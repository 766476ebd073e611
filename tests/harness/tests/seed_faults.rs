//! The daemon's seed faults (issue 17 §4), as a user meets them: the `seed` file moved away
//! from a data dir that holds a database is refused before anything is written, saying what
//! is missing and how to restore it (it used to write a new seed and fail on a BDK descriptor
//! mismatch); another node's seed is refused by node id; a short seed file is refused and kept.

// This binary's TRACE log file, for the log-secret check (core/tests/common/trace.rs).
#[path = "../../../core/tests/common/trace.rs"]
mod trace;

// The data dir snapshot the core's storage-fault tests use.
#[path = "../../../core/tests/common/files.rs"]
mod files;
use files::snapshot;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tern_devnet::Devnet;
use tern_harness::procs::{self, DaemonProc};

const BIN: &str = env!("CARGO_BIN_EXE_tern");

/// The database's files only (`tern.sqlite` and its WAL).
fn database(dir: &Path) -> Vec<(String, Vec<u8>)> {
    snapshot(dir)
        .into_iter()
        .filter(|(name, _)| name.starts_with("tern.sqlite"))
        .collect()
}

/// Runs `tern daemon` on `dir` in the foreground (it must refuse to start): (exit code,
/// stderr).
fn daemon_once(devnet: &Devnet, dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args([
            "daemon",
            "--network",
            "regtest",
            "--esplora",
            &devnet.base_url(),
        ])
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_moved_seed_is_refused_before_anything_is_written_and_another_seed_by_node_id() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let devnet = rt.block_on(Devnet::start()).expect("devnet");
    let dir = procs::temp_dir("tern-seed-faults");
    let node_dir = dir.join("n");
    let mut d = DaemonProc::new(Path::new(BIN), "n", &node_dir, &devnet.base_url());
    let first = d.start(&[], Duration::from_secs(20)).expect("starts");
    let node_id = first["node_id"].as_str().expect("node id").to_string();
    d.stop(Duration::from_secs(20));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&node_dir), 0o700, "the data dir");
        assert_eq!(mode(&node_dir.join("seed")), 0o600, "the seed");
        assert_eq!(mode(&node_dir.join("tern.sqlite")), 0o600, "the database");
    }

    // The user moves `seed` away and starts the daemon.
    let kept = dir.join("seed.moved");
    std::fs::rename(node_dir.join("seed"), &kept).expect("move the seed away");
    let before = snapshot(&node_dir);
    let (code, err) = daemon_once(&devnet, &node_dir);
    assert_eq!(code, Some(1), "{err}");
    for says in [
        "holds a node's database",
        "but not its secret",
        "nothing has been written",
        "Restore this node's secret: put its 32-byte seed file back as",
        "or its BIP39 words (one line) in",
    ] {
        assert!(err.contains(says), "{says:?} in {err}");
    }
    assert!(!err.contains("Descriptor"), "{err}");
    assert!(!node_dir.join("seed").exists(), "no new seed written");
    assert_eq!(
        snapshot(&node_dir),
        before,
        "nothing written, not even the log"
    );

    // Another node's seed in its place: refused by node id, the database untouched.
    let db = database(&node_dir);
    std::fs::write(node_dir.join("seed"), [0x42u8; 32]).expect("another seed");
    let (code, err) = daemon_once(&devnet, &node_dir);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "this database belongs to node {node_id}, the seed is node "
        )),
        "{err}"
    );
    assert!(!err.contains("Descriptor"), "{err}");
    assert_eq!(database(&node_dir), db, "the database is unchanged");

    // A short seed file: refused and kept as it is.
    std::fs::write(node_dir.join("seed"), [0x42u8; 20]).expect("short seed");
    let (code, err) = daemon_once(&devnet, &node_dir);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("has 20 bytes, expected 32"), "{err}");
    assert_eq!(
        std::fs::read(node_dir.join("seed")).expect("seed"),
        vec![0x42u8; 20]
    );
    assert_eq!(database(&node_dir), db, "the database is unchanged");

    // The seed restored: the same node starts.
    std::fs::rename(&kept, node_dir.join("seed")).expect("restore the seed");
    let again = d.start(&[], Duration::from_secs(20)).expect("restarts");
    assert_eq!(again["node_id"].as_str(), Some(node_id.as_str()));
    d.stop(Duration::from_secs(20));
    let _ = std::fs::remove_dir_all(&dir);
}
