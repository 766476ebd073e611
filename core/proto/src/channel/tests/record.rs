//! The versioned record: exact round trips (also done after every harness step), versioning
//! and malformed input.

use super::harness::Pair;
use crate::channel::{Channel, ChannelRecord, ChannelState, RecordError, RECORD_VERSION};
use crate::wire::tlv::TlvStream;

fn round_trip(channel: &Channel) -> Channel {
    let bytes = channel.to_record().encode();
    assert_eq!(bytes[0], RECORD_VERSION);
    ChannelRecord::decode(&bytes)
        .expect("decodes")
        .into_channel()
}

#[test]
fn every_state_of_a_full_open_round_trips() {
    // The harness already rebuilds and replays before every input; here every snapshot the
    // two sides ever persisted decodes to the same channel, and the set of states covers the
    // whole open.
    let pair = Pair::open_to_ready();
    let mut states = Vec::new();
    for node in [&pair.a, &pair.b] {
        for step in &node.history {
            for action in step {
                if let crate::channel::Action::Commit(crate::channel::Commit {
                    record: r, ..
                }) = action
                {
                    let back = ChannelRecord::decode(&r.encode()).expect("decodes");
                    assert_eq!(&back, r);
                    states.push(r.state());
                }
            }
        }
        assert_eq!(&round_trip(node.channel()), node.channel());
    }
    for s in [
        ChannelState::AwaitingConfirmations,
        ChannelState::AwaitingChannelReady,
        ChannelState::Ready,
    ] {
        assert!(states.contains(&s), "{s:?} persisted");
    }
}

#[test]
fn failed_channels_keep_their_reason() {
    let mut pair = Pair::open_to_pending();
    pair.a.input(crate::channel::Input::FundingDoubleSpent {
        spending_txid: bitcoin::Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros()),
    });
    let back = round_trip(pair.a.channel());
    assert_eq!(back.state(), ChannelState::Failed);
    assert!(back
        .failure_reason()
        .is_some_and(|r| r.contains("double-spent")));
}

#[test]
fn record_accessors() {
    let pair = Pair::open_to_pending();
    let record = pair.b.channel().to_record();
    assert_eq!(record.counterparty_node_id(), pair.a.node_id);
    assert_eq!(record.temporary_channel_id(), super::harness::TEMP_ID);
    assert_eq!(record.channel_id(), pair.a.channel().channel_id());
    assert_eq!(record.state(), ChannelState::AwaitingConfirmations);
}

