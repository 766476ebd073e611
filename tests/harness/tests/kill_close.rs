//! Process-level kill test of closes (issue 14): two `tern daemon` processes (an opener and an
//! acceptor) with a ready channel on one in-process devnet start a cooperative close (`close`
//! from either side) or, in every fourth run, a force close (`force-close`, instead of the
//! cooperative close or a moment after it); while the close runs, one side or the other is
//! SIGKILLed one to three times at pseudo-random moments and restarted on its data dir. The
//! moments are spread over the close's windows: the negotiation (`shutdown`, `closing_signed`,
//! measured from the close request or from the peers' reconnection), the broadcast and the
//! confirmations (measured from the funding spend reaching the devnet) and, after a force
//! close, the sweep of the timelocked `to_local` (measured from the block it matures at).
//!
//! Every run must end with both channels closed and:
//! - exactly one close: the funding outpoint spent by one confirmed transaction, which is
//!   every closing transaction or commitment either side ever broadcast (their logs) — or, in
//!   a force run, the one the race left;
//! - never a commitment after a cooperative close was agreed: without an accepted force close
//!   nobody broadcast a commitment and the funding's spender is a closing transaction; in a
//!   force run only the side that force-closed broadcast one, and never after a cooperative
//!   close of its own;
//! - the coins back to the satoshi: both wallets + the funding fee + the fees of the close and
//!   of every transaction spending its outputs (+ the unspent 330-sat anchors) = the coins the
//!   opener was funded with; after a cooperative close each side got exactly its balance (the
//!   funder paid the fee); each side's `ChannelClosed` names the spender and what came back;
//! - one `ChannelClosing` and one `ChannelClosed` on each side across all restarts, of the
//!   right kind, and a clean persist-before-act self-audit.
//!
//! `TERN_KILL_SEED=<n>` replays a seed's plans (which side, when; the protocol point a moment
//! lands on still depends on timing, so the state each kill hit is printed); `TERN_KILL_RUNS`
//! changes the run count (16 by default, about 15 s; 80 runs take about a minute).
//!
//! Bugs this test found outside the harness (K1/K2/K3, see [`Known`]; fixed in the core since)
//! are named on the run's line ("KNOWN BUG Kn") and fail it; `TERN_KILL_LENIENT=1` only
//! reports them (every other check holds in those runs too: coins, one close, no commitment
//! over an agreed close).

// This binary's TRACE log file, for the log-secret check (core/tests/common/trace.rs).
#[path = "../../../core/tests/common/trace.rs"]
mod trace;

use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bitcoin::{Address, Amount, OutPoint};
use serde_json::Value;
use tern_devnet::Devnet;
use tern_harness::control::{self, CallError, Request};
use tern_harness::demo::{funding_txid, tx_fee};
use tern_harness::procs::{self, is_commitment, str_of, u64_of, DaemonProc, KillRng};

const BIN: &str = env!("CARGO_BIN_EXE_tern");
const FUNDED: u64 = 1_000_000;
const CHANNEL: u64 = 200_000;
/// The acceptor's balance (pushed at the open), so that both sides have an output.
const PUSH_SAT: u64 = 60_000;
const ANCHOR_SAT: u64 = 330;
const PARALLEL: usize = 4;
const DRIVE: Duration = Duration::from_secs(120);
const START: Duration = Duration::from_secs(30);
const DAEMON_ARGS: &[&str] = &["--sync-interval-ms", "300"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Opener,
    Acceptor,
}

impl Side {
    fn of(bit: u64) -> Side {
        if bit == 0 {
            Side::Opener
        } else {
            Side::Acceptor
        }
    }
}

/// The window a kill is aimed at, and what its delay is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// `shutdown` / `closing_signed`: from the close request, or for a later kill from the
    /// peers' reconnection after the previous restart.
    Negotiation,
    /// The broadcast and the confirmations: from the funding spend reaching the devnet.
    OnChain,
    /// The `to_local` sweep after a force close: from the block it matures at.
    Sweep,
}

#[derive(Debug, Clone, Copy)]
struct Kill {
    victim: Side,
    phase: Phase,
    delay_ms: u64,
    restart_ms: u64,
}

/// How the channel is closed.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// `close` from `closer`.
    Cooperative { closer: Side },
    /// `force-close` from `forcer`, alone.
    Force { forcer: Side },
    /// `close` from `closer`, then `force-close` from `forcer` `after_ms` later.
    CloseThenForce {
        closer: Side,
        forcer: Side,
        after_ms: u64,
    },
}

#[derive(Debug, Clone)]
struct Plan {
    mode: Mode,
    kills: Vec<Kill>,
}

