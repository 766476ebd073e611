//! Storage faults at start (issue 17 §4): a seed that is not the database's node, a database
//! from before node ids were recorded, a database from a newer build, a file that is not a
//! database, a truncated one, a read-only data dir. Each is a clear error at start and leaves
//! every file in the data dir as it was. Also: the data dir is 0700, the database 0600, and the
//! seed is never in the database.

mod common;
use common::files::snapshot;

use std::path::{Path, PathBuf};

use bitcoin::Network;
use tern_core::node::{Builder, Node, NodeError};

/// No server: nothing here syncs (start does not call the chain source).
const NO_ESPLORA: &str = "http://127.0.0.1:1";

/// Distinctive seeds (a run of one byte would also match unrelated bytes).
const SEED_A: [u8; 32] = *b"tern storage-fault seed A ......";
const SEED_B: [u8; 32] = *b"tern storage-fault seed B ......";

fn temp_dir(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tern-storage-faults-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn builder(dir: &Path, seed: [u8; 32]) -> Builder {
    Builder::new(Network::Regtest, dir, NO_ESPLORA).seed(seed)
}

async fn start(dir: &Path, seed: [u8; 32]) -> Result<Node, NodeError> {
    builder(dir, seed).start().await
}

/// A data dir holding a started-then-stopped node of `seed`.
async fn made(tag: &str, seed: [u8; 32]) -> (PathBuf, String) {
    let dir = temp_dir(tag);
    let node = start(&dir, seed).await.expect("first start");
    let id = node.node_id().to_string();
    node.stop().await;
    (dir, id)
}

fn raw(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("tern.sqlite")).expect("raw open")
}

fn recorded_node_id(dir: &Path) -> Option<Vec<u8>> {
    raw(dir)
        .query_row("SELECT value FROM meta WHERE key = 'node_id'", [], |r| {
            r.get(0)
        })
        .ok()
}

#[tokio::test]
async fn a_new_database_records_its_node_and_another_seed_is_refused_by_name() {
    let (dir, id_a) = made("wrong-seed", SEED_A).await;
    let recorded = recorded_node_id(&dir).expect("node id recorded at creation");
    assert_eq!(
        bitcoin::hex::DisplayHex::to_lower_hex_string(&recorded[..]),
        id_a
    );
    let before = snapshot(&dir);
    let err = start(&dir, SEED_B).await.expect_err("another node's seed");
    let id_b = tern_core::proto::keys::KeysManager::new(&SEED_B, Network::Regtest)
        .and_then(|k| k.node_id())
        .expect("keys")
        .to_string();
    match &err {
        NodeError::WrongSeed { database, seed } => {
            assert_eq!(database.to_string(), id_a);
            assert_eq!(seed.to_string(), id_b);
        }
        other => panic!("expected WrongSeed, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!(
            "this database belongs to node {id_a}, the seed is node {id_b}: refusing to start"
        )),
        "{shown}"
    );
    assert!(
        !shown.contains("Descriptor"),
        "not a descriptor error: {shown}"
    );
    assert_eq!(snapshot(&dir), before, "the refused start wrote nothing");
    // The right seed still opens it.
    let again = start(&dir, SEED_A).await.expect("its own seed");
    assert_eq!(again.node_id().to_string(), id_a);
    again.stop().await;
}

/// A database from a build before node ids were recorded (today's, without the row): a seed
/// whose wallet opens it records its node id; another seed is refused naming the mismatch,
/// and writes nothing.
#[tokio::test]
async fn an_older_database_gets_its_node_id_from_a_matching_seed_only() {
    let (dir, id_a) = made("older", SEED_A).await;
    raw(&dir)
        .execute("DELETE FROM meta WHERE key = 'node_id'", [])
        .expect("as an older build left it");
    let before = snapshot(&dir);
    let err = start(&dir, SEED_B).await.expect_err("another seed");
    let shown = err.to_string();
    println!("older database, another seed: {shown}");
    assert!(matches!(err, NodeError::InvalidInput { .. }), "{err:?}");
    assert!(
        shown.contains("this database's wallet was made from another seed"),
        "{shown}"
    );
    assert_eq!(snapshot(&dir), before, "the refused start wrote nothing");
    assert_eq!(recorded_node_id(&dir), None);
    let node = start(&dir, SEED_A).await.expect("its own seed");
    node.stop().await;
    let recorded = recorded_node_id(&dir).expect("recorded at the first matching open");
    assert_eq!(
        bitcoin::hex::DisplayHex::to_lower_hex_string(&recorded[..]),
        id_a
    );
    // From now on another seed is refused by name.
    assert!(matches!(
        start(&dir, SEED_B).await,
        Err(NodeError::WrongSeed { .. })
    ));
}

#[tokio::test]
async fn a_database_from_a_newer_tern_is_refused_with_its_version() {
    let (dir, _) = made("newer", SEED_A).await;
    let ours = tern_core::store::SCHEMA_VERSION;
    raw(&dir)
        .pragma_update(None, "user_version", ours + 1)
        .expect("as a newer build left it");
    let before = snapshot(&dir);
    let err = start(&dir, SEED_A).await.expect_err("newer");
    assert_eq!(
        err.to_string(),
        format!(
            "storage: database schema version {} is newer than this build supports ({ours}); \
             upgrade the app",
            ours + 1
        )
    );
    assert_eq!(snapshot(&dir), before, "nothing written");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_kept() {
    let dir = temp_dir("garbage");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("tern.sqlite"), vec![0x5a; 16384]).expect("garbage");
    let before = snapshot(&dir);
    let err = start(&dir, SEED_A).await.expect_err("not a database");
    let shown = err.to_string();
    println!("not a database: {shown}");
    assert!(shown.contains("file is not a database"), "{shown}");
    assert!(shown.contains("tern.sqlite"), "names the file: {shown}");
    assert_eq!(snapshot(&dir), before, "nothing overwritten");
}

