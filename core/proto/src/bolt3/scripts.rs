//! BOLT 3 output scripts.
//!
//! See [BOLT 3 "Transactions"](https://github.com/lightning/bolts/blob/master/03-transactions.md#transactions).

use bitcoin::hashes::{hash160, ripemd160, sha256, Hash};
use bitcoin::opcodes::all::*;
use bitcoin::script::Builder;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{CompressedPublicKey, ScriptBuf};

use super::ChannelType;

/// The funding output's witness script: `2 <pubkey1> <pubkey2> 2 OP_CHECKMULTISIG` with the
/// keys sorted lexicographically (compressed serialization).
pub fn funding_witness_script(a: &PublicKey, b: &PublicKey) -> ScriptBuf {
    let (first, second) = sorted_pair(a, b);
    Builder::new()
        .push_int(2)
        .push_slice(first.serialize())
        .push_slice(second.serialize())
        .push_int(2)
        .push_opcode(OP_CHECKMULTISIG)
        .into_script()
}

/// The two keys in lexicographic order of their compressed serialization.
pub(crate) fn sorted_pair<'a>(
    a: &'a PublicKey,
    b: &'a PublicKey,
) -> (&'a PublicKey, &'a PublicKey) {
    if a.serialize() <= b.serialize() {
        (a, b)
    } else {
        (b, a)
    }
}

/// The funding output's `scriptPubKey` (P2WSH of [`funding_witness_script`]).
pub fn funding_script_pubkey(a: &PublicKey, b: &PublicKey) -> ScriptBuf {
    ScriptBuf::new_p2wsh(&funding_witness_script(a, b).wscript_hash())
}

/// The witness script of a `to_local` output, also used for the output of HTLC-success and
/// HTLC-timeout transactions.
pub fn to_local_witness_script(
    revocation_pubkey: &PublicKey,
    to_self_delay: u16,
    delayed_pubkey: &PublicKey,
) -> ScriptBuf {
    Builder::new()
        .push_opcode(OP_IF)
        .push_slice(revocation_pubkey.serialize())
        .push_opcode(OP_ELSE)
        .push_int(i64::from(to_self_delay))
        .push_opcode(OP_CSV)
        .push_opcode(OP_DROP)
        .push_slice(delayed_pubkey.serialize())
        .push_opcode(OP_ENDIF)
        .push_opcode(OP_CHECKSIG)
        .into_script()
}

/// P2WPKH `scriptPubKey` of a key.
pub fn p2wpkh_script_pubkey(pubkey: &PublicKey) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&CompressedPublicKey(*pubkey).wpubkey_hash())
}

/// The witness script of an anchors `to_remote` output:
/// `<remotepubkey> OP_CHECKSIGVERIFY 1 OP_CHECKSEQUENCEVERIFY`.
pub fn to_remote_anchors_witness_script(remote_pubkey: &PublicKey) -> ScriptBuf {
    Builder::new()
        .push_slice(remote_pubkey.serialize())
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_int(1)
        .push_opcode(OP_CSV)
        .into_script()
}

/// The `to_remote` output's `scriptPubKey` and, when P2WSH, its witness script.
pub fn to_remote_script(
    remote_pubkey: &PublicKey,
    channel_type: ChannelType,
) -> (ScriptBuf, Option<ScriptBuf>) {
    if channel_type.anchors {
        let ws = to_remote_anchors_witness_script(remote_pubkey);
        (ScriptBuf::new_p2wsh(&ws.wscript_hash()), Some(ws))
    } else {
        (p2wpkh_script_pubkey(remote_pubkey), None)
    }
}

/// The witness script of an anchor output (`option_anchors`):
/// `<funding_pubkey> OP_CHECKSIG OP_IFDUP OP_NOTIF OP_16 OP_CHECKSEQUENCEVERIFY OP_ENDIF`.
pub fn anchor_witness_script(funding_pubkey: &PublicKey) -> ScriptBuf {
    Builder::new()
        .push_slice(funding_pubkey.serialize())
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_IFDUP)
        .push_opcode(OP_NOTIF)
        .push_int(16)
        .push_opcode(OP_CSV)
        .push_opcode(OP_ENDIF)
        .into_script()
}

