//! Commitment fee updates with ldk-node 0.7 on the devnet, both ways: the funder follows a rise
//! of the devnet's fee estimates with `update_fee`, and both sides end at the same commitment
//! feerate with the channel usable — also when Tern's connection is cut right after its
//! `commitment_signed`, when ldk-node restarts, and when Tern is killed right after its durable
//! points of an update. ldk-node, as funder, sends `update_fee` only on its 60 s timer after a
//! `sync_wallets` refreshed its estimates, so that case waits for it (the slowest test here).

use std::collections::BTreeMap;
use std::time::Duration;

use tern_core::node::Node;
use tern_devnet::Devnet;

mod common;

use common::drive::{drive_ready, ldk_opens_to_tern, tern_commitment, tern_opens, Seen};
use common::{
    finish, free_port, fund_ldk, fund_tern, start_ldk_with, start_tern, sync_ldk, Dirs, LdkNode,
    TernOpts,
};

/// Estimates after a fee rise: 60 sat/vB for the next blocks (15 000 sat/kw), floors well below.
fn risen(two_blocks: f64) -> BTreeMap<u16, f64> {
    BTreeMap::from([
        (1, two_blocks),
        (2, two_blocks),
        (3, two_blocks),
        (6, two_blocks),
        (12, two_blocks / 2.0),
        (25, two_blocks / 4.0),
        (144, 2.0),
        (504, 1.0),
        (1008, 1.0),
    ])
}

