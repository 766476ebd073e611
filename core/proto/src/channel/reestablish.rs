//! `channel_reestablish` ([BOLT 2: Message Retransmission](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#message-retransmission)).
//!
//! We send the true numbers: `next_commitment_number` = our commitment number + 1 (the next
//! `commitment_signed` we expect), `next_revocation_number` = the peer's commitment number
//! (the next `revoke_and_ack` we expect revokes it), the last secret the peer revealed and
//! our current point. On the peer's: a `revoke_and_ack` it lacks is retransmitted, our
//! unrevoked `commitment_signed` (with the updates it signs) if it lacks it, both in the
//! order first sent; a peer that proves we lost data gets no broadcast of our stale
//! commitment; other mismatches fail the channel. `channel_ready` is retransmitted when
//! both sides say 1 and we had sent it.

use super::commitments::{RemoteNext, Update};
use super::phase::{Commits, Phase};
use super::unfunded::FUNDER_DROPPED;
use super::{Action, Channel, Context};
use crate::keys::INITIAL_COMMITMENT_NUMBER;
use crate::wire::{ChannelReestablish, Message, RevokeAndAck, TxAbort, UpdateFee};

impl Channel {
    /// Our `channel_reestablish`, for a durable channel that is not failed.
    pub fn channel_reestablish(&self) -> Option<ChannelReestablish> {
        let Phase::Funded(f) = &self.phase else {
            return None;
        };
        let local = self.local_commit()?;
        let (remote_number, last_secret) = match &f.channel.commits {
            Commits::Updated(c) => {
                let secret = c
                    .remote
                    .number
                    .checked_sub(1)
                    .and_then(|n| c.their_secrets.get_secret(INITIAL_COMMITMENT_NUMBER - n));
                (c.remote.number, secret.unwrap_or([0; 32]))
            }
            Commits::Initial => (0, [0; 32]),
        };
        Some(ChannelReestablish {
            channel_id: self.channel_id()?,
            next_commitment_number: local.number + 1,
            next_revocation_number: remote_number,
            your_last_per_commitment_secret: last_secret,
            my_current_per_commitment_point: local.point,
            // v1 opens have no interactive funding; option_splice is not negotiated.
            next_funding: None,
            my_current_funding_locked: None,
        })
    }

    /// The peer is connected again: send our `channel_reestablish` (BOLT 2: before anything
    /// else for this channel), or retransmit our `error` for a failed channel.
    pub(crate) fn on_reconnected(&mut self) -> Vec<Action> {
        if let Phase::Failed(f) = &self.phase {
            return vec![self.error_message(&f.reason)];
        }
        self.drop_unsigned_updates();
        if let Some(e) = self.phase.established_mut() {
            e.announcement.answered = false;
        }
        self.channel_reestablish()
            .map(|m| Action::Send(Message::ChannelReestablish(m)))
            .into_iter()
            .collect()
    }

