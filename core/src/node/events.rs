//! Events the node reports to the app, kept in the store's event queue until handled.

use bitcoin::secp256k1::PublicKey;
use bitcoin::{Amount, OutPoint, Txid};
use serde::{Deserialize, Serialize};

use crate::proto::channel::{ChannelEvent, CloseKind as ProtoCloseKind, Initiator};
use crate::proto::wire::ChannelId;

/// Record version of encoded events.
const EVENT_VERSION: u8 = 1;

/// Something the app should know about. Delivered at least once: an event stays pending,
/// across restarts, until [`crate::node::Node::event_handled`].
///
/// Stored as version 1 + JSON; ids are hex strings and amounts satoshis there, exactly as
/// version 1 wrote them (golden fixtures keep that true).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Event {
    /// The funding is broadcast (funder) or signed (fundee) and the channel is durable.
    ChannelPending {
        /// Final channel id.
        #[serde(with = "hex_id")]
        channel_id: ChannelId,
        /// The id used before the funding was known.
        #[serde(with = "hex_id")]
        temporary_channel_id: ChannelId,
        /// The peer.
        counterparty_node_id: PublicKey,
        /// The funding outpoint.
        funding_txo: OutPoint,
    },
    /// Both sides sent `channel_ready`.
    ChannelReady {
        /// Channel id.
        #[serde(with = "hex_id")]
        channel_id: ChannelId,
        /// The peer.
        counterparty_node_id: PublicKey,
    },
    /// An open failed; nothing is left of it and its coins are unlocked.
    ChannelOpenFailed {
        /// The temporary id (`None` for an open the app's previous run left unfinished).
        #[serde(with = "hex_id_or_empty")]
        temporary_channel_id: Option<ChannelId>,
        /// The final id if it was known.
        #[serde(with = "opt_hex_id")]
        channel_id: Option<ChannelId>,
        /// The peer.
        counterparty_node_id: PublicKey,
        /// Why.
        reason: String,
    },
    /// A ready channel failed.
    ChannelFailed {
        /// Channel id.
        #[serde(with = "hex_id")]
        channel_id: ChannelId,
        /// The peer.
        counterparty_node_id: PublicKey,
        /// Why.
        reason: String,
    },
    /// The channel is closing (a `shutdown` exchange, our commitment broadcast, or the funding
    /// spent). Once per close; a cooperative close that ends as a force close names the new
    /// kind in a second one.
    ChannelClosing {
        /// Channel id.
        #[serde(with = "hex_id")]
        channel_id: ChannelId,
        /// The peer.
        counterparty_node_id: PublicKey,
        /// How.
        kind: CloseKind,
        /// Why.
        reason: String,
    },
    /// Every output of the close is resolved at 6 confirmations.
    ChannelClosed {
        /// Channel id.
        #[serde(with = "hex_id")]
        channel_id: ChannelId,
        /// The peer.
        counterparty_node_id: PublicKey,
        /// How it closed.
        kind: CloseKind,
        /// What came back to our wallet (after sweep fees).
        #[serde(rename = "claimed_sat", with = "bitcoin::amount::serde::as_sat")]
        claimed: Amount,
        /// The transaction that spent the funding.
        closing_txid: Txid,
    },
    /// A peer wants to open a channel to us (manual inbound policy): answer with
    /// [`crate::node::Node::accept_channel`] or [`crate::node::Node::reject_channel`]. Not
    /// answered before the peer disconnects, the request lapses.
    OpenChannelRequest {
        /// The peer's temporary id.
        #[serde(with = "hex_id")]
        temporary_channel_id: ChannelId,
        /// The peer.
        counterparty_node_id: PublicKey,
        /// Channel size.
        #[serde(rename = "funding_sat", with = "bitcoin::amount::serde::as_sat")]
        channel_value: Amount,
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
    pub fn decode(bytes: &[u8]) -> Result<Event, EventDecodeError> {
        match bytes.split_first() {
            Some((&EVENT_VERSION, rest)) => {
                serde_json::from_slice(rest).map_err(|e| EventDecodeError::Json(e.to_string()))
            }
            Some((v, _)) => Err(EventDecodeError::UnknownVersion(*v)),
            None => Err(EventDecodeError::Empty),
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
                channel_id: *channel_id,
                temporary_channel_id: *temporary_channel_id,
                counterparty_node_id: *counterparty_node_id,
                funding_txo: *funding_txo,
            },
            ChannelEvent::ChannelReady {
                counterparty_node_id,
                channel_id,
            } => Event::ChannelReady {
                channel_id: *channel_id,
                counterparty_node_id: *counterparty_node_id,
            },
            ChannelEvent::ChannelOpenFailed {
                counterparty_node_id,
                temporary_channel_id,
                channel_id,
                reason,
            } => Event::ChannelOpenFailed {
                temporary_channel_id: Some(*temporary_channel_id),
                channel_id: *channel_id,
                counterparty_node_id: *counterparty_node_id,
                reason: reason.clone(),
            },
            ChannelEvent::ChannelFailed {
                counterparty_node_id,
                channel_id,
                reason,
            } => Event::ChannelFailed {
                channel_id: *channel_id,
                counterparty_node_id: *counterparty_node_id,
                reason: reason.clone(),
            },
            ChannelEvent::ChannelClosing {
                counterparty_node_id,
                channel_id,
                kind,
                reason,
            } => Event::ChannelClosing {
                channel_id: *channel_id,
                counterparty_node_id: *counterparty_node_id,
                kind: (*kind).into(),
                reason: reason.clone(),
            },
            ChannelEvent::ChannelClosed {
                counterparty_node_id,
                channel_id,
                kind,
                claimed_sat,
                closing_txid,
            } => Event::ChannelClosed {
                channel_id: *channel_id,
                counterparty_node_id: *counterparty_node_id,
                kind: (*kind).into(),
                claimed: Amount::from_sat(*claimed_sat),
                closing_txid: *closing_txid,
            },
        }
    }
}

