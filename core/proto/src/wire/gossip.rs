//! Gossip messages of BOLT 7 that a channel's peers exchange: `announcement_signatures`,
//! `channel_announcement` and `channel_update` (which a peer may send for an unannounced
//! channel right after `channel_ready`, as LDK does).

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;

use super::codec::{Reader, WireWrite};
use super::error::DecodeError;
use super::features::Features;
use super::message::WireMessage;
use super::tlv::TlvStream;
use super::types::{ChannelId, ShortChannelId};

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

impl WireMessage for AnnouncementSignatures {
    const TYPE: u16 = 259;
    const NAME: &'static str = "announcement_signatures";

    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.channel_id.0);
        out.put_u64(self.short_channel_id.0);
        out.put_signature(&self.node_signature);
        out.put_signature(&self.bitcoin_signature);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = ChannelId(r.read_array("channel_id")?);
        let short_channel_id = ShortChannelId(r.read_u64("short_channel_id")?);
        let node_signature = r.read_signature("node_signature")?;
        let bitcoin_signature = r.read_signature("bitcoin_signature")?;
        TlvStream::decode(r.read_rest(), |_| false)?;
        Ok(AnnouncementSignatures {
            channel_id,
            short_channel_id,
            node_signature,
            bitcoin_signature,
        })
    }
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
        self.encode_unsigned(&mut out);
        out
    }

    fn encode_unsigned(&self, out: &mut Vec<u8>) {
        out.put_u16_prefixed(&self.features);
        out.put_bytes(self.chain_hash.as_bytes());
        out.put_u64(self.short_channel_id.0);
        out.put_point(&self.node_id_1);
        out.put_point(&self.node_id_2);
        out.put_point(&self.bitcoin_key_1);
        out.put_point(&self.bitcoin_key_2);
        out.put_bytes(&self.excess_data);
    }
}

impl WireMessage for ChannelAnnouncement {
    const TYPE: u16 = 256;
    const NAME: &'static str = "channel_announcement";

    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.put_signature(&self.node_signature_1);
        out.put_signature(&self.node_signature_2);
        out.put_signature(&self.bitcoin_signature_1);
        out.put_signature(&self.bitcoin_signature_2);
        self.encode_unsigned(out);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        Ok(ChannelAnnouncement {
            node_signature_1: r.read_signature("node_signature_1")?,
            node_signature_2: r.read_signature("node_signature_2")?,
            bitcoin_signature_1: r.read_signature("bitcoin_signature_1")?,
            bitcoin_signature_2: r.read_signature("bitcoin_signature_2")?,
            features: r.read_u16_prefixed("features")?.to_vec(),
            chain_hash: ChainHash::from(r.read_array::<32>("chain_hash")?),
            short_channel_id: ShortChannelId(r.read_u64("short_channel_id")?),
            node_id_1: r.read_point("node_id_1")?,
            node_id_2: r.read_point("node_id_2")?,
            bitcoin_key_1: r.read_point("bitcoin_key_1")?,
            bitcoin_key_2: r.read_point("bitcoin_key_2")?,
            excess_data: r.read_rest().to_vec(),
        })
    }
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
        self.encode_unsigned(&mut out);
        out
    }

    fn encode_unsigned(&self, out: &mut Vec<u8>) {
        out.put_bytes(self.chain_hash.as_bytes());
        out.put_u64(self.short_channel_id.0);
        out.put_u32(self.timestamp);
        out.put_u8(self.message_flags);
        out.put_u8(self.channel_flags);
        out.put_u16(self.cltv_expiry_delta);
        out.put_u64(self.htlc_minimum_msat);
        out.put_u32(self.fee_base_msat);
        out.put_u32(self.fee_proportional_millionths);
        out.put_u64(self.htlc_maximum_msat);
        out.put_bytes(&self.excess_data);
    }
}

impl WireMessage for ChannelUpdate {
    const TYPE: u16 = 258;
    const NAME: &'static str = "channel_update";

    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.put_signature(&self.signature);
        self.encode_unsigned(out);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        Ok(ChannelUpdate {
            signature: r.read_signature("signature")?,
            chain_hash: ChainHash::from(r.read_array::<32>("chain_hash")?),
            short_channel_id: ShortChannelId(r.read_u64("short_channel_id")?),
            timestamp: r.read_u32("timestamp")?,
            message_flags: r.read_u8("message_flags")?,
            channel_flags: r.read_u8("channel_flags")?,
            cltv_expiry_delta: r.read_u16("cltv_expiry_delta")?,
            htlc_minimum_msat: r.read_u64("htlc_minimum_msat")?,
            fee_base_msat: r.read_u32("fee_base_msat")?,
            fee_proportional_millionths: r.read_u32("fee_proportional_millionths")?,
            htlc_maximum_msat: r.read_u64("htlc_maximum_msat")?,
            excess_data: r.read_rest().to_vec(),
        })
    }
}
