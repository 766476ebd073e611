//! Driving a Tern node and an ldk-node through an open on the devnet: events of both, mining
//! and syncing until ready (`ldk_node.rs`, `ldk_node_fees.rs`).

use std::time::Duration;

use bitcoin::Amount;
use ldk_node::Event as LdkEvent;
use tern_core::node::{Event, Node, OpenChannelParams};
use tern_core::proto::channel::ChannelState;
use tern_devnet::Devnet;

use super::{
    free_port, fund_ldk, fund_tern, ldk_addr, start_ldk, start_ldk_with, start_tern, sync_ldk,
    Dirs, LdkNode, TernOpts,
};

/// How long any phase may take before the test fails with the state of both sides.
pub const TIMEOUT: Duration = Duration::from_secs(90);
pub const CHANNEL_SAT: u64 = 200_000;

/// What both sides reported while an open was driven.
#[derive(Debug, Default)]
pub struct Seen {
    pub tern_pending: bool,
    pub tern_ready: bool,
    pub tern_disconnects: Vec<String>,
    pub ldk_pending: bool,
    pub ldk_ready: bool,
}

impl Seen {
    /// Handles every queued event of both nodes; fails the test on a failed or closed channel.
    /// A killed Tern (a test hook) is as dead as a killed process: only ldk-node is polled.
    pub async fn poll(&mut self, tern: &Node, ldk: &LdkNode) {
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
pub async fn wait_pending(tern: &Node, ldk: &LdkNode, seen: &mut Seen) {
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
pub async fn drive_ready(devnet: &Devnet, tern: &Node, ldk: &LdkNode, seen: &mut Seen) {
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
pub async fn setup(dirs: &Dirs, tern_opts: TernOpts<'_>) -> (Devnet, LdkNode, u16, Node) {
    let devnet = Devnet::start().await.expect("devnet");
    let port = free_port();
    let ldk = start_ldk(&devnet, &dirs.ldk(), port);
    let tern = start_tern(&devnet, &dirs.tern(), tern_opts).await;
    fund_tern(&devnet, &tern).await;
    sync_ldk(&ldk);
    (devnet, ldk, port, tern)
}

/// Tern opens an unannounced channel to ldk-node.
pub async fn tern_opens(tern: &Node, ldk: &LdkNode, port: u16) -> Result<String, String> {
    tern_opens_with(tern, ldk, port, CHANNEL_SAT, 0).await
}

/// Tern opens an unannounced `sat` channel to ldk-node, giving it `push_msat`.
pub async fn tern_opens_with(
    tern: &Node,
    ldk: &LdkNode,
    port: u16,
    sat: u64,
    push_msat: u64,
) -> Result<String, String> {
    tern.open_channel(
        OpenChannelParams::new(
            ldk.node_id(),
            format!("127.0.0.1:{port}"),
            Amount::from_sat(sat),
        )
        .push_msat(push_msat)
        .announce(false),
    )
    .await
    .map(|id| id.to_string())
    .map_err(|e| e.to_string())
}

/// The signed commitment the stopped Tern at `dir` (seed `[7; 32]`, `start_tern`) would
/// broadcast on a peer `error`: its latest commitment.
pub fn tern_commitment(dir: &std::path::Path) -> bitcoin::Transaction {
    super::commitment::stored_ready_commitment(dir, 7)
}

/// A devnet, an ldk-node (`anchors`: with its default anchor config) funded with 0.01 BTC and
/// a listening Tern node; ldk-node opens a `CHANNEL_SAT` channel to Tern, driven to ready.
pub async fn ldk_opens_to_tern(dirs: &Dirs, anchors: bool) -> (Devnet, LdkNode, Node, Seen) {
    ldk_opens_to_tern_pushing(dirs, anchors, None).await
}

/// [`ldk_opens_to_tern`], ldk-node giving Tern `push_msat` at the open.
pub async fn ldk_opens_to_tern_pushing(
    dirs: &Dirs,
    anchors: bool,
    push_msat: Option<u64>,
) -> (Devnet, LdkNode, Node, Seen) {
    ldk_opens_to_tern_with(dirs, anchors, push_msat, TernOpts::default()).await
}

/// [`ldk_opens_to_tern_pushing`], Tern started with `opts` (always listening: on
/// `opts.listen_port` if given, else on a free port picked here, which a restart reuses with
/// `listen_port: tern.listen_addr()`'s port).
pub async fn ldk_opens_to_tern_with(
    dirs: &Dirs,
    anchors: bool,
    push_msat: Option<u64>,
    opts: TernOpts<'_>,
) -> (Devnet, LdkNode, Node, Seen) {
    let devnet = Devnet::start().await.expect("devnet");
    let ldk = start_ldk_with(&devnet, &dirs.ldk(), free_port(), anchors);
    let tern = start_tern(
        &devnet,
        &dirs.tern(),
        TernOpts {
            listen: true,
            listen_port: Some(opts.listen_port.unwrap_or_else(free_port)),
            ..opts
        },
    )
    .await;
    fund_ldk(&devnet, &ldk, 1_000_000);
    let tern_addr = tern.listen_addr().expect("tern listens");
    ldk.open_channel(
        tern.node_id(),
        ldk_addr(tern_addr.port()),
        CHANNEL_SAT,
        push_msat,
        None,
    )
    .expect("ldk-node opens");
    let mut seen = Seen::default();
    drive_ready(&devnet, &tern, &ldk, &mut seen).await;
    (devnet, ldk, tern, seen)
}
