//! Golden version-1 records outside the channel record (that one is tested inside the crate,
//! `proto/channel/tests/golden.rs`): events, the `chain_state` and `fee_cache` meta records,
//! and a whole schema-version-1 database as SQL. The fixtures in `tests/fixtures/records` were
//! written once by the code of their time (see the README there); each test decodes them,
//! asserts every field and checks that today's encoder still writes the same bytes. Never
//! regenerate them: a format change bumps the record version and adds a migration test.

// This binary's TRACE log file, for the log-secret check (see common/trace.rs).
#[path = "common/trace.rs"]
mod trace;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use bitcoin::hashes::Hash;
use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::secp256k1::PublicKey;
use bitcoin::{Amount, BlockHash, OutPoint, Txid};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use tern_core::chain::FeeCache;
use tern_core::chain::{
    BlockRef, ChainState, Confirmation, OutpointWatch, Spend, TxWatch, TxWatchState,
    CHAIN_STATE_KEY, FEE_CACHE_KEY,
};
use tern_core::node::{CloseKind, Event};
use tern_core::proto::channel::{ChannelRecord, ChannelState};
use tern_core::proto::wire::ChannelId;
use tern_core::store::{NewOpenIntent, OpenIntent, OpenIntentStatus, Store, SCHEMA_VERSION};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/records")
}

