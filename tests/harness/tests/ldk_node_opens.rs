//! Several opens from Tern to one ldk-node (0.7.1) on the devnet, from a wallet of one
//! 2,000,000-sat coin (issue 11 part 8): three back to back all reach ready, the later fundings
//! spending the change of the earlier; an open too large for what the others leave is refused
//! by `open_channel` at once, with the numbers, and ldk-node never hears of it; an open
//! ldk-node rejects fails alone. In every case the connection stays up, ldk-node has no
//! dangling channel, and Tern has no coin locked and nothing held once all opens ended.

use std::collections::HashSet;
use std::time::Duration;

use bitcoin::{Amount, Transaction, Txid};
use ldk_node::Event as LdkEvent;
use tern_core::node::{Event, Node, NodeError, OpenChannelParams};
use tern_core::proto::channel::ChannelState;
use tern_devnet::Devnet;

mod common;

use common::{
    finish, free_port, fund_tern_with, start_ldk, start_tern, sync_ldk, Dirs, LdkNode, TernOpts,
};

const TIMEOUT: Duration = Duration::from_secs(120);
const COIN_SAT: u64 = 2_000_000;

/// What both sides reported.
#[derive(Debug, Default)]
struct Seen {
    tern_ready: usize,
    tern_pending: usize,
    /// Tern's failed opens: (temporary id, reason).
    tern_failed: Vec<(String, String)>,
    tern_disconnects: Vec<String>,
    ldk_ready: usize,
    ldk_pending: usize,
    /// Channels ldk-node closed (temporary or final ids, hex).
    ldk_closed: Vec<String>,
}

impl Seen {
    async fn poll(&mut self, tern: &Node, ldk: &LdkNode) {
        while let Some((seq, e)) = tern.next_event().await.expect("tern events") {
            tern.event_handled(seq).await.expect("tern event handled");
            match e {
                Event::ChannelPending { .. } => self.tern_pending += 1,
                Event::ChannelReady { .. } => self.tern_ready += 1,
                Event::ChannelOpenFailed {
                    temporary_channel_id,
                    reason,
                    ..
                } => self.tern_failed.push((
                    temporary_channel_id
                        .map(|t| t.to_string())
                        .unwrap_or_default(),
                    reason,
                )),
                Event::ChannelFailed { reason, .. } => panic!("tern: channel failed: {reason}"),
                Event::PeerDisconnected { reason, .. } => self.tern_disconnects.push(reason),
                _ => {}
            }
        }
        while let Some(e) = ldk.next_event() {
            ldk.event_handled().expect("ldk-node event handled");
            match e {
                LdkEvent::ChannelPending { .. } => self.ldk_pending += 1,
                LdkEvent::ChannelReady { .. } => self.ldk_ready += 1,
                LdkEvent::ChannelClosed { channel_id, .. } => {
                    self.ldk_closed.push(channel_id.to_string())
                }
                _ => {}
            }
        }
    }
}

