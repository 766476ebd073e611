//! Cooperative closes between two Tern channels: `shutdown` from either side (or both), in
//! Ready and before `channel_ready`, around commitment updates, then the `closing_signed`
//! negotiation — with disconnects and restarts from every persisted record in between. Every
//! step runs the durability checker and the record round trip (harness).

use bitcoin::hashes::Hash;
use bitcoin::{ScriptBuf, Transaction};

use super::harness::{kinds, Node, Pair};
use super::reestablish::reconnect;
use crate::channel::{Action, BroadcastKind, ChannelEvent, ChannelState, Input};
use crate::wire::{ClosingSigned, FeeRange, Message};

fn close(node: &mut Node) -> Vec<Action> {
    node.input(Input::Close { script: None })
}

fn agreed(node: &Node) -> Option<Transaction> {
    node.channel().agreed_closing_tx().cloned()
}

fn mutual_broadcasts(node: &Node) -> Vec<Transaction> {
    node.history
        .iter()
        .flatten()
        .filter_map(|a| match a {
            Action::Broadcast {
                tx,
                kind: BroadcastKind::MutualClose,
            } => Some(tx.clone()),
            _ => None,
        })
        .collect()
}

fn complained(node: &Node) -> bool {
    node.history
        .iter()
        .flatten()
        .any(|a| matches!(a, Action::Send(Message::Error(_) | Message::Warning(_))))
}

fn committed_broadcasts(node: &Node) -> usize {
    node.history
        .iter()
        .flatten()
        .filter(|a| {
            matches!(
                a,
                Action::Broadcast {
                    kind: BroadcastKind::Commitment,
                    ..
                }
            )
        })
        .count()
}

/// The agreed close pays each side its balance at its own script, the funder paying the fee.
fn assert_closed(pair: &Pair, a_script: &ScriptBuf, b_script: &ScriptBuf) -> u64 {
    let ta = agreed(&pair.a).expect("a agreed");
    let tb = agreed(&pair.b).expect("b agreed");
    assert_eq!(ta, tb, "both hold the same signed close");
    assert_eq!(ta.input.len(), 1);
    assert_eq!(ta.input[0].witness.len(), 4, "fully signed");
    let funding = pair.a.channel().funding().expect("funding").outpoint;
    assert_eq!(ta.input[0].previous_output, funding);
    let paid = |s: &ScriptBuf| {
        ta.output
            .iter()
            .filter(|o| o.script_pubkey == *s)
            .map(|o| o.value.to_sat())
            .sum::<u64>()
    };
    let a_balance = pair.a.channel().local_commit().expect("a").spec.our_msat / 1000;
    let b_balance = pair.b.channel().local_commit().expect("b").spec.our_msat / 1000;
    let fee = a_balance - paid(a_script);
    assert_eq!(paid(b_script), b_balance, "the fundee pays nothing");
    assert_eq!(
        paid(a_script) + paid(b_script) + fee,
        pair.a.channel().funding_sat()
    );
    for node in [&pair.a, &pair.b] {
        assert_eq!(node.state(), ChannelState::Negotiating);
        assert_eq!(mutual_broadcasts(node).last(), Some(&ta), "broadcast");
        assert_eq!(committed_broadcasts(node), 0, "never our commitment");
        let closing = node
            .events
            .iter()
            .filter(|e| matches!(e, ChannelEvent::ChannelClosing { .. }))
            .count();
        assert_eq!(closing, 1, "one ChannelClosing");
        assert!(node
            .channel()
            .signed_closing_txids()
            .contains(&ta.compute_txid()));
    }
    fee
}

