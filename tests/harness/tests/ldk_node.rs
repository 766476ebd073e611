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
use ldk_node::Event as LdkEvent;
use tern_core::node::{Event, Node, OpenChannelParams};
use tern_core::proto::channel::ChannelState;
use tern_devnet::Devnet;

mod common;

use common::{
    finish, free_port, fund_ldk, fund_tern, ldk_addr, start_ldk, start_ldk_with, start_tern,
    sync_ldk, Dirs, LdkNode, TernOpts,
};

/// How long any phase may take before the test fails with the state of both sides.
const TIMEOUT: Duration = Duration::from_secs(90);
const CHANNEL_SAT: u64 = 200_000;

/// What both sides reported while an open was driven.
#[derive(Debug, Default)]
struct Seen {
    tern_pending: bool,
    tern_ready: bool,
    tern_disconnects: Vec<String>,
    ldk_pending: bool,
    ldk_ready: bool,
}

impl Seen {
    /// Handles every queued event of both nodes; fails the test on a failed or closed channel.
    /// A killed Tern (a test hook) is as dead as a killed process: only ldk-node is polled.
    async fn poll(&mut self, tern: &Node, ldk: &LdkNode) {
        while let Some((seq, e)) = if tern.is_stopped() {
            None
        } else {
            tern.next_event().await.expect("tern events")
        } {
            tern.event_handled(seq).await.expect("tern event handled");
            match e {
                Event::ChannelPending { .. } => self.tern_pending = true,
                Event::ChannelReady {
                    counterparty_node_id,
                    ..
                } => {
                    assert_eq!(counterparty_node_id, ldk.node_id());
                    self.tern_ready = true;
                }
                Event::PeerDisconnected { reason, .. } => self.tern_disconnects.push(reason),
                Event::ChannelOpenFailed { reason, .. } | Event::ChannelFailed { reason, .. } => {
                    panic!(
                        "tern: channel failed: {reason}; ldk-node: {:?}",
                        ldk.list_channels()
                    )
                }
                _ => {}
            }
        }
        while let Some(e) = ldk.next_event() {
            ldk.event_handled().expect("ldk-node event handled");
            match e {
                LdkEvent::ChannelPending { .. } => self.ldk_pending = true,
                LdkEvent::ChannelReady {
                    counterparty_node_id,
                    ..
                } => {
                    assert_eq!(counterparty_node_id, Some(tern.node_id()));
                    self.ldk_ready = true;
                }
                LdkEvent::ChannelClosed { reason, .. } => panic!(
                    "ldk-node closed the channel: {reason:?}; tern: {:?}",
                    tern.list_channels().await
                ),
                _ => {}
            }
        }
    }
}

