//! Commitment updates between two Tern channels: `update_fee`, `commitment_signed` and
//! `revoke_and_ack` in every order, with disconnects and restarts from every persisted record
//! in between. Every step runs the durability checker and the record round trip (harness).

use super::harness::{kinds, Node, Pair};
use super::reestablish::reconnect;
use crate::channel::{Action, ChannelState, Input};
use crate::wire::{
    CommitmentSigned, Message, RevokeAndAck, UpdateAddHtlc, UpdateFee, ONION_PACKET_LEN,
};

/// Both sides agree: each one's commitment is the one the other signed, nothing in flight.
pub fn assert_agree(pair: &Pair) {
    let a = pair.a.channel().commitments().expect("a ready");
    let b = pair.b.channel().commitments().expect("b ready");
    assert_eq!(a.local.number, b.remote.number, "a's commitment number");
    assert_eq!(b.local.number, a.remote.number, "b's commitment number");
    assert_eq!(a.local.spec.feerate_per_kw, b.remote.spec.feerate_per_kw);
    assert_eq!(b.local.spec.feerate_per_kw, a.remote.spec.feerate_per_kw);
    assert_eq!(a.local.spec.our_msat, b.remote.spec.their_msat);
    assert_eq!(a.local.point, b.remote.point, "a's point as b knows it");
    assert_eq!(b.local.point, a.remote.point, "b's point as a knows it");
    assert!(
        !a.pending() && !b.pending(),
        "nothing in flight: {a:?} {b:?}"
    );
    assert_eq!(a.local.spec.feerate_per_kw, b.local.spec.feerate_per_kw);
    // Each side holds every secret of the other's revoked commitments.
    for (who, c, other) in [("a", &a, &pair.b), ("b", &b, &pair.a)] {
        for n in 0..c.remote.number {
            let index = crate::keys::INITIAL_COMMITMENT_NUMBER - n;
            assert_eq!(
                c.their_secrets.get_secret(index),
                Some(other.ctx().secret(n)),
                "{who} holds the peer's secret {n}"
            );
        }
    }
    // Our latest commitment is fully signed and spends the funding.
    for node in [&pair.a, &pair.b] {
        let tx = node
            .channel()
            .signed_our_commitment(&node.ctx())
            .expect("signed commitment");
        let funding = node.channel().funding().expect("funding").outpoint;
        assert_eq!(tx.input[0].previous_output, funding);
    }
}

fn set_feerate(node: &mut Node, feerate_per_kw: u32) -> Vec<Action> {
    node.input(Input::SetFeerate { feerate_per_kw })
}

#[test]
fn funder_update_fee_is_committed_on_both_sides() {
    let mut pair = Pair::open_to_ready();
    let actions = set_feerate(&mut pair.a, 5_000);
    assert_eq!(
        kinds(&actions),
        ["Persist", "Send(update_fee)", "Send(commitment_signed)"]
    );
    assert!(pair.a.channel().update_pending());
    assert_eq!(pair.deliver(true), Some("update_fee"));
    assert!(
        pair.b.stored == pair.b.stored.clone(),
        "update_fee stores nothing"
    );
    assert_eq!(pair.deliver(true), Some("commitment_signed"));
    assert_eq!(
        kinds(pair.b.history.last().expect("b acted")),
        ["Persist", "Send(revoke_and_ack)", "Send(commitment_signed)"]
    );
    pair.run();
    assert_agree(&pair);
    for node in [&pair.a, &pair.b] {
        assert_eq!(node.channel().commitment_number(), 1);
        assert_eq!(node.channel().commitment_feerate_per_kw(), 5_000);
        assert!(!node.channel().update_pending());
        assert_eq!(node.state(), ChannelState::Ready);
    }
    // A second update moves both to commitment 2; the same feerate again does nothing.
    set_feerate(&mut pair.a, 3_000);
    pair.run();
    assert_agree(&pair);
    assert_eq!(pair.b.channel().commitment_number(), 2);
    assert!(set_feerate(&mut pair.a, 3_000).is_empty());
}

