//! A clean stop lets each peer task finish the input in hand before the sockets close: a
//! fundee stopped while persisting its durable point (`funding_created` received, the channel
//! written) still sends its `funding_signed`, and the funder's open reaches `ChannelPending`
//! instead of failing with "peer disconnected before the channel was durable". The LSP's store
//! job at that point is held by a gate until the stop has begun; 12 rounds (without the
//! wait for the peer tasks, 4 of 4 runs failed).
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
use tern_devnet::DevChain;

mod common;

use common::memory::*;

const FUNDING_CREATED: u16 = 34;

#[tokio::test(start_paused = true)]
async fn a_fundee_stopped_at_its_durable_point_still_sends_funding_signed() {
    for round in 0..12 {
        let (chain, net) = (DevChain::new(), MemoryNet::new());
        let (dl, dp) = (
            dir(&format!("stop-lsp-{round}")),
            dir(&format!("stop-phone-{round}")),
        );
        let lsp_plan = FaultPlan::default();
        let (held, stopping) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        // The LSP's first store job after funding_created arrived (its durable point) waits
        // until the test has begun the stop, then a moment for the stop to get going.
        let gate = {
            let (plan, held, stopping) = (lsp_plan.clone(), held.clone(), stopping.clone());
            move || {
                if held.load(Ordering::SeqCst) || !plan.received().contains(&FUNDING_CREATED) {
                    return;
                }
                held.store(true, Ordering::SeqCst);
                let until = std::time::Instant::now() + Duration::from_secs(5);
                while !stopping.load(Ordering::SeqCst) && std::time::Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(1));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        let lsp = node_with(&chain, &net, &dl, 61, true, |b| {
            b.dev_faults(lsp_plan.clone()).dev_store_gate(gate)
        })
        .await;
        let phone = node(&chain, &net, &dp, 62, false).await;
        lsp.sync(None).await.expect("sync");
        common::node::fund(&chain, &phone, 1_000_000).await;
        phone
            .open_channel(
                OpenChannelParams::new(lsp.node_id(), LSP_ADDR, Amount::from_sat(200_000))
                    .push_msat(0)
                    .announce(false),
            )
            .await
            .expect("open");
        // No clock here: a held store job holds the paused clock too.
        let mut spins = 0u64;
        while !held.load(Ordering::SeqCst) {
            spins += 1;
            assert!(
                spins < 10_000_000,
                "round {round}: the LSP never reached its durable point"
            );
            tokio::task::yield_now().await;
        }
        stopping.store(true, Ordering::SeqCst);
        lsp.stop().await;
        let outcome = wait_for(&phone, "the open's outcome", |e| {
            matches!(
                e,
                Event::ChannelPending { .. } | Event::ChannelOpenFailed { .. }
            )
        })
        .await;
        assert!(
            matches!(outcome, Event::ChannelPending { .. }),
            "round {round}: the stopped fundee's funding_signed was lost: {outcome:?}"
        );
        phone.stop().await;
        let _ = (std::fs::remove_dir_all(&dl), std::fs::remove_dir_all(&dp));
    }
}
