//! Chain watching and the on-chain wallet against the devnet: funding tx to a 2-of-2, depth,
//! reorg, double spend, Esplora faults, restart, and the request budgets of issue 5.

// This binary's TRACE log file, for the log-secret check (see common/trace.rs).
#[path = "common/trace.rs"]
mod trace;

use std::time::{SystemTime, UNIX_EPOCH};

use bdk_wallet::rusqlite::Connection;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::{Amount, Network, OutPoint};
use tern_core::chain::{
    sync, ChainError, ChainEvent, ChainSource, ChainState, EsploraConfig, EsploraSource,
    OutpointWatch, SyncOutcome, SyncPlanner, TxWatchState,
};
use tern_core::chain::{FeeCache, FeeTarget};
use tern_core::proto::bolt3::funding_script_pubkey;
use tern_core::proto::keys::KeysManager;
use tern_core::wallet::OnchainWallet;
use tern_devnet::{Devnet, FaultKind, FaultRule};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn source(devnet: &Devnet) -> EsploraSource {
    EsploraSource::new(&EsploraConfig::new(devnet.base_url())).expect("client")
}

fn wallet(seed: u8, conn: Connection) -> (OnchainWallet, bool) {
    let keys = KeysManager::new(&[seed; 32], Network::Regtest).expect("keys");
    OnchainWallet::open(conn, &keys.wallet_descriptors(), Network::Regtest).expect("wallet")
}

fn pubkey(i: u8) -> PublicKey {
    PublicKey::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&[i; 32]).expect("key"),
    )
}

/// One sync of chain state and wallet together, as the node will do it.
async fn sync_all(src: &EsploraSource, state: &ChainState, w: &mut OnchainWallet) -> SyncOutcome {
    let out = sync(
        src,
        SyncPlanner::new(state.clone(), w.scripts_to_query()),
        None,
    )
    .await
    .expect("sync");
    w.apply_sync(&out.scripts, &out.events, out.state.tip, now())
        .expect("apply");
    out
}

