//! Esplora faults and lies through real HTTP (issue 17 §2), against the devnet's
//! `/devnet/faults`: 500 storms and 429s with and without `Retry-After` are retried a bounded
//! number of times and then backed off from across syncs (an injected clock, no sleeps);
//! oversized, truncated and cut bodies fail typed; every request and byte is counted. Each lie
//! (a merkle proof of another transaction, a header of another block, a tip that does not
//! connect, a confirmation at the wrong height, a spend by a transaction that does not spend
//! the outpoint) fails the sync naming it, leaves the caller's state as it was, and the next
//! honest sync recovers; a tip behind ours skips the sync without an error.

// This binary's TRACE log file, for the log-secret check (see common/trace.rs).
#[path = "common/trace.rs"]
mod trace;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{Amount, Network, OutPoint};
use tern_core::chain::{
    sync, ChainError, ChainEvent, ChainSource, ChainState, Clock, EsploraConfig, EsploraSource,
    SyncPlanner, TxWatchState,
};
use tern_devnet::{Devnet, FaultKind, FaultRule};

/// A clock moved by hand.
#[derive(Clone)]
struct ManualClock(Arc<Mutex<Instant>>);

impl ManualClock {
    fn new() -> Self {
        ManualClock(Arc::new(Mutex::new(Instant::now())))
    }
    fn clock(&self) -> Clock {
        let c = self.0.clone();
        Arc::new(move || *c.lock().expect("clock"))
    }
    fn advance(&self, d: Duration) {
        *self.0.lock().expect("clock") += d;
    }
}

fn fault(path: &str, kind: FaultKind, count: u32) -> FaultRule {
    FaultRule::new(path, kind, count)
}

async fn synced(src: &EsploraSource, state: ChainState) -> ChainState {
    sync(src, SyncPlanner::new(state, vec![]), None)
        .await
        .expect("sync")
        .state
}

fn address() -> bitcoin::Address {
    let key = bitcoin::secp256k1::PublicKey::from_secret_key(
        &bitcoin::secp256k1::Secp256k1::new(),
        &bitcoin::secp256k1::SecretKey::from_slice(&[3; 32]).expect("key"),
    );
    bitcoin::Address::p2wpkh(&bitcoin::CompressedPublicKey(key), Network::Regtest)
}

