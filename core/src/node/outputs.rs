//! The chain side of closing channels: the broadcasts of a close (our commitment, the agreed
//! cooperative close, sweeps), the watches of a closing channel's outputs
//! ([`WatchRequest::Output`]) and the spends the sync routes back to the channel.
//!
//! Request budget: an output is checked on the funding's schedule (`to_self_delay / 4` blocks, at most 36: nobody but us can spend our
//! `to_local` or `to_remote` early); after we broadcast a transaction that spends a watched
//! outpoint (the funding, an output) that outpoint is checked at the next sync, and then at
//! every new block while its spend is unconfirmed. So a closing channel costs about one
//! request per block while a transaction of it waits for its confirmation, and nothing once
//! everything confirmed (confirmed spends are checked again only after a reorg).
//!
//! [`WatchRequest::Output`]: crate::proto::channel::WatchRequest::Output

use bitcoin::{OutPoint, Transaction};

use super::db::Parts;
use super::lock;
use super::peer::PeerTask;
use super::peer_chain::change_watches;
use crate::chain::{ChainSource, Spend};
use crate::proto::channel::{Action, BroadcastKind, Input, WatchRequest};

impl PeerTask {
    /// Broadcasts our commitment, a cooperative close or a sweep (the channel rebroadcasts
    /// each block itself: a failure is only logged), records it in the wallet if it pays a
    /// wallet script, and checks the outpoints it spends at the next sync.
    pub(super) async fn broadcast_closing(
        &mut self,
        i: usize,
        tx: Transaction,
        kind: BroadcastKind,
    ) {
        let id = self.channels[i].current_id();
        let txid = tx.compute_txid();
        let spent: Vec<OutPoint> = tx.input.iter().map(|x| x.previous_output).collect();
        if kind == BroadcastKind::Commitment && !self.funding_free_for(i, txid).await {
            // The funding's spend is checked at the next sync: the channel learns what spent
            // it (and classifies it) instead of racing it with our commitment.
            change_watches(&self.shared, "check the funding output now", move |s| {
                for op in &spent {
                    s.check_outpoint_now(op);
                }
            })
            .await;
            return;
        }
        match self.shared.source.broadcast(tx.clone()).await {
            Ok(()) => tracing::info!(channel = %id, %txid, ?kind, "broadcast"),
            Err(e) => {
                tracing::warn!(channel = %id, %txid, ?kind, "broadcast failed (again at the next block): {e}");
                if matches!(e, crate::chain::ChainError::BroadcastRefused { .. }) {
                    return;
                }
            }
        }
        if matches!(kind, BroadcastKind::MutualClose | BroadcastKind::Sweep) {
            self.shared.record_channel_tx(&tx).await;
        }
        if kind == BroadcastKind::AnchorCpfp {
            self.child_broadcast(&tx).await;
        }
        change_watches(&self.shared, "check a spent outpoint now", move |s| {
            for op in &spent {
                s.check_outpoint_now(op);
            }
        })
        .await;
    }

    /// The general guard before our commitment goes out (a force close the user asked for, a
    /// protocol failure, the peer's `error`, LDK's placeholder `channel_reestablish`): the
    /// funding output is asked for its spend first, and our commitment is broadcast only if
    /// nothing else spends it — a cooperative close or the peer's commitment in the mempool is
    /// never answered with our commitment (in a full-RBF mempool ours could replace an agreed
    /// close). If the server cannot answer, the broadcast waits for the next block's attempt.
    async fn funding_free_for(&self, i: usize, commitment: bitcoin::Txid) -> bool {
        let c = &self.channels[i];
        let Some(funding) = c.funding().map(|f| f.outpoint) else {
            return true;
        };
        let id = c.current_id();
        match self.shared.source.outspend(funding).await {
            Ok(None) => true,
            Ok(Some(spend)) if spend.txid == commitment => true,
            Ok(Some(spend)) => {
                tracing::warn!(channel = %id, spender = %spend.txid, "the funding is already spent: our commitment is not broadcast");
                false
            }
            Err(e) => {
                tracing::warn!(channel = %id, "cannot check the funding before broadcasting our commitment (again at the next block): {e}");
                false
            }
        }
    }

    /// `Action::Watch(WatchRequest::Output)`: watches an output of a closing channel (on the
    /// channel's schedule, and at once when we broadcast its sweep). Re-armed at start.
    pub(super) async fn watch_output(&mut self, i: usize, outpoint: OutPoint) {
        let c = &self.channels[i];
        let id = c.current_id();
        let to_self_delay = c.our_params().to_self_delay;
        self.outputs.insert(outpoint, id);
        lock(&self.shared.outputs).insert(outpoint, self.node_id);
        let result = self
            .shared
            .db
            .run(move |p: &mut Parts| {
                p.watcher
                    .update(&mut p.store, |s| s.watch_output(outpoint, to_self_delay))
            })
            .await;
        if let Err(e) = result {
            // The channel is durable: the next start re-arms the watch from its record.
            tracing::error!(channel = %id, %outpoint, "cannot watch the output: {e}");
        }
    }

