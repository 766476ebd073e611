//! A fundee whose funder dropped the open before our `funding_signed` reached it
//! (`ChannelState::FailedUnfunded`): LDK's placeholder `channel_reestablish` and `error`, a
//! plain `error`, the funding watched until the BOLT 2 timeout, a late funding bringing the
//! channel back, and the record of the new state. Every step goes through the harness, so the
//! durability checker (which refuses a fundee's commitment of an unseen funding) sees it all.

use bitcoin::secp256k1::PublicKey;
use bitcoin::Txid;

use super::harness::{funding_tx, kinds, outbound_params, Pair};
use crate::channel::unfunded::FUNDER_DROPPED;
use crate::channel::{
    Action, ChannelEvent, ChannelRecord, ChannelState, Confirmation, Input, RecordError,
    FUNDEE_FUNDING_TIMEOUT_BLOCKS, RECORD_VERSION,
};
use crate::wire::tlv::TlvStream;
use crate::wire::{ChannelReestablish, ErrorMessage, Message};

/// The fundee persisted and (in a real node) was killed before its `funding_signed` left; the
/// funder dropped the open. The fundee is back and has sent its `channel_reestablish`.
fn dropped_open() -> Pair {
    let mut pair = Pair::new();
    pair.drop.push("funding_signed");
    pair.start(outbound_params(pair.b.node_id));
    pair.run();
    assert_eq!(pair.b.state(), ChannelState::AwaitingConfirmations);
    assert_eq!(pair.a.state(), ChannelState::AwaitingFundingSigned);
    pair.a.channel = None;
    pair.b.restart();
    let actions = pair.b.input(Input::PeerReconnected);
    assert_eq!(kinds(&actions), ["Send(channel_reestablish)"]);
    pair.b.outbox.clear();
    pair
}

/// What LDK sends for a channel it does not know (lightning 0.2 `internal_channel_reestablish`):
/// commitment numbers 0, a dummy secret and point.
fn placeholder(pair: &Pair) -> Message {
    Message::ChannelReestablish(ChannelReestablish {
        channel_id: pair.b.channel().channel_id().expect("id"),
        next_commitment_number: 0,
        next_revocation_number: 0,
        your_last_per_commitment_secret: [1; 32],
        my_current_per_commitment_point: PublicKey::from_slice(&[2; 33]).expect("LDK's dummy"),
        next_funding: None,
        my_current_funding_locked: None,
    })
}

fn ldk_error(pair: &Pair) -> Message {
    Message::Error(ErrorMessage::new(
        pair.b.channel().channel_id().expect("id"),
        "Got a message for a channel from the wrong node! No such channel for the passed counterparty_node_id 02...",
    ))
}

fn broadcast_commitments(pair: &Pair) -> usize {
    pair.b
        .history
        .iter()
        .flatten()
        .filter(|a| {
            matches!(
                a,
                Action::Broadcast {
                    kind: crate::channel::BroadcastKind::Commitment,
                    ..
                }
            )
        })
        .count()
}

fn open_failed_reasons(pair: &Pair) -> Vec<String> {
    pair.b
        .events
        .iter()
        .filter_map(|e| match e {
            ChannelEvent::ChannelOpenFailed {
                reason, channel_id, ..
            } => {
                assert_eq!(
                    *channel_id,
                    pair.b.channel().channel_id(),
                    "names the channel"
                );
                Some(reason.clone())
            }
            _ => None,
        })
        .collect()
}

/// The funding the funder built (and never broadcast), mined late.
fn late_funding(pair: &mut Pair, height: u32) {
    let c = pair.b.channel();
    let tx = funding_tx(
        &c.funding_script_pubkey().expect("script"),
        c.funding_amount(),
    );
    assert_eq!(
        tx.compute_txid(),
        c.funding().expect("funding").outpoint.txid
    );
    pair.height = height;
    pair.b.input(Input::FundingConfirmed {
        tx,
        confirmation: Confirmation {
            block_height: height,
            block_hash: bitcoin::hashes::Hash::from_byte_array([7; 32]),
            tx_index: 1,
        },
        tip_height: height,
    });
}