#[test]
fn versions_and_malformed_records_are_refused() {
    let pair = Pair::open_to_pending();
    let bytes = pair.a.channel().to_record().encode();
    assert_eq!(ChannelRecord::decode(&[]), Err(RecordError::Empty));
    let mut v2 = bytes.clone();
    v2[0] = 2;
    assert_eq!(
        ChannelRecord::decode(&v2),
        Err(RecordError::UnknownVersion(2))
    );
    for cut in [1, 2, 10, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            ChannelRecord::decode(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }

    // Re-encode the stream with one change.
    let stream = TlvStream::decode(&bytes[1..], |_| true).expect("valid stream");
    let rebuild = |f: &dyn Fn(&mut TlvStream)| {
        let mut s = stream.clone();
        f(&mut s);
        let mut out = vec![RECORD_VERSION];
        s.encode_into(&mut out);
        ChannelRecord::decode(&out)
    };
    // Unknown odd fields (a later minor version) are skipped.
    let back = rebuild(&|s| s.push(101, vec![1, 2, 3])).expect("odd field skipped");
    assert_eq!(back.channel(), pair.a.channel());
    // Unknown even fields are refused.
    assert!(matches!(
        rebuild(&|s| s.push(100, vec![1])),
        Err(RecordError::Decode(_))
    ));
    // A missing required field.
    let without_state = {
        let mut s = TlvStream::default();
        for r in stream.records().iter().filter(|r| r.tlv_type != 2) {
            s.push(r.tlv_type, r.value.clone());
        }
        let mut out = vec![RECORD_VERSION];
        s.encode_into(&mut out);
        ChannelRecord::decode(&out)
    };
    assert_eq!(without_state, Err(RecordError::Missing("state")));
    // Out-of-range values.
    assert_eq!(
        rebuild(&|s| s.push(2, vec![99])),
        Err(RecordError::Invalid("state"))
    );
    assert_eq!(
        rebuild(&|s| s.push(16, vec![7])),
        Err(RecordError::Invalid("announce"))
    );
    // A field of the wrong length.
    assert!(matches!(
        rebuild(&|s| s.push(10, vec![0, 0, 7])),
        Err(RecordError::Decode(_))
    ));
}

/// `bytes` re-encoded with the TLV records of `drop` removed and `set` put in.
pub(super) fn edited(
    bytes: &[u8],
    drop: &[u64],
    set: &[(u64, Vec<u8>)],
) -> Result<ChannelRecord, RecordError> {
    let stream = TlvStream::decode(&bytes[1..], |_| true).expect("valid stream");
    let mut s = TlvStream::default();
    for r in stream
        .records()
        .iter()
        .filter(|r| !drop.contains(&r.tlv_type))
    {
        s.push(r.tlv_type, r.value.clone());
    }
    for (t, v) in set {
        s.push(*t, v.clone());
    }
    let mut out = vec![RECORD_VERSION];
    s.encode_into(&mut out);
    ChannelRecord::decode(&out)
}

#[test]
fn impossible_phase_combinations_are_typed_errors() {
    let pending = Pair::open_to_pending();
    let durable = pending.a.channel().to_record().encode();
    // A durable channel always holds the peer's signature, params and funding.
    assert_eq!(
        edited(&durable, &[34], &[]),
        Err(RecordError::Missing("their_commitment_sig"))
    );
    assert_eq!(
        edited(&durable, &[28], &[]),
        Err(RecordError::Missing("their params"))
    );
    assert_eq!(
        edited(&durable, &[30, 32], &[]),
        Err(RecordError::Missing("funding"))
    );
    // Only a failed channel has a reason; a failed one must have one.
    assert_eq!(
        edited(&durable, &[], &[(42, b"why".to_vec())]),
        Err(RecordError::Invalid("failure_reason"))
    );
    assert_eq!(
        edited(&durable, &[], &[(2, vec![7])]),
        Err(RecordError::Missing("failure_reason"))
    );
    // Ready needs both channel_ready marks; AwaitingChannelReady ours.
    assert_eq!(
        edited(&durable, &[], &[(2, vec![6])]),
        Err(RecordError::Missing("channel_ready marks"))
    );
    assert_eq!(
        edited(&durable, &[], &[(2, vec![5])]),
        Err(RecordError::Missing("channel_ready_sent"))
    );
    // An open in progress holds no commitment signature, and a funder's open is no fundee's.
    assert_eq!(
        edited(&durable, &[], &[(2, vec![2])]),
        Err(RecordError::Invalid("their_commitment_sig"))
    );
    assert_eq!(
        edited(&durable, &[34], &[(2, vec![3])]),
        Err(RecordError::Invalid("role"))
    );
    // Only a failed channel records the spend of its funding output.
    let spend = bitcoin::consensus::serialize(&pending.funding());
    assert_eq!(
        edited(&durable, &[], &[(57, spend)]),
        Err(RecordError::Invalid("funding_spend"))
    );
    // The same record with the state changed consistently still decodes.
    let back = edited(&durable, &[34], &[(2, vec![2])]).expect("awaiting funding_signed");
    assert_eq!(back.state(), ChannelState::AwaitingFundingSigned);

    // An open in progress round-trips with its wait.
    let mut pair = Pair::new();
    let peer = pair.b.node_id;
    pair.start(super::harness::outbound_params(peer));
    pair.a.input(crate::channel::Input::Tick { now_secs: 5 });
    let opening = pair.a.channel();
    assert_eq!(&round_trip(opening), opening);
    let bytes = opening.to_record().encode();
    // Its wait names another state: refused.
    let mut wait = vec![1];
    wait.extend(5u64.to_be_bytes());
    assert_eq!(
        edited(&bytes, &[], &[(53, wait)]),
        Err(RecordError::Invalid("waiting_state"))
    );
}

/// Whatever field is dropped and whatever state byte is written, a record decodes to a channel
/// that round-trips, or to a typed error — never a panic, never a channel its own encoding
/// does not give back.
#[test]
fn any_state_byte_or_missing_field_is_a_channel_or_a_typed_error() {
    let mut records = Vec::new();
    let pair = Pair::open_to_ready();
    records.push(pair.a.channel().to_record().encode());
    records.push(pair.b.channel().to_record().encode());
    let mut failed = Pair::open_to_pending();
    failed.a.input(crate::channel::Input::FundingDoubleSpent {
        spending_txid: bitcoin::Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros()),
    });
    records.push(failed.a.channel().to_record().encode());
    let mut opening = Pair::new();
    let peer = opening.b.node_id;
    opening.start(super::harness::outbound_params(peer));
    opening.run();
    records.push(opening.a.channel().to_record().encode());
    let mut decoded = 0;
    for bytes in &records {
        let stream = TlvStream::decode(&bytes[1..], |_| true).expect("valid stream");
        let types: Vec<u64> = stream.records().iter().map(|r| r.tlv_type).collect();
        let mut variants: Vec<Result<ChannelRecord, RecordError>> = Vec::new();
        for t in &types {
            variants.push(edited(bytes, &[*t], &[]));
        }
        for state in 0..=9u8 {
            variants.push(edited(bytes, &[], &[(2, vec![state])]));
            variants.push(edited(bytes, &[55], &[(2, vec![state]), (55, Vec::new())]));
        }
        for v in variants.into_iter().flatten() {
            decoded += 1;
            let back = ChannelRecord::decode(&v.encode()).expect("re-decodes");
            assert_eq!(back, v, "a decoded record round-trips");
        }
    }
    assert!(decoded > records.len(), "some variants are channels");
}

/// What the layout refuses inside a nested stream and at the top: our params without their
/// keys (type 12 of record 26) are missing keys; an unknown even record is malformed, an
/// unknown odd one skipped.
#[test]
fn nested_and_unknown_records_are_typed() {
    let pair = Pair::open_to_pending();
    let bytes = pair.a.channel().to_record().encode();
    let stream = TlvStream::decode(&bytes[1..], |_| true).expect("valid stream");
    let ours = TlvStream::decode(stream.get(26).expect("our params"), |_| true).expect("side");
    let mut without_keys = TlvStream::default();
    for r in ours.records().iter().filter(|r| r.tlv_type != 12) {
        without_keys.push(r.tlv_type, r.value.clone());
    }
    assert_eq!(
        edited(&bytes, &[], &[(26, without_keys.encode())]),
        Err(RecordError::Missing("keys"))
    );
    assert_eq!(
        edited(&bytes, &[], &[(256, Vec::new())]),
        Err(RecordError::Decode(
            crate::wire::DecodeError::UnknownEvenTlvType(256)
        ))
    );
    let back = edited(&bytes, &[], &[(257, Vec::new())]).expect("odd record skipped");
    assert_eq!(back.channel(), pair.a.channel());
}
