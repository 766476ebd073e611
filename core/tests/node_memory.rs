//! Whole nodes on a deterministic chain: two Tern nodes on the devnet's own validating chain
//! and mempool in process (`common::chain::DevnetSource` behind the node's chain source),
//! talking over an in-memory network, on a paused tokio clock. No HTTP, no socket, no real
//! sleep: time moves only when every task waits for a timer (the nodes hold the clock while
//! their store thread works, see `Builder::dev_hold_clock_during_store_jobs`), so a timeout
//! here fires only when nothing else could happen first.
//!
//! The same scenarios run over HTTP and TCP in `node_devnet.rs`, which stays.
//!
//! Needs the `dev-disconnect` feature (the in-memory network and the clock hold are dev seams;
//! `scripts/test.sh` enables it).
#![cfg(feature = "dev-disconnect")]

use std::time::Duration;

use bitcoin::{Amount, Network};
use tern_core::net::MemoryNet;
use tern_core::node::{Builder, Event, Node, NodeError, OpenChannelParams};
use tern_devnet::{DevChain, TxState};

mod common;

use common::chain::DevnetSource;
use common::node::{check_durability, fund};

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tern-memory-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Where the LSP listens on the in-memory network (the same address across its restarts).
const LSP_ADDR: &str = "127.0.0.1:9735";

/// A node on `chain` and `net`: no Esplora (the URL is never dialled), no TCP.
async fn node(
    chain: &DevChain,
    net: &MemoryNet,
    data: &std::path::Path,
    seed: u8,
    listen: bool,
) -> Node {
    node_with(chain, net, data, seed, listen, |b| b).await
}

/// [`node`], its builder adjusted by `adjust` first.
async fn node_with(
    chain: &DevChain,
    net: &MemoryNet,
    data: &std::path::Path,
    seed: u8,
    listen: bool,
    adjust: impl FnOnce(Builder) -> Builder,
) -> Node {
    let mut b = adjust(Builder::new(
        Network::Regtest,
        data,
        "http://no-esplora.invalid",
    ))
    .seed([seed; 32])
    .chain_source(DevnetSource::new(chain.clone()))
    .dev_memory_net(net.clone())
    .dev_hold_clock_during_store_jobs();
    if listen {
        b = b.listen(LSP_ADDR);
    }
    b.start().await.expect("node starts")
}

/// Waits for an event matching `want`, marking everything seen as handled. The 20 s are on
/// the paused clock: they pass only if nothing at all is left to do before them.
async fn wait_for(node: &Node, what: &str, want: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(next) = tokio::time::timeout(left, node.wait_next_event()).await else {
            panic!(
                "timed out waiting for {what}; channels: {:?}",
                node.list_channels().await
            )
        };
        let (seq, event) = next.expect("event");
        node.event_handled(seq).await.expect("handled");
        check_durability(node, "node");
        if want(&event) {
            return event;
        }
        if let Event::ChannelOpenFailed { reason, .. } = &event {
            panic!("open failed while waiting for {what}: {reason}");
        }
    }
}

/// [`wait_for`] on each node in turn.
async fn wait_both(nodes: &[&Node], what: &str, want: impl Fn(&Event) -> bool) {
    for n in nodes {
        wait_for(n, what, &want).await;
    }
}

