//! Closing channels through the node API (issue 14), on the in-memory chain and network
//! (`common::memory`): every refusal of `close_channel` / `force_close_channel` happens before
//! anything is stored or sent.
//!
//! Needs the `dev-disconnect` feature (the in-memory network, the clock hold and the node's
//! self-audit are dev seams; `scripts/test.sh` enables it).
#![cfg(feature = "dev-disconnect")]

use bitcoin::hashes::Hash;
use bitcoin::{Address, Amount, Network, PubkeyHash, WitnessProgram, WitnessVersion};
use tern_core::net::MemoryNet;
use tern_core::node::{CloseKind, Event, InboundPolicy, Node, NodeError, OpenChannelParams};
use tern_core::proto::channel::{ChannelState, CloseKind as ProtoCloseKind, ClosingStatus};
use tern_core::proto::wire::ChannelId;
use tern_core::store::Store;
use tern_devnet::{DevChain, TxState};

mod common;

use common::memory::*;
use common::node::{check_durability, fund};

fn program(version: WitnessVersion, len: usize, network: Network) -> Address {
    let program = WitnessProgram::new(version, &vec![0x42; len]).expect("program");
    Address::from_witness_program(program, network)
}

/// A mainnet P2WPKH address.
fn mainnet_p2wpkh() -> Address {
    program(WitnessVersion::V0, 20, Network::Bitcoin)
}

/// A regtest P2TR address.
fn regtest_p2tr() -> Address {
    program(WitnessVersion::V1, 32, Network::Regtest)
}

/// A regtest P2PKH address (not segwit: no closing transaction may pay it).
fn regtest_p2pkh() -> Address {
    Address::p2pkh(PubkeyHash::from_byte_array([0x42; 20]), Network::Regtest)
}

/// What the node's store holds of its channels and of the close destination: a refusal
/// changes neither.
fn stored(dir: &std::path::Path) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
    let store = Store::open(dir.join("tern.sqlite")).expect("store");
    let records = store
        .list_channels()
        .expect("channels")
        .into_iter()
        .map(|r| r.record)
        .collect();
    (records, store.get_meta("close_destination").expect("meta"))
}

async fn expect_cannot_close(node: &Node, id: ChannelId, force: bool, why: &str) {
    let got = if force {
        node.force_close_channel(id).await
    } else {
        node.close_channel(id, None).await
    };
    match got {
        Err(NodeError::CannotClose { channel_id, reason }) => {
            assert_eq!(channel_id, id);
            assert!(reason.contains(why), "{reason}");
        }
        other => panic!("expected CannotClose ({why}): {other:?}"),
    }
}

/// Every refusal of the close API, on a ready channel and on an open the peer has not
/// accepted yet: an unknown id, a channel that is not durable, an address of another network,
/// a script no closing transaction may pay, a taproot address while the peer is not connected
/// to say it supports `option_shutdown_anysegwit`. None stores anything (the channel records
/// and the close destination are as they were, no action was performed) or reaches the peer.
#[tokio::test(start_paused = true)]
async fn every_refusal_comes_before_anything_is_stored_or_sent() {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir("close-refusals-lsp"), dir("close-refusals-phone"));
    let lsp = node(&chain, &net, &dl, 11, true).await;
    let phone = node(&chain, &net, &dp, 12, false).await;
    open_to_ready(&chain, &phone, &lsp).await;
    let id = phone.list_channels().await[0].channel_id;

    let unknown = ChannelId([0xee; 32]);
    for force in [false, true] {
        let got = if force {
            phone.force_close_channel(unknown).await
        } else {
            phone.close_channel(unknown, None).await
        };
        assert!(
            matches!(got, Err(NodeError::UnknownChannel(c)) if c == unknown),
            "{got:?}"
        );
    }
    let audited = phone.dev_audited_actions();
    let refused = [(mainnet_p2wpkh(), "network"), (regtest_p2pkh(), "segwit")];
    for (addr, why) in refused {
        match phone.close_channel(id, Some(addr.clone())).await {
            Err(NodeError::InvalidInput { field, reason }) => {
                assert_eq!(field, "address");
                assert!(reason.contains(why), "{addr}: {reason}");
            }
            other => panic!("{addr}: expected InvalidInput: {other:?}"),
        }
    }
    // The LSP goes away: the phone cannot know whether it takes a taproot script.
    lsp.stop().await;
    settle("the phone sees the LSP gone", || async {
        phone.list_peers().await.expect("peers").is_empty()
    })
    .await;
    match phone.close_channel(id, Some(regtest_p2tr())).await {
        Err(NodeError::InvalidInput { field, reason }) => {
            assert_eq!(field, "address");
            assert!(reason.contains("option_shutdown_anysegwit"), "{reason}");
        }
        other => panic!("P2TR while disconnected: expected InvalidInput: {other:?}"),
    }
    assert_eq!(
        phone.dev_audited_actions(),
        audited,
        "a refused close performs no action"
    );
    assert_eq!(phone.list_channels().await[0].state, ChannelState::Ready);
    check_durability(&phone, "phone");
    phone.stop().await;
    let (records, destination) = stored(&dp);
    assert_eq!(records.len(), 1);
    assert_eq!(destination, None, "no close destination handed out");
    let before = records;

    // The same refusals after a restart change nothing on disk either.
    let phone = node(&chain, &net, &dp, 12, false).await;
    for addr in [mainnet_p2wpkh(), regtest_p2pkh(), regtest_p2tr()] {
        assert!(phone.close_channel(id, Some(addr)).await.is_err());
    }
    phone.stop().await;
    assert_eq!(stored(&dp), (before, None));
}

