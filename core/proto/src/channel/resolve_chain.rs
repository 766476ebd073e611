//! The inputs of a closing (or closed) channel (`resolve.rs` has the model and the rules):
//! peer messages, funding spends and their reorgs, output spends, new blocks (rebroadcasts,
//! sweeps, bumps, `Closed`) and the actions after a restart.

use bitcoin::{OutPoint, Transaction};

use super::phase::Phase;
use super::resolve::{OutputState, Tracked, CLOSED_DEPTH};
use super::{
    broadcast_funding, Action, BroadcastKind, Channel, ChannelEvent, CloseKind, Context, Input,
    Role, WatchRequest,
};
use crate::wire::Message;

impl Channel {
    /// The inputs of a closing (or closed) channel.
    pub(super) fn handle_closing(&mut self, input: Input, ctx: &Context<'_>) -> Vec<Action> {
        match input {
            Input::Message(msg) => self.on_closing_message(&msg),
            Input::FundingSpent {
                spending_tx,
                confirmation_height,
            } => self.on_funding_spent(spending_tx, confirmation_height, ctx),
            Input::FundingUnspent => self.on_closing_unspent(ctx),
            Input::OutputSpent {
                outpoint,
                spending_tx,
                confirmation_height,
            } => self.on_output_spent(outpoint, &spending_tx, confirmation_height),
            Input::OutputUnspent { outpoint } => self.on_output_unspent(outpoint),
            Input::NewBlock { height } => self.on_closing_block(height, ctx),
            Input::PeerReconnected => self.closing_error().into_iter().collect(),
            Input::FundingConfirmed {
                tx, confirmation, ..
            } => {
                let Some(c) = self.closing_mut() else {
                    return Vec::new();
                };
                if c.channel.funding.outpoint.txid != tx.compute_txid()
                    || c.channel.confirmation == Some(confirmation)
                {
                    return Vec::new();
                }
                c.channel.confirmation = Some(confirmation);
                c.channel.funding.tx = Some(tx);
                vec![self.commit(Vec::new())]
            }
            Input::FundingReorged => {
                let Some(c) = self.closing_mut() else {
                    return Vec::new();
                };
                if c.channel.confirmation.take().is_none() {
                    return Vec::new();
                }
                vec![self.commit(Vec::new())]
            }
            Input::ForceClose => self.on_force_close(ctx),
            Input::CpfpBuilt {
                child,
                feerate_per_kw,
                height,
            } => self.on_cpfp_built(child, feerate_per_kw, height),
            Input::FundingTxBuilt { .. }
            | Input::FundingTxFailed { .. }
            | Input::FundingDoubleSpent { .. }
            | Input::PeerDisconnected
            | Input::SetFeerate { .. }
            | Input::Tick { .. }
            | Input::Close { .. } => Vec::new(),
        }
    }

    /// Our `error` again, for a peer that talks about a channel we force-closed (BOLT 1; a
    /// cooperative close needs none, and an `error` could make the peer broadcast its
    /// commitment over the closing tx).
    fn closing_error(&self) -> Option<Action> {
        let c = self.closing()?;
        (!matches!(c.resolution.kind, CloseKind::Cooperative { .. }))
            .then(|| self.error_message(&c.reason))
    }

    /// A peer message to a closing channel: nothing it says can make us broadcast. Its
    /// `error` (or LDK's placeholder reestablish for a channel it closed) is logged; a
    /// reestablish is answered with our `error` (unless the close is cooperative).
    pub(super) fn on_closing_message(&mut self, msg: &Message) -> Vec<Action> {
        match msg {
            Message::ChannelReestablish(m) if Some(m.channel_id) == self.channel_id() => {
                self.closing_error().into_iter().collect()
            }
            Message::Error(e) => {
                tracing::info!(channel = %self.current_id(), error = %e.printable(), "peer error on a closing channel: nothing to do");
                Vec::new()
            }
            other => {
                tracing::debug!(channel = %self.current_id(), msg = other.name(), "ignoring a message to a closing channel");
                Vec::new()
            }
        }
    }

