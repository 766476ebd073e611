//! On-chain resolution, continued: reorgs that reopen a closed channel, cooperative closes
//! (through `start_closing` and through the negotiation), uneconomical outputs, a missing
//! destination, and the durability checker on reordered closing actions.

use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, TxOut};

use super::harness::{kinds, Node, Pair};
use super::resolve::{block, broadcasts, check_restart, fees, node, spent, wallet_script};
use crate::channel::{
    check_action_order, Action, BroadcastKind, ChannelEvent, ChannelState, ClaimStatus, CloseKind,
    ClosingStatus, Input, OrderViolation,
};
use crate::wire::{ChannelReestablish, ErrorMessage, Message};

#[test]
fn reorgs_reopen_resolve_again_and_reclose() {
    let mut pair = Pair::open_to_ready();
    pair.a.destination = wallet_script(1);
    let actions = pair.a.input(Input::ForceClose);
    let commitment = broadcasts(&actions, BroadcastKind::Commitment).remove(0);
    let csv = u32::from(
        pair.a
            .channel()
            .their_params()
            .expect("theirs")
            .to_self_delay,
    );
    let h = pair.height + 1;
    pair.mine(1);
    pair.a.input(Input::FundingSpent {
        spending_tx: commitment.clone(),
        confirmation_height: Some(h),
    });
    // The commitment's block is reorged out: unconfirmed, rebroadcast, watched.
    let actions = pair.a.input(Input::FundingUnspent);
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "BroadcastCommitment",
            "WatchFunding",
            "WatchOutput"
        ]
    );
    assert_eq!(
        pair.a.channel().closing_status(pair.height),
        Some(ClosingStatus::OnChain {
            kind: CloseKind::LocalForce,
            confirmed_at: None,
            done_at: None
        })
    );
    // Mined again 3 blocks later: the to_local timelock counts from there.
    pair.mine(2);
    let h = pair.height + 1;
    pair.mine(1);
    pair.a.input(Input::FundingSpent {
        spending_tx: commitment.clone(),
        confirmation_height: Some(h),
    });
    while pair.height < h + csv - 2 {
        pair.mine(1);
        assert!(broadcasts(pair.a.history.last().expect("acted"), BroadcastKind::Sweep).is_empty());
    }
    let actions = block(&mut pair, true);
    let sweep = broadcasts(&actions, BroadcastKind::Sweep).remove(0);
    let outpoint = sweep.input[0].previous_output;
    let h2 = pair.height + 1;
    pair.mine(1);
    pair.a.input(Input::OutputSpent {
        outpoint,
        spending_tx: sweep.clone(),
        confirmation_height: Some(h2),
    });
    pair.mine(5);
    assert_eq!(pair.a.state(), ChannelState::Closed);
    let closed = |n: &Node| {
        n.events
            .iter()
            .filter(|e| matches!(e, ChannelEvent::ChannelClosed { .. }))
            .count()
    };
    let closing = |n: &Node| {
        n.events
            .iter()
            .filter(|e| matches!(e, ChannelEvent::ChannelClosing { .. }))
            .count()
    };
    assert_eq!((closing(&pair.a), closed(&pair.a)), (1, 1));
    // The sweep's block is reorged out: Closing again, ChannelClosing again (same kind).
    let actions = pair.a.input(Input::OutputUnspent { outpoint });
    assert_eq!(kinds(&actions), ["Persist", "Emit(ChannelClosing)"]);
    assert_eq!(pair.a.state(), ChannelState::Closing);
    assert!(matches!(
        pair.a.events.last(),
        Some(ChannelEvent::ChannelClosing {
            kind: CloseKind::LocalForce,
            ..
        })
    ));
    check_restart(&pair.a);
    // The next block rebuilds and rebroadcasts the sweep (persisted first).
    let actions = block(&mut pair, true);
    assert_eq!(
        kinds(&actions),
        ["Persist", "BroadcastSweep", "WatchOutput"]
    );
    let again = broadcasts(&actions, BroadcastKind::Sweep).remove(0);
    let h3 = pair.height + 1;
    pair.mine(1);
    pair.a.input(Input::OutputSpent {
        outpoint,
        spending_tx: again,
        confirmation_height: Some(h3),
    });
    pair.mine(5);
    assert_eq!(pair.a.state(), ChannelState::Closed);
    assert_eq!((closing(&pair.a), closed(&pair.a)), (2, 2));
    // The commitment itself reorged out of a closed channel: back to Closing, rebroadcast.
    let actions = pair.a.input(Input::FundingUnspent);
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "Emit(ChannelClosing)",
            "BroadcastCommitment",
            "WatchFunding",
            "WatchOutput"
        ]
    );
    assert_eq!(pair.a.state(), ChannelState::Closing);
}

