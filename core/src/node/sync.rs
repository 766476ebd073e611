//! One bounded chain sync (a background wake), and the start-up reconciliation of fundings
//! with the chain watcher.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use bitcoin::Txid;

use super::db::Parts;
use super::peer::PeerCommand;
use super::peer_chain::ChainInput;
use super::{lock, now, Node, NodeError, Shared, SyncSummary};
use crate::chain::{self, ChainEvent, ChainSource};

impl Node {
    /// One bounded sync of the chain watches and the wallet (a background wake): never runs
    /// past `deadline`, and on any failure leaves everything as it was. The requests run on
    /// tokio; their results are written on the store thread.
    pub async fn sync(&self, deadline: Option<Duration>) -> Result<SyncSummary, NodeError> {
        self.check_running()?;
        let started = tokio::time::Instant::now();
        let _one_at_a_time = self.shared.sync_lock.lock().await;
        // Addresses handed out since the last sync are queried even if the tip did not move:
        // a payment to one may already be in the tip a concurrent sync recorded without them.
        let fresh = self.shared.fresh_addresses.swap(false, Ordering::SeqCst);
        // A spend by a transaction we posted (a close, a sweep) is checked without a request.
        let posted = self.shared.source.posted_txs();
        let planned = self
            .shared
            .db
            .call(move |p: &mut Parts| {
                let planner = p
                    .watcher
                    .plan(p.wallet.scripts_to_query())
                    .known_txs(posted);
                if fresh {
                    planner.scripts_without_new_tip()
                } else {
                    planner
                }
            })
            .await;
        let restore_fresh = || {
            if fresh {
                self.shared.fresh_addresses.store(true, Ordering::SeqCst);
            }
        };
        let planner = match planned {
            Ok(planner) => planner,
            Err(e) => {
                restore_fresh();
                return Err(e);
            }
        };
        let outcome = match chain::sync(&self.shared.source, planner, deadline).await {
            Ok(o) => o,
            Err(e) => {
                restore_fresh();
                if e.is_lie() {
                    // With several servers, the next sync asks another.
                    self.shared.source.distrust();
                }
                return Err(e.into());
            }
        };
        // The peer tasks ask for the spends' transactions next: the sync checked them already.
        self.shared.source.remember_txs(&outcome.spending_txs);
        let outcome = Arc::new(outcome);
        let applied = outcome.clone();
        let (unconfirmed, new_tip, spendable) = self
            .shared
            .db
            .run(move |p: &mut Parts| {
                p.watcher.finish(&mut p.store, &applied)?;
                p.wallet
                    .apply_sync(&applied.scripts, &applied.events, applied.state.tip, now())?;
                let new_tip = applied
                    .events
                    .iter()
                    .any(|e| matches!(e, ChainEvent::NewTip { .. }));
                let unconfirmed: Vec<bitcoin::Transaction> = if new_tip {
                    p.wallet
                        .unconfirmed_txs()
                        .iter()
                        .map(|t| (**t).clone())
                        .collect()
                } else {
                    Vec::new()
                };
                Ok::<_, NodeError>((unconfirmed, new_tip, super::reserve::spendable_now(p)))
            })
            .await?;
        self.shared.note_spendable(spendable);
        if outcome
            .events
            .iter()
            .any(|e| matches!(e, ChainEvent::NewTip { reorg: true, .. }))
        {
            self.resync_wallet().await;
        }
        let tip_height = outcome.state.tip.map(|t| t.height);
        for event in &outcome.events {
            let (txid, input) = match event {
                ChainEvent::TxConfirmed {
                    txid,
                    confirmation,
                    tx_index,
                } => (
                    *txid,
                    ChainInput::Confirmed {
                        txid: *txid,
                        confirmation: *confirmation,
                        tx_index: *tx_index,
                        tip_height: tip_height.unwrap_or(confirmation.height),
                    },
                ),
                ChainEvent::TxUnconfirmed { txid } => (*txid, ChainInput::Reorged { txid: *txid }),
                ChainEvent::TxDoubleSpent { txid, by } => (
                    *txid,
                    ChainInput::DoubleSpent {
                        txid: *txid,
                        by: *by,
                    },
                ),
                // An output watch of a closing channel, else a funding.
                ChainEvent::OutpointSpent { outpoint, spend } => {
                    let outpoint = *outpoint;
                    let spend = spend.clone();
                    if let Some(peer) = self.shared.output_owner(&outpoint) {
                        self.shared
                            .route(peer, ChainInput::OutputSpent { outpoint, spend });
                        continue;
                    }
                    (outpoint.txid, ChainInput::FundingSpent { outpoint, spend })
                }
                ChainEvent::OutpointUnspent { outpoint } => {
                    let outpoint = *outpoint;
                    if let Some(peer) = self.shared.output_owner(&outpoint) {
                        self.shared
                            .route(peer, ChainInput::OutputUnspent { outpoint });
                        continue;
                    }
                    (outpoint.txid, ChainInput::FundingUnspent { outpoint })
                }
                _ => continue,
            };
            let owner = lock(&self.shared.fundings).get(&txid).copied();
            if let Some(peer) = owner {
                let _ = self
                    .shared
                    .peer_sender(peer)
                    .send(PeerCommand::Chain(input));
            }
        }
        if let (true, Some(height)) = (new_tip, tip_height) {
            // The funder's fee policy, on each new block (`fees.rs`), within the deadline —
            // handed before the block itself, so that a closing channel decides its CPFP
            // (`resolve_cpfp.rs`) on this block's estimates, not the previous one's.
            let left = deadline.map(|d| d.saturating_sub(started.elapsed()));
            self.shared.fees_on_new_block(left).await;
            let peers: Vec<_> = lock(&self.shared.peers).values().cloned().collect();
            for p in peers {
                let _ = p.send(PeerCommand::Chain(ChainInput::NewBlock { height }));
            }
            // Rebroadcast our unconfirmed transactions (funding included) on every new block.
            for tx in unconfirmed {
                let txid = tx.compute_txid();
                if let Err(e) = self.shared.source.broadcast(tx).await {
                    tracing::debug!(%txid, "rebroadcast refused: {e}");
                }
            }
        }
        Ok(SyncSummary {
            tip_height,
            requests: outcome.requests,
            events: outcome.events.len(),
        })
    }
}

