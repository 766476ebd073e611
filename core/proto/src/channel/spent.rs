//! The funding output was spent on chain ([`super::Input::FundingSpent`]).
//!
//! Only a transaction both sides signed can spend the 2-of-2 funding output: a commitment
//! (the peer's, a revoked one, or ours) or, later, a mutual close. Whichever it is, the
//! channel is closed on chain and can no longer operate. The channel:
//!
//! - is classified ([`super::CloseKind`], `classify.rs`) and moves to
//!   [`ChannelState::Closing`](super::ChannelState::Closing) holding the spend (`resolve.rs`),
//!   committed first, with a reason naming the spending transaction, and tells the app
//!   (`ChannelClosing`, after `ChannelFailed` for a ready channel or `ChannelOpenFailed` for
//!   one that was not, as before closes existed; a cooperative close only `ChannelClosing`);
//! - never broadcasts its own commitment: it would spend an output that is gone;
//! - sweeps what is ours (`resolve.rs`).
//!
//! A failed channel (it fell behind, or an old record) closes the same way without a failure
//! event (the app was told). Records of older builds may hold the spend in a failed phase
//! (odd field 57): they still read, and a new report of the spend closes them.
//!
//! This is not [`super::Input::FundingDoubleSpent`]: that one says an *input* of the funding
//! transaction went elsewhere, so the funding can never confirm and its coins come back.
//! Here the funding exists and its *output* was spent.

use bitcoin::Transaction;

use super::phase::{LockIn, Phase};
use super::{Action, Channel, CloseKind, Context, SpendKind};

impl Channel {
    /// The transaction that spent the funding output, once seen (see
    /// [`super::Input::FundingSpent`]): a closing channel's spend — not our own commitment or
    /// closing tx before it confirms (it may never: the peer's may win) — or one recorded by an
    /// older build on a failed channel.
    pub fn funding_spend(&self) -> Option<&Transaction> {
        match &self.phase {
            Phase::Failed(f) => f.funding_spend.as_ref(),
            Phase::Closing(c) | Phase::Closed(c) => {
                let ours = matches!(
                    c.resolution.kind,
                    CloseKind::LocalForce | CloseKind::Cooperative { .. }
                );
                (!ours || c.resolution.confirmed_at.is_some()).then_some(&c.resolution.spend)
            }
            _ => None,
        }
    }

    /// The funding output was spent by `spending_tx` (confirmed at `confirmation_height`, or
    /// still in the mempool): classify it and close (see the module doc). A fundee failed
    /// before its funding was seen stops waiting for it.
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
        let at = match confirmation_height {
            Some(h) => format!("confirmed at height {h}"),
            None => "unconfirmed".into(),
        };
        let what = match self.classify_spend(&spending_tx, ctx) {
            _ if self.signed_closing_txids().contains(&txid) => {
                "our cooperative closing transaction".into()
            }
            SpendKind::OurCommitment { number } => format!("our commitment {number}"),
            SpendKind::TheirCommitment { number } => format!("the peer's commitment {number}"),
            SpendKind::TheirFutureCommitment { number } => {
                tracing::error!(channel = %self.current_id(), %txid, number, "the peer broadcast a commitment newer than ours: we lost data");
                format!("the peer's commitment {number}, newer than any we know (we lost data)")
            }
            SpendKind::TheirRevokedCommitment { number } => {
                tracing::error!(channel = %self.current_id(), %txid, number, "the peer broadcast a revoked commitment");
                format!("the peer's REVOKED commitment {number}")
            }
            SpendKind::Other => "a transaction that is not a known commitment".into(),
        };
        let reason = format!(
            "funding output spent by {txid} ({at}; {what}): the channel is closed on chain"
        );
        let mut events = Vec::new();
        match &self.phase {
            Phase::Failed(f) if f.unfunded => {
                // A fundee still waiting for its funding stops waiting: it is spent.
                return self.end_unfunded(reason);
            }
            Phase::Funded(f) => {
                let cooperative = matches!(
                    self.close_kind_of(&spending_tx, ctx),
                    CloseKind::Cooperative { .. }
                );
                if !cooperative {
                    // Ready once both `channel_ready` were exchanged, also while shutting
                    // down: a ready channel's failure, never an open's.
                    let ready = f.lock == LockIn::Ready;
                    events.extend(self.failure_event(&reason, ready));
                }
            }
            _ => {}
        }
        self.on_closing_spent(spending_tx, confirmation_height, reason, events, ctx)
    }
}
