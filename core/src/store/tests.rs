//! Unit tests of the store: every API, atomicity, persistence across reopen, file mode,
//! pragmas, counters and migrations from every earlier schema version.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use rusqlite::Connection;

use super::migrations::{self, MIGRATIONS};
use super::*;

/// A database path under the temp dir, unique per test run; removes the file and its
/// companions when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> TempDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let unique = format!(
            "tern-store-{name}-{}-{nanos}-{}.sqlite",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        TempDb(std::env::temp_dir().join(unique))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(companion(&self.0, suffix));
        }
    }
}

const NOW: u64 = 1_700_000_000;

fn channel_id(n: u8) -> ChannelIdBytes {
    [n; 32]
}

fn peer_id(n: u8) -> PeerIdBytes {
    let mut id = [n; 33];
    id[0] = 0x02;
    id
}

fn outpoint(n: u8, vout: u32) -> OutPoint {
    OutPoint {
        txid: Txid::from_byte_array([n; 32]),
        vout,
    }
}

fn new_intent(n: u8) -> NewOpenIntent {
    NewOpenIntent {
        peer_id: peer_id(n),
        address: format!("10.0.0.{n}:9735"),
        amount_sat: 100_000 + u64::from(n),
        push_msat: 1_000 * u64::from(n),
        public: n.is_multiple_of(2),
    }
}

fn pragma_value(conn: &Connection, name: &str) -> String {
    conn.query_row(&format!("PRAGMA {name}"), [], |row| {
        row.get::<_, rusqlite::types::Value>(0)
    })
    .map(|value| match value {
        rusqlite::types::Value::Text(text) => text,
        rusqlite::types::Value::Integer(n) => n.to_string(),
        other => format!("{other:?}"),
    })
    .expect("pragma readable")
}

// ---- opening -----------------------------------------------------------------------------

#[test]
fn open_sets_pragmas_on_both_connections() {
    let db = TempDb::new("pragmas");
    let store = Store::open(db.path()).expect("open");
    assert_eq!(store.path(), Some(db.path()));
    assert_eq!(
        store.schema_version().expect("version"),
        i64::from(SCHEMA_VERSION)
    );
    let second = store.open_connection().expect("second connection");
    for conn in [&store.conn, &second] {
        assert_eq!(pragma_value(conn, "journal_mode"), "wal");
        assert_eq!(pragma_value(conn, "synchronous"), "2", "FULL");
        assert_eq!(pragma_value(conn, "foreign_keys"), "1");
        assert_eq!(pragma_value(conn, "busy_timeout"), "5000");
        assert_eq!(pragma_value(conn, "wal_autocheckpoint"), "0");
        #[cfg(target_vendor = "apple")]
        {
            assert_eq!(pragma_value(conn, "fullfsync"), "1");
            assert_eq!(pragma_value(conn, "checkpoint_fullfsync"), "1");
        }
    }
}

