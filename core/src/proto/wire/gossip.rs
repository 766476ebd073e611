//! Gossip messages of BOLT 7 that a channel's peers exchange: `announcement_signatures` and
//! `channel_announcement`.

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
