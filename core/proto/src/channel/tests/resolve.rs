//! On-chain resolution (`resolve.rs`): force closes, the peer's commitments (current, revoked,
//! from our future), unknown spends, sweeps at their exact heights, bumps, reorgs, `Closed`
//! once, in both roles. Every step goes through the harness (durability checker, record round
//! trip and a twin rebuilt from the record acting identically); restarts are checked to
//! re-derive watches and rebroadcasts only (never an event). Reorgs, cooperative closes,
//! uneconomical outputs and the checker's closing rules are in `resolve_more.rs`.

use bitcoin::hashes::Hash;
use bitcoin::{Amount, ScriptBuf, Transaction, TxOut, WPubkeyHash};

use super::harness::{kinds, Node, Pair};
use crate::channel::{
    Action, BroadcastKind, ChannelEvent, ChannelState, ClaimStatus, CloseKind, ClosingStatus,
    FeeEstimates, Input,
};
use crate::wire::{ErrorMessage, Message};

pub(super) fn wallet_script(n: u8) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([n; 20]))
}

pub(super) fn fees(commitment: u32, slow: u32) -> FeeEstimates {
    FeeEstimates {
        commitment_per_kw: commitment,
        in_144_blocks_per_kw: slow,
        in_1008_blocks_per_kw: 253,
    }
}

pub(super) fn node(pair: &mut Pair, funder: bool) -> &mut Node {
    if funder {
        &mut pair.a
    } else {
        &mut pair.b
    }
}

/// The transactions of the given kind in an action list.
pub(super) fn broadcasts(actions: &[Action], kind: BroadcastKind) -> Vec<Transaction> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast { tx, kind: k } if *k == kind => Some(tx.clone()),
            _ => None,
        })
        .collect()
}

/// A restart from the last record re-derives only watches and rebroadcasts: no commit, no
/// event, ever.
pub(super) fn check_restart(node: &Node) {
    let mut twin = node.clone();
    let actions = twin.restart();
    assert!(
        actions
            .iter()
            .all(|a| matches!(a, Action::Watch(_) | Action::Broadcast { .. })),
        "{:?}",
        kinds(&actions)
    );
    assert_eq!(
        twin.channel(),
        node.channel(),
        "the record holds everything"
    );
}

/// Mines one block, telling both sides; returns the actions of `funder`'s side.
pub(super) fn block(pair: &mut Pair, funder: bool) -> Vec<Action> {
    pair.mine(1);
    node(pair, funder).history.last().cloned().expect("acted")
}

/// Reports a funding spend to both sides.
pub(super) fn spent(
    pair: &mut Pair,
    tx: &Transaction,
    height: Option<u32>,
) -> (Vec<Action>, Vec<Action>) {
    let input = Input::FundingSpent {
        spending_tx: tx.clone(),
        confirmation_height: height,
    };
    (pair.a.input(input.clone()), pair.b.input(input))
}

