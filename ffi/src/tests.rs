//! The FFI layer's own contract, exercised from Rust as a foreign executor would: calls
//! awaited on an executor with no tokio context, errors by kind, one node per data dir,
//! `stop()` waking a waiter, and `Drop` from every kind of thread without a panic.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::executor::block_on;

use super::*;

fn config(dir: &std::path::Path) -> NodeConfig {
    let mut c = default_config(
        Network::Regtest,
        dir.to_string_lossy().into_owned(),
        // Never reached by these tests (no sync is asked for).
        "http://127.0.0.1:9".into(),
    );
    c.runtime_threads = 1;
    c
}

fn start(dir: &std::path::Path) -> Result<Arc<Node>, TernError> {
    block_on(Node::start(config(dir), vec![7; 32]))
}

#[test]
fn version_is_the_crate_version() {
    assert_eq!(tern_version(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn bad_input_is_refused_by_kind() {
    let dir = tempfile::tempdir().expect("dir");
    let short = block_on(Node::start(config(dir.path()), vec![7; 31]));
    assert!(matches!(short, Err(TernError::InvalidInput(m)) if m.contains("31 bytes")));
    let mut c = config(dir.path());
    c.runtime_threads = 0;
    let none = block_on(Node::start(c, vec![7; 32]));
    assert!(matches!(none, Err(TernError::InvalidInput(m)) if m.contains("runtime_threads")));
    let words = block_on(Node::start_with_mnemonic(
        config(dir.path()),
        "not a mnemonic".into(),
        None,
    ));
    assert!(matches!(words, Err(TernError::InvalidInput(_))));

    let node = start(dir.path()).expect("starts");
    assert_eq!(node.node_id().len(), 66);
    let bad_id = block_on(node.connect("02zz".into(), "127.0.0.1:1".into()));
    assert!(matches!(bad_id, Err(TernError::InvalidInput(m)) if m.contains("node_id")));
    let unknown = block_on(node.force_close_channel("00".repeat(32)));
    assert!(
        matches!(unknown, Err(TernError::UnknownChannel(_))),
        "{unknown:?}"
    );
    let bad_address = block_on(node.close_channel("00".repeat(32), Some("bc1qnope".into())));
    assert!(matches!(bad_address, Err(TernError::InvalidInput(m)) if m.contains("address")));
    let address = block_on(node.new_address()).expect("address");
    assert!(address.starts_with("bcrt1q"), "{address}");
    let balances = block_on(node.list_balances()).expect("balances");
    assert_eq!(balances.confirmed_sat + balances.unconfirmed_sat, 0);
    assert!(block_on(node.list_channels()).expect("channels").is_empty());
    block_on(node.stop()).expect("stop");
    assert!(node.is_stopped());
    let stopped = block_on(node.new_address());
    assert!(matches!(stopped, Err(TernError::Stopped(_))), "{stopped:?}");
}

#[test]
fn one_node_per_data_dir_and_the_dir_is_free_after_stop() {
    let dir = tempfile::tempdir().expect("dir");
    let first = start(dir.path()).expect("first");
    let second = start(dir.path());
    assert!(
        matches!(second, Err(TernError::AlreadyRunning(_))),
        "{:?}",
        second.err()
    );
    block_on(first.stop()).expect("stop");
    let again = start(dir.path()).expect("the dir is free once stopped");
    assert_eq!(again.node_id(), first.node_id(), "same seed, same node");
}

#[test]
fn stop_wakes_a_waiter_with_stopped_and_a_timeout_returns_none() {
    let dir = tempfile::tempdir().expect("dir");
    let node = start(dir.path()).expect("starts");
    let nothing = block_on(node.wait_next_event_timeout(Duration::from_millis(50)));
    assert!(matches!(nothing, Ok(None)), "{nothing:?}");
    let waiter = {
        let node = node.clone();
        std::thread::spawn(move || block_on(node.wait_next_event()))
    };
    // The waiter is parked (no event will come); stop must wake it.
    std::thread::sleep(Duration::from_millis(50));
    block_on(node.stop()).expect("stop");
    let woke = waiter.join().expect("the waiter's thread");
    assert!(matches!(woke, Err(TernError::Stopped(_))), "{woke:?}");
}

#[test]
fn dropping_a_node_never_panics_wherever_it_happens_and_frees_the_dir() {
    let dir = tempfile::tempdir().expect("dir");
    // Inside another tokio runtime's async context (a Rust host, a test harness): dropping a
    // runtime there is what panics ("Cannot drop a runtime in a context where blocking is
    // not allowed").
    let host = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("host runtime");
    let node = start(dir.path()).expect("starts");
    host.block_on(async move { drop(node) });
    // On one of the node's own runtime threads (its last reference dropped by its own task).
    let node = wait_free(dir.path());
    let (tx, rx) = std::sync::mpsc::channel();
    node.runtime_handle().spawn(async move {
        drop(node);
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the task ran");
    // On a plain thread, right after a call.
    let node = wait_free(dir.path());
    assert!(block_on(node.list_channels()).expect("list").is_empty());
    std::thread::spawn(move || drop(node))
        .join()
        .expect("no panic");
    // Each dropped node stopped and released the dir.
    let last = wait_free(dir.path());
    block_on(last.stop()).expect("stop");
}

/// Starts a node on `dir`, retrying while a dropped one is still stopping in the background.
fn wait_free(dir: &std::path::Path) -> Arc<Node> {
    for _ in 0..200 {
        match start(dir) {
            Ok(n) => return n,
            Err(TernError::AlreadyRunning(_)) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the data dir was never released");
}

/// Every stored event kind (the golden fixtures of core/tests/fixtures/records) has its own
/// variant in the bindings: none falls through to `Event::Other`.
#[test]
fn every_golden_event_maps_to_its_own_variant() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures/records");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.starts_with("event_") || !name.ends_with(".hex") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let bytes: Vec<u8> = (0..text.trim().len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text.trim()[i..i + 2], 16).expect("hex"))
            .collect();
        let event = tern_core::node::Event::decode(&bytes).expect("decodes");
        let mirrored = Event::from(event);
        assert!(
            !matches!(mirrored, Event::Other { .. }),
            "{name}: {mirrored:?}"
        );
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} event fixtures found");
}

/// The app's logger gets the core's records on a thread of its own; a logger that falls behind
/// costs dropped records, never a blocked node; logging is set up once per process. (One test:
/// the subscriber is process-global.)
#[test]
fn the_apps_logger_gets_records_off_the_node_threads_and_a_slow_one_drops_records() {
    use std::sync::Mutex;
    struct Slow {
        seen: Mutex<Vec<(LogRecord, String)>>,
        gate: Mutex<()>,
    }
    impl LogSink for Slow {
        fn log(&self, record: LogRecord) -> Result<(), TernError> {
            let _held = self
                .gate
                .lock()
                .map_err(|_| TernError::Internal("gate".into()))?;
            let thread = std::thread::current().name().unwrap_or_default().to_owned();
            if let Ok(mut seen) = self.seen.lock() {
                seen.push((record, thread));
            }
            Ok(())
        }
    }
    let sink = Arc::new(Slow {
        seen: Mutex::new(Vec::new()),
        gate: Mutex::new(()),
    });
    init_logging_with_sink(LogLevel::Info, sink.clone()).expect("first set-up");
    let again = init_logging(LogLevel::Info, None);
    assert!(matches!(again, Err(TernError::InvalidInput(m)) if m.contains("once per process")));

    // (Other tests of this binary may log too, when run in one process: only ours are read.)
    const TARGET: &str = "tern_ffi::log_test";
    let ours = |sink: &Slow| -> Vec<(LogRecord, String)> {
        let seen = sink.seen.lock().expect("seen");
        seen.iter()
            .filter(|(r, _)| r.target == TARGET)
            .cloned()
            .collect()
    };
    tracing::debug!(target: TARGET, "below the level");
    tracing::info!(target: TARGET, channels = 2, "started");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while ours(&sink).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no record reached the sink"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let seen = ours(&sink);
    let (record, thread) = &seen[0];
    assert_eq!(record.level, LogLevel::Info);
    assert_eq!(record.message, "started channels=2");
    assert_eq!(thread, "tern-log");
    assert_eq!(seen.len(), 1, "the debug record was filtered out");
    // A logger stuck for a while: the queue (1,024) fills and the rest is dropped, at once.
    let before = dropped_log_records();
    {
        let _stuck = sink.gate.lock().expect("gate");
        let started = std::time::Instant::now();
        for i in 0..3_000 {
            tracing::warn!(target: TARGET, i, "flood");
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "logging never waits for the app"
        );
    }
    assert!(
        dropped_log_records() - before >= 3_000 - 1_025,
        "{}",
        dropped_log_records()
    );
}

#[test]
fn a_wake_is_busy_beside_a_node_fails_clearly_without_esplora_and_frees_the_dir() {
    let dir = tempfile::tempdir().expect("dir");
    let options = || WakeOptions {
        deadline_ms: 5_000,
        cancel: None,
    };
    let short = block_on(wake(config(dir.path()), vec![7; 31], options()));
    assert!(matches!(short, Err(TernError::InvalidInput(m)) if m.contains("31 bytes")));

    let node = start(dir.path()).expect("starts");
    let busy = block_on(wake(config(dir.path()), vec![7; 32], options())).expect("wake");
    assert_eq!(busy.outcome, WakeOutcome::Busy, "{busy:?}");
    assert_eq!(busy.costs.http_requests, 0);
    block_on(node.stop()).expect("stop");

    // The Esplora server of `config` refuses connections: the sync fails, nothing is dialled.
    let failed = block_on(wake(config(dir.path()), vec![7; 32], options())).expect("wake");
    assert!(
        matches!(&failed.outcome, WakeOutcome::Failed { reason } if reason.contains("tip")),
        "{failed:?}"
    );
    assert_eq!(failed.costs.dials, 0);
    assert!(failed.costs.http_requests >= 1, "{failed:?}");
    // Released when the wake returned: a node starts at once.
    let node = start(dir.path()).expect("the dir is free");
    let counters = node.counters();
    assert_eq!(counters.commits, 0);
    // The process's lock counters: a started node has taken its locks, never more waits
    // than acquisitions.
    assert!(counters.lock_acquisitions > 0, "{counters:?}");
    assert!(
        counters.lock_waits <= counters.lock_acquisitions,
        "{counters:?}"
    );
    block_on(node.stop()).expect("stop");
}

#[test]
fn a_cancelled_wake_says_so_and_a_dropped_wake_cancels_itself() {
    let dir = tempfile::tempdir().expect("dir");
    let cancel = WakeCancel::new();
    cancel.cancel();
    assert!(cancel.is_cancelled());
    let report = block_on(wake(
        config(dir.path()),
        vec![7; 32],
        WakeOptions {
            deadline_ms: 5_000,
            cancel: Some(cancel),
        },
    ))
    .expect("wake");
    assert_eq!(report.outcome, WakeOutcome::Cancelled, "{report:?}");
    start(dir.path()).expect("the dir is free");

    // A foreign caller that gives up (a cancelled coroutine drops the future after polling
    // it) while the sync waits on a server that never answers (10 s per request): the wake
    // cancels itself and the dir comes free at once (`wait_free` waits 2 s at most).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut hanging = config(dir.path());
    hanging.esplora_url = format!("http://{}", silent.local_addr().expect("addr"));
    let dir = tempfile::tempdir().expect("dir");
    hanging.data_dir = dir.path().to_string_lossy().into_owned();
    let mut fut = Box::pin(wake(
        hanging,
        vec![7; 32],
        WakeOptions {
            deadline_ms: 60_000,
            cancel: None,
        },
    ));
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    // Into its sync (on the wake's own runtime) before the caller gives up.
    std::thread::sleep(Duration::from_millis(200));
    drop(fut);
    let node = wait_free(dir.path());
    block_on(node.stop()).expect("stop");
}