    /// Re-arms the output watches among `watches` (a resumed channel's) and has the next sync
    /// report their spends again: a kill between the watcher's persist and the channel's may
    /// have lost one (the channel takes a spend it knows again as a no-op).
    pub(super) async fn replay_output_spends(&self, outpoints: Vec<OutPoint>) {
        if outpoints.is_empty() {
            return;
        }
        change_watches(&self.shared, "replay output spends", move |s| {
            for op in &outpoints {
                s.report_spend_again(op);
            }
        })
        .await;
    }

    /// The outpoints of channel `i`'s output watches.
    pub(super) fn output_watches_of(&self, i: usize) -> Vec<OutPoint> {
        let id = self.channels[i].current_id();
        self.outputs
            .iter()
            .filter(|(_, c)| **c == id)
            .map(|(op, _)| *op)
            .collect()
    }

    /// A watched output was spent: fetch the spending transaction, record it in the wallet if
    /// it pays us, and tell the channel ([`Input::OutputSpent`]). An unfetchable transaction
    /// is asked for again at the next sync.
    pub(super) async fn on_output_spent(&mut self, outpoint: OutPoint, spend: Spend) {
        let Some(i) = self.by_output(&outpoint) else {
            return;
        };
        let Some(spending_tx) = self.fetch_spend(outpoint, &spend).await else {
            return;
        };
        self.shared.record_channel_tx(&spending_tx).await;
        let confirmation_height = spend.confirmed.map(|c| c.height);
        self.feed(
            i,
            Input::OutputSpent {
                outpoint,
                spending_tx,
                confirmation_height,
            },
        )
        .await;
    }

    /// The spend of a watched output left the chain.
    pub(super) async fn on_output_unspent(&mut self, outpoint: OutPoint) {
        if let Some(i) = self.by_output(&outpoint) {
            self.feed(i, Input::OutputUnspent { outpoint }).await;
        }
    }

    /// The spend of a funding output left the chain (a reorg, a replaced mempool spend).
    pub(super) async fn on_funding_unspent(&mut self, outpoint: OutPoint) {
        let owner = self
            .channels
            .iter()
            .position(|c| c.funding().is_some_and(|f| f.outpoint == outpoint));
        match owner {
            Some(i) => {
                tracing::warn!(%outpoint, "the spend of a funding output left the chain");
                self.feed(i, Input::FundingUnspent).await;
            }
            None => tracing::debug!(%outpoint, "unspent report for no channel of this peer"),
        }
    }

    /// The transaction of `spend`, or `None` (then the watcher reports the spend again at the
    /// next sync).
    pub(super) async fn fetch_spend(
        &self,
        outpoint: OutPoint,
        spend: &Spend,
    ) -> Option<Transaction> {
        let why = match self.shared.source.raw_tx(spend.txid).await {
            // A lying server: the spend is forgotten and asked again at the next sync.
            Ok(Some(tx)) => match spend.check(outpoint, &tx) {
                Ok(()) => return Some(tx),
                Err(lie) => format!("a lie: {lie}"),
            },
            Err(e) => e.to_string(),
            Ok(None) => "unknown to the server".into(),
        };
        tracing::warn!(%outpoint, spending_txid = %spend.txid, "spending transaction could not be fetched ({why}); asking again at the next sync");
        change_watches(&self.shared, "ask again for a spend", move |s| {
            s.report_spend_again(&outpoint)
        })
        .await;
        None
    }

    fn by_output(&self, outpoint: &OutPoint) -> Option<usize> {
        let id = self.outputs.get(outpoint)?;
        self.channels.iter().position(|c| c.is_for(id))
    }
}

/// The outpoints of the output watches among `actions`.
pub(super) fn output_watches(actions: &[Action]) -> Vec<OutPoint> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Watch(WatchRequest::Output { outpoint, .. }) => Some(*outpoint),
            _ => None,
        })
        .collect()
}

impl super::Shared {
    /// Whether an outpoint's spend belongs to an output watch (else to a funding).
    pub(crate) fn output_owner(
        &self,
        outpoint: &OutPoint,
    ) -> Option<bitcoin::secp256k1::PublicKey> {
        lock(&self.outputs).get(outpoint).copied()
    }
}