#[test]
fn our_force_close_sweeps_to_local_at_exactly_the_csv_then_closes_once() {
    for funder in [true, false] {
        let mut pair = Pair::open_to_ready();
        node(&mut pair, funder).destination = wallet_script(1);
        node(&mut pair, !funder).destination = wallet_script(2);
        let us = node(&mut pair, funder);
        let actions = us.input(Input::ForceClose);
        assert_eq!(
            kinds(&actions),
            [
                "Persist",
                "Emit(ChannelClosing)",
                "BroadcastCommitment",
                "WatchFunding",
                "WatchOutput",
                "Send(error)"
            ],
            "funder {funder}"
        );
        assert_eq!(us.state(), ChannelState::Closing);
        assert!(!us.channel().uses_connection());
        let commitment = broadcasts(&actions, BroadcastKind::Commitment).remove(0);
        check_restart(us);
        // A restart before it confirms rebroadcasts it.
        let mut twin = us.clone();
        assert_eq!(
            kinds(&twin.restart()),
            ["BroadcastCommitment", "WatchFunding", "WatchOutput"]
        );
        // Unconfirmed: rebroadcast on every block; the peer's error and a reconnection never
        // add a broadcast.
        let on_block = block(&mut pair, funder);
        assert_eq!(kinds(&on_block), ["BroadcastCommitment"]);
        let id = pair.a.channel().channel_id().expect("id");
        let us = node(&mut pair, funder);
        assert!(us
            .input(Input::Message(Message::Error(ErrorMessage::new(id, "bye"))))
            .is_empty());
        assert_eq!(kinds(&us.input(Input::PeerReconnected)), ["Send(error)"]);
        // Mined in the next block, reported to both.
        let h = pair.height + 1;
        pair.mine(1);
        let (a, b) = spent(&mut pair, &commitment, Some(h));
        let (ours, theirs) = if funder { (a, b) } else { (b, a) };
        assert_eq!(kinds(&ours), ["Persist"]);
        // The peer sees our commitment: RemoteForce, its to_remote swept at once.
        assert_eq!(
            kinds(&theirs),
            [
                "Persist",
                "Emit(ChannelFailed)",
                "Emit(ChannelClosing)",
                "BroadcastSweep",
                "WatchOutput",
                "WatchFunding",
                "WatchOutput"
            ]
        );
        assert_eq!(
            node(&mut pair, !funder).channel().close_kind(),
            Some(CloseKind::RemoteForce)
        );
        let us = node(&mut pair, funder);
        let csv = u32::from(us.channel().their_params().expect("theirs").to_self_delay);
        assert_eq!(
            us.channel().closing_status(h),
            Some(ClosingStatus::OnChain {
                kind: CloseKind::LocalForce,
                confirmed_at: Some(h),
                done_at: None,
            })
        );
        let to_local_amount = us.channel().claimable(h)[0].amount_sat;
        assert_eq!(
            us.channel().claimable(h)[0].status,
            ClaimStatus::Timelocked { height: h + csv }
        );
        // Nothing until tip h + csv - 1 (the sweep is then valid in the next block): not one
        // block earlier.
        while pair.height < h + csv - 2 {
            let actions = block(&mut pair, funder);
            assert!(
                actions.is_empty(),
                "at {}: {:?}",
                pair.height,
                kinds(&actions)
            );
        }
        check_restart(node(&mut pair, funder));
        let actions = block(&mut pair, funder);
        assert_eq!(pair.height, h + csv - 1);
        assert_eq!(
            kinds(&actions),
            ["Persist", "BroadcastSweep", "WatchOutput"]
        );
        let sweep = broadcasts(&actions, BroadcastKind::Sweep).remove(0);
        assert_eq!(sweep.input[0].sequence.0, csv);
        assert_eq!(sweep.output[0].script_pubkey, wallet_script(1));
        let outpoint = sweep.input[0].previous_output;
        assert_eq!(outpoint.txid, commitment.compute_txid());
        check_restart(node(&mut pair, funder));
        // Unconfirmed: rebroadcast (same feerate, nothing persisted).
        assert_eq!(kinds(&block(&mut pair, funder)), ["BroadcastSweep"]);
        // Confirmed at h2; 6 deep at h2 + 5: Closed with what came back.
        let h2 = pair.height + 1;
        pair.mine(1);
        let us = node(&mut pair, funder);
        let actions = us.input(Input::OutputSpent {
            outpoint,
            spending_tx: sweep.clone(),
            confirmation_height: Some(h2),
        });
        assert_eq!(kinds(&actions), ["Persist"]);
        assert!(
            us.channel().claimable(h2)[0].status
                == ClaimStatus::Sweeping {
                    confirmed_at: Some(h2)
                }
        );
        while pair.height < h2 + 4 {
            assert!(block(&mut pair, funder).is_empty());
        }
        let actions = block(&mut pair, funder);
        assert_eq!(kinds(&actions), ["Persist", "Emit(ChannelClosed)"]);
        let tip = pair.height;
        let us = node(&mut pair, funder);
        assert_eq!(us.state(), ChannelState::Closed);
        let claimed = sweep.output[0].value.to_sat();
        assert!(claimed < to_local_amount && claimed > to_local_amount - 2_000);
        let Some(ChannelEvent::ChannelClosed {
            kind,
            claimed_sat,
            closing_txid,
            ..
        }) = us.events.last()
        else {
            panic!("closed");
        };
        assert_eq!(
            (*kind, *claimed_sat, *closing_txid),
            (CloseKind::LocalForce, claimed, commitment.compute_txid())
        );
        assert!(us.channel().claimable(tip).is_empty());
        assert_eq!(
            us.channel().closing_status(tip),
            Some(ClosingStatus::Closed {
                kind: CloseKind::LocalForce
            })
        );
        assert_eq!(us.channel().irrevocably_resolved_at(), Some(h2 + 99));
        // Once: later blocks and restarts emit nothing.
        let events = us.events.len();
        check_restart(us);
        us.restart();
        pair.mine(3);
        let us = node(&mut pair, funder);
        assert_eq!(us.events.len(), events);
        assert_eq!(
            us.events
                .iter()
                .filter(|e| matches!(e, ChannelEvent::ChannelClosing { .. }))
                .count(),
            1
        );
    }
}

