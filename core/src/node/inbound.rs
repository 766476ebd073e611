//! A peer's `open_channel`: the node's inbound policy (accept, refuse, or ask the app with
//! `OpenChannelRequest`) and the accept itself — a new channel in the peer task, or the
//! refusal's `error` without taking down the peer's other channels.

use bitcoin::Amount;

use super::peer::PeerTask;
use super::{lock, Event, InboundPolicy};
use crate::proto::channel::{
    Action, Channel, ChannelError, Context, DisconnectScope, InboundParams,
};
use crate::proto::wire::{ErrorMessage, Message};

impl PeerTask {
    pub(super) async fn on_open_channel(&mut self, open: crate::proto::wire::OpenChannel) {
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