/// Handles events until both sides reported the channel pending (the funding is signed and,
/// on the funder, broadcast); mines nothing.
async fn wait_pending(tern: &Node, ldk: &LdkNode, seen: &mut Seen) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        seen.poll(tern, ldk).await;
        if seen.tern_pending && seen.ldk_pending {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not pending on both sides after {TIMEOUT:?} ({seen:?}): tern {:?} / ldk-node {:?}",
            tern.list_channels().await,
            ldk.list_channels()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Handles both nodes' events, mining a block and syncing both every third round of 150 ms
/// (Tern's reconnect backoff starts at 1 s), until the channel is ready on both sides; then
/// checks both nodes' channel lists.
async fn drive_ready(devnet: &Devnet, tern: &Node, ldk: &LdkNode, seen: &mut Seen) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut round = 0u32;
    loop {
        seen.poll(tern, ldk).await;
        if seen.tern_ready && seen.ldk_ready {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready on both sides after {TIMEOUT:?} ({seen:?}): tern {:?} / ldk-node {:?}",
            tern.list_channels().await,
            ldk.list_channels()
        );
        if round.is_multiple_of(3) {
            devnet.mine(1);
            tern.sync(None).await.expect("tern sync");
            sync_ldk(ldk);
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // The connection stays up once the channel is ready.
    let disconnects = seen.tern_disconnects.len();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen.poll(tern, ldk).await;
    }
    assert_eq!(
        seen.tern_disconnects.len(),
        disconnects,
        "disconnected after ready: {:?}",
        seen.tern_disconnects
    );
    assert!(
        tern.list_peers()
            .await
            .expect("tern peers")
            .contains(&ldk.node_id()),
        "tern is connected to ldk-node: {seen:?}"
    );
    assert!(
        ldk.list_peers()
            .iter()
            .any(|p| p.node_id == tern.node_id() && p.is_connected),
        "ldk-node is connected to tern: {:?}",
        ldk.list_peers()
    );
    let tern_channels = tern.list_channels().await;
    assert_eq!(tern_channels.len(), 1, "tern: {tern_channels:?}");
    assert_eq!(
        tern_channels[0].state,
        ChannelState::Ready,
        "{tern_channels:?}"
    );
    assert_eq!(tern_channels[0].channel_value.to_sat(), CHANNEL_SAT);
    let ldk_channels = ldk.list_channels();
    assert_eq!(ldk_channels.len(), 1, "ldk-node: {ldk_channels:?}");
    let ch = &ldk_channels[0];
    assert!(ch.is_channel_ready, "ldk-node: {ch:?}");
    assert_eq!(ch.counterparty_node_id, tern.node_id());
    assert_eq!(ch.channel_value_sats, CHANNEL_SAT);
    assert_eq!(
        Some(ch.funding_txo.expect("ldk-node funding txo")),
        tern_channels[0].funding_txo,
        "both sides fund the same outpoint"
    );
}

/// A devnet, an ldk-node listening on a free port (returned), and a Tern node with 0.01 BTC
/// confirmed.
async fn setup(dirs: &Dirs, tern_opts: TernOpts<'_>) -> (Devnet, LdkNode, u16, Node) {
    let devnet = Devnet::start().await.expect("devnet");
    let port = free_port();
    let ldk = start_ldk(&devnet, &dirs.ldk(), port);
    let tern = start_tern(&devnet, &dirs.tern(), tern_opts).await;
    fund_tern(&devnet, &tern).await;
    sync_ldk(&ldk);
    (devnet, ldk, port, tern)
}

/// Tern opens an unannounced channel to ldk-node.
async fn tern_opens(tern: &Node, ldk: &LdkNode, port: u16) -> Result<String, String> {
    tern.open_channel(
        OpenChannelParams::new(
            ldk.node_id(),
            format!("127.0.0.1:{port}"),
            Amount::from_sat(CHANNEL_SAT),
        )
        .push_msat(0)
        .announce(false),
    )
    .await
    .map(|id| id.to_string())
    .map_err(|e| e.to_string())
}

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

/// The signed commitment the stopped Tern at `dir` (seed `[7; 32]`, `start_tern`) would
/// broadcast on a peer `error`: its latest (and only) commitment.
fn tern_commitment(dir: &std::path::Path) -> bitcoin::Transaction {
    use tern_core::proto::channel::{
        Action, BroadcastKind, Channel, ChannelConfig, ChannelRecord, Context, Input,
    };
    use tern_core::proto::wire::{ErrorMessage, Message};
    let store = tern_core::store::Store::open(dir.join("tern.sqlite")).expect("tern store");
    let stored = store.list_channels().expect("channels");
    let [row] = stored.as_slice() else {
        panic!("one channel: {stored:?}")
    };
    let mut channel = Channel::from_record(ChannelRecord::decode(&row.record).expect("record"));
    assert_eq!(channel.state(), ChannelState::Ready);
    let keys = tern_core::proto::keys::KeysManager::new(&[7; 32], bitcoin::Network::Regtest)
        .expect("keys")
        .channel_keys(channel.keys_index())
        .expect("channel keys");
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let config = ChannelConfig::new(bitcoin::constants::ChainHash::REGTEST);
    let ctx = Context::new(&secp, &keys, &config);
    let id = channel.channel_id().expect("id");
    channel
        .handle(
            Input::Message(Message::Error(ErrorMessage::new(id, "force close"))),
            &ctx,
        )
        .into_iter()
        .find_map(|a| match a {
            Action::Broadcast {
                tx,
                kind: BroadcastKind::Commitment,
            } => Some(tx),
            _ => None,
        })
        .expect("tern broadcasts its commitment")
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
    let devnet = Devnet::start().await.expect("devnet");
    let ldk = start_ldk_with(&devnet, &dirs.ldk(), free_port(), true);
    let tern = start_tern(
        &devnet,
        &dirs.tern(),
        TernOpts {
            listen: true,
            ..TernOpts::default()
        },
    )
    .await;
    fund_ldk(&devnet, &ldk, 1_000_000);
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
    assert!(ch.anchors, "{ch:?}");
    assert_eq!(
        ldk.list_balances().total_anchor_channels_reserve_sats,
        25_000
    );
    assert!(seen.tern_disconnects.is_empty(), "{seen:?}");
    finish(tern, ldk).await;
}
