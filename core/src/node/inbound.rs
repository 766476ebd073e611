//! A peer's `open_channel`: the limits on opens held in memory, the node's inbound policy
//! (accept, refuse, or ask the app with `OpenChannelRequest`) and the accept itself — a new
//! channel in the peer task, or the refusal's `error` without taking down the peer's other
//! channels.
//!
//! An inbound open is held in memory only until its durable point (`funding_created`
//! persisted): a peer could otherwise flood `open_channel`s, each costing a channel, keys and
//! a key-index write. At most [`Config::max_pending_inbound_opens_per_peer`] per peer and
//! [`Config::max_pending_inbound_opens`] in all are held; one more is refused with an
//! `error` for its temporary id before anything is allocated or written.
//!
//! [`Config::max_pending_inbound_opens_per_peer`]: super::Config::max_pending_inbound_opens_per_peer
//! [`Config::max_pending_inbound_opens`]: super::Config::max_pending_inbound_opens

use bitcoin::Amount;

use super::peer::PeerTask;
use super::{lock, Event, InboundPolicy, Node};
use crate::proto::channel::{
    Action, Channel, ChannelError, ChannelState, Context, DisconnectScope, InboundParams, Role,
};
use crate::proto::wire::{ErrorMessage, Message};

/// [`super::Config::max_pending_inbound_opens_per_peer`]'s default.
pub const DEFAULT_MAX_PENDING_OPENS_PER_PEER: usize = 4;
/// [`super::Config::max_pending_inbound_opens`]'s default.
pub const DEFAULT_MAX_PENDING_OPENS: usize = 50;

impl Node {
    /// Inbound opens held in memory before their durable point, all peers together (at most
    /// [`super::Config::max_pending_inbound_opens`]).
    pub fn pending_inbound_opens(&self) -> usize {
        lock(&self.shared.pending_inbound).values().sum()
    }
}

impl PeerTask {
    /// This peer's inbound opens held before their durable point: accepted channels not yet
    /// durable, and requests waiting for the app.
    fn pending_inbound(&self) -> usize {
        let channels = self
            .channels
            .iter()
            .filter(|c| c.role() == Role::Fundee)
            .filter(|c| !c.state().is_durable() && c.state() != ChannelState::Aborted)
            .count();
        channels + self.requests.len()
    }

    /// Publishes this peer's count of pending inbound opens (after every input of the task,
    /// so opens that became durable, timed out or died with the connection free their room).
    pub(super) fn count_pending_inbound(&self) {
        let n = self.pending_inbound();
        let mut all = lock(&self.shared.pending_inbound);
        if n == 0 {
            all.remove(&self.node_id);
        } else {
            all.insert(self.node_id, n);
        }
    }

    /// Takes room for one more pending inbound open, or says which limit is reached.
    fn reserve_pending_inbound(&self) -> Result<(), &'static str> {
        let config = &self.shared.config;
        let mine = self.pending_inbound();
        let mut all = lock(&self.shared.pending_inbound);
        let others: usize = all
            .iter()
            .filter(|(id, _)| **id != self.node_id)
            .map(|(_, n)| n)
            .sum();
        if mine >= config.max_pending_inbound_opens_per_peer {
            return Err("too many pending channel opens from this peer");
        }
        if others + mine >= config.max_pending_inbound_opens {
            return Err("too many pending channel opens");
        }
        all.insert(self.node_id, mine + 1);
        Ok(())
    }

    pub(super) async fn on_open_channel(&mut self, open: crate::proto::wire::OpenChannel) {
        if self.shared.config.inbound != InboundPolicy::RejectAll {
            if let Err(why) = self.reserve_pending_inbound() {
                tracing::info!(channel = %open.temporary_channel_id, "open_channel refused: {why}");
                let error = ErrorMessage::new(open.temporary_channel_id, why);
                self.send(Message::Error(error)).await;
                return;
            }
        }
        match self.shared.config.inbound {
            InboundPolicy::AcceptAll => self.accept_open(open).await,
            InboundPolicy::RejectAll => {
                let error =
                    ErrorMessage::new(open.temporary_channel_id, "not accepting inbound channels");
                self.send(Message::Error(error)).await;
            }
            InboundPolicy::Manual => {
                let event = Event::OpenChannelRequest {
                    temporary_channel_id: open.temporary_channel_id,
                    counterparty_node_id: self.node_id,
                    channel_value: Amount::from_sat(open.funding_satoshis),
                    push_msat: open.push_msat,
                };
                self.requests.insert(open.temporary_channel_id, open);
                if let Err(e) = self.shared.push_event(&event).await {
                    tracing::error!("cannot queue event: {e}");
                }
            }
        }
    }

    pub(super) async fn accept_open(&mut self, open: crate::proto::wire::OpenChannel) {
        let temporary_channel_id = open.temporary_channel_id;
        // An anchor channel needs the on-chain reserve (`reserve.rs`): refused with an error
        // the funder can answer by opening without anchors (LDK does).
        let anchors = open
            .channel_type
            .as_ref()
            .is_some_and(crate::proto::wire::ChannelType::is_anchors);
        if anchors && self.shared.config.anchor_reserve_inbound {
            if let Some(why) = self.shared.inbound_reserve_refusal().await {
                tracing::info!(channel = %temporary_channel_id, "inbound anchor open refused: {why}");
                self.send(Message::Error(ErrorMessage::new(
                    temporary_channel_id,
                    &why,
                )))
                .await;
                return;
            }
        }
        let keys_index = match self.shared.allocate_keys_index().await {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(channel = %temporary_channel_id, "cannot allocate channel keys: {e}");
                return;
            }
        };
        let keys = match self.context_keys(keys_index) {
            Ok(keys) => keys,
            Err(e) => {
                tracing::error!(channel = %temporary_channel_id, "{e}");
                return;
            }
        };
        let params = InboundParams {
            counterparty_node_id: self.node_id,
            keys_index,
            current_height: self.shared.tip_height(),
        };
        let result = {
            let ctx = Context::new(&self.shared.secp, &keys, &self.shared.config.channel)
                .with_node_key(&self.shared.node_secret);
            Channel::new_inbound(&open, params, &ctx)
        };
        match result {
            Ok((channel, actions)) => {
                self.channels.push(channel);
                let i = self.channels.len() - 1;
                if let Err(failed) = self.perform(i, actions).await {
                    tracing::error!(channel = %temporary_channel_id, "accepting: {failed}");
                    self.channels.remove(i);
                    lock(&self.shared.views).remove(&temporary_channel_id);
                }
            }
            Err(ChannelError::Rejected { error, actions }) => {
                tracing::info!(channel = %temporary_channel_id, "open_channel refused: {error}");
                for action in actions {
                    match action {
                        Action::Send(m) => self.send(m).await,
                        // One refused open leaves the connection to the peer's other channels.
                        Action::Disconnect { scope, .. }
                            if scope == DisconnectScope::Connection
                                || !self.connection_shared(None) =>
                        {
                            let _ = self.shared.net.disconnect(self.node_id);
                        }
                        _ => {}
                    }
                }
            }
            Err(e) => tracing::error!(channel = %temporary_channel_id, "inbound open failed: {e}"),
        }
    }
}
