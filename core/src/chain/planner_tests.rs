//! Planner tests against an in-memory chain (real blocks, real merkle blocks): request counts
//! per case, and the events each chain change produces.

use std::collections::BTreeMap;

use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, transaction, Amount, Block, BlockHash, CompactTarget, MerkleBlock, OutPoint,
    ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode, TxOut, Txid, Witness,
};

use super::*;
use crate::chain::state::{ChainState, TxWatchState};
use crate::chain::{BlockStatus, ScriptTx, Spend, TxStatus};

fn tx(inputs: &[OutPoint], tag: u64) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: inputs
            .iter()
            .map(|op| TxIn {
                previous_output: *op,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            })
            .collect(),
        output: vec![TxOut {
            value: Amount::from_sat(tag),
            script_pubkey: ScriptBuf::new_op_return(tag.to_le_bytes()),
        }],
    }
}

/// A toy chain: best blocks, stale blocks, a mempool.
struct Fake {
    best: Vec<Block>,
    stale: Vec<Block>,
    mempool: Vec<Transaction>,
    counter: u64,
    requests: BTreeMap<&'static str, usize>,
}

impl Fake {
    fn new(height: u32) -> Fake {
        let mut f = Fake {
            best: Vec::new(),
            stale: Vec::new(),
            mempool: Vec::new(),
            counter: 0,
            requests: BTreeMap::new(),
        };
        for _ in 0..=height {
            f.mine(vec![]);
        }
        f
    }

    fn mine(&mut self, txs: Vec<Transaction>) -> BlockHash {
        self.counter += 1;
        // A unique coinbase (null outpoint) per block.
        let mut txdata = vec![tx(&[OutPoint::null()], 1_000_000 + self.counter)];
        self.mempool.retain(|m| !txs.contains(m));
        txdata.extend(txs);
        let prev = self
            .best
            .last()
            .map_or(BlockHash::all_zeros(), |b| b.block_hash());
        let mut block = Block {
            header: Header {
                version: Version::TWO,
                prev_blockhash: prev,
                merkle_root: TxMerkleNode::all_zeros(),
                time: 1_700_000_000 + self.counter as u32,
                bits: CompactTarget::from_consensus(0x207f_ffff),
                nonce: 0,
            },
            txdata,
        };
        block.header.merkle_root = block.compute_merkle_root().expect("root");
        let hash = block.block_hash();
        self.best.push(block);
        hash
    }

    fn mine_mempool(&mut self) -> BlockHash {
        let txs = std::mem::take(&mut self.mempool);
        self.mine(txs)
    }

    fn reorg(&mut self, depth: usize) {
        for _ in 0..depth {
            if let Some(b) = self.best.pop() {
                for t in b.txdata.iter().skip(1) {
                    self.mempool.push(t.clone());
                }
                self.stale.push(b);
            }
        }
    }

    fn tip(&self) -> BlockRef {
        let b = self.best.last().expect("genesis");
        BlockRef {
            height: self.best.len() as u32 - 1,
            hash: b.block_hash(),
        }
    }

    fn find(&self, txid: &Txid) -> Option<(usize, &Block)> {
        self.best
            .iter()
            .enumerate()
            .find(|(_, b)| b.txdata.iter().any(|t| t.compute_txid() == *txid))
    }

    fn status(&self, txid: &Txid) -> TxStatus {
        if let Some((h, b)) = self.find(txid) {
            return TxStatus::Confirmed(Confirmation {
                height: h as u32,
                block_hash: b.block_hash(),
                block_time: u64::from(b.header.time),
            });
        }
        if self.mempool.iter().any(|t| t.compute_txid() == *txid) {
            TxStatus::Unconfirmed
        } else {
            TxStatus::Unknown
        }
    }

