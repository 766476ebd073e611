//! A fundee whose channel failed before its funding was ever seen on chain
//! ([`ChannelState::FailedUnfunded`](super::ChannelState::FailedUnfunded)).
//!
//! BOLT 2 makes the fundee persist the channel before its `funding_signed` leaves, so a fundee
//! killed at that moment restarts with a channel the funder never completed: the funder
//! never got our signature, never broadcast the funding, and forgot the open. LDK answers our
//! `channel_reestablish` for such a channel with a placeholder (`next_commitment_number` 0,
//! `next_revocation_number` 0, a dummy secret and point) and an `error`; other funders just
//! send an `error`. Either way the channel fails — but for a fundee nothing is on chain: our
//! commitment spends a transaction that does not exist, so it is never broadcast, and the
//! app is told in words that say so.
//!
//! The funding stays watched until BOLT 2's fundee timeout (`created_height` +
//! [`FUNDEE_FUNDING_TIMEOUT_BLOCKS`]): a funder that broadcast after all (perhaps pushing
//! `push_msat` to us) makes a real channel, which only our commitment can close if the funder
//! has lost it. So a confirmation brings the channel back to
//! [`ChannelState::AwaitingConfirmations`](super::ChannelState::AwaitingConfirmations) and the rules of every confirmed channel apply:
//! `channel_ready` at depth, reestablish on reconnection, and a peer that still does not know
//! the channel (or sends an `error`) now gets our commitment broadcast, which is valid and
//! pays us `push_msat` after `to_self_delay`.
//!
//! The state holds exactly what is valid: a fundee record, no confirmation and no funding
//! transaction (so no commitment can be broadcast), a failure reason, and a funding watch.
//! On disk it is a `Failed` record plus the odd field 55, so the version-1 format is unchanged
//! and older builds read it as the failed channel they made of it.

use super::config::FUNDEE_FUNDING_TIMEOUT_BLOCKS;
use super::phase::{Aborted, Funded, LockIn, Phase};
use super::{Action, Channel, ChannelEvent, Role};

/// The reason given when the funder answers our `channel_reestablish` as for a channel it does
/// not know, before its funding was seen.
pub(crate) const FUNDER_DROPPED: &str =
    "the funder dropped the open before our funding_signed reached it; nothing was committed";

impl Channel {
    /// Whether we are a fundee that never saw the funding transaction: nothing of ours is on
    /// chain, and our commitment spends a transaction that may not exist.
    pub(crate) fn funding_unseen(&self) -> bool {
        self.params.role == Role::Fundee
            && self.confirmation().is_none()
            && self.funding().is_none_or(|f| f.tx.is_none())
    }

    /// The height at which a fundee stops waiting for the funding (BOLT 2).
    pub fn fundee_funding_deadline(&self) -> u32 {
        self.params
            .created_height
            .saturating_add(FUNDEE_FUNDING_TIMEOUT_BLOCKS)
    }

    /// Fails a fundee channel whose funding was never seen: record it (persisted first), tell
    /// the peer if asked, tell the app. No broadcast; the funding watch stays armed.
    pub(crate) fn fail_unfunded(&mut self, reason: String, tell_peer: bool) -> Vec<Action> {
        tracing::info!(channel = %self.current_id(), %reason, "failed before the funding was seen; watching it until block {}", self.fundee_funding_deadline());
        if self.enter_failed(reason.clone(), true, None).is_none() {
            return Vec::new();
        }
        let error = tell_peer.then(|| self.error_message(&reason));
        let event = ChannelEvent::ChannelOpenFailed {
            counterparty_node_id: self.params.counterparty_node_id,
            temporary_channel_id: self.params.temporary_channel_id,
            channel_id: self.channel_id(),
            reason,
        };
        std::iter::once(self.commit(vec![event]))
            .chain(error)
            .collect()
    }

    /// A new block for a [`ChannelState::FailedUnfunded`](super::ChannelState::FailedUnfunded) channel: at the fundee timeout the
    /// funding can no longer make the channel; it becomes `Failed` (persisted; the app was told
    /// when it failed).
    pub(crate) fn on_unfunded_block(&mut self, height: u32) -> Vec<Action> {
        if height < self.fundee_funding_deadline() {
            return Vec::new();
        }
        self.end_unfunded(format!(
            "its funding did not appear within {FUNDEE_FUNDING_TIMEOUT_BLOCKS} blocks"
        ))
    }

    /// Ends the wait for the funding: `Failed`, with `why` added to the reason.
    pub(crate) fn end_unfunded(&mut self, why: String) -> Vec<Action> {
        let Phase::Failed(f) = &mut self.phase else {
            return Vec::new();
        };
        f.reason = format!("{}; {why}", f.reason);
        f.unfunded = false;
        vec![self.commit(Vec::new())]
    }

    /// The funding of a [`ChannelState::FailedUnfunded`](super::ChannelState::FailedUnfunded) channel confirmed and pays what was
    /// agreed: the channel exists after all. Back to `AwaitingConfirmations` for the normal
    /// confirmation path (see [`Channel::announce_revived`]). False in any other state.
    pub(crate) fn revive_unfunded(&mut self) -> bool {
        let placeholder = Phase::Aborted(Aborted {
            reason: String::new(),
            funding: None,
        });
        match std::mem::replace(&mut self.phase, placeholder) {
            Phase::Failed(f) if f.unfunded => {
                self.phase = Phase::Funded(Funded {
                    lock: LockIn::AwaitingConfirmations,
                    channel: f.channel,
                    shutdown: None,
                });
                tracing::info!(channel = %self.current_id(), "the funding of a channel that failed unfunded confirmed: tracking it again");
                true
            }
            other => {
                self.phase = other;
                false
            }
        }
    }

    /// Tells the app a revived channel is pending again: `ChannelPending` right after the
    /// first commit of `actions` (the confirmation always changes the record).
    pub(crate) fn announce_revived(&self, actions: &mut Vec<Action>) {
        let (Some(f), Some(channel_id)) = (self.funding(), self.channel_id()) else {
            return;
        };
        let event = ChannelEvent::ChannelPending {
            counterparty_node_id: self.params.counterparty_node_id,
            temporary_channel_id: self.params.temporary_channel_id,
            channel_id,
            funding_txo: f.outpoint,
        };
        match actions.iter_mut().find_map(|a| match a {
            Action::Commit(c) => Some(c),
            _ => None,
        }) {
            Some(commit) => commit.events.insert(0, event),
            None => actions.push(Action::Emit(event)),
        }
    }
}
