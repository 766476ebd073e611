//! The chaos soak (issue 17 §5): three `tern daemon` processes on one in-process devnet open
//! channels to each other in a ring (each funds one and accepts one, pushing part of it), then
//! live through a seeded sequence of steps — blocks, SIGKILLs and restarts (some restarts with
//! Core Lightning-style `dev-disconnect` rules on a random message), Esplora faults (500, 429,
//! 503 answers and dropped connections on a random path), fee-estimate changes (the funders'
//! `update_fee`), one- and two-block reorgs, cooperative and force closes requested from a
//! random side — and a final heal: the faults expire, every node runs plain, what is still open
//! is closed, and blocks are mined until everything has settled.
//!
//! After every run, from the chain itself (not from what the nodes say):
//! - nothing lost, to the satoshi: starting from the faucet's payments to the three wallets,
//!   every transaction that spends them (and what spends those, …) is confirmed, and the coins
//!   paid in equal the fees of all of them plus the outputs left unspent; those unspent outputs
//!   are exactly the three wallets' balances plus the 330-sat anchors nobody needs to spend;
//! - each wallet's own ledger balances, to the satoshi (soak/ledger.rs): what it was funded with,
//!   plus the pushes of the channels it accepted and the anchors it spent, is its coins on chain
//!   plus the fees it paid (each fee attributed from the chain to its payer), the pushes of the
//!   channels it funded and the anchors of their commitments; every channel's close pays the
//!   fundee exactly the push;
//! - nothing stuck: within the heal's bound every channel of every node is `Closed` (or failed
//!   before any funding reached the chain), no coin is locked, nothing is left claimable;
//! - no durability violation in any node's persist-before-act self-audit.
//!
//! `TERN_SOAK_SEED=<n>` replays a run's plan (the steps; what a kill hits still depends on
//! timing, so every step is printed), `TERN_SOAK_RUNS` (default 1) and `TERN_SOAK_STEPS`
//! (default 40, about a minute a run) make it longer.

// This binary's TRACE log file, for the log-secret check (core/tests/common/trace.rs); the
// daemons it starts inherit the log directory.
#[path = "../../../core/tests/common/trace.rs"]
mod trace;

// The per-wallet ledger of the coins check.
#[path = "soak/ledger.rs"]
mod ledger;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bitcoin::{Address, Amount, OutPoint, ScriptBuf, Transaction, Txid};
use serde_json::Value;
use tern_devnet::{Devnet, FaultKind, FaultRule};
use tern_harness::control::Request;
use tern_harness::procs::{self, is_commitment, str_of, u64_of, DaemonProc, KillRng};

const BIN: &str = env!("CARGO_BIN_EXE_tern");
const NODES: usize = 3;
const FUNDED: u64 = 1_000_000;
const CHANNEL: u64 = 200_000;
const PUSH_SAT: u64 = 50_000;
const ANCHOR_SAT: u64 = 330;
const START: Duration = Duration::from_secs(30);
/// Fee estimates fetched at every new tip: the soak's fee changes reach the funders at once.
const DAEMON_ARGS: &[&str] = &["--sync-interval-ms", "300", "--fee-max-age-ms", "0"];
/// The heal's bound: single blocks mined (jumps straight to a claim's timelock, a wait by
/// design, are not counted) and wall time until everything must have settled.
const HEAL_BLOCKS: u32 = 300;
const HEAL_TIME: Duration = Duration::from_secs(240);
/// Messages a restart's `dev-disconnect` rule may pick.
const MESSAGES: &[&str] = &[
    "open_channel",
    "accept_channel",
    "funding_created",
    "funding_signed",
    "channel_ready",
    "channel_reestablish",
    "update_fee",
    "commitment_signed",
    "revoke_and_ack",
    "shutdown",
    "closing_signed",
];
/// Paths an Esplora fault may hit (a `*` suffix is a prefix).
const PATHS: &[&str] = &[
    "/blocks/tip/hash",
    "/blocks/tip/height",
    "/block/*",
    "/tx/*",
    "/scripthash/*",
    "/fee-estimates",
    "/block-height/*",
];

