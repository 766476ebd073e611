//! Several Esplora servers (issue 17 §2's optional fail-over), through real HTTP: a devnet and
//! a mirror of its chain on another port, each with faults of its own. A node given the mirror
//! as its fall-back keeps syncing when the first server fails in every way the single-server
//! tests try (a 500 storm, a 429 with `Retry-After`, a dropped connection, a cut body), asks
//! the failed server no more once it moved on, and after a lie fails that sync with the lie
//! named, stores nothing, and syncs honestly from the other server next. Broadcasts fail over
//! too, and the counters add both servers' requests.

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{Amount, Network};
use tern_core::chain::{ChainError, ChainSource, EsploraConfig, EsploraSource, Failover, TxStatus};
use tern_core::node::{Builder, Node, NodeError};
use tern_devnet::{Devnet, FaultKind, FaultRule, Mirror};

mod common;

use common::files;

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tern-failover-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

async fn node(devnet: &Devnet, mirror: &Mirror, data: &std::path::Path) -> Node {
    Builder::new(Network::Regtest, data, &devnet.base_url())
        .seed([9; 32])
        .esplora_fallbacks([mirror.base_url()])
        .start()
        .await
        .expect("node starts")
}

/// Requests each server saw since the last reset: (the devnet's, the mirror's).
fn asked(devnet: &Devnet, mirror: &Mirror) -> (u64, u64) {
    let c = devnet.requests();
    let of = |port| c.by_port.get(&port).copied().unwrap_or(0);
    (of(devnet.addr().port()), of(mirror.port()))
}

/// Each way the first server fails (a fresh node each): the sync still succeeds, from the
/// mirror, at the new tip; the failed server is asked once per request at most (its own
/// retries of a 5xx included), and the next sync goes to the mirror only. The node's
/// counters are both servers' requests.
#[tokio::test]
async fn a_failing_first_server_is_left_for_the_next() {
    let devnet = Devnet::start().await.expect("devnet");
    let mirror = devnet.mirror().await.expect("mirror");
    let primary = devnet.addr().port();
    for (i, (what, kind, retries)) in [
        ("a 500 storm", FaultKind::Status(500), 2),
        (
            "a 429 with Retry-After",
            FaultKind::RetryAfter {
                status: 429,
                seconds: 600,
            },
            0,
        ),
        ("a dropped connection", FaultKind::Drop, 0),
        ("a body cut by a reset", FaultKind::ResetAfter(3), 0),
    ]
    .into_iter()
    .enumerate()
    {
        let data = dir(&format!("failing-{i}"));
        let node = node(&devnet, &mirror, &data).await;
        node.sync(None).await.expect("first sync");
        devnet.reset_requests();
        devnet.add_fault(FaultRule::new("*", kind, 1000).on_port(primary));
        let before = node.counters();
        devnet.mine(1);
        let s = node
            .sync(None)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(s.tip_height, Some(devnet.tip().0), "{what}");
        let (first, second) = asked(&devnet, &mirror);
        assert!(
            (1..=1 + retries).contains(&first),
            "{what}: the first server asked {first} times"
        );
        assert!(
            second >= 2,
            "{what}: the mirror answered the sync ({second})"
        );
        assert_eq!(
            node.counters().requests - before.requests,
            devnet.requests().total,
            "{what}: the counters add both servers"
        );
        // The next sync asks the mirror only.
        devnet.reset_requests();
        devnet.mine(1);
        node.sync(None).await.expect("next sync");
        let (first, second) = asked(&devnet, &mirror);
        assert_eq!(first, 0, "{what}: the failed server is left");
        assert!(second >= 2, "{what}");
        devnet.clear_faults();
        node.stop().await;
        let _ = std::fs::remove_dir_all(&data);
    }
}

