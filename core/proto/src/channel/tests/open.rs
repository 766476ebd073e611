//! Full opens in both roles, the durable points, and transient failures.

use bitcoin::Amount;

use super::harness::{funding_tx, kinds, outbound_params, Node, Pair, TEMP_ID};
use crate::bolt3::OutputKind;
use crate::channel::{
    Action, Channel, ChannelEvent, ChannelState, DisconnectScope, Input, Role, MIN_FEERATE_PER_KW,
};
use crate::wire::{ErrorMessage, FundingSigned, Message};

#[test]
fn full_open_reaches_ready_on_both_sides_with_valid_signatures() {
    let mut pair = Pair::new();
    let peer = pair.b.node_id;
    pair.start(outbound_params(peer));
    assert_eq!(pair.a.state(), ChannelState::OutboundAwaitingAccept);
    assert_eq!(pair.a.sent_names(), ["open_channel"]);

    // open_channel → fundee accepts.
    pair.deliver(true);
    assert_eq!(pair.b.state(), ChannelState::InboundAwaitingFundingCreated);
    assert_eq!(pair.b.sent_names(), ["accept_channel"]);
    assert!(
        pair.b.stored.is_none(),
        "nothing persisted before funding_created"
    );

    // accept_channel → funder asks for the funding tx.
    pair.deliver(false);
    assert_eq!(pair.a.state(), ChannelState::AwaitingFundingTx);
    let (script, amount, feerate) = pair.a.funding_request.take().expect("funding request");
    assert_eq!(amount, Amount::from_sat(1_000_000));
    assert_eq!(feerate, 1_000);
    assert_eq!(
        Some(script.clone()),
        pair.a.channel().funding_script_pubkey()
    );
    assert!(script.is_p2wsh());

    // The wallet answers; funding_created goes out, still nothing persisted.
    let tx = funding_tx(&script, amount);
    let actions = pair.a.input(Input::FundingTxBuilt { tx: tx.clone() });
    assert_eq!(kinds(&actions), ["Send(funding_created)"]);
    assert_eq!(pair.a.state(), ChannelState::AwaitingFundingSigned);
    assert!(pair.a.stored.is_none());
    let Some(Message::FundingCreated(created)) = pair.a.outbox.front().cloned() else {
        panic!("funding_created expected");
    };
    assert_eq!(created.funding_output_index, 1);
    assert_eq!(created.funding_txid, tx.compute_txid());

    // funding_created: the fundee persists BEFORE sending funding_signed.
    pair.deliver(true);
    let fundee_step = pair.b.history.last().cloned().expect("fundee acted");
    assert_eq!(
        kinds(&fundee_step),
        [
            "Persist",
            "Emit(ChannelPending)",
            "WatchFunding",
            "Send(funding_signed)"
        ]
    );
    assert_eq!(pair.b.state(), ChannelState::AwaitingConfirmations);

    // The funder's signature (in funding_created) verifies on the fundee's commitment, and
    // both sides build the same transactions.
    let secp = bitcoin::secp256k1::Secp256k1::verification_only();
    let secp = &secp;
    let a_keys = pair.a.channel().our_params().keys;
    let b_keys = pair.b.channel().our_params().keys;
    let fundee_commitment = pair
        .b
        .channel()
        .our_first_commitment(&pair.b.ctx())
        .expect("build");
    let fundee_commitment_by_funder = pair
        .a
        .channel()
        .their_first_commitment(&pair.a.ctx())
        .expect("build");
    assert_eq!(fundee_commitment.tx, fundee_commitment_by_funder.tx);
    fundee_commitment
        .verify(secp, &created.signature, &a_keys.funding_pubkey)
        .expect("funder's signature verifies");
    assert!(fundee_commitment
        .verify(secp, &created.signature, &b_keys.funding_pubkey)
        .is_err());
    // Balances: the fundee's to_local is the push; the funder pays the fee.
    let to_local = fundee_commitment
        .output_index(OutputKind::ToLocal)
        .expect("fundee has to_local");
    assert_eq!(
        fundee_commitment.tx.output[to_local as usize].value,
        Amount::from_sat(100_000)
    );

    // funding_signed: the funder persists AFTER receiving it and BEFORE broadcasting.
    let Some(Message::FundingSigned(signed)) = pair.b.outbox.front().cloned() else {
        panic!("funding_signed expected");
    };
    pair.deliver(false);
    let funder_step = pair.a.history.last().cloned().expect("funder acted");
    assert_eq!(
        kinds(&funder_step),
        [
            "Persist",
            "Emit(ChannelPending)",
            "BroadcastFunding",
            "WatchFunding"
        ]
    );
    assert_eq!(pair.a.broadcasts, vec![tx.clone()]);
    let funder_commitment = pair
        .a
        .channel()
        .our_first_commitment(&pair.a.ctx())
        .expect("build");
    let funder_commitment_by_fundee = pair
        .b
        .channel()
        .their_first_commitment(&pair.b.ctx())
        .expect("build");
    assert_eq!(funder_commitment.tx, funder_commitment_by_fundee.tx);
    funder_commitment
        .verify(secp, &signed.signature, &b_keys.funding_pubkey)
        .expect("fundee's signature verifies");
    // Ids agree.
    assert_eq!(
        signed.channel_id,
        pair.a.channel().channel_id().expect("id")
    );
    assert_eq!(pair.a.channel().channel_id(), pair.b.channel().channel_id());

    // Confirmations: channel_ready at minimum_depth (3), persisted before it is sent.
    pair.confirm_funding();
    assert!(pair.a.outbox.is_empty() && pair.b.outbox.is_empty());
    pair.mine(1);
    assert!(pair.a.outbox.is_empty());
    pair.mine(1);
    assert_eq!(pair.a.sent_names(), ["channel_ready"]);
    assert_eq!(pair.b.sent_names(), ["channel_ready"]);
    let step = pair.a.history.last().cloned().expect("acted");
    assert_eq!(kinds(&step), ["Persist", "Send(channel_ready)"]);
    assert_eq!(pair.a.state(), ChannelState::AwaitingChannelReady);
    pair.run();
    assert_eq!(pair.a.state(), ChannelState::Ready);
    assert_eq!(pair.b.state(), ChannelState::Ready);
    for node in [&pair.a, &pair.b] {
        assert!(matches!(
            node.events.as_slice(),
            [
                ChannelEvent::ChannelPending { .. },
                ChannelEvent::ChannelReady { .. }
            ]
        ));
        assert!(node.channel().short_channel_id().is_some());
        assert_eq!(node.channel().confirmations(pair.height), 3);
    }
    // The signed commitment the funder could broadcast carries both signatures.
    let signed_tx = pair
        .a
        .channel()
        .signed_our_commitment(&pair.a.ctx())
        .expect("sign");
    assert_eq!(signed_tx.input[0].witness.len(), 4);
    assert_eq!(
        signed_tx.input[0].previous_output,
        pair.a.channel().funding().expect("funding").outpoint
    );
}