#[tokio::test]
async fn funding_tx_depth_reorg_and_double_spend() {
    let devnet = Devnet::start().await.expect("devnet");
    let src = source(&devnet);
    let (mut w, created) = wallet(1, Connection::open_in_memory().expect("db"));
    assert!(created);
    let address = w.new_address().expect("address");
    devnet
        .faucet(&address, Amount::from_sat(1_000_000))
        .expect("faucet");
    let mut state = ChainState::default();
    let out = sync_all(&src, &state, &mut w).await;
    state = out.state;
    assert_eq!(w.balances(&[]).unconfirmed.to_sat(), 1_000_000);
    devnet.mine(1);
    state = sync_all(&src, &state, &mut w).await.state;
    assert_eq!(w.balances(&[]).confirmed.to_sat(), 1_000_000);

    // A funding transaction paying exactly 500k to a 2-of-2.
    let script = funding_script_pubkey(&pubkey(1), &pubkey(2));
    let fee = FeeCache::default().fee_rate(FeeTarget::Normal);
    let funding = w
        .build_funding_tx(script.clone(), Amount::from_sat(500_000), fee, &[])
        .expect("build");
    let txid = funding.compute_txid();
    let vout = funding
        .output
        .iter()
        .position(|o| o.script_pubkey == script)
        .expect("pays the 2-of-2");
    assert_eq!(funding.output[vout].value, Amount::from_sat(500_000));
    src.broadcast(funding.clone())
        .await
        .expect("devnet accepts the funding tx");
    w.record_broadcast(&funding, now()).expect("record");
    state.watch_tx(
        txid,
        funding.input.iter().map(|i| i.previous_output).collect(),
    );

    let first = devnet.mine(1)[0];
    let out = sync_all(&src, &state, &mut w).await;
    assert!(out.events.iter().any(|e| matches!(e, ChainEvent::TxConfirmed { txid: t, confirmation, .. } if *t == txid && confirmation.block_hash == first)));
    state = out.state;
    devnet.mine(2);
    let out = sync_all(&src, &state, &mut w).await;
    assert!(out.events.contains(&ChainEvent::TxDepth { txid, depth: 3 }));
    state = out.state;
    assert_eq!(state.depth(&txid), 3);

    // Reorged out: unconfirmed; then confirmed again in the new chain.
    devnet.reorg(3, 4).expect("reorg");
    let out = sync_all(&src, &state, &mut w).await;
    assert!(
        out.events.contains(&ChainEvent::TxUnconfirmed { txid }),
        "{:?}",
        out.events
    );
    assert!(out
        .events
        .iter()
        .any(|e| matches!(e, ChainEvent::NewTip { reorg: true, .. })));
    state = out.state;
    assert_eq!(state.txs[&txid].state, TxWatchState::Unconfirmed);
    w.resync(&src).await.expect("wallet resync after reorg");
    let second = devnet.mine(1)[0];
    let out = sync_all(&src, &state, &mut w).await;
    assert!(out.events.iter().any(|e| matches!(e, ChainEvent::TxConfirmed { confirmation, .. } if confirmation.block_hash == second)));
    state = out.state;
    assert_ne!(first, second);

    // Double-spent from the mempool: a fee bump of the wallet's own funding tx replaces it.
    let script2 = funding_script_pubkey(&pubkey(3), &pubkey(4));
    let funding2 = w
        .build_funding_tx(script2, Amount::from_sat(100_000), fee, &[])
        .expect("build");
    src.broadcast(funding2.clone()).await.expect("broadcast");
    w.record_broadcast(&funding2, now()).expect("record");
    state.watch_tx(
        funding2.compute_txid(),
        funding2.input.iter().map(|i| i.previous_output).collect(),
    );
    let bumped = w
        .build_fee_bump(
            funding2.compute_txid(),
            bitcoin::FeeRate::from_sat_per_vb(20).expect("rate"),
        )
        .expect("bump");
    src.broadcast(bumped.clone())
        .await
        .expect("replacement accepted");
    w.record_broadcast(&bumped, now()).expect("record");
    devnet.mine(1);
    let out = sync_all(&src, &state, &mut w).await;
    assert!(
        out.events.contains(&ChainEvent::TxDoubleSpent {
            txid: funding2.compute_txid(),
            by: bumped.compute_txid()
        }),
        "{:?}",
        out.events
    );
}

