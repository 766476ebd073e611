//! The durability checker catches every kind of persist-before-act breach.

use super::harness::Pair;
use crate::channel::{
    check_action_order, Action, ChannelEvent, ChannelRecord, Commit, DurabilityChecker,
    OrderViolation,
};
use crate::wire::{FundingSigned, Message};

/// A commit of `record` alone.
fn commit_of(record: ChannelRecord) -> Action {
    Action::Commit(Commit {
        record,
        events: Vec::new(),
        open: None,
        release: None,
    })
}

/// The actions of the step that produced `name` on a node's history.
fn step_with(history: &[Vec<Action>], pred: impl Fn(&Action) -> bool) -> Vec<Action> {
    history
        .iter()
        .find(|step| step.iter().any(&pred))
        .cloned()
        .expect("step found")
}

#[test]
fn real_steps_pass_and_reordered_steps_fail() {
    let pair = Pair::open_to_ready();

    // The fundee's funding_created step, as emitted: fine. Swapped: caught.
    let step = step_with(&pair.b.history, |a| {
        matches!(a, Action::Send(Message::FundingSigned(_)))
    });
    check_action_order(&step, None).expect("fundee step is ordered");
    let mut swapped = step.clone();
    let persist = swapped.remove(0);
    swapped.push(persist);
    assert!(matches!(
        check_action_order(&swapped, None),
        Err(OrderViolation::SendBeforePersist {
            message: "funding_signed",
            ..
        })
    ));

    // The funder's funding_signed step: broadcast before persist is caught.
    let step = step_with(&pair.a.history, |a| {
        matches!(
            a,
            Action::Broadcast {
                kind: crate::channel::BroadcastKind::Funding,
                ..
            }
        )
    });
    check_action_order(&step, None).expect("funder step is ordered");
    let without_persist: Vec<Action> = step
        .iter()
        .filter(|a| !matches!(a, Action::Commit(_)))
        .cloned()
        .collect();
    assert!(matches!(
        check_action_order(&without_persist, None),
        Err(OrderViolation::BroadcastBeforePersist {
            what: "funding",
            ..
        })
    ));

    // channel_ready needs the persisted "sent" mark.
    let step = step_with(&pair.a.history, |a| {
        matches!(a, Action::Send(Message::ChannelReady(_)))
    });
    check_action_order(&step, None).expect("ready step is ordered");
    let send_only: Vec<Action> = step
        .iter()
        .filter(|a| matches!(a, Action::Send(_)))
        .cloned()
        .collect();
    // Only an earlier record *with* the mark makes it valid.
    let pending_record = step_with(&pair.a.history, |a| {
        matches!(
            a,
            Action::Broadcast {
                kind: crate::channel::BroadcastKind::Funding,
                ..
            }
        )
    })
    .into_iter()
    .find_map(|a| match a {
        Action::Commit(crate::channel::Commit { record: r, .. }) => Some(r),
        _ => None,
    })
    .expect("pending record");
    assert!(matches!(
        check_action_order(&send_only, Some(&pending_record)),
        Err(OrderViolation::SendBeforePersist {
            message: "channel_ready",
            ..
        })
    ));

    // The ready event needs a persisted Ready state (as a plain emit, or carried by a commit
    // of a state that is not Ready).
    let ready_events: Vec<ChannelEvent> = pair
        .a
        .history
        .iter()
        .flatten()
        .flat_map(|a| match a {
            Action::Commit(c) => c.events.clone(),
            Action::Emit(e) => vec![e.clone()],
            _ => Vec::new(),
        })
        .filter(|e| matches!(e, ChannelEvent::ChannelReady { .. }))
        .collect();
    let ready_event: Vec<Action> = ready_events.iter().cloned().map(Action::Emit).collect();
    assert_eq!(ready_event.len(), 1);
    let early = Action::Commit(Commit {
        events: ready_events,
        ..match commit_of(pending_record.clone()) {
            Action::Commit(c) => c,
            _ => unreachable!("a commit"),
        }
    });
    assert!(matches!(
        check_action_order(&[early], None),
        Err(OrderViolation::EmitBeforePersist {
            event: "ChannelReady",
            ..
        })
    ));
    assert!(matches!(
        check_action_order(&ready_event, Some(&pending_record)),
        Err(OrderViolation::EmitBeforePersist {
            event: "ChannelReady",
            ..
        })
    ));
    let final_record = pair.a.channel().to_record();
    check_action_order(&ready_event, Some(&final_record)).expect("ready was persisted");
}

#[test]
fn persisting_a_transient_state_is_caught() {
    let mut pair = Pair::new();
    let peer = pair.b.node_id;
    pair.start(super::harness::outbound_params(peer));
    let record = pair.a.channel().to_record();
    assert!(matches!(
        check_action_order(&[commit_of(record)], None),
        Err(OrderViolation::PersistedTransient { .. })
    ));
}

#[test]
fn funding_signed_for_an_unknown_channel_is_caught() {
    let pair = Pair::open_to_pending();
    let record = pair.b.channel().to_record();
    let sig = pair.b.channel().their_commitment_signature().expect("sig");
    let stray = Action::Send(Message::FundingSigned(FundingSigned {
        channel_id: super::harness::TEMP_ID,
        signature: sig,
    }));
    assert!(check_action_order(std::slice::from_ref(&stray), Some(&record)).is_err());
    // And the checker counts positions across lists.
    let mut checker = DurabilityChecker::new();
    checker.observe(&[]).expect("empty");
    checker
        .observe(&[commit_of(record)])
        .expect("durable persist");
    match checker.observe(&[stray]) {
        Err(OrderViolation::SendBeforePersist { index, .. }) => assert_eq!(index, 1),
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn commitment_broadcast_needs_a_durable_channel() {
    let pair = Pair::open_to_pending();
    let tx = pair
        .a
        .channel()
        .signed_our_commitment(&pair.a.ctx())
        .expect("signed");
    let action = Action::Broadcast {
        tx,
        kind: crate::channel::BroadcastKind::Commitment,
    };
    assert!(matches!(
        check_action_order(std::slice::from_ref(&action), None),
        Err(OrderViolation::BroadcastBeforePersist {
            what: "commitment",
            ..
        })
    ));
    // A durable record is not enough any more: only a force close (Closing{LocalForce}
    // holding this very commitment) broadcasts it.
    let record = pair.a.channel().to_record();
    assert!(matches!(
        check_action_order(std::slice::from_ref(&action), Some(&record)),
        Err(OrderViolation::BroadcastBeforePersist {
            what: "commitment",
            ..
        })
    ));
    let mut pair = pair;
    pair.a.input(crate::channel::Input::ForceClose);
    let record = pair.a.channel().to_record();
    check_action_order(&[action], Some(&record)).expect("durable");
}

#[test]
fn a_fundees_commitment_needs_a_funding_seen_on_chain() {
    let mut pair = Pair::open_to_pending();
    let tx = pair
        .b
        .channel()
        .signed_our_commitment(&pair.b.ctx())
        .expect("signed");
    let action = Action::Broadcast {
        tx,
        kind: crate::channel::BroadcastKind::Commitment,
    };
    let record = pair.b.channel().to_record();
    assert!(matches!(
        check_action_order(std::slice::from_ref(&action), Some(&record)),
        Err(OrderViolation::BroadcastUnfunded { .. })
    ));
    pair.confirm_funding();
    // Seen on chain: broadcastable once the force close holding it is durable.
    pair.b.input(crate::channel::Input::ForceClose);
    let record = pair.b.channel().to_record();
    check_action_order(&[action], Some(&record)).expect("the funding is on chain");
}
