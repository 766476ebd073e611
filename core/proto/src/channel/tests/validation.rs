//! Every validation failure of `open_channel` (fundee), `accept_channel` (funder) and the open
//! command, each naming its field in the `error` sent.

use bitcoin::constants::ChainHash;
use bitcoin::Network;

use super::harness::{kinds, outbound_params, Node, Pair, TEMP_ID};
use crate::channel::{
    Action, Channel, ChannelConfig, ChannelError, ChannelState, InboundParams, Input,
    LARGE_CHANNEL_THRESHOLD_SAT,
};
use crate::wire::{AcceptChannel, ChannelType, Message, OpenChannel};

fn valid_open() -> (OpenChannel, Node) {
    let funder = Node::new(1);
    let fundee = Node::new(2);
    let (_, actions) =
        Channel::new_outbound(outbound_params(fundee.node_id), &funder.ctx()).expect("open");
    let Some(Action::Send(Message::OpenChannel(open))) = actions.into_iter().next() else {
        panic!("open_channel");
    };
    (open, fundee)
}

/// Feeds `open` to a fundee; returns the refused field, checking the actions.
fn refused_field(open: &OpenChannel, fundee: &Node) -> &'static str {
    let params = InboundParams {
        counterparty_node_id: Node::new(1).node_id,
        keys_index: 7,
        current_height: 100,
    };
    match Channel::new_inbound(open, params, &fundee.ctx()) {
        Ok(_) => panic!("open_channel accepted"),
        Err(ChannelError::Rejected { error, actions }) => {
            assert_eq!(kinds(&actions), ["Send(error)", "Disconnect"]);
            let Action::Send(Message::Error(err)) = &actions[0] else {
                panic!("error message");
            };
            assert_eq!(err.channel_id, TEMP_ID);
            assert!(
                err.printable().contains(error.field),
                "error text {:?} names {}",
                err.printable(),
                error.field
            );
            error.field
        }
        Err(e) => panic!("unexpected {e}"),
    }
}

#[test]
fn valid_open_is_accepted() {
    let (open, fundee) = valid_open();
    let params = InboundParams {
        counterparty_node_id: Node::new(1).node_id,
        keys_index: 7,
        current_height: 100,
    };
    let (channel, actions) = Channel::new_inbound(&open, params, &fundee.ctx()).expect("accepted");
    assert_eq!(kinds(&actions), ["Send(accept_channel)"]);
    assert_eq!(channel.state(), ChannelState::InboundAwaitingFundingCreated);
    let Action::Send(Message::AcceptChannel(accept)) = &actions[0] else {
        panic!("accept");
    };
    assert_eq!(accept.minimum_depth, 3);
    assert!(accept.channel_reserve_satoshis >= open.dust_limit_satoshis);
    assert!(accept.dust_limit_satoshis <= open.channel_reserve_satoshis);
    assert_eq!(accept.channel_type, Some(ChannelType::static_remote_key()));
}