#[test]
fn the_peers_revoked_commitment_is_punished_at_once() {
    for funder in [true, false] {
        let mut pair = Pair::open_to_ready();
        // The peer's commitment 0, signed before an update_fee revokes it.
        let old = {
            let peer = node(&mut pair, !funder);
            peer.channel()
                .signed_our_commitment(&peer.ctx())
                .expect("commitment 0")
        };
        pair.a.input(Input::SetFeerate {
            feerate_per_kw: 5_000,
        });
        pair.run();
        assert_eq!(pair.a.channel().commitment_number(), 1);
        let us = node(&mut pair, funder);
        us.destination = wallet_script(7);
        us.estimates = fees(3_000, 1_000);
        let actions = us.input(Input::FundingSpent {
            spending_tx: old.clone(),
            confirmation_height: None,
        });
        // Both outputs at once, in the mempool already: the penalty and our to_remote.
        assert_eq!(
            kinds(&actions),
            [
                "Persist",
                "Emit(ChannelFailed)",
                "Emit(ChannelClosing)",
                "BroadcastSweep",
                "WatchOutput",
                "BroadcastSweep",
                "WatchOutput",
                "WatchFunding",
                "WatchOutput",
                "WatchOutput"
            ],
            "funder {funder}"
        );
        assert_eq!(us.channel().close_kind(), Some(CloseKind::Revoked));
        let sweeps = broadcasts(&actions, BroadcastKind::Sweep);
        let their_delay = us.channel().our_params().to_self_delay;
        let penalty = sweeps
            .iter()
            .find(|s| s.input[0].witness.len() == 3)
            .expect("penalty");
        // `<sig> 1 <script>`: the revocation branch, no CSV.
        assert_eq!(penalty.input[0].witness.nth(1), Some(&[1u8][..]));
        assert_ne!(penalty.input[0].sequence.0, u32::from(their_delay));
        // At the fast estimate: fee = 3 000 sat/kw of its weight (within the signature's
        // 2 weight units).
        let value_in = old.output[penalty.input[0].previous_output.vout as usize].value;
        let fee = (value_in - penalty.output[0].value).to_sat();
        let weight = penalty.weight().to_wu();
        assert!(
            fee >= weight * 3 && fee <= (weight + 2) * 3,
            "fee {fee} weight {weight}"
        );
        check_restart(us);
        // A higher estimate bumps both (persisted first); a lower one never does.
        us.estimates = fees(6_000, 2_000);
        pair.mine(1);
        let us = node(&mut pair, funder);
        let step = us.history.last().cloned().expect("acted");
        assert_eq!(
            kinds(&step),
            [
                "Persist",
                "BroadcastSweep",
                "WatchOutput",
                "BroadcastSweep",
                "WatchOutput"
            ]
        );
        let bumped = broadcasts(&step, BroadcastKind::Sweep);
        for (new, old) in bumped.iter().zip(&sweeps) {
            assert_eq!(new.input[0].previous_output, old.input[0].previous_output);
            assert!(new.output[0].value < old.output[0].value);
        }
        us.estimates = fees(1_000, 300);
        pair.mine(1);
        let step = node(&mut pair, funder)
            .history
            .last()
            .cloned()
            .expect("acted");
        assert_eq!(kinds(&step), ["BroadcastSweep", "BroadcastSweep"]);
        assert_eq!(broadcasts(&step, BroadcastKind::Sweep), bumped);
    }
}