#[test]
fn open_message_carries_static_remote_key_and_raised_feerates() {
    let mut pair = Pair::new();
    let mut params = outbound_params(pair.b.node_id);
    params.commitment_feerate_per_kw = 100;
    params.funding_feerate_per_kw = 0;
    pair.start(params);
    let Some(Message::OpenChannel(open)) = pair.a.outbox.front().cloned() else {
        panic!("open_channel expected");
    };
    assert_eq!(open.feerate_per_kw, MIN_FEERATE_PER_KW);
    assert_eq!(
        open.channel_type,
        Some(crate::wire::ChannelType::static_remote_key())
    );
    assert_eq!(
        open.channel_type.as_ref().map(|c| c.to_be_bytes()),
        Some(vec![0x10, 0x00])
    );
    assert_eq!(open.upfront_shutdown_script, Some(Vec::new()));
    assert_eq!(open.channel_flags, 0);
    assert!(open.channel_reserve_satoshis >= open.dust_limit_satoshis);
    pair.run();
    let (_, _, funding_feerate) = pair
        .a
        .history
        .iter()
        .flatten()
        .find_map(|a| match a {
            Action::NeedFundingTx {
                script_pubkey,
                amount,
                feerate_per_kw,
                ..
            } => Some((script_pubkey.clone(), *amount, *feerate_per_kw)),
            _ => None,
        })
        .expect("funding requested");
    assert_eq!(funding_feerate, MIN_FEERATE_PER_KW);
}

