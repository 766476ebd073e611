//! Issue 15's footprint goal as a check: a node started through the FFI on an existing data
//! dir, with one runtime thread, stays under 20 MB resident once idle. Its own test binary, so
//! the process holds this node only (nextest or `cargo test` alike). Measured where the kernel
//! reports it (Linux: /proc/self/status); the release figures are in ffi/examples/footprint.rs.

// This binary's TRACE log file, for the log-secret check (core/tests/common/trace.rs).
#[path = "../../core/tests/common/trace.rs"]
mod trace;

#[cfg(target_os = "linux")]
#[test]
fn an_idle_node_stays_under_20_mb_resident() {
    use futures::executor::block_on;
    use tern_ffi::{default_config, Network, Node};

    const LIMIT_KB: u64 = 20 * 1024;
    fn rss_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .expect("a VmRSS line");
        line.trim_start_matches("VmRSS:")
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .expect("VmRSS in kB")
    }

    let dir = tempfile::tempdir().expect("dir");
    let mut config = default_config(
        Network::Regtest,
        dir.path().to_string_lossy().into_owned(),
        // Never reached: no sync is asked for.
        "http://127.0.0.1:9".into(),
    );
    config.runtime_threads = 1;
    let seed = vec![3u8; 32];
    // The first start creates the data dir; the measured one reopens it, as an app's does.
    let node = block_on(Node::start(config.clone(), seed.clone())).expect("first start");
    block_on(node.stop()).expect("stop");
    drop(node);
    let node = block_on(Node::start(config, seed)).expect("second start");
    assert!(!node.is_stopped());
    // Idle: the node's start-up work (store open, wallet load) is done when start returns;
    // a short pause lets its runtime settle as an app's idle node would.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let rss = rss_kb();
    println!("idle node: VmRSS {rss} kB (limit {LIMIT_KB} kB)");
    assert!(
        rss <= LIMIT_KB,
        "an idle node holds {rss} kB resident, over {LIMIT_KB} kB"
    );
    block_on(node.stop()).expect("stop");
}
