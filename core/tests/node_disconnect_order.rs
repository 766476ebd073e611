//! What a peer sent before closing the connection comes before the disconnection (issue 17:
//! found by the bench's 100 parallel opens under load). The LSP sends `funding_signed` and
//! closes at once (`+funding_signed`) while the phone's peer task is busy with its second
//! open (a store job held by a gate until the `funding_signed` was read and the connection
//! closed): the task then finds both the message and the disconnection waiting, and must take
//! the message first — the first open reaches `ChannelPending`, not "peer disconnected before
//! the channel was durable". The peer task's select takes ready inputs in random order, so
//! without the drain a round fails half the time; six rounds.
//!
//! Needs the `dev-disconnect` feature.
#![cfg(feature = "dev-disconnect")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitcoin::Amount;
use tern_core::net::faults::FaultPlan;
use tern_core::net::MemoryNet;
use tern_core::node::{Event, OpenChannelParams};
use tern_core::proto::wire::ChannelId;
use tern_devnet::DevChain;

mod common;

use common::memory::*;

const FUNDING_CREATED: u16 = 34;
const FUNDING_SIGNED: u16 = 35;

#[tokio::test(start_paused = true)]
async fn a_message_sent_just_before_the_close_is_handled_before_the_disconnection() {
    for round in 0..6 {
        let (chain, net) = (DevChain::new(), MemoryNet::new());
        let (dl, dp) = (
            dir(&format!("order-lsp-{round}")),
            dir(&format!("order-phone-{round}")),
        );
        let lsp_plan = FaultPlan::parse(["+funding_signed"]).expect("rule");
        let phone_plan = FaultPlan::default();
        let lsp = node_with(&chain, &net, &dl, 51, true, |b| {
            b.dev_faults(lsp_plan.clone())
        })
        .await;
        // The phone's store: the first job after its first funding_created was queued waits
        // (on the store thread) until its connection read the funding_signed and the LSP's
        // rule closed the connection — then a moment for the close to reach the peer task.
        let held = Arc::new(AtomicBool::new(false));
        let gate = {
            let (phone_plan, lsp_plan, held) = (phone_plan.clone(), lsp_plan.clone(), held.clone());
            move || {
                if held.load(Ordering::SeqCst) || !phone_plan.sent().contains(&FUNDING_CREATED) {
                    return;
                }
                held.store(true, Ordering::SeqCst);
                let until = std::time::Instant::now() + Duration::from_secs(5);
                while std::time::Instant::now() < until
                    && !(lsp_plan.remaining() == 0
                        && phone_plan.received().contains(&FUNDING_SIGNED))
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        let phone = node_with(&chain, &net, &dp, 52, false, |b| {
            b.dev_faults(phone_plan.clone()).dev_store_gate(gate)
        })
        .await;
        lsp.sync(None).await.expect("sync");
        common::node::fund(&chain, &phone, 1_000_000).await;
        let open = || {
            phone.open_channel(
                OpenChannelParams::new(lsp.node_id(), LSP_ADDR, Amount::from_sat(200_000))
                    .push_msat(0)
                    .announce(false),
            )
        };
        let first: ChannelId = open().await.expect("first open");
        open().await.expect("second open");
        let outcome = wait_for(&phone, "the first open's outcome", |e| match e {
            Event::ChannelPending {
                temporary_channel_id,
                ..
            } => *temporary_channel_id == first,
            Event::ChannelOpenFailed {
                temporary_channel_id,
                ..
            } => *temporary_channel_id == Some(first),
            _ => false,
        })
        .await;
        assert!(
            held.load(Ordering::SeqCst),
            "round {round}: the gate held a job"
        );
        assert!(
            matches!(outcome, Event::ChannelPending { .. }),
            "round {round}: the funding_signed read before the close was lost: {outcome:?}"
        );
        phone.stop().await;
        lsp.stop().await;
        let _ = (std::fs::remove_dir_all(&dl), std::fs::remove_dir_all(&dp));
    }
}