    /// The peer's `channel_reestablish`.
    pub(crate) fn on_channel_reestablish(
        &mut self,
        msg: &ChannelReestablish,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        if Some(msg.channel_id) != self.channel_id() || !self.state().is_durable() {
            return Vec::new();
        }
        if self.is_failed() {
            return self.on_reconnected();
        }
        if self.agreed_closing_tx().is_some() {
            // The agreed close again (and our signature of it, for a peer that missed it) —
            // never our commitment, even when the peer forgot the channel (LDK does once it
            // saw the close: a placeholder reestablish, then an `error`).
            return self.shutdown_after_reestablish(ctx);
        }
        if msg.next_commitment_number == 0 && msg.next_revocation_number == 0 {
            // The peer holds no commitment of this channel: it does not know it. LDK answers
            // a channel it does not know this way (with a dummy secret and point, then an
            // `error`), lnd after restoring a static channel backup. A fundee that never saw
            // the funding has nothing on chain; anyone else broadcasts its commitment.
            if self.funding_unseen() {
                return self.fail_unfunded(FUNDER_DROPPED.into(), true);
            }
            return self.fail_and_close(
                "the peer does not know the channel (channel_reestablish with commitment numbers 0)"
                    .into(),
                true,
                ctx,
            );
        }
        let mut actions = Vec::new();
        if let Some(next) = &msg.next_funding {
            // We never run an interactive funding: "MUST send tx_abort".
            actions.push(Action::Send(Message::TxAbort(TxAbort::new(
                msg.channel_id,
                &format!("unknown next_funding {}", next.txid),
            ))));
        }
        let Some(local) = self.local_commit() else {
            return actions;
        };
        // Updates proposed but unsigned before this point never reached the peer (nothing is
        // sent before its channel_reestablish) or belong to the last connection: forget them.
        self.drop_unsigned_updates();
        let commitments = self.commitments();
        let l = local.number;
        // The revocation side: the peer's next_revocation_number against our commitment.
        let n_r = msg.next_revocation_number;
        if n_r > l {
            if msg.your_last_per_commitment_secret == ctx.secret(n_r - 1) {
                // The peer proves we revoked a state we do not have: we lost data. Never
                // broadcast our (revoked) commitment; ask the peer to close.
                actions.extend(self.fail_durable(
                    format!(
                        "we have fallen behind (peer expects revocation {n_r}, our commitment is {l}): \
                         our commitment is revoked and will not be broadcast; please fail the channel"
                    ),
                    true,
                    false,
                ));
                return actions;
            }
            actions.extend(self.fail_and_close(
                format!("next_revocation_number {n_r} with a your_last_per_commitment_secret we never revealed"),
                true,
                ctx,
            ));
            return actions;
        }
        let expected_secret = n_r.checked_sub(1).map_or([0; 32], |n| ctx.secret(n));
        if msg.your_last_per_commitment_secret != expected_secret {
            let what = if n_r == 0 {
                "your_last_per_commitment_secret must be zero before any revocation".to_string()
            } else {
                format!(
                    "your_last_per_commitment_secret is not our secret {}",
                    n_r - 1
                )
            };
            actions.extend(self.fail_and_close(what, true, ctx));
            return actions;
        }
        let resend_revocation = n_r + 1 == l;
        if !resend_revocation && n_r != l {
            actions.extend(self.fail_and_close(
                format!(
                    "next_revocation_number {n_r} but our last revoke_and_ack revoked {}",
                    l.saturating_sub(1)
                ),
                true,
                ctx,
            ));
            return actions;
        }
        // The commitment side: the peer's next_commitment_number against what we signed.
        let n_c = msg.next_commitment_number;
        let (last_signed, unrevoked) = match commitments.as_ref().map(|c| c.next) {
            Some(RemoteNext::Signed(s)) => (s.commit.number, Some(s)),
            _ => (commitments.as_ref().map_or(0, |c| c.remote.number), None),
        };
        let resend_commitment = match unrevoked {
            Some(s) if n_c == s.commit.number => Some(s),
            _ => None,
        };
        if resend_commitment.is_none() && n_c != last_signed + 1 {
            actions.extend(self.fail_and_close(
                format!("next_commitment_number {n_n} but the last commitment_signed we sent was {last_signed}", n_n = n_c),
                true,
                ctx,
            ));
            return actions;
        }
        if n_c == 1 && l == 0 {
            let funding_txid = self.funding().map(|f| f.outpoint.txid);
            let splice_locked = msg
                .my_current_funding_locked
                .is_some_and(|f| Some(f.txid) != funding_txid);
            if self.channel_ready_sent() && !splice_locked {
                match self.channel_ready_message(ctx) {
                    Some(m) => actions.push(Action::Send(Message::ChannelReady(m))),
                    None => {
                        tracing::error!(channel = %self.current_id(), "cannot rebuild channel_ready")
                    }
                }
            }
        }
        let revocation = resend_revocation
            .then(|| ctx.point(l + 1).ok())
            .flatten()
            .map(|next| {
                Action::Send(Message::RevokeAndAck(RevokeAndAck {
                    channel_id: msg.channel_id,
                    per_commitment_secret: ctx.secret(l - 1),
                    next_per_commitment_point: next,
                }))
            });
        let commitment: Vec<Action> = match (resend_commitment, &commitments) {
            (Some(s), Some(c)) => c
                .ours
                .signed
                .iter()
                .map(|u| match u {
                    Update::Fee { feerate_per_kw } => Action::Send(Message::UpdateFee(UpdateFee {
                        channel_id: msg.channel_id,
                        feerate_per_kw: *feerate_per_kw,
                    })),
                })
                .chain(std::iter::once(Action::Send(Message::CommitmentSigned(
                    self.commitment_signed_message(s.our_sig),
                ))))
                .collect(),
            _ => Vec::new(),
        };
        // Same relative order as first sent: our signature went out after the revocation
        // that made our current commitment current iff it was sent at that commitment.
        let commitment_first = resend_commitment.is_some_and(|s| s.sent_after_local < l);
        if commitment_first {
            actions.extend(commitment);
            actions.extend(revocation);
        } else {
            actions.extend(revocation);
            actions.extend(commitment);
        }
        // BOLT 7: our announcement_signatures again if the peer's never came.
        actions.extend(self.announcement_retransmission(ctx));
        // BOLT 2: our shutdown again, and the negotiation from the start.
        actions.extend(self.shutdown_after_reestablish(ctx));
        actions
    }
}