/// Waits until `done` holds, checking each time the nodes have nothing left to run (a 1 ms
/// step of the paused clock passes only then: no real time is spent), for at most 10 s of
/// that clock.
async fn settle<F: std::future::Future<Output = bool>>(what: &str, done: impl Fn() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Whether both nodes' only channel is at commitment `number` with `feerate`.
async fn at(a: &Node, b: &Node, feerate: u32, number: u64) -> bool {
    for n in [a, b] {
        let c = &n.list_channels().await[0];
        if (c.commitment_number, c.commitment_feerate_per_kw) != (number, feerate) {
            return false;
        }
    }
    true
}

/// Mines `blocks` blocks, syncing every node after each. Every funding the nodes list is in
/// the mempool or a block first: `ChannelPending` is queued with the durable state, just
/// before the funder broadcasts, and the broadcast is one chain call away.
async fn mine_until(chain: &DevChain, nodes: &[&Node], blocks: u32) {
    for n in nodes {
        for c in n.list_channels().await {
            if let Some(o) = c.funding_txo {
                settle("the funding broadcast", || async {
                    chain.tx_state(&o.txid) != TxState::Unknown
                })
                .await;
            }
        }
    }
    for _ in 0..blocks {
        chain.mine(1);
        for n in nodes {
            n.sync(None).await.expect("sync");
            check_durability(n, "node");
        }
    }
}

/// Opens a 250 000 sat channel pushing 10 000 sat from a funded phone to the LSP, and checks
/// what `node_devnet::two_nodes_open_a_channel_to_ready` checks over HTTP.
async fn open_to_ready(chain: &DevChain, phone: &Node, lsp: &Node) {
    lsp.sync(None).await.expect("sync");
    fund(chain, phone, 1_000_000).await;
    let addr = lsp.listen_addr().expect("listening").to_string();
    assert_eq!(addr, LSP_ADDR);

    let temp = phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr, Amount::from_sat(250_000))
                .push_msat(10_000_000)
                .announce(false),
        )
        .await
        .expect("open");
    assert_eq!(temp.to_string().len(), 64);
    let pending = wait_for(phone, "phone ChannelPending", |e| {
        matches!(e, Event::ChannelPending { .. })
    })
    .await;
    wait_for(lsp, "lsp ChannelPending", |e| {
        matches!(e, Event::ChannelPending { .. })
    })
    .await;
    let Event::ChannelPending { funding_txo, .. } = pending else {
        unreachable!()
    };
    settle("the funding broadcast", || async {
        chain.tx_state(&funding_txo.txid) != TxState::Unknown
    })
    .await;
    assert_eq!(
        chain.tx_state(&funding_txo.txid),
        TxState::Mempool,
        "funding broadcast"
    );
    // The funding spent the wallet's coin: only the unconfirmed change is left.
    let b = phone.list_balances().await.expect("balances");
    assert_eq!(b.confirmed.to_sat(), 0, "{b:?}");
    assert!(
        (740_000..750_000).contains(&b.unconfirmed.to_sat()),
        "{b:?}"
    );

    mine_until(chain, &[phone, lsp], 3).await;
    wait_both(&[phone, lsp], "ChannelReady", |e| {
        matches!(e, Event::ChannelReady { .. })
    })
    .await;
    let ch = &phone.list_channels().await[0];
    assert_eq!(ch.status, "ready");
    assert_eq!(ch.channel_value.to_sat(), 250_000);
    assert_eq!(ch.balance_msat, 250_000_000 - 10_000_000);
    assert_eq!(lsp.list_channels().await[0].balance_msat, 10_000_000);
    // Wallet + channel add up: what left the wallet is the channel plus the funding fee.
    let b = phone.list_balances().await.expect("balances");
    assert_eq!(b.locked.to_sat(), 0, "locks released once ready");
    assert!(
        b.confirmed.to_sat() + 250_000 < 1_000_000 && b.confirmed.to_sat() + 250_000 > 990_000,
        "{b:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn two_nodes_open_a_channel_to_ready_on_the_in_memory_chain() {
    let started = std::time::Instant::now();
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir("lsp"), dir("phone"));
    let lsp = node(&chain, &net, &dl, 1, true).await;
    let phone = node(&chain, &net, &dp, 2, false).await;
    open_to_ready(&chain, &phone, &lsp).await;
    phone.stop().await;
    lsp.stop().await;
    assert!(matches!(
        phone.wait_next_event().await,
        Err(NodeError::Stopped)
    ));
    eprintln!("wall time: {:?}", started.elapsed());
}

