//! The sans-IO sync planner: which requests a sync makes, in which order, and what their answers
//! mean. No I/O here: [`SyncPlanner::poll`] hands out batches of independent requests and
//! [`SyncPlanner::handle`] consumes each answer; the driver ([`super::sync`]) does the HTTP.
//!
//! Request pattern:
//! 1. `GET /blocks/tip/hash`. Same tip as last time and nothing forced: done (1 request).
//! 2. The new tip's header: when it builds on our tip, its height is ours + 1 (1 request).
//!    Otherwise the status of both tips gives the new height and tells a reorg (2 requests).
//! 3. Checks, concurrently: every unconfirmed watched transaction; confirmed ones only after a
//!    reorg; outpoints when due on their staggered schedule, when forced, or after a reorg;
//!    the scripts the wallet asks for.
//! 4. Follow-ups: a merkle proof for each new confirmation (checked against the block hash and
//!    merkle root), the first input's spend of a transaction the server no longer knows (a double
//!    spend or a drop).

use std::collections::BTreeMap;

use bitcoin::block::Header;
use bitcoin::{BlockHash, MerkleBlock, OutPoint, ScriptBuf, Txid};

use super::state::{BlockRef, ChainState, Confirmation, OutpointWatch, TxWatchState};
use super::{BlockStatus, ChainError, ScriptTx, Spend, TxStatus};

/// Histories fetched for the scripts a sync was asked about.
pub type ScriptHistories = Vec<(ScriptBuf, Vec<ScriptTx>)>;

/// A request the driver must make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `GET /blocks/tip/hash`.
    TipHash,
    /// `GET /block/:hash/header`.
    Header(BlockHash),
    /// `GET /block/:hash/status`.
    BlockStatus(BlockHash),
    /// `GET /tx/:txid` (status, telling unknown from unconfirmed).
    TxStatus(Txid),
    /// `GET /tx/:txid/merkleblock-proof`.
    MerkleBlock(Txid),
    /// `GET /tx/:txid/outspend/:vout`.
    Outspend(OutPoint),
    /// `GET /scripthash/:hash/txs`.
    ScriptTxs(ScriptBuf),
}

/// The answer to a [`Request`].
#[derive(Debug, Clone)]
pub enum Response {
    /// Tip hash.
    TipHash(BlockHash),
    /// A header.
    Header(Header),
    /// A block status.
    BlockStatus(BlockStatus),
    /// A transaction status.
    TxStatus(TxStatus),
    /// A merkle block, `None` when unconfirmed.
    MerkleBlock(Option<MerkleBlock>),
    /// An outspend, `None` when unspent.
    Outspend(Option<Spend>),
    /// A script's transactions.
    ScriptTxs(Vec<ScriptTx>),
}

/// What a sync found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEvent {
    /// The tip moved; `reorg` when our previous tip left the best chain.
    NewTip {
        /// New tip.
        tip: BlockRef,
        /// Whether the previous tip was reorged out.
        reorg: bool,
    },
    /// A watched transaction confirmed (merkle proof checked).
    TxConfirmed {
        /// Transaction.
        txid: Txid,
        /// Where.
        confirmation: Confirmation,
        /// Its index in the block (from the merkle proof).
        tx_index: u32,
    },
    /// Confirmations of a confirmed watched transaction at the new tip.
    TxDepth {
        /// Transaction.
        txid: Txid,
        /// Confirmations (1 = in the tip block).
        depth: u32,
    },
    /// A confirmed watched transaction left the best chain.
    TxUnconfirmed {
        /// Transaction.
        txid: Txid,
    },
    /// The server no longer knows a watched unconfirmed transaction.
    TxGone {
        /// Transaction.
        txid: Txid,
    },
    /// An input of a watched transaction was spent by another transaction.
    TxDoubleSpent {
        /// Transaction.
        txid: Txid,
        /// The conflicting transaction.
        by: Txid,
    },
    /// A watched outpoint was spent.
    OutpointSpent {
        /// Outpoint.
        outpoint: OutPoint,
        /// Its spend.
        spend: Spend,
    },
    /// A spend of a watched outpoint we had seen disappeared (reorg or replacement).
    OutpointUnspent {
        /// Outpoint.
        outpoint: OutPoint,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Tip,
    Header,
    Heights,
    Checks,
    Followups,
    Done,
}