/// Waits until Tern's channel and ldk-node's agree on `feerate` with nothing in flight, mining
/// and syncing Tern now and then (a new tip hands the peer task the estimates again).
async fn until_feerate(devnet: &Devnet, tern: &Node, ldk: &LdkNode, feerate: u32, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut seen = Seen::default();
    let mut round = 0u32;
    loop {
        seen.poll(tern, ldk).await;
        let ours = tern.list_channels().await;
        let theirs = ldk.list_channels();
        let done = ours.len() == 1
            && ours[0].commitment_feerate_per_kw == feerate
            && !ours[0].update_pending
            && theirs.len() == 1
            && theirs[0].feerate_sat_per_1000_weight == feerate
            && theirs[0].is_usable;
        if done {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not at {feerate} sat/kw after {limit:?}: tern {ours:?} / ldk-node {theirs:?}"
        );
        if round.is_multiple_of(20) {
            devnet.mine(1);
            tern.sync(None).await.expect("tern sync");
            sync_ldk(ldk);
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A devnet, ldk-node (`anchors`: with its default anchor config and the reserve it needs),
/// and a Tern node that fetches the fee estimates at every sync, with a channel Tern funds
/// ready.
async fn tern_funds(
    dirs: &Dirs,
    anchors: bool,
    opts: TernOpts<'_>,
) -> (Devnet, LdkNode, u16, Node) {
    let devnet = Devnet::start().await.expect("devnet");
    let port = free_port();
    let ldk = start_ldk_with(&devnet, &dirs.ldk(), port, anchors);
    if anchors {
        fund_ldk(&devnet, &ldk, 100_000);
    }
    let tern = start_tern(&devnet, &dirs.tern(), opts).await;
    fund_tern(&devnet, &tern).await;
    sync_ldk(&ldk);
    tern_opens(&tern, &ldk, port).await.expect("open");
    let mut seen = Seen::default();
    drive_ready(&devnet, &tern, &ldk, &mut seen).await;
    assert_eq!(tern.list_channels().await[0].anchors, anchors);
    (devnet, ldk, port, tern)
}

async fn tern_funder_follows_a_fee_rise(test: &str, anchors: bool) {
    let dirs = Dirs::new(test);
    // The first commitment_signed Tern sends is cut right after it leaves.
    let opts = TernOpts {
        fault: Some("+commitment_signed"),
        fees_every_sync: true,
        ..TernOpts::default()
    };
    let (devnet, ldk, port, tern) = tern_funds(&dirs, anchors, opts).await;
    devnet.set_fee_estimates(risen(60.0));
    until_feerate(&devnet, &tern, &ldk, 15_000, Duration::from_secs(60)).await;
    assert!(tern.list_channels().await[0].commitment_number >= 1);

    // ldk-node restarts; the channel stays, and the next rise goes through too.
    ldk.stop().expect("ldk-node stops");
    drop(ldk);
    // Tern keeps the peer and redials it.
    let ldk = start_ldk_with(&devnet, &dirs.ldk(), port, anchors);
    devnet.set_fee_estimates(risen(80.0));
    until_feerate(&devnet, &tern, &ldk, 20_000, Duration::from_secs(60)).await;
    let number = tern.list_channels().await[0].commitment_number;
    assert!(number >= 2, "{number}");
    // Tern's latest commitment, signed by ldk-node after the updates, is valid on chain.
    tern.stop().await;
    let commitment = tern_commitment(&dirs.tern());
    devnet
        .broadcast(&commitment)
        .expect("the devnet accepts Tern's latest commitment");
    devnet.mine(1);
    assert!(matches!(
        devnet.tx_state(&commitment.compute_txid()),
        tern_devnet::TxState::Confirmed { .. }
    ));
    ldk.stop().expect("ldk-node stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_funder_follows_a_fee_rise_with_ldk_node() {
    tern_funder_follows_a_fee_rise("fees-static", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_funder_follows_a_fee_rise_on_an_anchor_channel_with_ldk_node() {
    tern_funder_follows_a_fee_rise("fees-anchors", true).await;
}

/// Tern, the funder, is killed right after `action` of its update; a new Tern node on the same
/// data dir finishes the update with ldk-node.
async fn tern_killed_during_an_update(test: &str, action: &str) {
    let dirs = Dirs::new(test);
    let opts = TernOpts {
        fees_every_sync: true,
        ..TernOpts::default()
    };
    let (devnet, ldk, _port, tern) = tern_funds(&dirs, false, opts).await;
    // Settle the open's own update first: the first commitment takes the cache's fallback
    // (2 500 sat/kw), the devnet's default estimates say 5 000.
    until_feerate(&devnet, &tern, &ldk, 5_000, Duration::from_secs(60)).await;
    tern.stop().await;
    drop(tern);
    let armed = TernOpts {
        fees_every_sync: true,
        halt_after: Some(action),
        ..TernOpts::default()
    };
    let tern = start_tern(&devnet, &dirs.tern(), armed).await;
    devnet.set_fee_estimates(risen(60.0));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut round = 0u32;
    while !tern.is_stopped() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{action} never happened"
        );
        if round.is_multiple_of(20) {
            devnet.mine(1);
            let _ = tern.sync(None).await;
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(tern);
    let tern = start_tern(&devnet, &dirs.tern(), opts).await;
    until_feerate(&devnet, &tern, &ldk, 15_000, Duration::from_secs(60)).await;
    finish(tern, ldk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_killed_after_persisting_its_update_then_ldk_node_agrees() {
    tern_killed_during_an_update("fees-kill-persist", "persist").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_killed_after_persisting_ldk_nodes_revocation_then_ldk_node_agrees() {
    tern_killed_during_an_update("fees-kill-persist2", "persist*2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_killed_after_persisting_ldk_nodes_signature_then_ldk_node_agrees() {
    tern_killed_during_an_update("fees-kill-persist3", "persist*3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_killed_after_sending_commitment_signed_then_ldk_node_agrees() {
    tern_killed_during_an_update("fees-kill-cs", "send:commitment_signed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_killed_after_sending_revoke_and_ack_then_ldk_node_agrees() {
    tern_killed_during_an_update("fees-kill-raa", "send:revoke_and_ack").await;
}

/// ldk-node funds (`anchors`: an anchor channel); after the estimates rise and its
/// `sync_wallets`, its 60 s timer sends `update_fee`: Tern accepts and signs it back.
async fn ldk_node_funder_updates_its_fee_to_tern(test: &str, anchors: bool) {
    let dirs = Dirs::new(test);
    let (devnet, ldk, tern, mut seen) = ldk_opens_to_tern(&dirs, anchors).await;
    assert_eq!(tern.list_channels().await[0].anchors, anchors);
    let before = ldk.list_channels()[0].feerate_sat_per_1000_weight;
    // LDK's anchor commitments follow its long-term (1008-block) estimate: raise them all.
    let estimates = if anchors {
        risen(60.0).into_keys().map(|k| (k, 20.0)).collect()
    } else {
        risen(60.0)
    };
    devnet.set_fee_estimates(estimates);
    sync_ldk(&ldk);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
    loop {
        seen.poll(&tern, &ldk).await;
        let theirs = ldk.list_channels()[0].feerate_sat_per_1000_weight;
        let ours = &tern.list_channels().await[0];
        if theirs != before && theirs == ours.commitment_feerate_per_kw && !ours.update_pending {
            assert!(ours.commitment_number >= 1);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ldk-node never updated its fee from {before}: {:?} / {ours:?}",
            ldk.list_channels()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    finish(tern, ldk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ldk_node_funder_updates_its_fee_to_tern_static_remotekey() {
    ldk_node_funder_updates_its_fee_to_tern("fees-ldk-funds", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ldk_node_funder_updates_its_fee_to_tern_on_an_anchor_channel() {
    ldk_node_funder_updates_its_fee_to_tern("fees-ldk-funds-anchors", true).await;
}
