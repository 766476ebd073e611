//! Events the node reports to the app, kept in the store's event queue until handled.

use bitcoin::secp256k1::PublicKey;
use bitcoin::OutPoint;
use serde::{Deserialize, Serialize};

use crate::proto::channel::ChannelEvent;

/// Record version of encoded events.
const EVENT_VERSION: u8 = 1;

/// Something the app should know about. Delivered at least once: an event stays pending,
/// across restarts, until [`crate::node::Node::event_handled`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The funding is broadcast (funder) or signed (fundee) and the channel is durable.
    ChannelPending {
        /// Final channel id (hex).
        channel_id: String,
        /// The id used before the funding was known (hex).
        temporary_channel_id: String,
        /// The peer.
        counterparty_node_id: PublicKey,
        /// The funding outpoint.
        funding_txo: OutPoint,
    },
    /// Both sides sent `channel_ready`.
    ChannelReady {
        /// Channel id (hex).
        channel_id: String,
        /// The peer.
        counterparty_node_id: PublicKey,
    },
    /// An open failed; nothing is left of it and its coins are unlocked.
    ChannelOpenFailed {
        /// The temporary id (hex).
        temporary_channel_id: String,
        /// The final id if it was known (hex).
        channel_id: Option<String>,
        /// The peer.
        counterparty_node_id: PublicKey,
        /// Why.
        reason: String,
    },
    /// A ready channel failed.
    ChannelFailed {
        /// Channel id (hex).
        channel_id: String,
        /// The peer.
        counterparty_node_id: PublicKey,
        /// Why.
        reason: String,
    },
    /// A peer wants to open a channel to us (manual inbound policy): answer with
    /// [`crate::node::Node::accept_channel`] or [`crate::node::Node::reject_channel`]. Not
    /// answered before the peer disconnects, the request lapses.
    OpenChannelRequest {
        /// The peer's temporary id (hex).
        temporary_channel_id: String,
        /// The peer.
        counterparty_node_id: PublicKey,
        /// Channel size.
        funding_sat: u64,
        /// Amount the peer gives us at open.
        push_msat: u64,
    },
    /// A peer connected (handshake and `init` done).
    PeerConnected {
        /// The peer.
        node_id: PublicKey,
    },
    /// A peer's connection ended.
    PeerDisconnected {
        /// The peer.
        node_id: PublicKey,
        /// Why.
        reason: String,
    },
}

impl Event {
    /// Versioned encoding (version byte + JSON).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![EVENT_VERSION];
        out.extend(serde_json::to_vec(self).expect("events serialise"));
        out
    }

    /// Decodes [`Event::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Event, String> {
        match bytes.split_first() {
            Some((&EVENT_VERSION, rest)) => {
                serde_json::from_slice(rest).map_err(|e| format!("event: {e}"))
            }
            Some((v, _)) => Err(format!("event: unknown record version {v}")),
            None => Err("event: empty record".into()),
        }
    }

    /// The node event for a channel event.
    pub fn from_channel(event: &ChannelEvent) -> Event {
        match event {
            ChannelEvent::ChannelPending {
                counterparty_node_id,
                temporary_channel_id,
                channel_id,
                funding_txo,
            } => Event::ChannelPending {
                channel_id: channel_id.to_string(),
                temporary_channel_id: temporary_channel_id.to_string(),
                counterparty_node_id: *counterparty_node_id,
                funding_txo: *funding_txo,
            },
            ChannelEvent::ChannelReady {
                counterparty_node_id,
                channel_id,
            } => Event::ChannelReady {
                channel_id: channel_id.to_string(),
                counterparty_node_id: *counterparty_node_id,
            },
            ChannelEvent::ChannelOpenFailed {
                counterparty_node_id,
                temporary_channel_id,
                channel_id,
                reason,
            } => Event::ChannelOpenFailed {
                temporary_channel_id: temporary_channel_id.to_string(),
                channel_id: channel_id.map(|c| c.to_string()),
                counterparty_node_id: *counterparty_node_id,
                reason: reason.clone(),
            },
            ChannelEvent::ChannelFailed {
                counterparty_node_id,
                channel_id,
                reason,
            } => Event::ChannelFailed {
                channel_id: channel_id.to_string(),
                counterparty_node_id: *counterparty_node_id,
                reason: reason.clone(),
            },
        }
    }
}
