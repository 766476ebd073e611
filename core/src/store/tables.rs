//! The typed tables: SQL for each, as functions over a connection or transaction.
//!
//! [`WriteTx`](super::WriteTx) exposes all of them (reads see the transaction's own writes);
//! [`Store`](super::Store) exposes the reads directly and each write as a one-statement
//! transaction. Records are opaque blobs here: their owners prefix them with a version byte.

use std::str::FromStr;

use bitcoin::OutPoint;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::error::{sql, StoreError};

/// A channel's 32-byte `channel_id` (BOLT 2), as stored.
pub type ChannelIdBytes = [u8; 32];
/// A peer's 33-byte compressed node public key, as stored.
pub type PeerIdBytes = [u8; 33];

/// A row of the `channels` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChannel {
    /// The channel's id.
    pub channel_id: ChannelIdBytes,
    /// The counterparty's node id.
    pub peer_id: PeerIdBytes,
    /// The channel record (version byte + encoding), opaque to the store.
    pub record: Vec<u8>,
    /// When the record was last written (unix seconds, as passed by the caller).
    pub updated_at: u64,
}

/// Where a user's request to open a channel stands.
///
/// Stored as text (see [`OpenIntentStatus::as_str`]); adding a variant needs no migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpenIntentStatus {
    /// Recorded; the open has not started (or must be retried after a restart).
    Pending,
    /// The open is being negotiated with the peer; nothing durable exists yet.
    Negotiating,
    /// The channel reached its durable point and is persisted (`channel_id` is set).
    ChannelPending,
    /// The channel is ready.
    Ready,
    /// The open failed (`failure_reason` says why); any coin locks should be gone.
    Failed,
}

impl OpenIntentStatus {
    /// The text stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Negotiating => "negotiating",
            Self::ChannelPending => "channel_pending",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    /// Parses the text stored in the `status` column.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Self::Pending,
            "negotiating" => Self::Negotiating,
            "channel_pending" => Self::ChannelPending,
            "ready" => Self::Ready,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// The fields of a new open intent (the user's `open_channel` call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOpenIntent {
    /// The peer to open with.
    pub peer_id: PeerIdBytes,
    /// The peer's address as given by the user (`host:port`).
    pub address: String,
    /// The channel's funding amount.
    pub amount_sat: u64,
    /// The amount pushed to the peer at open.
    pub push_msat: u64,
    /// Whether the channel is to be announced.
    pub public: bool,
}

/// A row of the `open_intents` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIntent {
    /// The intent's id (assigned by the store, never reused).
    pub id: i64,
    /// The peer to open with.
    pub peer_id: PeerIdBytes,
    /// The peer's address as given by the user.
    pub address: String,
    /// The channel's funding amount.
    pub amount_sat: u64,
    /// The amount pushed to the peer at open.
    pub push_msat: u64,
    /// Whether the channel is to be announced.
    pub public: bool,
    /// Where the open stands.
    pub status: OpenIntentStatus,
    /// The channel, once it exists.
    pub channel_id: Option<ChannelIdBytes>,
    /// Why the open failed, when it did.
    pub failure_reason: Option<String>,
    /// When the intent was recorded (unix seconds).
    pub created_at: u64,
    /// When the intent last changed (unix seconds).
    pub updated_at: u64,
}

// ---- meta ------------------------------------------------------------------------------

pub(super) fn get_meta(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .and_then(|mut stmt| stmt.query_row([key], |row| row.get(0)).optional())
        .map_err(sql("reading meta"))
}

pub(super) fn put_meta(conn: &Connection, key: &str, value: &[u8]) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut stmt| stmt.execute(params![key, value]))
    .map_err(sql("writing meta"))?;
    Ok(())
}

pub(super) fn delete_meta(conn: &Connection, key: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("DELETE FROM meta WHERE key = ?1")
        .and_then(|mut stmt| stmt.execute([key]))
        .map(|n| n > 0)
        .map_err(sql("deleting meta"))
}

// ---- chain_watches ---------------------------------------------------------------------

pub(super) fn put_watch(
    conn: &Connection,
    key: &[u8],
    kind: &str,
    record: &[u8],
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO chain_watches (key, kind, record) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, record = excluded.record",
    )
    .and_then(|mut stmt| stmt.execute(params![key, kind, record]))
    .map_err(sql("writing a chain watch"))?;
    Ok(())
}

pub(super) fn delete_watch(conn: &Connection, key: &[u8]) -> Result<bool, StoreError> {
    conn.prepare_cached("DELETE FROM chain_watches WHERE key = ?1")
        .and_then(|mut stmt| stmt.execute([key]))
        .map(|n| n > 0)
        .map_err(sql("deleting a chain watch"))
}

pub(super) fn get_watch(
    conn: &Connection,
    key: &[u8],
) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    conn.prepare_cached("SELECT kind, record FROM chain_watches WHERE key = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([key], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(sql("reading a chain watch"))
}