/// An open the peer has not answered is not durable: neither close takes it, and nothing is
/// stored.
#[tokio::test(start_paused = true)]
async fn an_open_that_is_not_durable_cannot_close() {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir("close-transient-lsp"), dir("close-transient-phone"));
    // The LSP asks its app about each open, and the app never answers.
    let lsp = node_with(&chain, &net, &dl, 13, true, |b| {
        b.inbound_policy(InboundPolicy::Manual)
    })
    .await;
    let phone = node(&chain, &net, &dp, 14, false).await;
    lsp.sync(None).await.expect("sync");
    fund(&chain, &phone, 500_000).await;
    let temp = phone
        .open_channel(OpenChannelParams::new(
            lsp.node_id(),
            LSP_ADDR,
            Amount::from_sat(100_000),
        ))
        .await
        .expect("open");
    wait_for(&lsp, "the open request", |e| {
        matches!(e, Event::OpenChannelRequest { .. })
    })
    .await;
    let c = &phone.list_channels().await[0];
    assert_eq!(c.state, ChannelState::OutboundAwaitingAccept);
    let audited = phone.dev_audited_actions();
    for force in [false, true] {
        expect_cannot_close(&phone, temp, force, "not durable").await;
    }
    assert_eq!(phone.dev_audited_actions(), audited);
    phone.stop().await;
    lsp.stop().await;
    assert_eq!(stored(&dp), (Vec::new(), None));
}

/// The funding outpoint of `node`'s only channel.
async fn funding(node: &Node) -> bitcoin::OutPoint {
    node.list_channels().await[0].funding_txo.expect("funding")
}

