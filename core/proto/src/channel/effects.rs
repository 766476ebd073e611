//! The actions every phase builds alike: commits (with the funder's open progress), the
//! funding watch and broadcasts, and the failures of a transient open and of a durable channel.

use bitcoin::{Transaction, Txid};

use super::phase::{Aborted, Failed, LockIn, Phase};
use super::{
    Action, BroadcastKind, Channel, ChannelEvent, Commit, DisconnectScope, FailOpen, OpenProgress,
    Release, Role, WatchRequest,
};
use crate::wire::{ErrorMessage, Message};

impl Channel {
    pub(crate) fn watch_action(&self) -> Option<Action> {
        let funding = self.funding()?;
        Some(Action::Watch(WatchRequest::Funding {
            channel_id: self.channel_id()?,
            outpoint: funding.outpoint,
            script_pubkey: self.funding_script_pubkey()?,
            min_depth: self.minimum_depth().unwrap_or(1),
        }))
    }

    /// A funder's open in progress, for the open intent: pending until ready.
    fn open_progress(&self) -> Option<OpenProgress> {
        match (self.params.role, &self.phase) {
            (Role::Funder, Phase::Funded(f)) if f.lock != LockIn::Ready => {
                Some(OpenProgress::Pending)
            }
            _ => None,
        }
    }

    /// Commits the current state with `events`.
    pub(crate) fn commit(&self, events: Vec<ChannelEvent>) -> Action {
        Action::Commit(Commit {
            record: self.to_record(),
            events,
            open: self.open_progress(),
            release: None,
        })
    }

    /// Commits the state that just became [`ChannelState::Ready`]: a funder's open is done
    /// and its coin locks go.
    pub(crate) fn commit_ready(&self, events: Vec<ChannelEvent>) -> Action {
        let funder = self.params.role == Role::Funder;
        Action::Commit(Commit {
            record: self.to_record(),
            events,
            open: funder.then_some(OpenProgress::Ready),
            release: funder.then_some(Release::OpenLocks),
        })
    }

    /// The funding tx to (re)broadcast: funder, durable, not failed, not ready, unconfirmed.
    pub(crate) fn rebroadcast_tx(&self) -> Option<Transaction> {
        let Phase::Funded(f) = &self.phase else {
            return None;
        };
        if self.params.role != Role::Funder
            || f.channel.confirmation.is_some()
            || f.lock == LockIn::Ready
        {
            return None;
        }
        f.channel.funding.tx.clone()
    }

    pub(crate) fn error_message(&self, text: &str) -> Action {
        Action::Send(Message::Error(ErrorMessage::new(self.current_id(), text)))
    }

    /// The funding transaction built for a transient open (funder, `funding_created` sent).
    fn built_funding_txid(&self) -> Option<Txid> {
        match (&self.params.role, &self.phase) {
            (Role::Funder, Phase::Opening(_)) => self.funding().map(|f| f.outpoint.txid),
            _ => None,
        }
    }

    /// Fails a transient open: tell the peer, forget the channel, unlock the coins.
    pub(crate) fn fail_transient(&mut self, reason: String, tell_peer: bool) -> Vec<Action> {
        let funding_txid = self.built_funding_txid();
        self.fail_open(reason, tell_peer, funding_txid)
    }

    /// [`Channel::fail_transient`] releasing `funding_txid` (a funding tx the wallet built).
    pub(crate) fn fail_open(
        &mut self,
        reason: String,
        tell_peer: bool,
        funding_txid: Option<Txid>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        if tell_peer {
            actions.push(self.error_message(&reason));
        }
        let p = &self.params;
        actions.push(Action::FailOpen(FailOpen {
            temporary_channel_id: p.temporary_channel_id,
            funding_txid,
            reason: reason.clone(),
            events: vec![ChannelEvent::ChannelOpenFailed {
                counterparty_node_id: p.counterparty_node_id,
                temporary_channel_id: p.temporary_channel_id,
                channel_id: None,
                reason: reason.clone(),
            }],
        }));
        if tell_peer {
            actions.push(Action::Disconnect {
                counterparty_node_id: p.counterparty_node_id,
                reason: reason.clone(),
                scope: DisconnectScope::UnlessShared,
            });
        }
        let funding = self.funding().cloned();
        self.phase = Phase::Aborted(Aborted { reason, funding });
        actions
    }