/// A 500 storm: each failed request is 1 + 2 retries; the first failure in a row does not
/// close the server, the next ones close it for 2 s, 4 s, 8 s…; a sync while closed sends
/// nothing. Then a 429 with `Retry-After: 30` closes it for 30 s after one request, one
/// with `Retry-After: 1` is waited for inside the request, and a huge one is capped.
#[tokio::test]
async fn failing_servers_are_backed_off_across_syncs_and_every_request_is_counted() {
    let devnet = Devnet::start().await.expect("devnet");
    let clock = ManualClock::new();
    let src = EsploraSource::with_clock(&EsploraConfig::new(devnet.base_url()), clock.clock())
        .expect("client");
    let state = synced(&src, ChainState::default()).await;
    devnet.mine(1);
    devnet.reset_requests();
    let sent_before = src.requests();
    devnet.add_fault(fault("/blocks/tip/hash", FaultKind::Status(500), 1_000));
    // Ten sync attempts, one second apart.
    let mut per_attempt = Vec::new();
    for _ in 0..10 {
        let before = devnet.requests().total;
        let err = sync(&src, SyncPlanner::new(state.clone(), vec![]), None)
            .await
            .expect_err("storm");
        let sent = devnet.requests().total - before;
        match (&err, sent) {
            (ChainError::Http { status: 500, .. }, 3) => {}
            (ChainError::BackingOff { .. }, 0) => {}
            other => panic!("unexpected {other:?}"),
        }
        per_attempt.push(sent);
        clock.advance(Duration::from_secs(1));
    }
    // t=0: fail (3), t=1: fail (3) → closed 2 s; t=3: fail → 4 s; t=7: fail → 8 s.
    assert_eq!(
        per_attempt,
        [3, 3, 0, 3, 0, 0, 0, 3, 0, 0],
        "{per_attempt:?}"
    );
    assert_eq!(devnet.requests().total, 12);
    assert_eq!(
        (src.requests() - sent_before) as u64,
        devnet.requests().total,
        "Tern counts every request the server saw"
    );
    // Closed at t=7 for 8 s; the clock is at t=10.
    let left = src.backing_off_for().expect("closed");
    assert_eq!(left, Duration::from_secs(5));
    // The storm ends; once the backoff has passed, the next sync succeeds and resets it.
    reqwest_delete_faults(&devnet).await;
    clock.advance(left);
    let state = synced(&src, state).await;
    assert_eq!(state.tip.map(|t| t.hash), Some(devnet.tip().1));
    assert_eq!(src.backing_off_for(), None);

    // 429 with Retry-After: 30 → one request, closed for 30 s, not asked during them.
    devnet.mine(1);
    devnet.reset_requests();
    devnet.add_fault(fault(
        "/blocks/tip/hash",
        FaultKind::RetryAfter {
            status: 429,
            seconds: 30,
        },
        1,
    ));
    let err = sync(&src, SyncPlanner::new(state.clone(), vec![]), None)
        .await
        .expect_err("429");
    assert!(matches!(err, ChainError::Http { status: 429, .. }), "{err}");
    assert_eq!(
        devnet.requests().total,
        1,
        "a long Retry-After is not waited in the request"
    );
    assert_eq!(src.backing_off_for(), Some(Duration::from_secs(30)));
    for _ in 0..29 {
        clock.advance(Duration::from_secs(1));
        let err = sync(&src, SyncPlanner::new(state.clone(), vec![]), None)
            .await
            .expect_err("backing off");
        assert!(matches!(err, ChainError::BackingOff { .. }), "{err}");
        assert!(err.to_string().contains("backed off"), "{err}");
    }
    assert_eq!(
        devnet.requests().total,
        1,
        "29 syncs in the 30 s: no request"
    );
    clock.advance(Duration::from_secs(1));
    let state = synced(&src, state).await;
    assert_eq!(state.tip.map(|t| t.hash), Some(devnet.tip().1));

    // 429 with Retry-After: 1 → waited inside the request, then answered.
    devnet.mine(1);
    devnet.reset_requests();
    devnet.add_fault(fault(
        "/blocks/tip/hash",
        FaultKind::RetryAfter {
            status: 429,
            seconds: 1,
        },
        1,
    ));
    let state = synced(&src, state).await;
    assert_eq!(devnet.requests().route("GET /blocks/tip/hash"), 2);

    // A Retry-After of a day is capped at an hour.
    devnet.add_fault(fault(
        "/blocks/tip/hash",
        FaultKind::RetryAfter {
            status: 503,
            seconds: 86_400,
        },
        1,
    ));
    let err = sync(&src, SyncPlanner::new(state, vec![]), None)
        .await
        .expect_err("503");
    assert!(matches!(err, ChainError::Http { status: 503, .. }), "{err}");
    assert_eq!(src.backing_off_for(), Some(Duration::from_secs(3600)));
}

async fn reqwest_delete_faults(devnet: &Devnet) {
    reqwest::Client::new()
        .delete(format!("{}/devnet/faults", devnet.base_url()))
        .send()
        .await
        .expect("clear faults");
}

/// What a case expects of the error.
type Expect = fn(&ChainError) -> bool;

