//! Channel establishment v1 messages of BOLT 2: `open_channel`, `accept_channel`,
//! `funding_created`, `funding_signed`, `channel_ready`.

use bitcoin::constants::ChainHash;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;
use bitcoin::Txid;

use super::codec::{Reader, WireWrite};
use super::error::DecodeError;
use super::features::ChannelType;
use super::message::WireMessage;
use super::tlv::{fixed_value, TlvStream};
use super::types::{ChannelId, ShortChannelId};

const TLV_UPFRONT_SHUTDOWN: u64 = 0;
const TLV_CHANNEL_TYPE: u64 = 1;

/// The basepoints and first per-commitment point a side sends in `open_channel` and
/// `accept_channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelKeys {
    /// `funding_pubkey`.
    pub funding_pubkey: PublicKey,
    /// `revocation_basepoint`.
    pub revocation_basepoint: PublicKey,
    /// `payment_basepoint`.
    pub payment_basepoint: PublicKey,
    /// `delayed_payment_basepoint`.
    pub delayed_payment_basepoint: PublicKey,
    /// `htlc_basepoint`.
    pub htlc_basepoint: PublicKey,
    /// `first_per_commitment_point`.
    pub first_per_commitment_point: PublicKey,
}

impl ChannelKeys {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_point(&self.funding_pubkey);
        out.put_point(&self.revocation_basepoint);
        out.put_point(&self.payment_basepoint);
        out.put_point(&self.delayed_payment_basepoint);
        out.put_point(&self.htlc_basepoint);
        out.put_point(&self.first_per_commitment_point);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ChannelKeys {
            funding_pubkey: r.read_point("funding_pubkey")?,
            revocation_basepoint: r.read_point("revocation_basepoint")?,
            payment_basepoint: r.read_point("payment_basepoint")?,
            delayed_payment_basepoint: r.read_point("delayed_payment_basepoint")?,
            htlc_basepoint: r.read_point("htlc_basepoint")?,
            first_per_commitment_point: r.read_point("first_per_commitment_point")?,
        })
    }
}

/// The TLVs shared by `open_channel` and `accept_channel`.
fn encode_open_tlvs(
    upfront_shutdown_script: &Option<Vec<u8>>,
    channel_type: &Option<ChannelType>,
    out: &mut Vec<u8>,
) {
    let mut tlvs = TlvStream::default();
    if let Some(script) = upfront_shutdown_script {
        tlvs.push(TLV_UPFRONT_SHUTDOWN, script.clone());
    }
    if let Some(ct) = channel_type {
        tlvs.push(TLV_CHANNEL_TYPE, ct.to_be_bytes());
    }
    tlvs.encode_into(out);
}

type OpenTlvs = (Option<Vec<u8>>, Option<ChannelType>);

fn decode_open_tlvs(rest: &[u8]) -> Result<OpenTlvs, DecodeError> {
    let tlvs = TlvStream::decode(rest, |t| t == TLV_UPFRONT_SHUTDOWN || t == TLV_CHANNEL_TYPE)?;
    Ok((
        tlvs.get(TLV_UPFRONT_SHUTDOWN).map(<[u8]>::to_vec),
        tlvs.get(TLV_CHANNEL_TYPE).map(ChannelType::from_be_bytes),
    ))
}

/// `open_channel` ([BOLT 2: The `open_channel` Message](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#the-open_channel-message)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenChannel {
    /// The chain the channel lives on.
    pub chain_hash: ChainHash,
    /// The id used until the funding transaction is known.
    pub temporary_channel_id: ChannelId,
    /// The funder's contribution.
    pub funding_satoshis: u64,
    /// Amount given to the fundee unconditionally.
    pub push_msat: u64,
    /// Outputs below this are not created on the funder's commitment.
    pub dust_limit_satoshis: u64,
    /// Cap on the value of outstanding HTLCs offered to the funder.
    pub max_htlc_value_in_flight_msat: u64,
    /// The reserve the fundee must keep.
    pub channel_reserve_satoshis: u64,
    /// Smallest HTLC the funder accepts.
    pub htlc_minimum_msat: u64,
    /// Initial commitment feerate.
    pub feerate_per_kw: u32,
    /// Delay the fundee must wait on its own outputs.
    pub to_self_delay: u16,
    /// Cap on HTLCs offered to the funder.
    pub max_accepted_htlcs: u16,
    /// The funder's keys.
    pub keys: ChannelKeys,
    /// Bit 0: `announce_channel`.
    pub channel_flags: u8,
    /// TLV 0 `upfront_shutdown_script` (may be present and empty).
    pub upfront_shutdown_script: Option<Vec<u8>>,
    /// TLV 1 `channel_type`.
    pub channel_type: Option<ChannelType>,
}