/// Both nodes stop after the channel is ready and start again from their data dirs: the phone
/// redials the LSP at its stored address, the channel is reestablished and still ready with
/// the same balances, and it keeps following the chain.
#[tokio::test(start_paused = true)]
async fn a_ready_channel_survives_a_restart_of_both_nodes_on_the_in_memory_chain() {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir("lsp-restart"), dir("phone-restart"));
    let lsp = node(&chain, &net, &dl, 3, true).await;
    let phone = node(&chain, &net, &dp, 4, false).await;
    open_to_ready(&chain, &phone, &lsp).await;
    let before = phone.list_balances().await.expect("balances");
    phone.stop().await;
    lsp.stop().await;
    drop((phone, lsp));
    // Blocks mined while both are down.
    chain.mine(2);

    // The phone first: its dial is refused until the LSP listens, and its backoff (1 s on the
    // paused clock) brings it back.
    let phone = node(&chain, &net, &dp, 4, false).await;
    let lsp = node(&chain, &net, &dl, 3, true).await;
    wait_for(&phone, "phone PeerConnected", |e| {
        matches!(e, Event::PeerConnected { .. })
    })
    .await;
    wait_for(&lsp, "lsp PeerConnected", |e| {
        matches!(e, Event::PeerConnected { .. })
    })
    .await;
    mine_until(&chain, &[&phone, &lsp], 1).await;
    for (n, who, balance) in [(&phone, "phone", 240_000_000), (&lsp, "lsp", 10_000_000)] {
        let channels = n.list_channels().await;
        assert_eq!(channels.len(), 1, "{who}: {channels:?}");
        assert_eq!(channels[0].status, "ready", "{who}: {channels:?}");
        assert_eq!(channels[0].balance_msat, balance, "{who}");
        // The peer task refreshes its view when the sync's new block reaches it.
        settle("6 confirmations (3 + 2 + 1 blocks)", || async {
            n.list_channels().await[0].confirmations == 6
        })
        .await;
    }
    assert_eq!(
        phone.list_balances().await.expect("balances"),
        before,
        "the wallet is as it was"
    );
    phone.stop().await;
    lsp.stop().await;
}

/// Fee estimates with `two_blocks` sat/vB for the commitment's target; for the funding's
/// (6 blocks) the node's fallback when it never fetched (5 sat/vB), 2 sat/vB for 144 blocks and
/// 1 sat/vB for 1008.
fn estimates(two_blocks: f64) -> std::collections::BTreeMap<u16, f64> {
    std::collections::BTreeMap::from([
        (1, two_blocks + 5.0),
        (2, two_blocks),
        (6, 5.0),
        (144, 2.0),
        (1008, 1.0),
    ])
}

/// The funder's fee policy (`node/fees.rs`): at each new block, with the estimates refreshed,
/// the phone (funder) feeds its ready channel `SetFeerate` when the policy says so and the LSP
/// (fundee) never; while the LSP is away nothing is fed, and once it is back the channel's
/// `channel_reestablish` brings the feerate that moved meanwhile. `list_channels` shows each
/// side's commitment.
#[tokio::test(start_paused = true)]
async fn the_funder_follows_the_fee_estimates_on_each_block() {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir("lsp-fees"), dir("phone-fees"));
    let lsp = node(&chain, &net, &dl, 5, true).await;
    let phone = node_with(&chain, &net, &dp, 6, false, |b| {
        b.fee_max_age(Duration::ZERO)
    })
    .await;
    // The open reads the phone's cache as it is (never fetched: 10 sat/vB for the commitment,
    // 2 500 sat/kw); the chain's estimates say the same.
    chain.set_fee_estimates(estimates(10.0));
    open_to_ready(&chain, &phone, &lsp).await;
    for n in [&phone, &lsp] {
        let c = &n.list_channels().await[0];
        let commitment = (c.anchors, c.commitment_number, c.commitment_feerate_per_kw);
        assert_eq!(commitment, (true, 0, 2500), "{c:?}");
    }
    let id = phone.list_channels().await[0].channel_id;
    // A paused clock moves only when every task waits: this passes once the peer tasks have
    // handled what the syncs handed them.
    let idle = || tokio::time::sleep(Duration::from_millis(100));

    // The estimates are those of the open: nothing to move.
    mine_until(&chain, &[&phone, &lsp], 2).await;
    idle().await;
    assert_eq!(phone.dev_feerates_set(), []);

    // Fees rise to 40 sat/vB: the funder moves to 10 000 sat/kw at the next block.
    chain.set_fee_estimates(estimates(40.0));
    mine_until(&chain, &[&phone, &lsp], 1).await;
    settle("the phone moves its feerate", || async {
        !phone.dev_feerates_set().is_empty()
    })
    .await;
    let set = phone.dev_feerates_set();
    assert!(set.iter().all(|f| *f == (id, 10_000)), "{set:?}");
    assert_eq!(
        lsp.dev_feerates_set(),
        [],
        "the fundee never sends update_fee"
    );
    // The update completes: both sides at commitment 1, 10 000 sat/kw.
    settle("commitment 1 at 10 000 sat/kw on both sides", || {
        at(&phone, &lsp, 10_000, 1)
    })
    .await;

    // The LSP goes away; fees rise again: nothing is fed while it is gone.
    lsp.stop().await;
    drop(lsp);
    wait_for(&phone, "phone PeerDisconnected", |e| {
        matches!(e, Event::PeerDisconnected { .. })
    })
    .await;
    let before = phone.dev_feerates_set().len();
    chain.set_fee_estimates(estimates(80.0));
    mine_until(&chain, &[&phone], 1).await;
    idle().await;
    assert_eq!(
        phone.dev_feerates_set().len(),
        before,
        "not while disconnected"
    );

    // Back: after the reestablish the channel gets the feerate of the latest estimates.
    let lsp = node(&chain, &net, &dl, 5, true).await;
    settle("the new feerate after the reestablish", || async {
        phone.dev_feerates_set().contains(&(id, 20_000))
    })
    .await;
    settle("commitment 2 at 20 000 sat/kw on both sides", || {
        at(&phone, &lsp, 20_000, 2)
    })
    .await;
    assert_eq!(lsp.dev_feerates_set(), []);
    check_durability(&phone, "phone");
    check_durability(&lsp, "lsp");
    phone.stop().await;
    lsp.stop().await;
}

