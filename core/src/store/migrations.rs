//! Numbered schema migrations, tracked in `PRAGMA user_version`.
//!
//! `MIGRATIONS[k]` takes the schema from version `k` to version `k + 1`; version 0 is a file
//! without Tern's tables (new, or holding only other users' tables such as BDK's `bdk_*`).
//! Each migration runs in its own `BEGIN IMMEDIATE` transaction together with the
//! `user_version` bump, so a kill mid-migration leaves the previous version intact.
//!
//! Rules: never edit a migration once it has shipped; append a new one. Never create a table
//! whose name starts with `bdk_` (the on-chain wallet's persister owns those, and tracks its own
//! versions in `bdk_schemas`, not in `user_version`). Every migration gets a case in the
//! `every_earlier_schema_version_opens` test (sample rows at the old version that must survive).

use rusqlite::{Connection, TransactionBehavior};

use super::error::{sql, StoreError};

/// Version 1: the tables of issues 5 and 6.
const V1: &str = "
CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE chain_watches (
    key BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    record BLOB NOT NULL
) STRICT;

CREATE TABLE channels (
    channel_id BLOB PRIMARY KEY NOT NULL CHECK (length(channel_id) = 32),
    peer_id BLOB NOT NULL CHECK (length(peer_id) = 33),
    record BLOB NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX channels_by_peer ON channels (peer_id);

CREATE TABLE open_intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    peer_id BLOB NOT NULL CHECK (length(peer_id) = 33),
    address TEXT NOT NULL,
    amount_sat INTEGER NOT NULL CHECK (amount_sat >= 0),
    push_msat INTEGER NOT NULL CHECK (push_msat >= 0),
    public INTEGER NOT NULL CHECK (public IN (0, 1)),
    status TEXT NOT NULL,
    channel_id BLOB CHECK (channel_id IS NULL OR length(channel_id) = 32),
    failure_reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE coin_locks (
    outpoint TEXT PRIMARY KEY NOT NULL,
    intent_id INTEGER REFERENCES open_intents (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX coin_locks_by_intent ON coin_locks (intent_id);
";

/// The migrations, in order: applying the first `k` gives schema version `k`.
pub(super) const MIGRATIONS: &[&str] = &[V1];

/// The schema version this build writes (the number of migrations).
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Reads `PRAGMA user_version`.
pub(super) fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sql("reading the schema version"))
}

/// Brings the database up to `migrations.len()`, one transaction per migration.
///
/// Returns the number of migrations applied (each one a commit). Refuses a database whose
/// version is newer than `migrations.len()`.
pub(super) fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<u32, StoreError> {
    let supported = u32::try_from(migrations.len()).expect("fewer than 2^32 migrations");
    let mut applied = 0;
    loop {
        let found = user_version(conn)?;
        check_not_newer(found, supported)?;
        if found == i64::from(supported) {
            return Ok(applied);
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("starting a migration"))?;
        // Another connection may have migrated between the read above and our lock.
        let current = user_version(&tx)?;
        check_not_newer(current, supported)?;
        if current != found {
            continue;
        }
        // 0 <= current < supported here, so both conversions hold.
        let index = usize::try_from(current).expect("checked non-negative");
        let version = u32::try_from(current + 1).expect("current < supported <= u32::MAX");
        let sql_text = migrations[index];
        tx.execute_batch(sql_text)
            .and_then(|()| tx.pragma_update(None, "user_version", version))
            .and_then(|()| tx.commit())
            .map_err(|source| StoreError::Migration { version, source })?;
        tracing::info!(version, "store: applied schema migration");
        applied += 1;
    }
}

fn check_not_newer(found: i64, supported: u32) -> Result<(), StoreError> {
    if found > i64::from(supported) {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    if found < 0 {
        return Err(StoreError::Corrupt {
            table: "user_version",
            reason: format!("negative schema version {found}"),
        });
    }
    Ok(())
}
