//! `tern wake` as a process against `tern daemon`s and a devnet: a phone daemon stopped
//! mid-open is finished by one wake (it dials the LSP alone); the next wake with nothing
//! pending costs 1 request, no dial and no fsync — counted by the node and, where `strace`
//! works, by the kernel's syscalls; a wake beside the running daemon says busy; a SIGKILLed
//! wake leaves the data dir free at once (the kernel drops the flock), and the next wake
//! finishes what it started.

// This binary's TRACE log file, for the log-secret check (core/tests/common/trace.rs).
#[path = "../../../core/tests/common/trace.rs"]
mod trace;

use std::path::Path;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use bitcoin::{Address, Amount};
use serde_json::Value;
use tern_devnet::Devnet;
use tern_harness::control::Request;
use tern_harness::procs::{self, str_of, u64_of, DaemonProc};

const BIN: &str = env!("CARGO_BIN_EXE_tern");
const START: Duration = Duration::from_secs(30);

/// Runs `tern wake --data-dir D` with `extra` flags; its JSON report and exit code.
fn wake(dir: &Path, extra: &[&str]) -> (Value, i32) {
    let out = Command::new(BIN)
        .arg("wake")
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("tern wake runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "tern wake printed no JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.code().unwrap_or(-1))
}

/// The fsync/fdatasync calls of one `tern wake`, counted by `strace -f -c`; `None` where
/// strace is missing or cannot trace here (no ptrace in the container).
fn strace_fsyncs(dir: &Path) -> Option<(u64, Value)> {
    let summary = dir.with_extension("strace");
    let out = Command::new("strace")
        .args(["-f", "-c", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(&summary)
        .arg(BIN)
        .arg("wake")
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let report: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).ok()?;
    let text = std::fs::read_to_string(&summary).ok()?;
    // `% time  seconds  usecs/call  calls  errors  syscall` rows; none when there was no call.
    let calls = text
        .lines()
        .filter(|l| l.ends_with(" fsync") || l.ends_with(" fdatasync"))
        .filter_map(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
        .sum();
    Some((calls, report))
}

fn has_event(report: &Value, kind: &str) -> bool {
    report["events"]
        .as_array()
        .is_some_and(|e| e.iter().any(|e| str_of(e, "type") == kind))
}

/// An LSP daemon (listening, with `lsp_args`) and a phone daemon that opened a channel to it
/// and was stopped with the funding in the mempool; then 3 blocks are mined and the LSP has
/// seen them (the phone's `channel_ready` is owed: the LSP cannot dial a phone).
fn stopped_mid_open(devnet: &Devnet, dir: &Path, lsp_args: &[&str]) -> (DaemonProc, DaemonProc) {
    let bin = Path::new(BIN);
    let url = devnet.base_url();
    let mut lsp = DaemonProc::new(bin, "lsp", &dir.join("lsp"), &url);
    let mut phone = DaemonProc::new(bin, "phone", &dir.join("phone"), &url);
    let mut args = vec!["--listen", "127.0.0.1:0", "--sync-interval-ms", "200"];
    args.extend(lsp_args);
    let info = lsp.start(&args, START).expect("lsp starts");
    let peer = format!("{}@{}", str_of(&info, "node_id"), str_of(&info, "listen"));
    phone
        .start(&["--sync-interval-ms", "200"], START)
        .expect("phone starts");
    let address = phone.must(&Request::NewAddress).expect("address");
    let address = Address::from_str(str_of(&address, "address"))
        .expect("address")
        .assume_checked();
    devnet
        .faucet(&address, Amount::from_sat(500_000))
        .expect("faucet");
    devnet.mine(1);
    phone
        .wait_for(Duration::from_secs(30), "funded", |p| {
            Ok(u64_of(&p.must(&Request::Balance)?, "onchain_confirmed_sat") == 500_000)
        })
        .expect("funded");
    phone
        .must(&Request::Open {
            peer,
            amount_sat: 150_000,
            push_msat: 0,
            public: false,
        })
        .expect("open");
    phone
        .wait_for(Duration::from_secs(30), "the funding broadcast", |p| {
            Ok(p.channels()?
                .first()
                .is_some_and(|c| c["state"] == "AwaitingConfirmations"))
        })
        .expect("pending");
    // `wake` beside the running daemon: busy, nothing touched.
    let (busy, code) = wake(&phone.data_dir, &[]);
    assert_eq!((str_of(&busy, "outcome"), code), ("busy", 0), "{busy}");
    assert_eq!(busy["costs"]["requests"], 0, "{busy}");
    phone.stop(Duration::from_secs(10));
    devnet.mine(3);
    lsp.wait_for(Duration::from_secs(30), "3 confirmations", |l| {
        Ok(l.channels()?
            .first()
            .is_some_and(|c| u64_of(c, "confirmations") >= 3))
    })
    .expect("lsp saw the blocks");
    (lsp, phone)
}

#[test]
fn tern_wake_finishes_an_open_then_a_quiet_wake_costs_one_request_and_no_fsync() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let devnet = rt.block_on(Devnet::start()).expect("devnet");
    let dir = procs::temp_dir("tern-wake");
    let (lsp, phone) = stopped_mid_open(&devnet, &dir, &[]);

    let (report, code) = wake(&phone.data_dir, &["--deadline-ms", "20000"]);
    assert_eq!(
        (str_of(&report, "outcome"), code),
        ("completed", 0),
        "{report}"
    );
    assert_eq!(report["costs"]["dials"], 1, "{report}");
    assert_eq!(report["pending"], Value::Array(vec![]), "{report}");
    assert!(has_event(&report, "ChannelReady"), "{report}");
    lsp.wait_for_ready();

    let (quiet, code) = wake(&phone.data_dir, &[]);
    assert_eq!(
        (str_of(&quiet, "outcome"), code),
        ("completed", 0),
        "{quiet}"
    );
    let costs = &quiet["costs"];
    assert_eq!(
        (
            &costs["requests"],
            &costs["dials"],
            &costs["commits"],
            &costs["fsyncs"]
        ),
        (
            &Value::from(1),
            &Value::from(0),
            &Value::from(0),
            &Value::from(0)
        ),
        "{quiet}"
    );
    match strace_fsyncs(&phone.data_dir) {
        Some((calls, report)) => {
            eprintln!("strace: a quiet tern wake made {calls} fsync/fdatasync calls: {report}");
            assert_eq!(str_of(&report, "outcome"), "completed", "{report}");
            assert_eq!(calls, 0, "a quiet wake writes nothing: {report}");
        }
        None => eprintln!("strace cannot trace here: the kernel's count is skipped"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sigkilled_wake_frees_the_dir_at_once_and_the_next_wake_finishes() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let devnet = rt.block_on(Devnet::start()).expect("devnet");
    let dir = procs::temp_dir("tern-wake-kill");
    // The LSP drops its first channel_ready: the first wake waits on it.
    let (lsp, phone) = stopped_mid_open(&devnet, &dir, &["--dev-faults", "$channel_ready"]);
    let mut first = Command::new(BIN)
        .arg("wake")
        .arg("--data-dir")
        .arg(&phone.data_dir)
        .args(["--deadline-ms", "60000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tern wake starts");
    // Until it holds the lock and waits on its peer (the LSP sees it connected).
    lsp.wait_for_peers(1);
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    let began = Instant::now();
    let (report, code) = wake(&phone.data_dir, &["--deadline-ms", "20000"]);
    assert_ne!(
        str_of(&report, "outcome"),
        "busy",
        "the lock outlived its process"
    );
    assert_eq!(
        (str_of(&report, "outcome"), code),
        ("completed", 0),
        "{report}"
    );
    assert!(has_event(&report, "ChannelReady"), "{report}");
    eprintln!("the wake after the kill took {:?}", began.elapsed());
    lsp.wait_for_ready();
    let _ = std::fs::remove_dir_all(&dir);
}

trait Lsp {
    fn wait_for_ready(&self);
    fn wait_for_peers(&self, n: usize);
}

impl Lsp for DaemonProc {
    fn wait_for_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .channels()
            .expect("channels")
            .first()
            .is_some_and(|c| c["state"] == "Ready")
        {
            assert!(Instant::now() < deadline, "the LSP's channel is not ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_peers(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let peers = self.must(&Request::Peers).expect("peers");
            let count = peers.as_array().map_or(0, Vec::len);
            if count >= n {
                return;
            }
            assert!(Instant::now() < deadline, "no peer connected: {peers}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A daemon started with `--esplora-fallback` leaves both URLs in `D/node.json`; a later
/// `tern wake` whose first server drops every connection syncs through the fall-back, to the
/// new tip.
#[test]
fn a_wake_syncs_through_the_fallback_the_daemon_remembered() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let devnet = rt.block_on(Devnet::start()).expect("devnet");
    let mirror = rt.block_on(devnet.mirror()).expect("mirror");
    let dir = procs::temp_dir("tern-wake-fallback");
    let mut phone = DaemonProc::new(
        std::path::Path::new(BIN),
        "phone",
        &dir.join("phone"),
        &devnet.base_url(),
    );
    phone
        .start(&["--esplora-fallback", &mirror.base_url()], START)
        .expect("daemon starts");
    phone.stop(START);
    devnet.mine(2);
    let height = u64::from(devnet.tip().0);
    devnet.reset_requests();
    devnet.add_fault(
        tern_devnet::FaultRule::new("*", tern_devnet::FaultKind::Drop, 1000)
            .on_port(devnet.addr().port()),
    );
    let (report, code) = wake(&phone.data_dir, &["--deadline-ms", "20000"]);
    assert_eq!(
        (str_of(&report, "outcome"), code),
        ("completed", 0),
        "{report}"
    );
    assert_eq!(u64_of(&report, "tip_height"), height, "{report}");
    let counts = devnet.requests();
    let mirror_asked = counts.by_port.get(&mirror.port()).copied().unwrap_or(0);
    assert!(mirror_asked >= 2, "the mirror answered: {counts:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
