//! The FFI node's footprint, measured through the exported API as an app would use it:
//! `Node::start` on an existing data dir (the second start of a node whose dir exists), and
//! the process's resident memory with one runtime thread, idle after start.
//!
//! `cargo run --release -p tern-ffi --example footprint` (Linux: reads /proc/self/status).
//! Prints one line per figure; no network is used (the Esplora URL is never reached).

use std::time::{Duration, Instant};

use futures::executor::block_on;
use tern_ffi::{default_config, Network, Node};

fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .map(|l| l.trim_start_matches(field).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let dir = std::env::temp_dir().join(format!("tern-footprint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = default_config(
        Network::Regtest,
        dir.to_string_lossy().into_owned(),
        "http://127.0.0.1:9".into(),
    );
    config.runtime_threads = 1;
    println!("before start: VmRSS {}", status("VmRSS:"));
    let seed = vec![1u8; 32];
    let first = Instant::now();
    let node = block_on(Node::start(config.clone(), seed.clone())).expect("first start");
    let created = first.elapsed();
    block_on(node.stop()).expect("stop");
    drop(node);
    let again = Instant::now();
    let node = block_on(Node::start(config, seed)).expect("second start");
    let reopened = again.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    println!("start, new data dir: {} ms", created.as_millis());
    println!("start, existing data dir: {} ms", reopened.as_millis());
    println!(
        "idle after start (runtime_threads 1): VmRSS {}, VmHWM {}, threads {}",
        status("VmRSS:"),
        status("VmHWM:"),
        status("Threads:")
    );
    block_on(node.stop()).expect("stop");
    let _ = std::fs::remove_dir_all(&dir);
}