fn revocation_hash(revocation_pubkey: &PublicKey) -> [u8; 20] {
    hash160::Hash::hash(&revocation_pubkey.serialize()).to_byte_array()
}

fn payment_hash160(payment_hash: &sha256::Hash) -> [u8; 20] {
    ripemd160::Hash::hash(payment_hash.as_byte_array()).to_byte_array()
}

/// The witness script of an offered HTLC output (offered by the commitment's owner).
pub fn offered_htlc_witness_script(
    revocation_pubkey: &PublicKey,
    local_htlc_pubkey: &PublicKey,
    remote_htlc_pubkey: &PublicKey,
    payment_hash: &sha256::Hash,
    channel_type: ChannelType,
) -> ScriptBuf {
    let builder = Builder::new()
        .push_opcode(OP_DUP)
        .push_opcode(OP_HASH160)
        .push_slice(revocation_hash(revocation_pubkey))
        .push_opcode(OP_EQUAL)
        .push_opcode(OP_IF)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ELSE)
        .push_slice(remote_htlc_pubkey.serialize())
        .push_opcode(OP_SWAP)
        .push_opcode(OP_SIZE)
        .push_int(32)
        .push_opcode(OP_EQUAL)
        .push_opcode(OP_NOTIF)
        .push_opcode(OP_DROP)
        .push_int(2)
        .push_opcode(OP_SWAP)
        .push_slice(local_htlc_pubkey.serialize())
        .push_int(2)
        .push_opcode(OP_CHECKMULTISIG)
        .push_opcode(OP_ELSE)
        .push_opcode(OP_HASH160)
        .push_slice(payment_hash160(payment_hash))
        .push_opcode(OP_EQUALVERIFY)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ENDIF);
    let builder = if channel_type.anchors {
        builder.push_int(1).push_opcode(OP_CSV).push_opcode(OP_DROP)
    } else {
        builder
    };
    builder.push_opcode(OP_ENDIF).into_script()
}

/// The witness script of a received HTLC output (received by the commitment's owner).
pub fn received_htlc_witness_script(
    revocation_pubkey: &PublicKey,
    local_htlc_pubkey: &PublicKey,
    remote_htlc_pubkey: &PublicKey,
    payment_hash: &sha256::Hash,
    cltv_expiry: u32,
    channel_type: ChannelType,
) -> ScriptBuf {
    let builder = Builder::new()
        .push_opcode(OP_DUP)
        .push_opcode(OP_HASH160)
        .push_slice(revocation_hash(revocation_pubkey))
        .push_opcode(OP_EQUAL)
        .push_opcode(OP_IF)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ELSE)
        .push_slice(remote_htlc_pubkey.serialize())
        .push_opcode(OP_SWAP)
        .push_opcode(OP_SIZE)
        .push_int(32)
        .push_opcode(OP_EQUAL)
        .push_opcode(OP_IF)
        .push_opcode(OP_HASH160)
        .push_slice(payment_hash160(payment_hash))
        .push_opcode(OP_EQUALVERIFY)
        .push_int(2)
        .push_opcode(OP_SWAP)
        .push_slice(local_htlc_pubkey.serialize())
        .push_int(2)
        .push_opcode(OP_CHECKMULTISIG)
        .push_opcode(OP_ELSE)
        .push_opcode(OP_DROP)
        .push_int(i64::from(cltv_expiry))
        .push_opcode(OP_CLTV)
        .push_opcode(OP_DROP)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ENDIF);
    let builder = if channel_type.anchors {
        builder.push_int(1).push_opcode(OP_CSV).push_opcode(OP_DROP)
    } else {
        builder
    };
    builder.push_opcode(OP_ENDIF).into_script()
}