fn seed() -> u64 {
    std::env::var("TERN_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(procs::kill_seed)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// What one run did.
#[derive(Debug, Default, Clone)]
struct Tally {
    blocks: u32,
    kills: u32,
    dev_fault_restarts: u32,
    esplora_faults: u32,
    fee_changes: u32,
    reorgs: u32,
    coop_closes: u32,
    force_closes: u32,
    reopens: u32,
    channels: usize,
    /// Commitment updates the channels went through (`commitment_number`, both sides' views
    /// halved): the `update_fee`s the fee changes caused.
    updates: u64,
}

struct Member {
    d: DaemonProc,
    /// The start arguments (with the listen port fixed after the first start).
    args: Vec<String>,
    /// `<node id>@<host:port>`.
    peer: String,
    /// Whether it runs with a `dev-disconnect` rule.
    faulty: bool,
}

impl Member {
    fn start(&mut self, extra: &[String]) -> Result<(), String> {
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        args.extend(extra.iter().map(String::as_str));
        self.d.start(&args, START).map(|_| ())
    }

    fn sync(&self) {
        let _ = self.d.call(&Request::Sync);
    }
}

struct Run<'a> {
    devnet: &'a Devnet,
    members: Vec<Member>,
    rng: KillRng,
    tally: Tally,
    steps: Vec<String>,
    /// The faucet's payments to the wallets.
    paid_in: Vec<OutPoint>,
    /// The devnet's fee estimates at the start.
    base_fees: BTreeMap<u16, f64>,
}

impl Run<'_> {
    fn say(&mut self, what: String) {
        self.steps.push(what);
    }

    fn mine(&mut self, n: u32) {
        self.devnet.mine(n);
        self.tally.blocks += n;
    }

    fn fund(&mut self) -> Result<(), String> {
        for i in 0..NODES {
            let a = self.members[i].d.must(&Request::NewAddress)?;
            let address = Address::from_str(str_of(&a, "address"))
                .map_err(|e| format!("address: {e}"))?
                .assume_checked();
            let txid = self
                .devnet
                .faucet(&address, Amount::from_sat(FUNDED))
                .map_err(|e| format!("faucet: {e}"))?;
            let tx = self.devnet.transaction(&txid).ok_or("faucet tx unknown")?;
            let vout = tx
                .output
                .iter()
                .position(|o| o.script_pubkey == address.script_pubkey())
                .ok_or("faucet paid elsewhere")?;
            self.paid_in.push(OutPoint::new(txid, vout as u32));
        }
        self.mine(1);
        for m in &mut self.members {
            m.d.wait_for(Duration::from_secs(30), "funded", |d| {
                let _ = d.call(&Request::Sync);
                Ok(u64_of(&d.must(&Request::Balance)?, "onchain_confirmed_sat") == FUNDED)
            })?;
        }
        Ok(())
    }

    /// Each node funds a channel to the next one (a ring), all at once.
    fn open_ring(&mut self) -> Result<(), String> {
        for i in 0..NODES {
            let peer = self.members[(i + 1) % NODES].peer.clone();
            self.members[i].d.must(&Request::Open {
                peer,
                amount_sat: CHANNEL,
                push_msat: PUSH_SAT * 1000,
                public: false,
            })?;
        }
        self.say("open ring".into());
        // A few blocks while the opens run (kills of opens are kill.rs's subject): most
        // channels are ready when the chaos starts, so its fee changes become `update_fee`s.
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(400));
            self.mine(1);
            for m in &self.members {
                m.sync();
            }
        }
        Ok(())
    }

    /// A node whose ring channel failed before it was funded (a kill before the durable
    /// point, a refused open) opens it again.
    fn reopen(&mut self) -> Result<(), String> {
        for i in 0..NODES {
            let channels = self.members[i].d.channels().unwrap_or_default();
            let live = channels.iter().any(|c| {
                c["is_outbound"] == true
                    && !matches!(str_of(c, "state"), "Failed" | "FailedUnfunded" | "Aborted")
            });
            if !live && self.members[i].d.is_running() {
                let peer = self.members[(i + 1) % NODES].peer.clone();
                let answer = self.members[i].d.call(&Request::Open {
                    peer,
                    amount_sat: CHANNEL,
                    push_msat: PUSH_SAT * 1000,
                    public: false,
                });
                self.tally.reopens += 1;
                self.say(format!(
                    "reopen from {i}: {}",
                    if answer.is_ok() { "ok" } else { "refused" }
                ));
                return Ok(());
            }
        }
        self.say("wait".into());
        Ok(())
    }

    fn pick(&mut self, n: usize) -> usize {
        self.rng.below(n as u64) as usize
    }

    fn restart(&mut self, i: usize, with_rule: bool) -> Result<(), String> {
        self.members[i].d.kill();
        self.tally.kills += 1;
        let mut extra = Vec::new();
        if with_rule {
            let kind = ["-", "+", "<"][self.pick(3)];
            let msg = MESSAGES[self.pick(MESSAGES.len())];
            let nth = 1 + self.pick(2);
            extra = vec![format!("--dev-faults={kind}{msg}*{nth}")];
            self.tally.dev_fault_restarts += 1;
        }
        self.members[i].faulty = with_rule;
        self.say(format!("kill {i}, restart {extra:?}"));
        self.members[i].start(&extra)
    }

    fn esplora_fault(&mut self) {
        let path = PATHS[self.pick(PATHS.len())].to_string();
        let kind = match self.pick(4) {
            0 => FaultKind::Status(500),
            1 => FaultKind::Status(429),
            2 => FaultKind::Status(503),
            _ => FaultKind::Drop,
        };
        let count = 1 + self.pick(6) as u32;
        self.say(format!("esplora {path} {kind:?} x{count}"));
        self.devnet.add_fault(FaultRule::new(&path, kind, count));
        self.tally.esplora_faults += 1;
    }

    fn fee_change(&mut self) {
        let factor = [0.5, 1.0, 2.0, 4.0, 8.0][self.pick(5)];
        let estimates: BTreeMap<u16, f64> = self
            .base_fees
            .clone()
            .into_iter()
            .map(|(k, v)| (k, (v * factor).max(1.0)))
            .collect();
        self.devnet.chain().set_fee_estimates(estimates);
        self.say(format!("fees x{factor}"));
        self.tally.fee_changes += 1;
    }

    fn reorg(&mut self) -> Result<(), String> {
        let depth = 1 + self.pick(2) as u32;
        self.devnet
            .reorg(depth, depth + 1)
            .map_err(|e| format!("reorg: {e}"))?;
        self.say(format!("reorg {depth}"));
        self.tally.reorgs += 1;
        self.tally.blocks += depth + 1;
        Ok(())
    }

    /// Ready channels by (member, channel id).
    fn ready(&self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            for c in m.d.channels().unwrap_or_default() {
                if c["state"] == "Ready" {
                    out.push((i, str_of(&c, "channel_id").to_string()));
                }
            }
        }
        out
    }

    fn close_one(&mut self, force: bool) {
        let ready = self.ready();
        if ready.is_empty() {
            return;
        }
        let (i, id) = ready[self.pick(ready.len())].clone();
        let request = if force {
            Request::ForceClose {
                channel_id: id.clone(),
            }
        } else {
            Request::Close {
                channel_id: id.clone(),
                address: None,
            }
        };
        let answer = self.members[i].d.call(&request);
        self.say(format!(
            "{} {} from {i}: {}",
            if force { "force-close" } else { "close" },
            &id[..8],
            if answer.is_ok() { "ok" } else { "refused" }
        ));
        if answer.is_ok() {
            if force {
                self.tally.force_closes += 1;
            } else {
                self.tally.coop_closes += 1;
            }
        }
    }

    fn chaos(&mut self, steps: usize) -> Result<(), String> {
        for step in 0..steps {
            // The first half lives (fee changes become `update_fee`s at new tips), the second
            // half also closes.
            let closing = step >= steps / 2;
            match self.rng.below(100) {
                0..=29 => {
                    self.mine(1);
                    self.say("mine".into());
                }
                30..=41 => {
                    let i = self.pick(NODES);
                    self.restart(i, false)?;
                }
                42..=49 => {
                    let i = self.pick(NODES);
                    self.restart(i, true)?;
                }
                50..=61 => self.esplora_fault(),
                62..=71 => self.fee_change(),
                72..=75 => self.reorg()?,
                76..=87 if closing => {
                    let force = self.rng.below(4) == 0;
                    self.close_one(force);
                }
                88..=93 if !closing => self.reopen()?,
                _ => self.say("wait".into()),
            }
            std::thread::sleep(Duration::from_millis(150 + self.rng.below(500)));
        }
        Ok(())
    }

    /// The faults expire, every node runs plain, the open channels are closed, blocks are
    /// mined (up to a claim's timelock at once) until all has settled.
    fn heal(&mut self) -> Result<(), String> {
        self.devnet.clear_faults();
        for i in 0..NODES {
            if self.members[i].faulty || !self.members[i].d.is_running() {
                self.members[i].d.kill();
                self.members[i].faulty = false;
                self.members[i].start(&[])?;
            }
        }
        let began = Instant::now();
        let mut single = 0u32;
        let mut asked: BTreeSet<String> = BTreeSet::new();
        loop {
            for m in &self.members {
                m.sync();
            }
            for (i, id) in self.ready() {
                if asked.insert(id.clone()) {
                    let _ = self.members[i].d.call(&Request::Close {
                        channel_id: id,
                        address: None,
                    });
                }
            }
            match self.settled() {
                Ok(()) => return Ok(()),
                Err(why) => {
                    let blocks = single;
                    if blocks >= HEAL_BLOCKS || began.elapsed() >= HEAL_TIME {
                        return Err(format!(
                            "stuck after {blocks} blocks and {:?} of healing: {why}",
                            began.elapsed()
                        ));
                    }
                }
            }
            if !self.mine_towards_claims() {
                single += 1;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Mines one block, or up to the nearest claim's timelock (then true).
    fn mine_towards_claims(&mut self) -> bool {
        let (tip, _) = self.devnet.tip();
        let next = self
            .members
            .iter()
            .filter_map(|m| m.d.must(&Request::Balance).ok())
            .flat_map(|b| b["claimable"].as_array().cloned().unwrap_or_default())
            .filter(|c| c["status"]["state"] == "timelocked")
            .filter_map(|c| c["status"]["height"].as_u64())
            .min();
        match next {
            Some(h) if u64::from(tip) + 1 < h => {
                self.mine(h as u32 - 1 - tip);
                true
            }
            _ => {
                self.mine(1);
                false
            }
        }
    }

    /// Ok once every channel is closed and nothing is locked or claimable.
    fn settled(&self) -> Result<(), String> {
        for m in &self.members {
            for c in m.d.channels()? {
                let state = str_of(&c, "state");
                let unfunded = matches!(state, "Failed" | "FailedUnfunded" | "Aborted")
                    && self.funding_absent(&c);
                if state != "Closed" && !unfunded {
                    return Err(format!(
                        "{}: {} {state}: {}",
                        m.d.name,
                        &str_of(&c, "channel_id")[..8],
                        c["status"]
                    ));
                }
            }
            let b = m.d.must(&Request::Balance)?;
            if u64_of(&b, "onchain_locked_sat") != 0 || u64_of(&b, "claimable_sat") != 0 {
                return Err(format!("{}: balance {b}", m.d.name));
            }
        }
        Ok(())
    }

    fn funding_absent(&self, channel: &Value) -> bool {
        match channel["funding_txo"].as_str() {
            None => true,
            Some(txo) => match OutPoint::from_str(txo) {
                Ok(op) => self.devnet.transaction(&op.txid).is_none(),
                Err(_) => true,
            },
        }
    }

    /// The coins, from the chain: what the faucet paid in = fees + unspent; unspent = the
    /// wallets + anchors.
    fn coins(&self) -> Result<String, String> {
        let chain = self.devnet.chain();
        let mut seen: BTreeSet<Txid> = BTreeSet::new();
        let mut queue: VecDeque<OutPoint> = self.paid_in.iter().copied().collect();
        let paid: u64 = FUNDED * NODES as u64;
        let (mut fees, mut unspent, mut anchors) = (0u64, 0u64, 0u64);
        let mut other_unspent = Vec::new();
        let scripts: Vec<BTreeSet<ScriptBuf>> = self
            .members
            .iter()
            .map(|m| wallet_scripts(&m.d.data_dir, 200))
            .collect::<Result<_, _>>()?;
        let mut on_chain = vec![0u64; NODES];
        let value_of = |op: &OutPoint| -> Result<(Transaction, u64), String> {
            let tx = self
                .devnet
                .transaction(&op.txid)
                .ok_or_else(|| format!("{} unknown", op.txid))?;
            let v = tx.output[op.vout as usize].value.to_sat();
            Ok((tx, v))
        };
        while let Some(op) = queue.pop_front() {
            let (tx, value) = value_of(&op)?;
            match chain.outspend(&op) {
                Some(s) => {
                    if s.confirmed.is_none() {
                        return Err(format!("{op} spent by {} unconfirmed", s.txid));
                    }
                    if seen.insert(s.txid) {
                        fees += tern_harness::demo::tx_fee(self.devnet, &s.txid)?;
                        let spender = self.devnet.transaction(&s.txid).ok_or("spender unknown")?;
                        for vout in 0..spender.output.len() as u32 {
                            queue.push_back(OutPoint::new(s.txid, vout));
                        }
                    }
                }
                None => {
                    unspent += value;
                    let script = &tx.output[op.vout as usize].script_pubkey;
                    if let Some(owner) = scripts.iter().position(|s| s.contains(script)) {
                        on_chain[owner] += value;
                    } else if value == ANCHOR_SAT && is_commitment(&tx) {
                        anchors += value;
                    } else {
                        other_unspent.push(format!("{op} {value}"));
                    }
                }
            }
        }
        if paid != fees + unspent {
            return Err(format!(
                "coins on chain: paid in {paid} != fees {fees} + unspent {unspent}"
            ));
        }
        // Nothing left on chain outside the wallets but the anchors nobody needs.
        if !other_unspent.is_empty() {
            return Err(format!(
                "left unspent outside the wallets: {other_unspent:?}"
            ));
        }
        let mut wallets = Vec::new();
        // The wallets may lag the chain by a sync.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            wallets.clear();
            for m in &self.members {
                m.sync();
                wallets.push(u64_of(&m.d.must(&Request::Balance)?, "onchain_total_sat"));
            }
            // Each wallet says what the chain holds at its scripts, to the satoshi.
            if wallets == on_chain {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "wallets say {wallets:?}, the chain holds {on_chain:?} at their scripts (anchors {anchors}, fees {fees})"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // Each wallet's own ledger, from the chain: funded + pushes + anchors = on-chain + fees.
        let names: Vec<String> = self.members.iter().map(|m| m.d.name.clone()).collect();
        let entries = ledger::ledger(self.devnet, &seen, &names, &scripts, &on_chain)?;
        let entries: Vec<String> = entries.iter().map(ToString::to_string).collect();
        Ok(format!(
            "{} txs, fees {fees}, wallets {wallets:?}, anchors left {anchors}; ledgers: {}",
            seen.len(),
            entries.join(" | ")
        ))
    }
}

/// The first `n` receive and change scripts of a node's BIP84 wallet, derived here from its
/// seed file with rust-bitcoin's BIP32 (not through Tern's wallet code).
fn wallet_scripts(data_dir: &Path, n: u32) -> Result<BTreeSet<ScriptBuf>, String> {
    use bitcoin::bip32::{ChildNumber, DerivationPath, Xpriv};
    let seed = tern_harness::secrets::load_node_seed(data_dir).map_err(|e| format!("seed: {e}"))?;
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let master = Xpriv::new_master(bitcoin::Network::Regtest, seed.as_bytes())
        .map_err(|e| format!("master key: {e}"))?;
    let mut out = BTreeSet::new();
    for keychain in [0u32, 1] {
        let path = DerivationPath::from_str(&format!("m/84'/1'/0'/{keychain}"))
            .map_err(|e| format!("path: {e}"))?;
        let account = master
            .derive_priv(&secp, &path)
            .map_err(|e| format!("derive: {e}"))?;
        for i in 0..n {
            let child = account
                .derive_priv(
                    &secp,
                    &[ChildNumber::from_normal_idx(i).map_err(|e| e.to_string())?],
                )
                .map_err(|e| format!("derive: {e}"))?;
            let pk = bitcoin::CompressedPublicKey(child.private_key.public_key(&secp));
            out.insert(ScriptBuf::new_p2wpkh(&pk.wpubkey_hash()));
        }
    }
    Ok(out)
}

fn one_run(
    devnet: &Devnet,
    dir: &Path,
    seed: u64,
    run: usize,
    steps: usize,
) -> (Result<String, String>, Tally, Vec<String>) {
    let mut r = Run {
        devnet,
        members: Vec::new(),
        rng: KillRng::new(seed, run as u64),
        tally: Tally::default(),
        steps: Vec::new(),
        paid_in: Vec::new(),
        base_fees: devnet.chain().fee_estimates(),
    };
    let outcome = (|| {
        let url = devnet.base_url();
        for i in 0..NODES {
            let name = format!("n{i}");
            let mut d = DaemonProc::new(Path::new(BIN), &name, &dir.join(&name), &url);
            let mut args: Vec<&str> = DAEMON_ARGS.to_vec();
            args.extend(["--listen", "127.0.0.1:0"]);
            let info = d.start(&args, START)?;
            let listen = str_of(&info, "listen").to_string();
            let peer = format!("{}@{listen}", str_of(&info, "node_id"));
            let mut args: Vec<String> = DAEMON_ARGS.iter().map(|s| s.to_string()).collect();
            args.extend(["--listen".to_string(), listen]);
            r.members.push(Member {
                d,
                args,
                peer,
                faulty: false,
            });
        }
        r.fund()?;
        r.open_ring()?;
        r.chaos(steps)?;
        r.heal()?;
        let coins = r.coins()?;
        let mut audited = 0;
        for m in &r.members {
            audited += m.d.check_durability()?;
        }
        r.tally.channels = r
            .members
            .iter()
            .map(|m| m.d.channels().map(|c| c.len()).unwrap_or(0))
            .sum::<usize>()
            / 2;
        r.tally.updates = r
            .members
            .iter()
            .flat_map(|m| m.d.channels().unwrap_or_default())
            .map(|c| u64_of(&c, "commitment_number"))
            .sum::<u64>()
            / 2;
        Ok(format!("{coins}; {audited} actions audited"))
    })();
    for m in &mut r.members {
        m.d.stop(Duration::from_secs(5));
    }
    (outcome, r.tally, r.steps)
}

#[test]
fn chaos_soak_loses_nothing() {
    let seed = seed();
    let runs = env_usize("TERN_SOAK_RUNS", 1);
    let steps = env_usize("TERN_SOAK_STEPS", 40);
    eprintln!(
        "soak: seed {seed} (replay with TERN_SOAK_SEED={seed}), {runs} runs of {steps} steps"
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let base = procs::temp_dir("tern-soak");
    let started = Instant::now();
    let mut broken = Vec::new();
    let mut total = Tally::default();
    for run in 0..runs {
        // A devnet per run: faults, fee estimates and reorgs are the whole chain's.
        let devnet = rt.block_on(Devnet::start()).expect("devnet");
        let dir = base.join(format!("run-{run}"));
        let t = Instant::now();
        let (outcome, tally, steps_done) = one_run(&devnet, &dir, seed, run, steps);
        eprintln!(
            "run {run}: {} ({:.1}s) {tally:?}",
            match &outcome {
                Ok(o) => o.clone(),
                Err(e) => format!("FAILED: {e}"),
            },
            t.elapsed().as_secs_f64()
        );
        match outcome {
            Ok(_) => {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Err(e) => broken.push(format!(
                "run {run}: {e}\n  steps: {}",
                steps_done.join("; ")
            )),
        }
        total.blocks += tally.blocks;
        total.kills += tally.kills;
        total.dev_fault_restarts += tally.dev_fault_restarts;
        total.esplora_faults += tally.esplora_faults;
        total.fee_changes += tally.fee_changes;
        total.reorgs += tally.reorgs;
        total.coop_closes += tally.coop_closes;
        total.force_closes += tally.force_closes;
        total.reopens += tally.reopens;
        total.channels += tally.channels;
        total.updates += tally.updates;
        devnet.shutdown();
    }
    eprintln!(
        "soak: {runs} runs in {:.1} min, {} broken; totals {total:?}",
        started.elapsed().as_secs_f64() / 60.0,
        broken.len()
    );
    procs::fail_on_broken(&broken, runs, seed, &base);
    let _ = std::fs::remove_dir_all(&base);
}