#[test]
fn funder_closes_and_the_fundee_accepts_its_fee_in_two_messages() {
    let mut pair = Pair::open_to_ready();
    let actions = close(&mut pair.a);
    assert_eq!(
        kinds(&actions),
        ["Persist", "Emit(ChannelClosing)", "Send(shutdown)"]
    );
    assert_eq!(pair.a.state(), ChannelState::ShuttingDown);
    assert_eq!(pair.deliver(true), Some("shutdown"));
    // The fundee replies with its own shutdown; the funder then proposes.
    assert_eq!(pair.b.sent_names(), ["shutdown"]);
    assert_eq!(pair.deliver(false), Some("shutdown"));
    assert_eq!(pair.a.sent_names(), ["closing_signed"]);
    // The peer's script and the first proposal: one write (one fsync), before the proposal.
    assert_eq!(
        kinds(pair.a.history.last().expect("the funder's answer")),
        ["Persist", "Send(closing_signed)"]
    );
    let Some(Message::ClosingSigned(proposal)) = pair.a.outbox.front().cloned() else {
        panic!("closing_signed");
    };
    let range = proposal.fee_range.expect("fee_range");
    assert_eq!(proposal.fee_satoshis, range.max_fee_satoshis, "fee = max");
    assert!(range.min_fee_satoshis < range.max_fee_satoshis);
    pair.run();
    let (a_script, b_script) = (pair.a.destination.clone(), pair.b.destination.clone());
    let fee = assert_closed(&pair, &a_script, &b_script);
    assert_eq!(fee, proposal.fee_satoshis, "the funder pays its target");
    for node in [&pair.a, &pair.b] {
        assert!(!complained(node));
    }
}

#[test]
fn fundee_closes_and_never_sends_the_first_closing_signed() {
    let mut pair = Pair::open_to_ready();
    close(&mut pair.b);
    assert_eq!(pair.b.sent_names(), ["shutdown"]);
    assert_eq!(pair.deliver(false), Some("shutdown"));
    assert_eq!(pair.a.sent_names(), ["shutdown", "closing_signed"]);
    // Both scripts, the event and the first proposal: one write, before both messages.
    assert_eq!(
        kinds(pair.a.history.last().expect("the funder's answer")),
        [
            "Persist",
            "Emit(ChannelClosing)",
            "Send(shutdown)",
            "Send(closing_signed)"
        ]
    );
    assert_eq!(pair.deliver(true), Some("shutdown"));
    assert!(pair.b.outbox.is_empty(), "the fundee waits for the funder");
    pair.run();
    let (a_script, b_script) = (pair.a.destination.clone(), pair.b.destination.clone());
    assert_closed(&pair, &a_script, &b_script);
    let ChannelEvent::ChannelClosing { kind, .. } = &pair.b.events.last().expect("event") else {
        panic!("closing event");
    };
    assert_eq!(
        *kind,
        crate::channel::CloseKind::Cooperative {
            initiator: crate::channel::Initiator::Local
        }
    );
}

#[test]
fn simultaneous_shutdowns_close_once() {
    let mut pair = Pair::open_to_ready();
    close(&mut pair.a);
    close(&mut pair.b);
    pair.run();
    let (a_script, b_script) = (pair.a.destination.clone(), pair.b.destination.clone());
    assert_closed(&pair, &a_script, &b_script);
}

#[test]
fn a_user_script_is_used_and_a_second_close_is_refused() {
    let mut pair = Pair::open_to_ready();
    let p2tr = ScriptBuf::from_bytes([&[0x51, 32][..], &[9; 32]].concat());
    assert_eq!(
        pair.a
            .channel()
            .close_refusal(Some(&p2tr), Some(&pair.a.their_features)),
        None
    );
    pair.a.input(Input::Close {
        script: Some(p2tr.clone()),
    });
    assert!(pair.a.channel().close_refusal(None, None).is_some());
    let again = close(&mut pair.a);
    assert!(again.is_empty(), "{again:?}");
    pair.run();
    let b_script = pair.b.destination.clone();
    assert_closed(&pair, &p2tr, &b_script);
}

#[test]
fn a_taproot_destination_needs_the_peers_anysegwit() {
    let pair = Pair::open_to_ready();
    let p2tr = ScriptBuf::from_bytes([&[0x51, 32][..], &[9; 32]].concat());
    let without = crate::wire::Features::tern_init();
    let mut without = without;
    without.clear_bit(crate::wire::Feature::ShutdownAnySegwit.optional_bit());
    without.clear_bit(crate::wire::Feature::ShutdownAnySegwit.required_bit());
    let refusal = pair.a.channel().close_refusal(Some(&p2tr), Some(&without));
    assert!(refusal.is_some_and(|r| r.contains("anysegwit")));
    let p2pkh = ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::from_byte_array([3; 20]));
    assert!(pair.a.channel().close_refusal(Some(&p2pkh), None).is_some());
    let op_return = ScriptBuf::new_op_return([7u8; 20]);
    assert!(pair
        .a
        .channel()
        .close_refusal(Some(&op_return), None)
        .is_some());
}