/// A chain watch row: (key, kind, record).
pub type WatchRow = (Vec<u8>, String, Vec<u8>);

pub(super) fn list_watches(conn: &Connection) -> Result<Vec<WatchRow>, StoreError> {
    let context = "listing chain watches";
    let mut stmt = conn
        .prepare_cached("SELECT key, kind, record FROM chain_watches ORDER BY key")
        .map_err(sql(context))?;
    let rows = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .map_err(sql(context))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql(context))
}

// ---- channels --------------------------------------------------------------------------

pub(super) fn put_channel(
    conn: &Connection,
    channel_id: &ChannelIdBytes,
    peer_id: &PeerIdBytes,
    record: &[u8],
    now: u64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO channels (channel_id, peer_id, record, updated_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (channel_id) DO UPDATE SET peer_id = excluded.peer_id, \
         record = excluded.record, updated_at = excluded.updated_at",
    )
    .and_then(|mut stmt| stmt.execute(params![channel_id, peer_id, record, now]))
    .map_err(sql("writing a channel"))?;
    Ok(())
}

const CHANNEL_COLUMNS: &str = "channel_id, peer_id, record, updated_at";

fn channel_from_row(row: &Row<'_>) -> rusqlite::Result<StoredChannel> {
    Ok(StoredChannel {
        channel_id: row.get(0)?,
        peer_id: row.get(1)?,
        record: row.get(2)?,
        updated_at: row.get(3)?,
    })
}

pub(super) fn get_channel(
    conn: &Connection,
    channel_id: &ChannelIdBytes,
) -> Result<Option<StoredChannel>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {CHANNEL_COLUMNS} FROM channels WHERE channel_id = ?1"
    ))
    .and_then(|mut stmt| stmt.query_row([channel_id], channel_from_row).optional())
    .map_err(sql("reading a channel"))
}

pub(super) fn list_channels(
    conn: &Connection,
    peer_id: Option<&PeerIdBytes>,
) -> Result<Vec<StoredChannel>, StoreError> {
    let context = "listing channels";
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels \
             WHERE ?1 IS NULL OR peer_id = ?1 ORDER BY channel_id"
        ))
        .map_err(sql(context))?;
    let rows = stmt
        .query_map([peer_id], channel_from_row)
        .map_err(sql(context))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql(context))
}

pub(super) fn delete_channel(
    conn: &Connection,
    channel_id: &ChannelIdBytes,
) -> Result<bool, StoreError> {
    conn.prepare_cached("DELETE FROM channels WHERE channel_id = ?1")
        .and_then(|mut stmt| stmt.execute([channel_id]))
        .map(|n| n > 0)
        .map_err(sql("deleting a channel"))
}

// ---- open_intents ----------------------------------------------------------------------

pub(super) fn insert_open_intent(
    conn: &Connection,
    intent: &NewOpenIntent,
    now: u64,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO open_intents (peer_id, address, amount_sat, push_msat, public, status, \
         channel_id, failure_reason, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, ?7, ?7)",
    )
    .and_then(|mut stmt| {
        stmt.insert(params![
            intent.peer_id,
            intent.address,
            intent.amount_sat,
            intent.push_msat,
            intent.public,
            OpenIntentStatus::Pending.as_str(),
            now,
        ])
    })
    .map_err(sql("recording an open intent"))
}

pub(super) fn update_open_intent_status(
    conn: &Connection,
    id: i64,
    status: OpenIntentStatus,
    channel_id: Option<&ChannelIdBytes>,
    failure_reason: Option<&str>,
    now: u64,
) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE open_intents SET status = ?2, channel_id = COALESCE(?3, channel_id), \
             failure_reason = COALESCE(?4, failure_reason), updated_at = ?5 WHERE id = ?1",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                id,
                status.as_str(),
                channel_id,
                failure_reason,
                now
            ])
        })
        .map_err(sql("updating an open intent"))?;
    if changed == 0 {
        return Err(StoreError::IntentNotFound { id });
    }
    Ok(())
}

const INTENT_COLUMNS: &str = "id, peer_id, address, amount_sat, push_msat, public, status, \
                              channel_id, failure_reason, created_at, updated_at";

/// An intent row with its status still as text (parsed outside the rusqlite closure).
type RawIntent = (OpenIntent, String);

fn intent_from_row(row: &Row<'_>) -> rusqlite::Result<RawIntent> {
    Ok((
        OpenIntent {
            id: row.get(0)?,
            peer_id: row.get(1)?,
            address: row.get(2)?,
            amount_sat: row.get(3)?,
            push_msat: row.get(4)?,
            public: row.get(5)?,
            status: OpenIntentStatus::Pending,
            channel_id: row.get(7)?,
            failure_reason: row.get(8)?,
            created_at: row.get(9)?,
            updated_at: row.get(10)?,
        },
        row.get(6)?,
    ))
}

