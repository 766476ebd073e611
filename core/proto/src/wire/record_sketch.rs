//! The channel record, version 1 (`channel/record.rs`), declared with
//! [`wire_message!`](crate::wire_message) and checked byte for byte against every golden
//! fixture: the macro describes the stored format as exactly as the peer messages.
//!
//! Test-only. `record.rs` belongs to the channel layer; it can adopt these declarations
//! (a flat `ChannelV1` layout struct, converted to and from the channel's phase types with
//! their validation) and drop its hand-written `encode`/`decode`/`encode_side`/`decode_side`.

use std::path::PathBuf;

use bitcoin::constants::ChainHash;
use bitcoin::hex::FromHex;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{BlockHash, Txid};

use crate::channel::ChannelRecord;
use crate::wire::{
    Bytes, ChannelAnnouncement, ChannelId, ChannelKeys, DecodeError, Reader, WireField,
};

/// One side's parameters: a nested TLV stream (record types 26 and 28).
#[derive(Debug, PartialEq, Eq)]
struct SideV1 {
    dust_limit_sat: u64,
    max_htlc_value_in_flight_msat: u64,
    channel_reserve_sat: u64,
    htlc_minimum_msat: u64,
    to_self_delay: u16,
    max_accepted_htlcs: u16,
    keys: ChannelKeys,
    upfront_shutdown_script: Option<Vec<u8>>,
}

crate::wire_message! {
    struct SideV1 {}
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

#[derive(Debug, PartialEq, Eq)]
struct OutPointV1 {
    txid: Txid,
    vout: u32,
}

crate::wire_message! {
    struct OutPointV1 {
        txid: Txid,
        vout: u32,
    }
}

#[derive(Debug, PartialEq, Eq)]
struct ConfirmationV1 {
    block_height: u32,
    block_hash: BlockHash,
    tx_index: u32,
}

crate::wire_message! {
    struct ConfirmationV1 {
        block_height: u32,
        block_hash: BlockHash,
        tx_index: u32,
    }
}

#[derive(Debug, PartialEq, Eq)]
struct SignaturePair {
    node_signature: Signature,
    bitcoin_signature: Signature,
}

crate::wire_message! {
    struct SignaturePair {
        node_signature: Signature,
        bitcoin_signature: Signature,
    }
}

#[derive(Debug, PartialEq, Eq)]
struct WaitingV1 {
    state: u8,
    since: u64,
}

crate::wire_message! {
    struct WaitingV1 {
        state: u8,
        since: u64,
    }
}

/// The whole record after its version byte.
#[derive(Debug, PartialEq, Eq)]
struct ChannelV1 {
    fundee: bool,
    state: u8,
    counterparty_node_id: PublicKey,
    chain_hash: ChainHash,
    temporary_channel_id: ChannelId,
    keys_index: u32,
    funding_sat: u64,
    push_msat: u64,
    announce: bool,
    commitment_feerate_per_kw: u32,
    funding_feerate_per_kw: u32,
    created_height: u32,
    minimum_depth: Option<u32>,
    ours: SideV1,
    theirs: Option<SideV1>,
    funding_outpoint: Option<OutPointV1>,
    funding_tx: Option<Vec<u8>>,
    their_commitment_sig: Option<Signature>,
    confirmation: Option<ConfirmationV1>,
    channel_ready_sent: bool,
    their_second_point: Option<PublicKey>,
    failure_reason: Option<Vec<u8>>,
    announcement_sigs_sent: Option<bool>,
    their_announcement_sigs: Option<SignaturePair>,
    announcement: Option<ChannelAnnouncement>,
    announcement_answered: Option<bool>,
    waiting_since: Option<WaitingV1>,
    failed_unfunded: Option<()>,
}

crate::wire_message! {
    struct ChannelV1 {}
    tlvs {
        0 => fundee: required bool,
        2 => state: required u8,
        4 => counterparty_node_id: required PublicKey,
        6 => chain_hash: required ChainHash,
        8 => temporary_channel_id: required ChannelId,
        10 => keys_index: required u32,
        12 => funding_sat: required u64,
        14 => push_msat: required u64,
        16 => announce: required bool,
        18 => commitment_feerate_per_kw: required u32,
        20 => funding_feerate_per_kw: required u32,
        22 => created_height: required u32,
        24 => minimum_depth: option u32,
        26 => ours: required SideV1,
        28 => theirs: option SideV1,
        30 => funding_outpoint: option OutPointV1,
        32 => funding_tx: option Bytes,
        34 => their_commitment_sig: option Signature,
        36 => confirmation: option ConfirmationV1,
        38 => channel_ready_sent: required bool,
        40 => their_second_point: option PublicKey,
        42 => failure_reason: option Bytes,
        44 => announcement_sigs_sent: option bool,
        46 => their_announcement_sigs: option SignaturePair,
        48 => announcement: option ChannelAnnouncement,
        50 => announcement_answered: option bool,
        53 => waiting_since: option WaitingV1,
        55 => failed_unfunded: option (),
    }
}

fn channel_fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/records");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixture dir") {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.starts_with("channel_v1_") && name.ends_with(".hex") {
            let text = std::fs::read_to_string(&path).expect("fixture text");
            out.push((name, Vec::<u8>::from_hex(text.trim()).expect("fixture hex")));
        }
    }
    out.sort();
    out
}

