//! Process-level kill test: `tern daemon` processes (an opener and an acceptor) open a channel
//! against one in-process devnet while the opener or, in other runs, the acceptor is SIGKILLed
//! at a pseudo-random moment of the open, then restarted on the same data dir. Every run must
//! end with the channel ready on both sides, or cleanly failed on the opener (ChannelOpenFailed
//! or the open refused) — and the opener's coins must add up to the satoshi either way.
//!
//! The moments come from a seeded xorshift: the seed is printed, and `TERN_KILL_SEED=<n>`
//! replays the same delays (the protocol point a delay lands on still depends on timing, so
//! the state each run was killed in is printed too). `TERN_KILL_RUNS` changes the run count
//! (40 by default).

// This binary's TRACE log file, for the log-secret check (core/tests/common/trace.rs).
#[path = "../../../core/tests/common/trace.rs"]
mod trace;

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bitcoin::{Address, Amount};
use serde_json::Value;
use tern_devnet::Devnet;
use tern_harness::control::{self, Request};
use tern_harness::demo::{funding_txid, tx_fee};
use tern_harness::procs::{self, str_of, u64_of, DaemonProc, KillRng};

const BIN: &str = env!("CARGO_BIN_EXE_tern");
const FUNDED: u64 = 1_000_000;
const CHANNEL: u64 = 200_000;
const PARALLEL: usize = 4;
const DRIVE: Duration = Duration::from_secs(60);
const DAEMON_ARGS: &[&str] = &["--sync-interval-ms", "300"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    Opener,
    Acceptor,
}

#[derive(Debug)]
struct Report {
    run: usize,
    victim: Victim,
    delay_ms: u64,
    killed_in: String,
    outcome: Result<String, String>,
    secs: f64,
}