#[tokio::test]
async fn faults_give_typed_errors_and_the_next_sync_succeeds() {
    let devnet = Devnet::start().await.expect("devnet");
    let src = source(&devnet);
    let state = sync(&src, SyncPlanner::new(ChainState::default(), vec![]), None)
        .await
        .expect("sync")
        .state;
    devnet.mine(1);
    let cases = [
        (FaultKind::Status(500), 3u64),
        (FaultKind::Status(429), 3),
        (FaultKind::Drop, 1),
    ];
    for (kind, attempts) in cases {
        devnet.reset_requests();
        devnet.add_fault(FaultRule {
            path: "/blocks/tip/hash".into(),
            method: None,
            kind: kind.clone(),
            count: attempts as u32,
            port: None,
        });
        let before = state.encode();
        let err = sync(&src, SyncPlanner::new(state.clone(), vec![]), None)
            .await
            .expect_err("fault");
        match (&kind, &err) {
            (FaultKind::Status(s), ChainError::Http { status, .. }) => assert_eq!(s, status),
            (FaultKind::Drop, ChainError::Transport { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
        // Bounded retries: one attempt plus max_retries (2) for 5xx/429, none for a drop.
        assert_eq!(devnet.requests().total, attempts, "{kind:?}");
        assert_eq!(state.encode(), before, "the caller's state is untouched");
        let out = sync(&src, SyncPlanner::new(state.clone(), vec![]), None)
            .await
            .expect("next sync succeeds");
        assert_eq!(out.state.tip.map(|t| t.hash), Some(devnet.tip().1));
    }
    // A server slower than the timeout.
    let slow = EsploraSource::new(&EsploraConfig {
        timeout: std::time::Duration::from_secs(1),
        ..EsploraConfig::new(devnet.base_url())
    })
    .expect("client");
    devnet.add_fault(FaultRule {
        path: "*".into(),
        method: None,
        kind: FaultKind::LatencyMs(1_500),
        count: 1,
        port: None,
    });
    let err = sync(&slow, SyncPlanner::new(state.clone(), vec![]), None)
        .await
        .expect_err("timeout");
    assert!(matches!(err, ChainError::Transport { .. }), "{err:?}");
    // And the sync's own deadline.
    devnet.add_fault(FaultRule {
        path: "*".into(),
        method: None,
        kind: FaultKind::LatencyMs(500),
        count: 1,
        port: None,
    });
    let err = sync(
        &src,
        SyncPlanner::new(state.clone(), vec![]),
        Some(std::time::Duration::from_millis(100)),
    )
    .await
    .expect_err("deadline");
    assert_eq!(err, ChainError::Deadline);
}

/// The request budgets: a fresh process with nothing changed, one new block with 10 channels,
/// one new block with 100 historical wallet txs and one address handed out.
#[tokio::test]
async fn request_budgets() {
    let devnet = Devnet::start().await.expect("devnet");
    let dir = std::env::temp_dir().join(format!("tern-chain-budget-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("wallet.sqlite");
    let src = source(&devnet);
    let (mut w, _) = wallet(2, Connection::open(&db).expect("db"));

    // 100 historical payments, each to its own handed-out address.
    for _ in 0..100 {
        let a = w.new_address().expect("address");
        devnet.faucet(&a, Amount::from_sat(20_000)).expect("faucet");
    }
    devnet.mine(1);
    let mut state = ChainState::default();
    // Ten ready channels' funding outpoints (real outpoints of the chain).
    let mut channels = Vec::new();
    for i in 0..10u8 {
        let a = bitcoin::Address::p2wsh(
            &funding_script_pubkey(&pubkey(10 + i), &pubkey(20 + i)),
            Network::Regtest,
        );
        let txid = devnet
            .faucet(&a, Amount::from_sat(200_000))
            .expect("faucet");
        channels.push(OutPoint::new(txid, 0));
    }
    devnet.mine(1);
    for op in &channels {
        state.watch_outpoint(*op, 144);
    }
    let out = sync_all(&src, &state, &mut w).await;
    state = out.state;
    assert_eq!(w.list_transactions().len(), 100);
    assert!(
        w.scripts_to_query().is_empty(),
        "paid addresses are not queried again"
    );
    let _handed_out = w.new_address().expect("address");
    let saved = state.encode();
    drop(w);

    // Fresh process, nothing changed: exactly one request, chain and wallet together.
    let (mut w, created) = wallet(2, Connection::open(&db).expect("db"));
    assert!(!created);
    let state = ChainState::decode(&saved).expect("decode");
    let src = source(&devnet);
    devnet.reset_requests();
    let out = sync_all(&src, &state, &mut w).await;
    let counts = devnet.requests();
    assert_eq!(
        (counts.total, counts.route("GET /blocks/tip/hash")),
        (1, 1),
        "{counts:?}"
    );
    assert_eq!(out.state, state);

    // One new block: tip + header + the one handed-out address + the channels due now.
    let mut state = out.state;
    let interval = 144 / 4;
    let mut checked = std::collections::BTreeMap::new();
    for _ in 0..interval {
        let from = state.tip.expect("synced").height;
        devnet.mine(1);
        devnet.reset_requests();
        let out = sync_all(&src, &state, &mut w).await;
        let due = channels
            .iter()
            .filter(|op| OutpointWatch::due(op, interval, from, from + 1))
            .count() as u64;
        let counts = devnet.requests();
        assert_eq!(counts.total, 3 + due, "{counts:?}");
        assert_eq!(counts.route("GET /scripthash/:hash/txs"), 1);
        for op in &channels {
            if OutpointWatch::due(op, interval, from, from + 1) {
                *checked.entry(*op).or_insert(0) += 1;
            }
        }
        state = out.state;
    }
    assert!(
        channels.iter().all(|op| checked.get(op) == Some(&1)),
        "each channel once per {interval} blocks"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A new process on the same database resumes every watch and the wallet without a rescan.
#[tokio::test]
async fn restart_resumes_watches_from_the_store() {
    use tern_core::chain::ChainWatcher;
    use tern_core::store::Store;
    let devnet = Devnet::start().await.expect("devnet");
    let dir = std::env::temp_dir().join(format!("tern-chain-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("tern.sqlite");
    let funding_txid = {
        let mut store = Store::open(&path).expect("store");
        let (mut w, created) = wallet(3, store.open_connection().expect("conn"));
        assert!(created);
        let mut watcher = ChainWatcher::load(&store, source(&devnet)).expect("watcher");
        let a = w.new_address().expect("address");
        let txid = devnet
            .faucet(&a, Amount::from_sat(300_000))
            .expect("faucet");
        watcher.watch_tx(&mut store, txid, vec![]).expect("watch");
        watcher
            .watch_outpoint(&mut store, OutPoint::new(txid, 0), 144)
            .expect("watch");
        devnet.mine(1);
        let out = watcher
            .sync(&mut store, w.scripts_to_query(), None)
            .await
            .expect("sync");
        w.apply_sync(&out.scripts, &out.events, out.state.tip, now())
            .expect("apply");
        assert_eq!(w.balances(&[]).confirmed.to_sat(), 300_000);
        txid
        // Dropped without any shutdown: what was persisted is all there is.
    };
    let mut store = Store::open(&path).expect("reopen");
    let (mut w, created) = wallet(3, store.open_connection().expect("conn"));
    assert!(!created, "the wallet is loaded, not recreated");
    assert_eq!(w.balances(&[]).confirmed.to_sat(), 300_000);
    let mut watcher = ChainWatcher::load(&store, source(&devnet)).expect("watcher");
    assert!(matches!(
        watcher.state().txs[&funding_txid].state,
        TxWatchState::Confirmed(_)
    ));
    devnet.reset_requests();
    let out = watcher
        .sync(&mut store, w.scripts_to_query(), None)
        .await
        .expect("sync");
    assert_eq!(devnet.requests().total, 1, "no rescan");
    assert!(out.events.is_empty());
    devnet.mine(2);
    let out = watcher
        .sync(&mut store, w.scripts_to_query(), None)
        .await
        .expect("sync");
    w.apply_sync(&out.scripts, &out.events, out.state.tip, now())
        .expect("apply");
    assert!(out.events.contains(&ChainEvent::TxDepth {
        txid: funding_txid,
        depth: 3
    }));
    drop(watcher);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Coins chosen for an open stay locked (persisted) until it completes or is abandoned.
#[tokio::test]
async fn coin_locks_keep_funding_inputs_reserved() {
    use tern_core::store::Store;
    let devnet = Devnet::start().await.expect("devnet");
    let src = source(&devnet);
    let mut store = Store::open_in_memory().expect("store");
    let (mut w, _) = wallet(4, Connection::open_in_memory().expect("db"));
    for _ in 0..2 {
        let a = w.new_address().expect("address");
        devnet
            .faucet(&a, Amount::from_sat(400_000))
            .expect("faucet");
    }
    devnet.mine(1);
    sync_all(&src, &ChainState::default(), &mut w).await;
    let fee = FeeCache::default().fee_rate(FeeTarget::Normal);
    let script = funding_script_pubkey(&pubkey(1), &pubkey(2));
    let first = w
        .build_funding_tx(script.clone(), Amount::from_sat(300_000), fee, &[])
        .expect("build");
    let inputs: Vec<OutPoint> = first.input.iter().map(|i| i.previous_output).collect();
    store.lock_coins(&inputs, None, now()).expect("lock");
    let locked = store.locked_coins().expect("locked");
    assert_eq!(w.balances(&locked).locked.to_sat(), 400_000);
    assert_eq!(w.balances(&locked).confirmed.to_sat(), 400_000);
    let second = w
        .build_funding_tx(script.clone(), Amount::from_sat(300_000), fee, &locked)
        .expect("build");
    assert!(
        second
            .input
            .iter()
            .all(|i| !inputs.contains(&i.previous_output)),
        "locked coins are not reused"
    );
    let err = w.build_funding_tx(
        script.clone(),
        Amount::from_sat(300_000),
        fee,
        &[
            locked.clone(),
            second.input.iter().map(|i| i.previous_output).collect(),
        ]
        .concat(),
    );
    assert!(
        matches!(
            err,
            Err(tern_core::wallet::WalletError::InsufficientFunds { .. })
        ),
        "{err:?}"
    );
    // The first open is abandoned: its coins come back.
    w.abandon(&first).expect("abandon");
    for op in &inputs {
        store.unlock_coin(op).expect("unlock");
    }
    assert!(store.locked_coins().expect("locked").is_empty());
    assert_eq!(w.balances(&[]).locked.to_sat(), 0);
}

/// Send to an address, see the payment dropped from the mempool, rebroadcast it; fee
/// estimates come from a cache refreshed only when stale, and a failed refresh keeps them.
#[tokio::test]
async fn send_rebroadcast_and_fee_cache() {
    use tern_core::chain::ChainWatcher;
    use tern_core::store::Store;
    let devnet = Devnet::start().await.expect("devnet");
    let mut store = Store::open_in_memory().expect("store");
    let mut watcher = ChainWatcher::load(&store, source(&devnet)).expect("watcher");
    let (mut w, _) = wallet(5, Connection::open_in_memory().expect("db"));
    let a = w.new_address().expect("address");
    devnet
        .faucet(&a, Amount::from_sat(500_000))
        .expect("faucet");
    devnet.mine(1);
    let out = watcher
        .sync(&mut store, w.scripts_to_query(), None)
        .await
        .expect("sync");
    w.apply_sync(&out.scripts, &out.events, out.state.tip, now())
        .expect("apply");

    // Fees: fetched once, then served from the cache.
    devnet.reset_requests();
    let (fees, err) = watcher.refresh_fees(&mut store, now(), 600).await;
    assert!(err.is_none());
    assert_eq!(devnet.requests().route("GET /fee-estimates"), 1);
    let (again, _) = watcher.refresh_fees(&mut store, now() + 10, 600).await;
    assert_eq!((again, devnet.requests().total), (fees.clone(), 1));
    devnet.add_fault(FaultRule {
        path: "/fee-estimates".into(),
        method: None,
        kind: FaultKind::Status(500),
        count: 3,
        port: None,
    });
    let (kept, err) = watcher.refresh_fees(&mut store, now() + 10_000, 600).await;
    assert!(err.is_some());
    assert_eq!(kept, fees, "a failed refresh keeps the cached figures");
    assert_eq!(
        ChainWatcher::<EsploraSource>::fee_cache(&store).expect("cache"),
        fees
    );

    let bad = w.parse_address("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq");
    assert!(
        matches!(
            &bad,
            Err(tern_core::wallet::WalletError::WrongNetwork { address_network, ours, .. })
                if address_network == "bitcoin" && *ours == Network::Regtest
        ),
        "{bad:?}"
    );
    assert!(matches!(
        w.parse_address("bc1qnotanaddress"),
        Err(tern_core::wallet::WalletError::InvalidAddress { .. })
    ));
    let to = w
        .parse_address(
            &bitcoin::Address::p2wsh(
                &funding_script_pubkey(&pubkey(7), &pubkey(8)),
                Network::Regtest,
            )
            .to_string(),
        )
        .expect("regtest address");
    let pay = w
        .build_send(
            &to,
            Amount::from_sat(100_000),
            fees.fee_rate(FeeTarget::Normal),
            &[],
        )
        .expect("send");
    let txid = pay.compute_txid();
    watcher
        .source()
        .broadcast(pay.clone())
        .await
        .expect("broadcast");
    w.record_broadcast(&pay, now()).expect("record");
    watcher
        .watch_tx(
            &mut store,
            txid,
            pay.input.iter().map(|i| i.previous_output).collect(),
        )
        .expect("watch");
    assert_eq!(w.unconfirmed_txs().len(), 1);

    // The mempool forgets it; the watcher says so at the next block; a rebroadcast brings it back.
    assert_eq!(
        devnet.drop_mempool_tx(&txid).expect("in the mempool"),
        vec![txid]
    );
    devnet.mine(1);
    let out = watcher
        .sync(&mut store, w.scripts_to_query(), None)
        .await
        .expect("sync");
    assert!(
        out.events.contains(&ChainEvent::TxGone { txid }),
        "{:?}",
        out.events
    );
    let txs: Vec<bitcoin::Transaction> =
        w.unconfirmed_txs().iter().map(|t| (**t).clone()).collect();
    assert!(watcher.rebroadcast(&txs).await.is_empty());
    devnet.mine(1);
    let out = watcher
        .sync(&mut store, w.scripts_to_query(), None)
        .await
        .expect("sync");
    w.apply_sync(&out.scripts, &out.events, out.state.tip, now())
        .expect("apply");
    assert!(out
        .events
        .iter()
        .any(|e| matches!(e, ChainEvent::TxConfirmed { txid: t, .. } if *t == txid)));
    assert!(w.unconfirmed_txs().is_empty());
    let left = w.balances(&[]).confirmed.to_sat();
    assert!(
        (395_000..400_000).contains(&left),
        "500k - 100k - fee, got {left}"
    );
}

/// A sync that asks for a transaction the wallet recorded but the server does not know yet
/// (recorded before its broadcast, as a funding is) evicts it from the wallet; when it later
/// confirms, the wallet must take it back, or the coins it spent look unspent forever.
#[tokio::test]
async fn a_transaction_evicted_before_its_broadcast_landed_comes_back_when_it_confirms() {
    use tern_core::chain::ChainWatcher;
    use tern_core::store::Store;
    let devnet = Devnet::start().await.expect("devnet");
    let mut store = Store::open_in_memory().expect("store");
    let mut watcher = ChainWatcher::load(&store, source(&devnet)).expect("watcher");
    let (mut w, _) = wallet(6, Connection::open_in_memory().expect("db"));
    let a = w.new_address().expect("address");
    devnet
        .faucet(&a, Amount::from_sat(500_000))
        .expect("faucet");
    devnet.mine(1);
    let out = watcher
        .sync(&mut store, w.scripts_to_query(), None)
        .await
        .expect("sync");
    w.apply_sync(&out.scripts, &out.events, out.state.tip, now())
        .expect("apply");
    let to = w
        .parse_address(
            &bitcoin::Address::p2wsh(
                &funding_script_pubkey(&pubkey(7), &pubkey(8)),
                Network::Regtest,
            )
            .to_string(),
        )
        .expect("address");
    let pay = w
        .build_send(
            &to,
            Amount::from_sat(100_000),
            bitcoin::FeeRate::from_sat_per_vb(2).expect("rate"),
            &[],
        )
        .expect("send");
    let txid = pay.compute_txid();
    // Recorded and watched, not yet broadcast: the next sync finds it gone and the wallet
    // evicts it (in the same second as it was recorded).
    let t = now();
    w.record_broadcast(&pay, t).expect("record");
    watcher
        .watch_tx(
            &mut store,
            txid,
            pay.input.iter().map(|i| i.previous_output).collect(),
        )
        .expect("watch");
    devnet.mine(1);
    let out = watcher
        .sync(&mut store, w.scripts_to_query(), None)
        .await
        .expect("sync");
    assert!(
        out.events.contains(&ChainEvent::TxGone { txid }),
        "{:?}",
        out.events
    );
    w.apply_sync(&out.scripts, &out.events, out.state.tip, t)
        .expect("apply");
    assert_eq!(w.balances(&[]).confirmed.to_sat(), 500_000, "evicted");

    // The broadcast lands and confirms. Only the watch reports it (no script of the wallet is
    // asked here, as when the change script was already paid): the confirmation alone must
    // bring the transaction back.
    devnet.broadcast(&pay).expect("broadcast");
    devnet.mine(1);
    let out = watcher
        .sync(&mut store, Vec::new(), None)
        .await
        .expect("sync");
    assert!(out
        .events
        .iter()
        .any(|e| matches!(e, ChainEvent::TxConfirmed { txid: t, .. } if *t == txid)));
    w.apply_sync(&out.scripts, &out.events, out.state.tip, t)
        .expect("apply");
    let left = w.balances(&[]).confirmed.to_sat();
    assert!(
        (395_000..400_000).contains(&left),
        "500k - 100k - fee once it confirmed, got {left}"
    );
}
