//! `channel_reestablish`: our message, channel_ready retransmission, and the data-loss-protect
//! and `next_funding` rules for an opening channel.

use bitcoin::hashes::Hash;
use bitcoin::Txid;

use super::harness::{kinds, Pair};
use crate::channel::{Action, ChannelState, Input};
use crate::keys::INITIAL_COMMITMENT_NUMBER;
use crate::wire::{ChannelReestablish, FundingRetransmit, Message};

/// Drops the link (losing messages in flight), reconnects, and runs the reestablish exchange.
pub fn reconnect(pair: &mut Pair) {
    pair.a.outbox.clear();
    pair.b.outbox.clear();
    pair.a.input(Input::PeerDisconnected);
    pair.b.input(Input::PeerDisconnected);
    let a = pair.a.input(Input::PeerReconnected);
    let b = pair.b.input(Input::PeerReconnected);
    assert_eq!(kinds(&a), ["Send(channel_reestablish)"]);
    assert_eq!(kinds(&b), ["Send(channel_reestablish)"]);
    pair.run();
}

fn their_reestablish(pair: &Pair) -> ChannelReestablish {
    pair.b
        .channel()
        .channel_reestablish()
        .expect("durable channel")
}

#[test]
fn our_reestablish_for_an_opening_channel() {
    let pair = Pair::open_to_pending();
    let msg = pair.a.channel().channel_reestablish().expect("durable");
    assert_eq!(msg.channel_id, pair.a.channel().channel_id().expect("id"));
    assert_eq!(msg.next_commitment_number, 1);
    assert_eq!(msg.next_revocation_number, 0);
    assert_eq!(msg.your_last_per_commitment_secret, [0; 32]);
    assert_eq!(
        msg.my_current_per_commitment_point,
        pair.a
            .channel()
            .our_params()
            .keys
            .first_per_commitment_point
    );
    assert!(msg.next_funding.is_none() && msg.my_current_funding_locked.is_none());
}

#[test]
fn no_reestablish_for_a_transient_channel() {
    let mut pair = Pair::new();
    let peer = pair.b.node_id;
    pair.start(super::harness::outbound_params(peer));
    assert!(pair.a.channel().channel_reestablish().is_none());
}

#[test]
fn lost_channel_ready_is_retransmitted_on_reconnect() {
    let mut pair = Pair::open_to_pending();
    pair.drop.push("channel_ready");
    pair.confirm_funding();
    pair.mine(2);
    pair.run();
    assert_eq!(pair.a.state(), ChannelState::AwaitingChannelReady);
    assert_eq!(pair.b.state(), ChannelState::AwaitingChannelReady);
    pair.drop.clear();
    reconnect(&mut pair);
    assert_eq!(pair.a.state(), ChannelState::Ready);
    assert_eq!(pair.b.state(), ChannelState::Ready);
}

#[test]
fn retransmission_after_a_restart_from_the_record() {
    let mut pair = Pair::open_to_pending();
    pair.drop.push("channel_ready");
    pair.confirm_funding();
    pair.mine(2);
    pair.run();
    pair.drop.clear();
    // Both processes are killed and restarted from their last record.
    pair.a.restart();
    pair.b.restart();
    reconnect(&mut pair);
    assert_eq!(pair.a.state(), ChannelState::Ready);
    assert_eq!(pair.b.state(), ChannelState::Ready);
}

#[test]
fn channel_ready_not_sent_yet_is_not_retransmitted() {
    let mut pair = Pair::open_to_pending();
    let msg = their_reestablish(&pair);
    let actions = pair
        .a
        .input(Input::Message(Message::ChannelReestablish(msg)));
    assert!(actions.is_empty());
}

#[test]
fn retransmission_follows_the_persisted_mark() {
    let mut pair = Pair::open_to_pending();
    pair.confirm_funding();
    pair.mine(2);
    let msg = their_reestablish(&pair);
    let before = pair.a.channel().to_record();
    let actions = pair
        .a
        .input(Input::Message(Message::ChannelReestablish(msg)));
    assert_eq!(kinds(&actions), ["Send(channel_ready)"]);
    crate::channel::check_action_order(&actions, Some(&before))
        .expect("the ready mark was persisted earlier");
    assert!(crate::channel::check_action_order(&actions, None).is_err());
}

#[test]
fn splice_funding_locked_suppresses_retransmission() {
    let mut pair = Pair::open_to_pending();
    pair.confirm_funding();
    pair.mine(2);
    let mut msg = their_reestablish(&pair);
    msg.my_current_funding_locked = Some(FundingRetransmit {
        txid: Txid::from_byte_array([3; 32]),
        retransmit_flags: 0,
    });
    let actions = pair
        .a
        .input(Input::Message(Message::ChannelReestablish(msg.clone())));
    assert!(actions.is_empty());
    // Naming the channel's own funding is not a splice: retransmit.
    msg.my_current_funding_locked = Some(FundingRetransmit {
        txid: pair.funding().compute_txid(),
        retransmit_flags: 0,
    });
    let actions = pair
        .a
        .input(Input::Message(Message::ChannelReestablish(msg)));
    assert_eq!(kinds(&actions), ["Send(channel_ready)"]);
}

