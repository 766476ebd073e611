//! Anchor channels (`option_anchors`) with LDK's in-memory `ChannelManager`, both ways: LDK
//! negotiates `anchors_zero_fee_htlc_tx` (and, as fundee, accepts the channel by hand, as it
//! requires for anchors), every signature LDK makes verifies on the anchor commitment Tern
//! builds and LDK accepts every one Tern makes, up to `channel_ready` on both sides.

use bitcoin::Amount;
use lightning::events::Event;
use lightning::util::config::UserConfig;

use super::super::harness::{funding_tx, outbound_params, Node};
use super::{conf, flush, Ldk};
use crate::bolt3::{ChannelType, OutputKind, ANCHOR_OUTPUT_VALUE};
use crate::channel::{Action, Channel, ChannelState, InboundParams, Input, OutboundParams};
use crate::wire::{self, Features, Message};

pub(in crate::channel::tests) fn anchors_config() -> UserConfig {
    let mut config = UserConfig::default();
    config
        .channel_handshake_config
        .negotiate_anchors_zero_fee_htlc_tx = true;
    // LDK accepts an inbound anchor channel only by hand.
    config.manually_accept_inbound_channels = true;
    config
}

/// LDK's `init` features as Tern's type.
pub(in crate::channel::tests) fn ldk_features(ldk: &Ldk) -> Features {
    let mut be = ldk.manager.init_features().le_flags().to_vec();
    be.reverse();
    Features::from_be_bytes(&be)
}

/// LDK's channel is an anchor channel, ready.
fn assert_ldk_anchor_ready(ldk: &Ldk) {
    let details = ldk.manager.list_channels();
    assert_eq!(details.len(), 1);
    assert!(details[0].is_channel_ready, "{:?}", details[0]);
    let ty = details[0].channel_type.as_ref().expect("channel type");
    assert!(ty.requires_anchors_zero_fee_htlc_tx(), "{ty:?}");
}

/// Tern's own commitment has both anchors.
fn assert_anchor_commitment(tern: &Node) {
    assert_eq!(tern.channel().channel_type(), ChannelType::ANCHORS);
    let ours = tern
        .channel()
        .our_first_commitment(&tern.ctx())
        .expect("commitment");
    for kind in [OutputKind::LocalAnchor, OutputKind::RemoteAnchor] {
        let i = ours.output_index(kind).expect("anchor");
        assert_eq!(ours.tx.output[i as usize].value, ANCHOR_OUTPUT_VALUE);
    }
}

#[test]
fn tern_funder_ldk_fundee_anchors() {
    let mut height = 200;
    let ldk = Ldk::with_config(height, anchors_config());
    let mut tern = Node::new(1);
    ldk.connect(tern.node_id);
    let their_features = ldk_features(&ldk);
    assert!(their_features.supports(wire::Feature::Anchors));

    let params = OutboundParams {
        their_features,
        ..outbound_params(ldk.node_id)
    };
    let (channel, actions) = Channel::new_outbound(params, &tern.ctx()).expect("open");
    tern.channel = Some(channel);
    tern.apply(&actions);
    let sent = flush(&mut tern, &ldk);
    let [Message::OpenChannel(open)] = sent.as_slice() else {
        panic!("open_channel: {sent:?}");
    };
    assert_eq!(open.channel_type, Some(wire::ChannelType::anchors()));
    // LDK asks its user about an inbound anchor channel.
    let request = ldk
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::OpenChannelRequest {
                temporary_channel_id,
                counterparty_node_id,
                channel_type,
                ..
            } => Some((temporary_channel_id, counterparty_node_id, channel_type)),
            _ => None,
        })
        .expect("OpenChannelRequest");
    assert!(request.2.requires_anchors_zero_fee_htlc_tx());
    ldk.manager
        .accept_inbound_channel(&request.0, &request.1, 7, None)
        .expect("LDK accepts");
    let replies = ldk.outbox();
    let [Message::AcceptChannel(accept)] = replies.as_slice() else {
        panic!("accept_channel: {replies:?}");
    };
    assert_eq!(accept.channel_type, Some(wire::ChannelType::anchors()));

    let actions = tern.input(Input::Message(replies[0].clone()));
    let Some(Action::NeedFundingTx {
        script_pubkey,
        amount,
        ..
    }) = actions.first().cloned()
    else {
        panic!("funding request: {actions:?}");
    };
    let tx = funding_tx(&script_pubkey, amount);
    tern.input(Input::FundingTxBuilt { tx: tx.clone() });
    // funding_created: LDK verifies our signature of its anchor commitment.
    flush(&mut tern, &ldk);
    let replies = ldk.outbox();
    assert!(
        matches!(replies.as_slice(), [Message::FundingSigned(_)]),
        "{replies:?}"
    );
    // Tern verifies LDK's signature of our anchor commitment.
    tern.input(Input::Message(replies[0].clone()));
    assert_eq!(tern.state(), ChannelState::AwaitingConfirmations);
    assert_eq!(tern.broadcasts, vec![tx.clone()]);
    assert_anchor_commitment(&tern);

    height += 1;
    ldk.confirm(&tx, height);
    tern.input(Input::FundingConfirmed {
        tx: tx.clone(),
        confirmation: conf(height),
        tip_height: height,
    });
    let depth = tern.channel().minimum_depth().expect("depth");
    for _ in 1..depth {
        height += 1;
        ldk.tip(height);
        tern.input(Input::NewBlock { height });
    }
    let ours: Vec<Message> = tern.outbox.drain(..).collect();
    assert!(
        matches!(ours.as_slice(), [Message::ChannelReady(_)]),
        "{ours:?}"
    );
    ldk.receive(tern.node_id, &ours[0]);
    let replies = ldk.outbox();
    let ready = replies
        .iter()
        .find(|m| matches!(m, Message::ChannelReady(_)))
        .expect("LDK's channel_ready");
    tern.input(Input::Message(ready.clone()));
    assert_eq!(tern.state(), ChannelState::Ready);
    assert_ldk_anchor_ready(&ldk);
    assert_eq!(
        ldk.manager.list_channels()[0].channel_value_satoshis,
        1_000_000
    );
}