#[test]
fn update_fee_before_the_first_is_irrevocably_committed() {
    let mut pair = Pair::open_to_ready();
    set_feerate(&mut pair.a, 5_000);
    assert_eq!(pair.deliver(true), Some("update_fee"));
    assert_eq!(pair.deliver(true), Some("commitment_signed"));
    // Waiting for b's revocation: the second update goes out alone.
    assert_eq!(
        kinds(&set_feerate(&mut pair.a, 7_000)),
        ["Send(update_fee)"]
    );
    pair.run();
    assert_agree(&pair);
    assert_eq!(pair.a.channel().commitment_feerate_per_kw(), 7_000);
    assert_eq!(pair.b.channel().commitment_feerate_per_kw(), 7_000);
}

#[test]
fn a_fundee_never_sends_update_fee_and_refuses_one_from_itself_as_peer() {
    let mut pair = Pair::open_to_ready();
    assert!(
        set_feerate(&mut pair.b, 5_000).is_empty(),
        "the fundee pays no fee"
    );
    let before = pair.a.stored.clone();
    let id = pair.a.channel().channel_id().expect("id");
    let actions = pair.a.input(Input::Message(Message::UpdateFee(UpdateFee {
        channel_id: id,
        feerate_per_kw: 5_000,
    })));
    assert_eq!(kinds(&actions), ["Send(warning)", "Disconnect"]);
    assert_eq!(pair.a.stored, before);
    assert!(!pair.a.channel().update_pending());
}

#[test]
fn fundee_refuses_a_feerate_below_the_floor_or_beyond_the_funders_means() {
    for feerate_per_kw in [252, 2_000_000] {
        let mut pair = Pair::open_to_ready();
        let id = pair.b.channel().channel_id().expect("id");
        let actions = pair.b.input(Input::Message(Message::UpdateFee(UpdateFee {
            channel_id: id,
            feerate_per_kw,
        })));
        assert_eq!(
            kinds(&actions),
            ["Send(warning)", "Disconnect"],
            "{feerate_per_kw}"
        );
        assert!(!pair.b.channel().update_pending());
    }
}

#[test]
fn funder_caps_its_feerate_at_what_it_can_pay_with_its_reserve() {
    let mut pair = Pair::open_to_ready();
    set_feerate(&mut pair.a, 5_000_000);
    pair.run();
    assert_agree(&pair);
    let f = pair.a.channel().commitment_feerate_per_kw();
    assert!(f > 2_500 && f < 5_000_000, "capped at {f}");
}

#[test]
fn bad_commitment_signature_is_a_warning_and_changes_nothing() {
    let mut pair = Pair::open_to_ready();
    set_feerate(&mut pair.a, 5_000);
    assert_eq!(pair.deliver(true), Some("update_fee"));
    let Some(Message::CommitmentSigned(mut cs)) = pair.a.outbox.pop_front() else {
        panic!("commitment_signed expected");
    };
    let before = pair.b.stored.clone();
    cs.signature = pair.b.channel().their_commitment_signature().expect("sig");
    let actions = pair.b.input(Input::Message(Message::CommitmentSigned(cs)));
    assert_eq!(kinds(&actions), ["Send(warning)", "Disconnect"]);
    assert_eq!(pair.b.stored, before);
    assert_eq!(pair.b.channel().commitment_number(), 0);
    // The link drops; reestablish retransmits both and the update completes.
    reconnect(&mut pair);
    assert_agree(&pair);
    assert_eq!(pair.b.channel().commitment_feerate_per_kw(), 5_000);
}

