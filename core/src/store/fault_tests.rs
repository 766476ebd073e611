//! Storage faults at the store level: a full disk (SQLite's `max_page_count`), a file that is
//! not a database, a truncated one, a database from a newer build. Each is a clear error and
//! leaves the file's bytes as they were; a full disk leaves nothing of the failed write and the
//! store works again once there is space.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::migrations::MIGRATIONS;
use super::*;

const NOW: u64 = 1_700_000_000;

/// A private directory per test (the store's files and companions inside), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tern-store-faults-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("tern.sqlite")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every file in `dir` with its bytes, by name; not the `-shm` index (SQLite rebuilds it from
/// the WAL at every open, it holds no data) nor an empty `-wal` (opening a WAL database
/// creates one; empty, it holds nothing).
pub(super) fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read file"),
            )
        })
        .filter(|(name, bytes)| {
            let empty_wal = name.ends_with("-wal") && bytes.is_empty();
            !(name.ends_with("-shm") || empty_wal)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_full_disk_fails_the_write_keeps_nothing_of_it_and_the_next_write_works() {
    let dir = TempDir::new("full");
    let mut store = Store::open(dir.db()).expect("open");
    store.put_meta("before", b"kept").expect("write");
    let commits = store.stats().commits;
    // No page to grow into: a write of 64 KiB needs ~16.
    store.dev_limit_growth(Some(0)).expect("cap");
    let big = vec![0xab; 64 * 1024];
    let err = store
        .write(|tx| {
            tx.put_meta("half", b"x")?;
            tx.put_meta("big", &big)
        })
        .expect_err("the disk is full");
    assert!(err.is_disk_full(), "{err}");
    assert!(
        err.to_string().contains("database or disk is full"),
        "{err}"
    );
    assert_eq!(store.stats().commits, commits, "no commit counted");
    // Nothing of the failed transaction was kept; what was there before still is.
    assert_eq!(store.get_meta("half").expect("read"), None);
    assert_eq!(store.get_meta("big").expect("read"), None);
    assert_eq!(
        store.get_meta("before").expect("read"),
        Some(b"kept".to_vec())
    );
    // A typed helper fails the same way.
    let err = store.push_event(&big, NOW).expect_err("still full");
    assert!(err.is_disk_full(), "{err}");
    assert_eq!(store.pending_events(10).expect("read"), vec![]);
    // Space is back: the same write works, on the same connection.
    store.dev_limit_growth(None).expect("uncap");
    store
        .put_meta("big", &big)
        .expect("write after space is back");
    assert_eq!(store.get_meta("big").expect("read"), Some(big));
    drop(store);
    let store = Store::open(dir.db()).expect("reopen");
    assert_eq!(
        store.get_meta("before").expect("read"),
        Some(b"kept".to_vec())
    );
}

#[test]
fn a_full_disk_at_creation_is_a_clear_error_and_a_later_open_creates_the_schema() {
    let dir = TempDir::new("full-create");
    // Two pages cannot hold the schema's tables.
    let err = Store::dev_open_with_max_pages(dir.db(), 2).expect_err("no room for the schema");
    assert!(err.is_disk_full(), "{err}");
    assert!(
        matches!(err, StoreError::Migration { version: 1, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("database or disk is full"),
        "{err}"
    );
    // The failed migration left version 0 (its transaction rolled back): a later open with
    // space migrates from scratch.
    let store = Store::open(dir.db()).expect("open with space");
    assert_eq!(
        store.schema_version().expect("version"),
        i64::from(SCHEMA_VERSION)
    );
    assert_eq!(store.list_channels().expect("read"), vec![]);
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_as_it_was() {
    let dir = TempDir::new("garbage");
    std::fs::write(dir.db(), vec![0x5a; 8192]).expect("garbage");
    let before = snapshot(&dir.0);
    let err = Store::open(dir.db()).expect_err("not a database");
    assert!(
        matches!(err, StoreError::Open { .. }),
        "an open error naming the file: {err}"
    );
    let shown = err.to_string();
    assert!(shown.contains("file is not a database"), "{shown}");
    assert!(shown.contains(&dir.db().display().to_string()), "{shown}");
    assert_eq!(snapshot(&dir.0), before, "nothing written");
}

#[test]
fn a_truncated_database_is_refused_and_left_as_it_was() {
    let dir = TempDir::new("truncated");
    {
        let mut store = Store::open(dir.db()).expect("open");
        for n in 0..40u8 {
            store
                .put_channel(&[n; 32], &[2; 33], &vec![n; 2000], NOW)
                .expect("write");
        }
        store.checkpoint().expect("checkpoint");
    }
    // Everything in the database file, then its second half lost (a partial copy, a bad
    // restore).
    let _ = std::fs::remove_file(companion(&dir.db(), "-wal"));
    let _ = std::fs::remove_file(companion(&dir.db(), "-shm"));
    let bytes = std::fs::read(dir.db()).expect("read");
    std::fs::write(dir.db(), &bytes[..bytes.len() / 2]).expect("truncate");
    let before = snapshot(&dir.0);
    let result = Store::open(dir.db()).and_then(|store| store.list_channels().map(|_| store));
    let err = result.expect_err("a truncated database is an error, not fewer channels");
    assert!(
        err.to_string().contains("malformed") || err.to_string().contains("corrupt"),
        "{err}"
    );
    assert_eq!(snapshot(&dir.0), before, "nothing written");
}

#[test]
fn a_database_from_a_newer_build_is_refused_by_version_and_left_as_it_was() {
    let dir = TempDir::new("newer");
    {
        let mut store = Store::open(dir.db()).expect("open");
        store.put_meta("k", b"v").expect("write");
        store.checkpoint().expect("checkpoint");
        store
            .conn
            .pragma_update(None, "user_version", SCHEMA_VERSION + 3)
            .expect("bump");
    }
    let before = snapshot(&dir.0);
    let err = Store::open(dir.db()).expect_err("newer");
    assert_eq!(
        err.to_string(),
        format!(
            "database schema version {} is newer than this build supports ({}); upgrade the app",
            SCHEMA_VERSION + 3,
            MIGRATIONS.len()
        )
    );
    assert_eq!(snapshot(&dir.0), before, "nothing written");
}