#[test]
fn the_macro_layout_reads_and_rewrites_every_channel_fixture_byte_for_byte() {
    let fixtures = channel_fixtures();
    assert_eq!(fixtures.len(), 9, "the channel_v1_* golden fixtures");
    for (name, bytes) in fixtures {
        assert_eq!(bytes[0], 1, "{name}: record version");
        let mut r = Reader::new(&bytes[1..]);
        let layout = ChannelV1::read(&mut r, "channel record")
            .unwrap_or_else(|e| panic!("{name} does not decode: {e}"));
        let mut again = vec![1];
        ChannelV1::write(&layout, &mut again);
        assert_eq!(again, bytes, "{name} re-encodes differently");
        // The same bytes through record.rs's own decoder name the same channel.
        let record = ChannelRecord::decode(&bytes).expect("record.rs decodes the fixture");
        assert_eq!(record.counterparty_node_id(), layout.counterparty_node_id);
        assert_eq!(record.temporary_channel_id(), layout.temporary_channel_id);
    }
}

#[test]
fn the_macro_layout_rejects_what_record_rs_rejects() {
    let (_, bytes) = channel_fixtures().remove(0);
    let side = |stream: &[u8]| SideV1::read(&mut Reader::new(stream), "side");
    // Our params without their keys (record type 12 of the nested stream).
    let mut r = Reader::new(&bytes[1..]);
    let layout = ChannelV1::read(&mut r, "channel record").expect("fixture decodes");
    let mut ours = Vec::new();
    SideV1::write(&layout.ours, &mut ours);
    let tlvs = crate::wire::TlvStream::decode(&ours, |_| true).expect("stream");
    let mut without_keys = crate::wire::TlvStream::default();
    for rec in tlvs.records().iter().filter(|rec| rec.tlv_type != 12) {
        without_keys.push(rec.tlv_type, rec.value.clone());
    }
    assert_eq!(
        side(&without_keys.encode()),
        Err(DecodeError::MissingTlv {
            tlv_type: 12,
            field: "keys"
        })
    );
    // An unknown even field is refused, an unknown odd one skipped.
    let mut even = bytes[1..].to_vec();
    even.extend_from_slice(&[0xfd, 0x01, 0x00, 0]);
    assert_eq!(
        ChannelV1::read(&mut Reader::new(&even), "channel record"),
        Err(DecodeError::UnknownEvenTlvType(256))
    );
    let mut odd = bytes[1..].to_vec();
    odd.extend_from_slice(&[0xfd, 0x01, 0x01, 0]);
    assert_eq!(
        ChannelV1::read(&mut Reader::new(&odd), "channel record").map(|c| c.state),
        Ok(layout.state)
    );
}