#[test]
fn a_wrong_revocation_secret_fails_the_channel() {
    let mut pair = Pair::open_to_ready();
    set_feerate(&mut pair.a, 5_000);
    pair.deliver(true);
    pair.deliver(true);
    let Some(Message::RevokeAndAck(mut raa)) = pair.b.outbox.pop_front() else {
        panic!("revoke_and_ack expected");
    };
    raa.per_commitment_secret = [0x11; 32];
    let actions = pair.a.input(Input::Message(Message::RevokeAndAck(raa)));
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "Emit(ChannelFailed)",
            "Emit(ChannelClosing)",
            "BroadcastCommitment",
            "WatchFunding",
            "WatchOutput",
            "Send(error)"
        ]
    );
    assert_eq!(pair.a.state(), ChannelState::Closing);
}

#[test]
fn unexpected_revocation_is_a_warning() {
    let mut pair = Pair::open_to_ready();
    let id = pair.a.channel().channel_id().expect("id");
    let raa = RevokeAndAck {
        channel_id: id,
        per_commitment_secret: pair.b.ctx().secret(0),
        next_per_commitment_point: pair.b.ctx().point(2).expect("point"),
    };
    let actions = pair.a.input(Input::Message(Message::RevokeAndAck(raa)));
    assert_eq!(kinds(&actions), ["Send(warning)", "Disconnect"]);
    let cs = CommitmentSigned {
        channel_id: id,
        signature: pair.a.channel().their_commitment_signature().expect("sig"),
        htlc_signatures: vec![],
        funding_txid: None,
    };
    // No update from the peer: the signature is for our commitment 1 at the same feerate,
    // which it is not (it signs commitment 0).
    let actions = pair.a.input(Input::Message(Message::CommitmentSigned(cs)));
    assert_eq!(kinds(&actions), ["Send(warning)", "Disconnect"]);
}

#[test]
fn htlc_updates_get_a_warning_and_nothing_is_stored() {
    let mut pair = Pair::open_to_ready();
    let id = pair.b.channel().channel_id().expect("id");
    let before = pair.b.stored.clone();
    let add = UpdateAddHtlc {
        channel_id: id,
        id: 0,
        amount_msat: 10_000,
        payment_hash: [1; 32],
        cltv_expiry: 500,
        onion_routing_packet: Box::new([0; ONION_PACKET_LEN]),
        blinded_path: None,
    };
    for _ in 0..3 {
        let actions = pair
            .b
            .input(Input::Message(Message::UpdateAddHtlc(add.clone())));
        assert_eq!(kinds(&actions), ["Send(warning)", "Disconnect"]);
        assert_eq!(pair.b.stored, before);
        let Some(Action::Send(Message::Warning(w))) = actions.first() else {
            panic!("warning");
        };
        assert!(
            w.printable().contains("update_add_htlc"),
            "{}",
            w.printable()
        );
        reconnect(&mut pair);
        assert_eq!(pair.b.state(), ChannelState::Ready);
    }
}

#[test]
fn updates_before_ready_are_refused() {
    let mut pair = Pair::open_to_pending();
    let id = pair.b.channel().channel_id().expect("id");
    let actions = pair.b.input(Input::Message(Message::UpdateFee(UpdateFee {
        channel_id: id,
        feerate_per_kw: 5_000,
    })));
    assert_eq!(kinds(&actions), ["Send(warning)", "Disconnect"]);
    assert!(set_feerate(&mut pair.a, 5_000).is_empty());
}

/// One step of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The funder asks for a new feerate (2,500 + 1,000 × n).
    Fee,
    /// One message a → b.
    ToB,
    /// One message b → a.
    ToA,
    /// The link drops (messages in flight lost) and comes back.
    Reconnect,
    /// `a` is killed and restarts from its last record; the link drops and comes back.
    RestartA,
    /// Same for `b`.
    RestartB,
}

fn reconnect_quiet(pair: &mut Pair) {
    pair.a.outbox.clear();
    pair.b.outbox.clear();
    pair.a.input(Input::PeerDisconnected);
    pair.b.input(Input::PeerDisconnected);
    pair.a.input(Input::PeerReconnected);
    pair.b.input(Input::PeerReconnected);
}

const STEPS: [Step; 6] = [
    Step::Fee,
    Step::ToB,
    Step::ToA,
    Step::Reconnect,
    Step::RestartA,
    Step::RestartB,
];

