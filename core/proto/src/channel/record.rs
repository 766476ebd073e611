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
//! | 57 | the transaction that spent the funding output (opt; odd, consensus encoding) | | | |
//!
//! Field 55 marks a [`ChannelState::FailedUnfunded`] channel, stored with state `Failed`: it
//! is odd so that builds before it read such a record as the `Failed` channel they made of
//! it, and the version stays 1 (the golden fixtures in `core/tests/fixtures/records` decode
//! unchanged). Field 57 is odd for the same reason: a build before it reads the record as
//! the `Failed` channel it is, without the spend.

use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::constants::ChainHash;
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, OutPoint, Transaction, Txid};

use super::fields::Fields;
use super::{Channel, ChannelState, Confirmation, FundingInfo, Role, SideParams};
use crate::wire::codec::{Reader, WireWrite};
use crate::wire::tlv::TlvStream;
use crate::wire::{ChannelAnnouncement, ChannelId, ChannelKeys, DecodeError, WireMessage};

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

mod t {
    pub const ROLE: u64 = 0;
    pub const STATE: u64 = 2;
    pub const NODE: u64 = 4;
    pub const CHAIN: u64 = 6;
    pub const TEMP_ID: u64 = 8;
    pub const KEYS_INDEX: u64 = 10;
    pub const FUNDING_SAT: u64 = 12;
    pub const PUSH: u64 = 14;
    pub const ANNOUNCE: u64 = 16;
    pub const COMMIT_FEERATE: u64 = 18;
    pub const FUNDING_FEERATE: u64 = 20;
    pub const CREATED: u64 = 22;
    pub const MIN_DEPTH: u64 = 24;
    pub const OURS: u64 = 26;
    pub const THEIRS: u64 = 28;
    pub const OUTPOINT: u64 = 30;
    pub const FUNDING_TX: u64 = 32;
    pub const THEIR_SIG: u64 = 34;
    pub const CONFIRMATION: u64 = 36;
    pub const READY_SENT: u64 = 38;
    pub const THEIR_POINT: u64 = 40;
    pub const FAILURE: u64 = 42;
    pub const ANN_SENT: u64 = 44;
    pub const ANN_THEIRS: u64 = 46;
    pub const ANNOUNCEMENT: u64 = 48;
    pub const ANN_ANSWERED: u64 = 50;
    pub const WAITING: u64 = 53;
    pub const UNFUNDED: u64 = 55;
    pub const SPENT: u64 = 57;
    pub const ALL: [u64; 29] = [
        WAITING,
        UNFUNDED,
        SPENT,
        ANN_SENT,
        ANN_THEIRS,
        ANNOUNCEMENT,
        ANN_ANSWERED,
        ROLE,
        STATE,
        NODE,
        CHAIN,
        TEMP_ID,
        KEYS_INDEX,
        FUNDING_SAT,
        PUSH,
        ANNOUNCE,
        COMMIT_FEERATE,
        FUNDING_FEERATE,
        CREATED,
        MIN_DEPTH,
        OURS,
        THEIRS,
        OUTPOINT,
        FUNDING_TX,
        THEIR_SIG,
        CONFIRMATION,
        READY_SENT,
        THEIR_POINT,
        FAILURE,
    ];

    pub mod side {
        pub const DUST: u64 = 0;
        pub const IN_FLIGHT: u64 = 2;
        pub const RESERVE: u64 = 4;
        pub const HTLC_MIN: u64 = 6;
        pub const DELAY: u64 = 8;
        pub const MAX_HTLCS: u64 = 10;
        pub const KEYS: u64 = 12;
        pub const SHUTDOWN: u64 = 14;
        pub const ALL: [u64; 8] = [
            DUST, IN_FLIGHT, RESERVE, HTLC_MIN, DELAY, MAX_HTLCS, KEYS, SHUTDOWN,
        ];
    }
}

fn be<T: AsRef<[u8]>>(v: T) -> Vec<u8> {
    v.as_ref().to_vec()
}

