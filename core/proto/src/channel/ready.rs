//! After the durable point: funding confirmations, `channel_ready` in both directions, the
//! watchdog, reorgs, double-spends, the fundee's funding timeout, errors and disconnections.

use bitcoin::{Transaction, Txid};

use super::config::{FUNDEE_FUNDING_TIMEOUT_BLOCKS, WATCHDOG_EXTRA_BLOCKS};
use super::phase::{Funded, LockIn, Phase};
use super::{
    broadcast_funding, Action, BroadcastKind, Channel, ChannelEvent, ChannelState, Confirmation,
    Context, Role,
};
use crate::wire::{ChannelReady, ErrorMessage, Message};

impl Channel {
    /// The funded channel, if it is still locking in its funding.
    fn locking_in(&mut self) -> Option<&mut Funded> {
        match &mut self.phase {
            Phase::Funded(f) if f.lock != LockIn::Ready => Some(f),
            _ => None,
        }
    }

    /// The funding transaction was mined: check it pays what was agreed, record where
    /// (persisted mark), then act on its depth.
    pub(crate) fn on_funding_confirmed(
        &mut self,
        tx: Transaction,
        confirmation: Confirmation,
        tip_height: u32,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        if !matches!(self.state(), s if s.is_durable() && s != ChannelState::Failed) {
            return Vec::new();
        }
        let Some(outpoint) = self.funding().map(|f| f.outpoint) else {
            return Vec::new();
        };
        if tx.compute_txid() != outpoint.txid {
            tracing::warn!(channel = %self.current_id(), "confirmed transaction is not the funding");
            return Vec::new();
        }
        let pays = usize::try_from(outpoint.vout)
            .ok()
            .and_then(|v| tx.output.get(v))
            .is_some_and(|o| {
                Some(&o.script_pubkey) == self.funding_script_pubkey().as_ref()
                    && o.value == self.funding_amount()
            });
        if !pays {
            return self.fail_durable(
                "funding output does not pay funding_satoshis to the 2-of-2 script".into(),
                true,
                false,
            );
        }
        let revived = self.revive_unfunded();
        let changed = self.confirmation() != Some(confirmation);
        if changed {
            if let Some(e) = self.phase.established_mut() {
                e.confirmation = Some(confirmation);
                e.funding.tx = Some(tx);
            }
        }
        let depth_actions = self.on_depth(tip_height, ctx);
        let mut actions = Vec::new();
        // One write covers the confirmation mark, unless reaching depth writes it anyway.
        if changed && !matches!(depth_actions.first(), Some(Action::Commit(_))) {
            actions.push(self.commit(Vec::new()));
        }
        actions.extend(depth_actions);
        if revived {
            self.announce_revived(&mut actions);
        }
        actions
    }

    /// A new best block (pure watchdog and timers): send `channel_ready` at `minimum_depth`,
    /// reconnect the peer when its `channel_ready` is overdue, rebroadcast an unconfirmed
    /// funding (funder), forget a funding that never appeared (fundee, 2016 blocks).
    pub fn on_new_block(&mut self, height: u32, ctx: &Context<'_>) -> Vec<Action> {
        if let Some(tx) = self.agreed_closing_tx() {
            // Until its spend is seen (then the on-chain resolution takes over).
            return vec![Action::Broadcast {
                tx: tx.clone(),
                kind: BroadcastKind::MutualClose,
            }];
        }
        match self.state() {
            ChannelState::Ready => return self.announce_if_due(height, ctx),
            ChannelState::Closing | ChannelState::Closed => {
                return self.on_closing_block(height, ctx)
            }
            ChannelState::FailedUnfunded => return self.on_unfunded_block(height),
            _ => {}
        }
        if self.locking_in().is_none() {
            return Vec::new();
        }
        if self.confirmation().is_none() {
            return match self.params.role {
                Role::Funder => self
                    .rebroadcast_tx()
                    .map(broadcast_funding)
                    .into_iter()
                    .collect(),
                Role::Fundee if height >= self.fundee_funding_deadline() => self.fail_durable(
                    format!("funding not confirmed within {FUNDEE_FUNDING_TIMEOUT_BLOCKS} blocks"),
                    true,
                    false,
                ),
                Role::Fundee => Vec::new(),
            };
        }
        self.on_depth(height, ctx)
    }