/// Performs one step; false when it had nothing to do (a delivery with nothing in flight).
fn perform(pair: &mut Pair, step: Step, fees: u32) -> bool {
    match step {
        Step::Fee => {
            set_feerate(&mut pair.a, 2_500 + 1_000 * fees);
        }
        Step::ToB => return pair.deliver(true).is_some(),
        Step::ToA => return pair.deliver(false).is_some(),
        Step::Reconnect => reconnect_quiet(pair),
        Step::RestartA => {
            pair.a.restart();
            reconnect_quiet(pair);
        }
        Step::RestartB => {
            pair.b.restart();
            reconnect_quiet(pair);
        }
    }
    true
}

/// From `pair` (after `steps`): deliver everything, reconnect once more, deliver again; both
/// must agree, without a warning or error ever sent, and one more update must complete.
fn settle_and_check(mut pair: Pair, steps: &[Step]) {
    for node in [&pair.a, &pair.b] {
        assert_eq!(node.state(), ChannelState::Ready, "{steps:?}");
    }
    pair.run();
    reconnect_quiet(&mut pair);
    pair.run();
    assert_agree(&pair);
    set_feerate(&mut pair.a, 9_999);
    pair.run();
    assert_agree(&pair);
    assert_eq!(
        pair.b.channel().commitment_feerate_per_kw(),
        9_999,
        "{steps:?}"
    );
    for node in [&pair.a, &pair.b] {
        let complained = node
            .history
            .iter()
            .flatten()
            .any(|a| matches!(a, Action::Send(Message::Error(_) | Message::Warning(_))));
        assert!(!complained, "{steps:?}: a warning or an error was sent");
    }
}

/// Depth-first over every sequence of steps (at most `max_fees` fee requests and two
/// disruptions), checking agreement after settling from every prefix. Returns the count.
fn explore(pair: &Pair, steps: &mut Vec<Step>, depth: usize, max_fees: usize) -> usize {
    settle_and_check(pair.clone(), steps);
    let mut count = 1;
    if depth == 0 {
        return count;
    }
    for step in STEPS {
        let fees = steps.iter().filter(|s| **s == Step::Fee).count();
        let disruptions = steps
            .iter()
            .filter(|s| matches!(s, Step::Reconnect | Step::RestartA | Step::RestartB))
            .count();
        let disruptive = matches!(step, Step::Reconnect | Step::RestartA | Step::RestartB);
        if (step == Step::Fee && fees >= max_fees) || (disruptive && disruptions >= 2) {
            continue;
        }
        let mut next = pair.clone();
        if !perform(&mut next, step, u32::try_from(fees).unwrap_or(0) + 1) {
            continue;
        }
        steps.push(step);
        count += explore(&next, steps, depth - 1, max_fees);
        steps.pop();
    }
    count
}

#[test]
fn every_update_sequence_with_disconnects_and_restarts_ends_in_agreement() {
    let full = std::env::var_os("TERN_FULL").is_some();
    let (depth, max_fees) = if full { (8, 3) } else { (6, 2) };
    let mut pair = Pair::open_to_ready();
    set_feerate(&mut pair.a, 3_500);
    let count = explore(&pair, &mut vec![Step::Fee], depth, max_fees);
    eprintln!(
        "update matrix: {count} sequences of up to {} steps",
        depth + 1
    );
    assert!(count > 1_000, "{count}");
}