fn finish_intent((mut intent, status): RawIntent) -> Result<OpenIntent, StoreError> {
    intent.status = OpenIntentStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
        table: "open_intents",
        reason: format!("intent {} has unknown status {status:?}", intent.id),
    })?;
    Ok(intent)
}

pub(super) fn get_open_intent(
    conn: &Connection,
    id: i64,
) -> Result<Option<OpenIntent>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {INTENT_COLUMNS} FROM open_intents WHERE id = ?1"
    ))
    .and_then(|mut stmt| stmt.query_row([id], intent_from_row).optional())
    .map_err(sql("reading an open intent"))?
    .map(finish_intent)
    .transpose()
}

pub(super) fn list_open_intents(conn: &Connection) -> Result<Vec<OpenIntent>, StoreError> {
    let context = "listing open intents";
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {INTENT_COLUMNS} FROM open_intents ORDER BY id"
        ))
        .map_err(sql(context))?;
    let rows = stmt.query_map([], intent_from_row).map_err(sql(context))?;
    rows.map(|row| row.map_err(sql(context)).and_then(finish_intent))
        .collect()
}

// ---- events ----------------------------------------------------------------------------

pub(super) fn push_event(conn: &Connection, record: &[u8], now: u64) -> Result<u64, StoreError> {
    let seq = conn
        .prepare_cached("INSERT INTO events (record, created_at) VALUES (?1, ?2)")
        .and_then(|mut stmt| stmt.insert(params![record, now]))
        .map_err(sql("queueing an event"))?;
    u64::try_from(seq).map_err(|_| StoreError::Corrupt {
        table: "events",
        reason: format!("negative sequence number {seq}"),
    })
}

pub(super) fn pending_events(
    conn: &Connection,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let context = "reading pending events";
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached("SELECT seq, record FROM events ORDER BY seq LIMIT ?1")
        .map_err(sql(context))?;
    let rows = stmt
        .query_map([limit], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(sql(context))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql(context))
}

pub(super) fn mark_event_handled(conn: &Connection, seq: u64) -> Result<bool, StoreError> {
    conn.prepare_cached("DELETE FROM events WHERE seq = ?1")
        .and_then(|mut stmt| stmt.execute([seq]))
        .map(|n| n > 0)
        .map_err(sql("deleting a handled event"))
}

// ---- coin_locks ------------------------------------------------------------------------

pub(super) fn lock_coins(
    conn: &Connection,
    outpoints: &[OutPoint],
    intent_id: Option<i64>,
    now: u64,
) -> Result<(), StoreError> {
    let context = "locking coins";
    let mut existing = conn
        .prepare_cached("SELECT intent_id FROM coin_locks WHERE outpoint = ?1")
        .map_err(sql(context))?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO coin_locks (outpoint, intent_id, created_at) VALUES (?1, ?2, ?3)",
        )
        .map_err(sql(context))?;
    for outpoint in outpoints {
        let text = outpoint.to_string();
        let locked_by: Option<Option<i64>> = existing
            .query_row([&text], |row| row.get(0))
            .optional()
            .map_err(sql(context))?;
        match locked_by {
            // Re-locking a coin for the intent that holds it is a no-op.
            Some(holder) if holder.is_some() && holder == intent_id => {}
            Some(holder) => {
                return Err(StoreError::CoinAlreadyLocked {
                    outpoint: *outpoint,
                    locked_by: holder,
                })
            }
            None => {
                insert
                    .execute(params![text, intent_id, now])
                    .map_err(sql(context))?;
            }
        }
    }
    Ok(())
}

pub(super) fn unlock_coins_for_intent(
    conn: &Connection,
    intent_id: i64,
) -> Result<usize, StoreError> {
    conn.prepare_cached("DELETE FROM coin_locks WHERE intent_id = ?1")
        .and_then(|mut stmt| stmt.execute([intent_id]))
        .map_err(sql("unlocking an intent's coins"))
}

pub(super) fn unlock_coin(conn: &Connection, outpoint: &OutPoint) -> Result<bool, StoreError> {
    conn.prepare_cached("DELETE FROM coin_locks WHERE outpoint = ?1")
        .and_then(|mut stmt| stmt.execute([outpoint.to_string()]))
        .map(|n| n > 0)
        .map_err(sql("unlocking a coin"))
}

pub(super) fn locked_coins(conn: &Connection) -> Result<Vec<(OutPoint, Option<i64>)>, StoreError> {
    let context = "listing locked coins";
    let mut stmt = conn
        .prepare_cached("SELECT outpoint, intent_id FROM coin_locks ORDER BY outpoint")
        .map_err(sql(context))?;
    let rows = stmt
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))
        .map_err(sql(context))?;
    rows.map(|row| {
        let (text, intent) = row.map_err(sql(context))?;
        let outpoint = OutPoint::from_str(&text).map_err(|e| StoreError::Corrupt {
            table: "coin_locks",
            reason: format!("bad outpoint {text:?}: {e}"),
        })?;
        Ok((outpoint, intent))
    })
    .collect()
}
