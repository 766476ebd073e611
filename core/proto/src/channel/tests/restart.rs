//! The pure restart and disconnect matrices: before every step of an open (messages, funding,
//! confirmations, channel_ready), kill either side and restart it from its last persisted
//! record (or from nothing) — or only drop the connection, losing the message in flight —
//! reconnect, and check the outcome: ready on both sides, or forgotten on both sides with no
//! funding ever broadcast — except BOLT 2's one asymmetric case (funding_signed sent, never
//! processed), where the fundee keeps the channel until its 2016-block timeout.

use super::harness::{outbound_params, Node, Pair};
use crate::channel::{Action, ChannelEvent, ChannelState, Input, FUNDEE_FUNDING_TIMEOUT_BLOCKS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    Funder,
    Fundee,
}

fn alive(node: &Node) -> bool {
    node.channel
        .as_ref()
        .is_some_and(|c| c.state() != ChannelState::Aborted)
}

fn durable(node: &Node) -> bool {
    node.channel
        .as_ref()
        .is_some_and(|c| c.state().is_durable() && c.state() != ChannelState::Aborted)
}

/// Kills `victim` (the connection drops with it), restarts it from its last record, and
/// reconnects the two. With `restart: false` only the connection drops (Core Lightning's
/// dev-disconnect: the message in flight is lost) and both keep their memory.
fn kill(pair: &mut Pair, victim: Victim, restart: bool) {
    pair.a.outbox.clear();
    pair.b.outbox.clear();
    let (dead, other) = match victim {
        Victim::Funder => (&mut pair.a, &mut pair.b),
        Victim::Fundee => (&mut pair.b, &mut pair.a),
    };
    if restart {
        dead.funding_request = None;
        if dead.stored.is_some() {
            dead.restart();
        } else {
            dead.channel = None;
        }
    } else if alive(dead) {
        dead.input(Input::PeerDisconnected);
    }
    if alive(other) {
        other.input(Input::PeerDisconnected);
    }
    for node in [&mut pair.a, &mut pair.b] {
        if durable(node) {
            node.input(Input::PeerReconnected);
        }
    }
}

/// Runs a whole open, calling `tick` between every two steps; returns the number of ticks.
fn scenario(pair: &mut Pair, mut tick: impl FnMut(&mut Pair)) -> usize {
    let mut ticks = 0;
    let mut t = |pair: &mut Pair| {
        tick(pair);
        ticks += 1;
    };
    t(pair);
    while pair.step() {
        t(pair);
    }
    if durable(&pair.a) && !pair.a.broadcasts.is_empty() {
        pair.confirm_funding();
        t(pair);
        pair.mine(1);
        t(pair);
        pair.mine(1);
        t(pair);
        while pair.step() {
            t(pair);
        }
    }
    ticks
}

/// After the scenario: let everything settle (deliver, confirm if needed, mine).
fn settle(pair: &mut Pair) {
    pair.run();
    let funder_ok = durable(&pair.a) && !pair.a.broadcasts.is_empty();
    if funder_ok && pair.a.channel().confirmation().is_none() {
        pair.confirm_funding();
    }
    pair.mine(3);
    pair.run();
}

#[test]
fn kill_at_every_step_of_the_open_in_both_roles() {
    matrix(true);
}

#[test]
fn disconnect_at_every_step_of_the_open_in_both_roles() {
    matrix(false);
}

fn matrix(restart: bool) {
    let total = {
        let mut pair = Pair::new();
        pair.start(outbound_params(pair.b.node_id));
        scenario(&mut pair, |_| {})
    };
    assert!(total >= 10, "the open has {total} steps");
    let mut outcomes = Vec::new();
    for victim in [Victim::Funder, Victim::Fundee] {
        for kill_at in 0..total {
            let mut pair = Pair::new();
            pair.start(outbound_params(pair.b.node_id));
            let mut n = 0;
            scenario(&mut pair, |pair| {
                if n == kill_at {
                    kill(pair, victim, restart);
                }
                n += 1;
            });
            settle(&mut pair);
            let case = format!("{victim:?} killed before step {kill_at}");
            let outcome = if durable(&pair.a) {
                // The funder kept the channel: it must end ready on both sides.
                assert_eq!(pair.a.state(), ChannelState::Ready, "{case}");
                assert_eq!(pair.b.state(), ChannelState::Ready, "{case}");
                "ready"
            } else {
                // The funder forgot it: never broadcast, and told the app.
                assert!(pair.a.broadcasts.is_empty(), "{case}: no funding broadcast");
                assert!(pair.a.stored.is_none(), "{case}");
                if victim == Victim::Fundee || pair.a.channel.is_some() {
                    assert!(
                        pair.a
                            .events
                            .iter()
                            .any(|e| matches!(e, ChannelEvent::ChannelOpenFailed { .. })),
                        "{case}: ChannelOpenFailed emitted"
                    );
                    assert!(
                        pair.a
                            .history
                            .iter()
                            .flatten()
                            .any(|a| matches!(a, Action::FailOpen { .. })),
                        "{case}: coins unlocked"
                    );
                }
                if durable(&pair.b) {
                    // funding_signed sent but never processed: the fundee fails when the funder
                    // answers its channel_reestablish with an error, or else times out.
                    // It never saw the funding: it never broadcasts a commitment, and keeps
                    // watching the funding until the BOLT 2 timeout.
                    assert!(
                        !pair.b.history.iter().flatten().any(|a| matches!(
                            a,
                            Action::Broadcast {
                                kind: crate::channel::BroadcastKind::Commitment,
                                ..
                            }
                        )),
                        "{case}: the fundee broadcast a commitment of an unseen funding"
                    );
                    let outcome = if pair.b.state() == ChannelState::FailedUnfunded {
                        let h = pair.b.channel().fundee_funding_deadline();
                        assert_eq!(h, 100 + FUNDEE_FUNDING_TIMEOUT_BLOCKS, "{case}");
                        pair.b.input(Input::NewBlock { height: h - 1 });
                        assert_eq!(pair.b.state(), ChannelState::FailedUnfunded, "{case}");
                        pair.b.input(Input::NewBlock { height: h });
                        assert_eq!(pair.b.state(), ChannelState::Failed, "{case}");
                        "fundee fails on the funder's error"
                    } else {
                        assert_eq!(
                            pair.b.state(),
                            ChannelState::AwaitingConfirmations,
                            "{case}"
                        );
                        let h = pair.height + FUNDEE_FUNDING_TIMEOUT_BLOCKS;
                        pair.b.input(Input::NewBlock { height: h });
                        assert_eq!(pair.b.state(), ChannelState::Failed, "{case}");
                        "fundee times out"
                    };
                    assert!(
                        pair.b
                            .events
                            .iter()
                            .any(|e| matches!(e, ChannelEvent::ChannelOpenFailed { .. })),
                        "{case}"
                    );
                    outcome
                } else {
                    assert!(!alive(&pair.b), "{case}: fundee forgot too");
                    "forgotten"
                }
            };
            outcomes.push(outcome);
        }
    }
    for expected in ["ready", "forgotten", "fundee fails on the funder's error"] {
        assert!(
            outcomes.contains(&expected),
            "some kill point ends {expected}"
        );
    }
}