#[test]
fn public_flag_and_roles() {
    let mut pair = Pair::new();
    let mut params = outbound_params(pair.b.node_id);
    params.announce = true;
    pair.start(params);
    pair.run();
    assert!(pair.a.channel().is_public() && pair.b.channel().is_public());
    assert_eq!(pair.a.channel().role(), Role::Funder);
    assert_eq!(pair.b.channel().role(), Role::Fundee);
    assert_eq!(pair.a.channel().our_balance_msat(), 900_000_000);
    assert_eq!(pair.b.channel().our_balance_msat(), 100_000_000);
}

#[test]
fn disconnect_before_durable_point_forgets_and_unlocks() {
    // Funder after funding_created: the funding tx was built → FailOpen names it.
    let mut pair = Pair::new();
    pair.start(outbound_params(pair.b.node_id));
    pair.deliver(true);
    pair.deliver(false);
    let (script, amount, _) = pair.a.funding_request.take().expect("request");
    let tx = funding_tx(&script, amount);
    pair.a.input(Input::FundingTxBuilt { tx: tx.clone() });
    let actions = pair.a.input(Input::PeerDisconnected);
    assert_eq!(kinds(&actions), ["FailOpen", "Emit(ChannelOpenFailed)"]);
    assert!(matches!(
        &actions[0],
        Action::FailOpen(crate::channel::FailOpen { temporary_channel_id, funding_txid: Some(txid), .. })
            if *temporary_channel_id == TEMP_ID && *txid == tx.compute_txid()
    ));
    assert!(pair.a.broadcasts.is_empty() && pair.a.stored.is_none());

    // Fundee before funding_created: forgotten, nothing to unlock.
    let actions = pair.b.input(Input::PeerDisconnected);
    assert!(matches!(
        actions.as_slice(),
        [Action::FailOpen(crate::channel::FailOpen {
            funding_txid: None,
            events,
            ..
        })] if matches!(events.as_slice(), [ChannelEvent::ChannelOpenFailed { .. }])
    ));
    assert!(pair.b.stored.is_none());

    // A funder waiting for accept_channel: forgotten, no funding.
    let mut pair = Pair::new();
    pair.start(outbound_params(pair.b.node_id));
    let actions = pair.a.input(Input::PeerDisconnected);
    assert!(matches!(
        actions.as_slice(),
        [Action::FailOpen(crate::channel::FailOpen {
            funding_txid: None,
            events,
            ..
        })] if events.len() == 1
    ));
}

#[test]
fn disconnect_after_durable_point_keeps_the_channel() {
    let mut pair = Pair::open_to_pending();
    assert!(pair.a.input(Input::PeerDisconnected).is_empty());
    assert!(pair.b.input(Input::PeerDisconnected).is_empty());
    assert_eq!(pair.a.state(), ChannelState::AwaitingConfirmations);
}

#[test]
fn bad_funding_signed_signature_fails_without_broadcast() {
    let mut pair = Pair::new();
    pair.start(outbound_params(pair.b.node_id));
    pair.deliver(true);
    pair.deliver(false);
    let (script, amount, _) = pair.a.funding_request.take().expect("request");
    pair.a.input(Input::FundingTxBuilt {
        tx: funding_tx(&script, amount),
    });
    pair.deliver(true);
    let Some(Message::FundingSigned(mut signed)) = pair.b.outbox.pop_front() else {
        panic!("funding_signed expected");
    };
    // A signature by the right key over the wrong transaction: the funder's own signature of
    // the fundee's commitment.
    let Some(Message::FundingCreated(created)) =
        pair.a.history.iter().flatten().find_map(|a| match a {
            Action::Send(m @ Message::FundingCreated(_)) => Some(m.clone()),
            _ => None,
        })
    else {
        panic!("funding_created sent");
    };
    signed.signature = created.signature;
    let actions = pair.a.input(Input::Message(Message::FundingSigned(signed)));
    assert_eq!(
        kinds(&actions),
        [
            "Send(error)",
            "FailOpen",
            "Emit(ChannelOpenFailed)",
            "Disconnect"
        ]
    );
    assert!(
        pair.a.broadcasts.is_empty(),
        "never broadcast without funding_signed"
    );
    assert!(pair.a.stored.is_none());
    let Action::Send(Message::Error(err)) = &actions[0] else {
        panic!("error first");
    };
    assert!(
        err.printable().contains("funding_signed"),
        "{}",
        err.printable()
    );
}