    fn answer(&mut self, req: &Request) -> Response {
        let name = match req {
            Request::TipHash => "tip",
            Request::Header(_) => "header",
            Request::BlockStatus(_) => "status",
            Request::TxStatus(_) => "tx",
            Request::MerkleBlock(_) => "proof",
            Request::Outspend(_) => "outspend",
            Request::ScriptTxs(_) => "script",
            Request::RawTx(_) => "rawtx",
        };
        *self.requests.entry(name).or_default() += 1;
        match req {
            Request::TipHash => Response::TipHash(self.tip().hash),
            Request::Header(h) => Response::Header(
                self.best
                    .iter()
                    .chain(&self.stale)
                    .find(|b| b.block_hash() == *h)
                    .expect("known")
                    .header,
            ),
            Request::BlockStatus(h) => {
                let pos = self.best.iter().position(|b| b.block_hash() == *h);
                Response::BlockStatus(BlockStatus {
                    in_best_chain: pos.is_some(),
                    height: pos.map(|p| p as u32),
                })
            }
            Request::TxStatus(t) => Response::TxStatus(self.status(t)),
            Request::MerkleBlock(t) => Response::MerkleBlock(
                self.find(t)
                    .map(|(_, b)| MerkleBlock::from_block_with_predicate(b, |x| x == t)),
            ),
            Request::Outspend(op) => {
                let confirmed = self
                    .best
                    .iter()
                    .flat_map(|b| &b.txdata)
                    .chain(&self.mempool);
                let spend = confirmed.into_iter().find_map(|t| {
                    let vin = t.input.iter().position(|i| i.previous_output == *op)?;
                    let txid = t.compute_txid();
                    let confirmed = match self.status(&txid) {
                        TxStatus::Confirmed(c) => Some(c),
                        _ => None,
                    };
                    Some(Spend {
                        txid,
                        vin: vin as u32,
                        confirmed,
                    })
                });
                Response::Outspend(spend)
            }
            Request::ScriptTxs(_) => Response::ScriptTxs(Vec::<ScriptTx>::new()),
            Request::RawTx(t) => Response::RawTx(
                self.best
                    .iter()
                    .flat_map(|b| &b.txdata)
                    .chain(&self.mempool)
                    .find(|x| x.compute_txid() == *t)
                    .cloned(),
            ),
        }
    }

    fn sync(
        &mut self,
        planner: SyncPlanner,
    ) -> Result<(ChainState, Vec<ChainEvent>, usize), ChainError> {
        self.requests.clear();
        let mut planner = planner;
        let mut n = 0;
        while let Step::Requests(batch) = planner.poll()? {
            for req in batch {
                n += 1;
                let answer = self.answer(&req);
                planner.handle(&req, answer)?;
            }
        }
        let (state, events, _) = planner.finish();
        Ok((state, events, n))
    }
}

fn synced(fake: &mut Fake) -> ChainState {
    let (state, _, _) = fake
        .sync(SyncPlanner::new(ChainState::default(), vec![]))
        .expect("sync");
    assert_eq!(state.tip, Some(fake.tip()));
    state
}

#[test]
fn nothing_changed_costs_exactly_one_request() {
    let mut fake = Fake::new(200);
    let mut state = synced(&mut fake);
    state.watch_tx(Txid::from_byte_array([1; 32]), vec![]);
    for i in 0..10u8 {
        state.watch_outpoint(OutPoint::new(Txid::from_byte_array([i; 32]), 0), 144);
        state
            .outpoints
            .values_mut()
            .for_each(|w| w.check_now = false);
    }
    let scripts = vec![ScriptBuf::new_op_return([7u8; 4])];
    let (after, events, n) = fake
        .sync(SyncPlanner::new(state.clone(), scripts))
        .expect("sync");
    assert_eq!(n, 1);
    assert_eq!(fake.requests.get("tip"), Some(&1));
    assert!(events.is_empty());
    assert_eq!(after, state);
}

