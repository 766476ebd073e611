//! The bodies of the fuzz targets over tern-core's stored records: events, the chain state,
//! the fee cache, and a whole SQLite store with corrupt rows or a corrupt file. A corrupt
//! database must give an error, never a panic. Compiled both by the fuzz crate (feature
//! `core`) and by `core/tests/decoder_fuzz_smoke.rs`.

use std::path::{Path, PathBuf};

use bitcoin::secp256k1::PublicKey;
use rusqlite::types::Value;
use rusqlite::Connection;
use tern_core::chain::{ChainState, FeeCache, FeeTarget, CHAIN_STATE_KEY, FEE_CACHE_KEY};
use tern_core::node::Event;
use tern_core::proto::channel::ChannelRecord;
use tern_core::store::Store;

/// `event_record`: [`Event::decode`] (the `events` table's blobs); what decodes re-encodes to
/// a fixed point.
pub fn event_record(data: &[u8]) {
    if let Ok(event) = Event::decode(data) {
        let encoded = event.encode();
        let again = Event::decode(&encoded).expect("our own encoding decodes");
        assert_eq!(again, event);
        assert_eq!(again.encode(), encoded);
    }
}

/// `chain_state`: [`ChainState::decode`] (the `chain_state` meta record the watcher starts
/// from); what decodes re-encodes to a fixed point.
pub fn chain_state(data: &[u8]) {
    if let Ok(state) = ChainState::decode(data) {
        let encoded = state.encode();
        let again = ChainState::decode(&encoded).expect("our own encoding decodes");
        assert_eq!(again, state);
        assert_eq!(again.encode(), encoded);
    }
}

/// `fee_cache`: [`FeeCache::decode`] (anything unreadable is an empty cache) and every rate
/// read from it, whatever estimates it holds (negative, huge, fractional).
pub fn fee_cache(data: &[u8]) {
    let cache = FeeCache::decode(data);
    for target in [
        FeeTarget::HighPriority,
        FeeTarget::Normal,
        FeeTarget::Background,
    ] {
        assert!(cache.fee_rate(target).to_sat_per_kwu() >= 253);
    }
    let estimates = cache.fee_estimates();
    assert!(estimates.in_144_blocks_per_kw >= 253 && estimates.in_1008_blocks_per_kw >= 253);
    let _ = cache.is_stale(u64::MAX, 0);
    let again = FeeCache::decode(&cache.encode());
    assert_eq!(again.estimates.len(), cache.estimates.len());
    assert_eq!(again.fetched_at, cache.fetched_at);
}

/// The version-1 database of the golden fixtures: every table with rows.
const FIXTURE_SQL: &str = include_str!("../../core/tests/fixtures/records/store_schema_v1.sql");

/// The tables and columns [`store_db`]'s edits pick from (by index, modulo the length).
const COLUMNS: &[(&str, &[&str])] = &[
    (
        "channels",
        &["channel_id", "peer_id", "record", "updated_at"],
    ),
    (
        "open_intents",
        &[
            "id",
            "peer_id",
            "address",
            "amount_sat",
            "push_msat",
            "public",
            "status",
            "channel_id",
            "failure_reason",
            "created_at",
            "updated_at",
        ],
    ),
    ("events", &["seq", "record", "created_at"]),
    ("meta", &["key", "value"]),
    ("coin_locks", &["outpoint", "intent_id", "created_at"]),
    ("chain_watches", &["key", "kind", "record"]),
];