#[test]
fn funding_signed_for_another_channel_id_is_refused() {
    let mut pair = Pair::new();
    pair.start(outbound_params(pair.b.node_id));
    pair.deliver(true);
    pair.deliver(false);
    let (script, amount, _) = pair.a.funding_request.take().expect("request");
    pair.a.input(Input::FundingTxBuilt {
        tx: funding_tx(&script, amount),
    });
    pair.deliver(true);
    let Some(Message::FundingSigned(signed)) = pair.b.outbox.pop_front() else {
        panic!("funding_signed expected");
    };
    let wrong = FundingSigned {
        channel_id: TEMP_ID,
        signature: signed.signature,
    };
    let actions = pair.a.input(Input::Message(Message::FundingSigned(wrong)));
    assert!(kinds(&actions).contains(&"FailOpen".to_string()));
    assert!(pair.a.broadcasts.is_empty());
}

#[test]
fn bad_funding_created_signature_is_refused_before_persisting() {
    let mut pair = Pair::new();
    pair.start(outbound_params(pair.b.node_id));
    pair.deliver(true);
    pair.deliver(false);
    let (script, amount, _) = pair.a.funding_request.take().expect("request");
    pair.a.input(Input::FundingTxBuilt {
        tx: funding_tx(&script, amount),
    });
    let Some(Message::FundingCreated(mut created)) = pair.a.outbox.pop_front() else {
        panic!("funding_created expected");
    };
    // Claim another output index: the signature no longer matches the commitment.
    created.funding_output_index = 0;
    let actions = pair
        .b
        .input(Input::Message(Message::FundingCreated(created)));
    assert_eq!(
        kinds(&actions),
        [
            "Send(error)",
            "FailOpen",
            "Emit(ChannelOpenFailed)",
            "Disconnect"
        ]
    );
    assert!(pair.b.stored.is_none(), "nothing persisted");
    let Action::Send(Message::Error(err)) = &actions[0] else {
        panic!("error first");
    };
    assert_eq!(err.channel_id, TEMP_ID);
}

#[test]
fn funding_tx_without_the_funding_output_fails_the_open() {
    let mut pair = Pair::new();
    pair.start(outbound_params(pair.b.node_id));
    pair.deliver(true);
    pair.deliver(false);
    let (script, amount, _) = pair.a.funding_request.take().expect("request");
    let wrong = funding_tx(&script, amount - Amount::from_sat(1));
    let actions = pair.a.input(Input::FundingTxBuilt { tx: wrong.clone() });
    assert_eq!(
        kinds(&actions),
        [
            "Send(error)",
            "FailOpen",
            "Emit(ChannelOpenFailed)",
            "Disconnect"
        ]
    );
    assert!(matches!(
        &actions[1],
        Action::FailOpen(crate::channel::FailOpen { funding_txid: Some(t), .. }) if *t == wrong.compute_txid()
    ));
}

