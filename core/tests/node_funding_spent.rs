//! The counterparty's commitment spends a ready channel's funding on the devnet (issue 12
//! part 6). The phone (funder) learns it from its funding-outpoint watch: on the schedule
//! (`to_self_delay / 4` blocks, capped at 36), in the first due block and not before — one
//! outspend request in that sync, none in the others — and at once, on the next sync, after
//! the peer disconnected unexpectedly. A spend the watcher saw but the channel never applied
//! (a kill between the two) is reported again after a restart. The channel fails (it never
//! broadcasts its own commitment over the spent funding) and keeps the spending transaction.
//!
//! The LSP's commitment is the one it would broadcast on a peer `error`: the test feeds one to
//! the stopped LSP's stored channel (pure code) and broadcasts what it answers.

use std::time::Duration;

use bitcoin::{Amount, Network, OutPoint, Transaction};
use tern_core::chain::ChainError;
use tern_core::chain::{BlockRef, ChainState, OutpointWatch, Spend, CHAIN_STATE_KEY};
use tern_core::node::NodeError;
use tern_core::node::{Builder, ChannelDetails, Event, Node, OpenChannelParams};
use tern_core::proto::channel::{Channel, ChannelRecord, ChannelState};
use tern_core::store::Store;
use tern_devnet::{Devnet, FaultKind, FaultRule, RequestCounts};

mod common;

const LSP_SEED: u8 = 1;
const PHONE_SEED: u8 = 2;
const OUTSPEND: &str = "GET /tx/:txid/outspend/:vout";
const RAW_TX: &str = "GET /tx/:txid/raw";

async fn node(devnet: &Devnet, dir: &std::path::Path, seed: u8, listen: Option<&str>) -> Node {
    let mut b = Builder::new(Network::Regtest, dir, &devnet.base_url()).seed([seed; 32]);
    if let Some(addr) = listen {
        b = b.listen(addr);
    }
    b.start().await.expect("node starts")
}

/// A local address nobody listens on now (for an LSP that restarts on the same port).
fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-funding-spent-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn only_channel(node: &Node) -> ChannelDetails {
    let channels = node.list_channels().await;
    assert_eq!(channels.len(), 1, "{channels:?}");
    channels[0].clone()
}

/// The only channel of `node`, waiting up to 10 s for it to satisfy `want`.
async fn channel_where(
    node: &Node,
    what: &str,
    want: impl Fn(&ChannelDetails) -> bool,
) -> ChannelDetails {
    for _ in 0..100 {
        let c = only_channel(node).await;
        if want(&c) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {:?}", node.list_channels().await);
}

/// Phone (funder) and LSP (fundee, listening on `lsp_addr`) with a ready 200_000 sat
/// channel; returns its funding.
async fn ready_pair_at(
    devnet: &Devnet,
    dir: &std::path::Path,
    lsp_addr: &str,
) -> (Node, Node, OutPoint) {
    let lsp = node(devnet, &dir.join("lsp"), LSP_SEED, Some(lsp_addr)).await;
    let phone = node(devnet, &dir.join("phone"), PHONE_SEED, None).await;
    common::node::fund(devnet, &phone, 1_000_000).await;
    let addr = lsp.listen_addr().expect("listening").to_string();
    phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr, Amount::from_sat(200_000))
                .push_msat(0)
                .announce(false),
        )
        .await
        .expect("open");
    let end = common::node::drive_open(devnet, &phone, &lsp, 200).await;
    assert!(end.ready(), "{end:?}");
    let c = only_channel(&phone).await;
    assert_eq!(c.state, ChannelState::Ready);
    (phone, lsp, c.funding_txo.expect("funding"))
}

async fn ready_pair(devnet: &Devnet, dir: &std::path::Path) -> (Node, Node, OutPoint) {
    ready_pair_at(devnet, dir, "127.0.0.1:0").await
}

/// Syncs `phone` once and returns the requests it made (the LSP is stopped: they are all
/// the phone's).
async fn counted_sync(devnet: &Devnet, phone: &Node) -> RequestCounts {
    devnet.reset_requests();
    phone.sync(None).await.expect("sync");
    common::node::check_durability(phone, "phone");
    devnet.requests()
}