#[test]
fn the_checker_catches_update_messages_sent_before_their_commit() {
    use crate::channel::{DurabilityChecker, OrderViolation};
    let mut pair = Pair::open_to_ready();
    let before_a = pair.a.channel().to_record();
    let actions = set_feerate(&mut pair.a, 5_000);
    // commitment_signed ahead of the commit that holds it.
    let mut swapped = actions.clone();
    swapped.swap(0, 2);
    let err = DurabilityChecker::with_persisted([&before_a])
        .observe(&swapped)
        .expect_err("commitment_signed before its commit");
    assert!(matches!(
        err,
        OrderViolation::SendBeforePersist {
            message: "commitment_signed",
            ..
        }
    ));
    // revoke_and_ack ahead of the commit of the new local commitment.
    let before_b = pair.b.channel().to_record();
    pair.deliver(true);
    pair.deliver(true);
    let actions = pair.b.history.last().expect("b acted").clone();
    assert_eq!(
        kinds(&actions),
        ["Persist", "Send(revoke_and_ack)", "Send(commitment_signed)"]
    );
    let err = DurabilityChecker::with_persisted([&before_b])
        .observe(&actions[1..])
        .expect_err("revoke_and_ack before its commit");
    assert!(matches!(
        err,
        OrderViolation::SendBeforePersist {
            message: "revoke_and_ack",
            ..
        }
    ));
    DurabilityChecker::with_persisted([&before_b])
        .observe(&actions)
        .expect("in order");
}

#[test]
fn our_latest_commitment_is_what_a_force_close_broadcasts() {
    let mut pair = Pair::open_to_ready();
    let first = pair
        .a
        .channel()
        .signed_our_commitment(&pair.a.ctx())
        .expect("c0");
    set_feerate(&mut pair.a, 5_000);
    pair.run();
    let id = pair.a.channel().channel_id().expect("id");
    let actions = pair.a.input(Input::Message(Message::Error(
        crate::wire::ErrorMessage::new(id, "bye"),
    )));
    let broadcast: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast { tx, .. } => Some(tx.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(broadcast.len(), 1);
    assert_ne!(
        broadcast[0].compute_txid(),
        first.compute_txid(),
        "not the revoked one"
    );
    // Commitment 1 at 5,000 sat/kw pays a higher fee than commitment 0 at 2,500.
    let out = |tx: &bitcoin::Transaction| tx.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
    assert!(out(&broadcast[0]) < out(&first));
}

#[test]
fn spends_of_the_funding_are_placed_revoked_commitments_recognised() {
    use crate::channel::SpendKind;
    let mut pair = Pair::open_to_ready();
    let a0 = pair
        .a
        .channel()
        .signed_our_commitment(&pair.a.ctx())
        .expect("a0");
    let b0 = pair
        .b
        .channel()
        .signed_our_commitment(&pair.b.ctx())
        .expect("b0");
    assert_eq!(
        pair.b.channel().classify_spend(&a0, &pair.b.ctx()),
        SpendKind::TheirCommitment { number: 0 }
    );
    set_feerate(&mut pair.a, 5_000);
    pair.run();
    set_feerate(&mut pair.a, 6_000);
    pair.run();
    let a2 = pair
        .a
        .channel()
        .signed_our_commitment(&pair.a.ctx())
        .expect("a2");
    let b2 = pair
        .b
        .channel()
        .signed_our_commitment(&pair.b.ctx())
        .expect("b2");
    let (a, b) = (pair.a.channel(), pair.b.channel());
    let (actx, bctx) = (pair.a.ctx(), pair.b.ctx());
    assert_eq!(
        a.classify_spend(&a2, &actx),
        SpendKind::OurCommitment { number: 2 }
    );
    assert_eq!(
        b.classify_spend(&a2, &bctx),
        SpendKind::TheirCommitment { number: 2 }
    );
    assert_eq!(
        a.classify_spend(&b2, &actx),
        SpendKind::TheirCommitment { number: 2 }
    );
    assert_eq!(
        b.classify_spend(&a0, &bctx),
        SpendKind::TheirRevokedCommitment { number: 0 }
    );
    assert_eq!(
        a.classify_spend(&b0, &actx),
        SpendKind::TheirRevokedCommitment { number: 0 }
    );
    // Our own revoked commitment is not "ours" any more (we would never broadcast it).
    assert_eq!(a.classify_spend(&a0, &actx), SpendKind::Other);
    // The spend of a revoked commitment fails the channel with a reason that says so.
    let actions = pair.b.input(Input::FundingSpent {
        spending_tx: a0,
        confirmation_height: Some(150),
    });
    // Closing{Revoked}: the peer's to_local (penalty) and our to_remote are swept at once
    // (the harness gives a wallet address) and watched.
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "Emit(ChannelFailed)",
            "Emit(ChannelClosing)",
            "BroadcastSweep",
            "WatchOutput",
            "BroadcastSweep",
            "WatchOutput",
            "WatchFunding",
            "WatchOutput",
            "WatchOutput"
        ]
    );
    assert_eq!(
        pair.b.channel().close_kind(),
        Some(crate::channel::CloseKind::Revoked)
    );
    let reason = pair.b.channel().failure_reason().expect("reason");
    assert!(reason.contains("REVOKED commitment 0"), "{reason}");
}