#[test]
fn unsigned_or_non_segwit_funding_tx_fails_the_open() {
    for corrupt in [
        (|tx: &mut bitcoin::Transaction| tx.input[0].witness = bitcoin::Witness::new())
            as fn(&mut bitcoin::Transaction),
        |tx| tx.input[0].script_sig = bitcoin::ScriptBuf::from_bytes(vec![0x51]),
        |tx| tx.input.clear(),
    ] {
        let mut pair = Pair::new();
        pair.start(outbound_params(pair.b.node_id));
        pair.deliver(true);
        pair.deliver(false);
        let (script, amount, _) = pair.a.funding_request.take().expect("request");
        let mut tx = funding_tx(&script, amount);
        corrupt(&mut tx);
        let actions = pair.a.input(Input::FundingTxBuilt { tx: tx.clone() });
        assert_eq!(
            kinds(&actions),
            [
                "Send(error)",
                "FailOpen",
                "Emit(ChannelOpenFailed)",
                "Disconnect"
            ]
        );
        assert!(matches!(
            &actions[1],
            Action::FailOpen(crate::channel::FailOpen { funding_txid: Some(t), .. }) if *t == tx.compute_txid()
        ));
        assert_eq!(pair.a.state(), ChannelState::Aborted);
    }
}

#[test]
fn an_aborted_open_ignores_everything() {
    let mut pair = Pair::new();
    pair.start(outbound_params(pair.b.node_id));
    pair.deliver(true);
    pair.a.input(Input::PeerDisconnected);
    assert_eq!(pair.a.state(), ChannelState::Aborted);
    assert!(!pair.a.state().is_durable());
    let before = pair.a.channel().clone();
    for input in [
        Input::PeerDisconnected,
        Input::PeerReconnected,
        Input::NewBlock { height: 10_000 },
        Input::FundingTxFailed { reason: "x".into() },
        Input::Message(pair.b.outbox.front().cloned().expect("accept_channel")),
        Input::Message(Message::Error(ErrorMessage::new(TEMP_ID, "late"))),
    ] {
        assert!(pair.a.input(input).is_empty());
    }
    assert_eq!(pair.a.channel(), &before);
}

#[test]
fn messages_are_routed_by_temporary_then_final_id() {
    use crate::channel::message_channel_id;
    let mut pair = Pair::new();
    pair.start(outbound_params(pair.b.node_id));
    let open = pair.a.outbox.front().cloned().expect("open");
    assert_eq!(message_channel_id(&open), Some(TEMP_ID));
    assert_eq!(
        message_channel_id(&Message::Ping(crate::wire::Ping::new(1, 1))),
        None
    );
    pair.run();
    let channel = pair.a.channel();
    let id = channel.channel_id().expect("id");
    assert!(channel.is_for(&TEMP_ID) && channel.is_for(&id));
    assert!(!channel.is_for(&crate::wire::ChannelId([1; 32])));
    let ready = pair
        .b
        .channel()
        .channel_ready_message(&pair.b.ctx())
        .expect("ready");
    assert_eq!(message_channel_id(&Message::ChannelReady(ready)), Some(id));
    // An error about another channel is not ours; one for all channels is.
    let other = crate::wire::ChannelId([1; 32]);
    assert!(pair
        .a
        .input(Input::Message(Message::Error(ErrorMessage::new(
            other, "x"
        ))))
        .is_empty());
    let all = crate::wire::ChannelId::ALL;
    let actions = pair
        .a
        .input(Input::Message(Message::Error(ErrorMessage::new(all, "x"))));
    assert_eq!(pair.a.state(), ChannelState::Closing);
    assert!(!actions.is_empty());
}

#[test]
fn wallet_failure_fails_the_open() {
    let mut pair = Pair::new();
    pair.start(outbound_params(pair.b.node_id));
    pair.deliver(true);
    pair.deliver(false);
    let actions = pair.a.input(Input::FundingTxFailed {
        reason: "insufficient funds".into(),
    });
    assert_eq!(
        kinds(&actions),
        [
            "Send(error)",
            "FailOpen",
            "Emit(ChannelOpenFailed)",
            "Disconnect"
        ]
    );
    let Action::FailOpen(fail) = &actions[1] else {
        panic!("fail open");
    };
    let [ChannelEvent::ChannelOpenFailed { reason, .. }] = fail.events.as_slice() else {
        panic!("event");
    };
    assert!(reason.contains("insufficient funds"));
}

