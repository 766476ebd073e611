//! Commitment updates between two whole Tern nodes on the in-memory chain and network (paused
//! clock): the funder (the phone) follows a rise of the fee estimates with `update_fee`, and
//! the update survives
//! - every `dev-disconnect` rule (`-` close before sending, `+` after sending, `$` drop and keep
//!   the connection, `<` close after receiving) on `update_fee`, `commitment_signed` and
//!   `revoke_and_ack`, on the funder's connection and on the fundee's;
//! - a kill (every task aborted) of either node right after each of its durable points and
//!   update messages, then a restart on the same data dir.
//!
//! Each case ends with both nodes at commitment 1 with the new feerate, nothing in flight, and
//! the node's own durability audit clean. A `$` (a message lost on a live connection) is
//! recovered by the update watchdog (`update_timeout_secs`) reconnecting the peer.
//!
//! Needs the `dev-disconnect` feature.
#![cfg(feature = "dev-disconnect")]

use std::time::Duration;

use tern_core::net::faults::FaultPlan;
use tern_core::net::MemoryNet;
use tern_core::node::Node;
use tern_devnet::DevChain;

mod common;

use common::memory::*;
use common::node::check_durability;

/// The estimates after the rise: 40 sat/vB for two blocks, 10 000 sat/kw.
const RISEN: f64 = 40.0;
const RISEN_PER_KW: u32 = 10_000;

/// Waits (paused clock) until both nodes are at commitment 1 with the risen feerate; long
/// enough for the update watchdog (30 s) and a reconnection backoff.
async fn until_updated(phone: &Node, lsp: &Node, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let updated = at(phone, lsp, RISEN_PER_KW, 1).await;
        let idle = !phone.list_channels().await[0].update_pending
            && !lsp.list_channels().await[0].update_pending;
        if updated && idle {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not updated; phone {:?} lsp {:?}",
            phone.list_channels().await,
            lsp.list_channels().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check_durability(phone, "phone");
    check_durability(lsp, "lsp");
}

/// Opens phone → LSP to ready with `adjust_*` applied to each node's builder, then raises the
/// fee estimates and mines a block: the phone, funder, starts an update.
async fn ready_then_fees_rise(
    tag: &str,
    phone_plan: FaultPlan,
    lsp_plan: FaultPlan,
) -> (DevChain, MemoryNet, Node, Node) {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir(&format!("lsp-{tag}")), dir(&format!("phone-{tag}")));
    let lsp = node_with(&chain, &net, &dl, 11, true, |b| b.dev_faults(lsp_plan)).await;
    let phone = node_with(&chain, &net, &dp, 12, false, |b| {
        b.fee_max_age(Duration::ZERO).dev_faults(phone_plan)
    })
    .await;
    chain.set_fee_estimates(estimates(10.0));
    open_to_ready(&chain, &phone, &lsp).await;
    chain.set_fee_estimates(estimates(RISEN));
    mine_until(&chain, &[&phone, &lsp], 1).await;
    (chain, net, phone, lsp)
}

#[tokio::test(start_paused = true)]
async fn every_fault_on_every_update_message_on_either_side_ends_updated() {
    let (mut cases, mut fired) = (0, 0);
    for case in fault_cases(&["update_fee", "commitment_signed", "revoke_and_ack"]) {
        let what = case.what();
        let tag = format!(
            "{cases}{}{}",
            if case.on_funder { "f" } else { "e" },
            case.rule
        );
        let (chain, _net, phone, lsp) = ready_then_fees_rise(&tag, case.phone, case.lsp).await;
        // Blocks keep coming (a reconnected funder re-applies the policy).
        mine_until(&chain, &[&phone, &lsp], 1).await;
        until_updated(&phone, &lsp, &what).await;
        // Only the funder sends update_fee: there it cannot be received, on the fundee it
        // cannot be sent. Every other rule fired.
        let receives = case.rule.starts_with('<');
        let fires = !case.rule.ends_with("update_fee") || case.on_funder != receives;
        assert_eq!(case.armed.remaining(), usize::from(!fires), "{what}: fired");
        fired += usize::from(fires);
        phone.stop().await;
        lsp.stop().await;
        cases += 1;
    }
    assert_eq!((cases, fired), (24, 20));
}