#[test]
fn shutdown_waits_until_our_update_completes_and_no_update_follows() {
    let mut pair = Pair::open_to_ready();
    pair.a.input(Input::SetFeerate {
        feerate_per_kw: 4_000,
    });
    let actions = close(&mut pair.a);
    assert_eq!(
        kinds(&actions),
        ["Persist", "Emit(ChannelClosing)"],
        "no shutdown yet"
    );
    assert_eq!(pair.a.state(), ChannelState::ShuttingDown);
    pair.run();
    let (a_script, b_script) = (pair.a.destination.clone(), pair.b.destination.clone());
    assert_closed(&pair, &a_script, &b_script);
    assert_eq!(pair.b.channel().commitment_feerate_per_kw(), 4_000);
    // The fee policy asks again: nothing is proposed after shutdown.
    let after = pair.a.input(Input::SetFeerate {
        feerate_per_kw: 6_000,
    });
    assert!(after.is_empty(), "{after:?}");
}

#[test]
fn the_peers_shutdown_between_update_fee_and_revoke_and_ack_is_answered_when_clean() {
    let mut pair = Pair::open_to_ready();
    pair.a.input(Input::SetFeerate {
        feerate_per_kw: 4_000,
    });
    // b asks to close before it saw a's update: its shutdown overtakes it.
    close(&mut pair.b);
    assert_eq!(pair.deliver(false), Some("shutdown"));
    assert_eq!(pair.a.state(), ChannelState::ShuttingDown);
    assert_eq!(
        pair.a.sent_names(),
        ["update_fee", "commitment_signed"],
        "a answers only once its update is done"
    );
    pair.run();
    let (a_script, b_script) = (pair.a.destination.clone(), pair.b.destination.clone());
    assert_closed(&pair, &a_script, &b_script);
    for node in [&pair.a, &pair.b] {
        assert!(!complained(node));
        assert_eq!(node.channel().commitment_feerate_per_kw(), 4_000);
    }
}

#[test]
fn shutdown_before_channel_ready() {
    let mut pair = Pair::open_to_pending();
    close(&mut pair.a);
    pair.run();
    let (a_script, b_script) = (pair.a.destination.clone(), pair.b.destination.clone());
    assert_closed(&pair, &a_script, &b_script);
}

#[test]
fn a_bad_closing_signature_is_a_warning_and_a_fee_outside_its_own_range_fails() {
    let mut pair = Pair::open_to_ready();
    close(&mut pair.a);
    assert_eq!(pair.deliver(true), Some("shutdown"));
    assert_eq!(pair.deliver(false), Some("shutdown"));
    let Some(Message::ClosingSigned(good)) = pair.a.outbox.pop_front() else {
        panic!("closing_signed");
    };
    let mut bad = good.clone();
    bad.fee_satoshis -= 1;
    bad.fee_range = Some(FeeRange {
        min_fee_satoshis: bad.fee_satoshis,
        max_fee_satoshis: bad.fee_satoshis,
    });
    let before = pair.b.stored.clone();
    let actions = pair.b.input(Input::Message(Message::ClosingSigned(bad)));
    assert_eq!(kinds(&actions), ["Send(warning)", "Disconnect"]);
    assert_eq!(pair.b.stored, before, "nothing stored");
    let outside = ClosingSigned {
        fee_range: Some(FeeRange {
            min_fee_satoshis: 1,
            max_fee_satoshis: good.fee_satoshis - 1,
        }),
        ..good
    };
    let actions = pair
        .b
        .input(Input::Message(Message::ClosingSigned(outside)));
    assert!(
        kinds(&actions).contains(&"Send(error)".to_string()),
        "{:?}",
        kinds(&actions)
    );
}