/// Bodies: over the cap (refused from its `Content-Length`, never read), over a small cap
/// while streaming, truncated (a complete but short answer), cut mid-body (a reset). Each is a
/// typed error, the state is untouched, and the next sync succeeds. Bytes are counted.
#[tokio::test]
async fn oversized_truncated_and_cut_bodies_fail_typed_and_bytes_are_counted() {
    let devnet = Devnet::start().await.expect("devnet");
    let src = EsploraSource::new(&EsploraConfig::new(devnet.base_url())).expect("client");
    let state = synced(&src, ChainState::default()).await;
    // Bytes: what Tern counts is what the server sent.
    devnet.mine(1);
    devnet.reset_requests();
    let bytes_before = src.http_bytes();
    let state = synced(&src, state).await;
    let served = devnet.requests().bytes;
    assert!(served > 64, "{served}");
    assert_eq!(src.http_bytes() - bytes_before, served);

    devnet.mine(1);
    let cases: [(FaultKind, Expect); 3] = [
        (
            FaultKind::Oversize(5 * 1024 * 1024),
            |e| matches!(e, ChainError::TooLarge { limit, .. } if *limit == 4 * 1024 * 1024),
        ),
        (FaultKind::Truncate(10), |e| {
            matches!(e, ChainError::InvalidResponse { .. })
        }),
        (FaultKind::ResetAfter(10), |e| {
            matches!(e, ChainError::Transport { .. })
        }),
    ];
    for (kind, expected) in cases {
        devnet.reset_requests();
        let bytes_before = src.http_bytes();
        devnet.add_fault(fault("/blocks/tip/hash", kind.clone(), 1));
        let before = state.encode();
        let err = sync(&src, SyncPlanner::new(state.clone(), vec![]), None)
            .await
            .expect_err("fault");
        assert!(expected(&err), "{kind:?}: {err}");
        assert_eq!(devnet.requests().total, 1, "{kind:?}: not retried");
        assert!(
            src.http_bytes() - bytes_before < 1024,
            "{kind:?}: an oversized body is not read"
        );
        assert_eq!(state.encode(), before);
        let next = synced(&src, state.clone()).await;
        assert_eq!(next.tip.map(|t| t.hash), Some(devnet.tip().1), "{kind:?}");
    }
    // A small cap: the 64-byte tip hash is over it.
    let small = EsploraSource::new(&EsploraConfig {
        max_body_bytes: 32,
        ..EsploraConfig::new(devnet.base_url())
    })
    .expect("client");
    let err = small.tip_hash().await.expect_err("64 hex chars > 32 bytes");
    assert!(
        matches!(err, ChainError::TooLarge { limit: 32, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("over 32 bytes"), "{err}");
}

/// Runs one sync expecting `lie` to be found; asserts the caller's state is unchanged.
async fn refused(src: &EsploraSource, state: &ChainState, verify_spends: bool) -> ChainError {
    let before = state.encode();
    let planner = SyncPlanner::new(state.clone(), vec![]);
    let planner = if verify_spends {
        planner.verify_spends()
    } else {
        planner
    };
    let err = sync(src, planner, None).await.expect_err("lie");
    assert!(err.is_lie(), "{err}");
    assert_eq!(state.encode(), before);
    err
}

async fn real_json(devnet: &Devnet, path: &str) -> serde_json::Value {
    let text = reqwest::get(format!("{}{path}", devnet.base_url()))
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    serde_json::from_str(&text).expect("json")
}

#[tokio::test]
async fn each_lie_fails_the_sync_naming_it_and_the_next_honest_sync_recovers() {
    let devnet = Devnet::start().await.expect("devnet");
    let src = EsploraSource::new(&EsploraConfig::new(devnet.base_url())).expect("client");
    let addr = address();
    let mut state = synced(&src, ChainState::default()).await;

    // 1. A merkle proof of another transaction of the same block (the coinbase).
    let txid = devnet
        .faucet(&addr, Amount::from_sat(50_000))
        .expect("faucet");
    state.watch_tx(txid, vec![]);
    let block = devnet.mine(1)[0];
    let coinbase = src.client().get_block_txids(&block).await.expect("txids")[0];
    let other_proof = src
        .merkle_block(coinbase)
        .await
        .expect("proof")
        .expect("some");
    devnet.add_fault(fault(
        &format!("/tx/{txid}/merkleblock-proof"),
        FaultKind::Body(serialize_hex(&other_proof)),
        1,
    ));
    let err = refused(&src, &state, false).await;
    assert!(
        matches!(err, ChainError::BadProof { txid: t, .. } if t == txid),
        "{err}"
    );
    assert!(err.to_string().contains("merkle proof"), "{err}");
    let out = sync(&src, SyncPlanner::new(state.clone(), vec![]), None)
        .await
        .expect("honest");
    assert!(out
        .events
        .iter()
        .any(|e| matches!(e, ChainEvent::TxConfirmed { txid: t, .. } if *t == txid)));
    let mut state = out.state;

    // 2a. A header of another block for the new tip.
    let tip = devnet.mine(1)[0];
    let old_header = src.header(block).await.expect("header");
    devnet.add_fault(fault(
        &format!("/block/{tip}/header"),
        FaultKind::Body(serialize_hex(&old_header)),
        1,
    ));
    let err = refused(&src, &state, false).await;
    assert!(
        matches!(err, ChainError::WrongHeader { asked, .. } if asked == tip),
        "{err}"
    );
    state = synced(&src, state).await;

    // 2b. Two blocks up, but the server claims its tip is one above ours (still in its best
    // chain): the tip must build on ours, and it does not.
    let ours = state.tip.expect("tip");
    let tip = *devnet.mine(2).last().expect("mined");
    devnet.add_fault(fault(
        &format!("/block/{tip}/status"),
        FaultKind::Body(
            serde_json::json!({"in_best_chain": true, "height": ours.height + 1}).to_string(),
        ),
        1,
    ));
    let err = refused(&src, &state, false).await;
    assert!(
        matches!(err, ChainError::HeadersDisconnected { .. }),
        "{err}"
    );
    state = synced(&src, state).await;
    assert_eq!(state.tip.map(|t| t.hash), Some(tip));

    // 3. A transaction reported confirmed two blocks higher than its block.
    let txid = devnet
        .faucet(&addr, Amount::from_sat(40_000))
        .expect("faucet");
    state.watch_tx(txid, vec![]);
    devnet.mine(3);
    let mut forged = real_json(&devnet, &format!("/tx/{txid}")).await;
    let height = forged["status"]["block_height"].as_u64().expect("height");
    forged["status"]["block_height"] = (height + 2).into();
    devnet.add_fault(fault(
        &format!("/tx/{txid}"),
        FaultKind::Body(forged.to_string()),
        1,
    ));
    let err = refused(&src, &state, false).await;
    assert!(
        matches!(err, ChainError::WrongHeight { claimed, .. } if u64::from(claimed) == height + 2),
        "{err}"
    );
    let out = sync(&src, SyncPlanner::new(state.clone(), vec![]), None)
        .await
        .expect("honest");
    state = out.state;
    assert!(
        matches!(state.txs[&txid].state, TxWatchState::Confirmed(c) if u64::from(c.height) == height)
    );

    // 4. A watched output reported spent by a transaction that does not spend it.
    let funding = devnet
        .faucet(&addr, Amount::from_sat(30_000))
        .expect("faucet");
    let unrelated = devnet
        .faucet(&addr, Amount::from_sat(20_000))
        .expect("faucet");
    devnet.mine(1);
    let vout = devnet
        .chain()
        .transaction(&funding)
        .expect("tx")
        .output
        .iter()
        .position(|o| o.script_pubkey == addr.script_pubkey())
        .expect("our output") as u32;
    let op = OutPoint::new(funding, vout);
    state = synced(&src, state).await;
    state.watch_outpoint(op, 144);
    devnet.add_fault(fault(
        &format!("/tx/{funding}/outspend/{vout}"),
        FaultKind::Body(
            serde_json::json!({"spent": true, "txid": unrelated, "vin": 0,
                "status": {"confirmed": false}})
            .to_string(),
        ),
        1,
    ));
    let err = refused(&src, &state, true).await;
    assert!(
        matches!(&err, ChainError::BadSpend { outpoint, txid, .. } if *outpoint == op && *txid == unrelated),
        "{err}"
    );
    assert!(err.to_string().contains("does not spend it"), "{err}");
    let out = sync(
        &src,
        SyncPlanner::new(state.clone(), vec![]).verify_spends(),
        None,
    )
    .await
    .expect("honest");
    assert!(
        out.state.outpoints[&op].spend.is_none(),
        "not spent in truth"
    );
}

/// A tip that goes backwards while ours is still in the best chain (a lagging backend
/// behind a load balancer): the sync ends without an error and changes nothing.
#[tokio::test]
async fn a_tip_behind_ours_is_a_server_behind_not_an_error() {
    let devnet = Devnet::start().await.expect("devnet");
    let src = EsploraSource::new(&EsploraConfig::new(devnet.base_url())).expect("client");
    let hashes = devnet.mine(5);
    let state = synced(&src, ChainState::default()).await;
    let before = state.encode();
    devnet.reset_requests();
    devnet.add_fault(fault(
        "/blocks/tip/hash",
        FaultKind::Body(hashes[2].to_string()),
        1,
    ));
    let out = sync(&src, SyncPlanner::new(state.clone(), vec![]), None)
        .await
        .expect("behind is no error");
    assert!(out.events.is_empty(), "{:?}", out.events);
    assert_eq!(out.state.encode(), before);
    assert_eq!(out.requests, 4, "tip, header, both statuses");
    assert_eq!(devnet.requests().total, 4);
    // The next honest sync sees the real tip, which did not move: one request.
    devnet.reset_requests();
    let out = sync(&src, SyncPlanner::new(out.state, vec![]), None)
        .await
        .expect("honest");
    assert_eq!((out.requests, out.state.encode()), (1, before));
}