    /// Acts on the funding's depth at `tip_height`.
    fn on_depth(&mut self, tip_height: u32, ctx: &Context<'_>) -> Vec<Action> {
        let depth = self.confirmations(tip_height);
        let min_depth = self.minimum_depth().unwrap_or(1).max(1);
        let mut actions = Vec::new();
        let reached = match self.locking_in() {
            Some(f) if f.lock == LockIn::AwaitingConfirmations && depth >= min_depth => {
                let newly_sent = !f.channel.channel_ready_sent;
                f.channel.channel_ready_sent = true;
                f.lock = if f.channel.their_second_point.is_some() {
                    LockIn::Ready
                } else {
                    LockIn::AwaitingChannelReady
                };
                Some(newly_sent)
            }
            _ => None,
        };
        if let Some(newly_sent) = reached {
            let events = self.ready_event().into_iter().collect();
            actions.push(if self.state() == ChannelState::Ready {
                self.commit_ready(events)
            } else {
                self.commit(events)
            });
            if newly_sent {
                match self.channel_ready_message(ctx) {
                    Some(msg) => actions.push(Action::Send(Message::ChannelReady(msg))),
                    None => {
                        tracing::error!(channel = %self.current_id(), "cannot derive second per-commitment point")
                    }
                }
            }
            actions.extend(self.announce_if_due(tip_height, ctx));
        }
        if self.locking_in().is_some()
            && !self.channel_ready_received()
            && depth > min_depth.saturating_add(WATCHDOG_EXTRA_BLOCKS)
        {
            let reason = format!(
                "funding of {} has {depth} confirmations (minimum_depth {min_depth}) and the peer's channel_ready has not arrived",
                self.current_id()
            );
            tracing::warn!(channel = %self.current_id(), depth, min_depth, "watchdog: reconnecting peer");
            actions.push(Action::ReconnectPeer {
                counterparty_node_id: self.params.counterparty_node_id,
                reason,
            });
        }
        actions
    }

    fn ready_event(&self) -> Option<ChannelEvent> {
        (self.state() == ChannelState::Ready).then(|| ChannelEvent::ChannelReady {
            counterparty_node_id: self.params.counterparty_node_id,
            channel_id: self.current_id(),
        })
    }

    /// Our `channel_ready` (for a first send or a retransmission).
    pub(crate) fn channel_ready_message(&self, ctx: &Context<'_>) -> Option<ChannelReady> {
        Some(ChannelReady {
            channel_id: self.channel_id()?,
            second_per_commitment_point: ctx.point(1).ok()?,
            short_channel_id_alias: None,
        })
    }

    /// The peer's `channel_ready`: persist the mark; ready if ours was sent too. Redundant
    /// copies are ignored (BOLT 2).
    pub(crate) fn on_channel_ready(&mut self, msg: &ChannelReady) -> Vec<Action> {
        if Some(msg.channel_id) != self.channel_id() {
            return Vec::new();
        }
        let state = self.state();
        let Some(f) = self.locking_in() else {
            tracing::debug!(channel = %self.current_id(), ?state, "ignoring channel_ready");
            return Vec::new();
        };
        if f.channel.their_second_point.is_some() {
            return Vec::new();
        }
        f.channel.their_second_point = Some(msg.second_per_commitment_point);
        if f.lock != LockIn::AwaitingChannelReady {
            return vec![self.commit(Vec::new())];
        }
        f.lock = LockIn::Ready;
        vec![self.commit_ready(self.ready_event().into_iter().collect())]
    }

