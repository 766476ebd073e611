//! Commitment updates against LDK's `ChannelManager`, in memory: LDK as funder sends
//! `update_fee` when its estimates move (on `timer_tick_occurred`), Tern as funder sends its
//! own; both directions, with the link cut between any two messages. Both must end with the
//! same commitment, LDK never failing the channel.

use std::sync::atomic::Ordering;

use bitcoin::Amount;
use lightning::events::Event;
use lightning::ln::msgs::BaseMessageHandler;

use super::harness::{funding_tx, outbound_params, Node};
use super::ldk::anchors::{anchors_config, ldk_features};
use super::ldk::{conf, flush, Ldk};
use crate::channel::{Action, Channel, ChannelState, InboundParams, Input, OutboundParams};
use crate::wire::Message;

/// An LDK peer and a Tern node with a ready channel between them.
pub(super) struct Link {
    pub(super) ldk: Ldk,
    pub(super) tern: Node,
    pub(super) height: u32,
    pub(super) tern_funds: bool,
}

impl Link {
    pub(super) fn open(tern_funds: bool) -> Link {
        Link::open_typed(tern_funds, false)
    }

    /// `anchors`: both negotiate `option_anchors` (LDK accepts its inbound one by hand).
    pub(super) fn open_typed(tern_funds: bool, anchors: bool) -> Link {
        Link::open_with(tern_funds, anchors, None)
    }

    /// `push_msat`: what the funder gives the fundee at open (`None`: the usual amounts).
    pub(super) fn open_with(tern_funds: bool, anchors: bool, push_msat: Option<u64>) -> Link {
        let mut height = 400;
        let ldk = if anchors {
            Ldk::with_config(height, anchors_config())
        } else {
            Ldk::new(height)
        };
        let mut tern = Node::new(if tern_funds { 1 } else { 2 });
        ldk.connect(tern.node_id);
        let tx = if tern_funds {
            let base = outbound_params(ldk.node_id);
            let params = OutboundParams {
                their_features: ldk_features(&ldk),
                push_msat: push_msat.unwrap_or(base.push_msat),
                ..base
            };
            let (channel, actions) = Channel::new_outbound(params, &tern.ctx()).expect("open");
            tern.channel = Some(channel);
            tern.apply(&actions);
            flush(&mut tern, &ldk);
            for e in ldk.events() {
                if let Event::OpenChannelRequest {
                    temporary_channel_id,
                    counterparty_node_id,
                    ..
                } = e
                {
                    ldk.manager
                        .accept_inbound_channel(
                            &temporary_channel_id,
                            &counterparty_node_id,
                            7,
                            None,
                        )
                        .expect("LDK accepts");
                }
            }
            let accept = ldk.outbox();
            let actions = tern.input(Input::Message(accept[0].clone()));
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
            flush(&mut tern, &ldk);
            let signed = ldk.outbox();
            tern.input(Input::Message(signed[0].clone()));
            tx
        } else {
            ldk.manager
                .create_channel(
                    tern.node_id,
                    500_000,
                    push_msat.unwrap_or(20_000_000),
                    42,
                    None,
                    None,
                )
                .expect("LDK opens");
            let Some(Message::OpenChannel(open)) = ldk.outbox().first().cloned() else {
                panic!("open_channel");
            };
            let params = InboundParams {
                counterparty_node_id: ldk.node_id,
                keys_index: 7,
                current_height: height,
            };
            let (channel, actions) =
                Channel::new_inbound(&open, params, &tern.ctx()).expect("accept");
            tern.channel = Some(channel);
            tern.apply(&actions);
            flush(&mut tern, &ldk);
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
                        let tx =
                            funding_tx(&output_script, Amount::from_sat(channel_value_satoshis));
                        ldk.manager
                            .funding_transaction_generated(
                                temporary_channel_id,
                                counterparty_node_id,
                                tx.clone(),
                            )
                            .expect("funding");
                        Some(tx)
                    }
                    _ => None,
                })
                .expect("funding generation");
            let created = ldk.outbox();
            tern.input(Input::Message(created[0].clone()));
            flush(&mut tern, &ldk);
            tx
        };
        assert_eq!(tern.state(), ChannelState::AwaitingConfirmations);
        assert_eq!(tern.channel().channel_type().anchors, anchors);
        height += 1;
        ldk.confirm(&tx, height);
        tern.input(Input::FundingConfirmed {
            tx,
            confirmation: conf(height),
            tip_height: height,
        });
        for _ in 1..6 {
            height += 1;
            ldk.tip(height);
            tern.input(Input::NewBlock { height });
        }
        let mut link = Link {
            ldk,
            tern,
            height,
            tern_funds,
        };
        link.exchange();
        assert_eq!(link.tern.state(), ChannelState::Ready);
        assert!(link.ldk.manager.list_channels()[0].is_channel_ready);
        link.ldk.events();
        link
    }

    /// Delivers messages both ways until both are quiet.
    pub(super) fn exchange(&mut self) {
        loop {
            let to_ldk = flush(&mut self.tern, &self.ldk);
            let to_tern = self.ldk.outbox();
            for m in &to_tern {
                self.tern.input(Input::Message(m.clone()));
            }
            if to_ldk.is_empty() && to_tern.is_empty() {
                break;
            }
        }
    }

    /// Cuts the link (whatever is in flight is lost) and reconnects.
    pub(super) fn reconnect(&mut self) {
        self.tern.outbox.clear();
        self.ldk.outbox();
        self.ldk.manager.peer_disconnected(self.tern.node_id);
        self.tern.input(Input::PeerDisconnected);
        self.ldk.connect(self.tern.node_id);
        self.tern.input(Input::PeerReconnected);
        self.exchange();
    }

    /// The funder starts an update to `feerate`.
    fn update_fee(&mut self, feerate: u32) {
        if self.tern_funds {
            self.tern.input(Input::SetFeerate {
                feerate_per_kw: feerate,
            });
        } else {
            self.ldk.fees.0.store(feerate, Ordering::SeqCst);
            self.ldk.manager.timer_tick_occurred();
        }
    }

    /// Both hold the same feerate, nothing in flight, LDK's channel usable and never closed.
    fn assert_agree(&mut self, feerate: u32) {
        let details = self.ldk.manager.list_channels();
        assert_eq!(details.len(), 1, "LDK still has the channel");
        assert!(
            details[0].is_usable,
            "LDK's channel is usable: {:?}",
            details[0]
        );
        assert_eq!(details[0].feerate_sat_per_1000_weight, Some(feerate));
        let c = self.tern.channel();
        assert_eq!(c.state(), ChannelState::Ready);
        assert_eq!(c.commitment_feerate_per_kw(), feerate);
        assert!(!c.update_pending(), "{:?}", c.commitments());
        let closed = self
            .ldk
            .events()
            .into_iter()
            .any(|e| matches!(e, Event::ChannelClosed { .. }));
        assert!(!closed, "LDK closed the channel");
        assert!(
            self.ldk.broadcasts.0.lock().expect("lock").len() <= 1,
            "no commitment broadcast"
        );
    }
}