#[test]
fn open_fails_cleanly_without_parent_directory() {
    let db = TempDb::new("noparent");
    let path = db.path().join("missing").join("tern.sqlite");
    let err = Store::open(&path).expect_err("no parent directory");
    assert!(
        matches!(
            err,
            StoreError::File {
                action: "create",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("cannot create database file"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_an_error() {
    let db = TempDb::new("garbage");
    std::fs::write(db.path(), vec![0x5a; 8192]).expect("write garbage");
    let err = Store::open(db.path()).expect_err("not a database");
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    let text = err.to_string();
    assert!(text.starts_with("cannot open database "), "{err}");
    assert!(text.contains("not a database"), "{err}");
    // The file is left as it was.
    assert_eq!(std::fs::read(db.path()).expect("read"), vec![0x5a; 8192]);
}

#[test]
fn in_memory_store_has_no_file() {
    let mut store = Store::open_in_memory().expect("open");
    assert_eq!(store.path(), None);
    assert!(matches!(
        store.open_connection(),
        Err(StoreError::InMemory { .. })
    ));
    store.put_meta("k", b"v").expect("write");
    store.checkpoint().expect("no-op");
    let stats = store.stats();
    assert_eq!(stats.fsyncs, 0);
    assert_eq!(stats.commits, u64::from(SCHEMA_VERSION) + 1);
}

#[cfg(unix)]
#[test]
fn database_file_and_companions_have_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("file exists")
            .permissions()
            .mode()
            & 0o777
    };
    let db = TempDb::new("mode");
    {
        let mut store = Store::open(db.path()).expect("open");
        store.put_meta("k", b"v").expect("write");
        assert_eq!(mode(db.path()), 0o600);
        assert_eq!(mode(&companion(db.path(), "-wal")), 0o600);
        assert_eq!(mode(&companion(db.path(), "-shm")), 0o600);
    }
    // An existing file with a looser mode is made private again.
    std::fs::set_permissions(db.path(), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let store = Store::open(db.path()).expect("reopen");
    assert_eq!(mode(db.path()), 0o600);
    assert_eq!(store.get_meta("k").expect("read"), Some(b"v".to_vec()));
}

// ---- typed tables ------------------------------------------------------------------------

#[test]
fn meta_round_trip() {
    let mut store = Store::open_in_memory().expect("open");
    assert_eq!(store.get_meta("tip").expect("read"), None);
    store.put_meta("tip", b"one").expect("put");
    assert_eq!(store.get_meta("tip").expect("read"), Some(b"one".to_vec()));
    store.put_meta("tip", b"two").expect("replace");
    assert_eq!(store.get_meta("tip").expect("read"), Some(b"two".to_vec()));
    store.put_meta("empty", b"").expect("empty value");
    assert_eq!(store.get_meta("empty").expect("read"), Some(Vec::new()));
    assert!(store.delete_meta("tip").expect("delete"));
    assert!(!store.delete_meta("tip").expect("delete again"));
    assert_eq!(store.get_meta("tip").expect("read"), None);

    // The same inside a transaction, which sees its own writes.
    store
        .write(|tx| {
            tx.put_meta("a", b"1")?;
            assert_eq!(tx.get_meta("a")?, Some(b"1".to_vec()));
            assert!(tx.delete_meta("a")?);
            tx.put_meta("b", b"2")
        })
        .expect("write");
    assert_eq!(store.get_meta("a").expect("read"), None);
    assert_eq!(store.get_meta("b").expect("read"), Some(b"2".to_vec()));
}

#[test]
fn watches_round_trip() {
    let mut store = Store::open_in_memory().expect("open");
    assert!(store.list_watches().expect("list").is_empty());
    store.put_watch(b"\x02b", "spend", b"r1").expect("put");
    store.put_watch(b"\x01a", "confirm", b"r2").expect("put");
    store.put_watch(b"\x02b", "spend", b"r3").expect("replace");
    assert_eq!(
        store.list_watches().expect("list"),
        vec![
            (b"\x01a".to_vec(), "confirm".to_string(), b"r2".to_vec()),
            (b"\x02b".to_vec(), "spend".to_string(), b"r3".to_vec()),
        ]
    );
    assert_eq!(
        store.get_watch(b"\x01a").expect("get"),
        Some(("confirm".to_string(), b"r2".to_vec()))
    );
    assert!(store.delete_watch(b"\x01a").expect("delete"));
    assert!(!store.delete_watch(b"\x01a").expect("delete again"));
    assert_eq!(store.get_watch(b"\x01a").expect("get"), None);
    store
        .write(|tx| {
            tx.put_watch(b"c", "confirm", b"r4")?;
            assert_eq!(tx.list_watches()?.len(), 2);
            assert_eq!(
                tx.get_watch(b"c")?,
                Some(("confirm".into(), b"r4".to_vec()))
            );
            tx.delete_watch(b"\x02b")
        })
        .expect("write");
    assert_eq!(store.list_watches().expect("list").len(), 1);
}

#[test]
fn channels_round_trip() {
    let mut store = Store::open_in_memory().expect("open");
    assert_eq!(store.get_channel(&channel_id(1)).expect("get"), None);
    store
        .put_channel(&channel_id(2), &peer_id(7), b"\x01two", NOW)
        .expect("put");
    store
        .put_channel(&channel_id(1), &peer_id(8), b"\x01one", NOW + 1)
        .expect("put");
    store
        .put_channel(&channel_id(3), &peer_id(7), b"\x01three", NOW + 2)
        .expect("put");
    let one = StoredChannel {
        channel_id: channel_id(1),
        peer_id: peer_id(8),
        record: b"\x01one".to_vec(),
        updated_at: NOW + 1,
    };
    assert_eq!(
        store.get_channel(&channel_id(1)).expect("get"),
        Some(one.clone())
    );
    let ids: Vec<_> = store
        .list_channels()
        .expect("list")
        .iter()
        .map(|c| c.channel_id[0])
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    let with_peer: Vec<_> = store
        .list_channels_with_peer(&peer_id(7))
        .expect("list")
        .iter()
        .map(|c| c.channel_id[0])
        .collect();
    assert_eq!(with_peer, vec![2, 3]);

    // Replace: record and timestamp change.
    store
        .put_channel(&channel_id(1), &peer_id(8), b"\x02one-v2", NOW + 10)
        .expect("replace");
    let got = store
        .get_channel(&channel_id(1))
        .expect("get")
        .expect("present");
    assert_eq!(got.record, b"\x02one-v2".to_vec());
    assert_eq!(got.updated_at, NOW + 10);

    assert!(store.delete_channel(&channel_id(2)).expect("delete"));
    assert!(!store.delete_channel(&channel_id(2)).expect("delete again"));
    store
        .write(|tx| {
            assert_eq!(tx.list_channels()?.len(), 2);
            assert!(tx.get_channel(&channel_id(3))?.is_some());
            tx.delete_channel(&channel_id(3))?;
            tx.put_channel(&channel_id(4), &peer_id(9), b"\x01four", NOW)
        })
        .expect("write");
    let ids: Vec<_> = store
        .list_channels()
        .expect("list")
        .iter()
        .map(|c| c.channel_id[0])
        .collect();
    assert_eq!(ids, vec![1, 4]);
}

#[test]
fn open_intents_round_trip() {
    let mut store = Store::open_in_memory().expect("open");
    let first = store
        .insert_open_intent(&new_intent(1), NOW)
        .expect("insert");
    let second = store
        .insert_open_intent(&new_intent(2), NOW + 1)
        .expect("insert");
    assert!(second > first);
    let got = store.get_open_intent(first).expect("get").expect("present");
    assert_eq!(
        got,
        OpenIntent {
            id: first,
            peer_id: peer_id(1),
            address: "10.0.0.1:9735".into(),
            amount_sat: 100_001,
            push_msat: 1_000,
            public: false,
            status: OpenIntentStatus::Pending,
            channel_id: None,
            failure_reason: None,
            created_at: NOW,
            updated_at: NOW,
        }
    );
    assert!(
        store
            .get_open_intent(second)
            .expect("get")
            .expect("present")
            .public
    );
    assert_eq!(store.get_open_intent(first + 100).expect("get"), None);

    store
        .update_open_intent_status(first, OpenIntentStatus::Negotiating, None, None, NOW + 5)
        .expect("update");
    store
        .update_open_intent_status(
            first,
            OpenIntentStatus::ChannelPending,
            Some(&channel_id(9)),
            None,
            NOW + 6,
        )
        .expect("update");
    // `None` leaves the channel id as it was.
    store
        .update_open_intent_status(first, OpenIntentStatus::Ready, None, None, NOW + 7)
        .expect("update");
    let got = store.get_open_intent(first).expect("get").expect("present");
    assert_eq!(got.status, OpenIntentStatus::Ready);
    assert_eq!(got.channel_id, Some(channel_id(9)));
    assert_eq!(got.failure_reason, None);
    assert_eq!((got.created_at, got.updated_at), (NOW, NOW + 7));

    store
        .update_open_intent_status(
            second,
            OpenIntentStatus::Failed,
            None,
            Some("peer disconnected before funding_signed"),
            NOW + 8,
        )
        .expect("update");
    let failed = store
        .get_open_intent(second)
        .expect("get")
        .expect("present");
    assert_eq!(failed.status, OpenIntentStatus::Failed);
    assert_eq!(
        failed.failure_reason.as_deref(),
        Some("peer disconnected before funding_signed")
    );

    let err = store
        .update_open_intent_status(first + 100, OpenIntentStatus::Failed, None, None, NOW)
        .expect_err("unknown id");
    assert!(matches!(err, StoreError::IntentNotFound { .. }), "{err}");

    let ids: Vec<_> = store
        .list_open_intents()
        .expect("list")
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, vec![first, second]);

    let third = store
        .write(|tx| {
            let id = tx.insert_open_intent(&new_intent(3), NOW)?;
            tx.update_open_intent_status(id, OpenIntentStatus::Negotiating, None, None, NOW)?;
            assert_eq!(tx.list_open_intents()?.len(), 3);
            assert_eq!(
                tx.get_open_intent(id)?.map(|i| i.status),
                Some(OpenIntentStatus::Negotiating)
            );
            Ok(id)
        })
        .expect("write");
    assert!(third > second);
}

#[test]
fn open_intent_status_text_round_trips() {
    for status in [
        OpenIntentStatus::Pending,
        OpenIntentStatus::Negotiating,
        OpenIntentStatus::ChannelPending,
        OpenIntentStatus::Ready,
        OpenIntentStatus::Failed,
    ] {
        assert_eq!(OpenIntentStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(OpenIntentStatus::parse("opening"), None);
}

#[test]
fn unknown_intent_status_is_reported_as_corrupt() {
    let mut store = Store::open_in_memory().expect("open");
    let id = store
        .insert_open_intent(&new_intent(1), NOW)
        .expect("insert");
    store
        .conn
        .execute(
            "UPDATE open_intents SET status = 'bogus' WHERE id = ?1",
            [id],
        )
        .expect("raw update");
    let err = store.get_open_intent(id).expect_err("corrupt");
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "open_intents",
                ..
            }
        ),
        "{err}"
    );
    assert!(store.list_open_intents().is_err());
}

#[test]
fn event_queue_is_ordered_and_never_reuses_seq() {
    let mut store = Store::open_in_memory().expect("open");
    assert!(store.pending_events(10).expect("pending").is_empty());
    let a = store.push_event(b"a", NOW).expect("push");
    let b = store.push_event(b"b", NOW).expect("push");
    let c = store.push_event(b"c", NOW).expect("push");
    assert!(a < b && b < c);
    assert_eq!(
        store.pending_events(2).expect("pending"),
        vec![(a, b"a".to_vec()), (b, b"b".to_vec())]
    );
    assert_eq!(store.pending_events(0).expect("pending"), vec![]);
    assert!(store.mark_event_handled(b).expect("handled"));
    assert!(!store.mark_event_handled(b).expect("handled twice"));
    assert_eq!(
        store.pending_events(10).expect("pending"),
        vec![(a, b"a".to_vec()), (c, b"c".to_vec())]
    );
    // Deleting the newest event does not let its number come back.
    assert!(store.mark_event_handled(c).expect("handled"));
    let d = store.push_event(b"d", NOW).expect("push");
    assert!(d > c);
    store
        .write(|tx| {
            let e = tx.push_event(b"e", NOW)?;
            assert_eq!(tx.pending_events(usize::MAX)?.len(), 3);
            tx.mark_event_handled(a)?;
            assert_eq!(tx.pending_events(1)?, vec![(d, b"d".to_vec())]);
            assert!(e > d);
            Ok(())
        })
        .expect("write");
}

#[test]
fn coin_locks_round_trip() {
    let mut store = Store::open_in_memory().expect("open");
    let intent = store
        .insert_open_intent(&new_intent(1), NOW)
        .expect("insert");
    let other = store
        .insert_open_intent(&new_intent(2), NOW)
        .expect("insert");
    assert!(store.locked_coins().expect("list").is_empty());

    store
        .lock_coins(&[outpoint(1, 0), outpoint(1, 1)], Some(intent), NOW)
        .expect("lock");
    store
        .lock_coins(&[outpoint(2, 0)], None, NOW)
        .expect("lock");
    // Re-locking for the same intent is a no-op.
    store
        .lock_coins(&[outpoint(1, 0)], Some(intent), NOW)
        .expect("relock");
    assert_eq!(
        store.locked_coins().expect("list"),
        vec![outpoint(1, 0), outpoint(1, 1), outpoint(2, 0)]
    );
    assert_eq!(
        store.coin_locks().expect("list"),
        vec![
            (outpoint(1, 0), Some(intent)),
            (outpoint(1, 1), Some(intent)),
            (outpoint(2, 0), None),
        ]
    );

    // A batch with one coin already locked elsewhere locks none of them.
    let err = store
        .lock_coins(&[outpoint(3, 0), outpoint(1, 1)], Some(other), NOW)
        .expect_err("conflict");
    match err {
        StoreError::CoinAlreadyLocked {
            outpoint: o,
            locked_by,
        } => {
            assert_eq!(o, outpoint(1, 1));
            assert_eq!(locked_by, Some(intent));
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(store.locked_coins().expect("list").len(), 3);
    // A coin locked without an intent is locked for everyone.
    assert!(store.lock_coins(&[outpoint(2, 0)], None, NOW).is_err());
    // The intent must exist.
    let err = store
        .lock_coins(&[outpoint(4, 0)], Some(other + 100), NOW)
        .expect_err("unknown intent");
    assert!(matches!(err, StoreError::Sqlite { .. }), "{err}");

    assert_eq!(store.unlock_coins_for_intent(intent).expect("unlock"), 2);
    assert_eq!(
        store.unlock_coins_for_intent(intent).expect("unlock again"),
        0
    );
    assert!(store.unlock_coin(&outpoint(2, 0)).expect("unlock"));
    assert!(!store.unlock_coin(&outpoint(2, 0)).expect("unlock again"));
    assert!(store.locked_coins().expect("list").is_empty());

    store
        .write(|tx| {
            tx.lock_coins(&[outpoint(5, 7)], Some(other), NOW)?;
            assert_eq!(tx.coin_locks()?, vec![(outpoint(5, 7), Some(other))]);
            assert!(tx.unlock_coin(&outpoint(5, 7))?);
            tx.lock_coins(&[outpoint(6, 0)], Some(other), NOW)?;
            assert_eq!(tx.unlock_coins_for_intent(other)?, 1);
            Ok(())
        })
        .expect("write");
    assert!(store.locked_coins().expect("list").is_empty());
}

// ---- atomicity and counters --------------------------------------------------------------

/// Writes to every table, then fails in the way `fail` says.
fn write_everything_then(store: &mut Store, fail: StoreError) -> Result<(), StoreError> {
    store.write(|tx| {
        tx.put_meta("k", b"v")?;
        tx.put_watch(b"w", "confirm", b"r")?;
        tx.put_channel(&channel_id(1), &peer_id(1), b"\x01c", NOW)?;
        let intent = tx.insert_open_intent(&new_intent(1), NOW)?;
        tx.lock_coins(&[outpoint(1, 0)], Some(intent), NOW)?;
        tx.push_event(b"e", NOW)?;
        Err(fail)
    })
}

fn assert_empty(store: &Store) {
    assert_eq!(store.get_meta("k").expect("read"), None);
    assert!(store.list_watches().expect("read").is_empty());
    assert!(store.list_channels().expect("read").is_empty());
    assert!(store.list_open_intents().expect("read").is_empty());
    assert!(store.locked_coins().expect("read").is_empty());
    assert!(store.pending_events(10).expect("read").is_empty());
}

#[test]
fn failing_closure_writes_nothing() {
    let mut store = Store::open_in_memory().expect("open");
    let before = store.stats();
    let err = write_everything_then(
        &mut store,
        StoreError::Aborted {
            reason: "test".into(),
        },
    )
    .expect_err("aborted");
    assert_eq!(err.to_string(), "write aborted: test");
    assert_empty(&store);
    assert_eq!(store.stats(), before, "a rolled-back write is not a commit");
}

#[test]
fn failing_helper_inside_closure_rolls_back_earlier_writes() {
    let mut store = Store::open_in_memory().expect("open");
    store
        .lock_coins(&[outpoint(9, 9)], None, NOW)
        .expect("lock");
    let err = store
        .write(|tx| {
            tx.put_meta("k", b"v")?;
            tx.push_event(b"e", NOW)?;
            tx.lock_coins(&[outpoint(9, 9)], None, NOW)
        })
        .expect_err("conflict");
    assert!(matches!(err, StoreError::CoinAlreadyLocked { .. }), "{err}");
    assert_eq!(store.get_meta("k").expect("read"), None);
    assert!(store.pending_events(10).expect("read").is_empty());
    // The store stays usable.
    store.put_meta("k", b"after").expect("write after failure");
    assert_eq!(store.get_meta("k").expect("read"), Some(b"after".to_vec()));
}

#[test]
fn panicking_closure_writes_nothing() {
    let mut store = Store::open_in_memory().expect("open");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = store.write(|tx| -> Result<(), StoreError> {
            tx.put_meta("k", b"v")?;
            panic!("closure panics mid-write");
        });
    }));
    assert!(result.is_err());
    assert_eq!(store.get_meta("k").expect("read"), None);
    store.put_meta("k", b"v").expect("usable after the panic");
}

#[test]
fn failing_closure_on_file_writes_nothing_after_reopen() {
    let db = TempDb::new("atomic");
    {
        let mut store = Store::open(db.path()).expect("open");
        let _ = write_everything_then(
            &mut store,
            StoreError::Aborted {
                reason: "test".into(),
            },
        );
    }
    let store = Store::open(db.path()).expect("reopen");
    assert_empty(&store);
}

#[test]
fn each_write_is_exactly_one_commit() {
    let db = TempDb::new("counters");
    let mut store = Store::open(db.path()).expect("open");
    let opened = store.stats();
    assert_eq!(
        opened.commits,
        u64::from(SCHEMA_VERSION),
        "one commit per migration"
    );
    assert_eq!(opened.wal_restarts, 1);
    assert_eq!(
        opened.setup_syncs, 5,
        "a new file: the switch to WAL (4) and the first WAL sync's directory sync (1)"
    );
    assert_eq!(opened.fsyncs, opened.commits + 1 + 5);

    let mut expected = opened.commits;
    let mut check = |store: &Store, what: &str| {
        expected += 1;
        let stats = store.stats();
        assert_eq!(stats.commits, expected, "after {what}");
        assert_eq!(
            stats.fsyncs,
            stats.commits + stats.wal_restarts + 2 * stats.checkpoints + stats.setup_syncs,
            "after {what}"
        );
    };
    store.put_meta("k", b"v").expect("write");
    check(&store, "put_meta");
    store.delete_meta("k").expect("write");
    check(&store, "delete_meta");
    store.put_watch(b"w", "confirm", b"r").expect("write");
    check(&store, "put_watch");
    store.delete_watch(b"w").expect("write");
    check(&store, "delete_watch");
    store
        .put_channel(&channel_id(1), &peer_id(1), b"c", NOW)
        .expect("write");
    check(&store, "put_channel");
    store.delete_channel(&channel_id(1)).expect("write");
    check(&store, "delete_channel");
    let id = store
        .insert_open_intent(&new_intent(1), NOW)
        .expect("write");
    check(&store, "insert_open_intent");
    store
        .update_open_intent_status(id, OpenIntentStatus::Failed, None, Some("x"), NOW)
        .expect("write");
    check(&store, "update_open_intent_status");
    let seq = store.push_event(b"e", NOW).expect("write");
    check(&store, "push_event");
    store.mark_event_handled(seq).expect("write");
    check(&store, "mark_event_handled");
    store
        .lock_coins(&[outpoint(1, 0), outpoint(1, 1)], Some(id), NOW)
        .expect("write");
    check(&store, "lock_coins");
    store.unlock_coin(&outpoint(1, 0)).expect("write");
    check(&store, "unlock_coin");
    store.unlock_coins_for_intent(id).expect("write");
    check(&store, "unlock_coins_for_intent");
    store
        .write(|tx| {
            tx.put_meta("a", b"1")?;
            tx.put_meta("b", b"2")?;
            tx.push_event(b"e", NOW)?;
            Ok(())
        })
        .expect("write");
    check(&store, "a three-change write");

    // Reads and failed writes are not commits.
    let before = store.stats();
    store.list_channels().expect("read");
    store.pending_events(10).expect("read");
    let _ = store.update_open_intent_status(id + 1, OpenIntentStatus::Ready, None, None, NOW);
    assert_eq!(store.stats(), before);
    assert_eq!(
        before.checkpoints, 0,
        "small writes stay under the checkpoint threshold"
    );
}

#[test]
fn large_wal_is_checkpointed_and_counted() {
    let db = TempDb::new("checkpoint");
    let mut store = Store::open(db.path()).expect("open");
    let record = vec![0xab; 256 * 1024];
    let writes = CHECKPOINT_WAL_BYTES / (256 * 1024) + 4;
    for n in 0..writes {
        store.put_meta(&format!("big-{n}"), &record).expect("write");
    }
    let stats = store.stats();
    assert!(stats.checkpoints >= 1, "{stats:?}");
    assert!(stats.wal_restarts >= 2, "{stats:?}");
    assert_eq!(
        stats.fsyncs,
        stats.commits + stats.wal_restarts + 2 * stats.checkpoints + stats.setup_syncs
    );
    let wal = std::fs::metadata(companion(db.path(), "-wal"))
        .expect("wal")
        .len();
    assert!(
        wal < CHECKPOINT_WAL_BYTES,
        "the wal restarted and was truncated: {wal}"
    );
    drop(store);
    let store = Store::open(db.path()).expect("reopen");
    for n in 0..writes {
        assert_eq!(
            store
                .get_meta(&format!("big-{n}"))
                .expect("read")
                .map(|v| v.len()),
            Some(record.len())
        );
    }
}

// ---- persistence -------------------------------------------------------------------------

#[test]
fn everything_survives_reopen() {
    let db = TempDb::new("reopen");
    let (intent, seqs) = {
        let mut store = Store::open(db.path()).expect("open");
        store.put_meta("tip", b"hash").expect("write");
        store.put_watch(b"w1", "spend", b"\x01rec").expect("write");
        store
            .put_channel(&channel_id(1), &peer_id(1), b"\x01chan", NOW)
            .expect("write");
        let intent = store
            .insert_open_intent(&new_intent(1), NOW)
            .expect("write");
        store
            .update_open_intent_status(
                intent,
                OpenIntentStatus::ChannelPending,
                Some(&channel_id(1)),
                None,
                NOW + 1,
            )
            .expect("write");
        store
            .lock_coins(&[outpoint(1, 2)], Some(intent), NOW)
            .expect("write");
        let seqs = [
            store.push_event(b"\x01first", NOW).expect("write"),
            store.push_event(b"\x01second", NOW).expect("write"),
        ];
        store.mark_event_handled(seqs[0]).expect("write");
        (intent, seqs)
    };
    let mut store = Store::open(db.path()).expect("reopen");
    assert_eq!(
        store.stats(),
        StoreStats::default(),
        "opening writes nothing"
    );
    assert_eq!(store.get_meta("tip").expect("read"), Some(b"hash".to_vec()));
    assert_eq!(
        store.list_watches().expect("read"),
        vec![(b"w1".to_vec(), "spend".into(), b"\x01rec".to_vec())]
    );
    let channel = store
        .get_channel(&channel_id(1))
        .expect("read")
        .expect("present");
    assert_eq!(
        (channel.record.as_slice(), channel.updated_at),
        (&b"\x01chan"[..], NOW)
    );
    let got = store
        .get_open_intent(intent)
        .expect("read")
        .expect("present");
    assert_eq!(got.status, OpenIntentStatus::ChannelPending);
    assert_eq!(got.channel_id, Some(channel_id(1)));
    assert_eq!(store.locked_coins().expect("read"), vec![outpoint(1, 2)]);
    // The unhandled event is still queued, and new events come after it.
    assert_eq!(
        store.pending_events(10).expect("read"),
        vec![(seqs[1], b"\x01second".to_vec())]
    );
    assert!(store.push_event(b"\x01third", NOW).expect("write") > seqs[1]);
    // A fresh process's first write: the commit and the directory (the WAL left by the last
    // process, never checkpointed at close, is appended to: no new header).
    assert_eq!(store.stats().fsyncs, 2);
}

#[test]
fn second_connection_shares_the_file() {
    let db = TempDb::new("second");
    let mut store = Store::open(db.path()).expect("open");
    let wallet = store.open_connection().expect("second connection");
    // What BDK's persister would do: its own tables, its own version bookkeeping.
    wallet
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS bdk_schemas (name TEXT PRIMARY KEY NOT NULL, \
             version INTEGER NOT NULL) STRICT; \
             REPLACE INTO bdk_schemas (name, version) VALUES ('bdk_wallet', 1);",
        )
        .expect("wallet tables");
    store.put_meta("k", b"v").expect("store write");
    let from_wallet: Vec<u8> = wallet
        .query_row("SELECT value FROM meta WHERE key = 'k'", [], |row| {
            row.get(0)
        })
        .expect("wallet sees store writes");
    assert_eq!(from_wallet, b"v".to_vec());
    drop(wallet);
    drop(store);
    let store = Store::open(db.path()).expect("reopen");
    assert_eq!(
        store.schema_version().expect("version"),
        i64::from(SCHEMA_VERSION)
    );
    let bdk: i64 = store
        .conn
        .query_row("SELECT version FROM bdk_schemas", [], |row| row.get(0))
        .expect("bdk table kept");
    assert_eq!(bdk, 1);
}

