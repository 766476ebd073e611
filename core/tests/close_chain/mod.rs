//! Shared by `node_close_chain*.rs`: two Tern nodes (the phone funds, the LSP listens) on the
//! devnet's validating chain in process and the in-memory network (paused clock), the events
//! each node told its app (kept, in order), their wallets, and the commitment a stopped node
//! would broadcast.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bitcoin::{OutPoint, Transaction, Txid};
use tern_core::net::faults::FaultPlan;
use tern_core::net::MemoryNet;
use tern_core::node::{CloseKind, Event, Node};
use tern_core::proto::channel::{Channel, ChannelRecord, ChannelState};
use tern_core::proto::wire::ChannelId;
use tern_core::store::Store;
use tern_devnet::{DevChain, TxState};

use crate::common::memory::{dir, mine_until, node_with, open_to_ready, settle};
use crate::common::node::check_durability;

/// The delay each side asks of the other (the default, a week, would only mean mining 1008
/// blocks before a `to_local` sweep for the same checks).
pub const DELAY: u16 = 144;

/// One node of the pair: its data dir, seed, and everything it told its app so far.
pub struct Side {
    pub node: Node,
    pub dir: PathBuf,
    pub seed: u8,
    pub listen: bool,
    /// Every event seen, in order (handled as read).
    pub events: Vec<Event>,
    /// The wallet (confirmed + unconfirmed) right after the channel was ready.
    pub before: u64,
    /// Fetches the fee estimates at every sync (`fee_max_age` 0).
    pub fresh_fees: bool,
}

impl Side {
    /// Reads every pending event into [`Side::events`].
    pub async fn pump(&mut self) {
        if self.node.is_stopped() {
            return;
        }
        while let Some((seq, e)) = self.node.next_event().await.expect("events") {
            self.node.event_handled(seq).await.expect("handled");
            self.events.push(e);
        }
        check_durability(&self.node, "node");
    }

    /// The kinds of the `ChannelClosing` events seen, in order.
    pub fn closings(&self) -> Vec<CloseKind> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::ChannelClosing { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect()
    }

    /// `(kind, claimed sat, closing txid)` of the `ChannelClosed` events seen, in order.
    pub fn closed(&self) -> Vec<(CloseKind, u64, Txid)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::ChannelClosed {
                    kind,
                    claimed,
                    closing_txid,
                    ..
                } => Some((*kind, claimed.to_sat(), *closing_txid)),
                _ => None,
            })
            .collect()
    }

    /// How many `ChannelFailed` events were seen.
    pub fn failures(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::ChannelFailed { .. }))
            .count()
    }

    /// Confirmed + unconfirmed wallet balance, in sat.
    pub async fn wallet(&self) -> u64 {
        let b = self.node.list_balances().await.expect("balances");
        (b.confirmed + b.unconfirmed).to_sat()
    }

    /// The state of its only channel.
    pub async fn state(&self) -> ChannelState {
        self.node.list_channels().await[0].state
    }

    /// The status line of its only channel.
    pub async fn status(&self) -> String {
        self.node.list_channels().await[0].status.clone()
    }

    /// Stops the node (its data dir is kept).
    pub async fn stop(&mut self) {
        self.pump().await;
        self.node.stop().await;
    }

    /// Starts the node again on its data dir.
    pub async fn restart(&mut self, chain: &DevChain, net: &MemoryNet, plan: FaultPlan) {
        self.node = start(
            chain,
            net,
            &self.dir,
            self.seed,
            (self.listen, self.fresh_fees),
            plan,
        )
        .await;
    }
}

/// A node on `chain` and `net` asking [`DELAY`] of its peers, with `plan`'s faults;
/// `(listen, fresh_fees)`: it listens on the LSP's address; it fetches the fee estimates at
/// every sync.
pub async fn start(
    chain: &DevChain,
    net: &MemoryNet,
    data: &Path,
    seed: u8,
    (listen, fresh_fees): (bool, bool),
    plan: FaultPlan,
) -> Node {
    node_with(chain, net, data, seed, listen, |b| {
        let b = b
            .channel_config(|c| c.our_to_self_delay = DELAY)
            .dev_faults(plan);
        if fresh_fees {
            b.fee_max_age(std::time::Duration::ZERO)
        } else {
            b
        }
    })
    .await
}

