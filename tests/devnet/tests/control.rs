//! The `/devnet/` control API: reorgs, faults, request counts, fee estimates, persistence.

mod common;

use bitcoin::{Amount, Sequence};
use common::{fund, out, spend, Key};
use esplora_client::{AsyncClient, Builder};
use serde_json::{json, Value};
use tern_devnet::{Devnet, DevnetConfig, FaultKind, FaultRule, TxState};

async fn post(devnet: &Devnet, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", devnet.base_url()))
        .json(&body)
        .send()
        .await
        .expect("post");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("text");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn reorg_unconfirms_and_stale_blocks_still_answer() {
    let devnet = Devnet::start().await.expect("devnet");
    let c: AsyncClient =
        AsyncClient::from_builder(Builder::new(&devnet.base_url())).expect("client");
    let alice = Key::new("alice");
    let txid = devnet
        .faucet(&alice.address(), Amount::from_sat(50_000))
        .expect("faucet");
    let (_, mined) = post(&devnet, "/devnet/mine", json!({"blocks": 1})).await;
    let old: bitcoin::BlockHash = mined["hashes"][0]
        .as_str()
        .expect("hash")
        .parse()
        .expect("hash");
    assert_eq!(
        c.get_tx_status(&txid).await.expect("status").block_hash,
        Some(old)
    );
    let height = devnet.tip().0;

    let (status, outcome) = post(
        &devnet,
        "/devnet/reorg",
        json!({"depth": 1, "new_blocks": 2}),
    )
    .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["disconnected"], json!([old.to_string()]));
    assert_eq!(outcome["hashes"].as_array().map(Vec::len), Some(2));
    assert_eq!(outcome["returned_to_mempool"], json!([txid.to_string()]));
    assert_eq!(devnet.tip().0, height + 1);

    let stale = c
        .get_block_status(&old)
        .await
        .expect("stale blocks still answer");
    assert!(!stale.in_best_chain);
    assert_eq!(stale.next_best, None);
    assert!(!c.get_tx_status(&txid).await.expect("status").confirmed);
    assert_eq!(devnet.tx_state(&txid), TxState::Mempool);
    assert_ne!(c.get_block_hash(height).await.expect("hash"), old);

    devnet.mine(1);
    let status = c.get_tx_status(&txid).await.expect("status");
    assert!(status.confirmed);
    assert_eq!(status.block_height, Some(height + 2));

    let (status, body) = post(
        &devnet,
        "/devnet/reorg",
        json!({"depth": 100000, "new_blocks": 1}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn reorg_drops_transactions_that_are_no_longer_valid() {
    let devnet = Devnet::start().await.expect("devnet");
    let alice = Key::new("alice");
    // A coinbase paid to alice 100 blocks ago, spent as soon as it matured, then reorged out.
    devnet.mine_to(1, &alice.address());
    let cb = devnet
        .transaction(&common::tip_coinbase_txid(&devnet).await)
        .expect("coinbase");
    devnet.mine(99);
    let coin = common::Coin {
        outpoint: bitcoin::OutPoint::new(cb.compute_txid(), 0),
        txout: cb.output[0].clone(),
    };
    let tx = spend(
        &[coin],
        vec![out(alice.script(), 100_000)],
        Sequence::MAX,
        &alice,
        &alice,
    );
    devnet.broadcast(&tx).expect("mature");
    devnet.mine(1);
    let outcome = devnet.reorg(2, 0).expect("reorg");
    assert!(outcome.returned_to_mempool.is_empty());
    assert_eq!(outcome.dropped.len(), 1);
    assert!(
        outcome.dropped[0].1.contains("premature-spend-of-coinbase"),
        "{:?}",
        outcome.dropped
    );
    assert_eq!(devnet.tx_state(&tx.compute_txid()), TxState::Unknown);
}

#[tokio::test]
async fn faults_happen_exactly_as_configured_then_stop() {
    let devnet = Devnet::start().await.expect("devnet");
    let url = devnet.base_url();
    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        let http = http.clone();
        let url = url.clone();
        async move {
            http.get(format!("{url}{path}"))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    };
    let (status, rules) = post(
        &devnet,
        "/devnet/faults",
        json!([
            {"path": "/blocks/tip/hash", "kind": {"status": 500}, "count": 2},
            {"path": "/fee-estimates", "method": "GET", "kind": {"status": 429}, "count": 1},
            {"path": "/block-height/*", "kind": "drop", "count": 1}
        ]),
    )
    .await;
    assert_eq!(status, 200, "{rules}");
    assert_eq!(rules.as_array().map(Vec::len), Some(3));
    assert_eq!(get("/blocks/tip/hash").await.expect("answer"), 500);
    assert_eq!(
        get("/blocks/tip/height").await.expect("answer"),
        200,
        "other paths unaffected"
    );
    assert_eq!(get("/blocks/tip/hash").await.expect("answer"), 500);
    assert_eq!(
        get("/blocks/tip/hash").await.expect("answer"),
        200,
        "count exhausted"
    );
    assert_eq!(get("/fee-estimates").await.expect("answer"), 429);
    assert_eq!(get("/fee-estimates").await.expect("answer"), 200);
    assert!(
        get("/block-height/1").await.is_err(),
        "connection dropped without an answer"
    );
    assert_eq!(get("/block-height/1").await.expect("answer"), 200);

    // esplora-client retries 500/429 on its own: two faults cost it three requests.
    devnet.reset_requests();
    devnet.add_fault(FaultRule {
        path: "/blocks/tip/hash".into(),
        method: None,
        kind: FaultKind::Status(500),
        count: 2,
        port: None,
    });
    let c: AsyncClient = AsyncClient::from_builder(Builder::new(&url)).expect("client");
    assert_eq!(c.get_tip_hash().await.expect("retried"), devnet.tip().1);
    let counts = devnet.requests();
    assert_eq!(counts.route("GET /blocks/tip/hash"), 3);
    assert_eq!(counts.total, 3);

    // Latency: the answer still comes, later.
    devnet.add_fault(FaultRule {
        path: "*".into(),
        method: None,
        kind: FaultKind::LatencyMs(200),
        count: 1,
        port: None,
    });
    let started = std::time::Instant::now();
    assert_eq!(get("/blocks/tip/height").await.expect("answer"), 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    let (_, remaining) = reqwest::get(format!("{url}/devnet/faults"))
        .await
        .expect("get")
        .json::<Value>()
        .await
        .map(|v| ((), v))
        .expect("json");
    assert_eq!(remaining, json!([]));
}

#[tokio::test]
async fn request_counts_and_fee_estimates() {
    let devnet = Devnet::start().await.expect("devnet");
    let c: AsyncClient =
        AsyncClient::from_builder(Builder::new(&devnet.base_url())).expect("client");
    c.get_tip_hash().await.expect("tip");
    c.get_tip_hash().await.expect("tip");
    let alice = Key::new("alice");
    c.scripthash_txs(&alice.script(), None).await.expect("txs");
    c.scripthash_txs(&Key::new("bob").script(), None)
        .await
        .expect("txs");
    let counts: Value = reqwest::get(format!("{}/devnet/requests", devnet.base_url()))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        counts["total"],
        json!(4),
        "control calls are not counted: {counts}"
    );
    assert_eq!(counts["by_route"]["GET /blocks/tip/hash"], json!(2));
    assert_eq!(counts["by_route"]["GET /scripthash/:hash/txs"], json!(2));
    // Two 64-hex tip hashes and two empty histories ("[]").
    assert_eq!(counts["bytes"], json!(2 * 64 + 2 * 2));
    let (status, _) = post(&devnet, "/devnet/requests/reset", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(devnet.requests().total, 0);

    let (status, set) = post(
        &devnet,
        "/devnet/fee-estimates",
        json!({"1": 50.5, "6": 12.0}),
    )
    .await;
    assert_eq!(status, 200, "{set}");
    let fees = c.get_fee_estimates().await.expect("fees");
    assert_eq!(fees.len(), 2);
    assert_eq!(fees.get(&1), Some(&50.5));
    let (status, body) = post(&devnet, "/devnet/fee-estimates", json!({"soon": 5.0})).await;
    assert_eq!(status, 400, "{body}");

    // drop-mempool-tx removes the tx and its descendants.
    let coin = fund(&devnet, &alice, Amount::from_sat(100_000));
    let parent = spend(
        &[coin],
        vec![out(alice.script(), 99_000)],
        Sequence::MAX,
        &alice,
        &alice,
    );
    devnet.broadcast(&parent).expect("parent");
    let child_coin = common::coin_of(&devnet, parent.compute_txid(), &alice.script());
    let child = spend(
        &[child_coin],
        vec![out(alice.script(), 98_000)],
        Sequence::MAX,
        &alice,
        &alice,
    );
    devnet
        .broadcast(&child)
        .expect("unconfirmed chains are allowed");
    let (status, dropped) = post(
        &devnet,
        "/devnet/drop-mempool-tx",
        json!({"txid": parent.compute_txid()}),
    )
    .await;
    assert_eq!(status, 200, "{dropped}");
    assert_eq!(dropped["dropped"].as_array().map(Vec::len), Some(2));
    assert_eq!(devnet.tx_state(&child.compute_txid()), TxState::Unknown);
    let (status, _) = post(
        &devnet,
        "/devnet/drop-mempool-tx",
        json!({"txid": parent.compute_txid()}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = post(
        &devnet,
        "/devnet/faucet",
        json!({"address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "amount_sat": 1000}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_devnet_with_a_data_dir_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("tern-devnet-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = DevnetConfig {
        data_dir: Some(dir.clone()),
        ..DevnetConfig::default()
    };
    let alice = Key::new("alice");
    let (tip, confirmed, pending, stale) = {
        let devnet = Devnet::start_with(config.clone()).await.expect("devnet");
        let confirmed = devnet
            .faucet(&alice.address(), Amount::from_sat(10_000))
            .expect("faucet");
        let stale = devnet.mine(2)[1];
        devnet.reorg(1, 2).expect("reorg");
        let pending = devnet
            .faucet(&alice.address(), Amount::from_sat(20_000))
            .expect("faucet");
        (devnet.tip(), confirmed, pending, stale)
    };
    let devnet = Devnet::start_with(config).await.expect("restarted devnet");
    assert_eq!(devnet.tip(), tip);
    assert!(matches!(
        devnet.tx_state(&confirmed),
        TxState::Confirmed { .. }
    ));
    assert_eq!(devnet.tx_state(&pending), TxState::Mempool);
    let c: AsyncClient =
        AsyncClient::from_builder(Builder::new(&devnet.base_url())).expect("client");
    assert!(
        !c.get_block_status(&stale)
            .await
            .expect("stale block kept")
            .in_best_chain
    );
    drop(devnet);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET /devnet/posted` (and [`Devnet::posted`]) lists what came through `POST /tx`, in order,
/// accepted or refused; in-process broadcasts and control calls are not listed; the reset of
/// the request counts forgets them too.
#[tokio::test]
async fn posted_transactions_are_listed_in_order() {
    let devnet = Devnet::start().await.expect("devnet");
    let c: AsyncClient =
        AsyncClient::from_builder(Builder::new(&devnet.base_url())).expect("client");
    let alice = Key::new("alice");
    let coin = fund(&devnet, &alice, Amount::from_sat(100_000));
    let pay = |sat| {
        spend(
            std::slice::from_ref(&coin),
            vec![out(alice.script(), sat)],
            Sequence::MAX,
            &alice,
            &alice,
        )
    };
    let (first, conflict, in_process) = (pay(99_000), pay(98_000), pay(97_000));
    assert!(devnet.posted().is_empty(), "{:?}", devnet.posted());
    c.broadcast(&first).await.expect("accepted");
    // The same again is "already known": accepted. A conflict without RBF is refused.
    c.broadcast(&first).await.expect("already known");
    assert!(c.broadcast(&conflict).await.is_err());
    // Not through POST /tx: not listed.
    assert!(devnet.broadcast(&in_process).is_err());
    let posted = devnet.posted();
    let txids: Vec<_> = posted.iter().map(|p| (p.txid, p.accepted)).collect();
    assert_eq!(
        txids,
        [
            (first.compute_txid(), true),
            (first.compute_txid(), true),
            (conflict.compute_txid(), false)
        ]
    );
    assert!(posted[2].refused.is_some(), "{posted:?}");
    assert_eq!(
        devnet.posted_txids(),
        [
            first.compute_txid(),
            first.compute_txid(),
            conflict.compute_txid()
        ]
    );
    let listed: Value = reqwest::get(format!("{}/devnet/posted", devnet.base_url()))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(listed, serde_json::to_value(&posted).expect("json"));
    assert_eq!(listed[0]["txid"], json!(first.compute_txid().to_string()));
    // The listing is a control call: not counted.
    assert_eq!(devnet.requests().route("POST /tx"), 3);
    assert_eq!(devnet.requests().total, 3);
    let (status, _) = post(&devnet, "/devnet/requests/reset", json!({})).await;
    assert_eq!(status, 200);
    assert!(devnet.posted().is_empty());
}