// ---- migrations --------------------------------------------------------------------------

#[test]
fn no_migration_creates_bdk_tables() {
    for sql in MIGRATIONS {
        assert!(!sql.to_lowercase().contains("bdk_"), "{sql}");
    }
}

/// Inserts sample rows that exist at schema `version` (0 = no Tern tables), through raw SQL
/// of that version, so that later code changes cannot make them look different.
fn insert_samples(conn: &Connection, version: usize) {
    // A foreign table present at every version (as BDK's would be).
    conn.execute_batch(
        "CREATE TABLE bdk_sample (x INTEGER NOT NULL); INSERT INTO bdk_sample VALUES (42);",
    )
    .expect("foreign table");
    if version >= 1 {
        conn.execute_batch(&format!(
            "INSERT INTO meta VALUES ('v1', x'01'); \
             INSERT INTO chain_watches VALUES (x'0101', 'confirm', x'01aa'); \
             INSERT INTO channels VALUES (x'{c}', x'{p}', x'01cc', {NOW}); \
             INSERT INTO open_intents (peer_id, address, amount_sat, push_msat, public, status, \
                 channel_id, failure_reason, created_at, updated_at) \
                 VALUES (x'{p}', '1.2.3.4:9735', 50000, 0, 1, 'channel_pending', x'{c}', NULL, \
                 {NOW}, {NOW}); \
             INSERT INTO events (record, created_at) VALUES (x'01ee', {NOW}); \
             INSERT INTO coin_locks VALUES ('{o}', 1, {NOW});",
            c = "11".repeat(32),
            p = format!("02{}", "22".repeat(32)),
            o = outpoint(3, 1),
        ))
        .expect("v1 samples");
    }
    // When adding migration N + 1, add the rows of version N + 1 here.
}