#[test]
fn ldk_placeholder_reestablish_and_error_fail_the_fundee_without_a_broadcast() {
    let mut pair = dropped_open();
    let msg = placeholder(&pair);
    let actions = pair.b.input(Input::Message(msg));
    assert_eq!(
        kinds(&actions),
        ["Persist", "Emit(ChannelOpenFailed)", "Send(error)"]
    );
    assert_eq!(pair.b.state(), ChannelState::FailedUnfunded);
    assert_eq!(pair.b.channel().failure_reason(), Some(FUNDER_DROPPED));
    assert_eq!(open_failed_reasons(&pair), [FUNDER_DROPPED]);
    // LDK's error that follows changes nothing.
    let msg = ldk_error(&pair);
    assert!(pair.b.input(Input::Message(msg)).is_empty());
    assert_eq!(broadcast_commitments(&pair), 0);
    // A restart re-arms the funding watch and nothing else; a reconnection repeats our error
    // instead of a channel_reestablish.
    let actions = pair.b.restart();
    assert_eq!(kinds(&actions), ["WatchFunding"]);
    assert_eq!(pair.b.state(), ChannelState::FailedUnfunded);
    let actions = pair.b.input(Input::PeerReconnected);
    assert_eq!(kinds(&actions), ["Send(error)"]);
    assert!(pair.b.channel().channel_reestablish().is_none());
    let msg = placeholder(&pair);
    assert_eq!(kinds(&pair.b.input(Input::Message(msg))), ["Send(error)"]);
    assert_eq!(broadcast_commitments(&pair), 0);
}

#[test]
fn a_plain_error_fails_the_fundee_without_a_broadcast_and_the_funder_still_protects_its_funding() {
    let mut pair = dropped_open();
    let msg = Message::Error(ErrorMessage::new(
        pair.b.channel().channel_id().expect("id"),
        "unknown channel",
    ));
    let actions = pair.b.input(Input::Message(msg));
    assert_eq!(kinds(&actions), ["Persist", "Emit(ChannelOpenFailed)"]);
    assert_eq!(pair.b.state(), ChannelState::FailedUnfunded);
    let reason = pair
        .b
        .channel()
        .failure_reason()
        .expect("reason")
        .to_string();
    assert_eq!(
        reason,
        "the funder failed the open before its funding appeared on chain; nothing was committed \
         (peer error: unknown channel)"
    );
    assert_eq!(open_failed_reasons(&pair), [reason]);
    assert_eq!(broadcast_commitments(&pair), 0);

    // Unchanged for a funder: it broadcast the funding, so it rebroadcasts it and closes.
    let mut pair = Pair::open_to_pending();
    let id = pair.a.channel().channel_id().expect("id");
    let actions = pair
        .a
        .input(Input::Message(Message::Error(ErrorMessage::new(id, "bye"))));
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "Emit(ChannelOpenFailed)",
            "Emit(ChannelClosing)",
            "BroadcastFunding",
            "BroadcastCommitment",
            "WatchFunding",
            "WatchOutput"
        ]
    );
    assert_eq!(pair.a.state(), ChannelState::Closing);
    // And for a fundee that saw the funding confirm: its commitment is valid, it closes.
    let mut pair = Pair::open_to_pending();
    pair.confirm_funding();
    let actions = pair
        .b
        .input(Input::Message(Message::Error(ErrorMessage::new(id, "bye"))));
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "Emit(ChannelOpenFailed)",
            "Emit(ChannelClosing)",
            "BroadcastCommitment",
            "WatchFunding",
            "WatchOutput"
        ]
    );
    assert_eq!(pair.b.state(), ChannelState::Closing);
}

#[test]
fn the_funding_is_watched_until_the_bolt2_timeout() {
    let mut pair = dropped_open();
    let msg = placeholder(&pair);
    pair.b.input(Input::Message(msg));
    let deadline = pair.b.channel().fundee_funding_deadline();
    assert_eq!(deadline, 100 + FUNDEE_FUNDING_TIMEOUT_BLOCKS);
    for height in [101, deadline - 1] {
        assert!(pair.b.input(Input::NewBlock { height }).is_empty());
        assert_eq!(pair.b.state(), ChannelState::FailedUnfunded);
    }
    // At the timeout the wait ends: persisted, nobody told again.
    let actions = pair.b.input(Input::NewBlock { height: deadline });
    assert_eq!(kinds(&actions), ["Persist"]);
    assert_eq!(pair.b.state(), ChannelState::Failed);
    assert_eq!(
        pair.b.channel().failure_reason(),
        Some(format!("{FUNDER_DROPPED}; its funding did not appear within 2016 blocks").as_str())
    );
    assert!(
        pair.b.channel().resume_actions().is_empty(),
        "no more watch"
    );
    assert_eq!(open_failed_reasons(&pair).len(), 1);
    // A double spend ends the wait the same way.
    let mut pair = dropped_open();
    let msg = placeholder(&pair);
    pair.b.input(Input::Message(msg));
    let by = Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros());
    let actions = pair
        .b
        .input(Input::FundingDoubleSpent { spending_txid: by });
    assert_eq!(kinds(&actions), ["Persist"]);
    assert_eq!(pair.b.state(), ChannelState::Failed);
    assert!(pair
        .b
        .channel()
        .failure_reason()
        .is_some_and(|r| r.ends_with(&format!("its funding was double-spent by {by}"))));
}