#[test]
fn an_unknown_spend_is_unknown_and_the_to_remote_of_a_future_commitment_is_still_ours() {
    let mut pair = Pair::open_to_ready();
    let funding = pair.a.channel().funding().expect("funding").outpoint;
    let mut unknown = pair
        .b
        .channel()
        .signed_our_commitment(&pair.b.ctx())
        .expect("commitment");
    unknown.lock_time = bitcoin::absolute::LockTime::ZERO;
    unknown.output = vec![TxOut {
        value: Amount::from_sat(990_000),
        script_pubkey: wallet_script(9),
    }];
    assert_eq!(unknown.input[0].previous_output, funding);
    let actions = pair.a.input(Input::FundingSpent {
        spending_tx: unknown,
        confirmation_height: Some(pair.height),
    });
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "Emit(ChannelFailed)",
            "Emit(ChannelClosing)",
            "WatchFunding"
        ]
    );
    assert_eq!(pair.a.channel().close_kind(), Some(CloseKind::Unknown));
    // Nothing of it is ours: Closed once 6 deep.
    pair.mine(4);
    assert_eq!(pair.a.state(), ChannelState::Closing);
    pair.mine(1);
    assert_eq!(pair.a.state(), ChannelState::Closed);
    assert!(matches!(
        pair.a.events.last(),
        Some(ChannelEvent::ChannelClosed {
            kind: CloseKind::Unknown,
            claimed_sat: 0,
            ..
        })
    ));
}

#[test]
fn a_node_that_fell_behind_waits_and_takes_its_to_remote_from_the_future_commitment() {
    let mut pair = Pair::open_to_ready();
    let stale = pair.a.stored.clone().expect("stored");
    pair.a.input(Input::SetFeerate {
        feerate_per_kw: 5_000,
    });
    pair.run();
    pair.a.stored = Some(stale);
    pair.a.restart();
    pair.a.broadcasts.clear();
    pair.b.destination = wallet_script(3);
    pair.a.destination = wallet_script(4);
    for n in [&mut pair.a, &mut pair.b] {
        n.outbox.clear();
        n.input(Input::PeerDisconnected);
        n.input(Input::PeerReconnected);
    }
    pair.run();
    assert_eq!(pair.a.state(), ChannelState::Failed);
    // After a restart it still watches the funding, for the peer's commitment.
    let mut twin = pair.a.clone();
    assert_eq!(kinds(&twin.restart()), ["WatchFunding"]);
    // The user's force close of a channel that fell behind broadcasts nothing.
    assert!(pair.a.input(Input::ForceClose).is_empty());
    assert!(pair.a.broadcasts.is_empty());
    // The peer closed with its latest commitment (number 1): from our future.
    assert_eq!(pair.b.state(), ChannelState::Closing);
    let theirs = pair
        .b
        .broadcasts
        .last()
        .cloned()
        .expect("peer's commitment");
    let actions = pair.a.input(Input::FundingSpent {
        spending_tx: theirs,
        confirmation_height: None,
    });
    assert_eq!(
        kinds(&actions),
        [
            "Persist",
            "Emit(ChannelClosing)",
            "BroadcastSweep",
            "WatchOutput",
            "WatchFunding",
            "WatchOutput"
        ]
    );
    assert_eq!(pair.a.channel().close_kind(), Some(CloseKind::RemoteFuture));
}

#[test]
fn anchors_to_remote_waits_one_confirmation() {
    let mut pair = Pair::open_anchors_to_ready();
    assert!(pair.a.channel().channel_type().anchors);
    pair.a.destination = wallet_script(5);
    let actions = pair.b.input(Input::ForceClose);
    let commitment = broadcasts(&actions, BroadcastKind::Commitment).remove(0);
    // Our to_local (CSV) is tracked on an anchor commitment too.
    assert_eq!(pair.b.channel().claimable(pair.height).len(), 1);
    // In the mempool: the 1-CSV to_remote waits.
    let (a, _) = spent(&mut pair, &commitment, None);
    assert_eq!(
        kinds(&a),
        [
            "Persist",
            "Emit(ChannelFailed)",
            "Emit(ChannelClosing)",
            "WatchFunding",
            "WatchOutput"
        ]
    );
    let h = pair.height + 1;
    pair.mine(1);
    // Confirmed at h: valid in block h + 1, so broadcast at tip h.
    let (a, _) = spent(&mut pair, &commitment, Some(h));
    assert_eq!(kinds(&a), ["Persist", "BroadcastSweep", "WatchOutput"]);
    let sweep = broadcasts(&a, BroadcastKind::Sweep).remove(0);
    assert_eq!(sweep.input[0].sequence.0, 1);
}
