//! The persisted form of a [`Channel`]: a version byte then a TLV stream (the wire codec's
//! [`TlvStream`]), so later versions can add odd (optional) fields that older code skips.
//!
//! Version 1 field types (all even: required to understand when present):
//!
//! | type | field | | type | field |
//! |---|---|---|---|---|
//! | 0 | role | | 22 | created_height |
//! | 2 | state | | 24 | minimum_depth (opt) |
//! | 4 | counterparty_node_id | | 26 | our params (nested TLV) |
//! | 6 | chain_hash | | 28 | their params (opt, nested TLV) |
//! | 8 | temporary_channel_id | | 30 | funding outpoint (opt) |
//! | 10 | keys_index | | 32 | funding tx (opt, consensus encoding) |
//! | 12 | funding_sat | | 34 | their commitment signature (opt) |
//! | 14 | push_msat | | 36 | confirmation (opt) |
//! | 16 | announce | | 38 | channel_ready sent |
//! | 18 | commitment feerate | | 40 | their second per-commitment point (opt) |
//! | 20 | funding feerate | | 42 | failure reason (opt, UTF-8) |
//! | 44 | announcement_signatures sent | | 46 | their announcement signatures (opt) |
//! | 48 | channel_announcement (opt, wire payload) | | 50 | announcement answered on this connection |
//! | 53 | transient wait: state, first tick (opt; odd, transient records are never stored) | | 55 | failed before the funding was seen (opt; odd, empty) |
//! | 57 | the transaction that spent the funding output (opt; odd, consensus encoding) | | 58 | the commitment format's `channel_type` (opt; EVEN, only when not static_remotekey) |
//! | 60 | the commitments once updated (opt) | | 62–69 | the cooperative close (`shutdown.rs`) |
//! | 70 | close kind (Closing/Closed only) | | 72 | the transaction spending the funding |
//! | 74 | its confirmation height (opt) | | 76 | the tracked outputs and their sweeps |
//! | 78 | our commitment's CPFP child (opt, `resolve_cpfp.rs`) | | | |
//!
//! Fields 70–78 (`resolve_record.rs`, `resolve_cpfp.rs`) exist only in records of state Closing (11) or Closed
//! (12), which older builds refuse by their state byte; they are even, and the failure reason
//! (42) holds the closing reason.
//!
//! Field 55 marks a [`ChannelState::FailedUnfunded`] channel, stored with state `Failed`: it
//! is odd so that builds before it read such a record as the `Failed` channel they made of
//! it, and the version stays 1 (the golden fixtures in `core/tests/fixtures/records` decode
//! unchanged). Field 57 is odd for the same reason: a build before it reads the record as
//! the `Failed` channel it is, without the spend. Field 58 is even on purpose: it is written
//! only for an anchor channel (`option_anchors`), and a build before it, which would read
//! such a record as static_remotekey and build (and broadcast) the wrong commitment, must
//! refuse the record instead; every static_remotekey record, the golden fixtures included,
//! is unchanged. Field 58 holding static_remotekey is refused (it is never written, so a
//! record reads back to its exact bytes).
//!
//! The layout is declared once, with [`wire_message!`](crate::wire_message), on the flat field
//! set `Fields` (in `fields.rs`, next to its struct): encoding is the version byte then that
//! layout's write, decoding its read then `Fields::into_channel`, which checks that the
//! fields make a phase. The forms below are the record's own value encodings (a state byte, a
//! consensus-encoded transaction, ...); the nested parameter stream of records 26/28 is the
//! layout of `SideParams` itself.

use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::{BlockHash, OutPoint, Transaction, Txid};

use super::fields::Fields;
use super::validate::wire_channel_type;
use super::{Channel, ChannelState, Confirmation, Role, SideParams};
use crate::bolt3;
use crate::wire::codec::{Reader, WireWrite};
use crate::wire::{Bytes, ChannelId, ChannelKeys, ChannelType, DecodeError, WireField};

/// The record format version written by this code.
pub const RECORD_VERSION: u8 = 1;

