//! What a peer task does with the chain: the funding events the sync routes to it, new
//! blocks, the funding watches it arms (the funding transaction, and its output's spend on
//! the `to_self_delay / 4` schedule capped at `MAX_OUTPOINT_INTERVAL`), and the immediate
//! checks of the funding outputs when the peer disconnects unexpectedly or sends an `error`.

use std::sync::Arc;

use bitcoin::{OutPoint, Txid};

use super::db::Parts;
use super::peer::PeerTask;
use super::Shared;
use crate::chain::{ChainSource, ChainState, Confirmation as ChainConfirmation, Spend};
use crate::net::DisconnectReason;
use crate::proto::channel::{Action, ChannelState, ClosingStatus, Confirmation, Input};

/// Chain events routed to a peer task.
#[derive(Debug, Clone)]
pub(crate) enum ChainInput {
    Confirmed {
        txid: Txid,
        confirmation: ChainConfirmation,
        tx_index: u32,
        tip_height: u32,
    },
    Reorged {
        txid: Txid,
    },
    DoubleSpent {
        txid: Txid,
        by: Txid,
    },
    /// A funding output was spent (the watcher's `OutpointSpent`).
    FundingSpent {
        outpoint: OutPoint,
        spend: Spend,
    },
    /// The spend of a funding output left the chain (the watcher's `OutpointUnspent`).
    FundingUnspent {
        outpoint: OutPoint,
    },
    /// A watched output of a closing channel was spent.
    OutputSpent {
        outpoint: OutPoint,
        spend: Spend,
    },
    /// The spend of a watched output left the chain.
    OutputUnspent {
        outpoint: OutPoint,
    },
    NewBlock {
        height: u32,
    },
}

/// Whether a lost connection is one we did not ask for: the peer may have closed the
/// channel on chain, so its funding is checked at the next sync.
pub(super) fn unexpected(reason: &DisconnectReason) -> bool {
    !matches!(
        reason,
        DisconnectReason::Requested | DisconnectReason::Shutdown | DisconnectReason::Replaced
    )
}

/// Changes the chain watches between syncs: a sync in flight runs on a copy of them, and its
/// outcome would undo a check flag set or a spend forgotten meanwhile (`ChainState::absorb`
/// takes the synced flags). At once when no sync runs, else by a task that waits for it.
pub(super) async fn change_watches(
    shared: &Arc<Shared>,
    what: &'static str,
    change: impl FnOnce(&mut ChainState) + Send + 'static,
) {
    async fn apply(
        shared: &Shared,
        what: &'static str,
        change: impl FnOnce(&mut ChainState) + Send + 'static,
    ) {
        let result = shared
            .db
            .run(move |p: &mut Parts| p.watcher.update(&mut p.store, change))
            .await;
        if let Err(e) = result {
            tracing::error!("cannot {what}: {e}");
        }
    }
    match shared.sync_lock.try_lock() {
        Ok(_no_sync) => apply(shared, what, change).await,
        Err(_) => {
            let shared = shared.clone();
            tokio::spawn(async move {
                let _no_sync = shared.sync_lock.lock().await;
                apply(&shared, what, change).await;
            });
        }
    }
}

impl PeerTask {
    /// Re-arms the funding watches of the resumed channels. `Node::start` awaits this before it
    /// returns, so the first sync of a restarted node already checks every funding (a watch
    /// armed after a sync saw a new tip waits for the next block).
    pub(crate) async fn rearm_watches(&mut self) {
        for i in 0..self.channels.len() {
            let watches: Vec<Action> = self.channels[i]
                .resume_actions()
                .into_iter()
                .filter(|a| matches!(a, Action::Watch(_)))
                .collect();
            let outputs = super::outputs::output_watches(&watches);
            if let Err(failed) = self.perform(i, watches).await {
                tracing::error!(channel = %self.channels[i].current_id(), "resuming: {failed}");
            }
            self.replay_output_spends(outputs).await;
        }
        // A close whose spend of the funding is not confirmed yet (learnt from the mempool,
        // perhaps straight from the chain source when the peer's error came, then killed before
        // any sync): its funding is checked at the first sync, which then follows the spend to
        // its confirmation block by block. The watcher may already hold that spend confirmed
        // (a sync persisted it, the process was killed before the channel took it): a plain
        // check would find nothing new and the channel would wait forever, so the watcher's
        // spend is reported again (`report_spend_again`; if it is gone meanwhile, the check
        // reports the funding unspent).
        let tip = self.shared.tip_height();
        let unconfirmed: Vec<usize> = (0..self.channels.len())
            .filter(|&i| {
                matches!(
                    self.channels[i].closing_status(tip),
                    Some(ClosingStatus::OnChain {
                        confirmed_at: None,
                        ..
                    })
                )
            })
            .collect();
        let fundings: Vec<OutPoint> = unconfirmed
            .iter()
            .filter_map(|&i| self.channels[i].funding().map(|f| f.outpoint))
            .collect();
        if !fundings.is_empty() {
            change_watches(&self.shared, "report a close's spend again", move |s| {
                for op in &fundings {
                    s.report_spend_again(op);
                }
            })
            .await;
        }
        self.check_fundings_now(&unconfirmed, "a close's spend is unconfirmed at start")
            .await;
    }