/// Mines empty blocks until the next one is not a due height of `funding`'s schedule.
fn mine_until_next_not_due(devnet: &Devnet, funding: &OutPoint, interval: u32) {
    while OutpointWatch::due(funding, interval, devnet.tip().0, devnet.tip().0 + 1) {
        devnet.mine(1);
    }
}

/// Stops the LSP and waits until the phone saw the disconnection (an unexpected one: the
/// peer closed the connection).
async fn stop_lsp(phone: &Node, lsp: Node) {
    lsp.stop().await;
    drop(lsp);
    let mut seen = false;
    for _ in 0..100 {
        while let Some((seq, e)) = phone.next_event().await.expect("events") {
            phone.event_handled(seq).await.expect("handled");
            seen |= matches!(e, Event::PeerDisconnected { .. });
        }
        if seen {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "the phone saw the LSP go");
}

/// The phone's channel failed because `commitment` spent its funding: the reason names it,
/// the app heard it, and the phone broadcast nothing since the last counted sync began but
/// the sweep of its `to_remote` — once; with `swept_now` false, nothing: that sweep comes
/// with the next block (the spend was learnt without one, before the closing channel had a
/// destination), which the function mines and syncs.
async fn assert_failed_by(
    devnet: &Devnet,
    phone: &Node,
    commitment: &Transaction,
    swept_now: bool,
) {
    let txid = commitment.compute_txid();
    // Closing (resolve.rs): classified as the peer's commitment.
    let c = channel_where(phone, "the channel learns the spend", |c| {
        c.state == ChannelState::Closing
    })
    .await;
    assert!(c.status.contains(&txid.to_string()), "{}", c.status);
    let mut heard = None;
    let mut closes = Vec::new();
    while let Some((seq, e)) = phone.next_event().await.expect("events") {
        phone.event_handled(seq).await.expect("handled");
        match e {
            Event::ChannelFailed { reason, .. } => heard = Some(reason),
            Event::ChannelClosing { kind, .. } => closes.push(kind),
            _ => {}
        }
    }
    let heard = heard.expect("ChannelFailed emitted");
    assert!(heard.contains(&txid.to_string()), "{heard}");
    // Its only close is the peer's commitment: it never force-closed itself, and the
    // durability audit below checks every broadcast against the records (our commitment only
    // after a Closing{LocalForce} record holding it), so it never broadcast its commitment.
    // What it broadcast since the sync began is the sweep of its to_remote (resolve.rs).
    assert_eq!(
        closes,
        [tern_core::node::CloseKind::RemoteForce],
        "{closes:?}"
    );
    // The commitment's outputs are the phone's to_remote and its anchor (the LSP has
    // nothing): the to_remote's sweep is the one transaction posted since the counted sync
    // began, once.
    let [vout] = (0..commitment.output.len())
        .filter(|&i| commitment.output[i].value.to_sat() > 330)
        .collect::<Vec<_>>()[..]
    else {
        panic!("one output besides the anchor: {commitment:?}")
    };
    let to_remote = OutPoint::new(txid, vout as u32);
    if !swept_now {
        // Give it every chance to post something now: nothing comes.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(devnet.posted(), [], "nothing posted yet");
        assert_eq!(devnet.outspend(&to_remote), None);
        devnet.reset_requests();
        devnet.mine(1);
        phone.sync(None).await.expect("sync");
    }
    let mut sweep = None;
    for _ in 0..100 {
        sweep = devnet.outspend(&to_remote).map(|s| s.txid);
        if sweep.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Some(sweep) = sweep else {
        panic!(
            "the to_remote is swept: {:?}; posted {:?}",
            phone.list_channels().await,
            devnet.posted()
        )
    };
    let posted = devnet.posted();
    assert_eq!(
        devnet.posted_txids(),
        [sweep],
        "only the to_remote sweep: {posted:?}"
    );
    assert!(posted[0].accepted, "{posted:?}");
    let counts = devnet.requests();
    assert_eq!(counts.route("POST /tx"), 1, "{counts:?}");
    common::node::check_durability(phone, "phone");
}

#[tokio::test]
async fn the_peers_commitment_is_noticed_in_the_first_due_block_of_the_schedule() {
    let dir = temp_dir("schedule");
    let devnet = Devnet::start().await.expect("devnet");
    let (phone, lsp, funding) = ready_pair(&devnet, &dir).await;
    // Our to_self_delay (imposed on the LSP) is the default 144: checked every 36 blocks.
    let interval = OutpointWatch::interval_for(144);
    assert_eq!(interval, 36);
    stop_lsp(&phone, lsp).await;
    // The disconnection's immediate check, before anything is spent (polled: the peer task
    // flags it a moment after the event).
    let mut forced = 0;
    for _ in 0..50 {
        forced += counted_sync(&devnet, &phone).await.route(OUTSPEND);
        if forced > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(forced, 1, "one outspend request after the disconnect");
    assert_eq!(only_channel(&phone).await.state, ChannelState::Ready);

    let commitment = common::commitment::stored_ready_commitment(&dir.join("lsp"), LSP_SEED);
    mine_until_next_not_due(&devnet, &funding, interval);
    counted_sync(&devnet, &phone).await;
    devnet
        .broadcast(&commitment)
        .expect("the LSP's commitment is valid");
    devnet.mine(1);
    let spent_at = devnet.tip().0;
    let mut per_sync = Vec::new();
    let mut learnt = None;
    for _ in 0..=interval {
        let h = devnet.tip().0;
        let counts = counted_sync(&devnet, &phone).await;
        let due = OutpointWatch::due(&funding, interval, h - 1, h);
        per_sync.push((h, due, counts.total, counts.route(OUTSPEND)));
        // One outspend request when due, none otherwise; the spending tx fetched once.
        assert_eq!(
            counts.route(OUTSPEND),
            u64::from(due),
            "height {h} (spent at {spent_at}, synced so far {per_sync:?}): {counts:?}"
        );
        if due {
            assert_failed_by(&devnet, &phone, &commitment, true).await;
            // The peer task then fetched the spending transaction, once.
            let with_fetch = devnet.requests();
            assert_eq!(with_fetch.route(RAW_TX), 1, "{with_fetch:?}");
            learnt = Some((h, with_fetch));
            break;
        }
        // Not due: the channel cannot know yet.
        assert_eq!(only_channel(&phone).await.state, ChannelState::Ready);
        devnet.mine(1);
    }
    let (learnt_at, counts) = learnt.expect("learnt within one interval");
    assert!(learnt_at - spent_at < interval);
    eprintln!("spent at {spent_at}, learnt at {learnt_at}; per sync (height, due, requests, outspends): {per_sync:?}");
    eprintln!("the learning sync: {:?}", counts.by_route);
    // Learnt once: later syncs ask nothing more about it (the spend is confirmed).
    devnet.mine(1);
    let after = counted_sync(&devnet, &phone).await;
    // (The only outspend asked now is the watch of the to_remote being swept, resolve.rs.)
    let funding_check = format!("GET /tx/{}/outspend/{}", funding.txid, funding.vout);
    assert_eq!(after.by_path.get(&funding_check), None, "{after:?}");
    assert!(after.route(OUTSPEND) <= 1, "{after:?}");
    phone.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn after_an_unexpected_disconnect_the_next_sync_checks_the_funding() {
    let dir = temp_dir("disconnect");
    let devnet = Devnet::start().await.expect("devnet");
    let (phone, lsp, funding) = ready_pair(&devnet, &dir).await;
    let interval = OutpointWatch::interval_for(144);
    // Synced to a tip whose next block is not due.
    mine_until_next_not_due(&devnet, &funding, interval);
    counted_sync(&devnet, &phone).await;
    // The LSP goes away (the phone did not ask: unexpected) and its commitment lands in the
    // next block, where the phone's schedule would not look.
    stop_lsp(&phone, lsp).await;
    let commitment = common::commitment::stored_ready_commitment(&dir.join("lsp"), LSP_SEED);
    devnet
        .broadcast(&commitment)
        .expect("the LSP's commitment is valid");
    devnet.mine(1);
    let tip = devnet.tip().0;
    assert!(!OutpointWatch::due(&funding, interval, tip - 1, tip));
    // The next sync checks it (polled without new blocks, so only that check can find it: the
    // peer task flags the funding a moment after the disconnection).
    let mut outspends = 0;
    let mut learnt = None;
    for _ in 0..50 {
        let counts = counted_sync(&devnet, &phone).await;
        outspends += counts.route(OUTSPEND);
        if counts.route(OUTSPEND) > 0 {
            learnt = Some(counts);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(devnet.tip().0, tip, "no block mined meanwhile");
    let counts = learnt.expect("the funding was checked after the disconnect");
    assert_eq!(outspends, 1);
    eprintln!("the learning sync: {:?}", counts.by_route);
    assert_failed_by(&devnet, &phone, &commitment, true).await;
    phone.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_spend_the_watcher_saw_but_the_channel_missed_is_reported_again_after_a_restart() {
    let dir = temp_dir("lost-spend");
    let devnet = Devnet::start().await.expect("devnet");
    let (phone, lsp, funding) = ready_pair(&devnet, &dir).await;
    lsp.stop().await;
    drop(lsp);
    let commitment = common::commitment::stored_ready_commitment(&dir.join("lsp"), LSP_SEED);
    devnet.broadcast(&commitment).expect("valid");
    devnet.mine(1);
    // The phone dies in the sync that saw the spend, after the watcher saved it.
    phone.stop().await;
    drop(phone);
    let (height, hash) = devnet.tip();
    {
        let mut store = Store::open(dir.join("phone").join("tern.sqlite")).expect("store");
        let bytes = store
            .get_meta(CHAIN_STATE_KEY)
            .expect("meta")
            .expect("state");
        let mut state = ChainState::decode(&bytes).expect("decode");
        let watch = state
            .outpoints
            .get_mut(&funding)
            .expect("funding output watched");
        watch.check_now = false;
        let block_hash = hash;
        watch.spend = Some(Spend {
            txid: commitment.compute_txid(),
            vin: 0,
            confirmed: Some(tern_core::chain::Confirmation {
                height,
                block_hash,
                block_time: 0,
            }),
        });
        state.tip = Some(BlockRef { height, hash });
        store
            .put_meta(CHAIN_STATE_KEY, &state.encode())
            .expect("write");
    }
    let phone = node(&devnet, &dir.join("phone"), PHONE_SEED, None).await;
    assert_eq!(only_channel(&phone).await.state, ChannelState::Ready);
    // Same tip: only the replayed check costs anything.
    let counts = counted_sync(&devnet, &phone).await;
    assert_eq!(counts.route(OUTSPEND), 1, "{counts:?}");
    assert_failed_by(&devnet, &phone, &commitment, false).await;
    phone.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The LSP's commitment confirms in a block the phone's schedule skips; then the LSP, restarted
/// without the channel, answers the phone's `channel_reestablish` with an `error`. The phone
/// fails the channel (its own commitment broadcast is refused: the funding is spent) and its
/// next sync, at the same tip, checks the funding: the channel records the LSP's commitment.
#[tokio::test]
async fn a_peer_error_checks_the_funding_and_the_failed_channel_records_the_spend() {
    let dir = temp_dir("error");
    let devnet = Devnet::start().await.expect("devnet");
    let lsp_addr = free_addr();
    let (phone, lsp, funding) = ready_pair_at(&devnet, &dir, &lsp_addr).await;
    let interval = OutpointWatch::interval_for(144);
    mine_until_next_not_due(&devnet, &funding, interval);
    counted_sync(&devnet, &phone).await;
    stop_lsp(&phone, lsp).await;
    // The disconnection's check, consumed while nothing is spent.
    let mut forced = 0;
    for _ in 0..50 {
        forced += counted_sync(&devnet, &phone).await.route(OUTSPEND);
        if forced > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(forced, 1);
    let commitment = common::commitment::stored_ready_commitment(&dir.join("lsp"), LSP_SEED);
    devnet.broadcast(&commitment).expect("valid");
    devnet.mine(1);
    let tip = devnet.tip().0;
    assert!(!OutpointWatch::due(&funding, interval, tip - 1, tip));
    let counts = counted_sync(&devnet, &phone).await;
    assert_eq!(counts.route(OUTSPEND), 0, "not due: {counts:?}");
    assert_eq!(only_channel(&phone).await.state, ChannelState::Ready);
    // The LSP forgets the channel and comes back on the same address.
    {
        let mut store = Store::open(dir.join("lsp").join("tern.sqlite")).expect("lsp store");
        let rows = store.list_channels().expect("channels");
        assert!(store.delete_channel(&rows[0].channel_id).expect("delete"));
    }
    devnet.reset_requests();
    let lsp = node(&devnet, &dir.join("lsp"), LSP_SEED, Some(&lsp_addr)).await;
    // The peer's error: the funding is checked at once, before the error acts (the issue's
    // guard), and found spent by the LSP's commitment: the channel closes with it.
    let failed = channel_where(&phone, "the peer's error", |c| {
        c.state == ChannelState::Closing
    })
    .await;
    assert!(!failed.status.contains("peer error"), "{}", failed.status);
    assert_eq!(devnet.tip().0, tip, "no block mined meanwhile");
    // The funding, checked before the error acted, with no sync in between.
    let funding_check = format!("GET /tx/{}/outspend/{}", funding.txid, funding.vout);
    let counts = devnet.requests();
    assert!(
        counts.by_path.get(&funding_check).is_some_and(|n| *n >= 1),
        "{counts:?}"
    );
    // The closing channel keeps the spend (persisted).
    let mut kept = None;
    for _ in 0..100 {
        let store = Store::open(dir.join("phone").join("tern.sqlite")).expect("phone store");
        let rows = store.list_channels().expect("channels");
        let c = Channel::from_record(ChannelRecord::decode(&rows[0].record).expect("record"));
        if c.funding_spend().is_some() {
            kept = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = kept.expect("the spend is recorded");
    assert_eq!(c.funding_spend(), Some(&commitment));
    // The LSP's commitment won the race against ours: the close is now the peer's.
    assert_eq!(c.state(), ChannelState::Closing);
    assert_eq!(
        c.close_kind(),
        Some(tern_core::proto::channel::CloseKind::RemoteForce)
    );
    assert!(
        !c.failure_reason().is_some_and(|r| r.contains("peer error")),
        "the spend closed it, not the error: {:?}",
        c.failure_reason()
    );
    phone.stop().await;
    lsp.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lying server (issue 17 §2) reports the funding spent by a transaction that does not
/// spend it (here the funding transaction itself): the node's sync fetches the spender,
/// fails naming the lie, and stores nothing — not the false spend in the watcher, not a
/// change to the channel; the next honest sync checks the funding again and the channel is
/// still ready.
#[tokio::test]
async fn a_spend_by_a_transaction_that_does_not_spend_the_funding_fails_the_sync() {
    let dir = temp_dir("lying-spend");
    let devnet = Devnet::start().await.expect("devnet");
    let (phone, lsp, funding) = ready_pair(&devnet, &dir).await;
    // The LSP goes away: the phone checks its funding at the next sync.
    stop_lsp(&phone, lsp).await;
    let lie = serde_json::json!({
        "spent": true,
        "txid": funding.txid.to_string(),
        "vin": 0,
        "status": {"confirmed": false},
    });
    let path = format!("/tx/{}/outspend/{}", funding.txid, funding.vout);
    devnet.add_fault(FaultRule::new(&path, FaultKind::Body(lie.to_string()), 1));
    let db = dir.join("phone");
    let mut failed = None;
    for _ in 0..50 {
        let before = common::files::rows(&db);
        match phone.sync(None).await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => {
                failed = Some((e, before));
                break;
            }
        }
    }
    let (err, before) = failed.expect("the lie was served and the sync failed");
    let shown = err.to_string();
    match err {
        NodeError::Chain(ChainError::BadSpend { outpoint, txid, .. }) => {
            assert_eq!((outpoint, txid), (funding, funding.txid), "{shown}");
        }
        other => panic!("not a bad spend: {other}"),
    }
    assert!(shown.contains(&funding.to_string()), "{shown}");
    assert_eq!(common::files::rows(&db), before, "nothing stored changed");
    assert_eq!(only_channel(&phone).await.state, ChannelState::Ready);
    // Honest again: the funding is checked again (the failed sync kept its forced check), it
    // is unspent, the channel stays ready and nothing was posted.
    let counts = counted_sync(&devnet, &phone).await;
    assert_eq!(counts.route(OUTSPEND), 1, "{counts:?}");
    assert_eq!(only_channel(&phone).await.state, ChannelState::Ready);
    assert_eq!(devnet.posted(), [], "nothing posted");
    phone.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
