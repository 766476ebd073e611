//! The funding transaction meets the chain's accidents, at node level against the devnet:
//! a reorg takes it out of the best chain (and, in a second case, out of the mempool too),
//! and a double spend of its input replaces it.

use std::time::Duration;

use bitcoin::{Amount, FeeRate, Network};
use tern_core::node::{Builder, Event, Node, OpenChannelParams};
use tern_core::proto::channel::ChannelState;
use tern_core::proto::keys::KeysManager;
use tern_core::wallet::OnchainWallet;
use tern_devnet::{Devnet, TxState};

mod common;

const PHONE_SEED: u8 = 2;

async fn node(devnet: &Devnet, dir: &std::path::Path, seed: u8, listen: bool) -> Node {
    let mut b = Builder::new(Network::Regtest, dir, &devnet.base_url()).seed([seed; 32]);
    if listen {
        b = b.listen("127.0.0.1:0");
    }
    b.start().await.expect("node starts")
}

async fn sync_all(nodes: &[&Node]) {
    for n in nodes {
        n.sync(None).await.expect("sync");
        common::node::check_durability(n, "node");
    }
}

/// The only channel of `node`, waiting up to 10 s for it to satisfy `want`.
async fn channel_where(
    node: &Node,
    what: &str,
    want: impl Fn(&tern_core::node::ChannelDetails) -> bool,
) -> tern_core::node::ChannelDetails {
    for _ in 0..100 {
        if let [c] = node.list_channels().await.as_slice() {
            if want(c) {
                return c.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {:?}", node.list_channels().await);
}

/// Phone (funder) and LSP (fundee), the phone funded with 1_000_000 sat, a 200_000 sat
/// channel opened and its funding in the mempool.
async fn pending_open(devnet: &Devnet, dir: &std::path::Path) -> (Node, Node, bitcoin::Txid) {
    let lsp = node(devnet, &dir.join("lsp"), 1, true).await;
    let phone = node(devnet, &dir.join("phone"), PHONE_SEED, false).await;
    let address = phone.new_address().await.expect("address");
    devnet
        .faucet(&address, Amount::from_sat(1_000_000))
        .expect("faucet");
    devnet.mine(1);
    sync_all(&[&phone, &lsp]).await;
    let addr = lsp.listen_addr().expect("listening").to_string();
    phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(200_000))
                .push_msat(0)
                .announce(false),
        )
        .await
        .expect("open");
    let c = channel_where(&phone, "funding broadcast", |c| {
        c.funding_txo
            .is_some_and(|o| devnet.tx_state(&o.txid) == TxState::Mempool)
    })
    .await;
    let txid = c.funding_txo.expect("funding").txid;
    channel_where(&lsp, "fundee durable", |c| {
        c.state == ChannelState::AwaitingConfirmations
    })
    .await;
    (phone, lsp, txid)
}

async fn mine_to_ready(devnet: &Devnet, phone: &Node, lsp: &Node) {
    for _ in 0..10 {
        devnet.mine(1);
        sync_all(&[phone, lsp]).await;
        async fn ready(n: &Node) -> bool {
            n.list_channels()
                .await
                .iter()
                .all(|c| c.state == ChannelState::Ready)
        }
        for _ in 0..20 {
            if ready(phone).await && ready(lsp).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!(
        "not ready: {:?} / {:?}",
        phone.list_channels().await,
        lsp.list_channels().await
    );
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-node-chain-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn funding_reorged_out_goes_back_to_awaiting_confirmations_then_ready() {
    let dir = temp_dir("reorg");
    let devnet = Devnet::start().await.expect("devnet");
    let (phone, lsp, txid) = pending_open(&devnet, &dir).await;

    devnet.mine(1);
    sync_all(&[&phone, &lsp]).await;
    let first = channel_where(&phone, "1 confirmation", |c| c.confirmations == 1).await;
    assert_eq!(first.status, "awaiting confirmations 1/3");
    let TxState::Confirmed {
        block_hash: old_block,
        ..
    } = devnet.tx_state(&txid)
    else {
        panic!("funding not confirmed");
    };

    // The block leaves the best chain; two empty blocks replace it. The funding is back in the
    // mempool, both sides count again from zero.
    let outcome = devnet.reorg(1, 2).expect("reorg");
    assert!(outcome.returned_to_mempool.contains(&txid));
    sync_all(&[&phone, &lsp]).await;
    for n in [&phone, &lsp] {
        let c = channel_where(n, "reorged back to 0 confirmations", |c| {
            c.confirmations == 0 && c.state == ChannelState::AwaitingConfirmations
        })
        .await;
        assert_eq!(c.funding_txo.map(|o| o.txid), Some(txid));
    }

    mine_to_ready(&devnet, &phone, &lsp).await;
    let TxState::Confirmed {
        block_hash: new_block,
        ..
    } = devnet.tx_state(&txid)
    else {
        panic!("funding not confirmed again");
    };
    assert_ne!(
        new_block, old_block,
        "confirmed in a block of the new chain"
    );
    phone.stop().await;
    lsp.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn funding_reorged_out_and_dropped_from_the_mempool_is_rebroadcast() {
    let dir = temp_dir("reorg-drop");
    let devnet = Devnet::start().await.expect("devnet");
    let (phone, lsp, txid) = pending_open(&devnet, &dir).await;
    devnet.mine(1);
    sync_all(&[&phone, &lsp]).await;
    channel_where(&phone, "1 confirmation", |c| c.confirmations == 1).await;

    devnet.reorg(1, 1).expect("reorg");
    devnet.drop_mempool_tx(&txid).expect("drop");
    assert_ne!(devnet.tx_state(&txid), TxState::Mempool, "dropped");
    // The next sync sees the new tip: the funder rebroadcasts its unconfirmed funding.
    sync_all(&[&phone, &lsp]).await;
    for _ in 0..50 {
        if devnet.tx_state(&txid) == TxState::Mempool {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        devnet.tx_state(&txid),
        TxState::Mempool,
        "funding rebroadcast"
    );
    mine_to_ready(&devnet, &phone, &lsp).await;
    phone.stop().await;
    lsp.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn funding_double_spent_fails_the_channel_and_the_coins_come_back() {
    let dir = temp_dir("double-spend");
    let devnet = Devnet::start().await.expect("devnet");
    let (phone, lsp, txid) = pending_open(&devnet, &dir).await;
    let before = phone.list_balances().await.expect("balances");
    assert!(
        before.confirmed.to_sat() + before.unconfirmed.to_sat() < 800_000,
        "the funding spends the coin: {before:?}"
    );

    // Another copy of the phone's wallet (same seed) spends the same coin elsewhere: the
    // funding leaves the devnet's mempool, the conflicting payment confirms.
    devnet.drop_mempool_tx(&txid).expect("drop");
    let keys = KeysManager::new(&[PHONE_SEED; 32], Network::Regtest).expect("keys");
    let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
    let (mut twin, _) =
        OnchainWallet::open(conn, &keys.wallet_descriptors(), Network::Regtest).expect("twin");
    let client = tern_core::chain::EsploraSource::new(&tern_core::chain::EsploraConfig::new(
        devnet.base_url(),
    ))
    .expect("client");
    twin.full_scan(&client, 20).await.expect("full scan");
    let pay_to = devnet.faucet_address();
    let conflict = twin
        .build_send(
            &pay_to,
            Amount::from_sat(300_000),
            FeeRate::from_sat_per_vb(2).expect("fee rate"),
            &[],
        )
        .expect("conflicting payment");
    let funding_inputs: Vec<_> = devnet
        .transaction(&txid)
        .expect("devnet saw the funding")
        .input
        .iter()
        .map(|i| i.previous_output)
        .collect();
    assert!(
        conflict
            .input
            .iter()
            .any(|i| funding_inputs.contains(&i.previous_output)),
        "the payment spends the funding's coin"
    );
    let conflict_txid = devnet.broadcast(&conflict).expect("conflict accepted");
    devnet.mine(1);
    sync_all(&[&phone, &lsp]).await;

    let c = channel_where(&phone, "funder failed", |c| c.state == ChannelState::Failed).await;
    assert!(
        c.status.contains("double-spent") && c.status.contains(&conflict_txid.to_string()),
        "{}",
        c.status
    );
    // The app hears of it.
    let mut heard = None;
    while let Some((seq, e)) = phone.next_event().await.expect("events") {
        phone.event_handled(seq).await.expect("handled");
        if let Event::ChannelOpenFailed { reason, .. } = e {
            heard = Some(reason);
        }
    }
    let heard = heard.expect("ChannelOpenFailed emitted");
    assert!(heard.contains("double-spent"), "{heard}");
    // The coins: nothing locked, and the phone's wallet agrees with an independent scan of the
    // same keys (the conflicting payment's change is the phone's).
    devnet.mine(1);
    sync_all(&[&phone, &lsp]).await;
    let b = phone.list_balances().await.expect("balances");
    let mut check = OnchainWallet::open(
        rusqlite::Connection::open_in_memory().expect("sqlite"),
        &keys.wallet_descriptors(),
        Network::Regtest,
    )
    .expect("check wallet")
    .0;
    check.full_scan(&client, 20).await.expect("full scan");
    let truth = check.balances(&[]);
    assert_eq!(b.locked.to_sat(), 0, "coin locks released");
    assert_eq!(
        b.confirmed.to_sat(),
        truth.confirmed.to_sat(),
        "phone: {b:?}, scan: {truth:?}"
    );
    assert!(truth.confirmed.to_sat() > 600_000 && truth.confirmed.to_sat() < 700_000);
    // The fundee was told (the funder's error): its half is failed, not left waiting. It never
    // saw the funding on chain, so it has nothing to broadcast and watches the funding until the
    // BOLT 2 timeout.
    let l = channel_where(&lsp, "fundee failed", |c| {
        c.state == ChannelState::FailedUnfunded
    })
    .await;
    assert!(
        l.status.contains("double-spent") && l.status.contains("nothing was committed"),
        "{}",
        l.status
    );
    phone.stop().await;
    lsp.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a sync that died half-way leaves on disk: the watcher's new state is written, the
/// chain event never reached the channel. Rewrites the stopped node's watcher state.
fn lose_chain_event(
    data_dir: &std::path::Path,
    devnet: &Devnet,
    change: impl FnOnce(&mut tern_core::chain::ChainState),
) {
    use tern_core::chain::{BlockRef, ChainState, CHAIN_STATE_KEY};
    let mut store = tern_core::store::Store::open(data_dir.join("tern.sqlite")).expect("store");
    let bytes = store
        .get_meta(CHAIN_STATE_KEY)
        .expect("meta")
        .expect("chain state");
    let mut state = ChainState::decode(&bytes).expect("decode");
    change(&mut state);
    let (height, hash) = devnet.tip();
    state.tip = Some(BlockRef { height, hash });
    store
        .put_meta(CHAIN_STATE_KEY, &state.encode())
        .expect("write");
}

#[tokio::test]
async fn a_reorg_the_watcher_saw_but_the_channel_missed_is_replayed_at_start() {
    let dir = temp_dir("lost-reorg");
    let devnet = Devnet::start().await.expect("devnet");
    let (phone, lsp, txid) = pending_open(&devnet, &dir).await;
    devnet.mine(1);
    sync_all(&[&phone, &lsp]).await;
    channel_where(&phone, "1 confirmation", |c| c.confirmations == 1).await;

    // The phone dies in the sync that saw the reorg, after the watcher saved it.
    phone.stop().await;
    drop(phone);
    devnet.reorg(1, 2).expect("reorg");
    lose_chain_event(&dir.join("phone"), &devnet, |s| {
        s.txs.get_mut(&txid).expect("funding watched").state =
            tern_core::chain::TxWatchState::Unconfirmed;
    });
    let phone = node(&devnet, &dir.join("phone"), PHONE_SEED, false).await;
    // Told at start, before any new block: back to 0 confirmations.
    channel_where(&phone, "reorg replayed", |c| {
        c.confirmations == 0 && c.state == ChannelState::AwaitingConfirmations
    })
    .await;
    sync_all(&[&phone, &lsp]).await;
    mine_to_ready(&devnet, &phone, &lsp).await;
    phone.stop().await;
    lsp.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_double_spend_the_watcher_saw_but_the_channel_missed_is_replayed_at_start() {
    let dir = temp_dir("lost-double-spend");
    let devnet = Devnet::start().await.expect("devnet");
    let (phone, lsp, txid) = pending_open(&devnet, &dir).await;
    phone.stop().await;
    drop(phone);
    let by = bitcoin::Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros());
    lose_chain_event(&dir.join("phone"), &devnet, |s| {
        s.txs.get_mut(&txid).expect("funding watched").state =
            tern_core::chain::TxWatchState::DoubleSpent { by };
    });
    let phone = node(&devnet, &dir.join("phone"), PHONE_SEED, false).await;
    let c = channel_where(&phone, "double spend replayed", |c| {
        c.state == ChannelState::Failed
    })
    .await;
    assert!(c.status.contains("double-spent"), "{}", c.status);
    phone.stop().await;
    lsp.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sync that planned its scripts before an address was handed out, but learned the tip after
/// a payment to it was mined, records that tip without the payment. The next sync must still
/// look at the new address even though the tip did not move.
#[tokio::test]
async fn an_address_handed_out_during_a_sync_is_queried_by_the_next_one() {
    let dir = temp_dir("fresh-address");
    let devnet = Devnet::start().await.expect("devnet");
    let phone = node(&devnet, &dir.join("phone"), PHONE_SEED, false).await;
    phone.sync(None).await.expect("first sync");
    // The next tip request answers after 700 ms, computed then.
    devnet.add_fault(tern_devnet::FaultRule {
        path: "/blocks/tip/hash".into(),
        method: None,
        kind: tern_devnet::FaultKind::LatencyMs(700),
        count: 1,
        port: None,
    });
    let slow = {
        let phone = phone.clone();
        tokio::spawn(async move { phone.sync(None).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let address = phone.new_address().await.expect("address");
    devnet
        .faucet(&address, Amount::from_sat(50_000))
        .expect("faucet");
    devnet.mine(1);
    let summary = slow.await.expect("join").expect("slow sync");
    assert_eq!(
        summary.tip_height,
        Some(devnet.tip().0),
        "it saw the new tip"
    );
    // No new block from here on.
    phone.sync(None).await.expect("sync");
    assert_eq!(
        phone
            .list_balances()
            .await
            .expect("balances")
            .confirmed
            .to_sat(),
        50_000,
        "the payment to the fresh address is seen without waiting for another block"
    );
    phone.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