fn encode_side(p: &SideParams) -> Vec<u8> {
    use t::side::*;
    let mut s = TlvStream::default();
    s.push(DUST, be(p.dust_limit_sat.to_be_bytes()));
    s.push(IN_FLIGHT, be(p.max_htlc_value_in_flight_msat.to_be_bytes()));
    s.push(RESERVE, be(p.channel_reserve_sat.to_be_bytes()));
    s.push(HTLC_MIN, be(p.htlc_minimum_msat.to_be_bytes()));
    s.push(DELAY, be(p.to_self_delay.to_be_bytes()));
    s.push(MAX_HTLCS, be(p.max_accepted_htlcs.to_be_bytes()));
    let mut keys = Vec::with_capacity(ChannelKeys::LEN);
    p.keys.encode(&mut keys);
    s.push(KEYS, keys);
    if let Some(script) = &p.upfront_shutdown_script {
        s.push(SHUTDOWN, script.clone());
    }
    s.encode()
}

/// Reads fixed-layout values out of one TLV record, requiring it to be consumed exactly.
fn field<T>(
    stream: &TlvStream,
    tlv_type: u64,
    name: &'static str,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Option<T>, RecordError> {
    let Some(bytes) = stream.get(tlv_type) else {
        return Ok(None);
    };
    let mut r = Reader::new(bytes);
    let v = read(&mut r)?;
    r.finish(name)?;
    Ok(Some(v))
}

fn required<T>(v: Option<T>, name: &'static str) -> Result<T, RecordError> {
    v.ok_or(RecordError::Missing(name))
}