fn read(name: &str) -> String {
    let path = dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn read_hex(name: &str) -> Vec<u8> {
    Vec::<u8>::from_hex(read(name).trim()).unwrap_or_else(|e| panic!("{name}: not hex: {e}"))
}

/// Writes a fixture unless it exists (existing fixtures are never rewritten).
fn write_new(name: &str, text: String) {
    let path = dir().join(name);
    if path.exists() {
        eprintln!("kept {}", path.display());
        return;
    }
    std::fs::write(&path, text).expect("write fixture");
    eprintln!("wrote {}", path.display());
}

fn node(n: u8) -> PublicKey {
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let key = bitcoin::secp256k1::SecretKey::from_slice(&[n; 32]).expect("valid key");
    PublicKey::from_secret_key(&secp, &key)
}

fn txid(n: u8) -> Txid {
    Txid::from_byte_array([n; 32])
}

fn block(n: u8) -> BlockHash {
    BlockHash::from_byte_array([n; 32])
}

fn peer_bytes(n: u8) -> [u8; 33] {
    node(n).serialize()
}

// ---- the values the fixtures were generated from ------------------------------------------

/// Every event variant, in the order of the `event_v1_*.hex` files.
fn events() -> Vec<(&'static str, Event)> {
    vec![
        (
            "channel_pending",
            Event::ChannelPending {
                channel_id: ChannelId([0x11; 32]),
                temporary_channel_id: ChannelId([0x22; 32]),
                counterparty_node_id: node(3),
                funding_txo: OutPoint::new(txid(0x44), 1),
            },
        ),
        (
            "channel_ready",
            Event::ChannelReady {
                channel_id: ChannelId([0x11; 32]),
                counterparty_node_id: node(3),
            },
        ),
        (
            "channel_open_failed",
            Event::ChannelOpenFailed {
                temporary_channel_id: Some(ChannelId([0x22; 32])),
                channel_id: None,
                counterparty_node_id: node(3),
                reason: "peer disconnected before the channel was durable".into(),
            },
        ),
        (
            "channel_open_failed_with_id",
            Event::ChannelOpenFailed {
                temporary_channel_id: Some(ChannelId([0x22; 32])),
                channel_id: Some(ChannelId([0x11; 32])),
                counterparty_node_id: node(3),
                reason: "funding transaction double-spent by ".to_string() + &"55".repeat(32),
            },
        ),
        (
            "channel_failed",
            Event::ChannelFailed {
                channel_id: ChannelId([0x11; 32]),
                counterparty_node_id: node(3),
                reason: "peer error: \"bye\"".into(),
            },
        ),
        (
            "open_channel_request",
            Event::OpenChannelRequest {
                temporary_channel_id: ChannelId([0x66; 32]),
                counterparty_node_id: node(4),
                channel_value: Amount::from_sat(250_000),
                push_msat: 1_000,
            },
        ),
        ("peer_connected", Event::PeerConnected { node_id: node(4) }),
        (
            "peer_disconnected",
            Event::PeerDisconnected {
                node_id: node(4),
                reason: "connection reset".into(),
            },
        ),
    ]
}

/// The closing events (issue 14), fixtures of their own: the store fixture above holds the
/// events of [`events`] only.
fn closing_events() -> Vec<(&'static str, Event)> {
    vec![
        (
            "channel_closing",
            Event::ChannelClosing {
                channel_id: ChannelId([0x11; 32]),
                counterparty_node_id: node(3),
                kind: CloseKind::CooperativeLocal,
                reason: "the user closed the channel".into(),
            },
        ),
        (
            "channel_closed",
            Event::ChannelClosed {
                channel_id: ChannelId([0x11; 32]),
                counterparty_node_id: node(3),
                kind: CloseKind::LocalForce,
                claimed: Amount::from_sat(239_123),
                closing_txid: txid(0x77),
            },
        ),
    ]
}

/// A chain state with a transaction in each watch state and outpoints with and without spends.
fn chain_state() -> ChainState {
    let conf = |h: u32, b: u8| Confirmation {
        height: h,
        block_hash: block(b),
        block_time: 1_700_000_000 + u64::from(h),
    };
    ChainState {
        tip: Some(BlockRef {
            height: 120,
            hash: block(0x78),
        }),
        txs: BTreeMap::from([
            (
                txid(0x01),
                TxWatch {
                    inputs: vec![OutPoint::new(txid(0xa1), 0), OutPoint::new(txid(0xa2), 3)],
                    state: TxWatchState::Unconfirmed,
                },
            ),
            (
                txid(0x02),
                TxWatch {
                    inputs: vec![OutPoint::new(txid(0xa3), 1)],
                    state: TxWatchState::Confirmed(conf(110, 0x6e)),
                },
            ),
            (
                txid(0x03),
                TxWatch {
                    inputs: vec![],
                    state: TxWatchState::Gone,
                },
            ),
            (
                txid(0x04),
                TxWatch {
                    inputs: vec![OutPoint::new(txid(0xa4), 2)],
                    state: TxWatchState::DoubleSpent { by: txid(0xb4) },
                },
            ),
        ]),
        outpoints: BTreeMap::from([
            (
                OutPoint::new(txid(0x02), 0),
                OutpointWatch {
                    interval: 36,
                    check_now: true,
                    spend: None,
                    forgotten: None,
                },
            ),
            (
                OutPoint::new(txid(0x05), 1),
                OutpointWatch {
                    interval: 1,
                    check_now: false,
                    spend: Some(Spend {
                        txid: txid(0xc5),
                        vin: 0,
                        confirmed: None,
                    }),
                    forgotten: None,
                },
            ),
            (
                OutPoint::new(txid(0x06), 2),
                OutpointWatch {
                    interval: 504,
                    check_now: false,
                    spend: Some(Spend {
                        txid: txid(0xc6),
                        vin: 4,
                        confirmed: Some(conf(119, 0x77)),
                    }),
                    forgotten: None,
                },
            ),
        ]),
    }
}

fn fee_cache() -> FeeCache {
    FeeCache {
        fetched_at: 1_700_000_123,
        estimates: BTreeMap::from([(1, 30.5), (6, 8.0), (144, 1.25), (1008, 1.0)]),
    }
}

const T0: u64 = 1_700_000_000;

fn intent(n: u8, amount_sat: u64, public: bool) -> NewOpenIntent {
    NewOpenIntent {
        peer_id: peer_bytes(n),
        address: format!("127.0.0.1:{}", 9700 + u16::from(n)),
        amount_sat,
        push_msat: u64::from(n) * 1000,
        public,
    }
}

/// Builds the fixture database through today's store API.
fn build_store(store: &mut Store) {
    let record = read_hex("channel_v1_funder_ready.hex");
    let status = |store: &mut Store, id, s, ch: Option<[u8; 32]>, why: Option<&str>, at: u64| {
        store
            .update_open_intent_status(id, s, ch.as_ref(), why, at)
            .expect("status")
    };
    let pending = store
        .insert_open_intent(&intent(1, 100_000, false), T0)
        .expect("intent");
    let negotiating = store
        .insert_open_intent(&intent(2, 200_000, true), T0 + 1)
        .expect("intent");
    status(
        store,
        negotiating,
        OpenIntentStatus::Negotiating,
        None,
        None,
        T0 + 2,
    );
    let chan_pending = store
        .insert_open_intent(&intent(3, 300_000, false), T0 + 3)
        .expect("intent");
    status(
        store,
        chan_pending,
        OpenIntentStatus::ChannelPending,
        Some([0x33; 32]),
        None,
        T0 + 4,
    );
    let ready = store
        .insert_open_intent(&intent(4, 400_000, true), T0 + 5)
        .expect("intent");
    status(
        store,
        ready,
        OpenIntentStatus::ChannelPending,
        Some([0x44; 32]),
        None,
        T0 + 6,
    );
    status(store, ready, OpenIntentStatus::Ready, None, None, T0 + 7);
    let failed = store
        .insert_open_intent(&intent(5, 500_000, false), T0 + 8)
        .expect("intent");
    status(
        store,
        failed,
        OpenIntentStatus::Failed,
        None,
        Some("peer rejected: too small"),
        T0 + 9,
    );
    assert_eq!(
        [pending, negotiating, chan_pending, ready, failed],
        [1, 2, 3, 4, 5]
    );
    store
        .lock_coins(
            &[OutPoint::new(txid(0xe2), 0), OutPoint::new(txid(0xe2), 1)],
            Some(negotiating),
            T0 + 11,
        )
        .expect("lock");
    store
        .lock_coins(&[OutPoint::new(txid(0xe3), 7)], Some(chan_pending), T0 + 12)
        .expect("lock");
    store
        .lock_coins(&[OutPoint::new(txid(0xe0), 2)], None, T0 + 13)
        .expect("lock");
    store
        .put_channel(&[0x44; 32], &peer_bytes(4), &record, T0 + 14)
        .expect("channel");
    for (i, (_, e)) in events().iter().enumerate() {
        store
            .push_event(&e.encode(), T0 + 20 + i as u64)
            .expect("event");
    }
    store.mark_event_handled(1).expect("handled");
    store
        .put_meta(CHAIN_STATE_KEY, &chain_state().encode())
        .expect("meta");
    store
        .put_meta(FEE_CACHE_KEY, &fee_cache().encode())
        .expect("meta");
    store
        .put_watch(b"watch-key", "funding", b"\x01opaque")
        .expect("watch");
}

/// The database as SQL, like `sqlite3 .dump`: the schema as SQLite stores it, then every row.
fn dump(conn: &Connection) -> String {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    // Like `sqlite3 .dump`: one transaction, foreign keys off while rows load in table order.
    let mut out = format!(
        "PRAGMA user_version = {version};\nPRAGMA foreign_keys = OFF;\nBEGIN TRANSACTION;\n"
    );
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type DESC, name")
        .expect("schema");
    let schema: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("schema")
        .collect::<Result<_, _>>()
        .expect("schema");
    let mut tables: Vec<String> = Vec::new();
    for (kind, name, sql) in &schema {
        out.push_str(&format!("{sql};\n"));
        if kind == "table" {
            tables.push(name.clone());
        }
    }
    tables.push("sqlite_sequence".into());
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
            .expect("rows");
        let n = stmt.column_count();
        let mut rows = stmt.query([]).expect("rows");
        while let Some(row) = rows.next().expect("row") {
            let values: Vec<String> = (0..n)
                .map(|i| match row.get_ref(i).expect("value") {
                    ValueRef::Null => "NULL".into(),
                    ValueRef::Integer(v) => v.to_string(),
                    ValueRef::Real(v) => v.to_string(),
                    ValueRef::Text(t) => {
                        format!("'{}'", String::from_utf8_lossy(t).replace('\'', "''"))
                    }
                    ValueRef::Blob(b) => format!("X'{}'", b.to_upper_hex_string()),
                })
                .collect();
            out.push_str(&format!(
                "INSERT INTO {table} VALUES({});\n",
                values.join(",")
            ));
        }
    }
    out.push_str("COMMIT;\n");
    out
}