    /// `Action::Watch(WatchRequest::Funding)`: watches the funding transaction (confirmation, reorg, double
    /// spend of its inputs) and its output's spend, in one write. A spend the watcher saw
    /// that the channel never recorded (a kill between the two persists) is reported again
    /// at the next sync.
    pub(super) async fn watch_funding(&mut self, i: usize, outpoint: OutPoint) {
        let c = &self.channels[i];
        let id = c.current_id();
        let inputs: Vec<OutPoint> = c
            .funding()
            .and_then(|f| f.tx.as_ref())
            .map(|tx| tx.input.iter().map(|x| x.previous_output).collect())
            .unwrap_or_default();
        // The delay we impose on the peer's `to_local`: our time to answer its commitment.
        let to_self_delay = c.our_params().to_self_delay;
        super::lock(&self.shared.fundings).insert(outpoint.txid, self.node_id);
        let result = self
            .shared
            .db
            .run(move |p: &mut Parts| {
                p.watcher.update(&mut p.store, |s| {
                    s.watch_tx(outpoint.txid, inputs);
                    s.watch_outpoint(outpoint, to_self_delay);
                })
            })
            .await;
        if let Err(e) = result {
            // The channel is durable: the next start re-arms the watch from its record.
            tracing::error!(channel = %id, "cannot watch the funding: {e}");
        }
        self.replay_missed_spend(i).await;
    }

    /// If channel `i` has not recorded a spend of its funding the watcher holds, the next
    /// sync reports it again (the watcher reports a change once).
    pub(super) async fn replay_missed_spend(&self, i: usize) {
        let c = &self.channels[i];
        let Some(outpoint) = c.funding().map(|f| f.outpoint) else {
            return;
        };
        if c.funding_spend().is_some() {
            return;
        }
        change_watches(&self.shared, "replay a funding spend", move |s| {
            s.report_spend_again(&outpoint)
        })
        .await;
    }

    /// Checks the funding outputs of `channels` (those that are durable and not failed) at
    /// the next sync, whatever their schedule: the peer disconnected unexpectedly or sent an
    /// `error`, as it does when it closes the channel on chain.
    pub(super) async fn check_fundings_now(&self, channels: &[usize], why: &'static str) {
        let outpoints: Vec<OutPoint> = channels
            .iter()
            .filter_map(|&i| self.channels.get(i))
            .filter(|c| c.state().is_durable() && !c.is_failed())
            .filter_map(|c| c.funding().map(|f| f.outpoint))
            .collect();
        if outpoints.is_empty() {
            return;
        }
        tracing::info!(peer = %self.node_id, ?outpoints, "{why}: checking the funding outputs at the next sync");
        change_watches(&self.shared, "check the funding outputs now", move |s| {
            for op in &outpoints {
                s.check_outpoint_now(op);
            }
        })
        .await;
    }