#[test]
fn a_cooperative_close_through_start_closing() {
    let mut pair = Pair::open_to_ready();
    let ours = wallet_script(8);
    pair.a.destination = ours.clone();
    let funding = pair.a.channel().funding().expect("funding").outpoint;
    let mut tx = pair
        .a
        .channel()
        .signed_our_commitment(&pair.a.ctx())
        .expect("a tx spending the funding");
    tx.lock_time = bitcoin::absolute::LockTime::ZERO;
    tx.input[0].sequence = bitcoin::Sequence::MAX;
    tx.output = vec![
        TxOut {
            value: Amount::from_sat(899_000),
            script_pubkey: ours,
        },
        TxOut {
            value: Amount::from_sat(100_000),
            script_pubkey: wallet_script(9),
        },
    ];
    assert_eq!(tx.input[0].previous_output, funding);
    let kind = CloseKind::Cooperative {
        initiator: crate::channel::Initiator::Local,
    };
    let node = &mut pair.a;
    let mut channel = node.channel.take().expect("channel");
    let actions = channel.start_closing(kind, tx.clone(), None, "agreed".into(), &node.ctx());
    node.channel = Some(channel);
    node.apply(&actions);
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "Emit(ChannelClosing)",
            "BroadcastMutualClose",
            "WatchFunding"
        ]
    );
    // Rebroadcast until mined; the peer's error or reestablish gets nothing (no error that
    // could make it broadcast its commitment over ours).
    assert_eq!(kinds(&block(&mut pair, true)), ["BroadcastMutualClose"]);
    let id = pair.a.channel().channel_id().expect("id");
    let reestablish = ChannelReestablish {
        channel_id: id,
        next_commitment_number: 0,
        next_revocation_number: 0,
        your_last_per_commitment_secret: [0; 32],
        my_current_per_commitment_point: pair
            .a
            .channel()
            .our_params()
            .keys
            .first_per_commitment_point,
        next_funding: None,
        my_current_funding_locked: None,
    };
    assert!(pair
        .a
        .input(Input::Message(Message::ChannelReestablish(reestablish)))
        .is_empty());
    assert!(pair
        .a
        .input(Input::Message(Message::Error(ErrorMessage::new(id, "x"))))
        .is_empty());
    let h = pair.height + 1;
    pair.mine(1);
    assert_eq!(
        kinds(&pair.a.input(Input::FundingSpent {
            spending_tx: tx.clone(),
            confirmation_height: Some(h),
        })),
        ["Persist"]
    );
    assert_eq!(
        pair.a.channel().claimable(h),
        vec![crate::channel::Claimable {
            amount_sat: 899_000,
            status: ClaimStatus::AwaitingConfirmations {
                confirmed_at: Some(h)
            }
        }]
    );
    pair.mine(5);
    assert!(matches!(
        pair.a.events.last(),
        Some(ChannelEvent::ChannelClosed {
            claimed_sat: 899_000,
            ..
        })
    ));
}

#[test]
fn an_output_too_small_to_sweep_is_recorded_and_never_swept() {
    let mut pair = Pair::open_to_ready();
    pair.a.destination = wallet_script(1);
    // A fee estimate no output of this channel can pay.
    pair.a.estimates = fees(50_000_000, 50_000_000);
    let theirs = pair
        .b
        .channel()
        .signed_our_commitment(&pair.b.ctx())
        .expect("commitment");
    let actions = pair.a.input(Input::FundingSpent {
        spending_tx: theirs,
        confirmation_height: Some(pair.height),
    });
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "Emit(ChannelFailed)",
            "Emit(ChannelClosing)",
            "WatchFunding"
        ]
    );
    assert_eq!(
        pair.a.channel().claimable(pair.height)[0].status,
        ClaimStatus::Uneconomical
    );
    pair.mine(6);
    assert_eq!(pair.a.state(), ChannelState::Closed);
}

#[test]
fn without_a_destination_the_sweep_waits_and_says_so() {
    let mut pair = Pair::open_to_ready();
    pair.a.no_destination = true;
    let theirs = pair
        .b
        .channel()
        .signed_our_commitment(&pair.b.ctx())
        .expect("commitment");
    pair.a.input(Input::FundingSpent {
        spending_tx: theirs,
        confirmation_height: Some(pair.height),
    });
    assert!(pair.a.channel().sweep_blocked(&pair.a.ctx()).is_some());
    pair.mine(10);
    assert_eq!(pair.a.state(), ChannelState::Closing);
    assert!(pair.a.broadcasts.len() == 1, "only the funding of the open");
    pair.a.no_destination = false;
    assert!(pair.a.channel().sweep_blocked(&pair.a.ctx()).is_none());
    let actions = block(&mut pair, true);
    assert_eq!(
        kinds(&actions),
        ["Persist", "BroadcastSweep", "WatchOutput"]
    );
}