#[test]
fn after_agreement_a_forgetful_peer_gets_the_close_again_never_our_commitment() {
    let mut pair = Pair::open_to_ready();
    close(&mut pair.a);
    pair.run();
    let tx = agreed(&pair.b).expect("agreed");
    // LDK's answer for a channel it closed and forgot: a placeholder reestablish, an error.
    let id = pair.b.channel().channel_id().expect("id");
    let bogus = crate::wire::ChannelReestablish {
        channel_id: id,
        next_commitment_number: 0,
        next_revocation_number: 0,
        your_last_per_commitment_secret: [1; 32],
        my_current_per_commitment_point: pair.a.channel().our_params().keys.funding_pubkey,
        next_funding: None,
        my_current_funding_locked: None,
    };
    let actions = pair
        .b
        .input(Input::Message(Message::ChannelReestablish(bogus)));
    assert_eq!(
        kinds(&actions),
        [
            "BroadcastMutualClose",
            "Send(shutdown)",
            "Send(closing_signed)"
        ]
    );
    let error = crate::wire::ErrorMessage::new(id, "channel closed");
    let actions = pair.b.input(Input::Message(Message::Error(error)));
    assert_eq!(kinds(&actions), ["BroadcastMutualClose"]);
    let actions = pair.b.input(Input::NewBlock { height: 200 });
    assert_eq!(kinds(&actions), ["BroadcastMutualClose"]);
    assert_eq!(mutual_broadcasts(&pair.b).last(), Some(&tx));
    assert_eq!(committed_broadcasts(&pair.b), 0);
}

#[test]
fn our_script_survives_a_restart_and_is_never_chosen_again() {
    let mut pair = Pair::open_to_ready();
    close(&mut pair.b);
    let first = pair.b.destination.clone();
    pair.b.restart();
    pair.b.destination = ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0xee; 20]));
    reconnect(&mut pair);
    pair.run();
    let a_script = pair.a.destination.clone();
    assert_closed(&pair, &a_script, &first);
}

// ---- The matrix: every sequence of steps ends in one agreed close. ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    CloseA,
    CloseB,
    Fee,
    ToB,
    ToA,
    Reconnect,
    RestartA,
    RestartB,
}

const STEPS: [Step; 8] = [
    Step::CloseA,
    Step::CloseB,
    Step::Fee,
    Step::ToB,
    Step::ToA,
    Step::Reconnect,
    Step::RestartA,
    Step::RestartB,
];

fn reconnect_quiet(pair: &mut Pair) {
    pair.a.outbox.clear();
    pair.b.outbox.clear();
    pair.a.input(Input::PeerDisconnected);
    pair.b.input(Input::PeerDisconnected);
    pair.a.input(Input::PeerReconnected);
    pair.b.input(Input::PeerReconnected);
}

/// The script a node stored for its side of the close, if any.
fn stored_script(node: &Node) -> Option<ScriptBuf> {
    let bytes = node.stored.as_ref()?;
    let c = crate::channel::ChannelRecord::decode(bytes)
        .ok()?
        .into_channel();
    c.shutdown().and_then(|s| s.ours().cloned())
}

fn perform(pair: &mut Pair, step: Step, n: u8) -> bool {
    match step {
        Step::CloseA => return !close(&mut pair.a).is_empty(),
        Step::CloseB => return !close(&mut pair.b).is_empty(),
        Step::Fee => {
            return !pair
                .a
                .input(Input::SetFeerate {
                    feerate_per_kw: 3_000 + 500 * u32::from(n),
                })
                .is_empty()
        }
        Step::ToB => return pair.deliver(true).is_some(),
        Step::ToA => return pair.deliver(false).is_some(),
        Step::Reconnect => reconnect_quiet(pair),
        Step::RestartA | Step::RestartB => {
            let node = if step == Step::RestartA {
                &mut pair.a
            } else {
                &mut pair.b
            };
            node.restart();
            // A restarted driver hands out another address: a stored script must win.
            node.destination =
                ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0x40 + n; 20]));
            reconnect_quiet(pair);
        }
    }
    true
}

fn settle_and_check(mut pair: Pair, steps: &[Step]) {
    if !steps
        .iter()
        .any(|s| matches!(s, Step::CloseA | Step::CloseB))
    {
        close(&mut pair.a);
    }
    let stored = (stored_script(&pair.a), stored_script(&pair.b));
    pair.run();
    reconnect_quiet(&mut pair);
    pair.run();
    assert!(
        agreed(&pair.a).is_some() && agreed(&pair.b).is_some(),
        "{steps:?}: no agreement: a {:?} {:?} / b {:?} {:?}",
        pair.a.state(),
        pair.a.channel().shutdown(),
        pair.b.state(),
        pair.b.channel().shutdown()
    );
    let a_script = stored.0.unwrap_or_else(|| pair.a.destination.clone());
    let b_script = stored.1.unwrap_or_else(|| pair.b.destination.clone());
    assert_closed(&pair, &a_script, &b_script);
    for node in [&pair.a, &pair.b] {
        assert!(
            !complained(node),
            "{steps:?}: a warning or an error was sent"
        );
    }
}