/// Handles both nodes' events, mining a block and syncing both every third round of 150 ms,
/// until `ready` channels are ready on both sides.
async fn drive_ready(devnet: &Devnet, tern: &Node, ldk: &LdkNode, seen: &mut Seen, ready: usize) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut round = 0u32;
    loop {
        seen.poll(tern, ldk).await;
        if seen.tern_ready >= ready && seen.ldk_ready >= ready {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not {ready} ready on both sides ({seen:?}): tern {:?} / ldk-node {:?}",
            tern.list_channels().await,
            ldk.list_channels()
        );
        if round.is_multiple_of(3) && seen.tern_pending >= ready {
            devnet.mine(1);
            tern.sync(None).await.expect("tern sync");
            sync_ldk(ldk);
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// A devnet, an ldk-node, and a Tern node holding one confirmed 2,000,000-sat coin.
async fn setup(dirs: &Dirs) -> (Devnet, LdkNode, u16, Node) {
    let devnet = Devnet::start().await.expect("devnet");
    let port = free_port();
    let ldk = start_ldk(&devnet, &dirs.ldk(), port);
    let tern = start_tern(&devnet, &dirs.tern(), TernOpts::default()).await;
    fund_tern_with(&devnet, &tern, COIN_SAT).await;
    assert_eq!(
        tern.list_balances()
            .await
            .expect("balances")
            .confirmed
            .to_sat(),
        COIN_SAT
    );
    sync_ldk(&ldk);
    (devnet, ldk, port, tern)
}

async fn open(
    tern: &Node,
    ldk: &LdkNode,
    port: u16,
    sat: u64,
    public: bool,
) -> Result<String, NodeError> {
    tern.open_channel(
        OpenChannelParams::new(
            ldk.node_id(),
            format!("127.0.0.1:{port}"),
            Amount::from_sat(sat),
        )
        .push_msat(0)
        .announce(public),
    )
    .await
    .map(|id| id.to_string())
}

/// The connection is up on both sides, a while after the last open ended.
async fn assert_connected(tern: &Node, ldk: &LdkNode, seen: &mut Seen) {
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen.poll(tern, ldk).await;
    }
    assert!(seen.tern_disconnects.is_empty(), "{seen:?}");
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
}

/// Both sides list exactly the channels of `sizes`, all ready, on the same outpoints: ldk-node
/// has nothing dangling. Returns the funding transactions.
async fn assert_channels(
    devnet: &Devnet,
    tern: &Node,
    ldk: &LdkNode,
    sizes: &[u64],
) -> Vec<Transaction> {
    let tern_channels = tern.list_channels().await;
    let ldk_channels = ldk.list_channels();
    assert_eq!(tern_channels.len(), sizes.len(), "tern: {tern_channels:?}");
    assert_eq!(
        ldk_channels.len(),
        sizes.len(),
        "ldk-node: {ldk_channels:?}"
    );
    let mut tern_sizes: Vec<u64> = tern_channels
        .iter()
        .map(|c| c.channel_value.to_sat())
        .collect();
    let mut want = sizes.to_vec();
    tern_sizes.sort_unstable();
    want.sort_unstable();
    assert_eq!(tern_sizes, want);
    for c in &tern_channels {
        assert_eq!(c.state, ChannelState::Ready, "{c:?}");
        let theirs = ldk_channels
            .iter()
            .find(|l| l.funding_txo == c.funding_txo)
            .unwrap_or_else(|| panic!("ldk-node has {c:?}: {ldk_channels:?}"));
        assert!(theirs.is_channel_ready, "{theirs:?}");
        assert_eq!(theirs.channel_value_sats, c.channel_value.to_sat());
        assert_eq!(theirs.counterparty_node_id, tern.node_id());
    }
    tern_channels
        .iter()
        .map(|c| {
            let txid = c.funding_txo.expect("funding").txid;
            devnet.transaction(&txid).expect("funding known")
        })
        .collect()
}

/// Nothing is held once every open ended: no coin lock, no intent in progress; the coin is
/// the channels, the fees of their fundings and what is left on chain.
async fn assert_balances_add_up(
    devnet: &Devnet,
    tern: &Node,
    fundings: &[Transaction],
    channels: u64,
) {
    assert_eq!(
        tern.dev_coin_locks().await.expect("locks"),
        vec![],
        "coin locks"
    );
    assert_eq!(
        tern.dev_open_intents_in_progress().await.expect("intents"),
        vec![],
        "open intents in progress"
    );
    let b = tern.list_balances().await.expect("balances");
    assert_eq!(b.locked.to_sat(), 0);
    let value = |txid: &Txid, vout: u32| {
        devnet.transaction(txid).expect("parent").output[vout as usize]
            .value
            .to_sat()
    };
    let fees: u64 = fundings
        .iter()
        .map(|t| {
            let inputs: u64 = t
                .input
                .iter()
                .map(|i| value(&i.previous_output.txid, i.previous_output.vout))
                .sum();
            inputs - t.output.iter().map(|o| o.value.to_sat()).sum::<u64>()
        })
        .sum();
    assert_eq!(
        b.confirmed.to_sat() + b.unconfirmed.to_sat() + channels + fees,
        COIN_SAT,
        "{b:?}, fees {fees}"
    );
    println!("channels {channels} sat, fees {fees} sat, left {b:?}");
}

/// How many of `txs` spend another one of them.
fn chained(txs: &[Transaction]) -> usize {
    let ids: HashSet<Txid> = txs.iter().map(Transaction::compute_txid).collect();
    txs.iter()
        .filter(|t| {
            t.input
                .iter()
                .any(|i| ids.contains(&i.previous_output.txid))
        })
        .count()
}

/// The case: three opens back to back from one coin. The first locks the coin; the
/// others wait for its funding and spend its change. All three reach ready on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_back_to_back_opens_from_one_coin_all_reach_ready() {
    let dirs = Dirs::new("opens-three");
    let (devnet, ldk, port, tern) = setup(&dirs).await;
    let sizes = [500_000, 400_000, 300_000];
    for sat in sizes {
        open(&tern, &ldk, port, sat, false).await.expect("open");
    }
    let mut seen = Seen::default();
    drive_ready(&devnet, &tern, &ldk, &mut seen, 3).await;
    assert!(seen.tern_failed.is_empty(), "{seen:?}");
    assert!(seen.ldk_closed.is_empty(), "{seen:?}");
    assert_connected(&tern, &ldk, &mut seen).await;
    let fundings = assert_channels(&devnet, &tern, &ldk, &sizes).await;
    assert_eq!(
        chained(&fundings),
        2,
        "the later fundings spend the earlier change"
    );
    assert_balances_add_up(&devnet, &tern, &fundings, sizes.iter().sum()).await;
    finish(tern, ldk).await;
}