#[tokio::test]
async fn a_truncated_database_is_refused_and_kept() {
    let (dir, _) = made("truncated", SEED_A).await;
    {
        // Everything into the database file, then its second half lost.
        let conn = raw(&dir);
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
    }
    let db = dir.join("tern.sqlite");
    let bytes = std::fs::read(&db).expect("read");
    std::fs::write(&db, &bytes[..bytes.len() / 2]).expect("truncate");
    let before = snapshot(&dir);
    let err = start(&dir, SEED_A).await.expect_err("truncated");
    let shown = err.to_string();
    println!("truncated: {shown}");
    assert!(
        shown.starts_with("storage: ") || shown.contains("wallet"),
        "{shown}"
    );
    assert!(
        shown.contains("malformed") || shown.contains("corrupt"),
        "{shown}"
    );
    assert_eq!(snapshot(&dir), before, "nothing overwritten");
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_is_0700_the_database_0600_and_the_seed_is_not_in_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("modes");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let node = start(&dir, SEED_A).await.expect("start");
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "data dir");
    node.stop().await;
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    // The seed, its hex, and the node secret derived from it are in no file of the dir.
    let keys = tern_core::proto::keys::KeysManager::new(&SEED_A, Network::Regtest).expect("keys");
    let node_secret = keys.node_secret_key().expect("node key").secret_bytes();
    let hex = bitcoin::hex::DisplayHex::to_lower_hex_string(&SEED_A[..]);
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        for (what, needle) in [
            ("the seed", &SEED_A[..]),
            ("the seed's hex", hex.as_bytes()),
            ("the node secret key", &node_secret[..]),
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{what} is in {}",
                path.display()
            );
        }
    }
}

/// Set (to a data dir) in the child process of the read-only test, which runs in its own
/// mount namespace with the data dir bind-mounted read-only.
const READ_ONLY_CHILD_ENV: &str = "TERN_READ_ONLY_CHILD_DIR";

/// The child half of `a_read_only_data_dir_is_a_clear_error_at_start`: starts a node on the
/// read-only dir and prints the error. Does nothing unless spawned by that test.
#[tokio::test]
async fn read_only_child() {
    let Some(dir) = std::env::var_os(READ_ONLY_CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    assert!(
        std::fs::write(dir.join("probe"), b"x").is_err(),
        "the dir is read-only in the child"
    );
    match start(&dir, SEED_A).await {
        Ok(node) => {
            node.stop().await;
            println!("READ-ONLY-RESULT: started");
        }
        Err(e) => println!("READ-ONLY-RESULT: {e}"),
    }
}

/// CI runs as root, so `chmod` proves nothing: the child runs in a user and mount namespace
/// (`unshare -rm`) where the data dir is a read-only bind mount.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_read_only_data_dir_is_a_clear_error_at_start() {
    let (dir, _) = made("read-only", SEED_A).await;
    let before = snapshot(&dir);
    let exe = std::env::current_exe().expect("test binary");
    let script = r#"mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && exec "$2" --exact read_only_child --nocapture"#;
    let out = std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", script, "sh"])
        .arg(&dir)
        .arg(&exe)
        .env(READ_ONLY_CHILD_ENV, &dir)
        .output()
        .expect("unshare (util-linux) runs: the test needs user namespaces");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("READ-ONLY-RESULT: "))
        .unwrap_or_else(|| panic!("no result from the child: {stdout}"));
    println!("read-only data dir: {result}");
    assert!(result.contains("Read-only file system"), "{result}");
    assert!(
        result.contains(&dir.display().to_string()),
        "names the dir: {result}"
    );
    assert_eq!(snapshot(&dir), before, "nothing written");
}

/// The schema-version-1 golden database (core/tests/fixtures/records), as an older build left
/// it: no node id recorded. The first start with a seed records that seed's node id (its
/// wallet is created: the fixture has none); another seed is then refused by name.
#[tokio::test]
async fn the_golden_version_1_database_gets_the_node_id_of_its_first_seed() {
    let dir = temp_dir("golden-v1");
    std::fs::create_dir_all(&dir).expect("dir");
    let sql = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/records/store_schema_v1.sql"
    ))
    .expect("fixture");
    raw(&dir).execute_batch(&sql).expect("fixture loads");
    assert_eq!(
        recorded_node_id(&dir),
        None,
        "version 1 recorded no node id"
    );
    let node = start(&dir, SEED_A).await.expect("today's node opens it");
    let id_a = node.node_id().to_string();
    node.stop().await;
    let recorded = recorded_node_id(&dir).expect("recorded at the first open");
    assert_eq!(
        bitcoin::hex::DisplayHex::to_lower_hex_string(&recorded[..]),
        id_a
    );
    let before = snapshot(&dir);
    assert!(matches!(
        start(&dir, SEED_B).await,
        Err(NodeError::WrongSeed { .. })
    ));
    assert_eq!(snapshot(&dir), before, "the refused start wrote nothing");
}