impl Shared {
    /// Hands a chain event to `peer`'s task.
    pub(crate) fn route(self: &Arc<Self>, peer: PublicKey, input: ChainInput) {
        let _ = self.peer_sender(peer).send(PeerCommand::Chain(input));
    }
}

/// A sync persists the watcher's new state before its chain events reach the peer tasks, so a
/// process killed in between loses them: the watcher only reports changes, and the channel
/// would wait forever (found by the harness's process-level kill test). At start, each
/// channel's view of its funding (`confirmed`) is compared with the watcher's last state:
/// - confirmed for the watcher, not for the channel: the watch goes back to unconfirmed, so
///   the next sync reports it again with its proof (the channel needs the tx index);
/// - double-spent, or unconfirmed/gone while the channel has a confirmation: the event is
///   sent to the peer task again, which handles it before anything else.
///
/// A funding output's spend the channel never recorded is handled by the watch itself: each
/// `Watch(WatchRequest::Funding)` (re-armed at start) has the next sync report it again
/// (`PeerTask::replay_missed_spend`).
pub(super) async fn reconcile_chain_watches(
    shared: &Shared,
    fundings: Vec<(PublicKey, Txid, bool)>,
) -> Result<(), NodeError> {
    let replay = shared
        .db
        .run(move |p: &mut Parts| {
            let mut replay = Vec::new();
            let mut rewatch = Vec::new();
            for (peer, txid, confirmed) in &fundings {
                let Some(watch) = p.watcher.state().txs.get(txid) else {
                    continue;
                };
                match watch.state {
                    chain::TxWatchState::Confirmed(_) if !*confirmed => rewatch.push(*txid),
                    chain::TxWatchState::DoubleSpent { by } => {
                        replay.push((*peer, ChainInput::DoubleSpent { txid: *txid, by }))
                    }
                    chain::TxWatchState::Unconfirmed | chain::TxWatchState::Gone if *confirmed => {
                        replay.push((*peer, ChainInput::Reorged { txid: *txid }))
                    }
                    _ => {}
                }
            }
            if !rewatch.is_empty() {
                p.watcher.update(&mut p.store, |state| {
                    for txid in &rewatch {
                        tracing::info!(%txid, "funding confirmed but not applied to its channel: reporting it again");
                        if let Some(watch) = state.txs.get_mut(txid) {
                            watch.state = chain::TxWatchState::Unconfirmed;
                        }
                    }
                })?;
            }
            Ok::<_, NodeError>(replay)
        })
        .await?;
    for (peer, input) in replay {
        tracing::info!(
            %peer,
            ?input,
            "chain event not applied to its channel: replaying it"
        );
        if let Some(tx) = lock(&shared.peers).get(&peer) {
            let _ = tx.send(PeerCommand::Chain(input));
        }
    }
    Ok(())
}