/// The phone, the LSP, their chain and network, and the channel between them.
pub struct Pair {
    pub chain: DevChain,
    pub net: MemoryNet,
    pub phone: Side,
    pub lsp: Side,
    pub id: ChannelId,
    pub funding: OutPoint,
}

impl Pair {
    /// The standard channel (`common::memory::open_to_ready`: 250 000 sat, 10 000 pushed to
    /// the LSP) between a phone and an LSP with these fault plans.
    pub async fn ready(
        tag: &str,
        seeds: (u8, u8),
        phone_plan: FaultPlan,
        lsp_plan: FaultPlan,
    ) -> Pair {
        Self::ready_with(tag, seeds, phone_plan, lsp_plan, false).await
    }

    /// [`Pair::ready`]; `fresh_fees`: the phone fetches the fee estimates at every sync (it
    /// follows a rise with `update_fee` at the next block), on estimates of 10 sat/vB.
    pub async fn ready_with(
        tag: &str,
        seeds: (u8, u8),
        phone_plan: FaultPlan,
        lsp_plan: FaultPlan,
        fresh_fees: bool,
    ) -> Pair {
        let (chain, net) = (DevChain::new(), MemoryNet::new());
        if fresh_fees {
            chain.set_fee_estimates(crate::common::memory::estimates(10.0));
        }
        let (dp, dl) = (dir(&format!("{tag}-phone")), dir(&format!("{tag}-lsp")));
        let lsp = start(&chain, &net, &dl, seeds.1, (true, false), lsp_plan).await;
        let phone = start(&chain, &net, &dp, seeds.0, (false, fresh_fees), phone_plan).await;
        open_to_ready(&chain, &phone, &lsp).await;
        let c = phone.list_channels().await[0].clone();
        let mut pair = Pair {
            chain,
            net,
            phone: Side {
                node: phone,
                dir: dp,
                seed: seeds.0,
                listen: false,
                events: Vec::new(),
                before: 0,
                fresh_fees,
            },
            lsp: Side {
                node: lsp,
                dir: dl,
                seed: seeds.1,
                listen: true,
                events: Vec::new(),
                before: 0,
                fresh_fees: false,
            },
            id: c.channel_id,
            funding: c.funding_txo.expect("funding"),
        };
        pair.pump().await;
        pair.phone.events.clear();
        pair.lsp.events.clear();
        pair.phone.before = pair.phone.wallet().await;
        pair.lsp.before = pair.lsp.wallet().await;
        pair
    }

    /// Reads both nodes' events.
    pub async fn pump(&mut self) {
        self.phone.pump().await;
        self.lsp.pump().await;
    }

    /// The running nodes.
    fn running(&self) -> Vec<Node> {
        [&self.phone.node, &self.lsp.node]
            .into_iter()
            .filter(|n| !n.is_stopped())
            .cloned()
            .collect()
    }

    /// Mines `n` blocks one at a time, syncing every running node after each, letting their
    /// tasks act on it and reading their events.
    pub async fn mine(&mut self, n: u32) {
        for _ in 0..n {
            let nodes = self.running();
            let refs: Vec<&Node> = nodes.iter().collect();
            mine_until(&self.chain, &refs, 1).await;
            idle().await;
            self.pump().await;
        }
    }

    /// Mines one block at a time (as [`Pair::mine`]) until `done` holds, at most `max` blocks;
    /// returns how many were mined.
    pub async fn mine_while(&mut self, max: u32, what: &str, done: impl Fn(&Pair) -> bool) -> u32 {
        for mined in 0..=max {
            idle().await;
            self.pump().await;
            if done(self) {
                return mined;
            }
            if mined < max {
                self.mine(1).await;
            }
        }
        panic!(
            "not within {max} blocks: {what}; phone {:?}; lsp {:?}",
            self.phone.node.list_channels().await,
            if self.lsp.node.is_stopped() {
                Vec::new()
            } else {
                self.lsp.node.list_channels().await
            }
        );
    }

    /// The transaction spending the funding on the best chain or in the mempool.
    pub fn funding_spend(&self) -> Option<Transaction> {
        let s = self.chain.outspend(&self.funding)?;
        self.chain.transaction(&s.txid)
    }

