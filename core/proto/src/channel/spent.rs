//! The funding output was spent on chain ([`super::Input::FundingSpent`]).
//!
//! Only a transaction both sides signed can spend the 2-of-2 funding output: a commitment
//! (the peer's, a revoked one, or ours) or, later, a mutual close. Whichever it is, the
//! channel is closed on chain and can no longer operate. Until the closing issue classifies
//! the spend (and sweeps what is ours), the channel:
//!
//! - becomes [`ChannelState::Failed`](super::ChannelState::Failed), committed first, with a
//!   reason naming the spending transaction, then tells the app (`ChannelFailed` for a ready
//!   channel, else `ChannelOpenFailed`);
//! - never broadcasts its own commitment: it would spend an output that is gone;
//! - keeps the spending transaction in its failed phase and record (odd field 57, so the
//!   version-1 format and every older record are unchanged), for the classification to come.
//!
//! This is not [`super::Input::FundingDoubleSpent`]: that one says an *input* of the funding
//! transaction went elsewhere, so the funding can never confirm and its coins come back.
//! Here the funding exists and its *output* was spent.

use bitcoin::Transaction;

use super::phase::Phase;
use super::{Action, Channel, Context, SpendKind};

impl Channel {
    /// The transaction that spent the funding output, once seen (see
    /// [`super::Input::FundingSpent`]).
    pub fn funding_spend(&self) -> Option<&Transaction> {
        match &self.phase {
            Phase::Failed(f) => f.funding_spend.as_ref(),
            _ => None,
        }
    }

    /// The funding output was spent by `spending_tx` (confirmed at `confirmation_height`, or
    /// still in the mempool): fail the channel without broadcasting anything, and keep the
    /// spend. A channel that had failed already only records the spend (the app was told).
    pub(crate) fn on_funding_spent(
        &mut self,
        spending_tx: Transaction,
        confirmation_height: Option<u32>,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        if !self.state().is_durable() {
            return Vec::new();
        }
        let Some(outpoint) = self.funding().map(|f| f.outpoint) else {
            return Vec::new();
        };
        let txid = spending_tx.compute_txid();
        if !spending_tx
            .input
            .iter()
            .any(|i| i.previous_output == outpoint)
        {
            tracing::warn!(channel = %self.current_id(), %txid, "reported funding spend does not spend the funding output");
            return Vec::new();
        }
        if self.funding_spend() == Some(&spending_tx) {
            return Vec::new();
        }
        tracing::warn!(channel = %self.current_id(), %txid, ?confirmation_height, "funding output spent");
        let at = match confirmation_height {
            Some(h) => format!("confirmed at height {h}"),
            None => "unconfirmed".into(),
        };
        let what = match self.classify_spend(&spending_tx, ctx) {
            SpendKind::OurCommitment { number } => format!("our commitment {number}"),
            SpendKind::TheirCommitment { number } => format!("the peer's commitment {number}"),
            SpendKind::TheirRevokedCommitment { number } => {
                tracing::error!(channel = %self.current_id(), %txid, number, "the peer broadcast a revoked commitment");
                format!("the peer's REVOKED commitment {number}")
            }
            SpendKind::Other => "a transaction that is not a known commitment".into(),
        };
        let reason = format!(
            "funding output spent by {txid} ({at}; {what}): the channel is closed on chain"
        );
        match &mut self.phase {
            // Told already (and perhaps our commitment broadcast): keep the spend. A fundee
            // still waiting for its funding stops waiting: it is spent.
            Phase::Failed(f) => {
                f.funding_spend = Some(spending_tx);
                if f.unfunded {
                    return self.end_unfunded(reason);
                }
                vec![self.commit(Vec::new())]
            }
            _ => self.fail_durable_spent(reason, false, false, Some(spending_tx)),
        }
    }
}