impl Plan {
    fn new(rng: &mut KillRng, run: usize) -> Plan {
        let mode = if run % 4 == 3 {
            let forcer = Side::of(rng.below(2));
            if rng.below(2) == 0 {
                Mode::Force { forcer }
            } else {
                Mode::CloseThenForce {
                    closer: Side::of(rng.below(2)),
                    forcer,
                    after_ms: rng.below(40),
                }
            }
        } else {
            Mode::Cooperative {
                closer: Side::of(rng.below(2)),
            }
        };
        let force = !matches!(mode, Mode::Cooperative { .. });
        let n = 1 + rng.below(3);
        let mut kills: Vec<Kill> = (0..n)
            .map(|_| {
                let phase = match rng.below(if force { 3 } else { 2 }) {
                    0 => Phase::Negotiation,
                    1 => Phase::OnChain,
                    _ => Phase::Sweep,
                };
                let delay_ms = match phase {
                    // On loopback the messages of a negotiation take a few ms each.
                    Phase::Negotiation => rng.below(40),
                    // A block every 300 ms: the broadcast, then the confirmations (6 deep
                    // at 1.8 s: some kills hit a closed channel).
                    Phase::OnChain => rng.below(2_000),
                    // The sweep goes out at the next sync (300 ms) and confirms a block later.
                    Phase::Sweep => rng.below(700),
                };
                Kill {
                    victim: Side::of(rng.below(2)),
                    phase,
                    delay_ms,
                    restart_ms: rng.below(300),
                }
            })
            .collect();
        kills.sort_by_key(|k| k.phase);
        let plan = Plan { mode, kills };
        // The sweep window is the forcer's (the other side's to_remote is long swept).
        let forcer = plan.forcer();
        let mut plan = plan;
        for k in plan.kills.iter_mut().filter(|k| k.phase == Phase::Sweep) {
            k.victim = forcer.unwrap_or(k.victim);
        }
        plan
    }

    fn forcer(&self) -> Option<Side> {
        match self.mode {
            Mode::Cooperative { .. } => None,
            Mode::Force { forcer } | Mode::CloseThenForce { forcer, .. } => Some(forcer),
        }
    }

    fn closer(&self) -> Option<Side> {
        match self.mode {
            Mode::Cooperative { closer } | Mode::CloseThenForce { closer, .. } => Some(closer),
            Mode::Force { .. } => None,
        }
    }
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

/// The two daemons of a run.
struct Pair {
    opener: DaemonProc,
    acceptor: DaemonProc,
    acceptor_args: Vec<String>,
    peer: String,
}

impl Pair {
    fn start(devnet: &Devnet, dir: &Path) -> Result<Pair, String> {
        let bin = Path::new(BIN);
        let url = devnet.base_url();
        let mut acceptor = DaemonProc::new(bin, "acceptor", &dir.join("acceptor"), &url);
        let mut opener = DaemonProc::new(bin, "opener", &dir.join("opener"), &url);
        let mut args = DAEMON_ARGS.to_vec();
        args.extend(["--listen", "127.0.0.1:0"]);
        let info = acceptor.start(&args, START)?;
        let listen = str_of(&info, "listen").to_string();
        let peer = format!("{}@{listen}", str_of(&info, "node_id"));
        // A restart keeps the port the opener dials.
        let mut acceptor_args: Vec<String> = DAEMON_ARGS.iter().map(|s| s.to_string()).collect();
        acceptor_args.extend(["--listen".to_string(), listen]);
        opener.start(DAEMON_ARGS, START)?;
        Ok(Pair {
            opener,
            acceptor,
            acceptor_args,
            peer,
        })
    }

    fn get(&self, side: Side) -> &DaemonProc {
        match side {
            Side::Opener => &self.opener,
            Side::Acceptor => &self.acceptor,
        }
    }

    fn restart(&mut self, side: Side) -> Result<(), String> {
        match side {
            Side::Opener => self.opener.start(DAEMON_ARGS, START).map(|_| ()),
            Side::Acceptor => {
                let args: Vec<&str> = self.acceptor_args.iter().map(String::as_str).collect();
                self.acceptor.start(&args, START).map(|_| ())
            }
        }
    }

    fn kill(&mut self, side: Side) {
        match side {
            Side::Opener => self.opener.kill(),
            Side::Acceptor => self.acceptor.kill(),
        }
    }

    fn sync(&self) {
        let _ = self.opener.call(&Request::Sync);
        let _ = self.acceptor.call(&Request::Sync);
    }

