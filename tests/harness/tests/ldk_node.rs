//! Interop with LDK's reference node, ldk-node 0.7, on the in-process devnet: channel opens in
//! both directions, a Tern funder killed mid-open, an ldk-node restart while the channel awaits
//! lock-in, and connections dropped around `channel_ready`. Every case ends with the channel
//! ready on both sides (ldk-node's `ChannelReady` event, Tern's `ChannelReady` event and its
//! channel in state `Ready`).
//!
//! Commitment types: the tests run ldk-node with its `anchor_channels_config` off (it then
//! offers no `option_anchors`, so the channel is `static_remote_key` and ldk-node needs no
//! on-chain reserve), except the `anchor_*` ones, which keep ldk-node's default (anchors) and
//! fund its wallet with the 25,000 sat it requires per inbound anchor channel.
//!
//! ldk-node runs on the test's own tokio runtime; its blocking calls (`start`, `sync_wallets`,
//! `stop`, ...) use `block_in_place`, hence the multi-threaded flavour. Each test has its own
//! devnet and data dirs, so they run in parallel. ldk-node's log is kept in the test's data dir
//! (`std::env::temp_dir()/tern-ldk-<test>-<pid>/ldk/ldk_node.log`) when a test fails.

use std::time::Duration;

use bitcoin::Amount;

use tern_devnet::Devnet;

mod common;