    /// Moves a durable channel (failed or not) to `Failed`, returning whether it was ready.
    /// `None`: the channel is not durable.
    /// `spend`: the transaction that spent the funding output, if that is why (a spend
    /// recorded earlier is kept).
    pub(super) fn enter_failed(
        &mut self,
        reason: String,
        unfunded: bool,
        spend: Option<Transaction>,
    ) -> Option<bool> {
        let placeholder = Phase::Aborted(Aborted {
            reason: String::new(),
            funding: None,
        });
        let (channel, was_ready, funding_spend) =
            match std::mem::replace(&mut self.phase, placeholder) {
                Phase::Funded(f) => (f.channel, f.lock == LockIn::Ready, None),
                Phase::Failed(f) => (f.channel, false, f.funding_spend),
                other => {
                    self.phase = other;
                    return None;
                }
            };
        self.phase = Phase::Failed(Failed {
            channel,
            reason,
            unfunded,
            funding_spend: spend.or(funding_spend).filter(|_| !unfunded),
        });
        Some(was_ready)
    }

    /// Fails a durable channel: record it failed (persisted first), then tell the peer and the
    /// app. `abandon_funding` asks the wallet to drop the funding tx (double-spend).
    pub(crate) fn fail_durable(
        &mut self,
        reason: String,
        tell_peer: bool,
        abandon_funding: bool,
    ) -> Vec<Action> {
        self.fail_durable_spent(reason, tell_peer, abandon_funding, None)
    }

    /// [`Channel::fail_durable`], recording `spend` as the spend of the funding output.
    pub(crate) fn fail_durable_spent(
        &mut self,
        reason: String,
        tell_peer: bool,
        abandon_funding: bool,
        spend: Option<Transaction>,
    ) -> Vec<Action> {
        let Some(was_ready) = self.enter_failed(reason.clone(), false, spend) else {
            return Vec::new();
        };
        let funder = self.params.role == Role::Funder;
        let release = match (abandon_funding && funder, self.funding()) {
            (true, Some(f)) => Some(Release::AbandonFunding {
                txid: f.outpoint.txid,
            }),
            _ => None,
        };
        let error = tell_peer.then(|| self.error_message(&reason));
        let p = &self.params;
        let event = if was_ready {
            ChannelEvent::ChannelFailed {
                counterparty_node_id: p.counterparty_node_id,
                channel_id: self.current_id(),
                reason,
            }
        } else {
            ChannelEvent::ChannelOpenFailed {
                counterparty_node_id: p.counterparty_node_id,
                temporary_channel_id: p.temporary_channel_id,
                channel_id: self.channel_id(),
                reason,
            }
        };
        let commit = Action::Commit(Commit {
            record: self.to_record(),
            events: vec![event],
            open: (funder && !was_ready).then_some(OpenProgress::Pending),
            release,
        });
        std::iter::once(commit).chain(error).collect()
    }
}

/// Broadcasting a channel's funding transaction.
pub(crate) fn broadcast_funding(tx: Transaction) -> Action {
    Action::Broadcast {
        tx,
        kind: BroadcastKind::Funding,
    }
}

/// `actions` with their commits made one, at the first commit's place: the last record, every
/// event in order, the last open progress and coin release. Everything after the first commit
/// then finds at least the state it depends on durable (a later state than it needs, never an
/// earlier one), for one fsync instead of several. Only for actions built from one input, whose
/// later commits were all decided before any of them is performed.
pub(crate) fn one_commit(actions: Vec<Action>) -> Vec<Action> {
    let mut out: Vec<Action> = Vec::with_capacity(actions.len());
    let mut first: Option<usize> = None;
    for action in actions {
        match (action, first) {
            (Action::Commit(later), Some(i)) => {
                if let Some(Action::Commit(merged)) = out.get_mut(i) {
                    merged.record = later.record;
                    merged.events.extend(later.events);
                    merged.open = later.open.or(merged.open);
                    merged.release = later.release.or(merged.release);
                }
            }
            (action @ Action::Commit(_), None) => {
                first = Some(out.len());
                out.push(action);
            }
            (action, _) => out.push(action),
        }
    }
    out
}
