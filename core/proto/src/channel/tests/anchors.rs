//! `option_anchors` channels: opens in both roles to `Ready` (DurabilityChecker on every step,
//! record round trip after every step — the harness does both), the negotiation matrix, the
//! funder's affordability of the two anchors, and the record's field 58.

use bitcoin::Amount;

use super::harness::{anchors_params, kinds, no_anchors_peer, outbound_params, Pair};
use super::record::edited;
use crate::bolt3::{commitment_fee, ChannelType, OutputKind, ANCHOR_OUTPUT_VALUE};
use crate::channel::{
    Action, Channel, ChannelError, ChannelRecord, ChannelState, Input, OutboundParams, RecordError,
};
use crate::wire::{self, Features, Message};

/// Runs an open from `params` to `Ready` on both sides.
fn open_to_ready(pair: &mut Pair, params: OutboundParams) {
    pair.start(params);
    pair.run();
    assert_eq!(pair.a.state(), ChannelState::AwaitingConfirmations);
    assert_eq!(pair.b.state(), ChannelState::AwaitingConfirmations);
    pair.confirm_to_ready();
}

#[test]
fn anchor_open_reaches_ready_in_both_roles_with_anchor_commitments() {
    let mut pair = Pair::new();
    let peer = pair.b.node_id;
    pair.start(anchors_params(peer));
    let Some(Message::OpenChannel(open)) = pair.a.outbox.front().cloned() else {
        panic!("open_channel");
    };
    // The smallest bitmap: bits 12 and 22.
    assert_eq!(open.channel_type, Some(wire::ChannelType::anchors()));
    assert_eq!(
        open.channel_type
            .as_ref()
            .map(wire::ChannelType::to_be_bytes),
        Some(vec![0x40, 0x10, 0x00])
    );
    pair.deliver(true);
    let Some(Message::AcceptChannel(accept)) = pair.b.outbox.front().cloned() else {
        panic!("accept_channel");
    };
    assert_eq!(accept.channel_type, Some(wire::ChannelType::anchors()));
    pair.run();
    // The fundee persisted before funding_signed, the funder before broadcasting (the
    // checker saw every step); both are durable.
    for node in [&pair.a, &pair.b] {
        assert_eq!(node.state(), ChannelState::AwaitingConfirmations);
        assert_eq!(node.channel().channel_type(), ChannelType::ANCHORS);
        let stored = ChannelRecord::decode(node.stored.as_ref().expect("persisted"))
            .expect("decodes")
            .into_channel();
        assert_eq!(stored.channel_type(), ChannelType::ANCHORS);
    }
    // Both sides build the same two commitments, each with both anchors; the funder pays
    // them and the (anchor-weight) fee.
    let a_ours = pair
        .a
        .channel()
        .our_first_commitment(&pair.a.ctx())
        .expect("a");
    let b_theirs = pair
        .b
        .channel()
        .their_first_commitment(&pair.b.ctx())
        .expect("b");
    assert_eq!(a_ours.tx, b_theirs.tx);
    let b_ours = pair
        .b
        .channel()
        .our_first_commitment(&pair.b.ctx())
        .expect("b");
    let a_theirs = pair
        .a
        .channel()
        .their_first_commitment(&pair.a.ctx())
        .expect("a");
    assert_eq!(b_ours.tx, a_theirs.tx);
    let fee = commitment_fee(2_500, 0, ChannelType::ANCHORS);
    for c in [&a_ours, &b_ours] {
        assert_eq!(c.channel_type, ChannelType::ANCHORS);
        assert_eq!(c.tx.output.len(), 4);
        for kind in [OutputKind::LocalAnchor, OutputKind::RemoteAnchor] {
            let i = c.output_index(kind).expect("anchor output");
            assert_eq!(c.tx.output[i as usize].value, ANCHOR_OUTPUT_VALUE);
        }
        assert_eq!(c.fee, fee);
    }
    let funder_to_local = a_ours.output_index(OutputKind::ToLocal).expect("to_local");
    assert_eq!(
        a_ours.tx.output[funder_to_local as usize].value,
        Amount::from_sat(900_000) - fee - ANCHOR_OUTPUT_VALUE * 2
    );
    let fundee_to_local = b_ours.output_index(OutputKind::ToLocal).expect("to_local");
    assert_eq!(
        b_ours.tx.output[fundee_to_local as usize].value,
        Amount::from_sat(100_000)
    );
    // The signed commitment each side could broadcast spends the funding with both
    // signatures.
    for node in [&pair.a, &pair.b] {
        let tx = node
            .channel()
            .signed_our_commitment(&node.ctx())
            .expect("signed");
        assert_eq!(tx.input[0].witness.len(), 4);
        assert_eq!(tx.output.len(), 4);
    }
    pair.confirm_funding();
    let depth = pair.b.config.our_minimum_depth;
    pair.mine(depth - 1);
    pair.run();
    assert_eq!(pair.a.state(), ChannelState::Ready);
    assert_eq!(pair.b.state(), ChannelState::Ready);
    // A restart from the stored record keeps the type.
    pair.a.restart();
    pair.b.restart();
    assert_eq!(pair.a.channel().channel_type(), ChannelType::ANCHORS);
    assert_eq!(pair.b.channel().channel_type(), ChannelType::ANCHORS);
}

