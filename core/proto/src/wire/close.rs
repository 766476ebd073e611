//! Channel close messages of BOLT 2: `shutdown` and `closing_signed`.

use bitcoin::secp256k1::ecdsa::Signature;

use super::codec::{Reader, WireWrite};
use super::error::DecodeError;
use super::message::WireMessage;
use super::tlv::{fixed_value, TlvStream};
use super::types::ChannelId;

/// `shutdown` ([BOLT 2: Closing Initiation: `shutdown`](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#closing-initiation-shutdown)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shutdown {
    /// The channel to close.
    pub channel_id: ChannelId,
    /// Where the sender wants to be paid (at most 65535 bytes are sent).
    pub scriptpubkey: Vec<u8>,
}

impl WireMessage for Shutdown {
    const TYPE: u16 = 38;
    const NAME: &'static str = "shutdown";

    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.channel_id.0);
        out.put_u16_prefixed(&self.scriptpubkey);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = ChannelId(r.read_array("channel_id")?);
        let scriptpubkey = r.read_u16_prefixed("scriptpubkey")?.to_vec();
        TlvStream::decode(r.read_rest(), |_| false)?;
        Ok(Shutdown {
            channel_id,
            scriptpubkey,
        })
    }
}

/// The `fee_range` TLV of `closing_signed`: the fees the sender accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRange {
    /// Lowest acceptable fee.
    pub min_fee_satoshis: u64,
    /// Highest acceptable fee.
    pub max_fee_satoshis: u64,
}

/// `closing_signed` ([BOLT 2: Closing Negotiation: `closing_signed`](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#legacy-closing-negotiation-closing_signed)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosingSigned {
    /// The channel being closed.
    pub channel_id: ChannelId,
    /// The proposed closing fee.
    pub fee_satoshis: u64,
    /// The sender's signature on the closing transaction with that fee.
    pub signature: Signature,
    /// TLV 1 `fee_range`.
    pub fee_range: Option<FeeRange>,
}

impl ClosingSigned {
    const TLV_FEE_RANGE: u64 = 1;
}

impl WireMessage for ClosingSigned {
    const TYPE: u16 = 39;
    const NAME: &'static str = "closing_signed";

    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.channel_id.0);
        out.put_u64(self.fee_satoshis);
        out.put_signature(&self.signature);
        let mut tlvs = TlvStream::default();
        if let Some(range) = self.fee_range {
            let mut v = Vec::with_capacity(16);
            v.put_u64(range.min_fee_satoshis);
            v.put_u64(range.max_fee_satoshis);
            tlvs.push(Self::TLV_FEE_RANGE, v);
        }
        tlvs.encode_into(out);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = ChannelId(r.read_array("channel_id")?);
        let fee_satoshis = r.read_u64("fee_satoshis")?;
        let signature = r.read_signature("signature")?;
        let tlvs = TlvStream::decode(r.read_rest(), |t| t == Self::TLV_FEE_RANGE)?;
        let fee_range = match tlvs.get(Self::TLV_FEE_RANGE) {
            Some(v) => {
                let bytes: [u8; 16] = fixed_value(Self::TLV_FEE_RANGE, v)?;
                let mut r = Reader::new(&bytes);
                Some(FeeRange {
                    min_fee_satoshis: r.read_u64("min_fee_satoshis")?,
                    max_fee_satoshis: r.read_u64("max_fee_satoshis")?,
                })
            }
            None => None,
        };
        Ok(ClosingSigned {
            channel_id,
            fee_satoshis,
            signature,
            fee_range,
        })
    }
}