#[test]
fn new_block_cost_is_bounded_and_outpoints_are_checked_once_per_interval() {
    let mut fake = Fake::new(100);
    let mut state = synced(&mut fake);
    let channels: Vec<OutPoint> = (0..10u8)
        .map(|i| OutPoint::new(Txid::from_byte_array([i.wrapping_mul(31); 32]), 1))
        .collect();
    for op in &channels {
        state.watch_outpoint(*op, 144);
    }
    // The first sync after adding watches checks them all once.
    let (s, _, n) = fake.sync(SyncPlanner::new(state, vec![])).expect("sync");
    assert_eq!(n, 1 + 10);
    state = s;
    let mut checks: BTreeMap<OutPoint, usize> = BTreeMap::new();
    let interval = 144 / 4;
    let script = ScriptBuf::new_op_return([9u8; 4]);
    let mut max_per_block = 0;
    for _ in 0..interval {
        fake.mine(vec![]);
        let (s, events, n) = fake
            .sync(SyncPlanner::new(state, vec![script.clone()]))
            .expect("sync");
        state = s;
        // tip + header + the one wallet script + the outpoints due this block
        let outspends = fake.requests.get("outspend").copied().unwrap_or(0);
        assert_eq!(n, 3 + outspends);
        assert!(matches!(events[0], ChainEvent::NewTip { reorg: false, .. }));
        max_per_block = max_per_block.max(outspends);
        for op in &channels {
            if OutpointWatch::due(op, interval, fake.tip().height - 1, fake.tip().height) {
                *checks.entry(*op).or_default() += 1;
            }
        }
    }
    assert!(
        channels.iter().all(|op| checks.get(op) == Some(&1)),
        "{checks:?}"
    );
    assert!(
        max_per_block < channels.len(),
        "staggered, not all on one block"
    );
}

#[test]
fn confirmation_is_proven_and_depth_reported() {
    let mut fake = Fake::new(10);
    let mut state = synced(&mut fake);
    let funding = tx(&[OutPoint::new(Txid::from_byte_array([5; 32]), 0)], 42);
    let txid = funding.compute_txid();
    fake.mempool.push(funding.clone());
    state.watch_tx(
        txid,
        funding.input.iter().map(|i| i.previous_output).collect(),
    );
    let hash = fake.mine_mempool();
    let (s, events, _) = fake.sync(SyncPlanner::new(state, vec![])).expect("sync");
    assert_eq!(fake.requests.get("proof"), Some(&1));
    assert!(events.contains(&ChainEvent::TxConfirmed {
        txid,
        confirmation: Confirmation {
            height: 11,
            block_hash: hash,
            block_time: 1_700_000_012
        },
        tx_index: 1,
    }));
    assert!(events.contains(&ChainEvent::TxDepth { txid, depth: 1 }));
    fake.mine(vec![]);
    fake.mine(vec![]);
    let (s, events, n) = fake.sync(SyncPlanner::new(s, vec![])).expect("sync");
    assert_eq!(
        n, 4,
        "tip, then both tips' status (two blocks): no tx request once confirmed"
    );
    assert!(events.contains(&ChainEvent::TxDepth { txid, depth: 3 }));
    assert_eq!(s.depth(&txid), 3);
}

#[test]
fn a_forged_proof_is_refused() {
    let mut fake = Fake::new(3);
    let mut state = synced(&mut fake);
    let t = tx(&[OutPoint::new(Txid::from_byte_array([5; 32]), 0)], 42);
    state.watch_tx(t.compute_txid(), vec![]);
    fake.mine(vec![t.clone()]);
    let mut planner = SyncPlanner::new(state, vec![]);
    let mut result = Ok(());
    while let Ok(Step::Requests(batch)) = planner.poll() {
        for req in batch {
            let answer = match &req {
                // A proof from another block.
                Request::MerkleBlock(_) => Response::MerkleBlock(Some(
                    MerkleBlock::from_block_with_predicate(&fake.best[1], |_| true),
                )),
                other => fake.answer(other),
            };
            if let Err(e) = planner.handle(&req, answer) {
                result = Err(e);
            }
        }
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(result, Err(ChainError::BadProof { .. })));
}

#[test]
fn reorg_unconfirms_then_reconfirms() {
    let mut fake = Fake::new(10);
    let mut state = synced(&mut fake);
    let t = tx(&[OutPoint::new(Txid::from_byte_array([5; 32]), 0)], 42);
    let txid = t.compute_txid();
    state.watch_tx(txid, vec![]);
    let old_block = fake.mine(vec![t]);
    let (s, _, _) = fake.sync(SyncPlanner::new(state, vec![])).expect("sync");
    assert!(matches!(s.txs[&txid].state, TxWatchState::Confirmed(c) if c.block_hash == old_block));
    fake.reorg(1);
    fake.mine(vec![]);
    fake.mine(vec![]);
    let (s, events, _) = fake.sync(SyncPlanner::new(s, vec![])).expect("sync");
    assert!(
        matches!(
            events[..],
            [
                ChainEvent::TxUnconfirmed { .. },
                ChainEvent::NewTip { reorg: true, .. }
            ]
        ),
        "{events:?}"
    );
    assert_eq!(s.txs[&txid].state, TxWatchState::Unconfirmed);
    let new_block = fake.mine_mempool();
    let (s, events, _) = fake.sync(SyncPlanner::new(s, vec![])).expect("sync");
    assert!(events.iter().any(|e| matches!(e, ChainEvent::TxConfirmed { confirmation, .. } if confirmation.block_hash == new_block)));
    assert_eq!(s.depth(&txid), 1);
}