/// A failed open fails that channel alone (BOLT 1): its `error` names it, and the disconnect
/// it asks for leaves the connection to its siblings; the channel no longer needs it.
#[test]
fn a_failed_open_names_itself_and_disconnects_only_if_unshared() {
    let mut pair = Pair::new();
    pair.start(outbound_params(pair.b.node_id));
    pair.deliver(true);
    pair.deliver(false);
    assert!(pair.a.channel().uses_connection());
    let actions = pair.a.input(Input::FundingTxFailed {
        reason: "insufficient funds".into(),
    });
    let Action::Send(Message::Error(err)) = &actions[0] else {
        panic!("error first: {actions:?}");
    };
    assert_eq!(
        err.channel_id, TEMP_ID,
        "the error names the open's temporary id"
    );
    assert!(
        matches!(
            actions.last(),
            Some(Action::Disconnect {
                scope: DisconnectScope::UnlessShared,
                ..
            })
        ),
        "{actions:?}"
    );
    assert!(!pair.a.channel().uses_connection());
}

#[test]
fn peer_error_during_the_open_forgets_the_channel() {
    let mut pair = Pair::new();
    pair.start(outbound_params(pair.b.node_id));
    let actions = pair
        .a
        .input(Input::Message(Message::Error(ErrorMessage::new(
            TEMP_ID,
            "no thanks",
        ))));
    assert_eq!(kinds(&actions), ["FailOpen", "Emit(ChannelOpenFailed)"]);
    let Action::FailOpen(fail) = &actions[0] else {
        panic!("fail open");
    };
    let [ChannelEvent::ChannelOpenFailed { reason, .. }] = fail.events.as_slice() else {
        panic!("event");
    };
    assert!(reason.contains("no thanks"));
}

#[test]
fn peer_error_after_durable_point_fails_and_broadcasts_commitment() {
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
    assert_eq!(
        pair.a.channel().close_kind(),
        Some(crate::channel::CloseKind::LocalForce)
    );
    let Some(Action::Broadcast {
        tx,
        kind: crate::channel::BroadcastKind::Commitment,
    }) = actions.iter().find(|a| {
        matches!(
            a,
            Action::Broadcast {
                kind: crate::channel::BroadcastKind::Commitment,
                ..
            }
        )
    })
    else {
        panic!("commitment");
    };
    let expected = pair
        .a
        .channel()
        .our_first_commitment(&pair.a.ctx())
        .expect("build");
    assert_eq!(tx.compute_txid(), expected.tx.compute_txid());
    // Reconnecting retransmits the error instead of reestablishing.
    let actions = pair.a.input(Input::PeerReconnected);
    assert_eq!(kinds(&actions), ["Send(error)"]);
    // After the failure a block only rebroadcasts what is unconfirmed (the funding, then our
    // commitment): nothing is persisted or sent.
    assert_eq!(
        kinds(&pair.a.input(Input::NewBlock { height: 500 })),
        ["BroadcastFunding", "BroadcastCommitment"]
    );
}

#[test]
fn unexpected_messages_are_ignored() {
    let mut pair = Pair::open_to_pending();
    let accept = pair.b.channel().accept_channel_message();
    let before = pair.a.channel().clone();
    let actions = pair.a.input(Input::Message(Message::AcceptChannel(accept)));
    assert!(actions.is_empty());
    assert_eq!(pair.a.channel(), &before);
}

#[test]
fn restart_after_durable_point_rearms_watch_and_rebroadcasts() {
    let mut pair = Pair::open_to_pending();
    let actions = pair.a.restart();
    assert_eq!(kinds(&actions), ["WatchFunding", "BroadcastFunding"]);
    let actions = pair.b.restart();
    assert_eq!(kinds(&actions), ["WatchFunding"]);
    // And the open completes from the reloaded state.
    pair.confirm_funding();
    pair.mine(2);
    pair.run();
    assert_eq!(pair.a.state(), ChannelState::Ready);
    assert_eq!(pair.b.state(), ChannelState::Ready);
}

#[test]
fn invalid_command_is_refused() {
    let node = Node::new(1);
    let peer = Node::new(2).node_id;
    let mut params = outbound_params(peer);
    params.push_msat = params.funding_sat * 1000 + 1;
    let err = Channel::new_outbound(params, &node.ctx()).expect_err("push above funding");
    assert!(err.to_string().contains("push_msat"), "{err}");
}