/// Checks that the rows of `version` read back through the current API.
fn check_samples(store: &Store, version: usize) {
    let foreign: i64 = store
        .conn
        .query_row("SELECT x FROM bdk_sample", [], |row| row.get(0))
        .expect("foreign table kept");
    assert_eq!(foreign, 42);
    if version >= 1 {
        assert_eq!(store.get_meta("v1").expect("meta"), Some(vec![1]));
        assert_eq!(
            store.list_watches().expect("watches"),
            vec![(vec![1, 1], "confirm".into(), vec![1, 0xaa])]
        );
        let channel = store
            .get_channel(&[0x11; 32])
            .expect("channel")
            .expect("present");
        let mut peer = [0x22; 33];
        peer[0] = 0x02;
        assert_eq!(channel.peer_id, peer);
        assert_eq!(channel.record, vec![1, 0xcc]);
        let intent = store.get_open_intent(1).expect("intent").expect("present");
        assert_eq!(intent.status, OpenIntentStatus::ChannelPending);
        assert_eq!(intent.channel_id, Some([0x11; 32]));
        assert_eq!((intent.amount_sat, intent.public), (50_000, true));
        assert_eq!(
            store.pending_events(10).expect("events"),
            vec![(1, vec![1, 0xee])]
        );
        assert_eq!(
            store.coin_locks().expect("locks"),
            vec![(outpoint(3, 1), Some(1))]
        );
    } else {
        assert_empty(store);
    }
}

