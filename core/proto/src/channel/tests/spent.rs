//! The funding output spent on chain (`Input::FundingSpent`): the channel closes without a
//! broadcast (Closing, classified), keeps the spending transaction in its record, and stays
//! quiet afterwards.
//! Every step goes through the harness (durability checker, record round-trip, twin).

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Transaction, Txid};

use super::harness::{kinds, Pair};
use crate::channel::{Action, ChannelEvent, ChannelRecord, ChannelState, CloseKind, Input};
use crate::wire::{ErrorMessage, Message};

/// The fundee's signed first commitment: what the peer of the funder broadcasts.
fn fundee_commitment(pair: &Pair) -> Transaction {
    pair.b
        .channel()
        .signed_our_commitment(&pair.b.ctx())
        .expect("fundee's commitment")
}

fn broadcasts_since(pair: &Pair, step: usize) -> usize {
    pair.a.history[step..]
        .iter()
        .flatten()
        .filter(|a| matches!(a, Action::Broadcast { .. }))
        .count()
}

#[test]
fn the_peers_commitment_fails_a_ready_channel_without_a_broadcast_and_is_kept() {
    let mut pair = Pair::open_to_ready();
    // No wallet address: nothing is swept, so every broadcast counted is a commitment.
    pair.a.no_destination = true;
    pair.b.no_destination = true;
    let theirs = fundee_commitment(&pair);
    let txid = theirs.compute_txid();
    let start = pair.a.history.len();
    let actions = pair.a.input(Input::FundingSpent {
        spending_tx: theirs.clone(),
        confirmation_height: Some(pair.height + 1),
    });
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "Emit(ChannelFailed)",
            "Emit(ChannelClosing)",
            "WatchFunding",
            "WatchOutput"
        ]
    );
    assert_eq!(pair.a.state(), ChannelState::Closing);
    assert_eq!(pair.a.channel().close_kind(), Some(CloseKind::RemoteForce));
    let reason = pair.a.channel().failure_reason().expect("reason");
    assert!(reason.contains(&txid.to_string()), "{reason}");
    let n = pair.a.events.len();
    assert!(
        matches!(&pair.a.events[n - 2], ChannelEvent::ChannelFailed { reason: r, .. } if r == reason)
    );
    assert!(
        matches!(&pair.a.events[n - 1], ChannelEvent::ChannelClosing { reason: r, kind: CloseKind::RemoteForce, .. } if r == reason)
    );
    // The spend is in the persisted record (field 72 of a closing channel).
    let stored =
        ChannelRecord::decode(pair.a.stored.as_ref().expect("persisted")).expect("decodes");
    assert_eq!(stored.channel().funding_spend(), Some(&theirs));
    assert_eq!(stored.state(), ChannelState::Closing);
    // Nothing afterwards broadcasts a commitment over the spent funding: the same report,
    // a peer `error`, a reconnection, a new block, a restart.
    assert!(pair
        .a
        .input(Input::FundingSpent {
            spending_tx: theirs.clone(),
            confirmation_height: Some(pair.height + 1),
        })
        .is_empty());
    let id = pair.a.channel().channel_id().expect("id");
    let on_error = pair
        .a
        .input(Input::Message(Message::Error(ErrorMessage::new(
            id, "closing",
        ))));
    assert!(on_error.is_empty(), "{on_error:?}");
    assert_eq!(
        kinds(&pair.a.input(Input::PeerReconnected)),
        ["Send(error)"]
    );
    pair.mine(1);
    // A restart re-arms the watches, broadcasts nothing.
    assert_eq!(kinds(&pair.a.restart()), ["WatchFunding", "WatchOutput"]);
    assert_eq!(broadcasts_since(&pair, start), 0);
    assert_eq!(pair.a.channel().funding_spend(), Some(&theirs));
}

#[test]
fn a_spend_before_the_channel_is_ready_fails_the_open_without_returning_coins() {
    let mut pair = Pair::open_to_pending();
    pair.a.no_destination = true;
    pair.b.no_destination = true;
    pair.confirm_funding();
    assert_eq!(pair.a.state(), ChannelState::AwaitingConfirmations);
    let theirs = fundee_commitment(&pair);
    let start = pair.a.history.len();
    // In the mempool: the funding is spent all the same (only a tx both signed can spend it).
    let actions = pair.a.input(Input::FundingSpent {
        spending_tx: theirs.clone(),
        confirmation_height: None,
    });
    // Not a double spend of the funding's inputs: the funding exists, so no AbandonFunding.
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "Emit(ChannelOpenFailed)",
            "Emit(ChannelClosing)",
            "WatchFunding",
            "WatchOutput"
        ]
    );
    assert_eq!(pair.a.state(), ChannelState::Closing);
    let reason = pair.a.channel().failure_reason().expect("reason");
    assert!(
        reason.contains(&theirs.compute_txid().to_string()) && reason.contains("unconfirmed"),
        "{reason}"
    );
    assert_eq!(broadcasts_since(&pair, start), 0);
}

