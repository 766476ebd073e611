//! "An open the funder forgot", against ldk-node 0.7: ldk-node opens a channel to Tern (with
//! `push_msat` for Tern); Tern, the fundee, persists the channel and is killed before its
//! `funding_signed` leaves (`dev_halt_after("persist")`); ldk-node drops the unfunded open when
//! the connection goes. Restarted on the same data dir, Tern sends `channel_reestablish` and
//! ldk-node answers with LDK's placeholder for a channel it does not know, then an `error`.
//!
//! Tern must fail the channel in words a user understands, tell the app (`ChannelOpenFailed`:
//! the channel never opened and nothing is on chain, so not `ChannelFailed`, which is for a
//! ready channel), never broadcast a commitment (it would spend a funding that never
//! existed), and keep watching the funding until BOLT 2's 2016-block timeout in case a late
//! funding appears.

use std::path::Path;
use std::time::Duration;

use bitcoin::{Amount, Network};
use ldk_node::Event as LdkEvent;
use tern_core::node::{Builder, ChannelDetails, Event, Node};
use tern_core::proto::channel::{ChannelState, FUNDEE_FUNDING_TIMEOUT_BLOCKS};
use tern_devnet::Devnet;

mod common;

use common::{free_port, ldk_addr, start_ldk, sync_ldk, Dirs};

const TIMEOUT: Duration = Duration::from_secs(90);
const CHANNEL_SAT: u64 = 200_000;
const PUSH_MSAT: u64 = 30_000_000;
const REASON: &str =
    "the funder dropped the open before our funding_signed reached it; nothing was committed";

/// A Tern node listening on `port` (the same port after the restart, where ldk-node finds it).
async fn start_tern(devnet: &Devnet, dir: &Path, port: u16, halt_after: Option<&str>) -> Node {
    let mut b = Builder::new(Network::Regtest, dir, &devnet.base_url())
        .seed([7; 32])
        .listen(format!("127.0.0.1:{port}"));
    if let Some(action) = halt_after {
        b = b.dev_halt_after(action);
    }
    b.start().await.expect("tern starts")
}

async fn only_channel(tern: &Node) -> ChannelDetails {
    let channels = tern.list_channels().await;
    assert_eq!(channels.len(), 1, "{channels:?}");
    channels[0].clone()
}