/// A cooperative close of the standard channel (250 000 sat, 10 000 pushed to the LSP),
/// started by `phone_closes ? phone : LSP`, optionally to a given address of the phone: both
/// sides hear `ChannelClosing` with the right initiator, the agreed transaction reaches the
/// chain, and once it confirms each wallet holds exactly its share — the phone (funder) its
/// balance less the closing fee, the LSP its 10 000 sat.
async fn cooperative_close(tag: &str, seeds: (u8, u8), phone_closes: bool, to_given: bool) {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir(&format!("{tag}-lsp")), dir(&format!("{tag}-phone")));
    let lsp = node(&chain, &net, &dl, seeds.0, true).await;
    let phone = node(&chain, &net, &dp, seeds.1, false).await;
    open_to_ready(&chain, &phone, &lsp).await;
    let id = phone.list_channels().await[0].channel_id;
    let funding = funding(&phone).await;
    let wallet = |n: &Node| {
        let n = n.clone();
        async move {
            let b = n.list_balances().await.expect("balances");
            b.confirmed + b.unconfirmed
        }
    };
    let (phone_before, lsp_before) = (wallet(&phone).await, wallet(&lsp).await);
    let given = if to_given {
        Some(phone.new_address().await.expect("address"))
    } else {
        None
    };
    let (closer, other) = if phone_closes {
        (&phone, &lsp)
    } else {
        (&lsp, &phone)
    };
    closer.close_channel(id, given).await.expect("close");
    // A second close is refused: one is under way.
    assert!(matches!(
        closer.close_channel(id, None).await,
        Err(NodeError::CannotClose { .. })
    ));
    for (n, kind) in [
        (closer, CloseKind::CooperativeLocal),
        (other, CloseKind::CooperativeRemote),
    ] {
        wait_for(
            n,
            "ChannelClosing",
            |e| matches!(e, Event::ChannelClosing { kind: k, .. } if *k == kind),
        )
        .await;
    }
    settle("the agreed close in the mempool", || async {
        chain.outspend(&funding).is_some()
    })
    .await;
    let close_txid = chain.outspend(&funding).expect("spent").txid;
    let close_tx = chain.transaction(&close_txid).expect("close tx");
    let fee = 250_000
        - close_tx
            .output
            .iter()
            .map(|o| o.value.to_sat())
            .sum::<u64>();
    assert!(fee > 0, "the funder pays a closing fee");
    for (n, who) in [(&phone, "phone"), (&lsp, "lsp")] {
        // The side that broadcast first agreed first; the other hears the last
        // closing_signed a moment later.
        settle("both sides agreed", || async {
            n.list_channels().await[0].status.contains("cooperative")
        })
        .await;
        let c = &n.list_channels().await[0];
        assert!(c.closing.is_some(), "{who}: {c:?}");
        assert!(
            matches!(
                n.force_close_channel(id).await,
                Err(NodeError::CannotClose { .. })
            ),
            "{who}: the agreed close is on chain: no commitment over it"
        );
        check_durability(n, who);
    }
    mine_until(&chain, &[&phone, &lsp], 1).await;
    assert!(matches!(
        chain.tx_state(&close_txid),
        TxState::Confirmed { .. }
    ));
    let want_phone = phone_before + Amount::from_sat(240_000 - fee);
    let want_lsp = lsp_before + Amount::from_sat(10_000);
    settle("both wallets see their share", || async {
        phone.sync(None).await.expect("sync");
        lsp.sync(None).await.expect("sync");
        wallet(&phone).await == want_phone && wallet(&lsp).await == want_lsp
    })
    .await;
    // Six deep: Closed on both sides, each ChannelClosed naming its share, once.
    mine_until(&chain, &[&phone, &lsp], 6).await;
    for (n, who, share) in [(&phone, "phone", 240_000 - fee), (&lsp, "lsp", 10_000)] {
        let e = wait_for(n, "ChannelClosed", |e| claimed(e).is_some()).await;
        assert_eq!(claimed(&e), Some(share), "{who}: {e:?}");
        let c = &n.list_channels().await[0];
        assert!(
            c.status.starts_with("closed (cooperative"),
            "{who}: {}",
            c.status
        );
        check_durability(n, who);
    }
    mine_until(&chain, &[&phone, &lsp], 2).await;
    for n in [&phone, &lsp] {
        let more = n.pending_events(10).await.expect("events");
        assert!(
            !more.iter().any(|(_, e)| claimed(e).is_some()),
            "one ChannelClosed: {more:?}"
        );
    }
    phone.stop().await;
    lsp.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_phone_closes_cooperatively_and_both_wallets_get_their_share() {
    cooperative_close("coop-phone", (21, 22), true, false).await;
}

#[tokio::test(start_paused = true)]
async fn the_lsp_closes_cooperatively_and_both_wallets_get_their_share() {
    cooperative_close("coop-lsp", (23, 24), false, false).await;
}

#[tokio::test(start_paused = true)]
async fn a_cooperative_close_to_a_given_address() {
    cooperative_close("coop-given", (25, 26), true, true).await;
}

/// The amount `event` says came back, if it is a `ChannelClosed`.
fn claimed(event: &Event) -> Option<u64> {
    match event {
        Event::ChannelClosed { claimed, .. } => Some(claimed.to_sat()),
        _ => None,
    }
}