impl WireMessage for OpenChannel {
    const TYPE: u16 = 32;
    const NAME: &'static str = "open_channel";

    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.put_bytes(self.chain_hash.as_bytes());
        out.put_bytes(&self.temporary_channel_id.0);
        out.put_u64(self.funding_satoshis);
        out.put_u64(self.push_msat);
        out.put_u64(self.dust_limit_satoshis);
        out.put_u64(self.max_htlc_value_in_flight_msat);
        out.put_u64(self.channel_reserve_satoshis);
        out.put_u64(self.htlc_minimum_msat);
        out.put_u32(self.feerate_per_kw);
        out.put_u16(self.to_self_delay);
        out.put_u16(self.max_accepted_htlcs);
        self.keys.encode(out);
        out.put_u8(self.channel_flags);
        encode_open_tlvs(&self.upfront_shutdown_script, &self.channel_type, out);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let chain_hash = ChainHash::from(r.read_array::<32>("chain_hash")?);
        let temporary_channel_id = ChannelId(r.read_array("temporary_channel_id")?);
        let funding_satoshis = r.read_u64("funding_satoshis")?;
        let push_msat = r.read_u64("push_msat")?;
        let dust_limit_satoshis = r.read_u64("dust_limit_satoshis")?;
        let max_htlc_value_in_flight_msat = r.read_u64("max_htlc_value_in_flight_msat")?;
        let channel_reserve_satoshis = r.read_u64("channel_reserve_satoshis")?;
        let htlc_minimum_msat = r.read_u64("htlc_minimum_msat")?;
        let feerate_per_kw = r.read_u32("feerate_per_kw")?;
        let to_self_delay = r.read_u16("to_self_delay")?;
        let max_accepted_htlcs = r.read_u16("max_accepted_htlcs")?;
        let keys = ChannelKeys::decode(&mut r)?;
        let channel_flags = r.read_u8("channel_flags")?;
        let (upfront_shutdown_script, channel_type) = decode_open_tlvs(r.read_rest())?;
        Ok(OpenChannel {
            chain_hash,
            temporary_channel_id,
            funding_satoshis,
            push_msat,
            dust_limit_satoshis,
            max_htlc_value_in_flight_msat,
            channel_reserve_satoshis,
            htlc_minimum_msat,
            feerate_per_kw,
            to_self_delay,
            max_accepted_htlcs,
            keys,
            channel_flags,
            upfront_shutdown_script,
            channel_type,
        })
    }
}

/// `accept_channel` ([BOLT 2: The `accept_channel` Message](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#the-accept_channel-message)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptChannel {
    /// The `temporary_channel_id` of the `open_channel` being accepted.
    pub temporary_channel_id: ChannelId,
    /// Outputs below this are not created on the fundee's commitment.
    pub dust_limit_satoshis: u64,
    /// Cap on the value of outstanding HTLCs offered to the fundee.
    pub max_htlc_value_in_flight_msat: u64,
    /// The reserve the funder must keep.
    pub channel_reserve_satoshis: u64,
    /// Smallest HTLC the fundee accepts.
    pub htlc_minimum_msat: u64,
    /// Confirmations the fundee waits for before `channel_ready`.
    pub minimum_depth: u32,
    /// Delay the funder must wait on its own outputs.
    pub to_self_delay: u16,
    /// Cap on HTLCs offered to the fundee.
    pub max_accepted_htlcs: u16,
    /// The fundee's keys.
    pub keys: ChannelKeys,
    /// TLV 0 `upfront_shutdown_script` (may be present and empty).
    pub upfront_shutdown_script: Option<Vec<u8>>,
    /// TLV 1 `channel_type`.
    pub channel_type: Option<ChannelType>,
}