/// The first server lies (the header of another block): that sync fails naming the lie and
/// stores nothing; the next sync asks the mirror, which is honest, and reaches the tip. The
/// liar is not asked again while the mirror answers.
#[tokio::test]
async fn after_a_lie_the_next_sync_asks_the_next_server() {
    let devnet = Devnet::start().await.expect("devnet");
    let mirror = devnet.mirror().await.expect("mirror");
    let data = dir("lie");
    let node = node(&devnet, &mirror, &data).await;
    let (old_header, tip) = common::chain::header_of_another_block(&devnet, &node).await;
    devnet.add_fault(
        FaultRule::new(
            &format!("/block/{tip}/header"),
            FaultKind::Body(serialize_hex(&old_header)),
            1000,
        )
        .on_port(devnet.addr().port()),
    );
    let before = files::rows(&data);
    let err = node.sync(None).await.expect_err("the lie fails the sync");
    assert!(
        matches!(&err, NodeError::Chain(ChainError::WrongHeader { asked, .. }) if *asked == tip),
        "{err}"
    );
    assert_eq!(files::rows(&data), before, "nothing stored changed");
    devnet.reset_requests();
    let s = node.sync(None).await.expect("the mirror is honest");
    assert_eq!(s.tip_height, Some(devnet.tip().0));
    assert_eq!(asked(&devnet, &mirror).0, 0, "the liar is not asked");
    node.stop().await;
    let _ = std::fs::remove_dir_all(&data);
}

/// The source itself: a broadcast the first server cannot take goes to the next; a refused
/// transaction is an answer, not a failure (not posted twice); when every server fails, the
/// last error comes back; traffic adds up.
#[tokio::test]
async fn broadcasts_fail_over_and_refusals_do_not() {
    let devnet = Devnet::start().await.expect("devnet");
    let mirror = devnet.mirror().await.expect("mirror");
    let first = EsploraSource::new(&EsploraConfig::new(devnet.base_url())).expect("client");
    let second = EsploraSource::new(&EsploraConfig::new(mirror.base_url())).expect("client");
    let source = Failover::new(first, [second]);
    // A transaction of the devnet's faucet, taken out of its mempool: new to both servers.
    let txid = devnet
        .faucet(&devnet.faucet_address(), Amount::from_sat(50_000))
        .expect("faucet");
    let fresh = devnet.transaction(&txid).expect("faucet tx");
    devnet.drop_mempool_tx(&txid).expect("dropped");
    devnet.reset_requests();
    devnet.add_fault(
        FaultRule::new("/tx", FaultKind::Status(503), 1000).on_port(devnet.addr().port()),
    );
    source
        .broadcast(fresh.clone())
        .await
        .expect("posted through the mirror");
    assert_eq!(source.current(), 1);
    assert_eq!(
        source
            .tx_status(fresh.compute_txid())
            .await
            .expect("status"),
        TxStatus::Unconfirmed
    );
    assert_eq!(devnet.posted_txids(), [fresh.compute_txid()]);
    // A refusal (another spend of the same inputs: a double spend) is an answer.
    devnet.reset_requests();
    let mut conflict = fresh.clone();
    conflict.output[0].value = Amount::from_sat(1);
    let err = source.broadcast(conflict).await.expect_err("refused");
    assert!(!matches!(err, ChainError::Transport { .. }), "{err}");
    assert_eq!(devnet.requests().route("POST /tx"), 1, "asked once");
    // Every server fails: the last error.
    devnet.add_fault(FaultRule::new("*", FaultKind::Drop, 1000));
    let err = source.tip_hash().await.expect_err("all down");
    assert!(
        matches!(
            err,
            ChainError::Transport { .. } | ChainError::BackingOff { .. }
        ),
        "{err}"
    );
    let t = source.traffic().expect("http");
    let (a, b) = (
        source.sources()[0].traffic().expect("http"),
        source.sources()[1].traffic().expect("http"),
    );
    assert_eq!(t.requests, a.requests + b.requests);
    assert_eq!(t.bytes, a.bytes + b.bytes);
}