/// Why bytes could not be read back as a channel record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// No bytes at all.
    #[error("empty channel record")]
    Empty,
    /// A version this code does not read.
    #[error("unknown channel record version {0}")]
    UnknownVersion(u8),
    /// A field is malformed.
    #[error("malformed channel record: {0}")]
    Decode(#[from] DecodeError),
    /// A required field is absent.
    #[error("channel record lacks {0}")]
    Missing(&'static str),
    /// A field holds a value out of its range.
    #[error("channel record field {0} is invalid")]
    Invalid(&'static str),
}

/// A channel snapshot to store durably ([`super::Action::Commit`]). The store keys it by
/// [`ChannelRecord::counterparty_node_id`] and [`ChannelRecord::temporary_channel_id`] (or
/// the final channel id) and saves [`ChannelRecord::encode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRecord {
    channel: Box<Channel>,
}

// One side's parameters: the nested TLV stream of records 26 (ours) and 28 (theirs).
crate::wire_message! {
    struct SideParams {}
    tlvs {
        0 => dust_limit_sat: required u64,
        2 => max_htlc_value_in_flight_msat: required u64,
        4 => channel_reserve_sat: required u64,
        6 => htlc_minimum_msat: required u64,
        8 => to_self_delay: required u16,
        10 => max_accepted_htlcs: required u16,
        12 => keys: required ChannelKeys,
        14 => upfront_shutdown_script: option Bytes,
    }
}

// Record 30: the funding outpoint, txid (internal byte order) then a `u32` index.
crate::wire_message! {
    struct OutPoint {
        txid: Txid,
        vout: u32,
    }
}

// Record 36.
crate::wire_message! {
    struct Confirmation {
        block_height: u32,
        block_hash: BlockHash,
        tx_index: u32,
    }
}

fn invalid(field: &'static str, reason: &'static str) -> DecodeError {
    DecodeError::InvalidValue { field, reason }
}

/// Record 0: the role as a flag, 1 for the fundee.
#[derive(Debug)]
pub(super) enum FundeeFlag {}

impl WireField for FundeeFlag {
    type Value = Role;
    fn write(value: &Role, out: &mut Vec<u8>) {
        bool::write(&(*value == Role::Fundee), out);
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Role, DecodeError> {
        Ok(if bool::read(r, field)? {
            Role::Fundee
        } else {
            Role::Funder
        })
    }
}

/// A [`ChannelState`] as its byte (a `FailedUnfunded` channel is stored `Failed` plus
/// record 55).
#[derive(Debug)]
pub(super) enum StateByte {}

impl WireField for StateByte {
    type Value = ChannelState;
    fn write(value: &ChannelState, out: &mut Vec<u8>) {
        out.put_u8(value.to_u8());
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<ChannelState, DecodeError> {
        ChannelState::from_u8(r.read_u8(field)?).ok_or(invalid(field, "unknown channel state"))
    }
}

/// A transaction in its consensus encoding, filling the record (32 and 57).
#[derive(Debug)]
pub(super) enum ConsensusTx {}

impl WireField for ConsensusTx {
    type Value = Transaction;
    fn write(value: &Transaction, out: &mut Vec<u8>) {
        out.put_bytes(&serialize(value));
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Transaction, DecodeError> {
        deserialize(r.read_rest()).map_err(|_| invalid(field, "not a transaction"))
    }
}

/// UTF-8 text filling the record (42).
#[derive(Debug)]
pub(super) enum Utf8 {}

impl WireField for Utf8 {
    type Value = String;
    fn write(value: &String, out: &mut Vec<u8>) {
        out.put_bytes(value.as_bytes());
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<String, DecodeError> {
        String::from_utf8(r.read_rest().to_vec()).map_err(|_| invalid(field, "not UTF-8"))
    }
}

/// The node then bitcoin signature of `announcement_signatures` (46).
#[derive(Debug)]
pub(super) enum SignaturePair {}

impl WireField for SignaturePair {
    type Value = (Signature, Signature);
    fn write((node, bitcoin): &(Signature, Signature), out: &mut Vec<u8>) {
        out.put_signature(node);
        out.put_signature(bitcoin);
    }
    fn read(r: &mut Reader<'_>, _field: &'static str) -> Result<Self::Value, DecodeError> {
        Ok((
            r.read_signature("node_signature")?,
            r.read_signature("bitcoin_signature")?,
        ))
    }
}

/// A transient wait (53): the state it is in, then since when.
#[derive(Debug)]
pub(super) enum Waiting {}

impl WireField for Waiting {
    type Value = (ChannelState, u64);
    fn write((state, since): &(ChannelState, u64), out: &mut Vec<u8>) {
        StateByte::write(state, out);
        out.put_u64(*since);
    }
    fn read(r: &mut Reader<'_>, _field: &'static str) -> Result<Self::Value, DecodeError> {
        Ok((
            StateByte::read(r, "waiting_state")?,
            r.read_u64("waiting_since")?,
        ))
    }
}

/// The commitment format (58): the `channel_type` feature bits of an anchor channel. Only
/// anchors is stored here (static_remotekey is the field's absence).
#[derive(Debug)]
pub(super) enum CommitmentType {}

impl WireField for CommitmentType {
    type Value = bolt3::ChannelType;
    fn write(value: &bolt3::ChannelType, out: &mut Vec<u8>) {
        ChannelType::write(&wire_channel_type(*value), out);
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<bolt3::ChannelType, DecodeError> {
        if ChannelType::read(r, field)? == ChannelType::anchors() {
            Ok(bolt3::ChannelType::ANCHORS)
        } else {
            Err(invalid(field, "not an anchor channel_type"))
        }
    }
}

/// A record whose presence is the information; its value must be empty (55).
#[derive(Debug)]
pub(super) enum Marker {}

impl WireField for Marker {
    type Value = ();
    fn write(_value: &(), _out: &mut Vec<u8>) {}
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<(), DecodeError> {
        if r.read_rest().is_empty() {
            Ok(())
        } else {
            Err(invalid(field, "a marker record is empty"))
        }
    }
}

/// The name a [`RecordError`] gives a layout field (the names records have always been
/// reported under, where they differ from the struct field's).
fn stored_name(field: &'static str) -> &'static str {
    match field {
        "commitment_feerate_per_kw" => "commitment_feerate",
        "funding_feerate_per_kw" => "funding_feerate",
        "ours" => "our params",
        "channel_ready_sent" => "ready_sent",
        "announcement_sigs_sent" => "announcement_sent",
        "dust_limit_sat" => "dust_limit",
        "max_htlc_value_in_flight_msat" => "max_htlc_value_in_flight",
        "channel_reserve_sat" => "channel_reserve",
        "htlc_minimum_msat" => "htlc_minimum",
        other => other,
    }
}

/// The fields whose out-of-range value (a flag neither 0 nor 1, an unknown state, a
/// transaction or text that does not parse, a non-empty marker) is [`RecordError::Invalid`]
/// rather than a malformed record.
const RANGED: &[&str] = &[
    "role",
    "state",
    "announce",
    "funding_tx",
    "channel_ready_sent",
    "failure_reason",
    "announcement_sigs_sent",
    "announcement_answered",
    "waiting_state",
    "failed_unfunded",
    "funding_spend",
    "channel_type",
    "close_kind",
    "closing_tx",
    "tracked",
];

fn record_error(e: DecodeError) -> RecordError {
    match e {
        DecodeError::MissingTlv { field, .. } => RecordError::Missing(stored_name(field)),
        DecodeError::InvalidValue { field, .. } if RANGED.contains(&field) => {
            RecordError::Invalid(stored_name(field))
        }
        e => RecordError::Decode(e),
    }
}

impl ChannelRecord {
    pub(crate) fn new(channel: Channel) -> Self {
        ChannelRecord {
            channel: Box::new(channel),
        }
    }

    /// The channel as recorded.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Rebuilds the channel.
    pub fn into_channel(self) -> Channel {
        *self.channel
    }

    /// The peer.
    pub fn counterparty_node_id(&self) -> bitcoin::secp256k1::PublicKey {
        self.channel.counterparty_node_id()
    }

    /// The temporary channel id (stable for the channel's whole life).
    pub fn temporary_channel_id(&self) -> ChannelId {
        self.channel.temporary_channel_id()
    }

    /// The final channel id, once known.
    pub fn channel_id(&self) -> Option<ChannelId> {
        self.channel.channel_id()
    }

    /// The recorded state.
    pub fn state(&self) -> ChannelState {
        self.channel.state()
    }

    /// The versioned encoding: `RECORD_VERSION` then a TLV stream.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![RECORD_VERSION];
        Fields::write(&Fields::of(&self.channel), &mut out);
        out
    }

    /// Reads a record written by [`ChannelRecord::encode`] (any version this code knows).
    pub fn decode(bytes: &[u8]) -> Result<ChannelRecord, RecordError> {
        let (&version, rest) = bytes.split_first().ok_or(RecordError::Empty)?;
        if version != RECORD_VERSION {
            return Err(RecordError::UnknownVersion(version));
        }
        let fields =
            Fields::read(&mut Reader::new(rest), "channel record").map_err(record_error)?;
        Ok(ChannelRecord::new(fields.into_channel()?))
    }
}