#[test]
fn a_node_restored_from_a_stale_record_never_broadcasts_and_the_peer_closes() {
    let mut pair = Pair::open_to_ready();
    let stale = pair.a.stored.clone().expect("stored");
    for f in [5_000, 6_000] {
        set_feerate(&mut pair.a, f);
        pair.run();
    }
    assert_agree(&pair);
    // `a` comes back from an old backup: commitment 0, which it revoked since.
    pair.a.stored = Some(stale);
    pair.a.restart();
    pair.a.broadcasts.clear();
    pair.b.broadcasts.clear();
    reconnect_quiet(&mut pair);
    pair.run();
    assert_eq!(pair.a.state(), ChannelState::Failed);
    assert!(
        pair.a.broadcasts.is_empty(),
        "a never broadcasts its revoked commitment"
    );
    let reason = pair.a.channel().failure_reason().expect("reason");
    assert!(reason.contains("fallen behind"), "{reason}");
    // The peer, which is not behind, fails the channel and broadcasts its latest commitment.
    assert_eq!(pair.b.state(), ChannelState::Closing);
    let latest = pair
        .b
        .channel()
        .signed_our_commitment(&pair.b.ctx())
        .expect("latest");
    assert_eq!(pair.b.broadcasts, vec![latest]);
}

/// A ready anchor channel (`option_anchors` negotiated).
fn anchors_ready() -> Pair {
    let pair = Pair::open_anchors_to_ready();
    assert_eq!(pair.a.state(), ChannelState::Ready);
    assert!(pair.a.channel().channel_type().anchors);
    pair
}

#[test]
fn anchor_channels_update_their_feerate_too() {
    let mut pair = anchors_ready();
    set_feerate(&mut pair.a, 1_000);
    pair.run();
    assert_agree(&pair);
    assert_eq!(pair.b.channel().commitment_feerate_per_kw(), 1_000);
    assert_eq!(pair.b.channel().commitment_number(), 1);
    let steps = explore(&anchors_ready(), &mut vec![], 4, 1);
    assert!(steps > 50, "{steps}");
}

#[test]
fn a_lost_update_message_on_a_live_connection_reconnects_after_the_timeout() {
    let mut pair = Pair::open_to_ready();
    set_feerate(&mut pair.a, 5_000);
    pair.deliver(true);
    // commitment_signed is lost; the connection stays up.
    pair.a.outbox.pop_front();
    assert!(pair.a.channel().needs_ticks());
    let timeout = pair.a.config.update_timeout_secs;
    assert!(pair.a.input(Input::Tick { now_secs: 1_000 }).is_empty());
    assert!(pair
        .a
        .input(Input::Tick {
            now_secs: 1_000 + timeout - 1
        })
        .is_empty());
    let actions = pair.a.input(Input::Tick {
        now_secs: 1_000 + timeout,
    });
    assert_eq!(kinds(&actions), ["ReconnectPeer"]);
    reconnect(&mut pair);
    assert_agree(&pair);
    assert!(!pair.a.channel().needs_ticks());
    assert!(!pair.b.channel().needs_ticks());
    assert_eq!(pair.b.channel().commitment_feerate_per_kw(), 5_000);
}