    /// The phone (`by_phone`) or the LSP force-closes; returns its commitment once it spends
    /// the funding in the devnet's mempool.
    pub async fn force_close(&self, by_phone: bool) -> Transaction {
        let side = if by_phone { &self.phone } else { &self.lsp };
        side.node
            .force_close_channel(self.id)
            .await
            .expect("force close");
        settle("the commitment in the mempool", || async {
            self.funding_spend().is_some()
        })
        .await;
        self.funding_spend().expect("spent")
    }

    /// Whether `txid` is in a block of the best chain.
    pub fn confirmed(&self, txid: &Txid) -> bool {
        matches!(self.chain.tx_state(txid), TxState::Confirmed { .. })
    }

    /// The transaction spending `outpoint` (best chain or mempool).
    pub fn spender(&self, outpoint: &OutPoint) -> Option<Transaction> {
        let s = self.chain.outspend(outpoint)?;
        self.chain.transaction(&s.txid)
    }

    /// Checks that each wallet grew by exactly what its last `ChannelClosed` says came back,
    /// and that this is `phone_sat` / `lsp_sat` (syncing until the wallets see it).
    pub async fn wallets_hold(&mut self, phone_sat: u64, lsp_sat: u64) {
        for (side, want) in [(&self.phone, phone_sat), (&self.lsp, lsp_sat)] {
            let last = side.closed().last().copied().expect("closed");
            assert_eq!(last.1, want, "claimed: {:?}", side.closed());
        }
        let want = (self.phone.before + phone_sat, self.lsp.before + lsp_sat);
        let mut got = (0, 0);
        for _ in 0..100 {
            self.phone.node.sync(None).await.expect("sync");
            self.lsp.node.sync(None).await.expect("sync");
            got = (self.phone.wallet().await, self.lsp.wallet().await);
            if got == want {
                break;
            }
            idle().await;
        }
        assert_eq!(
            got,
            want,
            "the wallets (phone, LSP) hold what came back: {:?} / {:?}",
            self.phone.node.list_balances().await,
            self.lsp.node.list_balances().await
        );
        assert!(self.phone.node.claimable_balances().is_empty());
        assert!(self.lsp.node.claimable_balances().is_empty());
    }

    pub async fn stop(mut self) {
        for side in [&mut self.phone, &mut self.lsp] {
            if !side.node.is_stopped() {
                side.stop().await;
            }
            let _ = std::fs::remove_dir_all(&side.dir);
        }
    }
}

/// Lets every task run until none has anything left to do (the paused clock moves on only
/// then).
pub async fn idle() {
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

/// The outpoint of `tx`'s largest output (on a commitment of the standard channel: the
/// phone's balance, its `to_local` or `to_remote`).
pub fn largest(tx: &Transaction) -> OutPoint {
    let (vout, _) = tx
        .output
        .iter()
        .enumerate()
        .max_by_key(|(_, o)| o.value)
        .expect("outputs");
    OutPoint::new(tx.compute_txid(), vout as u32)
}

/// The outpoint of `tx`'s only output of `sat` (on a commitment of the standard channel,
/// 10 000: the LSP's balance).
pub fn paying(tx: &Transaction, sat: u64) -> OutPoint {
    let found: Vec<usize> = (0..tx.output.len())
        .filter(|&i| tx.output[i].value.to_sat() == sat)
        .collect();
    let [vout] = found[..] else {
        panic!("one output of {sat} sat: {tx:?}")
    };
    OutPoint::new(tx.compute_txid(), vout as u32)
}

/// The anchors of the standard channel's commitments (both sides have an output): 2 × 330.
pub const ANCHORS_SAT: u64 = 660;

/// The sum of a transaction's outputs.
pub fn outputs_sat(tx: &Transaction) -> u64 {
    tx.output.iter().map(|o| o.value.to_sat()).sum()
}

pub use crate::common::commitment::stored_commitment;

/// The state of the only channel stored in the stopped node's `data`.
pub fn stored_state(data: &Path) -> ChannelState {
    let store = Store::open(data.join("tern.sqlite")).expect("store");
    let rows = store.list_channels().expect("channels");
    Channel::from_record(ChannelRecord::decode(&rows[0].record).expect("record")).state()
}
