//! Several opens with one peer from one wallet (issue 11 part 8), two Tern nodes on the
//! devnet: an open the wallet cannot fund is refused at once and the peer hears nothing of it;
//! concurrent opens from one coin all reach ready, the later fundings spending the earlier
//! ones' change; a failed open fails alone and the connection stays up; chained fundings
//! dropped from the mempool come back parents first; a kill during two concurrent opens
//! leaves no coin locked and nothing held after the restart.
//!
//! Needs the `dev-disconnect` feature (the store's coin locks and open intents are read through
//! the node's dev accessors; `scripts/test.sh` enables it).
#![cfg(feature = "dev-disconnect")]

use std::time::Duration;

use bitcoin::{Amount, Network, OutPoint, Transaction, Txid};
use tern_core::node::{Builder, Event, InboundPolicy, Node, NodeError, OpenChannelParams};
use tern_core::proto::channel::ChannelState;
use tern_core::proto::wire::ChannelId;
use tern_devnet::{Devnet, TxState};

mod common;

use common::node::{check_durability, fund};

const FUNDED: u64 = 1_000_000;

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tern-opens-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Options of a test node.
#[derive(Default, Clone, Copy)]
struct Opts<'a> {
    listen: bool,
    manual: bool,
    open_timeout_secs: Option<u64>,
    halt_after: Option<&'a str>,
    /// Inbound opens held before their durable point, per peer.
    pending_per_peer: Option<usize>,
}

async fn node(devnet: &Devnet, data: &std::path::Path, seed: u8, opts: Opts<'_>) -> Node {
    // These tests account for every satoshi of opens that spend the whole wallet: the anchor
    // reserve (a separate policy, tested in node_cpfp.rs) is off here.
    let mut b = Builder::new(Network::Regtest, data, &devnet.base_url())
        .seed([seed; 32])
        .anchor_reserve_per_channel(Amount::ZERO);
    if opts.listen {
        b = b.listen("127.0.0.1:0");
    }
    if opts.manual {
        b = b.inbound_policy(InboundPolicy::Manual);
    }
    if let Some(secs) = opts.open_timeout_secs {
        b = b.channel_config(|c| c.open_timeout_secs = secs);
    }
    if let Some(n) = opts.pending_per_peer {
        b = b.peer_limits(
            tern_core::net::DEFAULT_MAX_INBOUND_CONNECTIONS,
            tern_core::net::DEFAULT_MAX_QUEUED_BYTES,
            n,
            50,
        );
    }
    if let Some(action) = opts.halt_after {
        b = b.dev_halt_after(action);
    }
    b.start().await.expect("node starts")
}

/// Every event a node reported, handled as it is read.
#[derive(Debug, Default)]
struct Log {
    events: Vec<Event>,
}

impl Log {
    async fn poll(&mut self, node: &Node) {
        while let Some((seq, e)) = node.next_event().await.expect("events") {
            node.event_handled(seq).await.expect("handled");
            self.events.push(e);
        }
        check_durability(node, "node");
    }
    fn ready(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::ChannelReady { .. }))
            .count()
    }
    fn pending(&self) -> Vec<OutPoint> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::ChannelPending { funding_txo, .. } => Some(*funding_txo),
                _ => None,
            })
            .collect()
    }
    fn failed(&self) -> Vec<(Option<ChannelId>, String)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::ChannelOpenFailed {
                    temporary_channel_id,
                    reason,
                    ..
                } => Some((*temporary_channel_id, reason.clone())),
                _ => None,
            })
            .collect()
    }
    fn disconnects(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::PeerDisconnected { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }
    fn requests(&self) -> Vec<ChannelId> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::OpenChannelRequest {
                    temporary_channel_id,
                    ..
                } => Some(*temporary_channel_id),
                _ => None,
            })
            .collect()
    }
}

