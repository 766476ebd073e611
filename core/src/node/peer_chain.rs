//! What a peer task does with the chain: the funding events the sync routes to it, new
//! blocks, and the funding watches it re-arms when the node starts.

use bitcoin::Txid;

use super::peer::PeerTask;
use crate::chain::{ChainSource, Confirmation as ChainConfirmation};
use crate::proto::channel::{Action, Confirmation, Input};

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
    NewBlock {
        height: u32,
    },
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
            if let Err(failed) = self.perform(i, watches).await {
                tracing::error!(channel = %self.channels[i].current_id(), "resuming: {failed}");
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
                }
            }
        }
        self.cleanup();
    }

    fn by_funding(&self, txid: &Txid) -> Option<usize> {
        self.channels
            .iter()
            .position(|c| c.funding().is_some_and(|f| f.outpoint.txid == *txid))
    }
}
