//! A transient open whose peer stays connected but silent is failed after
//! `open_timeout_secs` of [`Input::Tick`] time; durable channels ignore ticks.

use super::harness::{kinds, outbound_params, Pair};
use crate::channel::{Action, ChannelEvent, ChannelState, Input};

/// Feeds ticks `start, start+step, ...` up to `end` to node `a` (funder) or `b`; returns the
/// time at which the first non-empty action list came back, with it.
fn tick_until(
    node: &mut super::harness::Node,
    start: u64,
    end: u64,
    step: u64,
) -> Option<(u64, Vec<Action>)> {
    let mut now = start;
    while now <= end {
        let actions = node.input(Input::Tick { now_secs: now });
        if !actions.is_empty() {
            return Some((now, actions));
        }
        now += step;
    }
    None
}

#[test]
fn funder_waiting_for_accept_channel_times_out_after_the_configured_seconds() {
    let mut pair = Pair::new();
    pair.a.config.open_timeout_secs = 30;
    let peer = pair.b.node_id;
    pair.start(outbound_params(peer));
    // The fundee never answers. The first tick starts the clock (at t=1000).
    let (at, actions) = tick_until(&mut pair.a, 1_000, 2_000, 5).expect("times out");
    assert_eq!(at, 1_030, "fails exactly when 30 s of ticks have passed");
    assert_eq!(
        kinds(&actions),
        [
            "Send(error)",
            "FailOpen",
            "Emit(ChannelOpenFailed)",
            "Disconnect"
        ]
    );
    assert_eq!(pair.a.state(), ChannelState::Aborted);
    assert!(pair.a.stored.is_none(), "nothing was ever persisted");
    let Some(ChannelEvent::ChannelOpenFailed { reason, .. }) = pair.a.events.last() else {
        panic!("ChannelOpenFailed expected: {:?}", pair.a.events);
    };
    assert!(reason.contains("accept_channel"), "{reason}");
    assert!(reason.contains("30 s"), "{reason}");
}

#[test]
fn progress_restarts_the_clock() {
    let mut pair = Pair::new();
    pair.a.config.open_timeout_secs = 30;
    pair.b.config.open_timeout_secs = 30;
    let peer = pair.b.node_id;
    pair.start(outbound_params(peer));
    // 25 s waiting for accept_channel: not yet.
    assert!(tick_until(&mut pair.a, 0, 25, 5).is_none());
    // accept_channel arrives, the wallet answers: now waiting for funding_signed.
    pair.deliver(true);
    pair.deliver(false);
    pair.step();
    assert_eq!(pair.a.state(), ChannelState::AwaitingFundingSigned);
    // The old 25 s do not count: the clock restarts with the new state.
    assert!(tick_until(&mut pair.a, 30, 55, 5).is_none());
    let (at, actions) = tick_until(&mut pair.a, 60, 100, 5).expect("times out");
    assert_eq!(at, 60);
    assert!(kinds(&actions).contains(&"FailOpen".to_string()));
    let Some(ChannelEvent::ChannelOpenFailed { reason, .. }) = pair.a.events.last() else {
        panic!("ChannelOpenFailed expected");
    };
    assert!(reason.contains("funding_signed"), "{reason}");
    // The fundee, waiting for funding_created that the funder did send but we never delivered.
    assert_eq!(pair.b.state(), ChannelState::InboundAwaitingFundingCreated);
    let (_, actions) = tick_until(&mut pair.b, 0, 100, 10).expect("fundee times out");
    assert!(kinds(&actions).contains(&"FailOpen".to_string()));
    assert_eq!(pair.b.state(), ChannelState::Aborted);
}

#[test]
fn durable_channels_ignore_ticks() {
    let mut pair = Pair::open_to_pending();
    pair.a.config.open_timeout_secs = 1;
    pair.b.config.open_timeout_secs = 1;
    for node in [&mut pair.a, &mut pair.b] {
        assert!(!node.channel().needs_ticks());
        assert!(tick_until(node, 0, 10_000, 100).is_none());
        assert_eq!(node.state(), ChannelState::AwaitingConfirmations);
    }
}

#[test]
fn a_clock_going_backwards_never_fires() {
    let mut pair = Pair::new();
    pair.a.config.open_timeout_secs = 30;
    let peer = pair.b.node_id;
    pair.start(outbound_params(peer));
    assert!(pair.a.input(Input::Tick { now_secs: 1_000 }).is_empty());
    assert!(pair.a.input(Input::Tick { now_secs: 10 }).is_empty());
    assert_eq!(pair.a.state(), ChannelState::OutboundAwaitingAccept);
}
