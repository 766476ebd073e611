//! `channel_reestablish` for an opening channel ([BOLT 2: Message Retransmission](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#message-retransmission)).
//!
//! An opening channel holds commitment number 0 on both sides and has revealed no
//! per-commitment secret, so we always send `next_commitment_number = 1`,
//! `next_revocation_number = 0` and a zero `your_last_per_commitment_secret`, and expect the
//! same. `channel_ready` is retransmitted when both sides say 1 and we had sent it.

use super::phase::Phase;
use super::unfunded::FUNDER_DROPPED;
use super::{Action, Channel, Context};
use crate::wire::{ChannelReestablish, Message, TxAbort};

impl Channel {
    /// Our `channel_reestablish`, for a durable channel that is not failed.
    pub fn channel_reestablish(&self) -> Option<ChannelReestablish> {
        let Phase::Funded(_) = self.phase else {
            return None;
        };
        Some(ChannelReestablish {
            channel_id: self.channel_id()?,
            next_commitment_number: 1,
            next_revocation_number: 0,
            your_last_per_commitment_secret: [0; 32],
            my_current_per_commitment_point: self.params.ours.keys.first_per_commitment_point,
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
        if msg.next_revocation_number > 0 {
            let claimed = msg.next_revocation_number - 1;
            if msg.your_last_per_commitment_secret == ctx.secret(claimed) {
                // The peer proves we revoked a state we do not have: we lost data. Never
                // broadcast our (revoked) commitment; ask the peer to close.
                actions.extend(self.fail_durable(
                    format!(
                        "we have fallen behind (peer expects revocation {}): please fail the channel",
                        msg.next_revocation_number
                    ),
                    true,
                    false,
                ));
                return actions;
            }
            actions.extend(self.fail_and_close(
                format!(
                    "next_revocation_number {} with a your_last_per_commitment_secret we never revealed",
                    msg.next_revocation_number
                ),
                true,
                ctx,
            ));
            return actions;
        }
        if msg.your_last_per_commitment_secret != [0; 32] {
            actions.extend(self.fail_and_close(
                "your_last_per_commitment_secret must be zero before any revocation".into(),
                true,
                ctx,
            ));
            return actions;
        }
        match msg.next_commitment_number {
            1 => {
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
                // BOLT 7: our announcement_signatures again if the peer's never came.
                actions.extend(self.announcement_retransmission(ctx));
            }
            n => {
                actions.extend(self.fail_and_close(
                    format!("next_commitment_number {n} but we never sent commitment_signed"),
                    true,
                    ctx,
                ));
            }
        }
        actions
    }
}