    /// The peer sent an `error` for `channels` (or reestablishes a negotiating channel whose close we
    /// signed): BOLT 1 has a durable channel broadcast its
    /// commitment, but a peer that closed on chain says so with an `error` too, and our
    /// commitment must never answer a spend that is already there (issue 14's guard). So
    /// the funding of each channel that does not hold a spend yet is checked now, before
    /// the error is fed; a spend found is fed first (the channel closes with the peer's
    /// transaction and then ignores the error). One request per such channel; a failed
    /// check leaves it to the error (and to the next sync, which checks it too).
    pub(super) async fn feed_spends_before_error(&mut self, channels: &[usize]) {
        let outpoints: Vec<OutPoint> = channels
            .iter()
            .filter_map(|&i| self.channels.get(i))
            .filter(|c| c.state().is_durable() && !c.is_failed())
            .filter(|c| !matches!(c.state(), ChannelState::Closing | ChannelState::Closed))
            .filter_map(|c| c.funding().map(|f| f.outpoint))
            .collect();
        for outpoint in outpoints {
            match self.shared.source.outspend(outpoint).await {
                Ok(Some(spend)) => {
                    tracing::warn!(peer = %self.node_id, %outpoint, spending_txid = %spend.txid, "peer error: the funding is already spent; closing with that spend");
                    self.on_chain(ChainInput::FundingSpent { outpoint, spend })
                        .await;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(peer = %self.node_id, %outpoint, "peer error: cannot check the funding now ({e})")
                }
            }
        }
    }

    pub(super) async fn on_chain(&mut self, input: ChainInput) {
        match input {
            ChainInput::NewBlock { height } => {
                self.feed_all(Input::NewBlock { height }).await;
            }
            ChainInput::Confirmed {
                txid,
                confirmation,
                tx_index,
                tip_height,
            } => {
                let Some(i) = self.by_funding(&txid) else {
                    return;
                };
                let tx = match self.channels[i].funding().and_then(|f| f.tx.clone()) {
                    Some(tx) => Some(tx),
                    None => self.shared.source.raw_tx(txid).await.ok().flatten(),
                };
                let Some(tx) = tx else {
                    tracing::warn!(%txid, "confirmed funding tx could not be fetched; retrying next sync");
                    return;
                };
                let confirmation = Confirmation {
                    block_height: confirmation.height,
                    block_hash: confirmation.block_hash,
                    tx_index,
                };
                self.feed(
                    i,
                    Input::FundingConfirmed {
                        tx,
                        confirmation,
                        tip_height,
                    },
                )
                .await;
            }
            ChainInput::Reorged { txid } => {
                if let Some(i) = self.by_funding(&txid) {
                    self.feed(i, Input::FundingReorged).await;
                }
            }
            ChainInput::DoubleSpent { txid, by } => {
                if let Some(i) = self.by_funding(&txid) {
                    self.feed(i, Input::FundingDoubleSpent { spending_txid: by })
                        .await;
                    if let (ChannelState::Failed, Some(f)) =
                        (self.channels[i].state(), self.channels[i].funding())
                    {
                        // That funding can never exist: its output needs no more checks.
                        let outpoint = f.outpoint;
                        change_watches(&self.shared, "unwatch a dead funding", move |s| {
                            s.unwatch_outpoint(&outpoint)
                        })
                        .await;
                    }
                }
            }
            ChainInput::FundingSpent { outpoint, spend } => {
                let Some(i) = self
                    .channels
                    .iter()
                    .position(|c| c.funding().is_some_and(|f| f.outpoint == outpoint))
                else {
                    return;
                };
                if let Some(spending_tx) = self.fetch_spend(outpoint, &spend).await {
                    // A cooperative close pays our wallet.
                    self.shared.record_channel_tx(&spending_tx).await;
                    let confirmation_height = spend.confirmed.map(|c| c.height);
                    self.feed(
                        i,
                        Input::FundingSpent {
                            spending_tx,
                            confirmation_height,
                        },
                    )
                    .await;
                }
            }
            ChainInput::FundingUnspent { outpoint } => self.on_funding_unspent(outpoint).await,
            ChainInput::OutputSpent { outpoint, spend } => {
                self.on_output_spent(outpoint, spend).await
            }
            ChainInput::OutputUnspent { outpoint } => self.on_output_unspent(outpoint).await,
        }
        self.cleanup();
    }

    fn by_funding(&self, txid: &Txid) -> Option<usize> {
        self.channels
            .iter()
            .position(|c| c.funding().is_some_and(|f| f.outpoint.txid == *txid))
    }
}