/// How a channel closed (the app's copy of the core's kind, stored in events by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CloseKind {
    /// Cooperative, we sent the first `shutdown`.
    CooperativeLocal,
    /// Cooperative, the peer sent the first `shutdown`.
    CooperativeRemote,
    /// We broadcast our commitment.
    LocalForce,
    /// The peer broadcast its current commitment.
    RemoteForce,
    /// The peer broadcast a commitment newer than ours (we lost data).
    RemoteFuture,
    /// The peer broadcast a revoked commitment (we took everything).
    Revoked,
    /// A spend we cannot place.
    Unknown,
}

impl From<ProtoCloseKind> for CloseKind {
    fn from(k: ProtoCloseKind) -> Self {
        match k {
            ProtoCloseKind::Cooperative {
                initiator: Initiator::Local,
            } => CloseKind::CooperativeLocal,
            ProtoCloseKind::Cooperative {
                initiator: Initiator::Remote,
            } => CloseKind::CooperativeRemote,
            ProtoCloseKind::LocalForce => CloseKind::LocalForce,
            ProtoCloseKind::RemoteForce => CloseKind::RemoteForce,
            ProtoCloseKind::RemoteFuture => CloseKind::RemoteFuture,
            ProtoCloseKind::Revoked => CloseKind::Revoked,
            ProtoCloseKind::Unknown => CloseKind::Unknown,
        }
    }
}

/// Why a stored event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventDecodeError {
    /// The record is empty.
    #[error("event: empty record")]
    Empty,
    /// Written by a newer version of Tern.
    #[error("event: unknown record version {0}")]
    UnknownVersion(u8),
    /// The JSON body does not parse as an event.
    #[error("event: {0}")]
    Json(String),
}

fn parse_id<E: serde::de::Error>(text: &str) -> Result<ChannelId, E> {
    text.parse().map_err(E::custom)
}

/// A channel id as 64 hex digits (version 1's form).
mod hex_id {
    use super::ChannelId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(id: &ChannelId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ChannelId, D::Error> {
        super::parse_id(&String::deserialize(d)?)
    }
}

/// An optional channel id as hex or JSON `null`.
mod opt_hex_id {
    use super::ChannelId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        id: &Option<ChannelId>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.collect_str(id),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<ChannelId>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| super::parse_id(&t))
            .transpose()
    }
}

/// An optional channel id as hex, or `""` for none (version 1 wrote an empty string for the
/// unknown temporary id of an interrupted open).
mod hex_id_or_empty {
    use super::ChannelId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        id: &Option<ChannelId>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.collect_str(id),
            None => s.serialize_str(""),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<ChannelId>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            Ok(None)
        } else {
            super::parse_id(&text).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant has a golden version-1 fixture (core/tests/golden_records.rs decodes
    /// them): this match is exhaustive, so a new variant fails to compile until it is named
    /// here with its fixture.
    #[test]
    fn every_variant_has_a_golden_fixture() {
        let id = ChannelId([1; 32]);
        let g = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
        let node: PublicKey = g.parse().expect("the generator point");
        let all = [
            Event::ChannelReady {
                channel_id: id,
                counterparty_node_id: node,
            },
            Event::PeerConnected { node_id: node },
        ];
        for e in all {
            let names: &[&str] = match e {
                Event::ChannelPending { .. } => &["channel_pending"],
                Event::ChannelReady { .. } => &["channel_ready"],
                Event::ChannelOpenFailed { .. } => {
                    &["channel_open_failed", "channel_open_failed_with_id"]
                }
                Event::ChannelFailed { .. } => &["channel_failed"],
                Event::ChannelClosing { .. } => &["channel_closing"],
                Event::ChannelClosed { .. } => &["channel_closed"],
                Event::OpenChannelRequest { .. } => &["open_channel_request"],
                Event::PeerConnected { .. } => &["peer_connected"],
                Event::PeerDisconnected { .. } => &["peer_disconnected"],
            };
            let _ = names;
        }
        for name in [
            "channel_pending",
            "channel_ready",
            "channel_open_failed",
            "channel_open_failed_with_id",
            "channel_failed",
            "channel_closing",
            "channel_closed",
            "open_channel_request",
            "peer_connected",
            "peer_disconnected",
        ] {
            let path = format!(
                "{}/tests/fixtures/records/event_v1_{name}.hex",
                env!("CARGO_MANIFEST_DIR")
            );
            assert!(std::path::Path::new(&path).exists(), "missing {path}");
        }
    }

    /// Version 1 wrote an empty string for the unknown temporary id of an open the previous
    /// run left unfinished (before ids were typed); it reads as `None` and writes back the same.
    #[test]
    fn an_empty_temporary_id_of_version_1_is_none() {
        let node = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
        let json = format!(
            "{{\"ChannelOpenFailed\":{{\"temporary_channel_id\":\"\",\"channel_id\":null,\
             \"counterparty_node_id\":\"{node}\",\"reason\":\"the app stopped before the \
             channel was durable\"}}}}"
        );
        let mut bytes = vec![1u8];
        bytes.extend(json.as_bytes());
        let event = Event::decode(&bytes).expect("decodes");
        match &event {
            Event::ChannelOpenFailed {
                temporary_channel_id,
                channel_id,
                ..
            } => assert_eq!((temporary_channel_id, channel_id), (&None, &None)),
            other => panic!("{other:?}"),
        }
        assert_eq!(event.encode(), bytes, "written back byte for byte");
    }
}