fn decode_side(bytes: &[u8]) -> Result<SideParams, RecordError> {
    use t::side::*;
    let s = TlvStream::decode(bytes, |ty| ALL.contains(&ty))?;
    let keys = field(&s, KEYS, "keys", ChannelKeys::decode)?;
    Ok(SideParams {
        dust_limit_sat: required(
            field(&s, DUST, "dust", |r| r.read_u64("dust"))?,
            "dust_limit",
        )?,
        max_htlc_value_in_flight_msat: required(
            field(&s, IN_FLIGHT, "in_flight", |r| r.read_u64("in_flight"))?,
            "max_htlc_value_in_flight",
        )?,
        channel_reserve_sat: required(
            field(&s, RESERVE, "reserve", |r| r.read_u64("reserve"))?,
            "channel_reserve",
        )?,
        htlc_minimum_msat: required(
            field(&s, HTLC_MIN, "htlc_min", |r| r.read_u64("htlc_min"))?,
            "htlc_minimum",
        )?,
        to_self_delay: required(
            field(&s, DELAY, "delay", |r| r.read_u16("delay"))?,
            "to_self_delay",
        )?,
        max_accepted_htlcs: required(
            field(&s, MAX_HTLCS, "max_htlcs", |r| r.read_u16("max_htlcs"))?,
            "max_accepted_htlcs",
        )?,
        keys: required(keys, "keys")?,
        upfront_shutdown_script: s.get(SHUTDOWN).map(<[u8]>::to_vec),
    })
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
        let c = Fields::of(&self.channel);
        let mut s = TlvStream::default();
        s.push(t::ROLE, vec![u8::from(c.role == Role::Fundee)]);
        s.push(t::STATE, vec![c.state.to_u8()]);
        s.push(t::NODE, be(c.counterparty_node_id.serialize()));
        s.push(t::CHAIN, be(c.chain_hash.as_bytes()));
        s.push(t::TEMP_ID, be(c.temporary_channel_id.0));
        s.push(t::KEYS_INDEX, be(c.keys_index.to_be_bytes()));
        s.push(t::FUNDING_SAT, be(c.funding_sat.to_be_bytes()));
        s.push(t::PUSH, be(c.push_msat.to_be_bytes()));
        s.push(t::ANNOUNCE, vec![u8::from(c.announce)]);
        s.push(
            t::COMMIT_FEERATE,
            be(c.commitment_feerate_per_kw.to_be_bytes()),
        );
        s.push(
            t::FUNDING_FEERATE,
            be(c.funding_feerate_per_kw.to_be_bytes()),
        );
        s.push(t::CREATED, be(c.created_height.to_be_bytes()));
        if let Some(d) = c.minimum_depth {
            s.push(t::MIN_DEPTH, be(d.to_be_bytes()));
        }
        s.push(t::OURS, encode_side(&c.ours));
        if let Some(theirs) = &c.theirs {
            s.push(t::THEIRS, encode_side(theirs));
        }
        if let Some(f) = &c.funding {
            let mut v = be(f.outpoint.txid.as_byte_array());
            v.put_u32(f.outpoint.vout);
            s.push(t::OUTPOINT, v);
            if let Some(tx) = &f.tx {
                s.push(t::FUNDING_TX, serialize(tx));
            }
        }
        if let Some(sig) = &c.their_commitment_sig {
            s.push(t::THEIR_SIG, be(sig.serialize_compact()));
        }
        if let Some(conf) = &c.confirmation {
            let mut v = Vec::with_capacity(40);
            v.put_u32(conf.block_height);
            v.put_bytes(conf.block_hash.as_byte_array());
            v.put_u32(conf.tx_index);
            s.push(t::CONFIRMATION, v);
        }
        s.push(t::READY_SENT, vec![u8::from(c.channel_ready_sent)]);
        if let Some(p) = &c.their_second_point {
            s.push(t::THEIR_POINT, be(p.serialize()));
        }
        if let Some(reason) = &c.failure_reason {
            s.push(t::FAILURE, reason.as_bytes().to_vec());
        }
        s.push(t::ANN_SENT, vec![u8::from(c.announcement_sigs_sent)]);
        if let Some((node, bitcoin)) = &c.their_announcement_sigs {
            let mut v = be(node.serialize_compact());
            v.put_bytes(&bitcoin.serialize_compact());
            s.push(t::ANN_THEIRS, v);
        }
        if let Some(a) = &c.announcement {
            let mut v = Vec::new();
            a.encode_payload(&mut v);
            s.push(t::ANNOUNCEMENT, v);
        }
        s.push(t::ANN_ANSWERED, vec![u8::from(c.announcement_answered)]);
        if let Some((state, since)) = c.waiting_since {
            let mut v = vec![state.to_u8()];
            v.put_u64(since);
            s.push(t::WAITING, v);
        }
        if c.state == ChannelState::FailedUnfunded {
            s.push(t::UNFUNDED, Vec::new());
        }
        if let Some(tx) = &c.funding_spend {
            s.push(t::SPENT, serialize(tx));
        }
        let mut out = vec![RECORD_VERSION];
        s.encode_into(&mut out);
        out
    }

    /// Reads a record written by [`ChannelRecord::encode`] (any version this code knows).
    pub fn decode(bytes: &[u8]) -> Result<ChannelRecord, RecordError> {
        let (&version, rest) = bytes.split_first().ok_or(RecordError::Empty)?;
        if version != RECORD_VERSION {
            return Err(RecordError::UnknownVersion(version));
        }
        let s = TlvStream::decode(rest, |ty| t::ALL.contains(&ty))?;
        let flag = |ty, name| -> Result<Option<bool>, RecordError> {
            match field(&s, ty, name, |r| r.read_u8(name))? {
                None => Ok(None),
                Some(0) => Ok(Some(false)),
                Some(1) => Ok(Some(true)),
                Some(_) => Err(RecordError::Invalid(name)),
            }
        };
        let role = if required(flag(t::ROLE, "role")?, "role")? {
            Role::Fundee
        } else {
            Role::Funder
        };
        let state = ChannelState::from_u8(required(
            field(&s, t::STATE, "state", |r| r.read_u8("state"))?,
            "state",
        )?)
        .ok_or(RecordError::Invalid("state"))?;
        let u32_of = |ty, name| field(&s, ty, name, |r| r.read_u32(name));
        let u64_of = |ty, name| field(&s, ty, name, |r| r.read_u64(name));
        let funding = match field(&s, t::OUTPOINT, "outpoint", |r| {
            Ok(OutPoint {
                txid: Txid::from_byte_array(r.read_array("txid")?),
                vout: r.read_u32("vout")?,
            })
        })? {
            None => None,
            Some(outpoint) => {
                if u16::try_from(outpoint.vout).is_err() {
                    return Err(RecordError::Invalid("outpoint"));
                }
                let tx = match s.get(t::FUNDING_TX) {
                    None => None,
                    Some(b) => Some(
                        deserialize::<Transaction>(b)
                            .map_err(|_| RecordError::Invalid("funding_tx"))?,
                    ),
                };
                Some(FundingInfo { outpoint, tx })
            }
        };
        let confirmation = field(&s, t::CONFIRMATION, "confirmation", |r| {
            Ok(Confirmation {
                block_height: r.read_u32("block_height")?,
                block_hash: BlockHash::from_byte_array(r.read_array("block_hash")?),
                tx_index: r.read_u32("tx_index")?,
            })
        })?;
        let failure_reason = match s.get(t::FAILURE) {
            None => None,
            Some(b) => Some(
                String::from_utf8(b.to_vec())
                    .map_err(|_| RecordError::Invalid("failure_reason"))?,
            ),
        };
        let funding_spend = match s.get(t::SPENT) {
            None => None,
            Some(b) => Some(
                deserialize::<Transaction>(b).map_err(|_| RecordError::Invalid("funding_spend"))?,
            ),
        };
        let state = match (s.get(t::UNFUNDED), state) {
            (None, state) => state,
            (Some([]), ChannelState::Failed) => ChannelState::FailedUnfunded,
            (Some(_), _) => return Err(RecordError::Invalid("failed_unfunded")),
        };
        let fields = Fields {
            role,
            state,
            counterparty_node_id: required(
                field(&s, t::NODE, "node", |r| r.read_point("node"))?,
                "counterparty_node_id",
            )?,
            chain_hash: ChainHash::from(required(
                field(&s, t::CHAIN, "chain", |r| r.read_array::<32>("chain"))?,
                "chain_hash",
            )?),
            temporary_channel_id: ChannelId(required(
                field(&s, t::TEMP_ID, "temp_id", |r| r.read_array::<32>("temp_id"))?,
                "temporary_channel_id",
            )?),
            keys_index: required(u32_of(t::KEYS_INDEX, "keys_index")?, "keys_index")?,
            funding_sat: required(u64_of(t::FUNDING_SAT, "funding_sat")?, "funding_sat")?,
            push_msat: required(u64_of(t::PUSH, "push_msat")?, "push_msat")?,
            announce: required(flag(t::ANNOUNCE, "announce")?, "announce")?,
            commitment_feerate_per_kw: required(
                u32_of(t::COMMIT_FEERATE, "commitment_feerate")?,
                "commitment_feerate",
            )?,
            funding_feerate_per_kw: required(
                u32_of(t::FUNDING_FEERATE, "funding_feerate")?,
                "funding_feerate",
            )?,
            created_height: required(u32_of(t::CREATED, "created_height")?, "created_height")?,
            minimum_depth: u32_of(t::MIN_DEPTH, "minimum_depth")?,
            ours: decode_side(s.get(t::OURS).ok_or(RecordError::Missing("our params"))?)?,
            theirs: s.get(t::THEIRS).map(decode_side).transpose()?,
            funding,
            their_commitment_sig: field(&s, t::THEIR_SIG, "their_sig", |r| {
                r.read_signature("their_sig")
            })?,
            confirmation,
            channel_ready_sent: required(flag(t::READY_SENT, "ready_sent")?, "ready_sent")?,
            their_second_point: field(&s, t::THEIR_POINT, "their_point", |r| {
                r.read_point("their_point")
            })?,
            announcement_sigs_sent: flag(t::ANN_SENT, "announcement_sent")?.unwrap_or(false),
            their_announcement_sigs: field(&s, t::ANN_THEIRS, "their_announcement", |r| {
                Ok((
                    r.read_signature("node_signature")?,
                    r.read_signature("bitcoin_signature")?,
                ))
            })?,
            announcement: s
                .get(t::ANNOUNCEMENT)
                .map(ChannelAnnouncement::decode_payload)
                .transpose()?,
            announcement_answered: flag(t::ANN_ANSWERED, "announcement_answered")?.unwrap_or(false),
            failure_reason,
            funding_spend,
            waiting_since: field(&s, t::WAITING, "waiting", |r| {
                Ok((r.read_u8("waiting_state")?, r.read_u64("waiting_since")?))
            })?
            .map(|(state, since)| {
                ChannelState::from_u8(state)
                    .map(|st| (st, since))
                    .ok_or(RecordError::Invalid("waiting_state"))
            })
            .transpose()?,
        };
        Ok(ChannelRecord::new(fields.into_channel()?))
    }
}