fn explore(pair: &Pair, steps: &mut Vec<Step>, depth: usize) -> usize {
    settle_and_check(pair.clone(), steps);
    let mut count = 1;
    if depth == 0 {
        return count;
    }
    for step in STEPS {
        let disruptions = steps
            .iter()
            .filter(|s| matches!(s, Step::Reconnect | Step::RestartA | Step::RestartB))
            .count();
        let disruptive = matches!(step, Step::Reconnect | Step::RestartA | Step::RestartB);
        let fees = steps.iter().filter(|s| **s == Step::Fee).count();
        if (disruptive && disruptions >= 2) || (step == Step::Fee && fees >= 1) {
            continue;
        }
        let mut next = pair.clone();
        let n = u8::try_from(steps.len()).unwrap_or(0);
        if !perform(&mut next, step, n) {
            continue;
        }
        steps.push(step);
        count += explore(&next, steps, depth - 1);
        steps.pop();
    }
    count
}

#[test]
fn every_close_sequence_with_updates_disconnects_and_restarts_agrees_once() {
    let full = std::env::var_os("TERN_FULL").is_some();
    let depth = if full { 6 } else { 5 };
    let pair = Pair::open_to_ready();
    let count = explore(&pair, &mut Vec::new(), depth);
    eprintln!("close matrix: {count} sequences of up to {depth} steps");
    assert!(count > 1_000, "{count}");
}

/// The checker's closing rules: each close step as emitted passes; with the persist moved
/// after the send or broadcast (the record before the step persisted instead), it fails.
/// Every persist of the step moves.
#[test]
fn the_checker_catches_close_messages_and_broadcasts_before_their_commit() {
    use crate::channel::{check_action_order, ChannelRecord, OrderViolation};
    let mut pair = Pair::open_to_ready();
    let before_a = pair.a.channel().to_record();
    close(&mut pair.a);
    pair.run();
    let mut checked = 0;
    for node in [&pair.a, &pair.b] {
        let mut last: Option<ChannelRecord> = Some(before_a.clone());
        if std::ptr::eq(node, &pair.b) {
            last = None;
        }
        for step in &node.history {
            let relevant = step.iter().any(|a| {
                matches!(
                    a,
                    Action::Send(Message::Shutdown(_) | Message::ClosingSigned(_))
                        | Action::Broadcast {
                            kind: BroadcastKind::MutualClose,
                            ..
                        }
                )
            });
            let commit_first = matches!(step.first(), Some(Action::Commit(_)));
            if relevant && commit_first {
                let (mut swapped, persists): (Vec<Action>, Vec<Action>) = step
                    .iter()
                    .cloned()
                    .partition(|a| !matches!(a, Action::Commit(_)));
                swapped.extend(persists);
                let result = check_action_order(&swapped, last.as_ref());
                assert!(
                    matches!(
                        result,
                        Err(OrderViolation::SendBeforePersist {
                            message: "shutdown" | "closing_signed",
                            ..
                        }) | Err(OrderViolation::BroadcastBeforePersist {
                            what: "cooperative close",
                            ..
                        })
                    ),
                    "{result:?} for {:?}",
                    kinds(step)
                );
                checked += 1;
            }
            for a in step {
                if let Action::Commit(c) = a {
                    last = Some(c.record.clone());
                }
            }
        }
    }
    assert!(checked >= 4, "{checked} close steps reordered");
}

/// A `closing_signed` from the funder `a` at `fee` with `range`, validly signed.
fn funder_offer(pair: &Pair, fee: u64, range: FeeRange) -> ClosingSigned {
    let tx = pair.a.channel().closing_variants(fee).remove(0);
    ClosingSigned {
        channel_id: pair.a.channel().channel_id().expect("id"),
        fee_satoshis: fee,
        signature: tx
            .sign(&pair.a.secp, &pair.a.keys.funding_key)
            .expect("sign"),
        fee_range: Some(range),
    }
}