/// Mines one block at a time (syncing both) until `done` holds, at most `max` blocks.
async fn mine_while<F: std::future::Future<Output = bool>>(
    chain: &DevChain,
    nodes: &[&Node],
    max: u32,
    what: &str,
    done: impl Fn() -> F,
) {
    for _ in 0..max {
        if done().await {
            return;
        }
        mine_until(chain, nodes, 1).await;
        // Let the peer tasks handle what the syncs handed them.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(done().await, "not within {max} blocks: {what}");
}

/// The phone force-closes the standard channel; its `to_local` waits for the LSP's
/// `to_self_delay` while the LSP sweeps its `to_remote` at once. The phone is stopped after
/// its sweep is broadcast and started again: the output watch it re-arms reports the sweep's
/// confirmation. Both end `Closed` with a `ChannelClosed` naming what came back, and each
/// wallet grew by exactly that.
#[tokio::test(start_paused = true)]
async fn a_force_close_is_swept_into_both_wallets_across_a_restart() {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir("force-lsp"), dir("force-phone"));
    // The delay on the phone's to_local is the one the LSP asks: a day here (the default,
    // a week, would only mean mining 1008 blocks for the same checks).
    let lsp = node_with(&chain, &net, &dl, 31, true, |b| {
        b.channel_config(|c| c.our_to_self_delay = 144)
    })
    .await;
    let mut phone = node(&chain, &net, &dp, 32, false).await;
    open_to_ready(&chain, &phone, &lsp).await;
    let id = phone.list_channels().await[0].channel_id;
    let funding = funding(&phone).await;
    let wallet = |n: &Node| {
        let n = n.clone();
        async move {
            let b = n.list_balances().await.expect("balances");
            (b.confirmed + b.unconfirmed).to_sat()
        }
    };
    let (phone_before, lsp_before) = (wallet(&phone).await, wallet(&lsp).await);

    phone.force_close_channel(id).await.expect("force close");
    wait_for(&phone, "ChannelClosing", |e| {
        matches!(
            e,
            Event::ChannelClosing {
                kind: CloseKind::LocalForce,
                ..
            }
        )
    })
    .await;
    assert!(matches!(
        phone.force_close_channel(id).await,
        Err(NodeError::CannotClose { .. })
    ));
    settle("the commitment in the mempool", || async {
        chain.outspend(&funding).is_some()
    })
    .await;
    let commitment = chain
        .transaction(&chain.outspend(&funding).expect("spent").txid)
        .expect("commitment");
    mine_until(&chain, &[&phone, &lsp], 1).await;
    wait_for(&lsp, "the LSP's ChannelClosing", |e| {
        matches!(
            e,
            Event::ChannelClosing {
                kind: CloseKind::RemoteForce,
                ..
            }
        )
    })
    .await;
    let c = &phone.list_channels().await[0];
    let [claim] = c.claimable.as_slice() else {
        panic!("one claimable amount: {c:?}")
    };
    let tern_core::proto::channel::ClaimStatus::Timelocked { height } = claim.status else {
        panic!("to_local is timelocked: {c:?}")
    };
    assert!(
        c.status.contains(&format!("spendable at block {height}")),
        "{}",
        c.status
    );
    let claims = phone.claimable_balances();
    assert_eq!(claims.len(), 1, "{claims:?}");
    assert_eq!(claims[0].amount.to_sat(), claim.amount_sat);
    let to_local = commitment
        .output
        .iter()
        .map(|o| o.value.to_sat())
        .find(|v| *v == claim.amount_sat)
        .expect("to_local on the commitment");

    // Blocks until the phone's sweep is out.
    let sweep_out = || async {
        let to_local_op = commitment
            .output
            .iter()
            .position(|o| o.value.to_sat() == to_local)
            .map(|v| bitcoin::OutPoint::new(commitment.compute_txid(), v as u32));
        to_local_op.and_then(|op| chain.outspend(&op))
    };
    mine_while(
        &chain,
        &[&phone, &lsp],
        200,
        "the phone's sweep",
        || async { sweep_out().await.is_some() },
    )
    .await;
    assert!(chain.tip().0 + 1 >= height, "not before block {height}");
    let sweep = chain
        .transaction(&sweep_out().await.expect("sweep").txid)
        .expect("sweep tx");
    let swept: u64 = sweep.output.iter().map(|o| o.value.to_sat()).sum();

    // Restarted before the sweep confirms: the re-armed output watch reports it.
    phone.stop().await;
    drop(phone);
    phone = node(&chain, &net, &dp, 32, false).await;
    let mut closed = (None, None);
    for _ in 0..20 {
        mine_until(&chain, &[&phone, &lsp], 1).await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        for (n, slot) in [(&phone, &mut closed.0), (&lsp, &mut closed.1)] {
            while let Some((seq, e)) = n.next_event().await.expect("events") {
                n.event_handled(seq).await.expect("handled");
                if let Some(sat) = claimed(&e) {
                    assert!(slot.is_none(), "one ChannelClosed: {e:?}");
                    *slot = Some(sat);
                }
            }
        }
        if closed.0.is_some() && closed.1.is_some() {
            break;
        }
    }
    let (Some(phone_claimed), Some(lsp_claimed)) = closed else {
        panic!(
            "both close: {closed:?}; {:?} / {:?}",
            phone.list_channels().await,
            lsp.list_channels().await
        )
    };
    assert_eq!(phone_claimed, swept, "the phone's claim is its sweep");
    assert!(swept < to_local, "the sweep paid a fee");
    for (n, who) in [(&phone, "phone"), (&lsp, "lsp")] {
        let c = &n.list_channels().await[0];
        assert!(c.status.starts_with("closed"), "{who}: {}", c.status);
        check_durability(n, who);
    }
    settle("both wallets hold what came back", || async {
        phone.sync(None).await.expect("sync");
        lsp.sync(None).await.expect("sync");
        wallet(&phone).await == phone_before + phone_claimed
            && wallet(&lsp).await == lsp_before + lsp_claimed
    })
    .await;
    assert!(phone.claimable_balances().is_empty());
    phone.stop().await;
    lsp.stop().await;
}

