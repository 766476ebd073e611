//! A node against a failing or lying Esplora server (issue 17 §2), through real HTTP: the
//! node's syncs never ask a failing server faster than the backoff allows (an injected clock,
//! so N sync attempts are counted without sleeping), its counters see every request and
//! response byte, and a lie fails the sync with the lie named and leaves the database
//! byte for byte as it was; the next honest sync recovers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::Network;
use tern_core::chain::{ChainError, ChainSource, EsploraConfig, EsploraSource};
use tern_core::node::{Builder, Node, NodeError};
use tern_devnet::{Devnet, FaultKind, FaultRule};

mod common;

use common::files::rows as dump;

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tern-chainfault-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn fault(path: &str, kind: FaultKind, count: u32) -> FaultRule {
    FaultRule::new(path, kind, count)
}

/// A node on `devnet` whose Esplora client reads `now` for its backoff.
async fn node(devnet: &Devnet, data: &std::path::Path, now: Arc<Mutex<Instant>>) -> Node {
    let clock = Arc::new(move || *now.lock().expect("clock"));
    let source =
        EsploraSource::with_clock(&EsploraConfig::new(devnet.base_url()), clock).expect("client");
    Builder::new(Network::Regtest, data, &devnet.base_url())
        .seed([7; 32])
        .chain_source(source)
        .start()
        .await
        .expect("node starts")
}

fn chain_error(e: NodeError) -> ChainError {
    match e {
        NodeError::Chain(c) => c,
        other => panic!("not a chain error: {other}"),
    }
}

/// 429 with `Retry-After: 60` over 20 syncs 5 s apart: 2 requests (t=0, t=60). Then a 500
/// storm over 20 syncs 1 s apart: 3 requests per failed sync (1 + 2 retries), the syncs at
/// t=0, 1, 3, 7, 15 — 15 requests, not 60. The node's counters match the server's.
#[tokio::test]
async fn a_failing_server_is_not_asked_faster_than_the_backoff_allows() {
    let devnet = Devnet::start().await.expect("devnet");
    let now = Arc::new(Mutex::new(Instant::now()));
    let advance = |d: Duration| *now.lock().expect("clock") += d;
    let data = dir("backoff");
    let node = node(&devnet, &data, now.clone()).await;
    node.sync(None).await.expect("first sync");
    devnet.mine(1);

    devnet.reset_requests();
    let counted = node.counters();
    devnet.add_fault(fault(
        "/blocks/tip/hash",
        FaultKind::RetryAfter {
            status: 429,
            seconds: 60,
        },
        1_000,
    ));
    let mut sent = Vec::new();
    for _ in 0..20 {
        let before = devnet.requests().total;
        let err = chain_error(node.sync(None).await.expect_err("429"));
        assert!(
            matches!(
                err,
                ChainError::Http { status: 429, .. } | ChainError::BackingOff { .. }
            ),
            "{err}"
        );
        sent.push(devnet.requests().total - before);
        advance(Duration::from_secs(5));
    }
    let at: Vec<usize> = (0..20).filter(|&i| sent[i] > 0).collect();
    assert_eq!(at, [0, 12], "asked at t=0 and t=60 only: {sent:?}");
    assert_eq!(devnet.requests().total, 2);
    let c = node.counters();
    assert_eq!(
        c.requests - counted.requests,
        2,
        "the node counts what the server saw"
    );

    // The limit ends; a success resets the backoff. Then a 500 storm.
    reqwest::Client::new()
        .delete(format!("{}/devnet/faults", devnet.base_url()))
        .send()
        .await
        .expect("clear");
    advance(Duration::from_secs(60));
    let summary = node.sync(None).await.expect("recovers");
    assert_eq!(summary.tip_height, Some(devnet.tip().0));
    devnet.add_fault(fault("/blocks/tip/hash", FaultKind::Status(500), 1_000));
    devnet.reset_requests();
    let counted = node.counters();
    let mut sent = Vec::new();
    for _ in 0..20 {
        let before = devnet.requests().total;
        let _ = node.sync(None).await.expect_err("500");
        sent.push(devnet.requests().total - before);
        advance(Duration::from_secs(1));
    }
    assert_eq!(
        sent,
        [3, 3, 0, 3, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0],
        "backoff 0, 2, 4, 8, 16 s"
    );
    assert_eq!(devnet.requests().total, 15);
    let c = node.counters();
    assert_eq!(c.requests - counted.requests, 15);

    // The storm ends: after the backoff, the next sync succeeds; bytes are counted.
    reqwest::Client::new()
        .delete(format!("{}/devnet/faults", devnet.base_url()))
        .send()
        .await
        .expect("clear");
    advance(Duration::from_secs(32));
    devnet.reset_requests();
    let counted = node.counters();
    let summary = node.sync(None).await.expect("recovers");
    assert_eq!(summary.tip_height, Some(devnet.tip().0));
    let c = node.counters();
    assert_eq!(c.requests - counted.requests, devnet.requests().total);
    assert_eq!(c.http_bytes - counted.http_bytes, devnet.requests().bytes);
    assert!(c.http_bytes > counted.http_bytes);
    node.stop().await;
}