#[test]
fn open_channel_failures_name_their_field() {
    type Case = (&'static str, fn(&mut OpenChannel));
    let cases: Vec<Case> = vec![
        ("chain_hash", |o| {
            o.chain_hash = ChainHash::using_genesis_block(Network::Bitcoin)
        }),
        ("funding_satoshis", |o| o.funding_satoshis = 10_000),
        ("funding_satoshis", |o| {
            o.funding_satoshis = LARGE_CHANNEL_THRESHOLD_SAT;
            o.push_msat = 0;
        }),
        ("push_msat", |o| o.push_msat = o.funding_satoshis * 1000 + 1),
        ("push_msat", |o| {
            o.push_msat = o.funding_satoshis * 1000 - 1000
        }),
        ("dust_limit_satoshis", |o| o.dust_limit_satoshis = 353),
        ("dust_limit_satoshis", |o| {
            o.dust_limit_satoshis = 5_000;
            o.channel_reserve_satoshis = 10_000;
        }),
        ("dust_limit_satoshis", |o| {
            o.dust_limit_satoshis = 600;
            o.channel_reserve_satoshis = 500;
        }),
        ("channel_reserve_satoshis", |o| {
            o.channel_reserve_satoshis = o.funding_satoshis / 5 + 1
        }),
        ("to_self_delay", |o| o.to_self_delay = 2017),
        ("max_accepted_htlcs", |o| o.max_accepted_htlcs = 484),
        ("max_accepted_htlcs", |o| o.max_accepted_htlcs = 0),
        ("htlc_minimum_msat", |o| o.htlc_minimum_msat = 1_000_001),
        ("max_htlc_value_in_flight_msat", |o| {
            o.max_htlc_value_in_flight_msat = o.funding_satoshis * 10 - 1
        }),
        ("feerate_per_kw", |o| o.feerate_per_kw = 252),
        ("feerate_per_kw", |o| o.feerate_per_kw = 100_001),
        ("channel_type", |o| o.channel_type = None),
        // (anchors alone is refused only with anchors disabled: `anchors_open_refused_...`)
        ("channel_type", |o| {
            o.channel_type = Some(ChannelType::static_remote_key().with_scid_alias())
        }),
        ("channel_type", |o| {
            o.channel_type = Some(ChannelType::anchors().with_zero_conf())
        }),
    ];
    for (field, mutate) in cases {
        let (mut open, fundee) = valid_open();
        mutate(&mut open);
        assert_eq!(refused_field(&open, &fundee), field, "case {field}");
    }
}

/// The anchors case of `open_channel_failures_name_their_field` from before anchors: an
/// anchor `open_channel` is refused, naming `channel_type`, by a fundee whose config does not
/// use anchors (with the default config it is accepted: `channel/tests/anchors.rs`).
#[test]
fn anchors_open_refused_when_anchors_are_disabled() {
    let (mut open, mut fundee) = valid_open();
    open.channel_type = Some(ChannelType::anchors());
    fundee.config.prefer_anchors = false;
    assert_eq!(refused_field(&open, &fundee), "channel_type");
}

#[test]
fn both_balances_within_reserve_is_refused() {
    let (mut open, mut fundee) = valid_open();
    fundee.config.max_channel_reserve_percent = 100;
    open.push_msat = 0;
    open.channel_reserve_satoshis = open.funding_satoshis;
    assert_eq!(refused_field(&open, &fundee), "channel_reserve_satoshis");
}

#[test]
fn configured_limits_apply() {
    let (mut open, mut fundee) = valid_open();
    fundee.config.min_feerate_per_kw = 5_000;
    assert_eq!(refused_field(&open, &fundee), "feerate_per_kw");
    fundee.config = super::harness::regtest_config();
    fundee.config.max_to_self_delay = 100;
    assert_eq!(refused_field(&open, &fundee), "to_self_delay");
    // A configured floor below 253 still refuses 252.
    fundee.config = super::harness::regtest_config();
    fundee.config.min_feerate_per_kw = 1;
    open.feerate_per_kw = 252;
    assert_eq!(refused_field(&open, &fundee), "feerate_per_kw");
    // Large channels once negotiated.
    let (mut open, mut fundee) = valid_open();
    open.funding_satoshis = LARGE_CHANNEL_THRESHOLD_SAT + 5;
    assert_eq!(refused_field(&open, &fundee), "funding_satoshis");
    fundee.config.large_channels = true;
    fundee.config.max_funding_sat = 100_000_000;
    let params = InboundParams {
        counterparty_node_id: Node::new(1).node_id,
        keys_index: 7,
        current_height: 100,
    };
    assert!(Channel::new_inbound(&open, params, &fundee.ctx()).is_ok());
}

/// Runs the open up to the funder receiving a mutated `accept_channel`.
fn accept_refused(mutate: impl FnOnce(&mut AcceptChannel)) -> Vec<Action> {
    let mut pair = Pair::new();
    pair.start(outbound_params(pair.b.node_id));
    pair.deliver(true);
    let Some(Message::AcceptChannel(mut accept)) = pair.b.outbox.pop_front() else {
        panic!("accept_channel");
    };
    mutate(&mut accept);
    let actions = pair.a.input(Input::Message(Message::AcceptChannel(accept)));
    assert_eq!(pair.a.state(), ChannelState::Aborted);
    assert!(pair.a.funding_request.is_none());
    actions
}

#[test]
fn accept_channel_failures_name_their_field() {
    type Case = (&'static str, fn(&mut AcceptChannel));
    let cases: Vec<Case> = vec![
        ("channel_type", |a| a.channel_type = None),
        ("channel_type", |a| {
            a.channel_type = Some(ChannelType::anchors())
        }),
        ("dust_limit_satoshis", |a| a.dust_limit_satoshis = 353),
        ("dust_limit_satoshis", |a| a.dust_limit_satoshis = 1_001),
        // Below our dust limit (355).
        ("channel_reserve_satoshis", |a| {
            a.channel_reserve_satoshis = 354
        }),
        ("channel_reserve_satoshis", |a| {
            a.channel_reserve_satoshis = 200_001
        }),
        ("minimum_depth", |a| a.minimum_depth = 145),
        ("to_self_delay", |a| a.to_self_delay = 2017),
        ("max_accepted_htlcs", |a| a.max_accepted_htlcs = 484),
        ("htlc_minimum_msat", |a| a.htlc_minimum_msat = 1_000_001),
        ("max_htlc_value_in_flight_msat", |a| {
            a.max_htlc_value_in_flight_msat = 0
        }),
    ];
    for (field, mutate) in cases {
        let actions = accept_refused(mutate);
        assert_eq!(
            kinds(&actions),
            [
                "Send(error)",
                "FailOpen",
                "Emit(ChannelOpenFailed)",
                "Disconnect"
            ],
            "case {field}"
        );
        let Action::Send(Message::Error(err)) = &actions[0] else {
            panic!("error");
        };
        assert!(
            err.printable().starts_with(&format!("invalid {field}:")),
            "case {field}: {}",
            err.printable()
        );
    }
}

#[test]
fn accept_dust_above_our_reserve_is_refused() {
    // A small channel: the reserve we ask for is 546 sat (our dust limit, set to what it was
    // before the default became 355).
    let mut pair = Pair::new();
    pair.a.config.our_dust_limit_sat = 546;
    let mut params = outbound_params(pair.b.node_id);
    params.funding_sat = 50_000;
    params.push_msat = 0;
    pair.start(params);
    pair.deliver(true);
    let Some(Message::AcceptChannel(mut accept)) = pair.b.outbox.pop_front() else {
        panic!("accept_channel");
    };
    assert_eq!(pair.a.channel().our_params().channel_reserve_sat, 546);
    accept.dust_limit_satoshis = 547;
    let actions = pair.a.input(Input::Message(Message::AcceptChannel(accept)));
    let Action::Send(Message::Error(err)) = &actions[0] else {
        panic!("error");
    };
    assert!(
        err.printable().contains("dust_limit_satoshis") && err.printable().contains("reserve"),
        "{}",
        err.printable()
    );
}

#[test]
fn zero_minimum_depth_means_one_confirmation() {
    let mut pair = Pair::new();
    pair.start(outbound_params(pair.b.node_id));
    pair.deliver(true);
    let Some(Message::AcceptChannel(mut accept)) = pair.b.outbox.pop_front() else {
        panic!("accept_channel");
    };
    accept.minimum_depth = 0;
    pair.a.input(Input::Message(Message::AcceptChannel(accept)));
    assert_eq!(pair.a.channel().minimum_depth(), Some(1));
}

#[test]
fn command_failures_name_their_field() {
    let node = Node::new(1);
    let peer = Node::new(2).node_id;
    let check = |mutate: fn(&mut crate::channel::OutboundParams), field: &str| {
        let mut params = outbound_params(peer);
        mutate(&mut params);
        match Channel::new_outbound(params, &node.ctx()) {
            Err(ChannelError::InvalidCommand(e)) => assert_eq!(e.field, field),
            other => panic!("expected invalid {field}, got {other:?}"),
        }
    };
    check(|p| p.funding_sat = 1_000, "funding_satoshis");
    check(
        |p| p.funding_sat = LARGE_CHANNEL_THRESHOLD_SAT,
        "funding_satoshis",
    );
    check(|p| p.push_msat = p.funding_sat * 1000 + 1, "push_msat");
    check(|p| p.commitment_feerate_per_kw = 200_000, "feerate_per_kw");
    let config = ChannelConfig {
        large_channels: true,
        max_funding_sat: 50_000_000,
        ..super::harness::regtest_config()
    };
    let ctx = crate::channel::Context::new(&node.secp, &node.keys, &config);
    let mut params = outbound_params(peer);
    params.funding_sat = LARGE_CHANNEL_THRESHOLD_SAT;
    assert!(Channel::new_outbound(params, &ctx).is_ok());
}