fn channel_states(d: &DaemonProc) -> String {
    match d.channels() {
        Ok(l) if l.is_empty() => "no channel".into(),
        Ok(l) => l
            .iter()
            .map(|c| str_of(c, "status").to_string())
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("? ({e})"),
    }
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

/// One run: fund, open, kill the victim at `delay_ms`, restart it, drive the open to its end
/// and check the books. Returns (the state the victim was killed in, the outcome).
fn one_run(
    devnet: &Devnet,
    dir: &Path,
    victim: Victim,
    delay_ms: u64,
    restart_ms: u64,
) -> (String, Result<String, String>) {
    let mut killed_in = String::from("(not killed)");
    let outcome = (|| -> Result<String, String> {
        let bin = Path::new(BIN);
        let url = devnet.base_url();
        let start = Duration::from_secs(30);
        let mut acceptor = DaemonProc::new(bin, "acceptor", &dir.join("acceptor"), &url);
        let mut opener = DaemonProc::new(bin, "opener", &dir.join("opener"), &url);
        let mut acceptor_args = DAEMON_ARGS.to_vec();
        acceptor_args.extend(["--listen", "127.0.0.1:0"]);
        let info = acceptor.start(&acceptor_args, start)?;
        let listen = str_of(&info, "listen").to_string();
        let peer = format!("{}@{listen}", str_of(&info, "node_id"));
        // The restart keeps the port the opener knows.
        let mut acceptor_args = DAEMON_ARGS.to_vec();
        acceptor_args.extend(["--listen", listen.as_str()]);
        opener.start(DAEMON_ARGS, start)?;

        let address = opener.must(&Request::NewAddress)?;
        let address = Address::from_str(str_of(&address, "address"))
            .map_err(|e| format!("address: {e}"))?
            .assume_checked();
        devnet
            .faucet(&address, Amount::from_sat(FUNDED))
            .map_err(|e| format!("faucet: {e}"))?;
        devnet.mine(1);
        opener.wait_for(Duration::from_secs(30), "funded", |o| {
            let _ = o.call(&Request::Sync);
            Ok(u64_of(&o.must(&Request::Balance)?, "onchain_confirmed_sat") == FUNDED)
        })?;

        // Connected first, so that the early moments fall in the open's messages rather than
        // in the handshake.
        opener.must(&Request::Connect { peer: peer.clone() })?;
        // Open in the background; kill the victim after `delay_ms`, mining on the way so that
        // late moments fall in the confirmations and channel_ready.
        let opener_dir = opener.data_dir.clone();
        let request = Request::Open {
            peer: peer.clone(),
            amount_sat: CHANNEL,
            push_msat: 0,
            public: false,
        };
        let open = std::thread::spawn(move || {
            control::call(&opener_dir, &request, Duration::from_secs(60))
        });
        let began = Instant::now();
        let mut mined_at = Instant::now();
        while began.elapsed() < Duration::from_millis(delay_ms) {
            if mined_at.elapsed() >= Duration::from_millis(300) {
                devnet.mine(1);
                mined_at = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let target = match victim {
            Victim::Opener => &mut opener,
            Victim::Acceptor => &mut acceptor,
        };
        killed_in = channel_states(target);
        target.check_durability()?;
        target.kill();
        std::thread::sleep(Duration::from_millis(restart_ms));
        match victim {
            Victim::Opener => opener.start(DAEMON_ARGS, start)?,
            Victim::Acceptor => acceptor.start(&acceptor_args, start)?,
        };
        let open_result = open
            .join()
            .map_err(|_| "the open thread panicked".to_string())?;

        // Drive to the end: mine, sync, watch the opener's events and both channel lists.
        let deadline = Instant::now() + DRIVE;
        let (mut ready_event, mut failed) = (false, None::<String>);
        loop {
            for e in opener.take_events()? {
                match str_of(&e, "type") {
                    "ChannelReady" => ready_event = true,
                    "ChannelOpenFailed" => failed = Some(str_of(&e, "reason").to_string()),
                    _ => {}
                }
            }
            let oc = opener.channels()?;
            let ac = acceptor.channels()?;
            let both_ready = oc.len() == 1
                && oc[0]["state"] == "Ready"
                && ac.iter().any(|c| c["state"] == "Ready");
            if both_ready && ready_event {
                check_audits(&opener, &acceptor)?;
                return check_ready(devnet, &opener, &acceptor);
            }
            let open_refused = open_result.is_err() && oc.is_empty();
            if failed.is_some() || (open_refused && began.elapsed() > Duration::from_secs(8)) {
                let why = failed.clone().unwrap_or_else(|| match &open_result {
                    Err(e) => format!("open refused: {e}"),
                    Ok(_) => String::new(),
                });
                check_audits(&opener, &acceptor)?;
                return check_failed(&opener, &acceptor, &why);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "neither ready nor failed after {DRIVE:?} (open: {open_result:?}; failed: \
                     {failed:?}); opener {oc:?}; acceptor {ac:?}\nopener log: {}\nacceptor \
                     log: {}",
                    opener.log_tail(3000),
                    acceptor.log_tail(3000)
                ));
            }
            devnet.mine(1);
            let _ = opener.call(&Request::Sync);
            let _ = acceptor.call(&Request::Sync);
            std::thread::sleep(Duration::from_millis(250));
        }
    })();
    (killed_in, outcome)
}

/// Both nodes' self-audit of persist-before-act is clean.
fn check_audits(opener: &DaemonProc, acceptor: &DaemonProc) -> Result<(), String> {
    opener.check_durability()?;
    acceptor.check_durability()?;
    Ok(())
}

/// Ready: on-chain + channel + funding fee = funded, nothing locked, the acceptor agrees.
fn check_ready(
    devnet: &Devnet,
    opener: &DaemonProc,
    acceptor: &DaemonProc,
) -> Result<String, String> {
    let ch = opener.channels()?.remove(0);
    let txid = funding_txid(&ch)?;
    let fee = tx_fee(devnet, &txid)?;
    let channel_sat = u64_of(&ch, "our_balance_msat") / 1000;
    ensure(channel_sat == CHANNEL, || format!("channel balance {ch}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let _ = opener.call(&Request::Sync);
        let b = opener.must(&Request::Balance)?;
        let onchain = u64_of(&b, "onchain_total_sat");
        if onchain + channel_sat + fee == FUNDED && u64_of(&b, "onchain_locked_sat") == 0 {
            break;
        }
        ensure(Instant::now() < deadline, || {
            format!(
                "funds do not add up: on-chain {onchain} + channel {channel_sat} + fee {fee} \
                 != {FUNDED}: {b}"
            )
        })?;
        std::thread::sleep(Duration::from_millis(200));
    }
    let ac = acceptor.channels()?;
    let theirs: Vec<&Value> = ac
        .iter()
        .filter(|c| c["channel_id"] == ch["channel_id"])
        .collect();
    ensure(
        theirs.len() == 1
            && theirs[0]["state"] == "Ready"
            && u64_of(theirs[0], "funding_sat") == CHANNEL
            && u64_of(theirs[0], "our_balance_msat") == 0,
        || format!("the acceptor's view differs: {ac:?}"),
    )?;
    Ok(format!("ready (fee {fee})"))
}

/// Failed: the opener has no live channel and every coin back, unlocked.
fn check_failed(opener: &DaemonProc, acceptor: &DaemonProc, why: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let _ = opener.call(&Request::Sync);
        let b = opener.must(&Request::Balance)?;
        let oc = opener.channels()?;
        let live = oc
            .iter()
            .any(|c| c["state"] != "Failed" && c["state"] != "Aborted");
        if !live
            && u64_of(&b, "onchain_total_sat") == FUNDED
            && u64_of(&b, "onchain_locked_sat") == 0
        {
            let left = channel_states(acceptor);
            return Ok(format!(
                "failed cleanly ({why}); acceptor left with: {left}"
            ));
        }
        ensure(Instant::now() < deadline, || {
            format!("failed ({why}) but the coins are not back: {b}; opener channels {oc:?}")
        })?;
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn sigkill_during_open_at_random_moments() {
    let seed = procs::kill_seed();
    let runs = procs::kill_runs(40);
    eprintln!("kill test: seed {seed} (replay with TERN_KILL_SEED={seed}), {runs} runs");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let devnet = rt.block_on(Devnet::start()).expect("devnet");
    let base = procs::temp_dir("tern-kill");
    let started = Instant::now();
    let reports = procs::run_parallel(runs, PARALLEL, |run| {
        let mut rng = KillRng::new(seed, run as u64);
        let victim = if run.is_multiple_of(2) {
            Victim::Opener
        } else {
            Victim::Acceptor
        };
        // On loopback, with the peers connected, the open's messages take ~25 ms: half
        // the runs fall in them, the others in the confirmations (every run mines a
        // block every 300 ms) and channel_ready.
        let delay_ms = match rng.below(4) {
            0 | 1 => rng.below(30),
            2 => 30 + rng.below(270),
            _ => 300 + rng.below(600),
        };
        let restart_ms = rng.below(300);
        let t = Instant::now();
        let dir = base.join(format!("run-{run}"));
        let (killed_in, outcome) = one_run(&devnet, &dir, victim, delay_ms, restart_ms);
        if outcome.is_ok() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let report = Report {
            run,
            victim,
            delay_ms,
            killed_in,
            outcome,
            secs: t.elapsed().as_secs_f64(),
        };
        eprintln!(
            "run {:2} {:?} killed at {} ms in [{}]: {} ({:.1}s)",
            report.run,
            report.victim,
            report.delay_ms,
            report.killed_in,
            match &report.outcome {
                Ok(o) => o.clone(),
                Err(e) => format!("FAILED: {}", e.lines().next().unwrap_or("")),
            },
            report.secs
        );
        report
    });
    let failures: Vec<&Report> = reports.iter().filter(|r| r.outcome.is_err()).collect();
    let ready = reports
        .iter()
        .filter(|r| matches!(&r.outcome, Ok(o) if o.starts_with("ready")))
        .count();
    eprintln!(
        "kill test: {} runs in {:.1}s: {ready} ready, {} failed cleanly, {} broken",
        reports.len(),
        started.elapsed().as_secs_f64(),
        reports.len() - ready - failures.len(),
        failures.len()
    );
    assert_eq!(reports.len(), runs, "every run reported");
    let detail: Vec<String> = failures
        .iter()
        .map(|r| {
            format!(
                "run {} ({:?} killed at {} ms in [{}]): {}",
                r.run,
                r.victim,
                r.delay_ms,
                r.killed_in,
                r.outcome.as_ref().err().map_or("", |e| e.as_str())
            )
        })
        .collect();
    procs::fail_on_broken(&detail, runs, seed, &base);
    devnet.shutdown();
    let _ = std::fs::remove_dir_all(&base);
}