#[test]
fn a_force_closed_channel_switches_to_the_peers_commitment_when_it_wins() {
    let mut pair = Pair::open_to_ready();
    // No wallet address: nothing is swept, so every broadcast counted is a commitment.
    pair.a.no_destination = true;
    pair.b.no_destination = true;
    let theirs = fundee_commitment(&pair);
    let id = pair.a.channel().channel_id().expect("id");
    // The peer's `error` fails the channel and broadcasts our commitment...
    let failed = pair
        .a
        .input(Input::Message(Message::Error(ErrorMessage::new(id, "bye"))));
    assert!(kinds(&failed).contains(&"BroadcastCommitment".to_string()));
    let reason = pair.a.channel().failure_reason().map(str::to_string);
    let events = pair.a.events.len();
    assert_eq!(pair.a.channel().close_kind(), Some(CloseKind::LocalForce));
    // ...but theirs won the race: recorded, the kind switches (one more ChannelClosing,
    // naming it), the reason stays, nothing broadcast.
    let start = pair.a.history.len();
    let actions = pair.a.input(Input::FundingSpent {
        spending_tx: theirs.clone(),
        confirmation_height: Some(pair.height + 1),
    });
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "Emit(ChannelClosing)",
            "WatchFunding",
            "WatchOutput"
        ]
    );
    assert_eq!(pair.a.channel().funding_spend(), Some(&theirs));
    assert_eq!(pair.a.channel().close_kind(), Some(CloseKind::RemoteForce));
    assert_eq!(
        pair.a.channel().failure_reason().map(str::to_string),
        reason
    );
    assert_eq!(pair.a.events.len(), events + 1);
    assert!(matches!(
        pair.a.events.last(),
        Some(ChannelEvent::ChannelClosing {
            kind: CloseKind::RemoteForce,
            ..
        })
    ));
    assert_eq!(broadcasts_since(&pair, start), 0);
    // Blocks no longer rebroadcast our commitment: the funding is spent by theirs.
    pair.mine(3);
    assert_eq!(broadcasts_since(&pair, start), 0);
}

#[test]
fn a_transaction_that_does_not_spend_the_funding_is_ignored() {
    let mut pair = Pair::open_to_ready();
    // No wallet address: nothing is swept, so every broadcast counted is a commitment.
    pair.a.no_destination = true;
    pair.b.no_destination = true;
    let mut other = fundee_commitment(&pair);
    other.input[0].previous_output = OutPoint::new(Txid::from_byte_array([9; 32]), 0);
    assert!(pair
        .a
        .input(Input::FundingSpent {
            spending_tx: other,
            confirmation_height: Some(pair.height),
        })
        .is_empty());
    assert_eq!(pair.a.state(), ChannelState::Ready);
    assert_eq!(pair.a.channel().funding_spend(), None);
}

#[test]
fn the_fundee_sees_the_funders_commitment_too() {
    let mut pair = Pair::open_to_ready();
    // No wallet address: nothing is swept, so every broadcast counted is a commitment.
    pair.a.no_destination = true;
    pair.b.no_destination = true;
    let ours = pair
        .a
        .channel()
        .signed_our_commitment(&pair.a.ctx())
        .expect("funder's commitment");
    let actions = pair.b.input(Input::FundingSpent {
        spending_tx: ours.clone(),
        confirmation_height: Some(pair.height),
    });
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "Emit(ChannelFailed)",
            "Emit(ChannelClosing)",
            "WatchFunding",
            "WatchOutput"
        ]
    );
    assert_eq!(pair.b.channel().funding_spend(), Some(&ours));
    assert_eq!(pair.b.channel().close_kind(), Some(CloseKind::RemoteForce));
}

/// Older builds kept the spend in a failed record as the odd field 57 (consensus encoding),
/// within version 1: such a record still reads (with the spend), a record without it is the
/// failed channel older builds made, a malformed one is refused. A closing channel keeps its
/// spend in field 72 instead, never 57.
#[test]
fn the_spend_is_odd_field_57_of_a_version_1_record() {
    use crate::channel::{RecordError, RECORD_VERSION};
    use crate::wire::tlv::TlvStream;
    let mut pair = Pair::open_to_ready();
    // No wallet address: nothing is swept, so every broadcast counted is a commitment.
    pair.a.no_destination = true;
    pair.b.no_destination = true;
    let theirs = fundee_commitment(&pair);
    pair.a.input(Input::FundingSpent {
        spending_tx: theirs.clone(),
        confirmation_height: None,
    });
    let bytes = pair.a.stored.clone().expect("persisted");
    assert_eq!(bytes[0], RECORD_VERSION);
    assert_eq!(RECORD_VERSION, 1);
    let stream = TlvStream::decode(&bytes[1..], |_| true).expect("stream");
    assert_eq!(stream.get(57), None);
    assert_eq!(
        stream.get(72),
        Some(&bitcoin::consensus::serialize(&theirs)[..])
    );
    // A failed record as older builds wrote it, with and without field 57.
    let mut failed = Pair::open_to_ready();
    failed.a.input(Input::FundingDoubleSpent {
        spending_txid: Txid::from_byte_array([0xd5; 32]),
    });
    let failed_bytes = failed.a.stored.clone().expect("persisted");
    let stream = TlvStream::decode(&failed_bytes[1..], |_| true).expect("stream");
    assert_eq!(stream.get(57), None);
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
    let without = rebuild(&|_| {}).expect("decodes");
    assert_eq!(without.state(), ChannelState::Failed);
    assert_eq!(without.channel().funding_spend(), None);
    let with = rebuild(&|s| s.push(57, bitcoin::consensus::serialize(&theirs))).expect("decodes");
    assert_eq!(with.state(), ChannelState::Failed);
    assert_eq!(with.channel().funding_spend(), Some(&theirs));
    // It re-encodes to the same bytes.
    let mut again = vec![RECORD_VERSION];
    {
        let mut s = TlvStream::default();
        for r in stream.records() {
            s.push(r.tlv_type, r.value.clone());
        }
        s.push(57, bitcoin::consensus::serialize(&theirs));
        s.encode_into(&mut again);
    }
    assert_eq!(with.encode(), again);
    assert_eq!(
        rebuild(&|s| s.push(57, vec![1, 2, 3])),
        Err(RecordError::Invalid("funding_spend"))
    );
}