    /// The funding output is spent: classify and persist (a new close, a different spend
    /// than the one held, or the same one at a new height).
    pub(super) fn on_closing_spent(
        &mut self,
        spending_tx: Transaction,
        confirmation_height: Option<u32>,
        reason: String,
        events: Vec<ChannelEvent>,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        let Some(c) = self.closing() else {
            let kind = self.close_kind_of(&spending_tx, ctx);
            if kind == CloseKind::Unknown {
                tracing::warn!(channel = %self.current_id(), txid = %spending_tx.compute_txid(), "the funding was spent by a transaction we cannot place (BOLT 5: nothing of it is known to be ours)");
            }
            return self.enter_closing(kind, spending_tx, confirmation_height, reason, events, ctx);
        };
        if c.resolution.spend.compute_txid() == spending_tx.compute_txid() {
            if c.resolution.confirmed_at == confirmation_height {
                return Vec::new();
            }
            let reopened = matches!(self.phase, Phase::Closed(_));
            let mut actions = Vec::new();
            if let Some(c) = self.closing_mut() {
                c.resolution.confirmed_at = confirmation_height;
            }
            let tip = confirmation_height.unwrap_or_else(|| self.tip_floor());
            let sweeps = self.build_due_sweeps(tip, ctx);
            actions.push(self.reopen_commit(reopened, "its closing transaction moved in a reorg"));
            actions.extend(sweeps);
            if confirmation_height.is_none() {
                actions.extend(self.spend_broadcasts(tip));
            }
            return actions;
        }
        // Another transaction spends the funding: the chain wins over what we broadcast (their
        // commitment raced ours) or held before a reorg. The reason we closed stays; the new
        // `ChannelClosing` names the new kind.
        let _ = reason;
        let reason = c.reason.clone();
        let kind = self.close_kind_of(&spending_tx, ctx);
        tracing::warn!(channel = %self.current_id(), from = c.resolution.kind.name(), to = kind.name(), "the funding is spent by another transaction than the one held");
        self.enter_closing(
            kind,
            spending_tx,
            confirmation_height,
            reason,
            Vec::new(),
            ctx,
        )
    }

    /// The commit of a change to a closing channel; `reopened`: it was closed, a reorg brings
    /// it back to closing (with `ChannelClosing` again).
    fn reopen_commit(&mut self, reopened: bool, why: &str) -> Action {
        if !reopened {
            return self.commit(Vec::new());
        }
        let placeholder = Phase::Aborted(super::phase::Aborted {
            reason: String::new(),
            funding: None,
        });
        if let Phase::Closed(c) = std::mem::replace(&mut self.phase, placeholder) {
            self.phase = Phase::Closing(c);
        }
        let kind = self.close_kind().unwrap_or(CloseKind::Unknown);
        tracing::warn!(channel = %self.current_id(), why, "closed channel reopened by a reorg");
        self.commit(vec![ChannelEvent::ChannelClosing {
            counterparty_node_id: self.params.counterparty_node_id,
            channel_id: self.current_id(),
            kind,
            reason: format!("reorg: {why}"),
        }])
    }

    /// The spend of the funding is gone (reorg or replacement): closing again, unconfirmed;
    /// our own transaction is rebroadcast.
    ///
    /// The peer's commitment gone (RemoteForce, or a revoked one we were punishing): nothing
    /// of ours spends the funding, and the channel cannot be used again (the peer gave it up,
    /// and we have failed it): our latest commitment is signed, stored as Closing{LocalForce}
    /// (with `ChannelClosing` naming the new kind) and then broadcast (BOLT 5: fail the
    /// channel by broadcasting our last commitment). If their commitment comes back (or
    /// confirms), the chain wins, as for any race. A commitment from our future (RemoteFuture)
    /// that vanished is only waited for: ours is revoked in the peer's eyes (BOLT 2: a node
    /// that fell behind MUST NOT broadcast it); an unknown spend too (nothing says ours is
    /// safe to broadcast).
    fn on_closing_unspent(&mut self, ctx: &Context<'_>) -> Vec<Action> {
        let Some(c) = self.closing() else {
            return Vec::new();
        };
        if matches!(
            c.resolution.kind,
            CloseKind::RemoteForce | CloseKind::Revoked
        ) {
            return self.broadcast_ours_instead(ctx);
        }
        if c.resolution.confirmed_at.is_none() && matches!(self.phase, Phase::Closing(_)) {
            return Vec::new();
        }
        let reopened = matches!(self.phase, Phase::Closed(_));
        if let Some(c) = self.closing_mut() {
            c.resolution.confirmed_at = None;
        }
        let tip = self.tip_floor();
        let mut actions =
            vec![self.reopen_commit(reopened, "its closing transaction left the chain")];
        actions.extend(self.spend_broadcasts(tip));
        actions.extend(self.closing_watches());
        actions
    }