/// Kills `who` right after `action` (`persist`, `send:<message>`), restarts it on the same
/// data dir, and checks the update completes.
async fn killed_after(tag: &str, kill_funder: bool, action: &str) {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir(&format!("lsp-k{tag}")), dir(&format!("phone-k{tag}")));
    let lsp = node(&chain, &net, &dl, 13, true).await;
    let phone = node_with(&chain, &net, &dp, 14, false, |b| {
        b.fee_max_age(Duration::ZERO)
    })
    .await;
    chain.set_fee_estimates(estimates(10.0));
    open_to_ready(&chain, &phone, &lsp).await;
    // The node to kill restarts armed: its first such action after this point is the update's.
    let (phone, lsp) = if kill_funder {
        phone.stop().await;
        drop(phone);
        let phone = node_with(&chain, &net, &dp, 14, false, |b| {
            b.fee_max_age(Duration::ZERO).dev_halt_after(action)
        })
        .await;
        (phone, lsp)
    } else {
        lsp.stop().await;
        drop(lsp);
        let lsp = node_with(&chain, &net, &dl, 13, true, |b| b.dev_halt_after(action)).await;
        (phone, lsp)
    };
    settle("reconnected", || async {
        !phone.list_peers().await.unwrap_or_default().is_empty()
    })
    .await;
    chain.set_fee_estimates(estimates(RISEN));
    // The victim may halt during these syncs (the first hands the funder the estimates).
    chain.mine(1);
    for n in [&phone, &lsp] {
        let _ = n.sync(None).await;
    }
    until_halted(if kill_funder { &phone } else { &lsp }, action).await;
    let (phone, lsp) = if kill_funder {
        drop(phone);
        let phone = node_with(&chain, &net, &dp, 14, false, |b| {
            b.fee_max_age(Duration::ZERO)
        })
        .await;
        (phone, lsp)
    } else {
        drop(lsp);
        let lsp = node(&chain, &net, &dl, 13, true).await;
        (phone, lsp)
    };
    mine_until(&chain, &[&phone, &lsp], 1).await;
    let who = if kill_funder { "funder" } else { "fundee" };
    until_updated(&phone, &lsp, &format!("{who} killed after {action}")).await;
    phone.stop().await;
    lsp.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_kill_at_each_durable_point_and_message_of_an_update_ends_updated() {
    // The funder persists three times (the commitment it signs, the fundee's revocation, the
    // fundee's signature), the fundee twice (the funder's signature, its revocation).
    let cases = [
        (true, "persist"),
        (true, "persist*2"),
        (true, "persist*3"),
        (true, "send:update_fee"),
        (true, "send:commitment_signed"),
        (true, "send:revoke_and_ack"),
        (false, "persist"),
        (false, "persist*2"),
        (false, "send:revoke_and_ack"),
        (false, "send:commitment_signed"),
    ];
    for (n, (kill_funder, action)) in cases.iter().enumerate() {
        killed_after(&n.to_string(), *kill_funder, action).await;
    }
}

/// The phone's commitment of before an update, broadcast after it (a revoked state, what a
/// cheating or restored-from-backup peer would publish), is accepted by the chain — and the
/// LSP names it: its channel fails with "the peer's REVOKED commitment" (the closing issue
/// punishes it). The phone's latest commitment, by contrast, is valid on chain too.
#[tokio::test(start_paused = true)]
async fn a_revoked_commitment_on_chain_is_recognised_as_revoked() {
    use tern_core::node::Event;
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir("lsp-revoked"), dir("phone-revoked"));
    let lsp = node(&chain, &net, &dl, 15, true).await;
    let phone = node_with(&chain, &net, &dp, 16, false, |b| {
        b.fee_max_age(Duration::ZERO)
    })
    .await;
    chain.set_fee_estimates(estimates(10.0));
    open_to_ready(&chain, &phone, &lsp).await;
    let before = phone.list_channels().await[0].commitment_number;
    phone.stop().await;
    drop(phone);
    let old = common::commitment::stored_commitment(&dp, 16);
    let phone = node_with(&chain, &net, &dp, 16, false, |b| {
        b.fee_max_age(Duration::ZERO)
    })
    .await;
    settle("reconnected", || async {
        !phone.list_peers().await.unwrap_or_default().is_empty()
    })
    .await;
    chain.set_fee_estimates(estimates(RISEN));
    mine_until(&chain, &[&phone, &lsp], 1).await;
    until_updated(&phone, &lsp, "the update").await;
    assert!(phone.list_channels().await[0].commitment_number > before);

    chain
        .broadcast(&old)
        .expect("the revoked commitment is a valid transaction");
    // A live channel's funding output is checked on a schedule (to_self_delay / 4 blocks,
    // at most 36): mine through one period.
    mine_until(&chain, &[&phone, &lsp], 36).await;
    let failed = wait_for(&lsp, "lsp ChannelFailed", |e| {
        matches!(e, Event::ChannelFailed { .. })
    })
    .await;
    let Event::ChannelFailed { reason, .. } = failed else {
        unreachable!()
    };
    assert!(reason.contains("REVOKED commitment"), "{reason}");
    phone.stop().await;
    lsp.stop().await;
}