/// [`node`] whose chain source is returned too, to count the requests it answers.
async fn counted_node(
    chain: &DevChain,
    net: &MemoryNet,
    data: &std::path::Path,
    seed: u8,
) -> (Node, common::chain::DevnetSource) {
    let source = common::chain::DevnetSource::new(chain.clone());
    let node = tern_core::node::Builder::new(Network::Regtest, data, "http://no-esplora.invalid")
        .seed([seed; 32])
        .chain_source(source.clone())
        .dev_memory_net(net.clone())
        .dev_hold_clock_during_store_jobs()
        .start()
        .await
        .expect("node starts");
    (node, source)
}

/// Requests of one sync of `node` after `blocks` new blocks (every request the node made in
/// between counts: rebroadcasts, fetched spends).
async fn requests_of_block(
    chain: &DevChain,
    node: &Node,
    source: &common::chain::DevnetSource,
    blocks: u32,
) -> usize {
    // Let the peer tasks finish what the last sync handed them.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let before = source.requests();
    chain.mine(blocks);
    node.sync(None).await.expect("sync");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    eprintln!("requests of the block: {:?}", source.requests_since(before));
    source.requests() - before
}

/// The request budget of a closing channel (the issue's `sync_budget` row, in memory: the
/// requests the node's chain source answers are Esplora's): a ready channel's block costs
/// `ready` (2: the tip and its header); the sync right after the cooperative close is
/// broadcast checks the funding outpoint at once (tip, outspend, the close address's
/// history: 3); the block that confirms the close costs two more than a ready one (the
/// funding's outspend and the close address's history); the closing transaction is never
/// fetched (the sync checks the spend against the transaction we posted); once it is
/// confirmed a block costs what a ready channel's does (measured: 2, 3, 4, then 2).
#[tokio::test(start_paused = true)]
async fn a_closing_channel_costs_a_few_requests_per_block_and_nothing_once_confirmed() {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir("budget-lsp"), dir("budget-phone"));
    let lsp = node(&chain, &net, &dl, 41, true).await;
    let (phone, source) = counted_node(&chain, &net, &dp, 42).await;
    open_to_ready(&chain, &phone, &lsp).await;
    let id = phone.list_channels().await[0].channel_id;
    let funding = funding(&phone).await;
    // A ready channel, per block (the lowest of a few: its outpoint is due once in 36).
    let mut ready = usize::MAX;
    for _ in 0..3 {
        ready = ready.min(requests_of_block(&chain, &phone, &source, 1).await);
    }
    let from_close = source.requests();
    phone.close_channel(id, None).await.expect("close");
    settle("the agreed close in the mempool", || async {
        chain.outspend(&funding).is_some()
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let before = source.requests();
    phone.sync(None).await.expect("sync");
    let right_after = source.requests() - before;
    let confirming = requests_of_block(&chain, &phone, &source, 1).await;
    let mut after = Vec::new();
    for _ in 0..3 {
        after.push(requests_of_block(&chain, &phone, &source, 1).await);
    }
    eprintln!(
        "requests per sync: ready {ready}; right after the close broadcast {right_after}; \
         the confirming block {confirming}; then {after:?}; {}",
        phone.list_channels().await[0].status
    );
    assert!(right_after <= 3, "right after the broadcast: {right_after}");
    assert!(
        confirming <= ready + 2,
        "confirming block: {confirming} (ready: {ready})"
    );
    let asked = source.requests_since(from_close);
    assert!(
        !asked.contains(&"raw_tx"),
        "our own closing transaction is never fetched: {asked:?}"
    );
    // Once the close confirmed, a block costs what a ready channel's did: the closing
    // channel checks nothing more, and no wallet address was revealed for nothing (our
    // answer to the peer's `shutdown` reply once cost a fresh idle address, one history
    // request per block).
    assert!(
        after.iter().all(|n| *n == ready),
        "a confirmed close costs nothing more per block: {after:?} (ready: {ready})"
    );
    lsp.stop().await;
    phone.stop().await;
}

/// The general guard: a funding already spent (here by the LSP's commitment in the mempool) is
/// never answered with our commitment — the phone, told nothing (stopped while the LSP
/// force-closed), force-closes too: it asks for the funding's spend first, posts no
/// transaction spending the funding, and learns the LSP's commitment (RemoteForce).
#[tokio::test(start_paused = true)]
async fn our_commitment_is_never_broadcast_over_a_spend_of_the_funding() {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir("guard-lsp"), dir("guard-phone"));
    let lsp = node(&chain, &net, &dl, 45, true).await;
    let (phone, _) = counted_node(&chain, &net, &dp, 46).await;
    open_to_ready(&chain, &phone, &lsp).await;
    let id = phone.list_channels().await[0].channel_id;
    let funding = funding(&phone).await;
    phone.stop().await;
    drop(phone);
    lsp.force_close_channel(id)
        .await
        .expect("the LSP's force close");
    settle("the LSP's commitment in the mempool", || async {
        chain.outspend(&funding).is_some()
    })
    .await;
    let theirs = chain.outspend(&funding).expect("spent").txid;
    let (phone, source) = counted_node(&chain, &net, &dp, 46).await;
    // Now, or on the LSP's `error` once reconnected: the phone's own force close.
    let _ = phone.force_close_channel(id).await;
    mine_until(&chain, &[&phone, &lsp], 1).await;
    wait_for(&phone, "the phone's RemoteForce", |e| {
        matches!(
            e,
            Event::ChannelClosing {
                kind: CloseKind::RemoteForce,
                ..
            }
        )
    })
    .await;
    let asked = source.requests_since(0);
    assert!(asked.contains(&"outspend"), "{asked:?}");
    let over: Vec<_> = source
        .posted()
        .iter()
        .filter(|t| t.input.iter().any(|i| i.previous_output == funding))
        .map(|t| t.compute_txid())
        .collect();
    assert!(
        over.is_empty(),
        "the phone posted a spend of the funding: {over:?}"
    );
    assert_eq!(chain.outspend(&funding).expect("spent").txid, theirs);
    lsp.stop().await;
    phone.stop().await;
}

