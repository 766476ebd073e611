//! Public channels: announcement_signatures after 6 confirmations, the channel_announcement
//! built and verified on both sides, retransmission, and refusals.

use bitcoin::hashes::{sha256d, Hash};
use bitcoin::secp256k1::Message as SecpMessage;

use super::harness::{kinds, outbound_params, Pair};
use crate::channel::{check_action_order, Action, ChannelState, Input, ANNOUNCEMENT_DEPTH};
use crate::wire::Message;

fn public_pair() -> Pair {
    let mut pair = Pair::new();
    let mut params = outbound_params(pair.b.node_id);
    params.announce = true;
    pair.start(params);
    pair.run();
    pair.confirm_funding();
    pair.mine(2);
    pair.run();
    assert_eq!(pair.a.state(), ChannelState::Ready);
    assert_eq!(pair.b.state(), ChannelState::Ready);
    pair
}

fn sent_announcement_sigs(pair: &Pair, a: bool) -> usize {
    let node = if a { &pair.a } else { &pair.b };
    node.history
        .iter()
        .flatten()
        .filter(|x| matches!(x, Action::Send(Message::AnnouncementSignatures(_))))
        .count()
}

#[test]
fn public_channel_is_announced_after_six_confirmations() {
    let mut pair = public_pair();
    // Ready at 3 confirmations; nothing announced before 6.
    pair.mine(2);
    assert_eq!(pair.a.channel().confirmations(pair.height), 5);
    assert_eq!(sent_announcement_sigs(&pair, true), 0);
    pair.mine(1);
    assert_eq!(
        pair.a.channel().confirmations(pair.height),
        ANNOUNCEMENT_DEPTH
    );
    let step = pair.a.history.last().cloned().expect("acted");
    assert_eq!(kinds(&step), ["Persist", "Send(announcement_signatures)"]);
    assert!(pair.a.channel().announcement_signatures_sent());
    pair.run();
    for node in [&pair.a, &pair.b] {
        assert!(node.channel().announcement_signatures_received());
        let ann = node
            .channel()
            .channel_announcement()
            .expect("announcement built");
        // All four signatures verify over the double-SHA256 of the signed part.
        let digest =
            SecpMessage::from_digest(sha256d::Hash::hash(&ann.signed_bytes()).to_byte_array());
        for (sig, key) in [
            (&ann.node_signature_1, &ann.node_id_1),
            (&ann.node_signature_2, &ann.node_id_2),
            (&ann.bitcoin_signature_1, &ann.bitcoin_key_1),
            (&ann.bitcoin_signature_2, &ann.bitcoin_key_2),
        ] {
            node.secp
                .verify_ecdsa(&digest, sig, key)
                .expect("signature verifies");
        }
        assert!(ann.node_id_1.serialize() < ann.node_id_2.serialize());
        assert_eq!(
            Some(ann.short_channel_id),
            node.channel().short_channel_id()
        );
        // It travels on the wire unchanged.
        let bytes = Message::ChannelAnnouncement(ann.clone()).encode();
        assert_eq!(
            Message::decode(&bytes).expect("decodes"),
            Message::ChannelAnnouncement(ann.clone())
        );
        // The persisted record that first held it is the last one written.
        let stored =
            crate::channel::ChannelRecord::decode(node.stored.as_ref().expect("persisted"))
                .expect("decodes");
        assert_eq!(stored.channel().channel_announcement(), Some(ann));
    }
    assert_eq!(
        pair.a.channel().channel_announcement(),
        pair.b.channel().channel_announcement()
    );
    // Each side sent its half once (the answer rule does not ping-pong).
    assert_eq!(sent_announcement_sigs(&pair, true), 1);
    assert_eq!(sent_announcement_sigs(&pair, false), 1);
    // More blocks change nothing.
    pair.mine(3);
    assert!(pair.a.history.last().expect("acted").is_empty());
}

#[test]
fn private_channels_are_never_announced() {
    let mut pair = Pair::open_to_ready();
    pair.mine(10);
    pair.run();
    assert_eq!(sent_announcement_sigs(&pair, true), 0);
    assert_eq!(sent_announcement_sigs(&pair, false), 0);
    assert!(pair.a.channel().channel_announcement().is_none());
}

#[test]
fn lost_announcement_signatures_are_retransmitted_on_reconnect() {
    let mut pair = public_pair();
    pair.drop.push("announcement_signatures");
    pair.mine(3);
    pair.run();
    assert!(!pair.a.channel().announcement_signatures_received());
    assert!(!pair.b.channel().announcement_signatures_received());
    pair.drop.clear();
    // Restart one side from its record too: the marks survive.
    pair.a.restart();
    super::reestablish::reconnect(&mut pair);
    for node in [&pair.a, &pair.b] {
        assert!(node.channel().channel_announcement().is_some());
    }
    // Once complete, a reconnection retransmits nothing more.
    let before = sent_announcement_sigs(&pair, true);
    super::reestablish::reconnect(&mut pair);
    assert_eq!(sent_announcement_sigs(&pair, true), before);
}