#[test]
fn double_spend_and_drop_are_told_apart() {
    let mut fake = Fake::new(10);
    let mut state = synced(&mut fake);
    let input = OutPoint::new(Txid::from_byte_array([5; 32]), 0);
    let funding = tx(&[input], 42);
    let dropped = tx(&[OutPoint::new(Txid::from_byte_array([6; 32]), 0)], 43);
    fake.mempool.extend([funding.clone(), dropped.clone()]);
    state.watch_tx(funding.compute_txid(), vec![input]);
    state.watch_tx(
        dropped.compute_txid(),
        vec![dropped.input[0].previous_output],
    );
    // The funding is replaced by a conflicting spend, the other one simply vanishes.
    fake.mempool.clear();
    let conflict = tx(&[input], 44);
    fake.mine(vec![conflict.clone()]);
    let (s, events, _) = fake.sync(SyncPlanner::new(state, vec![])).expect("sync");
    assert!(events.contains(&ChainEvent::TxDoubleSpent {
        txid: funding.compute_txid(),
        by: conflict.compute_txid()
    }));
    assert!(events.contains(&ChainEvent::TxGone {
        txid: dropped.compute_txid()
    }));
    assert_eq!(
        s.txs[&funding.compute_txid()].state,
        TxWatchState::DoubleSpent {
            by: conflict.compute_txid()
        }
    );
}

#[test]
fn forced_outpoint_check_without_new_tip() {
    let mut fake = Fake::new(10);
    let mut state = synced(&mut fake);
    let op = OutPoint::new(Txid::from_byte_array([8; 32]), 0);
    state.watch_outpoint(op, 144);
    let (mut s, _, n) = fake.sync(SyncPlanner::new(state, vec![])).expect("sync");
    assert_eq!(n, 2, "a new watch is checked at once");
    let (s2, _, n) = fake
        .sync(SyncPlanner::new(s.clone(), vec![]))
        .expect("sync");
    assert_eq!(n, 1);
    s = s2;
    // Peer disconnected unexpectedly: check now.
    s.check_outpoint_now(&op);
    let spender = tx(&[op], 9);
    fake.mempool.push(spender.clone());
    let (s, events, n) = fake.sync(SyncPlanner::new(s, vec![])).expect("sync");
    assert_eq!(n, 2);
    assert!(
        matches!(&events[..], [ChainEvent::OutpointSpent { spend, .. }] if spend.txid == spender.compute_txid())
    );
    assert!(!s.outpoints[&op].check_now);
}