/// Waits for `done`, failing with `what` after [`TIMEOUT`].
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_no_broadcast(devnet: &Devnet, tern: &Node, when: &str) {
    let counts = devnet.requests();
    assert_eq!(
        counts.route("POST /tx"),
        0,
        "{when}: nothing may be broadcast: {counts:?}"
    );
    assert!(
        tern.dev_durability_violations().is_empty(),
        "{when}: {:?}",
        tern.dev_durability_violations()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_fundee_killed_before_funding_signed_and_forgotten_by_ldk_node() {
    let dirs = Dirs::new("forgot");
    let devnet = Devnet::start().await.expect("devnet");
    let ldk = start_ldk(&devnet, &dirs.ldk(), free_port());
    let port = free_port();
    let tern = start_tern(&devnet, &dirs.tern(), port, Some("persist")).await;
    let address = ldk.onchain_payment().new_address().expect("ldk address");
    devnet
        .faucet(&address, Amount::from_sat(1_000_000))
        .expect("faucet");
    devnet.mine(1);
    sync_ldk(&ldk);
    tern.sync(None).await.expect("tern sync");
    let created = tern.synced_height().expect("synced");
    ldk.open_channel(
        tern.node_id(),
        ldk_addr(port),
        CHANNEL_SAT,
        Some(PUSH_MSAT),
        None,
    )
    .expect("ldk-node opens");

    // Tern persists its channel (the fundee's durable point) and is killed at once.
    wait_for("tern never reached its durable point", || tern.is_stopped()).await;
    let killed = only_channel(&tern).await;
    assert_eq!(
        killed.state,
        ChannelState::AwaitingConfirmations,
        "{killed:?}"
    );
    let funding = killed.funding_txo.expect("funding outpoint");
    drop(tern);
    // ldk-node never got funding_signed: it drops the open when the connection goes, and
    // never broadcasts the funding.
    let mut ldk_closed = None;
    wait_for("ldk-node keeps the unfunded channel", || {
        while let Some(e) = ldk.next_event() {
            ldk.event_handled().expect("ldk-node event handled");
            if let LdkEvent::ChannelClosed { reason, .. } = e {
                ldk_closed = Some(reason);
            }
        }
        ldk_closed.is_some() && ldk.list_channels().is_empty()
    })
    .await;
    assert_eq!(devnet.requests().route("POST /tx"), 0, "nobody broadcast");
    devnet.reset_requests();

    let tern = start_tern(&devnet, &dirs.tern(), port, None).await;
    let _ = ldk.connect(tern.node_id(), ldk_addr(port), false);
    // Tern's reestablish gets LDK's placeholder and error: the channel fails, in words.
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        while let Some((seq, e)) = tern.next_event().await.expect("tern events") {
            tern.event_handled(seq).await.expect("handled");
            events.push(e);
        }
        if events
            .iter()
            .any(|e| matches!(e, Event::ChannelOpenFailed { .. }))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tern never failed the channel"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::ChannelOpenFailed {
                channel_id, reason, ..
            } => Some((*channel_id, reason.clone())),
            Event::ChannelFailed { .. } => panic!("a channel that never opened: {events:?}"),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        [(Some(killed.channel_id), REASON.to_string())],
        "{events:?}"
    );
    let ch = only_channel(&tern).await;
    assert_eq!(ch.state, ChannelState::FailedUnfunded, "{ch:?}");
    assert_eq!(ch.funding_txo, Some(funding));
    assert_eq!(ch.balance_msat, PUSH_MSAT);
    let deadline_text = " watching for a late funding until block ";
    assert!(
        ch.status
            .starts_with(&format!("failed: {REASON};{deadline_text}")),
        "{}",
        ch.status
    );
    let deadline: u32 = ch
        .status
        .rsplit(deadline_text)
        .next()
        .and_then(|n| n.parse().ok())
        .expect("deadline in the status");
    assert_eq!(deadline, created + FUNDEE_FUNDING_TIMEOUT_BLOCKS);
    assert_no_broadcast(&devnet, &tern, "after the failure");

    // The funding is still watched: each new block asks about it.
    let funding_path = format!("GET /tx/{}", funding.txid);
    devnet.reset_requests();
    devnet.mine(1);
    tern.sync(None).await.expect("tern sync");
    let asked = devnet.requests().by_path.get(&funding_path).copied();
    assert_eq!(asked, Some(1), "{:?}", devnet.requests());
    // Until the BOLT 2 timeout: the channel stays listed, failed and watched...
    let (tip, _) = devnet.tip();
    devnet.mine(deadline - 1 - tip);
    tern.sync(None).await.expect("tern sync");
    assert_eq!(tern.synced_height(), Some(deadline - 1));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ch = only_channel(&tern).await;
    assert_eq!(ch.state, ChannelState::FailedUnfunded, "{ch:?}");
    // ...then the wait ends.
    devnet.mine(1);
    tern.sync(None).await.expect("tern sync");
    // (The channel's peer task takes the new block a moment after the sync.)
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while only_channel(&tern).await.state != ChannelState::Failed {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the wait never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ch = only_channel(&tern).await;
    assert_eq!(
        ch.status,
        format!("failed: {REASON}; its funding did not appear within 2016 blocks")
    );
    assert_no_broadcast(&devnet, &tern, "at the timeout");
    assert!(
        !devnet
            .requests()
            .by_path
            .keys()
            .any(|p| p.starts_with("POST")),
        "{:?}",
        devnet.requests()
    );
    tern.stop().await;
    ldk.stop().expect("ldk-node stops");
}
