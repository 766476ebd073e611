//! The `tern` CLI against `tern daemon` processes and an in-process devnet: JSON answers, a
//! channel opened through the CLI to ready, input validation and exit codes (0 ok, 1 node
//! error, 2 usage or bad input, 3 no daemon), the seed file and the control socket's rules.

// This binary's TRACE log file, for the log-secret check (core/tests/common/trace.rs).
#[path = "../../../core/tests/common/trace.rs"]
mod trace;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;
use std::time::{Duration, Instant};

use bitcoin::{Address, Amount};
use serde_json::Value;
use tern_devnet::Devnet;
use tern_harness::procs::{self, DaemonProc};

const BIN: &str = env!("CARGO_BIN_EXE_tern");
const ID: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "failed: {}", self.stderr);
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {:?}", self.stdout))
    }
}

fn tern(dir: &Path, args: &[&str]) -> Run {
    let out: Output = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run tern");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn devnet() -> (tokio::runtime::Runtime, Devnet) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let devnet = rt.block_on(Devnet::start()).expect("devnet");
    (rt, devnet)
}

fn temp(name: &str) -> PathBuf {
    let dir = procs::temp_dir(&format!("tern-cli-{name}"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

fn wait(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Pays `sat` to a new address of the daemon at `dir` (asked through the CLI), mines a block
/// and has the daemon sync.
fn fund_through_cli(devnet: &Devnet, dir: &Path, sat: u64) {
    let addr = tern(dir, &["new-address"]).json();
    let addr = Address::from_str(addr["address"].as_str().expect("address"))
        .expect("valid")
        .assume_checked();
    devnet.faucet(&addr, Amount::from_sat(sat)).expect("faucet");
    devnet.mine(1);
    tern(dir, &["sync"]).json();
}

/// `<node id>@<listen address>` from a daemon's `info`.
fn peer_of(info: &serde_json::Value) -> String {
    format!(
        "{}@{}",
        info["node_id"].as_str().expect("id"),
        info["listen"].as_str().expect("listen")
    )
}

/// Runs `tern daemon` on `dir` in the foreground and collects its output (for daemons that
/// must refuse to start).
fn daemon_once(devnet: &Devnet, dir: &Path) -> std::process::Output {
    Command::new(BIN)
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
        .expect("run")
}

#[test]
fn no_daemon_is_exit_3() {
    let dir = temp("none");
    let r = tern(&dir, &["info"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("no daemon running at"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    // A stale socket file with nobody behind it is "no daemon" too.
    let _ = std::os::unix::net::UnixListener::bind(dir.join("tern.sock")).expect("bind");
    let r = tern(&dir, &["balance"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_exit_2() {
    let dir = temp("usage");
    let bad: &[(&[&str], &str)] = &[
        (&["open", "zz@127.0.0.1:9735", "1000"], "node id"),
        (
            &["open", &format!("{ID}@127.0.0.1:9735"), "12abc"],
            "amount",
        ),
        (&["open", &format!("{ID}@127.0.0.1:9735"), "0"], "positive"),
        (&["open", &format!("{ID}@127.0.0.1:9735"), "-1"], "amount"),
        (&["open", &format!("{ID}@127.0.0.1"), "1000"], "host:port"),
        (&["open", &format!("{ID}@127.0.0.1:9735")], "expected"),
        (
            &["open", &format!("{ID}@h:1"), "10", "--push-msat", "10001"],
            "exceeds",
        ),
        (&["connect", "nope"], "node id"),
        (&["frobnicate"], "unknown command"),
        (&["info", "extra"], "no arguments"),
        (&["events", "--all"], "--ack"),
    ];
    for (args, says) in bad {
        let r = tern(&dir, args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {:?}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}");
    }
    // No --data-dir.
    let out = Command::new(BIN).arg("info").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args([
            "daemon",
            "--network",
            "moon",
            "--data-dir",
            "x",
            "--esplora",
            "http://x",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown network"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn seed_file_and_socket_rules() {
    let (_rt, devnet) = devnet();
    let dir = temp("seed");
    let node_dir = dir.join("n");
    let mut d = DaemonProc::new(Path::new(BIN), "n", &node_dir, &devnet.base_url());
    let first = d.start(&[], Duration::from_secs(20)).expect("starts");
    let seed = node_dir.join("seed");
    let meta = std::fs::metadata(&seed).expect("seed written");
    assert_eq!(meta.len(), 32);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(node_dir.join("tern.log").exists(), "logs to D/tern.log");

    // A second daemon on the same dir is refused while the first answers.
    let out = daemon_once(&devnet, &node_dir);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running"), "{err}");
    assert_eq!(
        tern(&node_dir, &["info"]).json()["node_id"],
        first["node_id"]
    );

    // SIGKILL leaves a stale socket; the restart removes it and keeps the node id.
    d.kill();
    assert!(
        node_dir.join("tern.sock").exists(),
        "stale socket left by SIGKILL"
    );
    let again = d.start(&[], Duration::from_secs(20)).expect("restarts");
    assert_eq!(again["node_id"], first["node_id"], "same seed, same node");
    let r = tern(&node_dir, &["stop"]);
    assert_eq!(r.json()["stopping"], true);
    wait("the daemon to exit", || !d.is_running());
    assert_eq!(tern(&node_dir, &["info"]).code, 3, "stopped: no daemon");

    // A seed of the wrong size is refused, not overwritten.
    std::fs::write(&seed, [7u8; 31]).expect("write");
    let out = daemon_once(&devnet, &node_dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has 31 bytes, expected 32"), "{err}");
    assert_eq!(std::fs::read(&seed).expect("seed"), vec![7u8; 31]);
    assert!(
        !node_dir.join("tern.sock").exists(),
        "socket removed on exit"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn open_a_channel_through_the_cli() {
    let (_rt, devnet) = devnet();
    let dir = temp("open");
    let (ld, pd) = (dir.join("lsp"), dir.join("phone"));
    let bin = Path::new(BIN);
    let mut lsp = DaemonProc::new(bin, "lsp", &ld, &devnet.base_url());
    let mut phone = DaemonProc::new(bin, "phone", &pd, &devnet.base_url());
    lsp.start(&["--listen", "127.0.0.1:0"], Duration::from_secs(20))
        .expect("lsp");
    phone.start(&[], Duration::from_secs(20)).expect("phone");

    let info = tern(&ld, &["info"]).json();
    assert_eq!(info["network"], "regtest");
    assert_eq!(info["halted"], false);
    let lsp_id = info["node_id"].as_str().expect("node id").to_string();
    assert_eq!(lsp_id.len(), 66);
    let listen = info["listen"].as_str().expect("listening").to_string();
    let peer = format!("{lsp_id}@{listen}");
    assert!(tern(&pd, &["info"]).json()["listen"].is_null());

    let addr = tern(&pd, &["new-address"]).json();
    let addr = Address::from_str(addr["address"].as_str().expect("address"))
        .expect("valid address")
        .assume_checked();
    devnet
        .faucet(&addr, Amount::from_sat(500_000))
        .expect("faucet");
    devnet.mine(1);
    let synced = tern(&pd, &["sync"]).json();
    assert_eq!(synced["tip_height"], devnet.tip().0);
    let b = tern(&pd, &["balance"]).json();
    assert_eq!(b["onchain_confirmed_sat"], 500_000, "{b}");
    assert_eq!(b["channels_msat"], 0);
    let info = tern(&pd, &["info"]).json();
    assert_eq!(info["synced_height"], devnet.tip().0);

    // Node errors are exit 1 with a message.
    let unknown = format!("{ID}@127.0.0.1:1");
    let r = tern(&pd, &["connect", &unknown]);
    assert_eq!(r.code, 1, "nobody listens there: {}", r.stdout);
    assert!(r.stderr.contains("not connected"), "{}", r.stderr);

    let c = tern(&pd, &["connect", &peer]).json();
    assert_eq!(c["connected"], lsp_id.as_str());
    let peers = tern(&pd, &["peers"]).json();
    assert_eq!(peers[0]["node_id"], lsp_id.as_str(), "{peers}");

    let opened = tern(&pd, &["open", &peer, "200000", "--push-msat", "1000"]).json();
    let temp_id = opened["temporary_channel_id"].as_str().expect("temp id");
    assert_eq!(temp_id.len(), 64);
    wait("the funding broadcast", || {
        let ch = tern(&pd, &["channels"]).json();
        ch[0]["funding_txo"].is_string() && ch[0]["state"] == "AwaitingConfirmations"
    });
    let ch = tern(&pd, &["channels"]).json();
    let c = &ch[0];
    assert_eq!(c["temporary_channel_id"], temp_id);
    assert_eq!(c["is_outbound"], true);
    assert_eq!(c["funding_sat"], 200_000);
    assert_eq!(c["our_balance_msat"], 200_000_000 - 1000);
    assert_eq!(c["counterparty_node_id"], lsp_id.as_str());
    let required = c["required_confirmations"].as_u64().expect("required");
    assert_eq!(c["status"], format!("awaiting confirmations 0/{required}"));

    devnet.mine(required as u32);
    wait("ready on both sides", || {
        [&pd, &ld].iter().all(|d| {
            let _ = tern(d, &["sync"]);
            tern(d, &["channels"]).json()[0]["state"] == "Ready"
        })
    });
    let ch = tern(&ld, &["channels"]).json();
    assert_eq!(ch[0]["status"], "ready");
    // The commitment: its type, number and feerate, on both sides (the values themselves are
    // checked in core/tests/node_memory.rs; the fee policy may be moving them here).
    for d in [&pd, &ld] {
        let c = &tern(d, &["channels"]).json()[0];
        // Two Tern nodes negotiate option_anchors.
        assert_eq!(c["channel_type"], "anchors", "{c}");
        assert_eq!(c["anchors"], true, "{c}");
        assert!(c["commitment_number"].is_u64(), "{c}");
        let feerate = c["commitment_feerate_per_kw"].as_u64().expect("a feerate");
        assert!(feerate >= 253, "{c}");
    }
    assert_eq!(ch[0]["is_outbound"], false);
    assert_eq!(ch[0]["our_balance_msat"], 1000);
    // `tern channels` says whether a force close's fee can be bumped: the phone has its
    // change to CPFP with, the LSP (funded by nobody) has no coin; not closing yet.
    let words = |d: &Path| tern(d, &["channels"]).json()[0]["fee_bump"].clone();
    assert_eq!(
        words(&pd),
        "fee can be bumped: a force close is CPFP'd through our anchor from a wallet coin"
    );
    let lsp_words = words(&ld);
    assert!(
        lsp_words
            .as_str()
            .is_some_and(|w| w.starts_with("fee cannot be bumped: no on-chain coin")),
        "{lsp_words}"
    );
    assert!(ch[0]["closing_status"].is_null(), "{}", ch[0]);
    // `tern balance` shows the anchor reserve (25,000 sat per anchor channel, the default).
    let b = tern(&pd, &["balance"]).json();
    assert_eq!(b["anchor_reserve_sat"], 25_000, "{b}");
    assert_eq!(
        b["spendable_after_reserve_sat"].as_u64(),
        b["onchain_confirmed_sat"]
            .as_u64()
            .map(|c| c.saturating_sub(25_000)),
        "{b}"
    );

    // Events: listed without --ack they stay; with --ack they are handled.
    let ev = tern(&pd, &["events"]).json();
    let types: Vec<&str> = ev
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(types.contains(&"ChannelPending"), "{types:?}");
    assert!(types.contains(&"ChannelReady"), "{types:?}");
    let ready = ev
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["type"] == "ChannelReady")
        .expect("ready event");
    assert_eq!(ready["counterparty_node_id"], lsp_id.as_str());
    assert!(ready["seq"].is_u64());
    assert_eq!(
        tern(&pd, &["events"]).json(),
        ev,
        "not acked: still pending"
    );
    assert_eq!(tern(&pd, &["events", "--ack"]).json(), ev);
    let left = tern(&pd, &["events"]).json();
    assert!(
        left.as_array()
            .expect("list")
            .iter()
            .all(|e| !ev.as_array().expect("list").contains(e)),
        "acked events are gone: {left}"
    );

    let b = tern(&pd, &["balance"]).json();
    assert_eq!(b["channels_msat"], 200_000_000 - 1000);
    assert_eq!(b["onchain_locked_sat"], 0);

    // A force close: `tern channels` says how far it is.
    let id = tern(&pd, &["channels"]).json()[0]["channel_id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(tern(&pd, &["force-close", &id]).code, 0);
    let c = &tern(&pd, &["channels"]).json()[0];
    let closing = c["closing_status"].as_str().unwrap_or_default().to_string();
    assert!(closing.starts_with("force-closed"), "{c}");
    assert_eq!(c["status"], closing.as_str());

    for (d, p) in [(&pd, &mut phone), (&ld, &mut lsp)] {
        assert_eq!(tern(d, &["stop"]).json()["stopping"], true);
        wait("the daemon to exit", || !p.is_running());
        assert_eq!(tern(d, &["info"]).code, 3);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn halted_daemon_keeps_answering() {
    let (_rt, devnet) = devnet();
    let dir = temp("halt");
    let bin = Path::new(BIN);
    let mut lsp = DaemonProc::new(bin, "lsp", &dir.join("lsp"), &devnet.base_url());
    let mut phone = DaemonProc::new(bin, "phone", &dir.join("phone"), &devnet.base_url());
    let info = lsp
        .start(&["--listen", "127.0.0.1:0"], Duration::from_secs(20))
        .expect("lsp");
    phone
        .start(
            &["--dev-halt-after", "send:open_channel"],
            Duration::from_secs(20),
        )
        .expect("phone");
    let pd = dir.join("phone");
    fund_through_cli(&devnet, &pd, 300_000);
    let peer = peer_of(&info);
    let _ = tern(&pd, &["open", &peer, "100000"]);
    phone.wait_halted(Duration::from_secs(20)).expect("halts");
    assert_eq!(tern(&pd, &["info"]).json()["halted"], true);
    assert!(tern(&pd, &["channels"]).code == 0);
    let r = tern(&pd, &["sync"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("halted"), "{}", r.stderr);
    assert!(
        phone.is_running(),
        "the process stays up for the driver's SIGKILL"
    );
    phone.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rejected_open_fails_cleanly() {
    let (_rt, devnet) = devnet();
    let dir = temp("reject");
    let bin = Path::new(BIN);
    let mut lsp = DaemonProc::new(bin, "lsp", &dir.join("lsp"), &devnet.base_url());
    let mut phone = DaemonProc::new(bin, "phone", &dir.join("phone"), &devnet.base_url());
    let info = lsp
        .start(
            &["--listen", "127.0.0.1:0", "--inbound", "reject"],
            Duration::from_secs(20),
        )
        .expect("lsp");
    phone.start(&[], Duration::from_secs(20)).expect("phone");
    let pd = dir.join("phone");
    fund_through_cli(&devnet, &pd, 300_000);
    let peer = peer_of(&info);
    let _ = tern(&pd, &["open", &peer, "100000"]);
    let mut reason = None;
    wait("ChannelOpenFailed", || {
        let ev = tern(&pd, &["events", "--ack"]).json();
        for e in ev.as_array().expect("list") {
            if e["type"] == "ChannelOpenFailed" {
                reason = e["reason"].as_str().map(String::from);
            }
        }
        reason.is_some()
    });
    assert!(tern(&pd, &["channels"])
        .json()
        .as_array()
        .expect("list")
        .is_empty());
    let b = tern(&pd, &["balance"]).json();
    assert_eq!(b["onchain_total_sat"], 300_000, "coins back: {b}");
    assert_eq!(b["onchain_locked_sat"], 0, "{b}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tern_devnet_serves_esplora_until_sigint() {
    use std::io::{BufRead, BufReader, Read, Write};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut child = Command::new(BIN)
        .args(["devnet", "--port", &port.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run tern devnet");
    let mut first = String::new();
    // Kept open until the end: the devnet prints more lines.
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    out.read_line(&mut first).expect("read");
    assert!(first.contains(&format!("127.0.0.1:{port}")), "{first}");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "GET /blocks/tip/height HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.trim_end().ends_with("110"), "{answer}");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            assert!(st.success(), "Ctrl-C ends it cleanly: {st}");
            break;
        }
        assert!(Instant::now() < deadline, "still running after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `tern` with `args` (no implied --data-dir), `stdin` piped in.
fn tern_raw(args: &[&str], stdin: Option<&str>) -> Run {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tern");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    let out = child.wait_with_output().expect("wait");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_bad_argument_is_one_line_naming_it() {
    let dir = temp("oneline");
    let d = dir.to_str().expect("utf-8 path");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--data-dir", d, "open", "02aa@127.0.0.1:9735", "1000"],
            "tern: open: node id \"02aa\" is not a public key (66 hex digits)",
        ),
        (
            &["--data-dir", d, "open", &format!("{ID}@h:1")],
            "tern: open: expected <AMOUNT_SAT> (usage: tern --data-dir D open <node id>@<host:port> \
             <amount_sat> [--push-msat N] [--public])",
        ),
        (
            &["--data-dir", d, "send", "bcrt1qx", "5", "--feerate-sat-vb", "5000"],
            "tern: send: --feerate-sat-vb \"5000\" is not a whole number of sat/vB from 1 to 1000",
        ),
        (
            &["daemon", "--data-dir", d, "--network", "moon", "--esplora", "http://x"],
            "tern: daemon: unknown network \"moon\" (regtest, signet, testnet or bitcoin)",
        ),
        (
            &["daemon", "--data-dir", d, "--network", "regtest", "--esplora", "x"],
            "tern: daemon: --esplora \"x\" is not an http(s) URL",
        ),
        (
            &["--data-dir", d, "frobnicate"],
            "tern: unknown command \"frobnicate\" (tern --help lists them)",
        ),
        (&["info"], "tern: info: --data-dir D is required"),
        (&[], "tern: no command given (tern --help lists them)"),
    ];
    for (args, line) in cases {
        let r = tern_raw(args, None);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr, format!("{line}\n"), "{args:?}: exactly one line");
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_describes_each_command_and_its_flags() {
    let top = tern_raw(&["--help"], None);
    assert_eq!(top.code, 0, "{}", top.stderr);
    for command in ["daemon", "init", "open", "send", "events", "devnet", "demo"] {
        assert!(top.stdout.contains(command), "{command}: {}", top.stdout);
    }
    assert!(top
        .stdout
        .contains("exit codes: 0 ok, 1 node error, 2 usage or bad input, 3 no daemon"));
    let open = tern_raw(&["open", "--help"], None);
    assert_eq!(open.code, 0, "{}", open.stderr);
    assert!(open.stderr.is_empty());
    for says in [
        "Usage: tern --data-dir D open <node id>@<host:port> <amount_sat>",
        "--push-msat <N>",
        "Give the peer this much of the channel at open, in millisatoshis",
        "--public",
        "Announce the channel",
        "The channel's size in satoshis",
    ] {
        assert!(open.stdout.contains(says), "{says}: {}", open.stdout);
    }
    let daemon = tern_raw(&["daemon", "--help"], None);
    assert_eq!(daemon.code, 0, "{}", daemon.stderr);
    for says in [
        "--network <NETWORK>",
        "regtest, signet, testnet or bitcoin",
        "--esplora <URL>",
        "--listen <HOST:PORT>",
        "--inbound <INBOUND>",
        "--sync-interval-ms <N>",
        "--dev-faults <RULES>",
        "--dev-halt-after <ACTION>",
        "--data-dir <D>",
        "D/mnemonic",
    ] {
        assert!(daemon.stdout.contains(says), "{says}: {}", daemon.stdout);
    }
    let send = tern_raw(&["help", "send"], None);
    assert_eq!(send.code, 0);
    assert!(
        send.stdout.contains("--feerate-sat-vb <N>"),
        "{}",
        send.stdout
    );
}

/// BIP84's test mnemonic.
const BIP84_WORDS: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
                           abandon abandon abandon about";

/// The node id of `words` (no passphrase), computed by the core.
fn node_id_of(words: &str) -> String {
    use tern_core::proto::keys::{KeysManager, NodeSeed};
    let seed = NodeSeed::from_words(words, None).expect("words");
    KeysManager::from_seed(&seed, bitcoin::Network::Regtest)
        .expect("keys")
        .node_id()
        .expect("id")
        .to_string()
}

#[test]
fn init_from_words_or_new_words() {
    let dir = temp("init");
    let a = dir.join("a");
    let a_str = a.to_str().expect("utf-8");
    let r = tern_raw(
        &[
            "init",
            "--data-dir",
            a_str,
            "--words-stdin",
            "--network",
            "bitcoin",
        ],
        Some(&format!("  {}\n", BIP84_WORDS.to_uppercase())),
    );
    let out = r.json();
    assert_eq!(
        out["first_address"], "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
        "BIP84's first receive address: {out}"
    );
    assert_eq!(out["node_id"], node_id_of(BIP84_WORDS).as_str());
    assert_eq!(out["network"], "bitcoin");
    assert!(
        out.get("words").is_none(),
        "given words are not echoed: {out}"
    );
    let file = a.join("mnemonic");
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(&file).expect("mnemonic written");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let normalised = BIP84_WORDS.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        format!("{normalised}\n")
    );
    assert!(
        std::fs::read_dir(&a).expect("dir").count() == 1,
        "nothing but D/mnemonic (no temporary file left)"
    );

    // Never over an existing node: neither a mnemonic nor a seed.
    let r = tern_raw(&["init", "--data-dir", a_str], None);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("already holds a node"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        format!("{normalised}\n"),
        "untouched"
    );
    let s = dir.join("s");
    std::fs::create_dir_all(&s).expect("mkdir");
    std::fs::write(s.join("seed"), [4u8; 32]).expect("seed");
    let r = tern_raw(&["init", "--data-dir", s.to_str().expect("utf-8")], None);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("seed exists"), "{}", r.stderr);
    assert!(!s.join("mnemonic").exists());

    // Bad words: exit 2, one line naming the problem, nothing written.
    let bad = dir.join("bad");
    let bad_str = bad.to_str().expect("utf-8");
    for (words, says) in [
        (
            "legal winner thank year wave sausage worth useful legal winner thank yelow",
            "word 12 is not in the BIP39 English word list",
        ),
        (
            "legal winner thank year wave sausage worth useful legal winner thank thank",
            "checksum",
        ),
        (
            "legal winner thank",
            "3 words: a mnemonic has 12, 15, 18, 21 or 24",
        ),
        ("", "0 words"),
    ] {
        let r = tern_raw(
            &["init", "--data-dir", bad_str, "--words-stdin"],
            Some(words),
        );
        assert_eq!(r.code, 2, "{words}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{words}: {}", r.stderr);
        assert!(
            r.stderr.starts_with("tern init: invalid mnemonic: "),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains(says), "{words}: {}", r.stderr);
        assert!(!r.stderr.contains("yelow"), "never echoes the words");
        assert!(!bad.join("mnemonic").exists(), "{words}");
    }

    // New words: 24, shown once, and they are the node's.
    let n = dir.join("new");
    let out = tern_raw(&["init", "--data-dir", n.to_str().expect("utf-8")], None).json();
    let words = out["words"]
        .as_str()
        .expect("generated words shown")
        .to_string();
    assert_eq!(words.split(' ').count(), 24);
    assert_eq!(out["network"], "regtest");
    assert!(out["first_address"]
        .as_str()
        .expect("address")
        .starts_with("bcrt1q"));
    assert_eq!(out["node_id"], node_id_of(&words).as_str());
    assert_eq!(
        std::fs::read_to_string(n.join("mnemonic")).expect("read"),
        format!("{words}\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn daemon_runs_from_the_mnemonic_and_refuses_ambiguity() {
    let (_rt, devnet) = devnet();
    let dir = temp("mnemonic");
    let node_dir = dir.join("n");
    let init = tern_raw(
        &[
            "init",
            "--data-dir",
            node_dir.to_str().expect("utf-8"),
            "--words-stdin",
        ],
        Some(BIP84_WORDS),
    )
    .json();
    let mut d = DaemonProc::new(Path::new(BIN), "n", &node_dir, &devnet.base_url());
    let info = d.start(&[], Duration::from_secs(20)).expect("starts");
    assert_eq!(info["node_id"], init["node_id"], "the words' node");
    assert_eq!(info["node_id"], node_id_of(BIP84_WORDS).as_str());
    assert!(
        !node_dir.join("seed").exists(),
        "no raw seed created beside the words"
    );
    let addr = tern(&node_dir, &["new-address"]).json();
    assert_eq!(
        addr["address"], init["first_address"],
        "BIP84 m/84'/1'/0'/0/0"
    );
    let log = std::fs::read_to_string(node_dir.join("tern.log")).expect("log");
    assert!(!log.contains("abandon"), "the words are never logged");
    assert_eq!(tern(&node_dir, &["stop"]).json()["stopping"], true);
    wait("the daemon to exit", || !d.is_running());

    // Both a mnemonic and a seed: which node is this? Refused, one line.
    std::fs::write(node_dir.join("seed"), [9u8; 32]).expect("seed");
    let out = daemon_once(&devnet, &node_dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("both exist: refusing to start"), "{err}");
    std::fs::remove_file(node_dir.join("seed")).expect("rm");

    // A damaged mnemonic file is refused, not replaced.
    let damaged = "abandon abandon abandon abandon abandon abandon abandon abandon abandon \
                   abandon abandon abandon\n";
    std::fs::write(node_dir.join("mnemonic"), damaged).expect("write");
    let out = daemon_once(&devnet, &node_dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("mnemonic") && err.contains("checksum"),
        "{err}"
    );
    assert!(err.contains("refusing to start"), "{err}");
    assert_eq!(
        std::fs::read_to_string(node_dir.join("mnemonic")).expect("read"),
        damaged
    );
    assert!(!node_dir.join("seed").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn send_through_the_cli() {
    let (_rt, devnet) = devnet();
    let dir = temp("send");
    let nd = dir.join("n");
    let mut d = DaemonProc::new(Path::new(BIN), "n", &nd, &devnet.base_url());
    d.start(&[], Duration::from_secs(20)).expect("starts");
    fund_through_cli(&devnet, &nd, 200_000);
    let to = devnet.faucet_address();
    let to_s = to.to_string();

    let sent = tern(&nd, &["send", &to_s, "50000", "--feerate-sat-vb", "2"]).json();
    let txid: bitcoin::Txid = sent["txid"].as_str().expect("txid").parse().expect("txid");
    let tx = devnet.transaction(&txid).expect("broadcast");
    let paid: u64 = tx
        .output
        .iter()
        .filter(|o| o.script_pubkey == to.script_pubkey())
        .map(|o| o.value.to_sat())
        .sum();
    assert_eq!(paid, 50_000);
    let b = tern(&nd, &["balance"]).json();
    let total = b["onchain_total_sat"].as_u64().expect("total");
    assert!(total < 150_000 && total > 149_000, "fee of ~2 sat/vB: {b}");

    let refused: &[(&[&str], i32, &str)] = &[
        (
            &["send", "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", "1000"],
            2,
            "is for bitcoin, this wallet is on regtest",
        ),
        (
            &["send", &to_s, "293"],
            2,
            "below the dust limit of 294 sat",
        ),
        (&["send", &to_s, "1000000"], 1, "insufficient funds"),
        (
            &["send", &to_s, "all", "--feerate-sat-vb", "1001"],
            2,
            "1 to 1000",
        ),
    ];
    for (args, code, says) in refused {
        let r = tern(&nd, args);
        assert_eq!(r.code, *code, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    let all = tern(&nd, &["send", &to_s, "all"]).json();
    assert!(all["txid"].is_string());
    devnet.mine(1);
    tern(&nd, &["sync"]).json();
    let b = tern(&nd, &["balance"]).json();
    assert_eq!(b["onchain_total_sat"], 0, "everything left: {b}");
    assert_eq!(tern(&nd, &["stop"]).json()["stopping"], true);
    wait("the daemon to exit", || !d.is_running());
    let _ = std::fs::remove_dir_all(&dir);
}