impl WireMessage for AcceptChannel {
    const TYPE: u16 = 33;
    const NAME: &'static str = "accept_channel";

    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.temporary_channel_id.0);
        out.put_u64(self.dust_limit_satoshis);
        out.put_u64(self.max_htlc_value_in_flight_msat);
        out.put_u64(self.channel_reserve_satoshis);
        out.put_u64(self.htlc_minimum_msat);
        out.put_u32(self.minimum_depth);
        out.put_u16(self.to_self_delay);
        out.put_u16(self.max_accepted_htlcs);
        self.keys.encode(out);
        encode_open_tlvs(&self.upfront_shutdown_script, &self.channel_type, out);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let temporary_channel_id = ChannelId(r.read_array("temporary_channel_id")?);
        let dust_limit_satoshis = r.read_u64("dust_limit_satoshis")?;
        let max_htlc_value_in_flight_msat = r.read_u64("max_htlc_value_in_flight_msat")?;
        let channel_reserve_satoshis = r.read_u64("channel_reserve_satoshis")?;
        let htlc_minimum_msat = r.read_u64("htlc_minimum_msat")?;
        let minimum_depth = r.read_u32("minimum_depth")?;
        let to_self_delay = r.read_u16("to_self_delay")?;
        let max_accepted_htlcs = r.read_u16("max_accepted_htlcs")?;
        let keys = ChannelKeys::decode(&mut r)?;
        let (upfront_shutdown_script, channel_type) = decode_open_tlvs(r.read_rest())?;
        Ok(AcceptChannel {
            temporary_channel_id,
            dust_limit_satoshis,
            max_htlc_value_in_flight_msat,
            channel_reserve_satoshis,
            htlc_minimum_msat,
            minimum_depth,
            to_self_delay,
            max_accepted_htlcs,
            keys,
            upfront_shutdown_script,
            channel_type,
        })
    }
}

/// `funding_created` ([BOLT 2: The `funding_created` Message](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#the-funding_created-message)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundingCreated {
    /// The `temporary_channel_id` of the channel being funded.
    pub temporary_channel_id: ChannelId,
    /// The funding transaction id (sent in internal byte order).
    pub funding_txid: Txid,
    /// The funding output's index.
    pub funding_output_index: u16,
    /// The funder's signature on the fundee's first commitment.
    pub signature: Signature,
}

impl WireMessage for FundingCreated {
    const TYPE: u16 = 34;
    const NAME: &'static str = "funding_created";

    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.temporary_channel_id.0);
        out.put_bytes(self.funding_txid.as_byte_array());
        out.put_u16(self.funding_output_index);
        out.put_signature(&self.signature);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let temporary_channel_id = ChannelId(r.read_array("temporary_channel_id")?);
        let funding_txid = Txid::from_byte_array(r.read_array("funding_txid")?);
        let funding_output_index = r.read_u16("funding_output_index")?;
        let signature = r.read_signature("signature")?;
        TlvStream::decode(r.read_rest(), |_| false)?;
        Ok(FundingCreated {
            temporary_channel_id,
            funding_txid,
            funding_output_index,
            signature,
        })
    }
}

/// `funding_signed` ([BOLT 2: The `funding_signed` Message](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#the-funding_signed-message)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundingSigned {
    /// The real `channel_id`, derived from the funding outpoint.
    pub channel_id: ChannelId,
    /// The fundee's signature on the funder's first commitment.
    pub signature: Signature,
}

impl WireMessage for FundingSigned {
    const TYPE: u16 = 35;
    const NAME: &'static str = "funding_signed";

    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.channel_id.0);
        out.put_signature(&self.signature);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = ChannelId(r.read_array("channel_id")?);
        let signature = r.read_signature("signature")?;
        TlvStream::decode(r.read_rest(), |_| false)?;
        Ok(FundingSigned {
            channel_id,
            signature,
        })
    }
}

/// `channel_ready` ([BOLT 2: The `channel_ready` Message](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#the-channel_ready-message)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReady {
    /// The channel.
    pub channel_id: ChannelId,
    /// The per-commitment point for commitment number 1.
    pub second_per_commitment_point: PublicKey,
    /// TLV 1 `short_channel_id`: an alias for routing (required with `option_scid_alias`).
    pub short_channel_id_alias: Option<ShortChannelId>,
}

impl ChannelReady {
    const TLV_ALIAS: u64 = 1;
}

impl WireMessage for ChannelReady {
    const TYPE: u16 = 36;
    const NAME: &'static str = "channel_ready";

    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.put_bytes(&self.channel_id.0);
        out.put_point(&self.second_per_commitment_point);
        let mut tlvs = TlvStream::default();
        if let Some(alias) = self.short_channel_id_alias {
            tlvs.push(Self::TLV_ALIAS, alias.0.to_be_bytes().to_vec());
        }
        tlvs.encode_into(out);
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let channel_id = ChannelId(r.read_array("channel_id")?);
        let second_per_commitment_point = r.read_point("second_per_commitment_point")?;
        let tlvs = TlvStream::decode(r.read_rest(), |t| t == Self::TLV_ALIAS)?;
        let short_channel_id_alias = match tlvs.get(Self::TLV_ALIAS) {
            Some(v) => Some(ShortChannelId(u64::from_be_bytes(fixed_value(
                Self::TLV_ALIAS,
                v,
            )?))),
            None => None,
        };
        Ok(ChannelReady {
            channel_id,
            second_per_commitment_point,
            short_channel_id_alias,
        })
    }
}