/// The funding-spend schedule with a large `to_self_delay` (2016, the largest a peer may
/// ask): capped at `MAX_OUTPOINT_INTERVAL` blocks, one outspend request per sync where the
/// outpoint is due and none otherwise, and the spend reported at the first due block after it.
#[test]
fn a_spend_is_seen_at_the_first_due_block_and_the_interval_is_capped() {
    use crate::chain::state::{OutpointWatch, MAX_OUTPOINT_INTERVAL};
    assert_eq!(OutpointWatch::interval_for(2016), MAX_OUTPOINT_INTERVAL);
    assert_eq!(OutpointWatch::interval_for(144), 36);
    assert_eq!(OutpointWatch::interval_for(40), 10);
    assert_eq!(OutpointWatch::interval_for(3), 1);
    let mut fake = Fake::new(300);
    let mut state = synced(&mut fake);
    let op = OutPoint::new(Txid::from_byte_array([0x5a; 32]), 1);
    state.watch_outpoint(op, 2016);
    let interval = state.outpoints[&op].interval;
    assert_eq!(interval, MAX_OUTPOINT_INTERVAL);
    let (s, _, n) = fake.sync(SyncPlanner::new(state, vec![])).expect("sync");
    assert_eq!(n, 2, "checked at once when added");
    state = s;
    let due = |h: u32| OutpointWatch::due(&op, interval, h - 1, h);
    // Mine the spend in a block where the outpoint is not due.
    while due(fake.tip().height + 1) {
        fake.mine(vec![]);
    }
    let spender = tx(&[op], 77);
    fake.mempool.push(spender.clone());
    fake.mine_mempool();
    let spent_at = fake.tip().height;
    let (s, events, n) = fake.sync(SyncPlanner::new(state, vec![])).expect("sync");
    state = s;
    assert_eq!(n, 2, "tip + header, no outspend: not due");
    assert!(events
        .iter()
        .all(|e| !matches!(e, ChainEvent::OutpointSpent { .. })));
    let mut seen_at = None;
    for _ in 0..interval {
        fake.mine(vec![]);
        let h = fake.tip().height;
        let (s, events, n) = fake.sync(SyncPlanner::new(state, vec![])).expect("sync");
        state = s;
        let outspends = fake.requests.get("outspend").copied().unwrap_or(0);
        assert_eq!(outspends, usize::from(due(h)), "height {h}");
        assert_eq!(n, 2 + outspends);
        let spent = events.iter().any(|e| {
            matches!(e, ChainEvent::OutpointSpent { outpoint, spend }
                if *outpoint == op && spend.txid == spender.compute_txid()
                    && spend.confirmed.map(|c| c.height) == Some(spent_at))
        });
        assert_eq!(spent, due(h), "reported exactly when due (height {h})");
        if spent {
            seen_at = Some(h);
            break;
        }
    }
    let seen_at = seen_at.expect("seen within one capped interval");
    assert!(seen_at - spent_at <= MAX_OUTPOINT_INTERVAL);
    // A confirmed spend is not asked about again.
    fake.mine(vec![]);
    let (s, _, n) = fake.sync(SyncPlanner::new(state, vec![])).expect("sync");
    assert_eq!(n, 2);
    // Its consumer missed it: forgotten, it is checked and reported again at the same tip.
    let mut s = s;
    s.report_spend_again(&op);
    assert!(s.outpoints[&op].check_now && s.outpoints[&op].spend.is_none());
    let (s, events, n) = fake.sync(SyncPlanner::new(s, vec![])).expect("sync");
    assert_eq!(n, 2, "tip + outspend");
    assert!(
        matches!(&events[..], [ChainEvent::OutpointSpent { spend, .. }] if spend.txid == spender.compute_txid())
    );
    assert!(!s.outpoints[&op].check_now);
    // A watch stored with a longer interval (before the cap) is read with the cap: checked
    // once in any MAX_OUTPOINT_INTERVAL blocks, not once in 504.
    let mut state = s;
    let w = state.outpoints.get_mut(&op).expect("watched");
    w.interval = 504;
    w.spend = None;
    let mut outspends = 0;
    for _ in 0..MAX_OUTPOINT_INTERVAL {
        fake.mine(vec![]);
        let (s, _, _) = fake.sync(SyncPlanner::new(state, vec![])).expect("sync");
        state = s;
        outspends += fake.requests.get("outspend").copied().unwrap_or(0);
    }
    assert_eq!(outspends, 1);
}

