//! Channel establishment v1 messages of BOLT 2: `open_channel`, `accept_channel`,
//! `funding_created`, `funding_signed`, `channel_ready`.

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;
use bitcoin::Txid;

use super::features::ChannelType;
use super::field::Bytes;
use super::types::{ChannelId, ChannelKeys, ShortChannelId};

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

crate::wire_message! {
    OpenChannel = 32 "open_channel" {
        chain_hash: ChainHash,
        temporary_channel_id: ChannelId,
        funding_satoshis: u64,
        push_msat: u64,
        dust_limit_satoshis: u64,
        max_htlc_value_in_flight_msat: u64,
        channel_reserve_satoshis: u64,
        htlc_minimum_msat: u64,
        feerate_per_kw: u32,
        to_self_delay: u16,
        max_accepted_htlcs: u16,
        keys: ChannelKeys,
        channel_flags: u8,
    }
    tlvs {
        0 => upfront_shutdown_script: option Bytes,
        1 => channel_type: option ChannelType,
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

crate::wire_message! {
    AcceptChannel = 33 "accept_channel" {
        temporary_channel_id: ChannelId,
        dust_limit_satoshis: u64,
        max_htlc_value_in_flight_msat: u64,
        channel_reserve_satoshis: u64,
        htlc_minimum_msat: u64,
        minimum_depth: u32,
        to_self_delay: u16,
        max_accepted_htlcs: u16,
        keys: ChannelKeys,
    }
    tlvs {
        0 => upfront_shutdown_script: option Bytes,
        1 => channel_type: option ChannelType,
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

crate::wire_message! {
    FundingCreated = 34 "funding_created" {
        temporary_channel_id: ChannelId,
        funding_txid: Txid,
        funding_output_index: u16,
        signature: Signature,
    }
    tlvs {}
}

/// `funding_signed` ([BOLT 2: The `funding_signed` Message](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#the-funding_signed-message)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundingSigned {
    /// The real `channel_id`, derived from the funding outpoint.
    pub channel_id: ChannelId,
    /// The fundee's signature on the funder's first commitment.
    pub signature: Signature,
}

crate::wire_message! {
    FundingSigned = 35 "funding_signed" {
        channel_id: ChannelId,
        signature: Signature,
    }
    tlvs {}
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

crate::wire_message! {
    ChannelReady = 36 "channel_ready" {
        channel_id: ChannelId,
        second_per_commitment_point: PublicKey,
    }
    tlvs {
        1 => short_channel_id_alias: option ShortChannelId,
    }
}