/// The planner for one sync.
#[derive(Debug)]
pub struct SyncPlanner {
    old_tip: Option<BlockRef>,
    state: ChainState,
    scripts: Vec<ScriptBuf>,
    phase: Phase,
    new_hash: Option<BlockHash>,
    new_header: Option<Header>,
    new_status: Option<BlockStatus>,
    old_status: Option<BlockStatus>,
    new_height: Option<u32>,
    reorg: bool,
    pending_proofs: BTreeMap<Txid, Confirmation>,
    classify: BTreeMap<OutPoint, Txid>,
    followups: Vec<Request>,
    events: Vec<ChainEvent>,
    script_results: ScriptHistories,
    scripts_without_new_tip: bool,
}

/// What [`SyncPlanner::poll`] says to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Make these requests (independent of each other), then `handle` every answer.
    Requests(Vec<Request>),
    /// The sync is complete: call [`SyncPlanner::finish`].
    Done,
}

impl SyncPlanner {
    /// Plans a sync of `state`, also fetching the histories of `scripts`.
    pub fn new(state: ChainState, scripts: Vec<ScriptBuf>) -> Self {
        SyncPlanner {
            old_tip: state.tip,
            state,
            scripts,
            phase: Phase::Start,
            new_hash: None,
            new_header: None,
            new_status: None,
            old_status: None,
            new_height: None,
            reorg: false,
            pending_proofs: BTreeMap::new(),
            classify: BTreeMap::new(),
            followups: Vec::new(),
            events: Vec::new(),
            script_results: Vec::new(),
            scripts_without_new_tip: false,
        }
    }

    /// Also fetch the scripts when the tip did not move (e.g. the app shows a receive screen
    /// and wants to see an unconfirmed payment). By default scripts are fetched only on a new
    /// tip, so a sync where nothing changed costs one request.
    pub fn scripts_without_new_tip(mut self) -> Self {
        self.scripts_without_new_tip = true;
        self
    }

    /// The next batch of requests, or `Done`. Call again after handling every answer.
    pub fn poll(&mut self) -> Result<Step, ChainError> {
        loop {
            match self.phase {
                Phase::Start => {
                    self.phase = Phase::Tip;
                    return Ok(Step::Requests(vec![Request::TipHash]));
                }
                Phase::Tip => {
                    let new = self.new_hash.ok_or_else(|| missing("tip hash"))?;
                    match self.old_tip {
                        Some(old) if old.hash == new => {
                            self.new_height = Some(old.height);
                            let forced = self.state.outpoints.values().any(|w| w.check_now);
                            let scripts = self.scripts_without_new_tip && !self.scripts.is_empty();
                            if !forced && !scripts {
                                self.phase = Phase::Done;
                                continue;
                            }
                            self.phase = Phase::Checks;
                            return Ok(Step::Requests(self.checks()));
                        }
                        Some(_) => {
                            self.phase = Phase::Header;
                            return Ok(Step::Requests(vec![Request::Header(new)]));
                        }
                        None => {
                            self.phase = Phase::Heights;
                            return Ok(Step::Requests(vec![Request::BlockStatus(new)]));
                        }
                    }
                }
                Phase::Header => {
                    let header = self.new_header.ok_or_else(|| missing("header"))?;
                    let old = self.old_tip.ok_or_else(|| missing("old tip"))?;
                    let new = self.new_hash.ok_or_else(|| missing("tip hash"))?;
                    if header.prev_blockhash == old.hash {
                        self.new_height = Some(old.height + 1);
                        self.phase = Phase::Checks;
                        return Ok(Step::Requests(self.checks()));
                    }
                    self.phase = Phase::Heights;
                    return Ok(Step::Requests(vec![
                        Request::BlockStatus(new),
                        Request::BlockStatus(old.hash),
                    ]));
                }
                Phase::Heights => {
                    let status = self.new_status.ok_or_else(|| missing("tip status"))?;
                    match (status.in_best_chain, status.height) {
                        (true, Some(h)) => self.new_height = Some(h),
                        _ => return Err(ChainError::TipMoved),
                    }
                    if let (Some(_), Some(old)) = (self.old_tip, self.old_status) {
                        self.reorg = !old.in_best_chain;
                    }
                    self.phase = Phase::Checks;
                    return Ok(Step::Requests(self.checks()));
                }
                Phase::Checks => {
                    self.phase = Phase::Followups;
                    let followups = std::mem::take(&mut self.followups);
                    if !followups.is_empty() {
                        return Ok(Step::Requests(followups));
                    }
                }
                Phase::Followups => {
                    self.conclude();
                    self.phase = Phase::Done;
                }
                Phase::Done => return Ok(Step::Done),
            }
        }
    }