#[test]
fn every_earlier_schema_version_opens() {
    for version in 0..=MIGRATIONS.len() {
        let db = TempDb::new(&format!("schema-v{version}"));
        {
            let mut conn = Connection::open(db.path()).expect("raw open");
            let applied = migrations::migrate(&mut conn, &MIGRATIONS[..version]).expect("migrate");
            assert_eq!(applied as usize, version);
            insert_samples(&conn, version);
        }
        let mut store = Store::open(db.path()).expect("open an older database");
        assert_eq!(
            store.schema_version().expect("version"),
            i64::from(SCHEMA_VERSION)
        );
        assert_eq!(
            store.stats().commits as usize,
            MIGRATIONS.len() - version,
            "one commit per missing migration"
        );
        check_samples(&store, version);
        // The migrated database takes new writes of every kind.
        store.put_meta("after", b"x").expect("write");
        let intent = store
            .insert_open_intent(&new_intent(5), NOW)
            .expect("write");
        store
            .lock_coins(&[outpoint(8, 0)], Some(intent), NOW)
            .expect("write");
        store.push_event(b"\x01new", NOW).expect("write");
    }
}

#[test]
fn newer_database_is_refused() {
    let db = TempDb::new("newer");
    {
        let mut store = Store::open(db.path()).expect("open");
        store.put_meta("k", b"v").expect("write");
        store
            .conn
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump");
    }
    let err = Store::open(db.path()).expect_err("newer schema");
    match &err {
        StoreError::SchemaTooNew { found, supported } => {
            assert_eq!(*found, i64::from(SCHEMA_VERSION) + 1);
            assert_eq!(*supported, SCHEMA_VERSION);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(
        err.to_string()
            .contains("is newer than this build supports"),
        "{err}"
    );
    // Nothing was touched.
    let conn = Connection::open(db.path()).expect("raw open");
    let value: Vec<u8> = conn
        .query_row("SELECT value FROM meta WHERE key = 'k'", [], |row| {
            row.get(0)
        })
        .expect("data intact");
    assert_eq!(value, b"v".to_vec());
}

#[test]
fn a_later_migration_keeps_data_and_a_failed_one_changes_nothing() {
    let db = TempDb::new("later");
    let mut store = Store::open(db.path()).expect("open");
    store.put_meta("k", b"v").expect("write");

    // A migration that fails half-way leaves the version and the schema as they were.
    let mut failing = MIGRATIONS.to_vec();
    failing.push("CREATE TABLE half_done (x INTEGER); THIS IS NOT SQL;");
    let err = store.migrate(&failing).expect_err("bad migration");
    assert!(
        matches!(err, StoreError::Migration { version, .. } if version == SCHEMA_VERSION + 1),
        "{err}"
    );
    assert_eq!(
        store.schema_version().expect("version"),
        i64::from(SCHEMA_VERSION)
    );
    let half_done: i64 = store
        .conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'half_done'",
            [],
            |row| row.get(0),
        )
        .expect("schema query");
    assert_eq!(half_done, 0);

    // A good one is applied once, keeps the data, and counts one commit.
    let mut later = MIGRATIONS.to_vec();
    later.push("ALTER TABLE meta ADD COLUMN note TEXT;");
    let commits = store.stats().commits;
    store.migrate(&later).expect("migrate");
    store.migrate(&later).expect("idempotent");
    assert_eq!(store.stats().commits, commits + 1);
    assert_eq!(
        store.schema_version().expect("version"),
        i64::from(SCHEMA_VERSION) + 1
    );
    assert_eq!(store.get_meta("k").expect("read"), Some(b"v".to_vec()));
    drop(store);
    // This build's migrations now see a newer database.
    assert!(matches!(
        Store::open(db.path()),
        Err(StoreError::SchemaTooNew { .. })
    ));
}

// ---- kills and threads -------------------------------------------------------------------

/// Set (to a database path) in the child process of the kill test.
const KILL_CHILD_ENV: &str = "TERN_STORE_KILL_CHILD_DB";

/// The child half of `kill_mid_write_keeps_every_acknowledged_commit`: writes until killed,
/// printing `acked N` after each commit returns. Does nothing unless spawned by that test.
#[test]
fn kill_child_writer() {
    let Some(path) = std::env::var_os(KILL_CHILD_ENV) else {
        return;
    };
    let mut store = Store::open(PathBuf::from(path)).expect("child open");
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        store
            .write(|tx| {
                tx.put_meta(&format!("k{i}"), &i.to_be_bytes())?;
                tx.push_event(&i.to_be_bytes(), NOW)?;
                Ok(())
            })
            .expect("child write");
        writeln!(out, "acked {i}").expect("child stdout");
        out.flush().expect("child stdout");
    }
}

