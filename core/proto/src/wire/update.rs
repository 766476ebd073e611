//! The normal-operation messages of BOLT 2: commitment updates (`update_fee`,
//! `commitment_signed`, `revoke_and_ack`) and the HTLC updates (`update_add_htlc`,
//! `update_fulfill_htlc`, `update_fail_htlc`, `update_fail_malformed_htlc`), see
//! [BOLT 2: Normal Operation](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#normal-operation).
//!
//! The HTLC messages are decoded so that a peer's HTLC is answered with a `warning` (Tern does
//! not take HTLCs yet) instead of a decoding failure; their odd `attribution_data` TLVs are
//! skipped (it's OK to be odd).

use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;
use bitcoin::Txid;

use super::codec::{Reader, WireWrite};
use super::error::DecodeError;
use super::field::{U16Bytes, U16Counted, WireField};
use super::types::ChannelId;

/// The size of an onion routing packet (BOLT 4).
pub const ONION_PACKET_LEN: usize = 1366;

/// The wire form of the onion: [`ONION_PACKET_LEN`] bytes, held boxed.
#[derive(Debug)]
pub enum Onion {}

impl WireField for Onion {
    type Value = Box<[u8; ONION_PACKET_LEN]>;
    fn write(value: &Self::Value, out: &mut Vec<u8>) {
        out.put_bytes(&value[..]);
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self::Value, DecodeError> {
        Ok(Box::new(r.read_array::<ONION_PACKET_LEN>(field)?))
    }
}

/// `update_add_htlc` (128).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateAddHtlc {
    /// The channel.
    pub channel_id: ChannelId,
    /// The HTLC's id (counts up from 0 per sender).
    pub id: u64,
    /// Its amount.
    pub amount_msat: u64,
    /// The payment hash.
    pub payment_hash: [u8; 32],
    /// Absolute expiry height.
    pub cltv_expiry: u32,
    /// The onion (boxed: it would make every [`crate::wire::Message`] 1.4 kB).
    pub onion_routing_packet: Box<[u8; ONION_PACKET_LEN]>,
    /// TLV 0 `blinded_path`: the path key of a blinded route.
    pub blinded_path: Option<PublicKey>,
}

crate::wire_message! {
    UpdateAddHtlc = 128 "update_add_htlc" {
        channel_id: ChannelId,
        id: u64,
        amount_msat: u64,
        payment_hash: [u8; 32],
        cltv_expiry: u32,
        onion_routing_packet: Onion,
    }
    tlvs {
        0 => blinded_path: option PublicKey,
    }
}

/// `update_fulfill_htlc` (130).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFulfillHtlc {
    /// The channel.
    pub channel_id: ChannelId,
    /// The HTLC.
    pub id: u64,
    /// The preimage of its payment hash.
    pub payment_preimage: [u8; 32],
}

crate::wire_message! {
    UpdateFulfillHtlc = 130 "update_fulfill_htlc" {
        channel_id: ChannelId,
        id: u64,
        payment_preimage: [u8; 32],
    }
    tlvs {}
}

/// `update_fail_htlc` (131).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFailHtlc {
    /// The channel.
    pub channel_id: ChannelId,
    /// The HTLC.
    pub id: u64,
    /// The encrypted failure reason.
    pub reason: Vec<u8>,
}

crate::wire_message! {
    UpdateFailHtlc = 131 "update_fail_htlc" {
        channel_id: ChannelId,
        id: u64,
        reason: U16Bytes,
    }
    tlvs {}
}

/// `update_fail_malformed_htlc` (135).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFailMalformedHtlc {
    /// The channel.
    pub channel_id: ChannelId,
    /// The HTLC.
    pub id: u64,
    /// SHA256 of the onion that could not be parsed.
    pub sha256_of_onion: [u8; 32],
    /// The failure code (`BADONION` set).
    pub failure_code: u16,
}

crate::wire_message! {
    UpdateFailMalformedHtlc = 135 "update_fail_malformed_htlc" {
        channel_id: ChannelId,
        id: u64,
        sha256_of_onion: [u8; 32],
        failure_code: u16,
    }
    tlvs {}
}

/// `commitment_signed` (132): the sender's signature of the receiver's next commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentSigned {
    /// The channel.
    pub channel_id: ChannelId,
    /// The signature of the commitment transaction.
    pub signature: Signature,
    /// One signature per untrimmed HTLC output's second-stage transaction, in output order.
    pub htlc_signatures: Vec<Signature>,
    /// TLV 1 `funding_txid` (splicing: which funding the signature is for).
    pub funding_txid: Option<Txid>,
}

crate::wire_message! {
    CommitmentSigned = 132 "commitment_signed" {
        channel_id: ChannelId,
        signature: Signature,
        htlc_signatures: U16Counted<Signature>,
    }
    tlvs {
        1 => funding_txid: option Txid,
    }
}

/// `revoke_and_ack` (133): revokes the sender's previous commitment and gives its next point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeAndAck {
    /// The channel.
    pub channel_id: ChannelId,
    /// The secret of the commitment being revoked.
    pub per_commitment_secret: [u8; 32],
    /// The point of the sender's commitment after the next one.
    pub next_per_commitment_point: PublicKey,
}