    fn checks(&mut self) -> Vec<Request> {
        let from = self.old_tip.map_or(0, |t| t.height);
        let to = self.new_height.unwrap_or(from);
        let tip_moved = self.old_tip.map(|t| t.hash) != self.new_hash;
        let mut requests = Vec::new();
        for (txid, watch) in &self.state.txs {
            let check = match watch.state {
                TxWatchState::Unconfirmed | TxWatchState::Gone => tip_moved,
                TxWatchState::Confirmed(_) => self.reorg,
                TxWatchState::DoubleSpent { .. } => false,
            };
            if check {
                requests.push(Request::TxStatus(*txid));
            }
        }
        for (op, watch) in &self.state.outpoints {
            let unconfirmed_spend = watch.spend.as_ref().is_some_and(|s| s.confirmed.is_none());
            let check = watch.check_now
                || self.reorg
                || (tip_moved && unconfirmed_spend)
                || (tip_moved
                    && watch.spend.is_none()
                    && OutpointWatch::due(op, watch.interval, from, to));
            if check {
                requests.push(Request::Outspend(*op));
            }
        }
        if tip_moved || self.scripts_without_new_tip {
            requests.extend(self.scripts.iter().cloned().map(Request::ScriptTxs));
        }
        requests
    }

    /// Consumes the answer to `request`.
    pub fn handle(&mut self, request: &Request, response: Response) -> Result<(), ChainError> {
        match (request, response) {
            (Request::TipHash, Response::TipHash(h)) => self.new_hash = Some(h),
            (Request::Header(_), Response::Header(h)) => self.new_header = Some(h),
            (Request::BlockStatus(h), Response::BlockStatus(s)) => {
                if Some(*h) == self.new_hash {
                    self.new_status = Some(s);
                } else {
                    self.old_status = Some(s);
                }
            }
            (Request::TxStatus(txid), Response::TxStatus(status)) => {
                self.on_tx_status(*txid, status)
            }
            (Request::MerkleBlock(txid), Response::MerkleBlock(mb)) => self.on_proof(*txid, mb)?,
            (Request::Outspend(op), Response::Outspend(spend)) => {
                if let Some(txid) = self.classify.remove(op) {
                    self.on_classified(txid, spend);
                } else {
                    self.on_outspend(*op, spend);
                }
            }
            (Request::ScriptTxs(script), Response::ScriptTxs(txs)) => {
                self.script_results.push((script.clone(), txs))
            }
            (request, response) => {
                return Err(ChainError::InvalidResponse {
                    what: format!("{request:?}"),
                    reason: format!("unexpected answer {response:?}"),
                })
            }
        }
        Ok(())
    }

    fn on_tx_status(&mut self, txid: Txid, status: TxStatus) {
        let Some(watch) = self.state.txs.get_mut(&txid) else {
            return;
        };
        let was_confirmed = matches!(watch.state, TxWatchState::Confirmed(_));
        match status {
            TxStatus::Confirmed(c) => {
                if watch.state == TxWatchState::Confirmed(c) {
                    return;
                }
                if was_confirmed {
                    watch.state = TxWatchState::Unconfirmed;
                    self.events.push(ChainEvent::TxUnconfirmed { txid });
                }
                self.pending_proofs.insert(txid, c);
                self.followups.push(Request::MerkleBlock(txid));
            }
            TxStatus::Unconfirmed => {
                if was_confirmed {
                    self.events.push(ChainEvent::TxUnconfirmed { txid });
                }
                watch.state = TxWatchState::Unconfirmed;
            }
            TxStatus::Unknown => {
                if was_confirmed {
                    self.events.push(ChainEvent::TxUnconfirmed { txid });
                    watch.state = TxWatchState::Unconfirmed;
                }
                match watch.inputs.first() {
                    Some(input) => {
                        self.classify.insert(*input, txid);
                        self.followups.push(Request::Outspend(*input));
                    }
                    None => {
                        if watch.state != TxWatchState::Gone {
                            watch.state = TxWatchState::Gone;
                            self.events.push(ChainEvent::TxGone { txid });
                        }
                    }
                }
            }
        }
    }