/// A spend asked for again (`report_spend_again`: its consumer may have missed it) that
/// leaves the mempool before the re-check: the re-check reports the output unspent, so a
/// consumer that did take the spend (a channel closing on the peer's commitment) learns it
/// is gone, also across a restart between the two (the state is persisted in between). A
/// spend still there is reported again instead, and one that never left is asked once.
#[test]
fn a_spend_asked_again_that_left_the_mempool_before_the_recheck_is_reported_unspent() {
    let mut fake = Fake::new(20);
    let mut state = synced(&mut fake);
    let op = OutPoint::new(Txid::from_byte_array([0x6b; 32]), 0);
    state.watch_outpoint(op, 144);
    let spender = tx(&[op], 61);
    fake.mempool.push(spender.clone());
    let (s, events, _) = fake.sync(SyncPlanner::new(state, vec![])).expect("sync");
    assert!(
        matches!(&events[..], [ChainEvent::OutpointSpent { spend, .. }] if spend.txid == spender.compute_txid())
    );
    let mut s = s;
    s.report_spend_again(&op);
    // A restart between the forgetting and the re-check.
    let s = ChainState::decode(&s.encode()).expect("decodes");
    // The spend is replaced out of the mempool (or expires) before the re-check.
    fake.mempool.clear();
    let (s, events, n) = fake.sync(SyncPlanner::new(s, vec![])).expect("sync");
    assert_eq!(n, 2, "tip + outspend");
    assert!(
        matches!(&events[..], [ChainEvent::OutpointUnspent { outpoint }] if *outpoint == op),
        "{events:?}"
    );
    assert!(!s.outpoints[&op].check_now && s.outpoints[&op].spend.is_none());
    // Nothing more to report: the next sync at the same tip asks nothing.
    let (s, events, n) = fake.sync(SyncPlanner::new(s, vec![])).expect("sync");
    assert!(events.is_empty());
    assert_eq!(n, 1);
    // An output never seen spent, asked again: nothing to forget, nothing reported.
    let mut s = s;
    s.report_spend_again(&op);
    assert!(!s.outpoints[&op].check_now);
    let (_, events, n) = fake.sync(SyncPlanner::new(s, vec![])).expect("sync");
    assert!(events.is_empty());
    assert_eq!(n, 1);
}

/// A sync's new state, events, and whether the server was behind.
type Synced = (ChainState, Vec<ChainEvent>, bool);

/// Runs `planner` against `fake`, answering with `lie` where it gives an answer; returns the
/// outcome (the planner's error, if it found the lie) and the number of requests.
fn sync_lying(
    fake: &mut Fake,
    planner: SyncPlanner,
    mut lie: impl FnMut(&Request, &Fake) -> Option<Response>,
) -> (Result<Synced, ChainError>, usize) {
    fake.requests.clear();
    let mut planner = planner;
    let mut n = 0;
    loop {
        let batch = match planner.poll() {
            Ok(Step::Requests(batch)) => batch,
            Ok(Step::Done) => break,
            Err(e) => return (Err(e), n),
        };
        for req in batch {
            n += 1;
            let answer = match lie(&req, fake) {
                Some(a) => a,
                None => fake.answer(&req),
            };
            if let Err(e) = planner.handle(&req, answer) {
                return (Err(e), n);
            }
        }
    }
    let behind = planner.server_behind();
    let (state, events, _) = planner.finish();
    (Ok((state, events, behind)), n)
}

#[test]
fn a_header_of_another_block_is_refused() {
    let mut fake = Fake::new(5);
    let state = synced(&mut fake);
    fake.mine(vec![]);
    let other = fake.best[2].header;
    let (result, _) = sync_lying(
        &mut fake,
        SyncPlanner::new(state.clone(), vec![]),
        |req, _| matches!(req, Request::Header(_)).then_some(Response::Header(other)),
    );
    let err = result.expect_err("lie");
    assert!(
        matches!(err, ChainError::WrongHeader { .. }) && err.is_lie(),
        "{err}"
    );
    let (s, _, _) = fake.sync(SyncPlanner::new(state, vec![])).expect("honest");
    assert_eq!(s.tip, Some(fake.tip()), "the next honest sync recovers");
}

#[test]
fn a_tip_that_does_not_build_on_ours_one_block_up_is_refused() {
    let mut fake = Fake::new(5);
    let state = synced(&mut fake);
    let ours = state.tip.expect("tip");
    // Two blocks mined, but the server claims its tip is only one above ours (which it says
    // is still in its best chain): the tip must then build on ours, and it does not.
    fake.mine(vec![]);
    let tip = fake.mine(vec![]);
    let (result, n) = sync_lying(
        &mut fake,
        SyncPlanner::new(state.clone(), vec![]),
        |req, _| match req {
            Request::BlockStatus(h) if *h == tip => Some(Response::BlockStatus(BlockStatus {
                in_best_chain: true,
                height: Some(ours.height + 1),
            })),
            _ => None,
        },
    );
    let err = result.expect_err("lie");
    assert!(
        matches!(err, ChainError::HeadersDisconnected { height, .. } if height == ours.height + 1),
        "{err}"
    );
    assert!(err.to_string().contains("headers do not connect"), "{err}");
    assert_eq!(n, 4, "tip, header, both statuses");
    let (s, _, _) = fake.sync(SyncPlanner::new(state, vec![])).expect("honest");
    assert_eq!(s.tip, Some(fake.tip()));
}