/// The checker refuses each closing broadcast or event that comes before its record.
#[test]
fn the_checker_catches_closing_actions_before_their_record() {
    let mut pair = Pair::open_to_ready();
    pair.a.destination = wallet_script(1);
    let before = pair.a.channel().to_record();
    let actions = pair.a.input(Input::ForceClose);
    // Commitment broadcast before the Closing record: refused (the Ready record is not enough).
    let mut reordered = actions.clone();
    reordered.swap(0, 1);
    assert!(matches!(
        check_action_order(&reordered, Some(&before)),
        Err(OrderViolation::BroadcastBeforePersist {
            what: "commitment",
            ..
        })
    ));
    check_action_order(&actions, Some(&before)).expect("in order");
    // A sweep before the record holding it.
    let commitment = broadcasts(&actions, BroadcastKind::Commitment).remove(0);
    let h = pair.height + 1;
    pair.mine(1);
    pair.a.input(Input::FundingSpent {
        spending_tx: commitment,
        confirmation_height: Some(h),
    });
    let csv = u32::from(
        pair.a
            .channel()
            .their_params()
            .expect("theirs")
            .to_self_delay,
    );
    pair.mine(csv - 2);
    let before = pair.a.channel().to_record();
    let actions = block(&mut pair, true);
    assert_eq!(
        kinds(&actions),
        ["Persist", "BroadcastSweep", "WatchOutput"]
    );
    let mut reordered = actions.clone();
    reordered.swap(0, 1);
    assert!(matches!(
        check_action_order(&reordered, Some(&before)),
        Err(OrderViolation::BroadcastBeforePersist { what: "sweep", .. })
    ));
    check_action_order(&actions, Some(&before)).expect("in order");
    // ChannelClosing with a record that is not closing; ChannelClosed with a Closing one.
    let Action::Commit(commit) = &actions[0] else {
        panic!("commit");
    };
    let mut wrong = commit.clone();
    wrong.record = before.clone();
    let id = pair.a.channel().channel_id().expect("id");
    let who = pair.a.channel().counterparty_node_id();
    let closing_event = ChannelEvent::ChannelClosing {
        counterparty_node_id: who,
        channel_id: id,
        kind: CloseKind::LocalForce,
        reason: "x".into(),
    };
    let mut ready = Pair::open_to_ready();
    let ready_record = ready.a.channel().to_record();
    let mut w = commit.clone();
    w.record = ready_record;
    w.events = vec![closing_event];
    assert!(matches!(
        check_action_order(&[Action::Commit(w)], None),
        Err(OrderViolation::EmitBeforePersist {
            event: "ChannelClosing",
            ..
        })
    ));
    wrong.events = vec![ChannelEvent::ChannelClosed {
        counterparty_node_id: who,
        channel_id: id,
        kind: CloseKind::LocalForce,
        claimed_sat: 1,
        closing_txid: bitcoin::Txid::all_zeros(),
    }];
    assert!(matches!(
        check_action_order(&[Action::Commit(wrong)], None),
        Err(OrderViolation::EmitBeforePersist {
            event: "ChannelClosed",
            ..
        })
    ));
    // A mutual close with no record holding it as cooperative.
    let tx = ready
        .a
        .channel()
        .signed_our_commitment(&ready.a.ctx())
        .expect("tx");
    assert!(matches!(
        check_action_order(
            &[Action::Broadcast {
                tx,
                kind: BroadcastKind::MutualClose
            }],
            Some(&ready.a.channel().to_record())
        ),
        Err(OrderViolation::BroadcastBeforePersist {
            what: "cooperative close",
            ..
        })
    ));
    let _ = OutPoint::null();
    ready.a.input(Input::ForceClose);
}

/// The lead's negotiation agrees a close (Negotiating); its spend moves both sides to
/// Closing{Cooperative} without a second ChannelClosing, nothing is swept (the outputs pay the
/// wallets), and 6 confirmations close the channel with each side's output as claimed.
#[test]
fn an_agreed_cooperative_close_resolves_when_its_spend_confirms() {
    for initiator_is_funder in [true, false] {
        let mut pair = Pair::open_to_ready();
        node(&mut pair, initiator_is_funder).input(Input::Close { script: None });
        pair.run();
        let tx = pair
            .a
            .channel()
            .agreed_closing_tx()
            .cloned()
            .expect("agreed");
        assert_eq!(pair.a.state(), ChannelState::Negotiating);
        let h = pair.height + 1;
        pair.mine(1);
        let (a, b) = spent(&mut pair, &tx, Some(h));
        for (actions, who) in [(&a, "a"), (&b, "b")] {
            assert_eq!(kinds(actions), ["Persist", "WatchFunding"], "{who}");
        }
        for n in [&pair.a, &pair.b] {
            assert!(matches!(
                n.channel().close_kind(),
                Some(CloseKind::Cooperative { .. })
            ));
            check_restart(n);
        }
        pair.mine(4);
        assert_eq!(pair.a.state(), ChannelState::Closing);
        pair.mine(1);
        for n in [&pair.a, &pair.b] {
            assert_eq!(n.state(), ChannelState::Closed);
            let ours: u64 = tx
                .output
                .iter()
                .filter(|o| o.script_pubkey == n.destination)
                .map(|o| o.value.to_sat())
                .sum();
            assert!(ours > 0);
            let closing = n
                .events
                .iter()
                .filter(|e| matches!(e, ChannelEvent::ChannelClosing { .. }))
                .count();
            assert_eq!(closing, 1, "one ChannelClosing for the whole close");
            assert!(matches!(
                n.events.last(),
                Some(ChannelEvent::ChannelClosed { claimed_sat, closing_txid, .. })
                    if *claimed_sat == ours && *closing_txid == tx.compute_txid()
            ));
        }
    }
}
