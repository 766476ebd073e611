//! Our commitment on chain (`resolve_cpfp.rs`, the commitment paths of `resolve.rs` and
//! `resolve_chain.rs`): the CPFP decision of an anchor force close (asked after the
//! commitment's broadcast, stored before the child's broadcast, re-asked as an RBF
//! replacement when the estimate rises, never once the commitment is mined, never without
//! anchors), the peer's commitment vanishing (ours goes out instead), and a force close of a
//! channel already closing (rebroadcast; nothing over an agreed cooperative close). Every step
//! goes through the harness (durability checker, record round trip, twin from the record).

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

use super::harness::{kinds, Pair};
use super::resolve::{broadcasts, check_restart, node, spent, wallet_script};
use crate::bolt3::anchor_script_pubkey;
use crate::channel::{
    check_action_order, Action, BroadcastKind, ChannelEvent, ChannelState, CloseKind, CpfpRequest,
    Input, OrderViolation, RBF_STEP_PER_KW,
};

/// An anchor channel in Ready between `pair.a` (funder) and `pair.b`.
fn anchors_ready() -> Pair {
    let pair = Pair::open_anchors_to_ready();
    assert_eq!(pair.a.state(), ChannelState::Ready);
    assert!(pair.a.channel().channel_type().anchors);
    // 2 500 sat/kw both ways (the harness's open).
    assert_eq!(pair.a.channel().commitment_feerate_per_kw(), 2_500);
    pair
}

fn requests(actions: &[Action]) -> Vec<CpfpRequest> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::BumpCommitment(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// A child the way a wallet would build it: our anchor and one (fake) wallet coin `n`.
fn child_of(request: &CpfpRequest, n: u8) -> Transaction {
    let input = |previous_output| TxIn {
        previous_output,
        script_sig: ScriptBuf::new(),
        sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
        witness: Witness::from_slice(&[[n; 72].as_slice()]),
    };
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![
            input(request.anchor.outpoint),
            input(OutPoint {
                txid: bitcoin::Txid::from_byte_array([n; 32]),
                vout: 0,
            }),
        ],
        output: vec![TxOut {
            value: Amount::from_sat(90_000),
            script_pubkey: wallet_script(n),
        }],
    }
}

fn built(request: &CpfpRequest, child: &Transaction) -> Input {
    Input::CpfpBuilt {
        child: child.clone(),
        feerate_per_kw: request.feerate_per_kw,
        height: request.height,
    }
}

