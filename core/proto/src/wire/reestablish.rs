//! `channel_reestablish` (BOLT 2 message retransmission).

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::PublicKey;
use bitcoin::Txid;

use super::codec::{Reader, WireWrite};
use super::error::DecodeError;
use super::message::WireMessage;
use super::tlv::{fixed_value, TlvStream};
use super::types::ChannelId;

/// A funding txid with a retransmission bit field, as carried by the `next_funding` and
/// `my_current_funding_locked` TLVs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FundingRetransmit {
    /// The funding (or splice) transaction id, internal byte order.
    pub txid: Txid,
    /// `retransmit_flags` (bit 0: `commitment_signed` for `next_funding`,
    /// `announcement_signatures` for `my_current_funding_locked`).
    pub retransmit_flags: u8,
}

impl FundingRetransmit {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(33);
        v.put_bytes(self.txid.as_byte_array());
        v.put_u8(self.retransmit_flags);
        v
    }

    fn decode(tlv_type: u64, value: &[u8]) -> Result<Self, DecodeError> {
        let bytes: [u8; 33] = fixed_value(tlv_type, value)?;
        let mut r = Reader::new(&bytes);
        Ok(FundingRetransmit {
            txid: Txid::from_byte_array(r.read_array("txid")?),
            retransmit_flags: r.read_u8("retransmit_flags")?,
        })
    }
}

/// `channel_reestablish` ([BOLT 2: Message Retransmission](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#message-retransmission)).
///
/// The data-loss-protect fields (`your_last_per_commitment_secret`,
/// `my_current_per_commitment_point`) are mandatory in the current spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReestablish {
    /// The channel.
    pub channel_id: ChannelId,
    /// The commitment number of the next `commitment_signed` the sender expects.
    pub next_commitment_number: u64,
    /// The commitment number of the next `revoke_and_ack` the sender expects.
    pub next_revocation_number: u64,
    /// The last per-commitment secret received from the peer (zeros if none).
    pub your_last_per_commitment_secret: [u8; 32],
    /// The sender's current per-commitment point.
    pub my_current_per_commitment_point: PublicKey,
    /// TLV 1 `next_funding`: an interactive funding (or splice) in progress.
    pub next_funding: Option<FundingRetransmit>,
    /// TLV 5 `my_current_funding_locked`: the latest funding the sender has locked.
    pub my_current_funding_locked: Option<FundingRetransmit>,
}

impl ChannelReestablish {
    const TLV_NEXT_FUNDING: u64 = 1;
    const TLV_FUNDING_LOCKED: u64 = 5;
}

impl WireMessage for ChannelReestablish {
    const TYPE: u16 = 136;
    const NAME: &'static str = "channel_reestablish";

    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.channel_id.0);
        out.put_u64(self.next_commitment_number);
        out.put_u64(self.next_revocation_number);
        out.put_bytes(&self.your_last_per_commitment_secret);
        out.put_point(&self.my_current_per_commitment_point);
        let mut tlvs = TlvStream::default();
        if let Some(f) = &self.next_funding {
            tlvs.push(Self::TLV_NEXT_FUNDING, f.encode());
        }
        if let Some(f) = &self.my_current_funding_locked {
            tlvs.push(Self::TLV_FUNDING_LOCKED, f.encode());
        }
        tlvs.encode_into(out);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = ChannelId(r.read_array("channel_id")?);
        let next_commitment_number = r.read_u64("next_commitment_number")?;
        let next_revocation_number = r.read_u64("next_revocation_number")?;
        let your_last_per_commitment_secret = r.read_array("your_last_per_commitment_secret")?;
        let my_current_per_commitment_point = r.read_point("my_current_per_commitment_point")?;
        let tlvs = TlvStream::decode(r.read_rest(), |t| {
            t == Self::TLV_NEXT_FUNDING || t == Self::TLV_FUNDING_LOCKED
        })?;
        let next_funding = tlvs
            .get(Self::TLV_NEXT_FUNDING)
            .map(|v| FundingRetransmit::decode(Self::TLV_NEXT_FUNDING, v))
            .transpose()?;
        let my_current_funding_locked = tlvs
            .get(Self::TLV_FUNDING_LOCKED)
            .map(|v| FundingRetransmit::decode(Self::TLV_FUNDING_LOCKED, v))
            .transpose()?;
        Ok(ChannelReestablish {
            channel_id,
            next_commitment_number,
            next_revocation_number,
            your_last_per_commitment_secret,
            my_current_per_commitment_point,
            next_funding,
            my_current_funding_locked,
        })
    }
}