#[test]
fn kill_mid_write_keeps_every_acknowledged_commit() {
    if std::env::var_os(KILL_CHILD_ENV).is_some() {
        return;
    }
    let db = TempDb::new("kill");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "store::tests::kill_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL_CHILD_ENV, db.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut acked: Option<u64> = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("child output");
        if let Some(n) = line.strip_prefix("acked ") {
            let n = n.parse().expect("a number");
            acked = Some(n);
            if n >= 100 {
                break;
            }
        }
    }
    // SIGKILL on unix: no destructor, no final checkpoint; the child is most likely mid-write.
    child.kill().expect("kill the writer");
    child.wait().expect("reap the writer");
    let acked = acked.expect("the writer acknowledged commits");

    let store = Store::open(db.path()).expect("reopen after the kill");
    let integrity: String = store
        .conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity check");
    assert_eq!(integrity, "ok");
    for i in 0..=acked {
        assert_eq!(
            store.get_meta(&format!("k{i}")).expect("read"),
            Some(i.to_be_bytes().to_vec()),
            "acknowledged commit {i} lost"
        );
    }
    // Each commit wrote a meta row and an event together: the survivors pair up exactly.
    let events = store.pending_events(usize::MAX).expect("events");
    assert!(events.len() as u64 > acked);
    for (n, (_, record)) in events.iter().enumerate() {
        assert_eq!(record, &(n as u64).to_be_bytes().to_vec());
        assert!(store.get_meta(&format!("k{n}")).expect("read").is_some());
    }
    let last = events.len();
    assert_eq!(store.get_meta(&format!("k{last}")).expect("read"), None);
}