#[test]
fn an_anchor_commitment_below_the_estimate_is_cpfp_d_stored_first_and_rbf_bumped_until_mined() {
    for funder in [true, false] {
        let mut pair = anchors_ready();
        node(&mut pair, funder).estimates.commitment_per_kw = 10_000;
        let us = node(&mut pair, funder);
        let actions = us.input(Input::ForceClose);
        // The child is asked for after the commitment is stored and broadcast, before the
        // error.
        assert_eq!(
            kinds(&actions),
            [
                "Persist",
                "Emit(ChannelClosing)",
                "BroadcastCommitment",
                "WatchFunding",
                "WatchOutput",
                "BumpCommitment",
                "Send(error)"
            ],
            "funder {funder}"
        );
        let commitment = broadcasts(&actions, BroadcastKind::Commitment).remove(0);
        let [request] = requests(&actions).try_into().expect("one request");
        assert_eq!(request.parent, commitment);
        assert_eq!(request.feerate_per_kw, 10_000);
        assert_eq!(request.replaces, None);
        assert_eq!(Some(request.channel_id), us.channel().channel_id());
        // Our anchor (on our funding key), and the fee the commitment pays.
        let anchor_out = &commitment.output[request.anchor.outpoint.vout as usize];
        assert_eq!(request.anchor.outpoint.txid, commitment.compute_txid());
        assert_eq!(
            anchor_out.script_pubkey,
            anchor_script_pubkey(&request.anchor.funding_pubkey)
        );
        assert_eq!(anchor_out.value.to_sat(), 330);
        let outputs: Amount = commitment.output.iter().map(|o| o.value).sum();
        assert_eq!(request.parent_fee, us.channel().funding_amount() - outputs);
        assert!(us.channel().anchor_cpfp_child().is_none());

        // The wallet's child: stored, then the commitment and the child, in that order.
        let child = child_of(&request, 1);
        let actions = us.input(built(&request, &child));
        assert_eq!(
            kinds(&actions),
            ["Persist", "BroadcastCommitment", "BroadcastAnchorCpfp"]
        );
        assert_eq!(
            broadcasts(&actions, BroadcastKind::AnchorCpfp),
            std::slice::from_ref(&child)
        );
        assert_eq!(us.channel().anchor_cpfp_child(), Some(&child));
        assert_eq!(us.channel().anchor_cpfp_feerate(), Some(10_000));
        check_restart(us);
        // A restart rebroadcasts both, the child after its parent.
        let mut twin = us.clone();
        assert_eq!(
            kinds(&twin.restart()),
            [
                "BroadcastCommitment",
                "BroadcastAnchorCpfp",
                "WatchFunding",
                "WatchOutput"
            ]
        );
        // The same answer again (or a lower one) is not taken twice.
        assert!(us.input(built(&request, &child_of(&request, 9))).is_empty());

        // Next block, same estimate: both rebroadcast, no new child.
        let on_block = super::resolve::block(&mut pair, funder);
        assert_eq!(
            kinds(&on_block),
            ["BroadcastCommitment", "BroadcastAnchorCpfp"]
        );
        // The estimate rises a little: a replacement of the child, at least the RBF step up.
        node(&mut pair, funder).estimates.commitment_per_kw = 10_100;
        let on_block = super::resolve::block(&mut pair, funder);
        assert_eq!(
            kinds(&on_block),
            [
                "BroadcastCommitment",
                "BroadcastAnchorCpfp",
                "BumpCommitment"
            ]
        );
        let [bump] = requests(&on_block).try_into().expect("one request");
        assert_eq!(bump.feerate_per_kw, 10_000 + RBF_STEP_PER_KW);
        assert_eq!(bump.replaces.as_ref(), Some(&child));
        assert_eq!(bump.anchor, request.anchor);
        // Far up: the estimate itself.
        node(&mut pair, funder).estimates.commitment_per_kw = 20_000;
        let on_block = super::resolve::block(&mut pair, funder);
        let [bump] = requests(&on_block).try_into().expect("one request");
        assert_eq!(bump.feerate_per_kw, 20_000);
        let us = node(&mut pair, funder);
        let replacement = child_of(&bump, 2);
        let actions = us.input(built(&bump, &replacement));
        assert_eq!(
            kinds(&actions),
            ["Persist", "BroadcastCommitment", "BroadcastAnchorCpfp"]
        );
        assert_eq!(us.channel().anchor_cpfp_child(), Some(&replacement));
        // An older answer arriving late is not taken.
        assert!(us.input(built(&request, &child)).is_empty());
        // The estimate falls: never down.
        us.estimates.commitment_per_kw = 5_000;
        let on_block = super::resolve::block(&mut pair, funder);
        assert_eq!(
            kinds(&on_block),
            ["BroadcastCommitment", "BroadcastAnchorCpfp"]
        );

        // Mined (with its child): nothing more to rebroadcast or bump, even if fees soar.
        let h = pair.height + 1;
        pair.mine(1);
        let (a, b) = spent(&mut pair, &commitment, Some(h));
        let ours = if funder { a } else { b };
        assert_eq!(kinds(&ours), ["Persist"]);
        let us = node(&mut pair, funder);
        us.estimates.commitment_per_kw = 50_000;
        assert!(us.input(built(&bump, &child_of(&bump, 3))).is_empty());
        let on_block = super::resolve::block(&mut pair, funder);
        assert!(requests(&on_block).is_empty(), "{:?}", kinds(&on_block));
        assert!(broadcasts(&on_block, BroadcastKind::AnchorCpfp).is_empty());
        check_restart(node(&mut pair, funder));
    }
}

#[test]
fn no_cpfp_at_the_estimate_without_anchors_without_estimates_or_for_the_peers_commitment() {
    // At the estimate: nothing.
    let mut pair = anchors_ready();
    pair.a.estimates.commitment_per_kw = 2_500;
    let actions = pair.a.input(Input::ForceClose);
    assert!(requests(&actions).is_empty(), "{:?}", kinds(&actions));
    // The peer's commitment (RemoteForce): its anchor is not ours to bump here.
    pair.b.estimates.commitment_per_kw = 10_000;
    let commitment = broadcasts(&actions, BroadcastKind::Commitment).remove(0);
    let (_, b) = spent(&mut pair, &commitment, None);
    assert!(requests(&b).is_empty(), "{:?}", kinds(&b));
    let on_block = super::resolve::block(&mut pair, false);
    assert!(requests(&on_block).is_empty(), "{:?}", kinds(&on_block));

    // Without anchors the fee is fixed: no request however high the estimate.
    let mut pair = Pair::open_to_ready();
    assert!(!pair.a.channel().channel_type().anchors);
    pair.a.estimates.commitment_per_kw = 50_000;
    let actions = pair.a.input(Input::ForceClose);
    assert!(requests(&actions).is_empty(), "{:?}", kinds(&actions));
    let on_block = super::resolve::block(&mut pair, true);
    assert!(requests(&on_block).is_empty(), "{:?}", kinds(&on_block));
}

#[test]
fn a_child_that_does_not_spend_our_anchor_is_refused_and_the_checker_wants_the_child_stored() {
    let mut pair = anchors_ready();
    pair.a.estimates.commitment_per_kw = 10_000;
    let actions = pair.a.input(Input::ForceClose);
    let [request] = requests(&actions).try_into().expect("one request");
    let mut wrong = child_of(&request, 1);
    wrong.input[0].previous_output.vout ^= 1;
    assert!(pair.a.input(built(&request, &wrong)).is_empty());
    assert!(pair.a.channel().anchor_cpfp_child().is_none());
    // The child broadcast before the record holding it: refused by the checker.
    let before = pair.a.channel().to_record();
    let child = child_of(&request, 1);
    let mut channel = pair.a.channel().clone();
    let ctx = pair.a.ctx();
    let actions = channel.handle(built(&request, &child), &ctx);
    assert_eq!(
        kinds(&actions),
        ["Persist", "BroadcastCommitment", "BroadcastAnchorCpfp"]
    );
    check_action_order(&actions, Some(&before)).expect("in order");
    assert!(matches!(
        check_action_order(&actions[1..], Some(&before)),
        Err(OrderViolation::BroadcastBeforePersist {
            what: "cpfp child",
            ..
        })
    ));
}