/// A header of another block, a tip that does not connect: each sync fails naming the lie,
/// the database is unchanged, the next honest sync recovers. A tip behind ours: no error,
/// nothing changed.
#[tokio::test]
async fn a_lie_fails_the_node_sync_and_changes_nothing_stored() {
    let devnet = Devnet::start().await.expect("devnet");
    let data = dir("lies");
    let node = node(&devnet, &data, Arc::new(Mutex::new(Instant::now()))).await;
    // A header of another block.
    let (old_header, tip) = common::chain::header_of_another_block(&devnet, &node).await;
    devnet.add_fault(fault(
        &format!("/block/{tip}/header"),
        FaultKind::Body(serialize_hex(&old_header)),
        1,
    ));
    let before = dump(&data);
    let err = chain_error(node.sync(None).await.expect_err("lie"));
    assert!(
        matches!(err, ChainError::WrongHeader { asked, .. } if asked == tip),
        "{err}"
    );
    assert_eq!(dump(&data), before, "nothing stored changed");
    let s = node.sync(None).await.expect("honest");
    assert_eq!(s.tip_height, Some(devnet.tip().0));

    // Two blocks up, the server claims one: the tip does not build on ours.
    let (height, _) = devnet.tip();
    let tip = *devnet.mine(2).last().expect("mined");
    devnet.add_fault(fault(
        &format!("/block/{tip}/status"),
        FaultKind::Body(
            serde_json::json!({"in_best_chain": true, "height": height + 1}).to_string(),
        ),
        1,
    ));
    let before = dump(&data);
    let err = chain_error(node.sync(None).await.expect_err("lie"));
    assert!(
        matches!(err, ChainError::HeadersDisconnected { .. }),
        "{err}"
    );
    assert_eq!(dump(&data), before, "nothing stored changed");
    let s = node.sync(None).await.expect("honest");
    assert_eq!(s.tip_height, Some(height + 2));

    // A lagging backend: tip two below ours.
    let lagging = devnet.chain().tip().0 - 2;
    let esplora = EsploraSource::new(&EsploraConfig::new(devnet.base_url())).expect("client");
    let lagging = esplora
        .block_hash_at(lagging)
        .await
        .expect("hash")
        .expect("some");
    devnet.add_fault(fault(
        "/blocks/tip/hash",
        FaultKind::Body(lagging.to_string()),
        1,
    ));
    let before = dump(&data);
    let s = node.sync(None).await.expect("a server behind is no error");
    assert_eq!(s.tip_height, Some(height + 2), "our tip stays");
    assert_eq!(s.events, 0);
    assert_eq!(dump(&data), before, "nothing stored changed");
    assert_eq!(
        node.list_balances()
            .await
            .expect("balances")
            .confirmed
            .to_sat(),
        100_000
    );
    node.stop().await;
}