/// Peer offers anchors or not × the funder's config prefers them or not × the fundee's
/// config: the funder proposes anchors only with both, the fundee refuses anchors only when
/// its config disables them (naming `channel_type`), and every open that is accepted reaches
/// `Ready` with the same type on both sides.
#[test]
fn negotiation_matrix() {
    for peer_offers in [true, false] {
        for funder_prefers in [true, false] {
            for fundee_prefers in [true, false] {
                let case = format!(
                    "peer offers {peer_offers}, funder prefers {funder_prefers}, \
                     fundee prefers {fundee_prefers}"
                );
                let mut pair = Pair::new();
                pair.a.config.prefer_anchors = funder_prefers;
                pair.b.config.prefer_anchors = fundee_prefers;
                let params = OutboundParams {
                    their_features: if peer_offers {
                        Features::tern_init()
                    } else {
                        no_anchors_peer()
                    },
                    ..outbound_params(pair.b.node_id)
                };
                let proposed = peer_offers && funder_prefers;
                if proposed && !fundee_prefers {
                    pair.start(params);
                    pair.run();
                    assert_eq!(pair.a.state(), ChannelState::Aborted, "{case}");
                    assert!(pair.b.channel.is_none(), "{case}");
                    let refusal = pair
                        .b
                        .history
                        .iter()
                        .flatten()
                        .find_map(|a| match a {
                            Action::Send(Message::Error(e)) => Some(e.printable()),
                            _ => None,
                        })
                        .expect("the fundee's error");
                    assert!(
                        refusal.contains("channel_type") && refusal.contains("Anchors(22)"),
                        "{case}: {refusal}"
                    );
                    continue;
                }
                open_to_ready(&mut pair, params);
                let expected = if proposed {
                    ChannelType::ANCHORS
                } else {
                    ChannelType::STATIC_REMOTE_KEY
                };
                assert_eq!(pair.a.channel().channel_type(), expected, "{case}");
                assert_eq!(pair.b.channel().channel_type(), expected, "{case}");
            }
        }
    }
}

/// The fundee echoes the type; a funder that proposed static_remotekey refuses an anchor
/// `accept_channel`, and one that proposed anchors refuses a static_remotekey one.
#[test]
fn accept_channel_must_echo_the_proposed_type() {
    for (params, echoed) in [
        (
            anchors_params as fn(_) -> OutboundParams,
            wire::ChannelType::static_remote_key(),
        ),
        (outbound_params, wire::ChannelType::anchors()),
    ] {
        let mut pair = Pair::new();
        pair.start(params(pair.b.node_id));
        pair.deliver(true);
        let Some(Message::AcceptChannel(mut accept)) = pair.b.outbox.pop_front() else {
            panic!("accept_channel");
        };
        accept.channel_type = Some(echoed);
        let actions = pair.a.input(Input::Message(Message::AcceptChannel(accept)));
        assert_eq!(pair.a.state(), ChannelState::Aborted);
        let Some(Action::Send(Message::Error(e))) = actions.first() else {
            panic!("error: {actions:?}");
        };
        assert!(
            e.printable().contains("channel_type") && e.printable().contains("does not match"),
            "{}",
            e.printable()
        );
    }
}