    /// The peer's commitment vanished: ours, stored then broadcast (see
    /// [`Channel::on_closing_unspent`]).
    fn broadcast_ours_instead(&mut self, ctx: &Context<'_>) -> Vec<Action> {
        let (kind, reason) = match self.closing() {
            Some(c) => (c.resolution.kind, c.reason.clone()),
            None => return Vec::new(),
        };
        let commitment = match self.signed_our_commitment(ctx) {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(channel = %self.current_id(), error = %e, "the peer's commitment vanished and ours cannot be signed: waiting");
                return Vec::new();
            }
        };
        tracing::warn!(channel = %self.current_id(), from = kind.name(), "the peer's commitment left the mempool: broadcasting ours");
        let reason = format!("{reason}; the peer's commitment vanished, ours is broadcast");
        self.enter_closing(
            CloseKind::LocalForce,
            commitment,
            None,
            reason,
            Vec::new(),
            ctx,
        )
    }

    /// The tracked output at `outpoint` of a closing (or closed) channel, and whether the
    /// channel is closed (a change to it then reopens the channel).
    fn tracked_mut(&mut self, outpoint: OutPoint) -> Option<(bool, &mut Tracked)> {
        let closed = matches!(self.phase, Phase::Closed(_));
        let o = self
            .closing_mut()?
            .resolution
            .outputs
            .iter_mut()
            .find(|o| o.outpoint == outpoint)?;
        Some((closed, o))
    }

    fn on_output_spent(
        &mut self,
        outpoint: OutPoint,
        spending_tx: &Transaction,
        confirmation_height: Option<u32>,
    ) -> Vec<Action> {
        let id = self.current_id();
        let Some((closed, o)) = self.tracked_mut(outpoint) else {
            return Vec::new();
        };
        let txid = spending_tx.compute_txid();
        let new = match (confirmation_height, &o.state) {
            (
                Some(height),
                OutputState::Confirmed {
                    txid: t, height: h, ..
                },
            ) if *t == txid && *h == height => {
                return Vec::new();
            }
            (Some(height), state) => {
                // What came to us: the outputs paying where our sweep pays (any RBF version
                // of it), or nothing if someone else took it.
                let ours = match state {
                    OutputState::Broadcast { tx, .. } => {
                        tx.output.first().map(|o| o.script_pubkey.clone())
                    }
                    OutputState::Confirmed { .. } => None,
                    _ => None,
                };
                let claimed_sat = match (ours, state) {
                    (Some(script), _) => spending_tx
                        .output
                        .iter()
                        .filter(|o| o.script_pubkey == script)
                        .map(|o| o.value.to_sat())
                        .sum(),
                    (
                        None,
                        OutputState::Confirmed {
                            txid: t,
                            claimed_sat,
                            ..
                        },
                    ) if *t == txid => *claimed_sat,
                    _ => 0,
                };
                if claimed_sat == 0 {
                    tracing::warn!(channel = %id, %outpoint, %txid, "a tracked output was spent by a transaction that pays us nothing");
                }
                OutputState::Confirmed {
                    txid,
                    height,
                    claimed_sat,
                }
            }
            // In the mempool: our sweep (or another's) is on its way; a confirmed spend that
            // fell back to the mempool is unconfirmed again: rebuilt on the next block.
            (None, OutputState::Confirmed { .. }) => OutputState::Waiting,
            (None, _) => return Vec::new(),
        };
        o.state = new;
        vec![self.reopen_commit(closed, "a sweep moved in a reorg")]
    }

    fn on_output_unspent(&mut self, outpoint: OutPoint) -> Vec<Action> {
        let Some((closed, o)) = self.tracked_mut(outpoint) else {
            return Vec::new();
        };
        if !matches!(o.state, OutputState::Confirmed { .. }) {
            return Vec::new();
        }
        o.state = OutputState::Waiting;
        vec![self.reopen_commit(closed, "a sweep left the chain")]
    }

    /// A new block: rebroadcast what is unconfirmed, sweep what is due, bump what is stuck,
    /// and close when everything is 6 deep.
    pub(super) fn on_closing_block(&mut self, height: u32, ctx: &Context<'_>) -> Vec<Action> {
        let Some(c) = self.closing() else {
            return Vec::new();
        };
        if matches!(self.phase, Phase::Closed(_)) {
            return Vec::new();
        }
        let before = c.clone();
        let mut actions = self.spend_broadcasts(height);
        // Bump (or rebroadcast) the sweeps already out, then build the ones now due.
        let rebroadcasts = self.bump_sweeps(height, ctx);
        let sweeps = self.build_due_sweeps(height, ctx);
        let done = self
            .closing()
            .and_then(|c| c.resolution.deep_at(CLOSED_DEPTH))
            .is_some_and(|at| height >= at);
        let changed = self.closing() != Some(&before);
        if done {
            let channel_id = self.current_id();
            let placeholder = Phase::Aborted(super::phase::Aborted {
                reason: String::new(),
                funding: None,
            });
            if let Phase::Closing(c) = std::mem::replace(&mut self.phase, placeholder) {
                let event = ChannelEvent::ChannelClosed {
                    counterparty_node_id: self.params.counterparty_node_id,
                    channel_id,
                    kind: c.resolution.kind,
                    claimed_sat: c.resolution.claimed_sat(),
                    closing_txid: c.resolution.spend.compute_txid(),
                };
                tracing::info!(channel = %channel_id, claimed_sat = c.resolution.claimed_sat(), "channel closed: every output resolved 6 deep");
                self.phase = Phase::Closed(c);
                actions.insert(0, self.commit(vec![event]));
            }
        } else if changed {
            actions.insert(0, self.commit(Vec::new()));
        }
        actions.extend(rebroadcasts);
        actions.extend(sweeps);
        // Our commitment still unconfirmed and the estimate above what it (with its child)
        // pays: a (new or replacement) CPFP child.
        actions.extend(self.cpfp_request(height, ctx));
        actions
    }

    /// Our own spend of the funding while unconfirmed at `tip`: the funding first (a funder's
    /// unconfirmed one), then our commitment or the closing tx.
    pub(super) fn spend_broadcasts(&self, tip: u32) -> Vec<Action> {
        let Some(c) = self.closing() else {
            return Vec::new();
        };
        if c.resolution.is_confirmed(tip) || matches!(self.phase, Phase::Closed(_)) {
            return Vec::new();
        }
        let kind = match c.resolution.kind {
            CloseKind::LocalForce => BroadcastKind::Commitment,
            CloseKind::Cooperative { .. } => BroadcastKind::MutualClose,
            _ => return Vec::new(),
        };
        let mut actions = Vec::new();
        if self.params.role == Role::Funder && c.channel.confirmation.is_none() {
            actions.extend(c.channel.funding.tx.clone().map(broadcast_funding));
        }
        actions.push(Action::Broadcast {
            tx: c.resolution.spend.clone(),
            kind,
        });
        actions.extend(self.cpfp_broadcast());
        actions
    }

    /// The watches of a closing channel: the funding (its spend's confirmations, a
    /// replacement, a reorg) and each tracked output we sweep.
    pub(super) fn closing_watches(&self) -> Vec<Action> {
        let Some(c) = self.closing() else {
            return Vec::new();
        };
        let mut actions: Vec<Action> = self.watch_action().into_iter().collect();
        let Some(channel_id) = self.channel_id() else {
            return actions;
        };
        for o in &c.resolution.outputs {
            if matches!(o.state, OutputState::Nothing | OutputState::Uneconomical) {
                continue;
            }
            let Some(script) = usize::try_from(o.outpoint.vout)
                .ok()
                .and_then(|v| c.resolution.spend.output.get(v))
                .map(|out| out.script_pubkey.clone())
            else {
                continue;
            };
            actions.push(Action::Watch(WatchRequest::Output {
                channel_id,
                outpoint: o.outpoint,
                script_pubkey: script,
            }));
        }
        actions
    }

    /// After a restart: re-arm the watches, rebroadcast our unconfirmed spend and sweeps.
    pub(super) fn resume_closing(&self) -> Vec<Action> {
        let Some(c) = self.closing() else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        if c.resolution.confirmed_at.is_none() {
            actions.extend(self.spend_broadcasts(self.tip_floor()));
        }
        for o in &c.resolution.outputs {
            if let OutputState::Broadcast { tx, .. } = &o.state {
                actions.push(Action::Broadcast {
                    tx: tx.clone(),
                    kind: BroadcastKind::Sweep,
                });
            }
        }
        actions.extend(self.closing_watches());
        actions
    }
}