/// Both shutdowns exchanged, the funder's own proposal dropped.
fn negotiating_without_the_funders_offer() -> Pair {
    let mut pair = Pair::open_to_ready();
    close(&mut pair.b);
    assert_eq!(pair.deliver(false), Some("shutdown"));
    assert_eq!(pair.deliver(true), Some("shutdown"));
    assert_eq!(
        pair.a.outbox.pop_front().map(|m| m.name()),
        Some("closing_signed")
    );
    pair
}

#[test]
fn a_fundee_counters_a_fee_below_its_floor_and_warns_without_overlap() {
    let mut pair = negotiating_without_the_funders_offer();
    // No overlap with the fundee's [floor, funder's balance]: a warning, nothing stored.
    let low = funder_offer(
        &pair,
        100,
        FeeRange {
            min_fee_satoshis: 100,
            max_fee_satoshis: 150,
        },
    );
    let before = pair.b.stored.clone();
    let actions = pair.b.input(Input::Message(Message::ClosingSigned(low)));
    assert_eq!(kinds(&actions), ["Send(warning)"]);
    assert_eq!(pair.b.stored, before);
    // An overlap: the fundee proposes the lowest fee both accept, the funder takes it.
    let wide = funder_offer(
        &pair,
        100,
        FeeRange {
            min_fee_satoshis: 100,
            max_fee_satoshis: 5_000,
        },
    );
    let actions = pair.b.input(Input::Message(Message::ClosingSigned(wide)));
    assert_eq!(kinds(&actions), ["Persist", "Send(closing_signed)"]);
    let Some(Message::ClosingSigned(counter)) = pair.b.outbox.back().cloned() else {
        panic!("counter");
    };
    assert!(counter.fee_satoshis > 100, "{}", counter.fee_satoshis);
    pair.b.outbox.retain(|m| m.name() == "closing_signed");
    pair.run();
    let (a_script, b_script) = (pair.a.destination.clone(), pair.b.destination.clone());
    let fee = assert_closed(&pair, &a_script, &b_script);
    assert_eq!(fee, counter.fee_satoshis);
}

#[test]
fn a_fundee_that_accepted_fails_the_channel_on_a_different_fee() {
    let mut pair = negotiating_without_the_funders_offer();
    let wide = FeeRange {
        min_fee_satoshis: 100,
        max_fee_satoshis: 5_000,
    };
    pair.b
        .input(Input::Message(Message::ClosingSigned(funder_offer(
            &pair, 100, wide,
        ))));
    // The funder now sends another fee than the fundee's counter: BOLT 2 MUST fail.
    let other = funder_offer(&pair, 1_000, wide);
    let actions = pair.b.input(Input::Message(Message::ClosingSigned(other)));
    assert!(
        kinds(&actions).contains(&"Send(error)".to_string()),
        "{:?}",
        kinds(&actions)
    );
}

#[test]
fn an_unanswered_shutdown_reconnects_after_the_timeout_and_then_closes() {
    let mut pair = Pair::open_to_ready();
    close(&mut pair.a);
    pair.drop.push("shutdown");
    pair.run();
    pair.drop.clear();
    let timeout = pair.a.config.update_timeout_secs;
    assert!(pair.a.input(Input::Tick { now_secs: 5 }).is_empty());
    let actions = pair.a.input(Input::Tick {
        now_secs: 5 + timeout,
    });
    assert_eq!(kinds(&actions), ["ReconnectPeer"]);
    reconnect(&mut pair);
    let (a_script, b_script) = (pair.a.destination.clone(), pair.b.destination.clone());
    assert_closed(&pair, &a_script, &b_script);
    assert!(!pair.a.channel().needs_ticks(), "agreed: no watchdog");
}

#[test]
fn an_unanswered_closing_signed_reconnects_after_the_timeout_and_then_closes() {
    let mut pair = Pair::open_to_ready();
    close(&mut pair.a);
    pair.drop.push("closing_signed");
    pair.run();
    pair.drop.clear();
    assert!(pair.a.channel().needs_ticks(), "the watchdog runs");
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
    let (a_script, b_script) = (pair.a.destination.clone(), pair.b.destination.clone());
    assert_closed(&pair, &a_script, &b_script);
}