    /// Funds the opener, opens a channel pushing [`PUSH_SAT`] to the acceptor and drives it
    /// to ready on both sides (no kill yet).
    fn open_ready(&mut self, devnet: &Devnet) -> Result<Opened, String> {
        let address = self.opener.must(&Request::NewAddress)?;
        let address = Address::from_str(str_of(&address, "address"))
            .map_err(|e| format!("address: {e}"))?
            .assume_checked();
        devnet
            .faucet(&address, Amount::from_sat(FUNDED))
            .map_err(|e| format!("faucet: {e}"))?;
        devnet.mine(1);
        self.opener
            .wait_for(Duration::from_secs(30), "funded", |o| {
                let _ = o.call(&Request::Sync);
                Ok(u64_of(&o.must(&Request::Balance)?, "onchain_confirmed_sat") == FUNDED)
            })?;
        self.opener.must(&Request::Open {
            peer: self.peer.clone(),
            amount_sat: CHANNEL,
            push_msat: PUSH_SAT * 1000,
            public: false,
        })?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            devnet.mine(1);
            self.sync();
            let oc = self.opener.channels()?;
            let ac = self.acceptor.channels()?;
            if oc.len() == 1
                && ac.len() == 1
                && oc[0]["state"] == "Ready"
                && ac[0]["state"] == "Ready"
            {
                let ch = oc[0].clone();
                let txid = funding_txid(&ch)?;
                let funding = OutPoint::from_str(str_of(&ch, "funding_txo"))
                    .map_err(|e| format!("funding outpoint: {e}"))?;
                let funding_fee = tx_fee(devnet, &txid)?;
                ensure(
                    u64_of(&ch, "our_balance_msat") == (CHANNEL - PUSH_SAT) * 1000
                        && u64_of(&ac[0], "our_balance_msat") == PUSH_SAT * 1000,
                    || format!("balances after the open: {ch} / {}", ac[0]),
                )?;
                // The opener's change, once its wallet sees it.
                let want = FUNDED - CHANNEL - funding_fee;
                self.opener
                    .wait_for(Duration::from_secs(20), "its change", |o| {
                        let _ = o.call(&Request::Sync);
                        Ok(u64_of(&o.must(&Request::Balance)?, "onchain_total_sat") == want)
                    })?;
                // Both sides' events of the open, out of the way.
                self.opener.take_events()?;
                self.acceptor.take_events()?;
                return Ok(Opened {
                    channel_id: str_of(&ch, "channel_id").to_string(),
                    funding,
                    funding_fee,
                    opener_change: want,
                    anchors: ch["anchors"] == Value::Bool(true),
                });
            }
            ensure(Instant::now() < deadline, || {
                format!("not ready: opener {oc:?}; acceptor {ac:?}")
            })?;
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A ready channel.
struct Opened {
    channel_id: String,
    funding: OutPoint,
    funding_fee: u64,
    opener_change: u64,
    anchors: bool,
}

/// A control call running in the background (a close while the node may be killed).
struct Pending {
    side: Side,
    force: bool,
    handle: JoinHandle<Result<Value, CallError>>,
}

fn spawn_call(pair: &Pair, side: Side, force: bool, channel_id: &str) -> Pending {
    let dir = pair.get(side).data_dir.clone();
    let request = if force {
        Request::ForceClose {
            channel_id: channel_id.to_string(),
        }
    } else {
        Request::Close {
            channel_id: channel_id.to_string(),
            address: None,
        }
    };
    Pending {
        side,
        force,
        handle: std::thread::spawn(move || control::call(&dir, &request, Duration::from_secs(60))),
    }
}

/// The one channel's status words, or what went wrong asking.
fn status_of(d: &DaemonProc) -> String {
    match d.channels() {
        Ok(l) if l.len() == 1 => str_of(&l[0], "status").to_string(),
        Ok(l) => format!("{} channels", l.len()),
        Err(e) => format!("? ({e})"),
    }
}

/// What a run saw of a side's events (accumulated across its restarts).
#[derive(Debug, Default)]
struct Events {
    closing: Vec<Value>,
    closed: Vec<Value>,
    /// `ChannelFailed`: a force close (ours or the peer's `error`).
    failed: Vec<Value>,
    /// `ChannelOpenFailed`, wrong for a channel that was ready (known bug K2).
    open_failed: Vec<Value>,
}

impl Events {
    fn take(&mut self, d: &DaemonProc) -> Result<(), String> {
        for e in d.take_events()? {
            match str_of(&e, "type") {
                "ChannelClosing" => self.closing.push(e),
                "ChannelClosed" => self.closed.push(e),
                "ChannelFailed" => self.failed.push(e),
                "ChannelOpenFailed" => self.open_failed.push(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// The state of a run's drive.
struct Drive {
    began: Instant,
    spent_at: Option<Instant>,
    matured_at: Option<Instant>,
    /// When the latest restart's peers were connected again.
    reconnected_at: Option<Instant>,
    restarted: bool,
    force_accepted: bool,
}

/// One run: open, close per `plan` with its kills, drive to the end, check everything.
fn one_run(
    devnet: &Devnet,
    dir: &Path,
    plan: &Plan,
    killed_in: &mut Vec<String>,
) -> Result<String, String> {
    let mut pair = Pair::start(devnet, dir)?;
    let opened = pair.open_ready(devnet)?;
    let id = opened.channel_id.clone();
    let chain = devnet.chain();
    let mut pending: Vec<Pending> = Vec::new();
    let mut force_due: Option<(Side, Instant)> = None;
    let began = Instant::now();
    match plan.mode {
        Mode::Cooperative { closer } => pending.push(spawn_call(&pair, closer, false, &id)),
        Mode::Force { forcer } => pending.push(spawn_call(&pair, forcer, true, &id)),
        Mode::CloseThenForce {
            closer,
            forcer,
            after_ms,
        } => {
            pending.push(spawn_call(&pair, closer, false, &id));
            force_due = Some((forcer, began + Duration::from_millis(after_ms)));
        }
    }
    let mut d = Drive {
        began,
        spent_at: None,
        matured_at: None,
        reconnected_at: None,
        restarted: false,
        force_accepted: false,
    };
    let (mut oe, mut ae) = (Events::default(), Events::default());
    let mut next_kill = 0;
    let (mut mined_at, mut polled_at) = (Instant::now(), Instant::now());
    // The requests a kill interrupted, to repeat once the node is back (as a user would).
    let mut retry: Vec<(Side, bool)> = Vec::new();
    let deadline = Instant::now() + DRIVE;
    let result = loop {
        let now = Instant::now();
        if d.spent_at.is_none() && chain.outspend(&opened.funding).is_some() {
            d.spent_at = Some(now);
        }
        if let Some((forcer, at)) = force_due {
            if now >= at {
                pending.push(spawn_call(&pair, forcer, true, &id));
                force_due = None;
            }
        }
        // Finished requests: an accepted force close allows a commitment; one a kill cut off
        // is repeated after the restart unless the node stored it first.
        let (done, still): (Vec<Pending>, Vec<Pending>) =
            pending.into_iter().partition(|p| p.handle.is_finished());
        pending = still;
        for p in done {
            match p.handle.join() {
                Ok(Ok(_)) => d.force_accepted |= p.force,
                Ok(Err(CallError::Daemon(e))) => {
                    killed_in.push(format!(
                        "{:?} {} refused: {}",
                        p.side,
                        if p.force { "force-close" } else { "close" },
                        e.message
                    ));
                }
                Ok(Err(_)) | Err(_) => retry.push((p.side, p.force)),
            }
        }
        // The kill due now, if any.
        let anchor = plan.kills.get(next_kill).map(|k| match k.phase {
            Phase::Negotiation if !d.restarted => Some(d.began),
            Phase::Negotiation => d.reconnected_at.or(d.spent_at),
            Phase::OnChain => d.spent_at,
            Phase::Sweep => d.matured_at,
        });
        if let (Some(k), Some(anchor)) = (plan.kills.get(next_kill), anchor) {
            if anchor.is_some_and(|a| now >= a + Duration::from_millis(k.delay_ms)) {
                let state = status_of(pair.get(k.victim));
                pair.get(k.victim).check_durability()?;
                pair.kill(k.victim);
                std::thread::sleep(Duration::from_millis(k.restart_ms));
                pair.restart(k.victim)?;
                killed_in.push(format!(
                    "{:?}@{:?}+{}ms [{state}]",
                    k.victim, k.phase, k.delay_ms
                ));
                d.restarted = true;
                d.reconnected_at = None;
                next_kill += 1;
                continue;
            }
        }
        // Interrupted requests, repeated unless the node already acted on them.
        for (side, force) in std::mem::take(&mut retry) {
            let status = status_of(pair.get(side));
            let stored = if force {
                status.starts_with("force-closed by us")
            } else {
                status.starts_with("closing") || status.contains("cooperative")
            };
            if stored {
                d.force_accepted |= force;
            } else {
                pending.push(spawn_call(&pair, side, force, &id));
            }
        }
        if d.restarted && d.reconnected_at.is_none() {
            if let Ok(Value::Array(peers)) = pair.opener.must(&Request::Peers) {
                if !peers.is_empty() {
                    d.reconnected_at = Some(now);
                }
            }
        }
        if mined_at.elapsed() >= Duration::from_millis(300) {
            mine(devnet, &pair, &mut d);
            mined_at = Instant::now();
        }
        if polled_at.elapsed() >= Duration::from_millis(300) {
            polled_at = Instant::now();
            pair.sync();
            oe.take(&pair.opener)?;
            ae.take(&pair.acceptor)?;
            let statuses = (status_of(&pair.opener), status_of(&pair.acceptor));
            // Done once both closed, unless a kill is still due (one whose window never
            // came, a sweep after a cooperative close, is dropped).
            let kill_due = matches!(anchor, Some(Some(_)));
            if statuses.0.starts_with("closed")
                && statuses.1.starts_with("closed")
                && pending.is_empty()
                && retry.is_empty()
                && !kill_due
            {
                break check_end(devnet, &pair, plan, &opened, &d, &mut oe, &mut ae);
            }
            if Instant::now() >= deadline {
                break Err(format!(
                    "not closed after {DRIVE:?}: opener \"{}\", acceptor \"{}\"\nopener log: {}\nacceptor log: {}",
                    statuses.0,
                    statuses.1,
                    pair.opener.log_tail(3000),
                    pair.acceptor.log_tail(3000)
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    pair.opener.stop(Duration::from_secs(5));
    pair.acceptor.stop(Duration::from_secs(5));
    result
}

/// A block; after a force close, straight to the block before the `to_local` matures (the
/// next one matures it: the sweep window starts).
fn mine(devnet: &Devnet, pair: &Pair, d: &mut Drive) {
    let claims: Vec<Value> = [&pair.opener, &pair.acceptor]
        .iter()
        .filter_map(|p| p.must(&Request::Balance).ok())
        .flat_map(|b| b["claimable"].as_array().cloned().unwrap_or_default())
        .collect();
    let timelocked = claims
        .iter()
        .filter(|c| c["status"]["state"] == "timelocked")
        .filter_map(|c| c["status"]["height"].as_u64())
        .max();
    let (tip, _) = devnet.tip();
    // The sweep window opens when the sweep can go out (for the next block), or once it is
    // seen going out (another run may have mined past the maturity).
    let sweeping = claims.iter().any(|c| c["status"]["state"] == "sweeping");
    match timelocked {
        Some(h) if u64::from(tip) + 1 < h => {
            devnet.mine(h as u32 - 1 - tip);
            d.matured_at.get_or_insert_with(Instant::now);
            return;
        }
        Some(_) => {
            d.matured_at.get_or_insert_with(Instant::now);
        }
        None if sweeping && d.spent_at.is_some() => {
            d.matured_at.get_or_insert_with(Instant::now);
        }
        None => {}
    }
    devnet.mine(1);
}

/// The txids of closing transactions and commitments a side's log says it broadcast (or
/// tried to).
fn broadcasts(d: &DaemonProc) -> (BTreeSet<String>, BTreeSet<String>) {
    let log = std::fs::read_to_string(d.data_dir.join(tern_harness::daemon::LOG_FILE))
        .unwrap_or_default();
    let (mut mutual, mut commitment) = (BTreeSet::new(), BTreeSet::new());
    for line in log.lines().filter(|l| l.contains("broadcast")) {
        let txid = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("txid="))
            .unwrap_or("?")
            .to_string();
        if line.contains("kind=MutualClose") {
            mutual.insert(txid);
        } else if line.contains("kind=Commitment") {
            commitment.insert(txid);
        }
    }
    (mutual, commitment)
}

/// The closing transactions `d` agreed ("cooperative close agreed ... txid=" in its log).
fn agreed_closes(d: &DaemonProc) -> BTreeSet<String> {
    std::fs::read_to_string(d.data_dir.join(tern_harness::daemon::LOG_FILE))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("cooperative close agreed"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("txid="))
                .map(str::to_string)
        })
        .collect()
}

fn check_end(
    devnet: &Devnet,
    pair: &Pair,
    plan: &Plan,
    opened: &Opened,
    d: &Drive,
    oe: &mut Events,
    ae: &mut Events,
) -> Result<String, String> {
    let chain = devnet.chain();
    let spend = chain
        .outspend(&opened.funding)
        .ok_or("the funding is unspent")?;
    ensure(spend.confirmed.is_some(), || {
        format!("the close {} is unconfirmed", spend.txid)
    })?;
    let close = devnet
        .transaction(&spend.txid)
        .ok_or("the close is unknown")?;
    let commitment = is_commitment(&close);
    let forcer = plan.forcer();
    // Never a commitment after a cooperative close was agreed.
    let (om, oc) = broadcasts(&pair.opener);
    let (am, ac) = broadcasts(&pair.acceptor);
    let txid = spend.txid.to_string();
    ensure(
        d.force_accepted || (!commitment && oc.is_empty() && ac.is_empty()),
        || {
            format!("a commitment without a force close: on chain {commitment}, broadcast by the opener {oc:?}, by the acceptor {ac:?}")
        },
    )?;
    // A side never broadcasts both; a commitment on chain is the forcer's. The side that was
    // told of the force close by the peer's `error` may still try its own commitment (the
    // devnet refuses it: the forcer's is in the mempool): a gap of the funding-check guard,
    // reported.
    let mut known = Known::default();
    let mut changes = Vec::new();
    for (side, m, c) in [(Side::Opener, &om, &oc), (Side::Acceptor, &am, &ac)] {
        ensure(c.is_empty() || m.is_empty(), || {
            format!("{side:?} broadcast commitments {c:?} and closing transactions {m:?} (forcer {forcer:?})")
        })?;
        if !c.is_empty() && forcer != Some(side) {
            ensure(!c.contains(&spend.txid.to_string()), || {
                format!("{side:?}, told by the forcer's error, got its commitment {c:?} on chain")
            })?;
            known.k1.push(side);
        }
    }
    // Exactly one close: what was broadcast is the spender (a force run may also have lost
    // the race with the other kind). A cooperative close is logged "broadcast" only once the
    // devnet answered: a kill in between leaves no line, so a closing transaction that side
    // agreed (stored before its broadcast) counts when it is the spender.
    let all: BTreeSet<&String> = om.iter().chain(&am).chain(&oc).chain(&ac).collect();
    let mutual: BTreeSet<&String> = om.iter().chain(&am).collect();
    let agreed = !commitment
        && [&pair.opener, &pair.acceptor]
            .iter()
            .any(|d| agreed_closes(d).contains(&txid));
    ensure((all.contains(&txid) || agreed) && mutual.len() <= 1, || {
        format!("the spender {txid} (commitment: {commitment}, agreed: {agreed}); broadcast: closing txs {mutual:?}, commitments opener {oc:?} acceptor {ac:?}")
    })?;
    if forcer.is_none() {
        ensure(all.len() == 1, || {
            format!("broadcast {all:?}, spent by {txid}")
        })?;
    }
    // The coins: fees of the close and of whatever spent its outputs, anchors left unspent.
    let mut fees = opened.funding_fee + tx_fee(devnet, &spend.txid)?;
    let (mut spenders, mut left) = (BTreeSet::new(), 0u64);
    for vout in 0..close.output.len() as u32 {
        let op = OutPoint::new(spend.txid, vout);
        match chain.outspend(&op) {
            Some(s) => {
                ensure(s.confirmed.is_some(), || {
                    format!("{op} spent by {} unconfirmed", s.txid)
                })?;
                spenders.insert(s.txid);
            }
            None if commitment => {
                let value = close.output[vout as usize].value.to_sat();
                ensure(opened.anchors && value == ANCHOR_SAT, || {
                    format!("{op} ({value} sat) of the commitment is left unswept")
                })?;
                left += value;
            }
            None => {}
        }
    }
    for t in &spenders {
        fees += tx_fee(devnet, t)?;
    }
    // A CPFP child of the forcer's commitment (its anchor and a wallet coin): the forcer's
    // wallet paid the child's fee and got the anchor's 330 sat back, which is not what the
    // close gave back (`claimed_sat`).
    let mut cpfp_cost = 0i64;
    for vout in 0..close.output.len() as u32 {
        if !commitment || close.output[vout as usize].value.to_sat() != ANCHOR_SAT {
            continue;
        }
        if let Some(s) = chain.outspend(&OutPoint::new(spend.txid, vout)) {
            let child = devnet
                .transaction(&s.txid)
                .ok_or("the anchor's spender is unknown")?;
            if child.input.len() > 1 {
                cpfp_cost += tx_fee(devnet, &s.txid)? as i64 - ANCHOR_SAT as i64;
            }
        }
    }
    let mut wallets = [0u64; 2];
    for (i, p) in [&pair.opener, &pair.acceptor].into_iter().enumerate() {
        let b = p.must(&Request::Balance)?;
        ensure(
            u64_of(&b, "onchain_locked_sat") == 0 && u64_of(&b, "claimable_sat") == 0,
            || format!("{}: {b}", p.name),
        )?;
        wallets[i] = u64_of(&b, "onchain_total_sat");
    }
    // The wallets may lag the chain by a sync.
    let deadline = Instant::now() + Duration::from_secs(20);
    while wallets[0] + wallets[1] + fees + left != FUNDED && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        pair.sync();
        for (i, p) in [&pair.opener, &pair.acceptor].into_iter().enumerate() {
            wallets[i] = u64_of(&p.must(&Request::Balance)?, "onchain_total_sat");
        }
    }
    ensure(wallets[0] + wallets[1] + fees + left == FUNDED, || {
        format!(
            "coins: opener {} + acceptor {} + fees {fees} + anchors left {left} != {FUNDED} (close {txid}, commitment {commitment}, spenders {spenders:?})",
            wallets[0], wallets[1]
        )
    })?;
    if !commitment {
        let close_fee = tx_fee(devnet, &spend.txid)?;
        ensure(
            wallets[1] == PUSH_SAT
                && wallets[0] == FUNDED - opened.funding_fee - PUSH_SAT - close_fee,
            || {
                format!(
                    "cooperative close: opener {} acceptor {} (close fee {close_fee})",
                    wallets[0], wallets[1]
                )
            },
        )?;
    }
    // Events: once each across the restarts, naming the spender and what came back.
    oe.take(&pair.opener)?;
    ae.take(&pair.acceptor)?;
    let child_of = |side| if forcer == Some(side) { cpfp_cost } else { 0 };
    for (side, e, gained) in [
        (
            Side::Opener,
            &*oe,
            wallets[0] as i64 - opened.opener_change as i64 + child_of(Side::Opener),
        ),
        (
            Side::Acceptor,
            &*ae,
            wallets[1] as i64 + child_of(Side::Acceptor),
        ),
    ] {
        let want = if !commitment {
            if plan.closer() == Some(side) {
                "cooperative_local"
            } else {
                "cooperative_remote"
            }
        } else if forcer == Some(side) {
            "local_force"
        } else {
            "remote_force"
        };
        // ChannelClosing: the last one names the close's kind, and one came for each change
        // of kind a race explains — a cooperative close a force close overtook (either way
        // round, in a close-then-force run), or (K1) the side's own refused commitment after
        // the peer's `error`.
        let kinds: Vec<&str> = e.closing.iter().map(|c| str_of(c, "kind")).collect();
        let racing = matches!(plan.mode, Mode::CloseThenForce { .. });
        if forcer != Some(side) && kinds.contains(&"local_force") && !known.k1.contains(&side) {
            known.k1.push(side);
        }
        let explained = |k: &&str| {
            (racing && k.starts_with("cooperative_"))
                || (*k == "local_force" && (forcer == Some(side) || known.k1.contains(&side)))
        };
        let kinds_ok = kinds.last() == Some(&want)
            && kinds.windows(2).all(|w| w[0] != w[1])
            && kinds[..kinds.len() - 1].iter().all(explained)
            && kinds.len() <= 3;
        if kinds.len() > 1 {
            changes.push(format!("{side:?} {kinds:?}"));
        }
        // K2: a force close of a channel already shutting down (ours, or the peer's `error`)
        // says "open failed".
        let failed_ok = forcer.is_some() || e.failed.is_empty();
        if !e.open_failed.is_empty() {
            ensure(racing, || {
                format!("{side:?}: ChannelOpenFailed for a ready channel: {e:?}")
            })?;
            known.k2.push(side);
        }
        // K3: a force close overtook a negotiation in which this side had signed a closing
        // transaction; the peer broadcast it and this side could not place it ("unknown",
        // nothing claimed; the wallet still sees the coins, checked above).
        if racing && !commitment && e.closed.len() == 1 && str_of(&e.closed[0], "kind") == "unknown"
        {
            known.k3.push(side);
            continue;
        }
        ensure(kinds_ok && e.closed.len() == 1 && failed_ok, || {
            format!("{side:?} events (want one {want}): {e:?}")
        })?;
        let closed = &e.closed[0];
        ensure(
            str_of(closed, "kind") == want
                && str_of(closed, "closing_txid") == txid
                && u64_of(closed, "claimed_sat") as i64 == gained,
            || format!("{side:?}: want {want}, closing tx {txid}, {gained} sat back: {e:?}"),
        )?;
    }
    pair.opener.check_durability()?;
    pair.acceptor.check_durability()?;
    let done = format!(
        "{} {txid} (fees {fees}{}{})",
        if commitment {
            "commitment"
        } else {
            "cooperative"
        },
        if left > 0 {
            format!(", anchors left {left}")
        } else {
            String::new()
        },
        if changes.is_empty() {
            String::new()
        } else {
            format!("; closing kinds {}", changes.join(", "))
        },
    );
    match known.describe() {
        None => Ok(done),
        Some(k) if !std::env::var("TERN_KILL_LENIENT").is_ok_and(|v| v == "1") => {
            Err(format!("{done}; {k}"))
        }
        Some(k) => Ok(format!("{done}; {k}")),
    }
}

/// Known bugs a run hit (outside the harness; see the module documentation). They fail the
/// run unless `TERN_KILL_LENIENT=1`.
#[derive(Debug, Default)]
struct Known {
    /// K1: told of a force close by the peer's `error`, the side broadcast its own commitment
    /// at once (refused: the peer's is in the mempool) instead of checking the funding first,
    /// and reported two `ChannelClosing` (local_force, then remote_force once it saw the spend).
    k1: Vec<Side>,
    /// K2: a force close of a channel already shutting down emitted `ChannelOpenFailed`
    /// instead of `ChannelFailed`.
    k2: Vec<Side>,
    /// K3: a closing transaction the side had signed, broadcast by the peer after the side's
    /// force close overtook the negotiation, classified "unknown" (claimed 0).
    k3: Vec<Side>,
}

impl Known {
    fn describe(&self) -> Option<String> {
        let mut out = Vec::new();
        if !self.k1.is_empty() {
            out.push(format!(
                "KNOWN BUG K1 ({:?}: own commitment after the peer's error)",
                self.k1
            ));
        }
        if !self.k2.is_empty() {
            out.push(format!(
                "KNOWN BUG K2 ({:?}: ChannelOpenFailed for a ready channel)",
                self.k2
            ));
        }
        if !self.k3.is_empty() {
            out.push(format!(
                "KNOWN BUG K3 ({:?}: our own signed closing tx classified unknown)",
                self.k3
            ));
        }
        (!out.is_empty()).then(|| out.join(", "))
    }
}

#[derive(Debug)]
struct Report {
    run: usize,
    plan: Plan,
    killed_in: Vec<String>,
    outcome: Result<String, String>,
    secs: f64,
}

#[test]
fn sigkill_during_close_at_random_moments() {
    let seed = procs::kill_seed();
    let runs = procs::kill_runs(16);
    eprintln!("close kill test: seed {seed} (replay with TERN_KILL_SEED={seed}), {runs} runs");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let devnet = rt.block_on(Devnet::start()).expect("devnet");
    let base = procs::temp_dir("tern-kill-close");
    let started = Instant::now();
    let reports = procs::run_parallel(runs, PARALLEL, |run| {
        let mut rng = KillRng::new(seed, run as u64);
        let plan = Plan::new(&mut rng, run);
        let t = Instant::now();
        let dir = base.join(format!("run-{run}"));
        let mut killed_in = Vec::new();
        let outcome = one_run(&devnet, &dir, &plan, &mut killed_in);
        if outcome.is_ok() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let report = Report {
            run,
            plan,
            killed_in,
            outcome,
            secs: t.elapsed().as_secs_f64(),
        };
        eprintln!(
            "run {:2} {:?}, kills {:?}: {} ({:.1}s)",
            report.run,
            report.plan.mode,
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
    let kills: usize = reports
        .iter()
        .map(|r| r.killed_in.iter().filter(|k| k.contains('@')).count())
        .sum();
    // Where the kills landed, by the victim's status words.
    let mut landed: std::collections::BTreeMap<&str, usize> = Default::default();
    for k in reports
        .iter()
        .flat_map(|r| &r.killed_in)
        .filter(|k| k.contains('@'))
    {
        let state = k.split_once(" [").map_or("", |(_, s)| s);
        let window = if state.starts_with("ready") {
            "before shutdown"
        } else if state.starts_with("closing:") {
            "shutdown/closing_signed"
        } else if state.contains("transaction unconfirmed") {
            "broadcast"
        } else if ["sweep broadcast", "spendable at", "swept at"]
            .iter()
            .any(|w| state.contains(w))
            && !state.starts_with("closed")
        {
            "sweep"
        } else if state.starts_with("closed") {
            "closed"
        } else {
            "confirmations"
        };
        *landed.entry(window).or_default() += 1;
    }
    eprintln!("kills by window: {landed:?}");
    let known = reports
        .iter()
        .filter(|r| matches!(&r.outcome, Ok(o) if o.contains("KNOWN BUG")))
        .count();
    eprintln!(
        "close kill test: {} runs, {kills} kills in {:.1}s: {} broken, {known} hit known bugs \
         (failures unless TERN_KILL_LENIENT=1)",
        reports.len(),
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert_eq!(reports.len(), runs, "every run reported");
    let detail: Vec<String> = failures
        .iter()
        .map(|r| {
            format!(
                "run {} ({:?}; {:?}): {}",
                r.run,
                r.plan,
                r.killed_in,
                r.outcome.as_ref().err().map_or("", |e| e.as_str())
            )
        })
        .collect();
    procs::fail_on_broken(&detail, runs, seed, &base);
    devnet.shutdown();
    let _ = std::fs::remove_dir_all(&base);
}