#[test]
fn store_and_error_can_cross_threads() {
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send::<Store>();
    assert_send_sync::<StoreError>();
    assert_send_sync::<StoreStats>();

    let db = TempDb::new("threads");
    let mut store = Store::open(db.path()).expect("open");
    store.put_meta("k", b"main").expect("write");
    let store = std::thread::spawn(move || {
        store
            .put_meta("k", b"thread")
            .expect("write on another thread");
        store
    })
    .join()
    .expect("thread");
    assert_eq!(store.get_meta("k").expect("read"), Some(b"thread".to_vec()));
}

#[test]
fn writes_wait_for_the_other_connection() {
    let db = TempDb::new("busy");
    let mut store = Store::open(db.path()).expect("open");
    let path = db.path().to_path_buf();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    // The wallet's connection holds the write lock briefly on another thread.
    let holder = std::thread::spawn(move || {
        let store = Store::open(&path).expect("open");
        let mut wallet = store.open_connection().expect("second connection");
        let tx = wallet
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .expect("lock");
        tx.execute("INSERT INTO meta VALUES ('wallet', x'01')", [])
            .expect("insert");
        locked_tx.send(()).expect("signal");
        std::thread::sleep(std::time::Duration::from_millis(300));
        tx.commit().expect("commit");
    });
    locked_rx.recv().expect("holder locked");
    // busy_timeout makes this wait for the lock instead of failing with SQLITE_BUSY.
    store
        .put_meta("store", b"\x02")
        .expect("write after waiting");
    holder.join().expect("holder");
    assert_eq!(store.get_meta("wallet").expect("read"), Some(vec![1]));
}

