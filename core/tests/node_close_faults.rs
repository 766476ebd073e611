//! Cooperative closes between two whole Tern nodes on the in-memory chain and network (paused
//! clock) that survive
//! - every `dev-disconnect` rule (`-` close before sending, `+` after sending, `$` drop and keep
//!   the connection, `<` close after receiving) on `shutdown` and `closing_signed`, on the
//!   funder's connection and on the fundee's;
//! - a kill (every task aborted) of either node right after each of its durable points and
//!   close messages, then a restart on the same data dir.
//!
//! Each case ends with the agreed cooperative close spending the funding (never a commitment),
//! no `ChannelFailed`, and the node's own durability audit clean. A `$` is recovered by the
//! closing watchdog (`update_timeout_secs`) reconnecting the peer.
//!
//! Needs the `dev-disconnect` feature.
#![cfg(feature = "dev-disconnect")]

use std::time::Duration;

use bitcoin::{OutPoint, Sequence};
use tern_core::net::MemoryNet;
use tern_core::node::{Event, Node};
use tern_devnet::DevChain;

mod common;

use common::memory::*;
use common::node::check_durability;

async fn funding(node: &Node) -> OutPoint {
    node.list_channels().await[0]
        .funding_txo
        .expect("funding outpoint")
}

/// Waits (paused clock, blocks mined now and then) until the funding is spent, then checks
/// the spend is a cooperative close both sides hold and that nothing failed.
async fn until_closed(chain: &DevChain, phone: &Node, lsp: &Node, funding: OutPoint, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        if let Some(spend) = chain.outspend(&funding) {
            let tx = chain.transaction(&spend.txid).expect("spending tx");
            assert_eq!(
                tx.input[0].sequence,
                Sequence::MAX,
                "{what}: the funding is spent by a cooperative close, not a commitment"
            );
            assert_eq!(tx.lock_time.to_consensus_u32(), 0, "{what}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not closed; phone {:?} lsp {:?}",
            phone.list_channels().await,
            lsp.list_channels().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (n, who) in [(phone, "phone"), (lsp, "lsp")] {
        while let Ok(Some((seq, e))) = n.next_event().await {
            assert!(
                !matches!(e, Event::ChannelFailed { .. }),
                "{what}: {who} failed the channel: {e:?}"
            );
            let _ = n.event_handled(seq).await;
        }
        check_durability(n, who);
    }
}

#[tokio::test(start_paused = true)]
async fn every_fault_on_every_close_message_on_either_side_ends_closed() {
    let (mut cases, mut fired) = (0, 0);
    for case in fault_cases(&["shutdown", "closing_signed"]) {
        let what = case.what();
        let (chain, net) = (DevChain::new(), MemoryNet::new());
        let tag = format!("cf{cases}");
        let (dl, dp) = (dir(&format!("lsp-{tag}")), dir(&format!("phone-{tag}")));
        let lsp = node_with(&chain, &net, &dl, 41, true, |b| b.dev_faults(case.lsp)).await;
        let phone = node_with(&chain, &net, &dp, 42, false, |b| b.dev_faults(case.phone)).await;
        open_to_ready(&chain, &phone, &lsp).await;
        let id = phone.list_channels().await[0].channel_id;
        let funding = funding(&phone).await;
        phone.close_channel(id, None).await.expect("close");
        until_closed(&chain, &phone, &lsp, funding, &what).await;
        fired += usize::from(case.armed.remaining() == 0);
        phone.stop().await;
        lsp.stop().await;
        cases += 1;
    }
    // Every rule fires: both sides send and receive shutdown and closing_signed.
    assert_eq!((cases, fired), (16, 16));
}

/// Kills `who` right after `action`, restarts it on the same data dir, and checks the close
/// completes.
async fn killed_after(tag: &str, kill_funder: bool, action: &str) {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir(&format!("lsp-ck{tag}")), dir(&format!("phone-ck{tag}")));
    let lsp = node(&chain, &net, &dl, 43, true).await;
    let phone = node(&chain, &net, &dp, 44, false).await;
    open_to_ready(&chain, &phone, &lsp).await;
    let id = phone.list_channels().await[0].channel_id;
    let funding = funding(&phone).await;
    // The node to kill restarts armed: its first such action after this point is the close's.
    let (phone, lsp) = if kill_funder {
        phone.stop().await;
        drop(phone);
        let phone = node_with(&chain, &net, &dp, 44, false, |b| b.dev_halt_after(action)).await;
        (phone, lsp)
    } else {
        lsp.stop().await;
        drop(lsp);
        let lsp = node_with(&chain, &net, &dl, 43, true, |b| b.dev_halt_after(action)).await;
        (phone, lsp)
    };
    settle("reconnected", || async {
        !phone.list_peers().await.unwrap_or_default().is_empty()
    })
    .await;
    // The victim may halt inside this call (the phone's own persist).
    let _ = phone.close_channel(id, None).await;
    until_halted(if kill_funder { &phone } else { &lsp }, action).await;
    let (phone, lsp) = if kill_funder {
        drop(phone);
        (node(&chain, &net, &dp, 44, false).await, lsp)
    } else {
        drop(lsp);
        (phone, node(&chain, &net, &dl, 43, true).await)
    };
    let who = if kill_funder { "funder" } else { "fundee" };
    until_closed(
        &chain,
        &phone,
        &lsp,
        funding,
        &format!("{who} killed after {action}"),
    )
    .await;
    phone.stop().await;
    lsp.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_kill_at_each_durable_point_and_message_of_a_close_ends_closed() {
    // The funder persists its script, then (on the fundee's shutdown) the peer's script with
    // its first proposal, then the agreed close; the fundee the funder's script with its own,
    // then the agreed close.
    let cases = [
        (true, "persist"),
        (true, "send:shutdown"),
        (true, "persist*2"),
        (true, "persist*3"),
        (true, "send:closing_signed"),
        (true, "broadcastmutualclose"),
        (false, "persist"),
        (false, "send:shutdown"),
        (false, "persist*2"),
        (false, "broadcastmutualclose"),
        (false, "send:closing_signed"),
    ];
    for (n, (kill_funder, action)) in cases.iter().enumerate() {
        killed_after(&n.to_string(), *kill_funder, action).await;
    }
}
