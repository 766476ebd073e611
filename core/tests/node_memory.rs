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
use tern_core::node::{Event, NodeError};
use tern_devnet::DevChain;

mod common;

use common::chain::DevnetSource;
use common::memory::*;
use common::node::check_durability;

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