use common::drive::{
    drive_ready, ldk_opens_to_tern, setup, tern_commitment, tern_opens, wait_pending, Seen,
    CHANNEL_SAT, TIMEOUT,
};
use common::{
    finish, free_port, fund_ldk, fund_tern, ldk_addr, start_ldk, start_ldk_with, start_tern,
    sync_ldk, Dirs, TernOpts,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_opens_to_ldk_node() {
    let dirs = Dirs::new("tern-opens");
    let (devnet, ldk, port, tern) = setup(&dirs, TernOpts::default()).await;
    tern_opens(&tern, &ldk, port).await.expect("open");
    let mut seen = Seen::default();
    drive_ready(&devnet, &tern, &ldk, &mut seen).await;
    let ch = &tern.list_channels().await[0];
    assert!(ch.is_outbound);
    assert_eq!(ch.balance_msat, CHANNEL_SAT * 1000);
    // ldk-node without anchors: a static_remotekey channel, no reserve held.
    assert!(!ch.anchors, "{ch:?}");
    assert_eq!(ldk.list_balances().total_anchor_channels_reserve_sats, 0);
    assert!(seen.tern_disconnects.is_empty(), "{seen:?}");
    finish(tern, ldk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ldk_node_opens_to_tern() {
    let dirs = Dirs::new("ldk-opens");
    let devnet = Devnet::start().await.expect("devnet");
    let ldk = start_ldk(&devnet, &dirs.ldk(), free_port());
    let tern = start_tern(
        &devnet,
        &dirs.tern(),
        TernOpts {
            listen: true,
            ..TernOpts::default()
        },
    )
    .await;
    let address = ldk.onchain_payment().new_address().expect("ldk address");
    devnet
        .faucet(&address, Amount::from_sat(1_000_000))
        .expect("faucet");
    devnet.mine(1);
    sync_ldk(&ldk);
    assert_eq!(
        ldk.list_balances().spendable_onchain_balance_sats,
        1_000_000,
        "ldk-node sees its coins"
    );
    let tern_addr = tern.listen_addr().expect("tern listens");
    ldk.open_channel(
        tern.node_id(),
        ldk_addr(tern_addr.port()),
        CHANNEL_SAT,
        None,
        None,
    )
    .expect("ldk-node opens");
    let mut seen = Seen::default();
    drive_ready(&devnet, &tern, &ldk, &mut seen).await;
    let ch = &tern.list_channels().await[0];
    assert!(!ch.is_outbound);
    assert_eq!(ch.balance_msat, 0);
    assert!(!ch.anchors, "{ch:?}");
    assert!(seen.tern_disconnects.is_empty(), "{seen:?}");
    finish(tern, ldk).await;
}

/// Tern, the funder, is killed (every task aborted, no clean shutdown) right after `action`,
/// between `funding_signed` and the funding's confirmation; a new Tern node on the same data
/// dir redials ldk-node and the channel becomes ready on both sides.
async fn tern_killed_mid_open(test: &str, action: &str) {
    let dirs = Dirs::new(test);
    let opts = TernOpts {
        halt_after: Some(action),
        ..TernOpts::default()
    };
    let (devnet, ldk, port, tern) = setup(&dirs, opts).await;
    // The open may or may not have returned before the kill.
    let _ = tern_opens(&tern, &ldk, port).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !tern.is_stopped() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "tern never reached {action}: {:?}",
            tern.list_channels().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ldk-node sent funding_signed: it has the channel, unconfirmed.
    let mut seen = Seen::default();
    while !seen.ldk_pending {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ldk-node never reported the channel pending: {:?}",
            ldk.list_channels()
        );
        seen.poll(&tern, &ldk).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ldk_channels = ldk.list_channels();
    assert!(
        !seen.ldk_ready && ldk_channels.len() == 1 && ldk_channels[0].confirmations == Some(0),
        "killed before confirmation: {ldk_channels:?}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let tern = start_tern(&devnet, &dirs.tern(), TernOpts::default()).await;
    drive_ready(&devnet, &tern, &ldk, &mut seen).await;
    let b = tern.list_balances().await.expect("balances");
    assert_eq!(b.locked.to_sat(), 0);
    let spent = 1_000_000 - b.confirmed.to_sat() - b.unconfirmed.to_sat();
    assert!(
        (CHANNEL_SAT..CHANNEL_SAT + 5_000).contains(&spent),
        "channel + fee, got {spent}"
    );
    assert!(seen.tern_disconnects.is_empty(), "{seen:?}");
    finish(tern, ldk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_funder_killed_after_persisting_funding_signed() {
    tern_killed_mid_open("killed-persist", "persist").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_funder_killed_after_broadcasting_the_funding() {
    tern_killed_mid_open("killed-broadcast", "broadcast").await;
}

/// ldk-node is stopped and a new one started on the same storage while the channel awaits
/// lock-in (funding confirmed once); Tern redials it on its own and the channel becomes ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ldk_node_restarts_while_awaiting_lock_in() {
    let dirs = Dirs::new("ldk-restarts");
    let (devnet, ldk, port, tern) = setup(&dirs, TernOpts::default()).await;
    tern_opens(&tern, &ldk, port).await.expect("open");
    let mut seen = Seen::default();
    wait_pending(&tern, &ldk, &mut seen).await;
    devnet.mine(1);
    tern.sync(None).await.expect("tern sync");
    sync_ldk(&ldk);
    seen.poll(&tern, &ldk).await;
    assert!(
        !seen.tern_ready && !seen.ldk_ready,
        "still awaiting lock-in: {seen:?}"
    );
    ldk.stop().expect("ldk-node stops");
    drop(ldk);
    let ldk = start_ldk(&devnet, &dirs.ldk(), port);
    assert_eq!(ldk.list_channels().len(), 1, "ldk-node kept the channel");
    drive_ready(&devnet, &tern, &ldk, &mut seen).await;
    assert_eq!(
        seen.tern_disconnects.len(),
        1,
        "tern saw ldk-node stop, and only that: {seen:?}"
    );
    finish(tern, ldk).await;
}

/// Tern, the funder, runs with the fault `rule` around `channel_ready`; after its automatic
/// reconnect, `channel_reestablish` (and `channel_ready` retransmission) make the channel
/// ready on both sides.
async fn channel_ready_fault(test: &str, rule: &str) {
    let dirs = Dirs::new(test);
    let opts = TernOpts {
        fault: Some(rule),
        ..TernOpts::default()
    };
    let (devnet, ldk, port, tern) = setup(&dirs, opts).await;
    tern_opens(&tern, &ldk, port).await.expect("open");
    let mut seen = Seen::default();
    drive_ready(&devnet, &tern, &ldk, &mut seen).await;
    assert_eq!(
        seen.tern_disconnects,
        ["fault injected"],
        "{rule}: the fault fired, and nothing else dropped the connection"
    );
    finish(tern, ldk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connection_drops_after_tern_sends_channel_ready() {
    channel_ready_fault("after-send-ready", "+channel_ready").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connection_drops_after_tern_receives_channel_ready() {
    channel_ready_fault("after-recv-ready", "<channel_ready").await;
}

/// ldk-node with anchors (its default) as fundee, its wallet funded for the 25,000 sat
/// reserve: Tern proposes an anchor channel, it becomes ready on both sides, and Tern's
/// commitment — both anchors, ldk-node's signature — is accepted on the devnet (script
/// validation through libbitcoinconsensus) and mined.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn anchor_channel_tern_opens_to_ldk_node_and_its_commitment_confirms() {
    let dirs = Dirs::new("anchors-tern-opens");
    let devnet = Devnet::start().await.expect("devnet");
    let port = free_port();
    let ldk = start_ldk_with(&devnet, &dirs.ldk(), port, true);
    let tern = start_tern(&devnet, &dirs.tern(), TernOpts::default()).await;
    fund_tern(&devnet, &tern).await;
    fund_ldk(&devnet, &ldk, 100_000);
    tern_opens(&tern, &ldk, port).await.expect("open");
    let mut seen = Seen::default();
    drive_ready(&devnet, &tern, &ldk, &mut seen).await;
    let ch = &tern.list_channels().await[0];
    assert!(ch.anchors, "{ch:?}");
    assert_eq!(
        ldk.list_balances().total_anchor_channels_reserve_sats,
        25_000,
        "ldk-node holds the reserve of one anchor channel"
    );
    tern.stop().await;
    let commitment = tern_commitment(&dirs.tern());
    // No push: to_local and its anchor only (BOLT 3: no to_remote_anchor without a
    // to_remote output or HTLCs).
    assert_eq!(commitment.output.len(), 2, "{commitment:?}");
    assert_eq!(
        commitment
            .output
            .iter()
            .filter(|o| o.value == Amount::from_sat(330))
            .count(),
        1
    );
    devnet
        .broadcast(&commitment)
        .expect("the devnet accepts Tern's anchor commitment");
    devnet.mine(1);
    assert!(matches!(
        devnet.tx_state(&commitment.compute_txid()),
        tern_devnet::TxState::Confirmed { .. }
    ));
    ldk.stop().expect("ldk-node stops");
}

/// ldk-node with anchors opens to Tern, which accepts the anchor channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn anchor_channel_ldk_node_opens_to_tern() {
    let dirs = Dirs::new("anchors-ldk-opens");
    let (_devnet, ldk, tern, seen) = ldk_opens_to_tern(&dirs, true).await;
    let ch = &tern.list_channels().await[0];
    assert!(!ch.is_outbound);
    assert!(ch.anchors, "{ch:?}");
    assert_eq!(
        ldk.list_balances().total_anchor_channels_reserve_sats,
        25_000
    );
    assert!(seen.tern_disconnects.is_empty(), "{seen:?}");
    finish(tern, ldk).await;
}
