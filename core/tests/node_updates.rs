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
    for msg in ["update_fee", "commitment_signed", "revoke_and_ack"] {
        for action in ["-", "+", "$", "<"] {
            for on_funder in [true, false] {
                let rule = format!("{action}{msg}");
                let plan = FaultPlan::parse([rule.as_str()]).expect("rule");
                // Cloning shares the plan: whether the rule fired is readable here.
                let armed = plan.clone();
                let (phone_plan, lsp_plan) = if on_funder {
                    (plan, FaultPlan::default())
                } else {
                    (FaultPlan::default(), plan)
                };
                let tag = format!("{}{}{}", cases, if on_funder { "f" } else { "e" }, msg);
                let (chain, _net, phone, lsp) =
                    ready_then_fees_rise(&tag, phone_plan, lsp_plan).await;
                let what = format!(
                    "{rule} on the {}",
                    if on_funder { "funder" } else { "fundee" }
                );
                // Blocks keep coming (a reconnected funder re-applies the policy).
                mine_until(&chain, &[&phone, &lsp], 1).await;
                until_updated(&phone, &lsp, &what).await;
                // Only the funder sends update_fee: there it cannot be received, on the
                // fundee it cannot be sent. Every other rule fired.
                let fires = match (msg, on_funder) {
                    ("update_fee", true) => action != "<",
                    ("update_fee", false) => action == "<",
                    _ => true,
                };
                assert_eq!(armed.remaining(), usize::from(!fires), "{what}: fired");
                fired += usize::from(fires);
                phone.stop().await;
                lsp.stop().await;
                cases += 1;
            }
        }
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
    mine_until(&chain, &[&phone, &lsp], 1).await;
    let victim = if kill_funder { &phone } else { &lsp };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !victim.is_stopped() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{action}: the node never performed it"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
    let cases = [
        (true, "persist"),
        (true, "send:update_fee"),
        (true, "send:commitment_signed"),
        (true, "send:revoke_and_ack"),
        (false, "persist"),
        (false, "send:revoke_and_ack"),
        (false, "send:commitment_signed"),
    ];
    for (n, (kill_funder, action)) in cases.iter().enumerate() {
        killed_after(&n.to_string(), *kill_funder, action).await;
    }
}