#[test]
fn unknown_next_funding_gets_tx_abort() {
    let mut pair = Pair::open_to_pending();
    pair.confirm_funding();
    pair.mine(2);
    let mut msg = their_reestablish(&pair);
    msg.next_funding = Some(FundingRetransmit {
        txid: Txid::from_byte_array([4; 32]),
        retransmit_flags: 1,
    });
    let actions = pair
        .a
        .input(Input::Message(Message::ChannelReestablish(msg)));
    assert_eq!(kinds(&actions), ["Send(tx_abort)", "Send(channel_ready)"]);
    assert_eq!(pair.a.state(), ChannelState::AwaitingChannelReady);
}

#[test]
fn next_commitment_number_zero_fails_and_broadcasts() {
    let mut pair = Pair::open_to_pending();
    let mut msg = their_reestablish(&pair);
    msg.next_commitment_number = 0;
    let actions = pair
        .a
        .input(Input::Message(Message::ChannelReestablish(msg)));
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "Emit(ChannelOpenFailed)",
            "Emit(ChannelClosing)",
            "BroadcastFunding",
            "BroadcastCommitment",
            "WatchFunding",
            "WatchOutput",
            // The error goes last: persist, broadcast, then tell the peer.
            "Send(error)"
        ]
    );
    assert_eq!(pair.a.state(), ChannelState::Closing);
}

#[test]
fn next_commitment_number_ahead_fails() {
    // A fundee that saw the funding confirm closes with its commitment...
    let mut pair = Pair::open_to_pending();
    pair.confirm_funding();
    let mut msg = their_reestablish(&pair);
    msg.next_commitment_number = 2;
    let actions = pair
        .b
        .input(Input::Message(Message::ChannelReestablish(msg)));
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
    assert_eq!(pair.b.state(), ChannelState::Closing);
    // ...one that never saw it has nothing on chain to close.
    let mut pair = Pair::open_to_pending();
    let mut msg = their_reestablish(&pair);
    msg.next_commitment_number = 2;
    let actions = pair
        .b
        .input(Input::Message(Message::ChannelReestablish(msg)));
    assert_eq!(
        kinds(&actions),
        ["Persist", "Emit(ChannelOpenFailed)", "Send(error)"]
    );
    assert_eq!(pair.b.state(), ChannelState::FailedUnfunded);
}

#[test]
fn proof_that_we_fell_behind_fails_without_broadcasting() {
    let mut pair = Pair::open_to_pending();
    let mut msg = their_reestablish(&pair);
    // The peer claims we revoked commitment 0 and proves it with our real secret.
    msg.next_revocation_number = 1;
    msg.next_commitment_number = 2;
    msg.your_last_per_commitment_secret =
        pair.a.keys.per_commitment_secret(INITIAL_COMMITMENT_NUMBER);
    let actions = pair
        .a
        .input(Input::Message(Message::ChannelReestablish(msg)));
    assert_eq!(
        kinds(&actions),
        ["Persist", "Emit(ChannelOpenFailed)", "Send(error)"]
    );
    assert!(!actions.iter().any(|a| matches!(
        a,
        Action::Broadcast {
            kind: crate::channel::BroadcastKind::Commitment,
            ..
        }
    )));
    assert!(pair
        .a
        .channel()
        .failure_reason()
        .is_some_and(|r| r.contains("fallen behind")));
}

#[test]
fn wrong_secret_or_nonzero_secret_fails_the_channel() {
    let mut pair = Pair::open_to_pending();
    let mut msg = their_reestablish(&pair);
    msg.next_revocation_number = 1;
    msg.your_last_per_commitment_secret = [8; 32];
    let actions = pair
        .a
        .input(Input::Message(Message::ChannelReestablish(msg)));
    assert!(kinds(&actions).contains(&"BroadcastCommitment".to_string()));
    assert_eq!(pair.a.state(), ChannelState::Closing);

    for confirmed in [true, false] {
        let mut pair = Pair::open_to_pending();
        if confirmed {
            pair.confirm_funding();
        }
        let mut msg = their_reestablish(&pair);
        msg.your_last_per_commitment_secret = [8; 32];
        let actions = pair
            .b
            .input(Input::Message(Message::ChannelReestablish(msg)));
        let mut expected = vec!["Persist", "Emit(ChannelOpenFailed)"];
        if confirmed {
            // Only a fundee that saw its funding on chain has a commitment to broadcast
            // (and the error goes after it).
            expected.extend([
                "Emit(ChannelClosing)",
                "BroadcastCommitment",
                "WatchFunding",
                "WatchOutput",
            ]);
        }
        expected.push("Send(error)");
        assert_eq!(kinds(&actions), expected, "confirmed: {confirmed}");
        assert!(pair
            .b
            .channel()
            .failure_reason()
            .is_some_and(|r| r.contains("must be zero")));
    }
}

#[test]
fn reestablish_for_another_channel_is_ignored() {
    let mut pair = Pair::open_to_pending();
    let mut msg = their_reestablish(&pair);
    msg.channel_id = super::harness::TEMP_ID;
    msg.next_commitment_number = 0;
    assert!(pair
        .a
        .input(Input::Message(Message::ChannelReestablish(msg)))
        .is_empty());
    assert_eq!(pair.a.state(), ChannelState::AwaitingConfirmations);
}