fn temp_path(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!(
        "tern-golden-{name}-{}-{nanos}.sqlite",
        std::process::id()
    ))
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// Writes the fixtures that do not exist yet. Run once, by hand (`--ignored`), when a record
/// version or schema version is introduced; generating proves nothing, the tests below do.
#[test]
#[ignore = "generator: writes new golden fixtures, never overwrites existing ones"]
fn generate_fixtures() {
    for (name, e) in events().into_iter().chain(closing_events()) {
        write_new(
            &format!("event_v1_{name}.hex"),
            format!("{}\n", e.encode().to_lower_hex_string()),
        );
    }
    write_new(
        "chain_state_v1.hex",
        format!("{}\n", chain_state().encode().to_lower_hex_string()),
    );
    write_new(
        "fee_cache_v1.hex",
        format!("{}\n", fee_cache().encode().to_lower_hex_string()),
    );
    let path = temp_path("generate");
    {
        let mut store = Store::open(&path).expect("store");
        build_store(&mut store);
    }
    let conn = Connection::open(&path).expect("open");
    let header =
        "-- Tern store, schema version 1, written by the store API of its time (see README.md).\n";
    write_new(
        &format!("store_schema_v{SCHEMA_VERSION}.sql"),
        format!("{header}{}", dump(&conn)),
    );
    drop(conn);
    remove_db(&path);
}