/// Polls both nodes every 50 ms until `done`, failing after 30 s with both logs.
async fn until(
    phone: (&Node, &mut Log),
    lsp: (&Node, &mut Log),
    what: &str,
    done: impl Fn(&Log, &Log) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        phone.1.poll(phone.0).await;
        lsp.1.poll(lsp.0).await;
        if done(phone.1, lsp.1) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: phone {:?} {:?} / lsp {:?} {:?}",
            phone.1,
            phone.0.list_channels().await,
            lsp.1,
            lsp.0.list_channels().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Mines a block and syncs both nodes every 300 ms until `ready` channels are ready on both.
async fn mine_until_ready(
    devnet: &Devnet,
    phone: (&Node, &mut Log),
    lsp: (&Node, &mut Log),
    ready: usize,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        phone.1.poll(phone.0).await;
        lsp.1.poll(lsp.0).await;
        if phone.1.ready() >= ready && lsp.1.ready() >= ready {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not {ready} ready: phone {:?} {:?} / lsp {:?} {:?}",
            phone.1,
            phone.0.list_channels().await,
            lsp.1,
            lsp.0.list_channels().await
        );
        devnet.mine(1);
        phone.0.sync(None).await.expect("sync");
        lsp.0.sync(None).await.expect("sync");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Nothing of any open is held once all ended: no coin lock, no intent in progress.
async fn assert_nothing_held(node: &Node, who: &str) {
    assert_eq!(
        node.dev_coin_locks().await.expect("locks"),
        vec![],
        "{who}: coin locks"
    );
    assert_eq!(
        node.dev_open_intents_in_progress().await.expect("intents"),
        vec![],
        "{who}: open intents in progress"
    );
    assert_eq!(
        node.list_balances()
            .await
            .expect("balances")
            .locked
            .to_sat(),
        0,
        "{who}"
    );
}

/// What the wallet spent: the funded coin minus what is left on chain.
async fn spent(node: &Node) -> u64 {
    let b = node.list_balances().await.expect("balances");
    FUNDED - b.confirmed.to_sat() - b.unconfirmed.to_sat() - b.locked.to_sat()
}

async fn stop(nodes: &[&Node]) {
    for n in nodes {
        n.stop().await;
    }
}

/// An open for more than the wallet holds (but within the channel limit) is refused by
/// `open_channel` at once, with the numbers, before the peer hears of it; with an open in
/// progress, what that open holds is counted and named.
#[tokio::test]
async fn an_open_the_wallet_cannot_fund_is_refused_at_once_and_the_peer_hears_nothing() {
    let (dl, dp) = (dir("refused-lsp"), dir("refused-phone"));
    let devnet = Devnet::start().await.expect("devnet");
    let manual = Opts {
        listen: true,
        manual: true,
        ..Opts::default()
    };
    let lsp = node(&devnet, &dl, 1, manual).await;
    let phone = node(&devnet, &dp, 2, Opts::default()).await;
    lsp.sync(None).await.expect("sync");
    fund(&devnet, &phone, FUNDED).await;
    let addr = lsp.listen_addr().expect("listening").to_string();
    let (mut pl, mut ll) = (Log::default(), Log::default());

    let asked = tokio::time::Instant::now();
    let refused = phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(1_500_000))
                .push_msat(0)
                .announce(false),
        )
        .await;
    let took = asked.elapsed();
    let Err(NodeError::InsufficientFunds {
        needed,
        available,
        locked_by_opens,
    }) = refused
    else {
        panic!("an open for more than the wallet holds must be refused: {refused:?}");
    };
    let fee = needed.to_sat() - 1_500_000;
    assert!((1..2_000).contains(&fee), "needed = amount + fee: {needed}");
    assert_eq!(available, Amount::from_sat(FUNDED));
    assert_eq!(locked_by_opens, Amount::ZERO);
    assert!(took < Duration::from_millis(500), "at once: {took:?}");
    println!("refused in {took:?}: needed {needed}, available {available}");
    // The peer heard nothing: no connection, no request, no channel; no intent left.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ll.poll(&lsp).await;
    pl.poll(&phone).await;
    assert!(ll.events.is_empty(), "lsp saw {:?}", ll.events);
    assert!(lsp.list_channels().await.is_empty() && phone.list_channels().await.is_empty());
    assert!(!phone
        .list_peers()
        .await
        .expect("peers")
        .contains(&lsp.node_id()));
    assert_nothing_held(&phone, "phone").await;

    // One open in progress holds 600k + its fee; 500k more no longer fits.
    let first = phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(600_000))
                .push_msat(0)
                .announce(false),
        )
        .await
        .expect("600k fits");
    until((&phone, &mut pl), (&lsp, &mut ll), "lsp request", |_, l| {
        l.requests().len() == 1
    })
    .await;
    let refused = phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(500_000))
                .push_msat(0)
                .announce(false),
        )
        .await;
    let Err(NodeError::InsufficientFunds {
        needed,
        available,
        locked_by_opens,
    }) = refused
    else {
        panic!("500k besides 600k in progress must be refused: {refused:?}");
    };
    let held = 600_000 + fee;
    assert_eq!(
        locked_by_opens,
        Amount::from_sat(held),
        "the first open's hold"
    );
    assert_eq!(available, Amount::from_sat(FUNDED - held));
    assert_eq!(needed, Amount::from_sat(500_000 + fee));
    let message = NodeError::InsufficientFunds {
        needed,
        available,
        locked_by_opens,
    }
    .to_string();
    assert!(
        message.contains(&format!("{} sat needed", 500_000 + fee))
            && message.contains(&format!("{} sat held by other opens", held)),
        "{message}"
    );
    assert_eq!(
        phone
            .dev_open_intents_in_progress()
            .await
            .expect("intents")
            .len(),
        1,
        "only the first open is recorded"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    ll.poll(&lsp).await;
    assert_eq!(
        ll.requests(),
        std::slice::from_ref(&first),
        "the peer saw only the first"
    );

    lsp.accept_channel(phone.node_id(), first)
        .await
        .expect("accept");
    mine_until_ready(&devnet, (&phone, &mut pl), (&lsp, &mut ll), 1).await;
    assert!(pl.failed().is_empty(), "{:?}", pl.failed());
    assert_nothing_held(&phone, "phone").await;
    let spent = spent(&phone).await;
    assert!((600_000..601_000).contains(&spent), "600k + fee: {spent}");
    stop(&[&phone, &lsp]).await;
    let _ = (std::fs::remove_dir_all(&dl), std::fs::remove_dir_all(&dp));
}