/// A funder that keeps enough for the static_remotekey fee but not for the anchor fee plus
/// the two 330-sat anchors: an anchor open is refused in both roles, a static_remotekey one
/// of the same amounts is not.
#[test]
fn the_funder_must_afford_both_anchors() {
    // At 2,500 sat/kw: static fee 1,810; anchor fee 2,810 + 660 = 3,470.
    let anchors_cost = commitment_fee(2_500, 0, ChannelType::ANCHORS) + ANCHOR_OUTPUT_VALUE * 2;
    assert_eq!(anchors_cost, Amount::from_sat(3_470));
    let keeps = 3_000u64;
    let push_msat = (1_000_000 - keeps) * 1000;
    // Our own command.
    let pair = Pair::new();
    let mut params = anchors_params(pair.b.node_id);
    params.push_msat = push_msat;
    match Channel::new_outbound(params, &pair.a.ctx()) {
        Err(ChannelError::InvalidCommand(v)) => {
            assert_eq!(v.field, "push_msat");
            assert!(v.reason.contains("two anchors"), "{}", v.reason);
        }
        other => panic!("refused: {other:?}"),
    }
    let mut params = outbound_params(pair.b.node_id);
    params.push_msat = push_msat;
    assert!(Channel::new_outbound(params, &pair.a.ctx()).is_ok());
    // A peer's open: the same amounts in an anchor open_channel are refused by the fundee,
    // in a static_remotekey one accepted.
    for (params, accepted) in [
        (anchors_params as fn(_) -> OutboundParams, false),
        (outbound_params, true),
    ] {
        let mut pair = Pair::new();
        pair.start(params(pair.b.node_id));
        let Some(Message::OpenChannel(mut open)) = pair.a.outbox.pop_front() else {
            panic!("open_channel");
        };
        open.push_msat = push_msat;
        pair.a.outbox.push_back(Message::OpenChannel(open));
        pair.deliver(true);
        assert_eq!(pair.b.channel.is_some(), accepted);
        if !accepted {
            assert_eq!(
                pair.b.history.last().map(|a| kinds(a)),
                Some(vec!["Send(error)".to_string(), "Disconnect".to_string()])
            );
        }
    }
}

/// Field 58: absent for static_remotekey (the bytes of every earlier record), present and
/// even for anchors; a record holding static_remotekey or an unknown type in it is refused,
/// and an anchor record without it would read as static_remotekey (which is why it is
/// even: a build that does not know it refuses the record).
#[test]
fn record_field_58() {
    let mut pair = Pair::new();
    let params = anchors_params(pair.b.node_id);
    open_to_ready(&mut pair, params);
    let anchors = pair.a.channel().to_record().encode();
    let stream = crate::wire::tlv::TlvStream::decode(&anchors[1..], |_| true).expect("stream");
    assert_eq!(stream.get(58), Some(&[0x40, 0x10, 0x00][..]));
    let back = ChannelRecord::decode(&anchors).expect("decodes");
    assert_eq!(back.channel(), pair.a.channel());
    assert_eq!(back.encode(), anchors);

    let mut static_pair = Pair::new();
    let params = outbound_params(static_pair.b.node_id);
    open_to_ready(&mut static_pair, params);
    let plain = static_pair.a.channel().to_record().encode();
    let stream = crate::wire::tlv::TlvStream::decode(&plain[1..], |_| true).expect("stream");
    assert!(stream.get(58).is_none());

    // static_remotekey is never written in field 58: refused, so every record re-encodes
    // to its own bytes.
    assert_eq!(
        edited(&plain, &[], &[(58, vec![0x10, 0x00])]),
        Err(RecordError::Invalid("channel_type"))
    );
    // A type this build does not build.
    assert_eq!(
        edited(
            &anchors,
            &[58],
            &[(
                58,
                wire::ChannelType::anchors().with_scid_alias().to_be_bytes()
            )]
        ),
        Err(RecordError::Invalid("channel_type"))
    );
    // Without field 58 the anchor record is a static_remotekey channel: the wrong
    // commitment. A reader that skips unknown even fields would make it.
    let stripped = edited(&anchors, &[58], &[]).expect("decodes");
    assert_eq!(
        stripped.channel().channel_type(),
        ChannelType::STATIC_REMOTE_KEY
    );
    assert_ne!(
        stripped
            .channel()
            .our_first_commitment(&pair.a.ctx())
            .expect("builds")
            .tx,
        pair.a
            .channel()
            .our_first_commitment(&pair.a.ctx())
            .expect("builds")
            .tx
    );
}