#[test]
fn a_tip_behind_ours_skips_the_sync_without_error() {
    let mut fake = Fake::new(8);
    let mut state = synced(&mut fake);
    let t = tx(&[OutPoint::new(Txid::from_byte_array([5; 32]), 0)], 42);
    state.watch_tx(t.compute_txid(), vec![]);
    fake.mempool.push(t);
    let before = state.encode();
    // A lagging backend behind a load balancer: its tip is two blocks below ours, and our tip
    // is in the best chain (another backend answered the status).
    let lagging = fake.best[6].block_hash();
    let (result, n) = sync_lying(
        &mut fake,
        SyncPlanner::new(state.clone(), vec![]),
        |req, f| match req {
            Request::TipHash => Some(Response::TipHash(lagging)),
            Request::BlockStatus(h) if *h == lagging => {
                let _ = f;
                Some(Response::BlockStatus(BlockStatus {
                    in_best_chain: true,
                    height: Some(6),
                }))
            }
            _ => None,
        },
    );
    let (s, events, behind) = result.expect("server behind is no error");
    assert!(behind);
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(s.encode(), before, "nothing changed");
    assert_eq!(n, 4, "tip, header, both statuses; no checks");
    // The next honest sync: nothing changed on the real chain.
    let (s, events, n) = fake.sync(SyncPlanner::new(s, vec![])).expect("honest");
    assert_eq!((n, events.len(), s.encode()), (1, 0, before));
}

#[test]
fn a_confirmation_at_the_wrong_height_is_refused() {
    let mut fake = Fake::new(10);
    let state = synced(&mut fake);
    let t = tx(&[OutPoint::new(Txid::from_byte_array([5; 32]), 0)], 42);
    let txid = t.compute_txid();
    let mut state = state;
    state.watch_tx(txid, vec![]);
    let block = fake.mine(vec![t]);
    fake.mine(vec![]);
    fake.mine(vec![]);
    let before = state.encode();
    for claimed in [12u32, 20, 13] {
        let (result, _) = sync_lying(
            &mut fake,
            SyncPlanner::new(state.clone(), vec![]),
            |req, f| match req {
                Request::TxStatus(t) if *t == txid => {
                    let TxStatus::Confirmed(c) = f.status(t) else {
                        return None;
                    };
                    Some(Response::TxStatus(TxStatus::Confirmed(Confirmation {
                        height: claimed,
                        ..c
                    })))
                }
                _ => None,
            },
        );
        let err = result.expect_err("lie");
        assert!(
            matches!(err, ChainError::WrongHeight { claimed: c, block_hash, .. } if c == claimed && block_hash == block),
            "{claimed}: {err}"
        );
        assert_eq!(state.encode(), before);
    }
    // Honest: the block's height is checked with one status request (not the tip's block).
    let (s, events, n) = fake.sync(SyncPlanner::new(state, vec![])).expect("honest");
    assert_eq!(
        fake.requests.get("status"),
        Some(&3),
        "both tips + the block"
    );
    assert_eq!(
        n,
        1 + 1 + 2 + 1 + 1 + 1,
        "tip, header, statuses, tx, proof, block status"
    );
    assert!(events.iter().any(
        |e| matches!(e, ChainEvent::TxConfirmed { confirmation, .. } if confirmation.height == 11)
    ));
    assert_eq!(s.depth(&txid), 3);
}