#[test]
fn ldk_funder_update_fee_is_accepted_and_signed_back() {
    let mut link = Link::open(false);
    link.update_fee(5_000);
    let msgs = link.ldk.outbox();
    let names: Vec<_> = msgs.iter().map(Message::name).collect();
    assert_eq!(names, ["update_fee", "commitment_signed"]);
    for m in msgs {
        link.tern.input(Input::Message(m));
    }
    link.exchange();
    link.assert_agree(5_000);
    assert_eq!(link.tern.channel().commitment_number(), 1);
    // Fees fall by more than half: LDK lowers them too.
    link.update_fee(2_000);
    link.exchange();
    link.assert_agree(2_000);
    assert_eq!(link.tern.channel().commitment_number(), 2);
}

#[test]
fn tern_funder_update_fee_is_accepted_by_ldk() {
    let mut link = Link::open(true);
    link.update_fee(5_000);
    link.exchange();
    link.assert_agree(5_000);
    link.update_fee(3_000);
    link.exchange();
    link.assert_agree(3_000);
    assert_eq!(link.tern.channel().commitment_number(), 2);
}

/// The matrix: both roles × both commitment types × one update or two back to back (the
/// second while the first awaits its revocation: Tern sends it alone, LDK holds it) × a cut
/// after each of the first 10 messages (counting both directions) × the cut being a plain
/// reconnection or a kill of Tern (restart from its last record). Every case ends with both
/// at the same feerate, the channel usable, LDK never closing it; one more update completes.
#[test]
fn a_cut_or_kill_after_any_message_of_an_update_ends_in_agreement() {
    let mut cases = 0;
    for tern_funds in [true, false] {
        for anchors in [false, true] {
            for double in [false, true] {
                for cut in 0..10 {
                    for kill in [false, true] {
                        cut_case(tern_funds, anchors, double, cut, kill);
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 160);
}

fn cut_case(tern_funds: bool, anchors: bool, double: bool, cut: usize, kill: bool) {
    let mut link = Link::open_typed(tern_funds, anchors);
    // What LDK sent that Tern has not received yet.
    let mut to_tern: std::collections::VecDeque<Message> = Default::default();
    link.update_fee(5_000);
    if double {
        // The first update reaches the peer; the second starts before any answer arrives.
        flush(&mut link.tern, &link.ldk);
        to_tern.extend(link.ldk.outbox());
        link.update_fee(6_000);
    }
    let mut delivered = 0;
    while delivered < cut {
        if let Some(m) = link.tern.outbox.pop_front() {
            link.ldk.receive(link.tern.node_id, &m);
        } else {
            to_tern.extend(link.ldk.outbox());
            let Some(m) = to_tern.pop_front() else {
                break;
            };
            link.tern.input(Input::Message(m));
        }
        delivered += 1;
    }
    // The cut: whatever is in flight is lost.
    if kill {
        link.tern.restart();
    }
    link.reconnect();
    // LDK retries its own update on the next tick; Tern's policy asks again.
    let target = if double { 6_000 } else { 5_000 };
    link.update_fee(target);
    link.exchange();
    link.assert_agree(target);
    link.update_fee(7_000);
    link.exchange();
    link.assert_agree(7_000);
}

#[test]
fn ldk_keeps_the_channel_across_a_kill_of_tern_after_its_commitment_signed() {
    for tern_funds in [true, false] {
        let mut link = Link::open(tern_funds);
        link.update_fee(6_000);
        // Deliver until Tern has persisted a new record, then kill it (restart from bytes).
        let stored_before = link.tern.stored.clone();
        for _ in 0..4 {
            let to_ldk = flush(&mut link.tern, &link.ldk);
            let to_tern = link.ldk.outbox();
            for m in &to_tern {
                link.tern.input(Input::Message(m.clone()));
            }
            if link.tern.stored != stored_before || (to_ldk.is_empty() && to_tern.is_empty()) {
                break;
            }
        }
        link.tern.restart();
        link.ldk.outbox();
        link.ldk.manager.peer_disconnected(link.tern.node_id);
        link.tern.input(Input::PeerDisconnected);
        link.ldk.connect(link.tern.node_id);
        link.tern.input(Input::PeerReconnected);
        link.exchange();
        link.update_fee(6_000);
        link.exchange();
        link.assert_agree(6_000);
    }
}

/// LDK pays Tern over the channel: Tern, which takes no HTLCs yet, answers the
/// `update_add_htlc` with a warning and a disconnect and stores nothing; LDK retransmits it on
/// every reconnection, and the loop never makes LDK close the channel.
#[test]
fn ldk_htlc_retransmissions_loop_without_a_force_close_or_a_stored_change() {
    use lightning::ln::channelmanager::{PaymentId, RecipientOnionFields};
    use lightning::routing::router::{Path, Route, RouteHop};
    use lightning::types::features::{ChannelFeatures, NodeFeatures};
    use lightning::types::payment::{PaymentHash, PaymentSecret};

    let mut link = Link::open(false);
    let details = link.ldk.manager.list_channels();
    let scid = details[0].get_outbound_payment_scid().expect("scid");
    let route = Route {
        paths: vec![Path {
            hops: vec![RouteHop {
                pubkey: link.tern.node_id,
                node_features: NodeFeatures::empty(),
                short_channel_id: scid,
                channel_features: ChannelFeatures::empty(),
                fee_msat: 50_000,
                cltv_expiry_delta: 40,
                maybe_announced_channel: false,
            }],
            blinded_tail: None,
        }],
        route_params: None,
    };
    link.ldk
        .manager
        .send_payment_with_route(
            route,
            PaymentHash([9; 32]),
            RecipientOnionFields::secret_only(PaymentSecret([8; 32])),
            PaymentId([7; 32]),
        )
        .expect("LDK sends");
    let stored = link.tern.stored.clone();
    let mut warnings = 0;
    for round in 0..3 {
        let msgs = link.ldk.outbox();
        assert!(
            msgs.iter().any(|m| matches!(m, Message::UpdateAddHtlc(_))),
            "round {round}: LDK (re)sends its HTLC: {msgs:?}"
        );
        for m in msgs {
            let actions = link.tern.input(Input::Message(m));
            if actions
                .iter()
                .any(|a| matches!(a, Action::Send(Message::Warning(_))))
            {
                warnings += 1;
                assert!(actions
                    .iter()
                    .any(|a| matches!(a, Action::Disconnect { .. })));
                break;
            }
        }
        assert_eq!(link.tern.stored, stored, "round {round}: nothing stored");
        flush(&mut link.tern, &link.ldk);
        // The connection goes; both reconnect and reestablish.
        link.ldk.manager.peer_disconnected(link.tern.node_id);
        link.tern.input(Input::PeerDisconnected);
        link.ldk.connect(link.tern.node_id);
        link.tern.input(Input::PeerReconnected);
        let theirs = link.ldk.outbox();
        let reestablish: Vec<_> = theirs
            .iter()
            .filter(|m| matches!(m, Message::ChannelReestablish(_)))
            .cloned()
            .collect();
        assert_eq!(reestablish.len(), 1, "{theirs:?}");
        flush(&mut link.tern, &link.ldk);
        link.tern.input(Input::Message(reestablish[0].clone()));
        flush(&mut link.tern, &link.ldk);
        let details = link.ldk.manager.list_channels();
        assert_eq!(details.len(), 1, "LDK keeps the channel");
        assert_eq!(link.tern.state(), ChannelState::Ready);
        // What LDK sends after the reestablish is the next round's retransmission.
        let again = link.ldk.outbox();
        for m in again {
            if matches!(m, Message::UpdateAddHtlc(_)) {
                link.tern.input(Input::Message(m));
                warnings += 1;
                break;
            }
        }
        let _ = link.tern.outbox.drain(..);
        link.ldk.manager.peer_disconnected(link.tern.node_id);
        link.tern.input(Input::PeerDisconnected);
        link.ldk.connect(link.tern.node_id);
        link.tern.input(Input::PeerReconnected);
        let theirs = link.ldk.outbox();
        flush(&mut link.tern, &link.ldk);
        for m in theirs {
            link.tern.input(Input::Message(m));
        }
        flush(&mut link.tern, &link.ldk);
        assert_eq!(link.tern.stored, stored, "round {round}: nothing stored");
    }
    assert!(warnings >= 3, "{warnings}");
    let closed = link
        .ldk
        .events()
        .into_iter()
        .any(|e| matches!(e, Event::ChannelClosed { .. }));
    assert!(!closed, "LDK never closed the channel");
    assert!(link.ldk.broadcasts.0.lock().expect("lock").len() <= 1);
}

#[test]
fn update_fee_on_anchor_channels_both_ways() {
    for tern_funds in [true, false] {
        // LDK refuses a feerate below its own estimate (2,500 here) as fundee: "Peer's
        // feerate much too low".
        let mut link = Link::open_typed(tern_funds, true);
        link.update_fee(5_000);
        link.exchange();
        link.assert_agree(5_000);
        link.update_fee(2_500);
        link.exchange();
        link.reconnect();
        link.assert_agree(2_500);
        assert_eq!(link.tern.channel().commitment_number(), 2);
    }
}

/// LDK, as fundee, force-closes a channel whose feerate stays below the lowest of its floor
/// estimates over the past 144 blocks (`check_for_stale_feerate`), whether Tern is connected or
/// not. Its estimates rise from 2 500 to 6 000 sat/kw: a Tern funder that feeds the fee policy
/// (`Channel::wanted_feerate`) on each block never trips it; one that does not, does (which
/// shows the check can fire here), both with and without anchors.
#[test]
fn ldk_stale_feerate_check_never_fires_against_a_tern_funder_following_the_policy() {
    use crate::channel::FeeEstimates;
    use lightning::events::ClosureReason;

    for anchors in [false, true] {
        for follow in [true, false] {
            let mut link = Link::open_typed(true, anchors);
            link.ldk.fees.0.store(6_000, Ordering::SeqCst);
            let ours = FeeEstimates {
                commitment_per_kw: 6_000,
                in_144_blocks_per_kw: 6_000,
                in_1008_blocks_per_kw: 6_000,
            };
            let mut closed = None;
            for _ in 0..150 {
                link.height += 1;
                let height = link.height;
                link.ldk.tip(height);
                link.tern.input(Input::NewBlock { height });
                let wanted = link.tern.channel().wanted_feerate(&ours);
                if let (true, Some(f), false) =
                    (follow, wanted, link.tern.channel().update_pending())
                {
                    link.update_fee(f);
                }
                // LDK's error for the close is expected in the control case.
                let to_tern = link.ldk.messages(true);
                for m in to_tern {
                    link.tern.input(Input::Message(m));
                }
                link.exchange();
                for e in link.ldk.events() {
                    if let Event::ChannelClosed { reason, .. } = e {
                        closed = Some(reason);
                    }
                }
                if closed.is_some() {
                    break;
                }
            }
            if follow {
                assert!(
                    closed.is_none(),
                    "anchors {anchors}: LDK closed: {closed:?}"
                );
                link.assert_agree(6_000);
            } else {
                assert!(
                    matches!(closed, Some(ClosureReason::PeerFeerateTooLow { .. })),
                    "anchors {anchors}: {closed:?}"
                );
            }
        }
    }
}