/// The wallet's own chain paths on the in-memory chain too: a wallet restored from seed finds
/// every coin with a full scan (one script with more confirmed payments than a page of its
/// history), and after a reorg drops a payment its resync forgets the coin.
#[tokio::test]
async fn a_restored_wallet_scans_and_resyncs_through_the_chain_source() {
    use tern_core::proto::keys::KeysManager;
    use tern_core::wallet::OnchainWallet;

    let chain = DevChain::new();
    let source = DevnetSource::new(chain.clone());
    let keys = KeysManager::new(&[7; 32], Network::Regtest).expect("keys");
    let open = || {
        let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
        OnchainWallet::open(conn, &keys.wallet_descriptors(), Network::Regtest)
            .expect("wallet")
            .0
    };
    let mut payer = open();
    let addresses: Vec<_> = (0..3)
        .map(|_| payer.new_address().expect("address"))
        .collect();
    chain
        .faucet(&addresses[0], Amount::from_sat(100_000))
        .expect("faucet");
    chain
        .faucet(&addresses[2], Amount::from_sat(200_000))
        .expect("faucet");
    // 27 payments to one script: more than the 25 of its history's first page.
    for _ in 0..27 {
        chain
            .faucet(&addresses[1], Amount::from_sat(1_000))
            .expect("faucet");
        chain.mine(1);
    }
    let last = chain
        .faucet(&addresses[0], Amount::from_sat(50_000))
        .expect("faucet");
    chain.mine(1);

    let mut restored = open();
    restored.full_scan(&source, 20).await.expect("full scan");
    let b = restored.balances(&[]);
    assert_eq!(b.confirmed.to_sat(), 100_000 + 200_000 + 27_000 + 50_000);
    assert_eq!(b.unconfirmed.to_sat(), 0);

    // The last payment's block leaves the best chain and the payment the mempool.
    chain.reorg(1, 2).expect("reorg");
    chain.drop_mempool_tx(&last).expect("drop");
    restored.resync(&source).await.expect("resync");
    let b = restored.balances(&[]);
    assert_eq!(b.confirmed.to_sat(), 100_000 + 200_000 + 27_000, "{b:?}");
    assert_eq!(b.unconfirmed.to_sat(), 0, "{b:?}");
    assert!(
        source.requests() > 0,
        "the scans went through the chain source"
    );
}