#[test]
fn a_spend_by_a_transaction_that_does_not_spend_the_outpoint_is_refused() {
    let mut fake = Fake::new(10);
    let mut state = synced(&mut fake);
    let op = OutPoint::new(Txid::from_byte_array([8; 32]), 1);
    state.watch_outpoint(op, 144);
    let (s, _, _) = fake
        .sync(SyncPlanner::new(state, vec![]).verify_spends())
        .expect("sync");
    let state = s;
    let spender = tx(&[op], 50);
    let unrelated = tx(&[OutPoint::new(Txid::from_byte_array([9; 32]), 0)], 51);
    fake.mine(vec![spender.clone(), unrelated.clone()]);
    let mut forced = state.clone();
    forced.outpoints.get_mut(&op).expect("watched").check_now = true;
    let before = forced.encode();
    // The server says the outpoint is spent by a transaction that spends something else, or
    // by one it does not have.
    for (liar, served) in [
        (unrelated.compute_txid(), true),
        (Txid::from_byte_array([7; 32]), false),
    ] {
        let (result, _) = sync_lying(
            &mut fake,
            SyncPlanner::new(forced.clone(), vec![]).verify_spends(),
            |req, _| match req {
                Request::Outspend(o) if *o == op => Some(Response::Outspend(Some(Spend {
                    txid: liar,
                    vin: 0,
                    confirmed: None,
                }))),
                Request::RawTx(t) if *t == liar && !served => Some(Response::RawTx(None)),
                _ => None,
            },
        );
        let err = result.expect_err("lie");
        assert!(
            matches!(&err, ChainError::BadSpend { outpoint, txid, .. } if *outpoint == op && *txid == liar),
            "{err}"
        );
        assert!(err.is_lie());
        assert_eq!(forced.encode(), before);
    }
    // Honest: the spend is checked against its transaction (one more request) and reported.
    let (s, events, _) = fake
        .sync(SyncPlanner::new(forced, vec![]).verify_spends())
        .expect("honest");
    assert_eq!(fake.requests.get("rawtx"), Some(&1));
    assert!(events.iter().any(|e| matches!(e, ChainEvent::OutpointSpent { outpoint, spend } if *outpoint == op && spend.txid == spender.compute_txid())));
    assert!(s.outpoints[&op].spend.is_some());
    // Without verify_spends (a caller's choice), no transaction is fetched.
    let mut again = s;
    again.outpoints.get_mut(&op).expect("watched").spend = None;
    again.outpoints.get_mut(&op).expect("watched").check_now = true;
    fake.sync(SyncPlanner::new(again, vec![])).expect("sync");
    assert_eq!(fake.requests.get("rawtx"), None);
}

#[test]
fn a_spend_by_a_transaction_we_posted_is_checked_without_a_request() {
    let mut fake = Fake::new(10);
    let mut state = synced(&mut fake);
    let op = OutPoint::new(Txid::from_byte_array([8; 32]), 1);
    let other = OutPoint::new(Txid::from_byte_array([9; 32]), 0);
    state.watch_outpoint(op, 144);
    state.watch_outpoint(other, 144);
    let ours = tx(&[op], 50);
    fake.mine(vec![ours.clone()]);
    for w in state.outpoints.values_mut() {
        w.check_now = true;
    }
    let before = state.encode();
    // The server says our transaction spends `other` too: checked against ours, a lie, and
    // nothing fetched to find out.
    let (result, _) = sync_lying(
        &mut fake,
        SyncPlanner::new(state.clone(), vec![])
            .verify_spends()
            .known_txs([ours.clone()]),
        |req, _| match req {
            Request::Outspend(o) if *o == other => Some(Response::Outspend(Some(Spend {
                txid: ours.compute_txid(),
                vin: 0,
                confirmed: None,
            }))),
            _ => None,
        },
    );
    let err = result.expect_err("lie");
    assert!(
        matches!(&err, ChainError::BadSpend { outpoint, txid, .. } if *outpoint == other && *txid == ours.compute_txid()),
        "{err}"
    );
    assert_eq!(fake.requests.get("rawtx"), None);
    assert_eq!(state.encode(), before);
    // Honest: our spend of `op` is reported with no request for our transaction.
    let (s, events, _) = fake
        .sync(
            SyncPlanner::new(state, vec![])
                .verify_spends()
                .known_txs([ours.clone()]),
        )
        .expect("honest");
    assert_eq!(fake.requests.get("rawtx"), None);
    assert!(events.iter().any(|e| matches!(e, ChainEvent::OutpointSpent { outpoint, spend } if *outpoint == op && spend.txid == ours.compute_txid())));
    assert!(s.outpoints[&op].spend.is_some());
    assert!(s.outpoints[&other].spend.is_none());
}