/// A spend learnt straight from the chain source (the peer's `error` met by a funding check),
/// then a stop before any sync: restarted, the node still follows that spend to its
/// confirmation (found by the close kill test: the channel stayed "unconfirmed" for ever).
#[tokio::test(start_paused = true)]
async fn a_spend_learnt_at_the_peers_error_is_followed_to_its_confirmation_after_a_restart() {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir("follow-lsp"), dir("follow-phone"));
    let lsp = node(&chain, &net, &dl, 47, true).await;
    let phone = node(&chain, &net, &dp, 48, false).await;
    open_to_ready(&chain, &phone, &lsp).await;
    let id = phone.list_channels().await[0].channel_id;
    let funding = funding(&phone).await;
    phone.stop().await;
    drop(phone);
    lsp.force_close_channel(id)
        .await
        .expect("the LSP's force close");
    settle("the LSP's commitment in the mempool", || async {
        chain.outspend(&funding).is_some()
    })
    .await;
    // The phone comes back, hears the LSP's error, learns the spend (no sync).
    let phone = node(&chain, &net, &dp, 48, false).await;
    settle("the phone closing on the LSP's commitment", || async {
        matches!(
            phone.list_channels().await[0].closing,
            Some(ClosingStatus::OnChain {
                kind: ProtoCloseKind::RemoteForce,
                ..
            })
        )
    })
    .await;
    phone.stop().await;
    drop(phone);
    chain.mine(1);
    let phone = node(&chain, &net, &dp, 48, false).await;
    for _ in 0..3 {
        phone.sync(None).await.expect("sync");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let closing = phone.list_channels().await[0].closing.clone();
    assert!(
        matches!(
            closing,
            Some(ClosingStatus::OnChain {
                confirmed_at: Some(_),
                ..
            })
        ),
        "{closing:?}"
    );
    lsp.stop().await;
    phone.stop().await;
}
