//! `tern demo`: an in-process devnet and two `tern daemon` child processes — an LSP and a
//! phone — open a channel while the phone is SIGKILLed at three moments of the open and
//! restarted on the same data each time; the channel ends ready on both sides and the phone's
//! coins add up to the satoshi; then the phone closes it cooperatively and, once the closing
//! transaction confirms, its wallet holds everything but the two fees. Prints a timeline; any
//! broken expectation is an error.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bitcoin::{Address, Amount, Txid};
use serde_json::Value;
use tern_devnet::{Devnet, TxState};

use crate::control::Request;
use crate::procs::{self, str_of, u64_of, DaemonProc};

/// What the phone is given by the faucet.
pub const FUNDED_SAT: u64 = 1_000_000;
/// The channel's size.
pub const CHANNEL_SAT: u64 = 250_000;

const START: Duration = Duration::from_secs(20);
const WAIT: Duration = Duration::from_secs(20);

/// A readable timeline: each line stamped with the time since the start.
#[derive(Debug)]
pub struct Timeline {
    start: Instant,
}

impl Timeline {
    /// Starts the clock.
    pub fn new() -> Self {
        Timeline {
            start: Instant::now(),
        }
    }

    /// Prints one line.
    pub fn note(&self, what: impl AsRef<str>) {
        let t = self.start.elapsed().as_secs_f64();
        let mut lines = what.as_ref().lines();
        println!("[{t:6.2}s] {}", lines.next().unwrap_or(""));
        for l in lines {
            println!("          {l}");
        }
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

/// The one channel a daemon has.
pub fn only_channel(d: &DaemonProc) -> Result<Value, String> {
    let mut list = d.channels()?;
    match list.len() {
        1 => Ok(list.remove(0)),
        n => Err(format!(
            "{}: expected 1 channel, found {n}: {list:?}",
            d.name
        )),
    }
}

/// The funding txid of a channel JSON.
pub fn funding_txid(channel: &Value) -> Result<Txid, String> {
    let txo = str_of(channel, "funding_txo");
    let txid = txo.split(':').next().unwrap_or("");
    Txid::from_str(txid).map_err(|_| format!("channel has no funding outpoint: {channel}"))
}

/// The fee a transaction the devnet knows paid (inputs minus outputs).
pub fn tx_fee(devnet: &Devnet, txid: &Txid) -> Result<u64, String> {
    let tx = devnet
        .transaction(txid)
        .ok_or_else(|| format!("devnet does not know {txid}"))?;
    let mut inputs = 0u64;
    for input in &tx.input {
        let prev = devnet
            .transaction(&input.previous_output.txid)
            .ok_or_else(|| format!("devnet does not know {}", input.previous_output.txid))?;
        let out = prev
            .output
            .get(input.previous_output.vout as usize)
            .ok_or_else(|| format!("no output {}", input.previous_output))?;
        inputs += out.value.to_sat();
    }
    let outputs: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
    inputs
        .checked_sub(outputs)
        .ok_or_else(|| format!("{txid} creates coins"))
}

fn state_words(d: &DaemonProc) -> String {
    match d.channels() {
        Ok(list) if list.is_empty() => "no channel".into(),
        Ok(list) => list
            .iter()
            .map(|c| str_of(c, "status").to_string())
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => e,
    }
}

fn tx_state_words(s: &TxState) -> String {
    match s {
        TxState::Unknown => "not broadcast (unknown to the devnet)".into(),
        TxState::Mempool => "in the devnet mempool".into(),
        TxState::Confirmed { height, .. } => format!("confirmed at height {height}"),
    }
}

fn sync(d: &DaemonProc) {
    // A failed sync shows up as a missing state later; the background loop retries anyway.
    let _ = d.call(&Request::Sync);
}

/// Runs the demo; `keep` keeps the data dirs (their path is printed).
pub fn run(keep: bool) -> Result<(), String> {
    let bin = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| format!("runtime: {e}"))?;
    let devnet = rt
        .block_on(Devnet::start())
        .map_err(|e| format!("devnet: {e}"))?;
    let dir = procs::temp_dir("tern-demo");
    let result = run_with(&bin, &devnet, &dir);
    devnet.shutdown();
    match (&result, keep) {
        (Ok(()), false) => {
            let _ = std::fs::remove_dir_all(&dir);
        }
        _ => println!("data dirs (logs in */tern.log): {}", dir.display()),
    }
    result
}

/// The demo against `devnet`, with the daemons' data under `dir`, running `bin daemon`.
pub fn run_with(bin: &Path, devnet: &Devnet, dir: &Path) -> Result<(), String> {
    let t = Timeline::new();
    let url = devnet.base_url();
    t.note(format!(
        "devnet up: Esplora API at {url}, tip {}",
        devnet.tip().0
    ));

    let mut lsp = DaemonProc::new(bin, "lsp", &dir.join("lsp"), &url);
    let info = lsp.start(
        &["--listen", "127.0.0.1:0", "--dev-faults", "$channel_ready"],
        START,
    )?;
    let lsp_id = str_of(&info, "node_id").to_string();
    let lsp_addr = str_of(&info, "listen").to_string();
    let lsp_port = lsp_addr.rsplit(':').next().unwrap_or("0").to_string();
    t.note(format!(
        "LSP daemon up (pid {}): {lsp_id}@{lsp_addr}, accepts channels; fault \
         `$channel_ready`: it will drop its first channel_ready silently",
        lsp.pid().unwrap_or(0)
    ));

    let mut phone = DaemonProc::new(bin, "phone", &dir.join("phone"), &url);
    phone.start(&["--dev-halt-after", "persist"], START)?;
    t.note(format!(
        "phone daemon up (pid {}) with --dev-halt-after persist",
        phone.pid().unwrap_or(0)
    ));
    let address = phone.must(&Request::NewAddress)?;
    let address = Address::from_str(str_of(&address, "address"))
        .map_err(|e| format!("phone address: {e}"))?
        .assume_checked();
    devnet
        .faucet(&address, Amount::from_sat(FUNDED_SAT))
        .map_err(|e| format!("faucet: {e}"))?;
    devnet.mine(1);
    phone.wait_for(WAIT, "funded", |p| {
        sync(p);
        Ok(u64_of(&p.must(&Request::Balance)?, "onchain_confirmed_sat") == FUNDED_SAT)
    })?;
    t.note(format!(
        "faucet paid the phone {FUNDED_SAT} sat, 1 block mined, the phone sees it confirmed"
    ));

    // (a) Killed right after the funder's first persist: funding_signed received and the
    // channel stored, the funding not yet broadcast.
    let peer = format!("{lsp_id}@{lsp_addr}");
    let open = phone.call(&Request::Open {
        peer: peer.clone(),
        amount_sat: CHANNEL_SAT,
        push_msat: 0,
        public: false,
    });
    t.note(format!(
        "phone: open {CHANNEL_SAT} sat to the LSP -> {}",
        match &open {
            Ok(v) => v.to_string(),
            Err(e) => format!("{e} (the halt hook stopped the node mid-call)"),
        }
    ));
    phone.wait_halted(WAIT)?;
    let ch = only_channel(&phone)?;
    let txid = funding_txid(&ch)?;
    let before = devnet.tx_state(&txid);
    t.note(format!(
        "(a) phone halted right after its first persist (funding_signed received, channel \
         durable; in-memory view at the halt: \"{}\"); funding {txid} {}",
        str_of(&ch, "status"),
        tx_state_words(&before)
    ));
    check(before == TxState::Unknown, || {
        format!("(a) the funding {txid} was broadcast before the halt: {before:?}")
    })?;
    phone.check_durability()?;
    phone.kill();
    t.note("(a) phone SIGKILLed; restarting it on the same data dir, no flags");
    phone.start(&[], START)?;
    phone.wait_for(WAIT, "broadcasting the funding", |_| {
        Ok(devnet.tx_state(&txid) == TxState::Mempool)
    })?;
    t.note(format!(
        "(a) phone resumed the stored channel (\"{}\") and broadcast the funding: {}",
        state_words(&phone),
        tx_state_words(&devnet.tx_state(&txid))
    ));
    lsp.wait_for(
        WAIT,
        "holding the channel",
        |l| Ok(l.channels()?.len() == 1),
    )?;

    // (b) Killed while awaiting confirmations.
    devnet.mine(1);
    phone.wait_for(WAIT, "1 confirmation", |p| {
        sync(p);
        Ok(u64_of(&only_channel(p)?, "confirmations") == 1)
    })?;
    sync(&lsp);
    let ch = only_channel(&phone)?;
    let required = u64_of(&ch, "required_confirmations");
    t.note(format!(
        "(b) 1 block mined; phone: \"{}\"; LSP: \"{}\"",
        str_of(&ch, "status"),
        state_words(&lsp)
    ));
    check(required >= 2, || {
        format!("(b) expected at least 2 required confirmations: {ch}")
    })?;
    phone.check_durability()?;
    phone.kill();
    t.note("(b) phone SIGKILLed while awaiting confirmations");
    phone.start(&["--dev-halt-after", "send:channel_ready"], START)?;
    let ch = only_channel(&phone)?;
    t.note(format!(
        "(b) phone restarted with --dev-halt-after send:channel_ready; resumed \"{}\"",
        str_of(&ch, "status")
    ));
    check(u64_of(&ch, "confirmations") >= 1, || {
        format!("(b) the resumed channel lost its confirmation: {ch}")
    })?;

    // (c) Killed after sending channel_ready, before receiving the LSP's (dropped by its
    // `$channel_ready` fault, so it cannot have arrived). The blocks are mined only once the
    // restarted phone is connected and the channel_reestablish exchange is over: otherwise the
    // LSP could reach depth before it and retransmit channel_ready in answer to the phone's
    // channel_reestablish, after the fault dropped the first one.
    let connected = |d: &mut DaemonProc| -> Result<bool, String> {
        Ok(matches!(d.must(&Request::Peers)?, Value::Array(a) if !a.is_empty()))
    };
    phone.wait_for(WAIT, "connected to the LSP", connected)?;
    lsp.wait_for(WAIT, "connected to the phone", connected)?;
    std::thread::sleep(Duration::from_millis(300));
    let more = required.saturating_sub(1) as u32;
    devnet.mine(more);
    sync(&lsp);
    phone.wait_halted(WAIT)?;
    t.note(format!(
        "(c) {more} more blocks mined; the phone sent channel_ready and halted (in-memory view \
         at the halt: \"{}\"); LSP: \"{}\" (its own channel_ready was dropped by the fault, so \
         the phone never got it)",
        state_words(&phone),
        state_words(&lsp)
    ));
    let ch = only_channel(&phone)?;
    check(str_of(&ch, "state") != "Ready", || {
        format!("(c) the phone is ready although the LSP's channel_ready was dropped: {ch}")
    })?;
    phone.check_durability()?;
    phone.kill();
    t.note("(c) phone SIGKILLed; restarting it, no flags");
    phone.start(&[], START)?;
    t.note(
        "(c) phone up again: reconnects to the LSP; channel_reestablish retransmits channel_ready",
    );
    let ready = |d: &mut DaemonProc| -> Result<bool, String> {
        sync(d);
        Ok(str_of(&only_channel(d)?, "state") == "Ready")
    };
    if let Err(e) = phone.wait_for(WAIT, "ready", ready) {
        // Retransmission did not happen: a restart of the LSP without the fault is the
        // fallback, said in the timeline.
        t.note(format!("(c) {e}; restarting the LSP without the fault"));
        lsp.stop(Duration::from_secs(5));
        lsp.start(&["--listen", &format!("127.0.0.1:{lsp_port}")], START)?;
        phone.wait_for(WAIT, "ready", ready)?;
    }
    lsp.wait_for(WAIT, "ready", ready)?;
    t.note(format!(
        "channel ready on both sides: phone \"{}\", LSP \"{}\"",
        state_words(&phone),
        state_words(&lsp)
    ));

    // Events and the books.
    let kinds = |d: &DaemonProc| -> Result<Vec<String>, String> {
        Ok(d.take_events()?
            .iter()
            .map(|e| str_of(e, "type").to_string())
            .filter(|k| k.starts_with("Channel"))
            .collect())
    };
    let (pe, le) = (kinds(&phone)?, kinds(&lsp)?);
    t.note(format!("events: phone {pe:?}; LSP {le:?}"));
    for (who, ev) in [("phone", &pe), ("LSP", &le)] {
        check(
            ev.contains(&"ChannelPending".to_string()) && ev.contains(&"ChannelReady".to_string()),
            || format!("{who} lacks ChannelPending or ChannelReady: {ev:?}"),
        )?;
        check(!ev.iter().any(|k| k.contains("Failed")), || {
            format!("{who} reported a failure: {ev:?}")
        })?;
    }
    let fee = tx_fee(devnet, &txid)?;
    phone
        .wait_for(WAIT, "seeing its change", |p| {
            sync(p);
            let b = p.must(&Request::Balance)?;
            Ok(u64_of(&b, "onchain_total_sat") + CHANNEL_SAT + fee == FUNDED_SAT)
        })
        .map_err(|e| format!("{e}: the books do not balance"))?;
    let b = phone.must(&Request::Balance)?;
    let ch = only_channel(&phone)?;
    let onchain = u64_of(&b, "onchain_total_sat");
    let channel_sat = u64_of(&ch, "our_balance_msat") / 1000;
    t.note(format!(
        "phone's books: on-chain {onchain} + channel {channel_sat} + funding fee {fee} = {} \
         (funded {FUNDED_SAT})",
        onchain + channel_sat + fee
    ));
    check(onchain + channel_sat + fee == FUNDED_SAT, || {
        format!("funds do not add up: {b} {ch}")
    })?;
    check(u64_of(&b, "onchain_locked_sat") == 0, || {
        format!("coins still locked: {b}")
    })?;
    let lc = only_channel(&lsp)?;
    check(
        u64_of(&lc, "funding_sat") == CHANNEL_SAT && u64_of(&lc, "our_balance_msat") == 0,
        || format!("the LSP's view differs: {lc}"),
    )?;
    let audited = (phone.check_durability()?, lsp.check_durability()?);
    t.note(format!(
        "self-audit: persist-before-act held for the {} + {} actions the current phone and LSP \
         processes performed",
        audited.0, audited.1
    ));

    // (d) A cooperative close: shutdown, closing_signed, the agreed transaction broadcast;
    // once it confirms the phone's whole share is back in its wallet.
    let id = str_of(&ch, "channel_id").to_string();
    let funding = bitcoin::OutPoint::from_str(str_of(&ch, "funding_txo"))
        .map_err(|e| format!("funding outpoint: {e}"))?;
    phone.must(&Request::Close {
        channel_id: id.clone(),
        address: None,
    })?;
    t.note(format!(
        "(d) phone: close {id} cooperatively (to a fresh wallet address) -> \"{}\"",
        state_words(&phone)
    ));
    let chain = devnet.chain();
    phone.wait_for(WAIT, "the agreed close in the mempool", |_| {
        Ok(chain.outspend(&funding).is_some())
    })?;
    let close_txid = chain.outspend(&funding).map(|s| s.txid).ok_or("no close")?;
    let close_fee = tx_fee(devnet, &close_txid)?;
    t.note(format!(
        "(d) closing transaction {close_txid} in the mempool (fee {close_fee} sat, paid by the \
         funder); phone: \"{}\", LSP: \"{}\"",
        state_words(&phone),
        state_words(&lsp)
    ));
    devnet.mine(1);
    phone
        .wait_for(WAIT, "its share back on chain", |p| {
            sync(p);
            let b = p.must(&Request::Balance)?;
            Ok(u64_of(&b, "onchain_confirmed_sat") + fee + close_fee == FUNDED_SAT)
        })
        .map_err(|e| format!("{e}: the books do not balance after the close"))?;
    let b = phone.must(&Request::Balance)?;
    let onchain = u64_of(&b, "onchain_confirmed_sat");
    t.note(format!(
        "(d) 1 block mined; phone's books: on-chain {onchain} + funding fee {fee} + closing fee \
         {close_fee} = {} (funded {FUNDED_SAT}); phone: \"{}\"",
        onchain + fee + close_fee,
        state_words(&phone)
    ));
    let pe = kinds(&phone)?;
    check(pe.contains(&"ChannelClosing".to_string()), || {
        format!("the phone did not report ChannelClosing: {pe:?}")
    })?;
    phone.check_durability()?;
    lsp.check_durability()?;
    phone.stop(Duration::from_secs(5));
    lsp.stop(Duration::from_secs(5));
    t.note("both daemons stopped: demo OK (3 kills, 3 resumes, a cooperative close, no coin lost)");
    Ok(())
}