#[test]
fn ldk_funder_tern_fundee_anchors() {
    let mut height = 300;
    let ldk = Ldk::with_config(height, anchors_config());
    let mut tern = Node::new(2);
    ldk.connect(tern.node_id);

    ldk.manager
        .create_channel(tern.node_id, 500_000, 20_000_000, 42, None, None)
        .expect("LDK opens");
    let msgs = ldk.outbox();
    let Some(Message::OpenChannel(open)) = msgs.first().cloned() else {
        panic!("open_channel: {msgs:?}");
    };
    // LDK proposes anchors to a Tern that offers them.
    assert_eq!(open.channel_type, Some(wire::ChannelType::anchors()));
    let params = InboundParams {
        counterparty_node_id: ldk.node_id,
        keys_index: 7,
        current_height: height,
    };
    let (channel, actions) =
        Channel::new_inbound(&open, params, &tern.ctx()).expect("Tern accepts LDK's open");
    tern.channel = Some(channel);
    tern.apply(&actions);
    let sent = flush(&mut tern, &ldk);
    let [Message::AcceptChannel(accept)] = sent.as_slice() else {
        panic!("accept_channel: {sent:?}");
    };
    assert_eq!(accept.channel_type, Some(wire::ChannelType::anchors()));

    let tx = ldk
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::FundingGenerationReady {
                temporary_channel_id,
                counterparty_node_id,
                channel_value_satoshis,
                output_script,
                ..
            } => {
                let tx = funding_tx(&output_script, Amount::from_sat(channel_value_satoshis));
                ldk.manager
                    .funding_transaction_generated(
                        temporary_channel_id,
                        counterparty_node_id,
                        tx.clone(),
                    )
                    .expect("LDK takes the funding tx");
                Some(tx)
            }
            _ => None,
        })
        .expect("funding generation event");
    let msgs = ldk.outbox();
    assert!(
        matches!(msgs.as_slice(), [Message::FundingCreated(_)]),
        "{msgs:?}"
    );
    // Tern verifies LDK's signature of our anchor commitment, persists, signs LDK's.
    tern.input(Input::Message(msgs[0].clone()));
    assert_eq!(tern.state(), ChannelState::AwaitingConfirmations);
    assert_anchor_commitment(&tern);
    let sent = flush(&mut tern, &ldk);
    assert!(matches!(sent.as_slice(), [Message::FundingSigned(_)]));
    assert!(ldk.outbox().is_empty());
    let broadcast = ldk.broadcasts.0.lock().expect("lock").clone();
    assert_eq!(broadcast, vec![tx.clone()], "LDK accepted funding_signed");

    height += 1;
    ldk.confirm(&tx, height);
    tern.input(Input::FundingConfirmed {
        tx: tx.clone(),
        confirmation: conf(height),
        tip_height: height,
    });
    for _ in 1..3 {
        height += 1;
        ldk.tip(height);
        tern.input(Input::NewBlock { height });
    }
    let ours: Vec<Message> = tern.outbox.drain(..).collect();
    assert!(
        matches!(ours.as_slice(), [Message::ChannelReady(_)]),
        "{ours:?}"
    );
    let theirs = ldk.outbox();
    let ready = theirs
        .iter()
        .find(|m| matches!(m, Message::ChannelReady(_)))
        .expect("LDK's channel_ready");
    tern.input(Input::Message(ready.clone()));
    ldk.receive(tern.node_id, &ours[0]);
    assert_eq!(tern.state(), ChannelState::Ready);
    assert_eq!(tern.channel().our_balance_msat(), 20_000_000);
    assert_ldk_anchor_ready(&ldk);
}

/// A Tern whose config disables anchors refuses LDK's anchor open, naming the type; LDK then
/// retries with static_remotekey by itself, which Tern accepts.
#[test]
fn tern_without_anchors_makes_ldk_fall_back_to_static_remote_key() {
    let height = 300;
    let ldk = Ldk::with_config(height, anchors_config());
    let mut tern = Node::new(2);
    tern.config.prefer_anchors = false;
    ldk.connect(tern.node_id);
    ldk.manager
        .create_channel(tern.node_id, 500_000, 0, 42, None, None)
        .expect("LDK opens");
    let Some(Message::OpenChannel(open)) = ldk.outbox().first().cloned() else {
        panic!("open_channel");
    };
    assert_eq!(open.channel_type, Some(wire::ChannelType::anchors()));
    let params = InboundParams {
        counterparty_node_id: ldk.node_id,
        keys_index: 7,
        current_height: height,
    };
    let Err(crate::channel::ChannelError::Rejected { error, actions }) =
        Channel::new_inbound(&open, params.clone(), &tern.ctx())
    else {
        panic!("refused");
    };
    assert_eq!(error.field, "channel_type");
    let Some(Action::Send(refusal)) = actions.first() else {
        panic!("error");
    };
    ldk.receive(tern.node_id, refusal);
    let retry = ldk.outbox();
    let Some(Message::OpenChannel(open)) = retry.first().cloned() else {
        panic!("LDK's second open_channel: {retry:?}");
    };
    assert_eq!(
        open.channel_type,
        Some(wire::ChannelType::static_remote_key())
    );
    let (channel, _) = Channel::new_inbound(&open, params, &tern.ctx()).expect("accepted");
    assert_eq!(channel.channel_type(), ChannelType::STATIC_REMOTE_KEY);
}