    fn on_proof(&mut self, txid: Txid, mb: Option<MerkleBlock>) -> Result<(), ChainError> {
        let Some(c) = self.pending_proofs.remove(&txid) else {
            return Ok(());
        };
        let Some(mb) = mb else {
            // Unconfirmed again between the two requests: the next sync will see it.
            return Ok(());
        };
        let (mut matches, mut indexes) = (Vec::new(), Vec::new());
        let root = mb.txn.extract_matches(&mut matches, &mut indexes);
        let valid = mb.header.block_hash() == c.block_hash
            && root.is_ok_and(|r| r == mb.header.merkle_root)
            && matches == [txid];
        if !valid {
            return Err(ChainError::BadProof {
                txid,
                block_hash: c.block_hash,
            });
        }
        let tx_index = indexes.first().copied().unwrap_or(0);
        if let Some(watch) = self.state.txs.get_mut(&txid) {
            watch.state = TxWatchState::Confirmed(c);
            self.events.push(ChainEvent::TxConfirmed {
                txid,
                confirmation: c,
                tx_index,
            });
        }
        Ok(())
    }

    fn on_classified(&mut self, txid: Txid, spend: Option<Spend>) {
        let Some(watch) = self.state.txs.get_mut(&txid) else {
            return;
        };
        match spend {
            Some(s) if s.txid != txid => {
                if watch.state != (TxWatchState::DoubleSpent { by: s.txid }) {
                    watch.state = TxWatchState::DoubleSpent { by: s.txid };
                    self.events
                        .push(ChainEvent::TxDoubleSpent { txid, by: s.txid });
                }
            }
            _ => {
                if watch.state != TxWatchState::Gone {
                    watch.state = TxWatchState::Gone;
                    self.events.push(ChainEvent::TxGone { txid });
                }
            }
        }
    }

    fn on_outspend(&mut self, outpoint: OutPoint, spend: Option<Spend>) {
        let Some(watch) = self.state.outpoints.get_mut(&outpoint) else {
            return;
        };
        watch.check_now = false;
        // A spend forgotten to be reported again is settled by this answer: reported again
        // if still there, reported gone if not.
        let forgotten = watch.forgotten.take();
        match spend {
            Some(s) => {
                if watch.spend.as_ref() != Some(&s) {
                    watch.spend = Some(s.clone());
                    self.events
                        .push(ChainEvent::OutpointSpent { outpoint, spend: s });
                }
            }
            None => {
                if watch.spend.take().is_some() || forgotten.is_some() {
                    self.events.push(ChainEvent::OutpointUnspent { outpoint });
                }
            }
        }
    }

    fn conclude(&mut self) {
        let (Some(hash), Some(height)) = (self.new_hash, self.new_height) else {
            return;
        };
        let tip = BlockRef { height, hash };
        if self.old_tip == Some(tip) {
            return;
        }
        self.state.tip = Some(tip);
        self.events.push(ChainEvent::NewTip {
            tip,
            reorg: self.reorg,
        });
        for (txid, watch) in &self.state.txs {
            if let TxWatchState::Confirmed(c) = watch.state {
                if height >= c.height {
                    self.events.push(ChainEvent::TxDepth {
                        txid: *txid,
                        depth: height - c.height + 1,
                    });
                }
            }
        }
    }

    /// The new state, the events, and the script histories fetched.
    pub fn finish(self) -> (ChainState, Vec<ChainEvent>, ScriptHistories) {
        (self.state, self.events, self.script_results)
    }
}

fn missing(what: &str) -> ChainError {
    ChainError::InvalidResponse {
        what: what.into(),
        reason: "no answer was handled".into(),
    }
}

#[cfg(test)]
#[path = "planner_tests.rs"]
mod tests;