/// Input::FundingUnspent after the peer's commitment was classified: the channel would be
/// stuck (nothing of ours spends the funding, and the peer gave the channel up), so our latest
/// commitment is stored as LocalForce, announced, then broadcast; in both roles.
#[test]
fn the_peers_vanished_commitment_is_answered_with_ours_stored_first() {
    for funder in [true, false] {
        let mut pair = anchors_ready();
        let them = node(&mut pair, !funder);
        let theirs =
            broadcasts(&them.input(Input::ForceClose), BroadcastKind::Commitment).remove(0);
        let (a, b) = spent(&mut pair, &theirs, None);
        let _ = if funder { b } else { a };
        let us = node(&mut pair, funder);
        assert_eq!(us.channel().close_kind(), Some(CloseKind::RemoteForce));
        let actions = us.input(Input::FundingUnspent);
        assert_eq!(
            kinds(&actions),
            [
                "Persist",
                "Emit(ChannelClosing)",
                "BroadcastCommitment",
                "WatchFunding",
                "WatchOutput"
            ],
            "funder {funder}"
        );
        assert_eq!(us.channel().close_kind(), Some(CloseKind::LocalForce));
        let ours = broadcasts(&actions, BroadcastKind::Commitment).remove(0);
        assert_ne!(ours.compute_txid(), theirs.compute_txid());
        assert_eq!(
            ours.input[0].previous_output,
            theirs.input[0].previous_output
        );
        assert!(matches!(
            us.events.last(),
            Some(ChannelEvent::ChannelClosing {
                kind: CloseKind::LocalForce,
                ..
            })
        ));
        check_restart(us);
        // Again: already ours, rebroadcast only on the next block (no second event).
        assert!(us.input(Input::FundingUnspent).is_empty());
        let on_block = super::resolve::block(&mut pair, funder);
        assert_eq!(kinds(&on_block), ["BroadcastCommitment"]);
        // Their commitment comes back and confirms: the chain wins.
        let h = pair.height + 1;
        pair.mine(1);
        let us = node(&mut pair, funder);
        us.input(Input::FundingSpent {
            spending_tx: theirs.clone(),
            confirmation_height: Some(h),
        });
        assert_eq!(us.channel().close_kind(), Some(CloseKind::RemoteForce));
    }
}

/// Input::ForceClose on a channel already closing: a force close already decided is
/// rebroadcast (nothing stored, no event); a cooperative close, agreed (Negotiating) or on
/// chain (Closing{Cooperative}), is never answered with our commitment.
#[test]
fn force_close_of_a_closing_channel_rebroadcasts_ours_and_never_covers_a_mutual_close() {
    let mut pair = anchors_ready();
    pair.a.estimates.commitment_per_kw = 10_000;
    let first = pair.a.input(Input::ForceClose);
    let commitment = broadcasts(&first, BroadcastKind::Commitment).remove(0);
    let [request] = requests(&first).try_into().expect("one request");
    let again = pair.a.input(Input::ForceClose);
    assert_eq!(kinds(&again), ["BroadcastCommitment", "BumpCommitment"]);
    assert_eq!(broadcasts(&again, BroadcastKind::Commitment), [commitment]);
    pair.a.input(built(&request, &child_of(&request, 1)));
    let again = pair.a.input(Input::ForceClose);
    assert_eq!(
        kinds(&again),
        ["BroadcastCommitment", "BroadcastAnchorCpfp"]
    );
    let events = pair.a.events.len();
    pair.a.input(Input::ForceClose);
    assert_eq!(pair.a.events.len(), events, "no event");

    for initiator_is_funder in [true, false] {
        let mut pair = Pair::open_to_ready();
        node(&mut pair, initiator_is_funder).input(Input::Close { script: None });
        pair.run();
        let tx = pair
            .a
            .channel()
            .agreed_closing_tx()
            .cloned()
            .expect("agreed");
        for n in [&mut pair.a, &mut pair.b] {
            assert_eq!(n.state(), ChannelState::Negotiating);
            n.broadcasts.clear();
            assert!(n.input(Input::ForceClose).is_empty());
            assert!(n.broadcasts.is_empty());
        }
        let h = pair.height + 1;
        pair.mine(1);
        spent(&mut pair, &tx, Some(h));
        for n in [&mut pair.a, &mut pair.b] {
            assert!(matches!(
                n.channel().close_kind(),
                Some(CloseKind::Cooperative { .. })
            ));
            assert!(n.input(Input::ForceClose).is_empty());
        }
    }
}