/// The funding transactions of `node`'s channels.
async fn fundings(devnet: &Devnet, node: &Node) -> Vec<Transaction> {
    node.list_channels()
        .await
        .iter()
        .filter_map(|c| c.funding_txo)
        .map(|o| {
            devnet
                .transaction(&o.txid)
                .expect("funding known to the devnet")
        })
        .collect()
}

/// How many of `txs` spend another one of them.
fn chained(txs: &[Transaction]) -> usize {
    let ids: Vec<Txid> = txs.iter().map(Transaction::compute_txid).collect();
    txs.iter()
        .filter(|t| {
            t.input
                .iter()
                .any(|i| ids.contains(&i.previous_output.txid))
        })
        .count()
}

/// Waits until every funding of the phone's channels is in the devnet's mempool or a block.
async fn wait_broadcast(devnet: &Devnet, phone: &Node, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let outs: Vec<_> = phone
            .list_channels()
            .await
            .iter()
            .filter_map(|c| c.funding_txo)
            .collect();
        if outs.len() == count
            && outs
                .iter()
                .all(|o| devnet.tx_state(&o.txid) != TxState::Unknown)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fundings not broadcast: {:?}",
            phone.list_channels().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Three opens at once from a wallet of one coin: all three reach ready on both sides, the
/// second and third fundings spending the change of the one before; nothing is left locked.
#[tokio::test]
async fn three_concurrent_opens_from_one_coin_all_reach_ready() {
    let (dl, dp) = (dir("three-lsp"), dir("three-phone"));
    let devnet = Devnet::start().await.expect("devnet");
    let listen = Opts {
        listen: true,
        ..Opts::default()
    };
    let lsp = node(&devnet, &dl, 1, listen).await;
    let phone = node(&devnet, &dp, 2, Opts::default()).await;
    lsp.sync(None).await.expect("sync");
    fund(&devnet, &phone, FUNDED).await;
    let addr = lsp.listen_addr().expect("listening").to_string();
    let (mut pl, mut ll) = (Log::default(), Log::default());

    let peer = lsp.node_id();
    let (a, b, c) = tokio::join!(
        phone.open_channel(
            OpenChannelParams::new(peer, addr.clone(), Amount::from_sat(200_000))
                .push_msat(0)
                .announce(false)
        ),
        phone.open_channel(
            OpenChannelParams::new(peer, addr.clone(), Amount::from_sat(200_000))
                .push_msat(0)
                .announce(false)
        ),
        phone.open_channel(
            OpenChannelParams::new(peer, addr.clone(), Amount::from_sat(200_000))
                .push_msat(0)
                .announce(false)
        ),
    );
    let temps = [a.expect("a"), b.expect("b"), c.expect("c")];
    assert!(temps[0] != temps[1] && temps[1] != temps[2] && temps[0] != temps[2]);
    until((&phone, &mut pl), (&lsp, &mut ll), "3 pending", |p, l| {
        (p.pending().len() == 3 && l.pending().len() == 3) || !p.failed().is_empty()
    })
    .await;
    assert!(pl.failed().is_empty(), "{:?}", pl.failed());
    wait_broadcast(&devnet, &phone, 3).await;
    let txs = fundings(&devnet, &phone).await;
    assert_eq!(chained(&txs), 2, "later fundings spend the earlier change");
    mine_until_ready(&devnet, (&phone, &mut pl), (&lsp, &mut ll), 3).await;

    assert!(pl.failed().is_empty() && ll.failed().is_empty());
    assert!(pl.disconnects().is_empty(), "{:?}", pl.disconnects());
    for n in [&phone, &lsp] {
        let channels = n.list_channels().await;
        assert_eq!(channels.len(), 3, "{channels:?}");
        assert!(channels.iter().all(|c| c.state == ChannelState::Ready));
    }
    assert_nothing_held(&phone, "phone").await;
    let fees: u64 = txs
        .iter()
        .map(|t| {
            let inputs: u64 = t
                .input
                .iter()
                .map(|i| {
                    devnet
                        .transaction(&i.previous_output.txid)
                        .expect("parent")
                        .output[i.previous_output.vout as usize]
                        .value
                        .to_sat()
                })
                .sum();
            inputs - t.output.iter().map(|o| o.value.to_sat()).sum::<u64>()
        })
        .sum();
    assert_eq!(spent(&phone).await, 600_000 + fees, "balances add up");
    println!("three fundings, fees {fees} sat");
    stop(&[&phone, &lsp]).await;
    let _ = (std::fs::remove_dir_all(&dl), std::fs::remove_dir_all(&dp));
}

/// One of two opens times out (the peer never answers it) while the other is still waiting
/// for its answer: only that one fails, with its temporary id; the connection stays up and the
/// other reaches ready. Before, its `error` came with a disconnect that failed the sibling too.
#[tokio::test]
async fn a_failed_open_fails_alone_and_the_connection_stays_up() {
    let (dl, dp) = (dir("alone-lsp"), dir("alone-phone"));
    let devnet = Devnet::start().await.expect("devnet");
    let manual = Opts {
        listen: true,
        manual: true,
        ..Opts::default()
    };
    let lsp = node(&devnet, &dl, 1, manual).await;
    let timeout = Opts {
        open_timeout_secs: Some(5),
        ..Opts::default()
    };
    let phone = node(&devnet, &dp, 2, timeout).await;
    lsp.sync(None).await.expect("sync");
    fund(&devnet, &phone, FUNDED).await;
    let addr = lsp.listen_addr().expect("listening").to_string();
    let (mut pl, mut ll) = (Log::default(), Log::default());

    let doomed = phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(300_000))
                .push_msat(0)
                .announce(false),
        )
        .await
        .expect("doomed open starts");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sibling = phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(300_000))
                .push_msat(0)
                .announce(false),
        )
        .await
        .expect("sibling open starts");
    until(
        (&phone, &mut pl),
        (&lsp, &mut ll),
        "the doomed open's timeout",
        |p, _| !p.failed().is_empty(),
    )
    .await;
    let failed = pl.failed();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        failed[0].0,
        Some(doomed),
        "the failure names the doomed open"
    );
    assert!(failed[0].1.contains("timed out"), "{failed:?}");
    assert_eq!(ll.requests(), [doomed, sibling]);
    // The sibling is still waiting for its answer, over the same connection.
    lsp.accept_channel(phone.node_id(), sibling)
        .await
        .expect("the sibling's request is still there");
    mine_until_ready(&devnet, (&phone, &mut pl), (&lsp, &mut ll), 1).await;
    assert_eq!(pl.failed().len(), 1, "{:?}", pl.failed());
    assert!(pl.disconnects().is_empty(), "phone: {:?}", pl.disconnects());
    assert!(ll.disconnects().is_empty(), "lsp: {:?}", ll.disconnects());
    assert!(phone
        .list_peers()
        .await
        .expect("peers")
        .contains(&lsp.node_id()));
    for n in [&phone, &lsp] {
        let channels = n.list_channels().await;
        assert_eq!(channels.len(), 1, "{channels:?}");
        assert_eq!(channels[0].state, ChannelState::Ready);
    }
    assert_nothing_held(&phone, "phone").await;
    let spent = spent(&phone).await;
    assert!(
        (300_000..301_000).contains(&spent),
        "one channel + fee: {spent}"
    );
    stop(&[&phone, &lsp]).await;
    let _ = (std::fs::remove_dir_all(&dl), std::fs::remove_dir_all(&dp));
}

