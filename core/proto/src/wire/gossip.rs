//! Gossip messages of BOLT 7 that a channel's peers exchange: `announcement_signatures`,
//! `channel_announcement` and `channel_update` (which a peer may send for an unannounced
//! channel right after `channel_ready`, as LDK does).

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;

use super::features::Features;
use super::field::{Bytes, U16Bytes};
use super::message::WireMessage;
use super::types::{ChannelId, ShortChannelId};

/// A compact signature's length: the signed part of a gossip message starts after them.
const SIGNATURE_LEN: usize = 64;

/// `announcement_signatures` ([BOLT 7: The `announcement_signatures` Message](https://github.com/lightning/bolts/blob/master/07-routing-gossip.md#the-announcement_signatures-message)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncementSignatures {
    /// The channel.
    pub channel_id: ChannelId,
    /// Its confirmed position.
    pub short_channel_id: ShortChannelId,
    /// Signature by the sender's node key.
    pub node_signature: Signature,
    /// Signature by the sender's funding key.
    pub bitcoin_signature: Signature,
}

crate::wire_message! {
    AnnouncementSignatures = 259 "announcement_signatures" {
        channel_id: ChannelId,
        short_channel_id: ShortChannelId,
        node_signature: Signature,
        bitcoin_signature: Signature,
    }
    tlvs {}
}

/// `channel_announcement` ([BOLT 7: The `channel_announcement` Message](https://github.com/lightning/bolts/blob/master/07-routing-gossip.md#the-channel_announcement-message)).
///
/// The signatures cover everything after them, including bytes this version does not
/// understand, so `features` is kept as sent and trailing bytes are kept in `excess_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelAnnouncement {
    /// Signature by `node_id_1`.
    pub node_signature_1: Signature,
    /// Signature by `node_id_2`.
    pub node_signature_2: Signature,
    /// Signature by `bitcoin_key_1`.
    pub bitcoin_signature_1: Signature,
    /// Signature by `bitcoin_key_2`.
    pub bitcoin_signature_2: Signature,
    /// The channel's feature bits, exactly as sent (at most 65535 bytes).
    pub features: Vec<u8>,
    /// The chain.
    pub chain_hash: ChainHash,
    /// The channel's position.
    pub short_channel_id: ShortChannelId,
    /// The lexicographically lesser node id.
    pub node_id_1: PublicKey,
    /// The other node id.
    pub node_id_2: PublicKey,
    /// `node_id_1`'s funding key.
    pub bitcoin_key_1: PublicKey,
    /// `node_id_2`'s funding key.
    pub bitcoin_key_2: PublicKey,
    /// Bytes after the defined fields (signed over, relayed unchanged).
    pub excess_data: Vec<u8>,
}

impl ChannelAnnouncement {
    /// The parsed feature bits.
    pub fn features(&self) -> Features {
        Features::from_be_bytes(&self.features)
    }

    /// The bytes the four signatures sign (double-SHA256 of these): everything after the
    /// signatures.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_payload(&mut out);
        out.split_off(4 * SIGNATURE_LEN)
    }
}

crate::wire_message! {
    ChannelAnnouncement = 256 "channel_announcement" {
        node_signature_1: Signature,
        node_signature_2: Signature,
        bitcoin_signature_1: Signature,
        bitcoin_signature_2: Signature,
        features: U16Bytes,
        chain_hash: ChainHash,
        short_channel_id: ShortChannelId,
        node_id_1: PublicKey,
        node_id_2: PublicKey,
        bitcoin_key_1: PublicKey,
        bitcoin_key_2: PublicKey,
        excess_data: Bytes,
    }
    tlvs {}
}

/// `channel_update` ([BOLT 7: The `channel_update` Message](https://github.com/lightning/bolts/blob/master/07-routing-gossip.md#the-channel_update-message)).
///
/// A peer sends one for each direction it forwards in, also directly to us for an unannounced
/// channel once it is ready. The signature covers everything after it, including bytes this
/// version does not understand, which are kept in `excess_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelUpdate {
    /// Signature by the originating node's key.
    pub signature: Signature,
    /// The chain.
    pub chain_hash: ChainHash,
    /// The channel (its real position, or an alias for an unannounced channel).
    pub short_channel_id: ShortChannelId,
    /// Orders updates of one direction.
    pub timestamp: u32,
    /// Bit 0 (`must_be_one`) once meant `htlc_maximum_msat` is present; bit 1 `dont_forward`.
    pub message_flags: u8,
    /// Bit 0: direction (0 from `node_id_1`); bit 1: disabled.
    pub channel_flags: u8,
    /// Blocks the forwarder subtracts from an HTLC's expiry.
    pub cltv_expiry_delta: u16,
    /// Smallest HTLC forwarded.
    pub htlc_minimum_msat: u64,
    /// Base forwarding fee.
    pub fee_base_msat: u32,
    /// Proportional forwarding fee.
    pub fee_proportional_millionths: u32,
    /// Largest HTLC forwarded.
    pub htlc_maximum_msat: u64,
    /// Bytes after the defined fields (signed over).
    pub excess_data: Vec<u8>,
}

impl ChannelUpdate {
    /// The bytes the signature signs (double-SHA256 of these): everything after it.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_payload(&mut out);
        out.split_off(SIGNATURE_LEN)
    }
}

crate::wire_message! {
    ChannelUpdate = 258 "channel_update" {
        signature: Signature,
        chain_hash: ChainHash,
        short_channel_id: ShortChannelId,
        timestamp: u32,
        message_flags: u8,
        channel_flags: u8,
        cltv_expiry_delta: u16,
        htlc_minimum_msat: u64,
        fee_base_msat: u32,
        fee_proportional_millionths: u32,
        htlc_maximum_msat: u64,
        excess_data: Bytes,
    }
    tlvs {}
}