/// Between two opens that fit, one too large for what they leave is refused by `open_channel`
/// at once — needed, available and what the others hold — and ldk-node never sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_open_too_large_for_what_is_left_is_refused_at_once_and_alone() {
    let dirs = Dirs::new("opens-too-large");
    let (devnet, ldk, port, tern) = setup(&dirs).await;
    open(&tern, &ldk, port, 800_000, false)
        .await
        .expect("first open");
    let asked = tokio::time::Instant::now();
    let refused = open(&tern, &ldk, port, 1_500_000, false).await;
    let took = asked.elapsed();
    let Err(NodeError::InsufficientFunds {
        needed,
        available,
        locked_by_opens,
    }) = refused
    else {
        panic!("1,500,000 besides 800,000 in progress must be refused: {refused:?}");
    };
    let fee = needed.to_sat() - 1_500_000;
    assert!((1..2_000).contains(&fee), "needed {needed}");
    assert_eq!(locked_by_opens, Amount::from_sat(800_000 + fee));
    assert_eq!(available, Amount::from_sat(COIN_SAT - 800_000 - fee));
    assert!(took < Duration::from_millis(500), "at once: {took:?}");
    println!(
        "refused in {took:?}: {}",
        NodeError::InsufficientFunds {
            needed,
            available,
            locked_by_opens
        }
    );
    open(&tern, &ldk, port, 800_000, false)
        .await
        .expect("third open");
    let mut seen = Seen::default();
    drive_ready(&devnet, &tern, &ldk, &mut seen, 2).await;
    assert!(
        seen.tern_failed.is_empty(),
        "nothing failed later: {seen:?}"
    );
    assert!(seen.ldk_closed.is_empty(), "{seen:?}");
    assert_connected(&tern, &ldk, &mut seen).await;
    let fundings = assert_channels(&devnet, &tern, &ldk, &[800_000, 800_000]).await;
    assert_balances_add_up(&devnet, &tern, &fundings, 1_600_000).await;
    finish(tern, ldk).await;
}

/// ldk-node (no alias: it may not announce channels) rejects the public one of three opens
/// after receiving it: that open fails alone, its `ChannelOpenFailed` naming its temporary id;
/// the two others reach ready over the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_open_ldk_node_rejects_fails_alone() {
    let dirs = Dirs::new("opens-rejected");
    let (devnet, ldk, port, tern) = setup(&dirs).await;
    open(&tern, &ldk, port, 500_000, false)
        .await
        .expect("first open");
    let doomed = open(&tern, &ldk, port, 500_000, true)
        .await
        .expect("the public open is sent");
    open(&tern, &ldk, port, 500_000, false)
        .await
        .expect("third open");
    let mut seen = Seen::default();
    drive_ready(&devnet, &tern, &ldk, &mut seen, 2).await;
    assert_eq!(seen.tern_failed.len(), 1, "{seen:?}");
    assert_eq!(
        seen.tern_failed[0].0, doomed,
        "the failure names the public open"
    );
    assert!(
        seen.tern_failed[0].1.contains("peer error"),
        "{:?}",
        seen.tern_failed
    );
    assert!(
        seen.ldk_closed.iter().all(|id| *id == doomed),
        "ldk-node closed only the rejected one: {seen:?}"
    );
    assert_connected(&tern, &ldk, &mut seen).await;
    let fundings = assert_channels(&devnet, &tern, &ldk, &[500_000, 500_000]).await;
    assert_balances_add_up(&devnet, &tern, &fundings, 1_000_000).await;
    finish(tern, ldk).await;
}