#[test]
fn a_signature_on_a_close_without_our_non_dust_output_is_refused() {
    let mut pair = negotiating_without_the_funders_offer();
    let offer = funder_offer(
        &pair,
        2_000,
        FeeRange {
            min_fee_satoshis: 1_000,
            max_fee_satoshis: 3_000,
        },
    );
    // The funder signs the close without the fundee's 100 000 sat output.
    let mut tx = pair.a.channel().closing_variants(2_000).remove(0);
    tx.tx
        .output
        .retain(|o| o.script_pubkey != pair.b.destination);
    assert_eq!(tx.tx.output.len(), 1);
    let stolen = ClosingSigned {
        signature: tx
            .sign(&pair.a.secp, &pair.a.keys.funding_key)
            .expect("sign"),
        ..offer.clone()
    };
    let before = pair.b.stored.clone();
    let actions = pair.b.input(Input::Message(Message::ClosingSigned(stolen)));
    assert_eq!(kinds(&actions), ["Send(warning)", "Disconnect"]);
    assert_eq!(pair.b.stored, before, "nothing signed back or stored");
    assert!(agreed(&pair.b).is_none());
    // The honest offer at the same fee is accepted.
    let actions = pair.b.input(Input::Message(Message::ClosingSigned(offer)));
    assert!(kinds(&actions).contains(&"BroadcastMutualClose".to_string()));
}

/// A channel that was ready stays a ready channel's failure while it shuts down: a force
/// close then (the user's, or the peer's `error`) never says the open failed.
#[test]
fn a_force_close_while_shutting_down_is_a_ready_channels_not_an_open_failure() {
    for by_error in [false, true] {
        let mut pair = Pair::open_to_ready();
        close(&mut pair.a);
        assert_eq!(pair.a.state(), ChannelState::ShuttingDown);
        let before = pair.a.events.len();
        if by_error {
            let id = pair.a.channel().current_id();
            let error = crate::wire::ErrorMessage::new(id, "going away");
            pair.a.input(Input::Message(Message::Error(error)));
        } else {
            pair.a.input(Input::ForceClose);
        }
        assert_eq!(pair.a.state(), ChannelState::Closing);
        let new = &pair.a.events[before..];
        assert!(
            !new.iter()
                .any(|e| matches!(e, ChannelEvent::ChannelOpenFailed { .. })),
            "by_error {by_error}: {new:?}"
        );
        assert_eq!(
            new.iter()
                .filter(|e| matches!(e, ChannelEvent::ChannelFailed { .. }))
                .count(),
            usize::from(by_error),
            "a failure event only for the peer's error: {new:?}"
        );
        assert!(new.iter().any(|e| matches!(
            e,
            ChannelEvent::ChannelClosing {
                kind: crate::channel::CloseKind::LocalForce,
                ..
            }
        )));
    }
}

/// A force close that overtakes a negotiation keeps the closing transactions we signed: if the
/// peer then broadcasts the one it completed, it is our cooperative close (across a restart
/// from the stored record), never an unknown spend.
#[test]
fn a_closing_tx_we_signed_is_recognised_after_a_force_close_overtook_the_negotiation() {
    let mut pair = Pair::open_to_ready();
    close(&mut pair.a);
    assert_eq!(pair.deliver(true), Some("shutdown"));
    assert_eq!(pair.deliver(false), Some("shutdown"));
    assert_eq!(pair.deliver(true), Some("closing_signed"));
    // b accepted and completed the close; its answer never reaches a.
    let completed = agreed(&pair.b).expect("b holds the completed close");
    pair.a.input(Input::ForceClose);
    assert_eq!(
        pair.a.channel().close_kind(),
        Some(crate::channel::CloseKind::LocalForce)
    );
    pair.a.restart();
    assert!(pair
        .a
        .channel()
        .signed_closing_txids()
        .contains(&completed.compute_txid()));
    pair.a.input(Input::FundingSpent {
        spending_tx: completed.clone(),
        confirmation_height: None,
    });
    assert_eq!(
        pair.a.channel().close_kind(),
        Some(crate::channel::CloseKind::Cooperative {
            initiator: crate::channel::Initiator::Local
        })
    );
    let paid = pair.a.destination.clone();
    let ours: u64 = completed
        .output
        .iter()
        .filter(|o| o.script_pubkey == paid)
        .map(|o| o.value.to_sat())
        .sum();
    assert!(ours > 0);
    assert_eq!(
        pair.a
            .channel()
            .claimable(pair.height)
            .iter()
            .map(|c| c.amount_sat)
            .sum::<u64>(),
        ours,
        "what the close pays us is ours to wait for"
    );
}