#[test]
fn a_late_funding_brings_the_channel_back_and_then_it_can_be_closed() {
    let mut pair = dropped_open();
    let msg = placeholder(&pair);
    pair.b.input(Input::Message(msg));
    pair.b.restart();
    // The funder broadcast after all, 500 blocks later.
    late_funding(&mut pair, 600);
    let step = pair.b.history.last().cloned().expect("acted");
    assert_eq!(kinds(&step), ["Persist", "Emit(ChannelPending)"]);
    assert_eq!(pair.b.state(), ChannelState::AwaitingConfirmations);
    assert_eq!(pair.b.channel().failure_reason(), None);
    assert_eq!(pair.b.channel().confirmations(600), 1);
    // Tracked like any confirmed channel: channel_ready at depth, reestablish on reconnection.
    pair.mine(2);
    assert_eq!(pair.b.state(), ChannelState::AwaitingChannelReady);
    assert!(pair.b.channel().channel_reestablish().is_some());
    // A funder that still does not know it now gets our commitment, which spends a real
    // funding: push_msat (100 000 sat here) comes back to us after to_self_delay.
    let msg = placeholder(&pair);
    let actions = pair.b.input(Input::Message(msg));
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "Emit(ChannelOpenFailed)",
            "Emit(ChannelClosing)",
            "BroadcastCommitment",
            "WatchFunding",
            "WatchOutput",
            "Send(error)"
        ]
    );
    let Some(Action::Broadcast {
        tx,
        kind: crate::channel::BroadcastKind::Commitment,
    }) = actions.get(1)
    else {
        panic!("commitment");
    };
    let funding = pair.b.channel().funding().expect("funding").outpoint;
    assert_eq!(tx.input[0].previous_output, funding);
    assert!(tx.output.iter().any(|o| o.value.to_sat() == 100_000));
    assert_eq!(pair.b.state(), ChannelState::Closing);
}

#[test]
fn failed_unfunded_record_round_trips_and_stays_version_1() {
    let mut pair = dropped_open();
    let msg = placeholder(&pair);
    pair.b.input(Input::Message(msg));
    let bytes = pair.b.stored.clone().expect("persisted");
    assert_eq!(bytes[0], RECORD_VERSION);
    assert_eq!(RECORD_VERSION, 1);
    let back = ChannelRecord::decode(&bytes).expect("decodes");
    assert_eq!(back.channel(), pair.b.channel());
    assert_eq!(back.state(), ChannelState::FailedUnfunded);
    // On disk: state Failed (7) plus the empty odd field 55.
    let stream = TlvStream::decode(&bytes[1..], |_| true).expect("stream");
    assert_eq!(stream.get(2), Some(&[7u8][..]));
    assert_eq!(stream.get(55), Some(&[][..]));
    let rebuild = |f: &dyn Fn(&mut TlvStream)| {
        let mut s = TlvStream::default();
        for r in stream.records() {
            s.push(r.tlv_type, r.value.clone());
        }
        f(&mut s);
        let mut out = vec![RECORD_VERSION];
        s.encode_into(&mut out);
        ChannelRecord::decode(&out)
    };
    // What a build that skips field 55 reads: the failed channel it made of it.
    let without = {
        let mut s = TlvStream::default();
        for r in stream.records().iter().filter(|r| r.tlv_type != 55) {
            s.push(r.tlv_type, r.value.clone());
        }
        let mut out = vec![RECORD_VERSION];
        s.encode_into(&mut out);
        ChannelRecord::decode(&out).expect("decodes")
    };
    assert_eq!(without.state(), ChannelState::Failed);
    // Field 55 only on a failed fundee record that never saw its funding, and empty.
    assert_eq!(
        rebuild(&|s| s.push(55, vec![1])),
        Err(RecordError::Invalid("failed_unfunded"))
    );
    assert_eq!(
        rebuild(&|s| s.push(2, vec![4])),
        Err(RecordError::Invalid("failed_unfunded"))
    );
    assert_eq!(
        rebuild(&|s| s.push(0, vec![0])),
        Err(RecordError::Invalid("failed_unfunded"))
    );
}