// ---- the tests ---------------------------------------------------------------------------

#[test]
fn every_event_variant_v1_decodes_and_reencodes() {
    let expected = events().into_iter().chain(closing_events());
    // One fixture per variant: `Event` is non_exhaustive here, so the exhaustive match that
    // makes a new variant need its own fixture is in core/src/node/events.rs's tests.
    for (name, want) in expected {
        let bytes = read_hex(&format!("event_v1_{name}.hex"));
        assert_eq!(bytes[0], 1, "{name}: version byte");
        let got = Event::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}: fields");
        assert_eq!(
            got.encode().to_lower_hex_string(),
            bytes.to_lower_hex_string(),
            "{name}: today's encoder writes the same bytes"
        );
    }
}

#[test]
fn chain_state_v1_decodes_and_reencodes() {
    let bytes = read_hex("chain_state_v1.hex");
    assert_eq!(bytes[0], 1);
    let got = ChainState::decode(&bytes).expect("decodes");
    assert_eq!(
        got.tip,
        Some(BlockRef {
            height: 120,
            hash: block(0x78)
        })
    );
    let states: Vec<(Txid, TxWatchState)> = got.txs.iter().map(|(t, w)| (*t, w.state)).collect();
    let conf110 = Confirmation {
        height: 110,
        block_hash: block(0x6e),
        block_time: 1_700_000_110,
    };
    assert_eq!(
        states,
        vec![
            (txid(1), TxWatchState::Unconfirmed),
            (txid(2), TxWatchState::Confirmed(conf110)),
            (txid(3), TxWatchState::Gone),
            (txid(4), TxWatchState::DoubleSpent { by: txid(0xb4) }),
        ]
    );
    assert_eq!(
        got.txs[&txid(1)].inputs,
        vec![OutPoint::new(txid(0xa1), 0), OutPoint::new(txid(0xa2), 3)]
    );
    assert!(got.txs[&txid(3)].inputs.is_empty());
    assert_eq!(got.depth(&txid(2)), 11);
    let ops: Vec<(OutPoint, u32, bool)> = got
        .outpoints
        .iter()
        .map(|(o, w)| (*o, w.interval, w.check_now))
        .collect();
    assert_eq!(
        ops,
        vec![
            (OutPoint::new(txid(2), 0), 36, true),
            (OutPoint::new(txid(5), 1), 1, false),
            (OutPoint::new(txid(6), 2), 504, false),
        ]
    );
    assert_eq!(got.outpoints[&OutPoint::new(txid(2), 0)].spend, None);
    assert_eq!(
        got.outpoints[&OutPoint::new(txid(5), 1)].spend,
        Some(Spend {
            txid: txid(0xc5),
            vin: 0,
            confirmed: None
        })
    );
    assert_eq!(
        got.outpoints[&OutPoint::new(txid(6), 2)].spend,
        Some(Spend {
            txid: txid(0xc6),
            vin: 4,
            confirmed: Some(Confirmation {
                height: 119,
                block_hash: block(0x77),
                block_time: 1_700_000_119
            })
        })
    );
    assert_eq!(got, chain_state());
    assert_eq!(
        got.encode().to_lower_hex_string(),
        bytes.to_lower_hex_string()
    );
}