/// Three fundings chained in the order opposite to their channels' (the fundee accepts the
/// last open first) are dropped from the mempool: the next block's rebroadcast sends each
/// parent before its child, so all three are back at once, and all three channels get ready.
#[tokio::test]
async fn chained_fundings_dropped_from_the_mempool_come_back_parents_first() {
    let (dl, dp) = (dir("drop-lsp"), dir("drop-phone"));
    let devnet = Devnet::start().await.expect("devnet");
    let manual = Opts {
        listen: true,
        manual: true,
        ..Opts::default()
    };
    let lsp = node(&devnet, &dl, 1, manual).await;
    let phone = node(&devnet, &dp, 2, Opts::default()).await;
    lsp.sync(None).await.expect("sync");
    fund(&devnet, &phone, FUNDED).await;
    let addr = lsp.listen_addr().expect("listening").to_string();
    let (mut pl, mut ll) = (Log::default(), Log::default());
    let mut temps = Vec::new();
    for _ in 0..3 {
        let temp = phone
            .open_channel(
                OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(200_000))
                    .push_msat(0)
                    .announce(false),
            )
            .await
            .expect("open");
        temps.push(temp);
    }
    until((&phone, &mut pl), (&lsp, &mut ll), "3 requests", |_, l| {
        l.requests().len() == 3
    })
    .await;
    // Last opened, first funded: each accept waits until the one before is pending.
    for (k, temp) in temps.iter().rev().enumerate() {
        lsp.accept_channel(phone.node_id(), *temp)
            .await
            .expect("accept");
        until((&phone, &mut pl), (&lsp, &mut ll), "pending", |p, _| {
            p.pending().len() == k + 1 || !p.failed().is_empty()
        })
        .await;
    }
    wait_broadcast(&devnet, &phone, 3).await;
    let txs = fundings(&devnet, &phone).await;
    assert_eq!(chained(&txs), 2, "a chain of three");
    let root = txs
        .iter()
        .find(|t| {
            !t.input.iter().any(|i| {
                txs.iter()
                    .any(|p| p.compute_txid() == i.previous_output.txid)
            })
        })
        .expect("a root")
        .compute_txid();
    let dropped = devnet.drop_mempool_tx(&root).expect("drop");
    assert_eq!(dropped.len(), 3, "the root and its descendants");

    devnet.mine(1);
    phone.sync(None).await.expect("sync");
    // The peer task rebroadcasts on the new block; no other block in between.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while txs
        .iter()
        .any(|t| devnet.tx_state(&t.compute_txid()) != TxState::Mempool)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all back after one block: {:?}",
            txs.iter()
                .map(|t| devnet.tx_state(&t.compute_txid()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lsp.sync(None).await.expect("sync");
    mine_until_ready(&devnet, (&phone, &mut pl), (&lsp, &mut ll), 3).await;
    assert!(pl.failed().is_empty(), "{:?}", pl.failed());
    assert_nothing_held(&phone, "phone").await;
    stop(&[&phone, &lsp]).await;
    let _ = (std::fs::remove_dir_all(&dl), std::fs::remove_dir_all(&dp));
}

/// The funder is killed during two concurrent opens from one coin — before any durable point,
/// or right after the first one's — and restarted on the same data dir: the open that was not
/// durable is failed, a durable one ends ready, and nothing stays locked or held: the whole
/// rest of the wallet can fund a new open.
#[tokio::test]
async fn a_kill_during_two_concurrent_opens_leaves_nothing_locked() {
    for (halt, ready) in [("send:funding_created", 0), ("persist", 1)] {
        let tag = halt.replace(':', "_");
        let (dl, dp) = (
            dir(&format!("kill-lsp-{tag}")),
            dir(&format!("kill-phone-{tag}")),
        );
        let devnet = Devnet::start().await.expect("devnet");
        let listen = Opts {
            listen: true,
            ..Opts::default()
        };
        let lsp = node(&devnet, &dl, 1, listen).await;
        let halting = Opts {
            halt_after: Some(halt),
            ..Opts::default()
        };
        let phone = node(&devnet, &dp, 2, halting).await;
        lsp.sync(None).await.expect("sync");
        fund(&devnet, &phone, FUNDED).await;
        let addr = lsp.listen_addr().expect("listening").to_string();
        let peer = lsp.node_id();
        // Either may return an error if the kill comes first; an open whose intent write was
        // still queued when the node died was never recorded (as in a killed process) and
        // fails with `Stopped` without a `ChannelOpenFailed` at the next start.
        let results = tokio::join!(
            phone.open_channel(
                OpenChannelParams::new(peer, addr.clone(), Amount::from_sat(300_000))
                    .push_msat(0)
                    .announce(false)
            ),
            phone.open_channel(
                OpenChannelParams::new(peer, addr.clone(), Amount::from_sat(300_000))
                    .push_msat(0)
                    .announce(false)
            ),
        );
        let unrecorded_at_most = [&results.0, &results.1]
            .iter()
            .filter(|r| matches!(r, Err(NodeError::Stopped)))
            .count();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !phone.is_stopped() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{halt}: never halted"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let phone = node(&devnet, &dp, 2, Opts::default()).await;
        let (mut pl, mut ll) = (Log::default(), Log::default());
        if ready > 0 {
            mine_until_ready(&devnet, (&phone, &mut pl), (&lsp, &mut ll), ready).await;
        }
        until(
            (&phone, &mut pl),
            (&lsp, &mut ll),
            "the failed opens",
            |p, _| {
                let failed = p.failed().len();
                failed + ready + unrecorded_at_most >= 2 && failed + ready <= 2
            },
        )
        .await;
        assert_nothing_held(&phone, halt).await;
        let b = phone.list_balances().await.expect("balances");
        let left = b.confirmed.to_sat() + b.unconfirmed.to_sat();
        let spent = FUNDED - left;
        assert!(
            (300_000 * ready as u64..300_000 * ready as u64 + 1_000).contains(&spent),
            "{halt}: {ready} channel(s) + fee, got {spent}"
        );
        // Nothing is held any more: the whole rest funds one more open.
        phone
            .open_channel(
                OpenChannelParams::new(peer, addr.clone(), Amount::from_sat(left - 2_000))
                    .push_msat(0)
                    .announce(false),
            )
            .await
            .unwrap_or_else(|e| panic!("{halt}: the rest of the wallet is free: {e}"));
        mine_until_ready(&devnet, (&phone, &mut pl), (&lsp, &mut ll), ready + 1).await;
        assert_nothing_held(&phone, halt).await;
        stop(&[&phone, &lsp]).await;
        let _ = (std::fs::remove_dir_all(&dl), std::fs::remove_dir_all(&dp));
    }
}

/// The manual inbound policy counts the requests waiting for the app toward the pending
/// limit (issue 17 §1): with room for two per peer, the phone's four opens give the LSP two
/// `OpenChannelRequest`s and the phone two failures naming the limit, before anything is
/// allocated; a rejected request frees its room (the next open is asked about), and an
/// accepted one goes on to ready.
#[tokio::test]
async fn the_manual_policy_holds_no_more_requests_than_the_pending_limit() {
    let (dl, dp) = (dir("manual-limit-lsp"), dir("manual-limit-phone"));
    let devnet = Devnet::start().await.expect("devnet");
    let lsp = node(
        &devnet,
        &dl,
        1,
        Opts {
            listen: true,
            manual: true,
            pending_per_peer: Some(2),
            ..Opts::default()
        },
    )
    .await;
    let phone = node(&devnet, &dp, 2, Opts::default()).await;
    lsp.sync(None).await.expect("sync");
    fund(&devnet, &phone, FUNDED).await;
    let addr = lsp.listen_addr().expect("listening").to_string();
    let (mut pl, mut ll) = (Log::default(), Log::default());
    let open = || {
        phone.open_channel(
            OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(100_000))
                .push_msat(0)
                .announce(false),
        )
    };
    let mut opened = Vec::new();
    for _ in 0..4 {
        opened.push(open().await.expect("the open starts"));
    }
    until(
        (&phone, &mut pl),
        (&lsp, &mut ll),
        "two requests and two refusals",
        |p, l| l.requests().len() == 2 && p.failed().len() == 2,
    )
    .await;
    let asked = ll.requests();
    assert_eq!(asked, opened[..2], "the first two are asked about");
    let failed = pl.failed();
    for (i, (id, reason)) in failed.iter().enumerate() {
        assert_eq!(*id, Some(opened[2 + i]), "{failed:?}");
        assert!(
            reason.contains("too many pending channel opens from this peer"),
            "{reason}"
        );
    }
    assert_eq!(lsp.pending_inbound_opens(), 2);
    assert!(lsp.list_channels().await.is_empty(), "nothing allocated");
    // A rejected request frees its room: the next open is asked about, not refused.
    lsp.reject_channel(phone.node_id(), asked[0])
        .await
        .expect("reject");
    until(
        (&phone, &mut pl),
        (&lsp, &mut ll),
        "the rejection",
        |p, _| p.failed().len() == 3,
    )
    .await;
    let next = open().await.expect("the next open starts");
    until(
        (&phone, &mut pl),
        (&lsp, &mut ll),
        "the next request",
        |_, l| l.requests().len() == 3,
    )
    .await;
    assert_eq!(ll.requests()[2], next);
    assert_eq!(pl.failed().len(), 3, "{:?}", pl.failed());
    assert_eq!(lsp.pending_inbound_opens(), 2);
    // An accepted request goes on to ready; its room frees at its durable point.
    lsp.accept_channel(phone.node_id(), next)
        .await
        .expect("accept");
    mine_until_ready(&devnet, (&phone, &mut pl), (&lsp, &mut ll), 1).await;
    assert_eq!(
        lsp.pending_inbound_opens(),
        1,
        "the other request still waits"
    );
    assert!(pl.disconnects().is_empty(), "phone: {:?}", pl.disconnects());
    stop(&[&phone, &lsp]).await;
    let _ = (std::fs::remove_dir_all(&dl), std::fs::remove_dir_all(&dp));
}