crate::wire_message! {
    RevokeAndAck = 133 "revoke_and_ack" {
        channel_id: ChannelId,
        per_commitment_secret: [u8; 32],
        next_per_commitment_point: PublicKey,
    }
    tlvs {}
}

/// `update_fee` (134): the funder's new commitment feerate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateFee {
    /// The channel.
    pub channel_id: ChannelId,
    /// The new feerate, in satoshi per 1000 weight units.
    pub feerate_per_kw: u32,
}

crate::wire_message! {
    UpdateFee = 134 "update_fee" {
        channel_id: ChannelId,
        feerate_per_kw: u32,
    }
    tlvs {}
}

#[cfg(test)]
mod tests {
    //! Each message encoded here is read by LDK's own codec and written back by it, then read
    //! here again: both ends agree on every byte.
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::{Message as SecpMessage, Secp256k1, SecretKey};
    use lightning::util::ser::{LengthReadable, Writeable};

    use super::*;
    use crate::wire::{Message, WireMessage};

    fn key(n: u8) -> SecretKey {
        SecretKey::from_slice(&[n; 32]).expect("key")
    }

    fn sig(n: u8) -> Signature {
        Secp256k1::new().sign_ecdsa(&SecpMessage::from_digest([n; 32]), &key(n))
    }

    fn point(n: u8) -> PublicKey {
        PublicKey::from_secret_key(&Secp256k1::new(), &key(n))
    }

    /// Ours → LDK → ours, and LDK's bytes equal ours.
    fn through_ldk<M: WireMessage + Clone + PartialEq + std::fmt::Debug, L>(m: &M)
    where
        L: LengthReadable + Writeable,
    {
        let mut payload = Vec::new();
        m.encode_payload(&mut payload);
        let theirs = L::read_from_fixed_length_buffer(&mut &payload[..]).expect("LDK reads it");
        let back = theirs.encode();
        assert_eq!(back, payload, "{}: LDK writes the same bytes", M::NAME);
        assert_eq!(&M::decode_payload(&back).expect("decode"), m);
        let whole = m.encode();
        assert_eq!(u16::from_be_bytes([whole[0], whole[1]]), M::TYPE);
        assert!(!matches!(
            Message::decode(&whole),
            Ok(Message::Unknown { .. }) | Err(_)
        ));
    }

    #[test]
    fn update_messages_agree_with_ldk() {
        use lightning::ln::msgs;
        let channel_id = ChannelId([7; 32]);
        through_ldk::<_, msgs::UpdateFee>(&UpdateFee {
            channel_id,
            feerate_per_kw: 2_530,
        });
        for htlcs in [0u8, 1, 3] {
            through_ldk::<_, msgs::CommitmentSigned>(&CommitmentSigned {
                channel_id,
                signature: sig(1),
                htlc_signatures: (0..htlcs).map(|i| sig(i + 2)).collect(),
                funding_txid: None,
            });
        }
        through_ldk::<_, msgs::CommitmentSigned>(&CommitmentSigned {
            channel_id,
            signature: sig(1),
            htlc_signatures: Vec::new(),
            funding_txid: Some(Txid::from_byte_array([9; 32])),
        });
        through_ldk::<_, msgs::RevokeAndACK>(&RevokeAndAck {
            channel_id,
            per_commitment_secret: [3; 32],
            next_per_commitment_point: point(4),
        });
        through_ldk::<_, msgs::UpdateAddHTLC>(&UpdateAddHtlc {
            channel_id,
            id: 5,
            amount_msat: 1_000_000,
            payment_hash: [6; 32],
            cltv_expiry: 800_000,
            onion_routing_packet: {
                // LDK checks the onion's version byte and point.
                let mut onion = Box::new([0u8; ONION_PACKET_LEN]);
                onion[1..34].copy_from_slice(&point(8).serialize());
                onion
            },
            blinded_path: None,
        });
        through_ldk::<_, msgs::UpdateFulfillHTLC>(&UpdateFulfillHtlc {
            channel_id,
            id: 5,
            payment_preimage: [1; 32],
        });
        through_ldk::<_, msgs::UpdateFailHTLC>(&UpdateFailHtlc {
            channel_id,
            id: 5,
            reason: vec![0xab; 260],
        });
        through_ldk::<_, msgs::UpdateFailMalformedHTLC>(&UpdateFailMalformedHtlc {
            channel_id,
            id: 5,
            sha256_of_onion: [2; 32],
            failure_code: 0x8000 | 0x4000 | 5,
        });
    }

    #[test]
    fn truncated_update_messages_are_errors() {
        let m = CommitmentSigned {
            channel_id: ChannelId([7; 32]),
            signature: sig(1),
            htlc_signatures: vec![sig(2), sig(3)],
            funding_txid: None,
        };
        let bytes = Message::CommitmentSigned(m).encode();
        for n in 0..bytes.len() {
            assert!(Message::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
    }
}