/// The other half of the start-up reconciliation, for funding spends: a channel that recorded
/// a spend of its funding (`spent`: the channel's peer and funding outpoint) the watcher no
/// longer holds (a reorg or a replacement reported while the process was being killed) gets
/// the `FundingUnspent` it missed. Output watches need no such pass: their spends are
/// reported again after every start (`PeerTask::replay_output_spends`).
pub(super) async fn replay_funding_unspends(
    shared: &Shared,
    spent: Vec<(PublicKey, bitcoin::OutPoint)>,
) -> Result<(), NodeError> {
    if spent.is_empty() {
        return Ok(());
    }
    let missed = shared
        .db
        .call(move |p: &mut Parts| {
            spent
                .into_iter()
                .filter(|(_, op)| {
                    p.watcher
                        .state()
                        .outpoints
                        .get(op)
                        .is_some_and(|w| w.spend.is_none() && !w.check_now)
                })
                .collect::<Vec<_>>()
        })
        .await?;
    for (peer, outpoint) in missed {
        tracing::info!(%peer, %outpoint, "funding unspent, not applied to its channel: replaying it");
        if let Some(tx) = lock(&shared.peers).get(&peer) {
            let _ = tx.send(PeerCommand::Chain(ChainInput::FundingUnspent { outpoint }));
        }
    }
    Ok(())
}

impl Node {
    /// After a reorg: the wallet's light update cannot unwind a block it holds, so the wallet
    /// re-reads every revealed script and cuts its local chain back to the best chain (the
    /// fetches off the store thread, the request and the apply on it). A failure is logged;
    /// the next reorg, or a restart's resync, tries again.
    async fn resync_wallet(&self) {
        let request = match self
            .shared
            .db
            .run(|p: &mut Parts| Ok::<_, NodeError>(p.wallet.resync_request()))
            .await
        {
            Ok(r) => r,
            Err(e) => return tracing::warn!("cannot resync the wallet after a reorg: {e}"),
        };
        let answer = match crate::wallet::fetch_resync(&self.shared.source, &request).await {
            Ok(a) => a,
            Err(e) => return tracing::warn!("cannot resync the wallet after a reorg: {e}"),
        };
        let applied = self
            .shared
            .db
            .run(move |p: &mut Parts| p.wallet.apply_resync(answer).map_err(NodeError::from))
            .await;
        match applied {
            Ok(()) => tracing::info!("wallet resynced after a reorg"),
            Err(e) => tracing::warn!("cannot resync the wallet after a reorg: {e}"),
        }
    }
}