/// Set (to a database path) in the child process of the strace test.
const STRACE_CHILD_ENV: &str = "TERN_STORE_STRACE_CHILD_DB";

/// The child half of `fsync_estimate_matches_strace`: a new database, small writes, enough
/// large ones for a checkpoint, then the stats. Does nothing unless spawned by that test.
#[test]
fn strace_child_writer() {
    let Some(path) = std::env::var_os(STRACE_CHILD_ENV) else {
        return;
    };
    let mut store = Store::open(PathBuf::from(path)).expect("child open");
    for i in 0..20u64 {
        store
            .push_event(&i.to_be_bytes(), NOW)
            .expect("small write");
    }
    let record = vec![0x5a; 256 * 1024];
    for n in 0..CHECKPOINT_WAL_BYTES / (256 * 1024) + 4 {
        store
            .put_meta(&format!("big-{n}"), &record)
            .expect("large write");
    }
    // A manual checkpoint copies the rest; a second one has nothing to copy.
    store.checkpoint().expect("checkpoint");
    let checkpoints = store.stats().checkpoints;
    store.checkpoint().expect("checkpoint again");
    assert_eq!(store.stats().checkpoints, checkpoints);
    // A last write: its frames stay in the WAL at close (no checkpoint on close, 0 syncs).
    store.push_event(b"last", NOW).expect("small write");
    println!("STATS {}", store.stats().fsyncs);
}

/// Runs `strace_child_writer` under `strace` and compares the `fsync`/`fdatasync` calls with
/// `StoreStats::fsyncs` (exactly: SQLite runs no checkpoint at close). Skipped where `strace` is
/// missing or not permitted.
#[test]
fn fsync_estimate_matches_strace() {
    if std::env::var_os(STRACE_CHILD_ENV).is_some() {
        return;
    }
    let db = TempDb::new("strace");
    let trace = companion(db.path(), ".strace");
    let exe = std::env::current_exe().expect("test binary");
    let output = match Command::new("strace")
        .arg("-f")
        .args(["-e", "trace=fsync,fdatasync"])
        .arg("-o")
        .arg(&trace)
        .arg(exe)
        .args([
            "--exact",
            "store::tests::strace_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(STRACE_CHILD_ENV, db.path())
        .output()
    {
        Ok(output) => output,
        Err(_) => return, // no strace here
    };
    let traced = std::fs::read_to_string(&trace).unwrap_or_default();
    let _ = std::fs::remove_file(&trace);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() && stderr.contains("ptrace") {
        return; // tracing not permitted here
    }
    assert!(output.status.success(), "child failed: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let estimate: u64 = stdout
        .lines()
        .find_map(|line| line.split("STATS ").nth(1))
        .expect("child printed its stats")
        .trim()
        .parse()
        .expect("a number");
    // Count call starts (`-f` may split a call into "unfinished" and "resumed" lines).
    let syncs = traced
        .lines()
        .filter(|line| line.contains("fsync(") || line.contains("fdatasync("))
        .count() as u64;
    assert!(estimate > 20, "{estimate}");
    assert_eq!(
        syncs, estimate,
        "strace saw {syncs}, the store estimated {estimate}"
    );
}