#[test]
fn fee_cache_v1_decodes_and_reencodes() {
    let bytes = read_hex("fee_cache_v1.hex");
    assert_eq!(bytes[0], 1);
    let got = FeeCache::decode(&bytes);
    assert_eq!(got.fetched_at, 1_700_000_123);
    assert_eq!(
        got.estimates
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect::<Vec<_>>(),
        vec![(1, 30.5), (6, 8.0), (144, 1.25), (1008, 1.0)]
    );
    // FeeCache::decode turns anything unreadable into an empty cache: make sure it did not.
    assert_ne!(got, FeeCache::default());
    assert_eq!(
        got.encode().to_lower_hex_string(),
        bytes.to_lower_hex_string()
    );
}

/// Loads `store_schema_v1.sql` into a new file, as a database written by that version.
fn fixture_store(name: &str) -> (PathBuf, Store) {
    let path = temp_path(name);
    {
        let conn = Connection::open(&path).expect("raw open");
        conn.execute_batch(&read("store_schema_v1.sql"))
            .expect("fixture SQL loads");
    }
    let store = Store::open(&path).expect("today's store opens a version-1 database");
    (path, store)
}

#[test]
fn store_schema_v1_rows_read_back_through_todays_api() {
    let (path, mut store) = fixture_store("rows");
    assert_eq!(
        store.schema_version().expect("version"),
        i64::from(SCHEMA_VERSION)
    );
    let open = |n: u8,
                amount_sat,
                public,
                status,
                channel_id: Option<u8>,
                why: Option<&str>,
                at: (u64, u64)| {
        OpenIntent {
            id: i64::from(n),
            peer_id: peer_bytes(n),
            address: format!("127.0.0.1:970{n}"),
            amount_sat,
            push_msat: u64::from(n) * 1000,
            public,
            status,
            channel_id: channel_id.map(|c| [c; 32]),
            failure_reason: why.map(str::to_string),
            created_at: T0 + at.0,
            updated_at: T0 + at.1,
        }
    };
    assert_eq!(
        store.list_open_intents().expect("intents"),
        vec![
            open(
                1,
                100_000,
                false,
                OpenIntentStatus::Pending,
                None,
                None,
                (0, 0)
            ),
            open(
                2,
                200_000,
                true,
                OpenIntentStatus::Negotiating,
                None,
                None,
                (1, 2)
            ),
            open(
                3,
                300_000,
                false,
                OpenIntentStatus::ChannelPending,
                Some(0x33),
                None,
                (3, 4)
            ),
            open(
                4,
                400_000,
                true,
                OpenIntentStatus::Ready,
                Some(0x44),
                None,
                (5, 7)
            ),
            open(
                5,
                500_000,
                false,
                OpenIntentStatus::Failed,
                None,
                Some("peer rejected: too small"),
                (8, 9)
            ),
        ]
    );
    assert_eq!(
        store.get_open_intent(3).expect("intent").map(|i| i.status),
        Some(OpenIntentStatus::ChannelPending)
    );
    let op = |s: &str| OutPoint::from_str(s).expect("outpoint");
    assert_eq!(
        store.coin_locks().expect("locks"),
        vec![
            (op(&format!("{}:2", "e0".repeat(32))), None),
            (op(&format!("{}:0", "e2".repeat(32))), Some(2)),
            (op(&format!("{}:1", "e2".repeat(32))), Some(2)),
            (op(&format!("{}:7", "e3".repeat(32))), Some(3)),
        ]
    );
    let channels = store.list_channels().expect("channels");
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].channel_id, [0x44; 32]);
    assert_eq!(channels[0].peer_id, peer_bytes(4));
    assert_eq!(channels[0].updated_at, T0 + 14);
    assert_eq!(channels[0].record, read_hex("channel_v1_funder_ready.hex"));
    let record = ChannelRecord::decode(&channels[0].record).expect("record decodes");
    assert_eq!(record.state(), ChannelState::Ready);
    // Event 1 was handled; 2..=8 are pending, in order.
    let pending = store.pending_events(100).expect("events");
    assert_eq!(
        pending.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        (2..=8).collect::<Vec<u64>>()
    );
    let decoded: Vec<Event> = pending
        .iter()
        .map(|(_, r)| Event::decode(r).expect("event decodes"))
        .collect();
    assert_eq!(
        decoded,
        events()
            .into_iter()
            .skip(1)
            .map(|(_, e)| e)
            .collect::<Vec<_>>()
    );
    let meta = |k| store.get_meta(k).expect("meta").expect("present");
    assert_eq!(
        ChainState::decode(&meta(CHAIN_STATE_KEY)),
        Ok(chain_state())
    );
    assert_eq!(FeeCache::decode(&meta(FEE_CACHE_KEY)), fee_cache());
    assert_eq!(
        store.get_watch(b"watch-key").expect("watch"),
        Some(("funding".to_string(), b"\x01opaque".to_vec()))
    );
    // Writes keep working and never reuse an id or a sequence number.
    let id = store
        .insert_open_intent(&intent(6, 1, false), T0 + 30)
        .expect("insert");
    assert_eq!(id, 6);
    assert_eq!(store.push_event(b"\x01{}", T0 + 31).expect("event"), 9);
    assert_eq!(store.unlock_coins_for_intent(2).expect("unlock"), 2);
    drop(store);
    remove_db(&path);
}

#[test]
fn store_schema_v1_migrates_to_what_todays_code_creates() {
    // The version-1 database, once opened (and migrated) by today's store, has exactly the
    // schema today's store creates from nothing: editing a shipped migration instead of
    // appending one fails here.
    let schema = |path: &Path| -> Vec<String> {
        let conn = Connection::open(path).expect("open");
        let mut stmt = conn
            .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .expect("schema");
        let rows = stmt.query_map([], |r| r.get(0)).expect("schema");
        rows.collect::<Result<_, _>>().expect("schema")
    };
    let (fixture_path, store) = fixture_store("schema");
    drop(store);
    let fresh_path = temp_path("fresh");
    drop(Store::open(&fresh_path).expect("fresh store"));
    let fixture = schema(&fixture_path);
    assert_eq!(
        fixture.len(),
        9,
        "6 tables, 2 indexes, sqlite_sequence: {fixture:?}"
    );
    assert_eq!(fixture, schema(&fresh_path));
    remove_db(&fixture_path);
    remove_db(&fresh_path);
}