    /// The funding left the best chain before the channel was ready: back to waiting for
    /// confirmations (persisted), rebroadcast (funder) and re-arm the watch.
    pub(crate) fn on_funding_reorged(&mut self) -> Vec<Action> {
        let Phase::Funded(f) = &mut self.phase else {
            return Vec::new();
        };
        if f.channel.confirmation.take().is_none() {
            return Vec::new();
        }
        if f.lock == LockIn::Ready {
            tracing::warn!(channel = %self.current_id(), "funding of a ready channel reorged out");
            return vec![self.commit(Vec::new())];
        }
        f.lock = LockIn::AwaitingConfirmations;
        let mut actions = vec![self.commit(Vec::new())];
        actions.extend(self.rebroadcast_tx().map(broadcast_funding));
        actions.extend(self.watch_action());
        actions
    }

    /// An input of the funding was spent elsewhere: the channel can never exist.
    pub(crate) fn on_funding_double_spent(&mut self, spending_txid: Txid) -> Vec<Action> {
        match self.state() {
            // Failed already (the app and the peer were told): the wait ends.
            ChannelState::FailedUnfunded => {
                self.end_unfunded(format!("its funding was double-spent by {spending_txid}"))
            }
            s if s.is_durable() && s != ChannelState::Failed => self.fail_durable(
                format!("funding transaction double-spent by {spending_txid}"),
                true,
                true,
            ),
            _ => Vec::new(),
        }
    }

    /// The peer sent `error` for this channel: fail it (BOLT 1). A durable channel broadcasts
    /// its commitment (and the funding first, if unconfirmed) to get the funds back.
    pub(crate) fn on_error(&mut self, msg: &ErrorMessage, ctx: &Context<'_>) -> Vec<Action> {
        let reason = format!("peer error: {}", msg.printable());
        match &self.phase {
            Phase::Failed(_) | Phase::Aborted(_) | Phase::Closing(_) | Phase::Closed(_) => {
                Vec::new()
            }
            Phase::Opening(_) => self.fail_transient(reason, false),
            Phase::Funded(_) if self.funding_unseen() => self.fail_unfunded(
                format!(
                    "the funder failed the open before its funding appeared on chain; \
                     nothing was committed ({reason})"
                ),
                false,
            ),
            Phase::Funded(_) => self.fail_and_close(reason, false, ctx),
        }
    }

    /// Fails a durable channel and force-closes it (`resolve.rs`): persist
    /// Closing{LocalForce} with our latest signed commitment (and the failure event), broadcast
    /// the commitment (after the funding of a funder's unconfirmed channel), then send `error`
    /// if `tell_peer` — unless we are a fundee that never saw the funding: that commitment
    /// spends nothing that exists ([`ChannelState::FailedUnfunded`]). A failed or closing
    /// channel broadcasts nothing (it fell behind, or the funding is spent or being spent).
    pub(crate) fn fail_and_close(
        &mut self,
        reason: String,
        tell_peer: bool,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        if self.funding_unseen() {
            return self.fail_unfunded(
                format!("{reason}; nothing was committed (the funding never appeared on chain)"),
                tell_peer,
            );
        }
        if let Some(tx) = self.agreed_closing_tx() {
            // BOLT 5: holding a closing transaction both signed, close with it, never with our
            // commitment (a mutual close may already be in the mempool).
            tracing::warn!(channel = %self.current_id(), %reason, "failing a channel whose close is agreed: broadcasting the agreed close");
            return vec![Action::Broadcast {
                tx: tx.clone(),
                kind: BroadcastKind::MutualClose,
            }];
        }
        self.force_close(reason, tell_peer, true, ctx)
    }

    /// The connection dropped: a transient open is forgotten (coins unlocked, app told); a
    /// durable channel waits for the reconnection.
    pub(crate) fn on_disconnected(&mut self) -> Vec<Action> {
        self.drop_unsigned_updates();
        self.shutdown_disconnected();
        if let Some(e) = self.phase.established_mut() {
            e.announcement.answered = false;
            return Vec::new();
        }
        self.fail_transient(
            "peer disconnected before the channel was durable".into(),
            false,
        )
    }
}