/// Where [`store_db`] builds its database: one file per process, in memory where the system
/// has a tmpfs (the store syncs every commit).
fn scratch_db() -> PathBuf {
    let dir = PathBuf::from("/dev/shm");
    let dir = if dir.is_dir() {
        dir
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("tern-fuzz-store-{}.sqlite", std::process::id()))
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// One value of an edit: its kind byte picks the SQLite type (text may be invalid UTF-8).
fn edit_value(kind: u8, bytes: &[u8]) -> Value {
    match kind % 5 {
        0 => Value::Null,
        1 => {
            let mut b = [0u8; 8];
            let n = bytes.len().min(8);
            b[..n].copy_from_slice(&bytes[..n]);
            Value::Integer(i64::from_be_bytes(b))
        }
        2 => Value::Text(String::from_utf8_lossy(bytes).into_owned()),
        3 => Value::Blob(bytes.to_vec()),
        _ => Value::Real(f64::from(u32::from_be_bytes({
            let mut b = [0u8; 4];
            let n = bytes.len().min(4);
            b[..n].copy_from_slice(&bytes[..n]);
            b
        }))),
    }
}

/// At most this many edits per input.
const MAX_EDITS: usize = 32;

/// Applies `data` as a list of edits to the fixture database: each is `table, column, row,
/// kind, len` then `len` bytes, written with the checks SQLite would enforce switched off
/// (CHECK constraints, foreign keys), as a database damaged outside Tern would be. An edit
/// SQLite refuses (a STRICT column's type) is skipped; a kind byte with the top bit set
/// inserts a copy of the row before changing it, or (both top bits) stores the bytes as
/// text that is not UTF-8.
fn apply_edits(conn: &Connection, mut data: &[u8]) {
    let _ = conn.execute_batch("PRAGMA ignore_check_constraints = ON; PRAGMA foreign_keys = OFF;");
    let mut edits = 0;
    while let [t, c, row, kind, len, rest @ ..] = data {
        // A few edits damage a database as well as many, and each costs a statement.
        edits += 1;
        if edits > MAX_EDITS {
            break;
        }
        let n = usize::from(*len).min(rest.len());
        let (bytes, tail) = rest.split_at(n);
        data = tail;
        let (table, columns) = COLUMNS[usize::from(*t) % COLUMNS.len()];
        let column = columns[usize::from(*c) % columns.len()];
        let target = format!(
            "(SELECT rowid FROM {table} ORDER BY rowid LIMIT 1 OFFSET {})",
            row % 8
        );
        if kind & 0x80 != 0 {
            let _ = conn.execute(
                &format!("INSERT INTO {table} SELECT * FROM {table} WHERE rowid = {target}"),
                [],
            );
        }
        let sql = format!("UPDATE {table} SET {column} = ?1 WHERE rowid = {target}");
        let _ = if kind & 0xc0 == 0xc0 {
            // Text holding arbitrary bytes: SQLite keeps them as they are.
            let sql =
                format!("UPDATE {table} SET {column} = CAST(?1 AS TEXT) WHERE rowid = {target}");
            conn.execute(&sql, [Value::Blob(bytes.to_vec())])
        } else {
            conn.execute(&sql, [edit_value(*kind, bytes)])
        };
    }
}

/// Everything start-up and the node read from a store, each decoded as they decode it: must
/// be values or errors.
fn read_everything(store: &Store) {
    let _ = store.schema_version();
    if let Ok(rows) = store.list_channels() {
        for row in rows {
            let _ = PublicKey::from_slice(&row.peer_id);
            let _ = ChannelRecord::decode(&row.record);
        }
    }
    let _ = store.list_open_intents();
    let _ = store.coin_locks();
    let _ = store.locked_coins();
    if let Ok(events) = store.pending_events(usize::MAX) {
        for (_, record) in events {
            let _ = Event::decode(&record);
        }
    }
    let _ = store.list_watches();
    if let Ok(Some(bytes)) = store.get_meta(CHAIN_STATE_KEY) {
        let _ = ChainState::decode(&bytes);
    }
    if let Ok(Some(bytes)) = store.get_meta(FEE_CACHE_KEY) {
        let _ = FeeCache::decode(&bytes);
    }
}

/// `store_db`: a whole database. First byte even: the version-1 fixture database with the
/// rest applied as row edits ([`apply_edits`]); odd: the rest is the database file itself.
/// Then [`Store::open`] (migrations included) and every read of [`read_everything`].
pub fn store_db(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let path = scratch_db();
    remove_db(&path);
    if mode % 2 == 0 {
        let Ok(conn) = Connection::open(&path) else {
            return;
        };
        conn.execute_batch(FIXTURE_SQL).expect("the fixture loads");
        apply_edits(&conn, rest);
    } else if std::fs::write(&path, rest).is_err() {
        return;
    }
    if let Ok(store) = Store::open(&path) {
        read_everything(&store);
    }
    remove_db(&path);
}

/// Seeds for [`store_db`]: the fixture unchanged, a few typical damages (a short peer id, an
/// unknown intent status, a negative amount, text that is not UTF-8, a bad outpoint), and the
/// fixture's database file as bytes.
pub fn store_db_seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![
        vec![0],
        // channels.peer_id = a 3-byte blob
        vec![0, 0, 1, 0, 3, 3, 1, 2, 3],
        // open_intents.status = "bogus"
        vec![0, 1, 6, 0, 2, 5, b'b', b'o', b'g', b'u', b's'],
        // open_intents.amount_sat = -1
        vec![
            0, 1, 3, 0, 1, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
        // open_intents.address = text 0xff 0xfe
        vec![0, 1, 2, 0, 0xc3, 2, 0xff, 0xfe],
        // coin_locks.outpoint = "nope", and a copied events row with a short record
        vec![
            0, 4, 0, 0, 2, 4, b'n', b'o', b'p', b'e', 2, 1, 0, 0x83, 1, 1,
        ],
    ];
    let path = scratch_db().with_extension("seed");
    remove_db(&path);
    if let Ok(conn) = Connection::open(&path) {
        if conn.execute_batch(FIXTURE_SQL).is_ok() {
            drop(conn);
            if let Ok(bytes) = std::fs::read(&path) {
                seeds.push([&[1u8][..], &bytes].concat());
            }
        }
    }
    remove_db(&path);
    seeds
}
