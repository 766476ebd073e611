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
//!    merkle root), the status of its block when its height cannot be told from the tip (the
//!    claimed height checked), the first input's spend of a transaction the server no longer
//!    knows (a double spend or a drop), and with [`SyncPlanner::verify_spends`] the transaction
//!    of each new spend of a watched outpoint (checked to spend it; none for a spend by a
//!    transaction the caller built, [`SyncPlanner::known_txs`], checked against it).
//!
//! What a server says is checked where it can be without trusting it more: a header must hash
//! to the block asked for; a tip that claims to be just above our tip (which the server says
//! is still in its best chain) must build on it; a confirmation must be at its block's height;
//! a spend's transaction must spend the outpoint. A lie fails the sync with an error naming it
//! ([`ChainError::is_lie`]); the caller keeps its old state. A tip at or below ours while ours
//! is still in the server's best chain is a server behind (a load balancer's lagging backend):
//! the sync ends at once with nothing changed ([`SyncPlanner::server_behind`]).

use std::collections::BTreeMap;

use bitcoin::block::Header;
use bitcoin::{BlockHash, MerkleBlock, OutPoint, ScriptBuf, Transaction, Txid};

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
    /// `GET /tx/:txid/raw` (a spend's transaction, to check it spends what it is said to).
    RawTx(Txid),
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
    /// A transaction, `None` when the server does not have it.
    RawTx(Option<Transaction>),
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
    verify_spends: bool,
    behind: bool,
    /// Blocks of new confirmations whose height is checked by a follow-up status request.
    pending_heights: BTreeMap<BlockHash, Vec<(Txid, u32)>>,
    /// Transactions the caller knows (its own posted ones): a spend by one is checked
    /// without asking for it ([`SyncPlanner::known_txs`]).
    known_txs: BTreeMap<Txid, Transaction>,
    /// New spends of watched outpoints waiting for their transaction, by spending txid.
    pending_spends: BTreeMap<Txid, Vec<(OutPoint, Spend)>>,
    /// The spending transactions checked ([`SyncPlanner::spending_txs`]).
    spending_txs: Vec<Transaction>,
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
            verify_spends: false,
            behind: false,
            pending_heights: BTreeMap::new(),
            pending_spends: BTreeMap::new(),
            known_txs: BTreeMap::new(),
            spending_txs: Vec::new(),
        }
    }

    /// The transactions of the new spends checked by [`SyncPlanner::verify_spends`] (their
    /// consumers need them; the node serves them without asking again).
    pub fn spending_txs(&self) -> &[Transaction] {
        &self.spending_txs
    }

    /// Also fetch the transaction of each new spend of a watched outpoint and check that it
    /// spends it (one more request per new spend; the node's watcher plans this way).
    pub fn verify_spends(mut self) -> Self {
        self.verify_spends = true;
        self
    }

    /// Transactions the caller built itself (the closes and sweeps it posted): a new spend by
    /// one of them is checked against it, with no request.
    pub fn known_txs(mut self, txs: impl IntoIterator<Item = Transaction>) -> Self {
        self.known_txs
            .extend(txs.into_iter().map(|t| (t.compute_txid(), t)));
        self
    }

    /// Whether the sync found the server behind us (its tip at or below ours while ours is in
    /// its best chain) and so changed nothing.
    pub fn server_behind(&self) -> bool {
        self.behind
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
                    if header.block_hash() != new {
                        return Err(ChainError::WrongHeader {
                            asked: new,
                            got: header.block_hash(),
                        });
                    }
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
                    let height = match (status.in_best_chain, status.height) {
                        (true, Some(h)) => h,
                        _ => return Err(ChainError::TipMoved),
                    };
                    self.new_height = Some(height);
                    if let (Some(old), Some(old_status)) = (self.old_tip, self.old_status) {
                        self.reorg = !old_status.in_best_chain;
                        if !self.reorg && self.check_heights(old, old_status, height)? {
                            self.behind = true;
                            self.new_height = Some(old.height);
                            self.new_hash = Some(old.hash);
                            self.phase = Phase::Done;
                            continue;
                        }
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
            (Request::BlockStatus(h), Response::BlockStatus(s))
                if self.phase == Phase::Followups =>
            {
                self.on_confirmation_block(*h, s)?
            }
            (Request::BlockStatus(h), Response::BlockStatus(s)) => {
                if Some(*h) == self.new_hash {
                    self.new_status = Some(s);
                } else {
                    self.old_status = Some(s);
                }
            }
            (Request::TxStatus(txid), Response::TxStatus(status)) => {
                self.on_tx_status(*txid, status)?
            }
            (Request::RawTx(txid), Response::RawTx(tx)) => self.on_spending_tx(*txid, tx)?,
            (Request::MerkleBlock(txid), Response::MerkleBlock(mb)) => self.on_proof(*txid, mb)?,
            (Request::Outspend(op), Response::Outspend(spend)) => {
                if let Some(txid) = self.classify.remove(op) {
                    self.on_classified(txid, spend);
                } else {
                    self.on_outspend(*op, spend)?;
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

    /// Our tip is in the server's best chain and its tip is at `height`: whether the server
    /// is behind us (at or below our tip); an error when its answers do not fit together.
    fn check_heights(
        &self,
        old: BlockRef,
        old_status: BlockStatus,
        height: u32,
    ) -> Result<bool, ChainError> {
        let tip = self.new_hash.ok_or_else(|| missing("tip hash"))?;
        let disconnected = |reason: String| ChainError::HeadersDisconnected {
            tip,
            height,
            reason,
        };
        if old_status.height != Some(old.height) {
            return Err(disconnected(format!(
                "the server puts our tip {} at height {:?}, not {}",
                old.hash, old_status.height, old.height
            )));
        }
        if height <= old.height {
            return Ok(true);
        }
        if let Some(header) = self.new_header {
            if height == old.height + 1 && header.prev_blockhash != old.hash {
                return Err(disconnected(format!(
                    "it builds on {}, not on our tip {} at height {} (in the server's best chain)",
                    header.prev_blockhash, old.hash, old.height
                )));
            }
        }
        Ok(false)
    }

    /// Checks a confirmation's claimed height where the tip tells it; else asks its block's
    /// status (a follow-up).
    fn check_confirmation(&mut self, txid: Txid, c: Confirmation) -> Result<(), ChainError> {
        let (Some(tip_hash), Some(tip_height)) = (self.new_hash, self.new_height) else {
            return Err(missing("tip"));
        };
        let wrong = |actual: String| ChainError::WrongHeight {
            txid,
            block_hash: c.block_hash,
            claimed: c.height,
            actual,
        };
        if c.height > tip_height {
            return Err(wrong(format!("above the tip at height {tip_height}")));
        }
        if c.block_hash == tip_hash || c.height == tip_height {
            if c.block_hash != tip_hash {
                return Err(wrong(format!("not the tip {tip_hash} at that height")));
            }
            if c.height != tip_height {
                return Err(wrong(format!("the tip, at height {tip_height}")));
            }
            return Ok(());
        }
        let known_parent = self
            .new_header
            .filter(|h| h.block_hash() == tip_hash)
            .is_some_and(|h| h.prev_blockhash == c.block_hash);
        if known_parent {
            if c.height + 1 != tip_height {
                return Err(wrong(format!(
                    "the tip's parent, at height {}",
                    tip_height - 1
                )));
            }
            return Ok(());
        }
        let waiting = self.pending_heights.entry(c.block_hash).or_default();
        if waiting.is_empty() {
            self.followups.push(Request::BlockStatus(c.block_hash));
        }
        waiting.push((txid, c.height));
        Ok(())
    }

    fn on_confirmation_block(
        &mut self,
        hash: BlockHash,
        status: BlockStatus,
    ) -> Result<(), ChainError> {
        for (txid, claimed) in self.pending_heights.remove(&hash).unwrap_or_default() {
            let actual = match (status.in_best_chain, status.height) {
                (true, Some(h)) if h == claimed => continue,
                (true, Some(h)) => format!("at height {h}"),
                (true, None) => "in the best chain at no height".to_string(),
                (false, _) => "not in the best chain".to_string(),
            };
            return Err(ChainError::WrongHeight {
                txid,
                block_hash: hash,
                claimed,
                actual,
            });
        }
        Ok(())
    }

    fn on_tx_status(&mut self, txid: Txid, status: TxStatus) -> Result<(), ChainError> {
        if let TxStatus::Confirmed(c) = status {
            let known = self.state.txs.get(&txid).map(|w| w.state);
            if known.is_some() && known != Some(TxWatchState::Confirmed(c)) {
                self.check_confirmation(txid, c)?;
            }
        }
        let Some(watch) = self.state.txs.get_mut(&txid) else {
            return Ok(());
        };
        let was_confirmed = matches!(watch.state, TxWatchState::Confirmed(_));
        match status {
            TxStatus::Confirmed(c) => {
                if watch.state == TxWatchState::Confirmed(c) {
                    return Ok(());
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
        Ok(())
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

    fn on_outspend(&mut self, outpoint: OutPoint, spend: Option<Spend>) -> Result<(), ChainError> {
        let Some(watch) = self.state.outpoints.get(&outpoint) else {
            return Ok(());
        };
        if let Some(s) = spend.as_ref().filter(|_| self.verify_spends) {
            // A transaction we watch with that input (ours: a close, a sweep) needs no check.
            let ours = self
                .state
                .txs
                .get(&s.txid)
                .is_some_and(|w| w.inputs.contains(&outpoint));
            if watch.spend.as_ref() != Some(s) && !ours {
                let txid = s.txid;
                let waiting = self.pending_spends.entry(txid).or_default();
                let first = waiting.is_empty();
                waiting.push((outpoint, s.clone()));
                // A transaction we built (a close, a sweep we posted) is checked here.
                if let Some(tx) = self.known_txs.get(&txid).cloned() {
                    return self.on_spending_tx(txid, Some(tx));
                }
                if first {
                    self.followups.push(Request::RawTx(txid));
                }
                return Ok(());
            }
        }
        self.apply_outspend(outpoint, spend);
        Ok(())
    }

    /// A new spend's transaction: applied when it spends the outpoint, a lie otherwise.
    fn on_spending_tx(&mut self, txid: Txid, tx: Option<Transaction>) -> Result<(), ChainError> {
        for (outpoint, spend) in self.pending_spends.remove(&txid).unwrap_or_default() {
            let bad = |reason: String| ChainError::BadSpend {
                outpoint,
                txid,
                vin: spend.vin,
                reason,
            };
            let Some(tx) = tx.as_ref() else {
                return Err(bad("the server does not have that transaction".into()));
            };
            spend.check(outpoint, tx).map_err(bad)?;
            self.apply_outspend(outpoint, Some(spend));
        }
        if let Some(tx) = tx {
            if tx.compute_txid() == txid {
                self.spending_txs.push(tx);
            }
        }
        Ok(())
    }

    fn apply_outspend(&mut self, outpoint: OutPoint, spend: Option<Spend>) {
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
        if self.behind {
            return;
        }
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