#[test]
fn early_peer_half_is_kept_and_completed_when_we_send_ours() {
    let mut pair = public_pair();
    // Only the fundee sees the sixth block for now.
    pair.height += 3;
    let h = pair.height;
    pair.b.input(Input::NewBlock { height: h });
    pair.deliver(false);
    let step = pair.a.history.last().cloned().expect("acted");
    assert_eq!(kinds(&step), ["Persist"], "half proof persisted");
    assert!(pair.a.channel().announcement_signatures_received());
    let actions = pair.a.input(Input::NewBlock { height: h });
    assert_eq!(
        kinds(&actions),
        ["Persist", "Send(announcement_signatures)"]
    );
    let Some(Action::Commit(crate::channel::Commit { record, .. })) = actions.first() else {
        panic!("persist first");
    };
    assert!(
        record.channel().channel_announcement().is_some(),
        "built with our half"
    );
    pair.run();
    assert!(pair.b.channel().channel_announcement().is_some());
}

#[test]
fn bad_announcement_signatures_are_refused() {
    let mut pair = public_pair();
    pair.drop.push("announcement_signatures");
    pair.mine(3);
    let Some(Message::AnnouncementSignatures(good)) =
        pair.b.history.iter().flatten().find_map(|a| match a {
            Action::Send(m @ Message::AnnouncementSignatures(_)) => Some(m.clone()),
            _ => None,
        })
    else {
        panic!("fundee sent its half");
    };
    // Swapped signatures: both invalid.
    let mut bad = good.clone();
    std::mem::swap(&mut bad.node_signature, &mut bad.bitcoin_signature);
    let actions = pair
        .a
        .input(Input::Message(Message::AnnouncementSignatures(bad)));
    assert_eq!(kinds(&actions), ["Send(warning)", "Disconnect"]);
    assert!(
        matches!(
            actions[1],
            Action::Disconnect {
                scope: crate::channel::DisconnectScope::Connection,
                ..
            }
        ),
        "bad signatures on the connection close it, whatever else uses it"
    );
    assert!(!pair.a.channel().announcement_signatures_received());
    // Another short_channel_id: a warning, nothing stored.
    let mut moved = good.clone();
    moved.short_channel_id = crate::wire::ShortChannelId(moved.short_channel_id.0 + (1 << 40));
    let actions = pair
        .a
        .input(Input::Message(Message::AnnouncementSignatures(moved)));
    assert_eq!(kinds(&actions), ["Send(warning)"]);
    assert!(!pair.a.channel().announcement_signatures_received());
    // The genuine one is accepted.
    let actions = pair
        .a
        .input(Input::Message(Message::AnnouncementSignatures(good)));
    assert_eq!(kinds(&actions), ["Persist"]);
    assert!(pair.a.channel().channel_announcement().is_some());
}

#[test]
fn announcement_signatures_need_their_persisted_mark() {
    let mut pair = public_pair();
    let before = pair.a.channel().to_record();
    pair.mine(3);
    let step = pair.a.history.last().cloned().expect("acted");
    let send_only: Vec<Action> = step
        .into_iter()
        .filter(|a| matches!(a, Action::Send(_)))
        .collect();
    assert_eq!(send_only.len(), 1);
    assert!(check_action_order(&send_only, Some(&before)).is_err());
    check_action_order(&send_only, Some(&pair.a.channel().to_record())).expect("mark persisted");
}

#[test]
fn no_node_key_means_no_announcement() {
    let mut pair = public_pair();
    pair.height += 3;
    let mut channel = pair.a.channel().clone();
    // A context without the node key: nothing to sign with, nothing sent or persisted.
    let ctx = crate::channel::Context::new(&pair.a.secp, &pair.a.keys, &pair.a.config);
    assert!(channel
        .handle(
            Input::NewBlock {
                height: pair.height
            },
            &ctx
        )
        .is_empty());
    assert!(!channel.announcement_signatures_sent());
}

#[test]
fn a_peer_missing_our_half_gets_it_in_answer_after_reconnecting() {
    let mut pair = public_pair();
    pair.mine(3);
    // The fundee's half reaches the funder; the funder's half is lost.
    pair.deliver(false);
    assert!(pair.a.channel().channel_announcement().is_some());
    pair.a.outbox.clear();
    assert!(pair.b.channel().channel_announcement().is_none());
    // On reconnection the fundee retransmits (it never got ours) and the funder answers.
    super::reestablish::reconnect(&mut pair);
    assert!(pair.b.channel().channel_announcement().is_some());
    assert_eq!(sent_announcement_sigs(&pair, true), 2);
    assert_eq!(sent_announcement_sigs(&pair, false), 2);
}
