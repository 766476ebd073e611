//! Each reason of the dial decision (`node/dial.rs`) has its wake test: a phone woken with a
//! feerate to raise (fees rose while it slept), a commitment update cut by a kill, and a
//! cooperative close asked while the LSP was away — each wake dials the LSP once and ends with
//! the work done and nothing pending (in-memory chain and network, paused clock).
#![cfg(feature = "dev-disconnect")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tern_core::net::MemoryNet;
use tern_core::node::{Node, WakeOptions, WakeOutcome, WakeReport};
use tern_core::proto::channel::ClosingStatus;
use tern_devnet::DevChain;

mod common;

use common::memory::*;

const RISEN: f64 = 40.0;
const RISEN_PER_KW: u32 = 10_000;

struct Ready {
    chain: DevChain,
    net: MemoryNet,
    /// The LSP's and the phone's data dirs.
    dl: PathBuf,
    dp: PathBuf,
    phone: Node,
    lsp: Node,
}

/// A phone funding a ready channel to an LSP at 10 sat/vB.
async fn ready(tag: &str, halt_after: Option<&str>) -> Ready {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir(&format!("{tag}-lsp")), dir(&format!("{tag}-phone")));
    let lsp = node(&chain, &net, &dl, 31, true).await;
    let halt = halt_after.map(str::to_string);
    let phone = node_with(&chain, &net, &dp, 32, false, |b| {
        let b = b.fee_max_age(Duration::ZERO);
        match halt {
            Some(action) => b.dev_halt_after(action),
            None => b,
        }
    })
    .await;
    chain.set_fee_estimates(estimates(10.0));
    open_to_ready(&chain, &phone, &lsp).await;
    Ready {
        chain,
        net,
        dl,
        dp,
        phone,
        lsp,
    }
}

async fn wake_phone(chain: &DevChain, net: &MemoryNet, dp: &Path) -> WakeReport {
    builder(chain, net, dp, 32)
        .fee_max_age(Duration::ZERO)
        .wake(WakeOptions::new(Duration::from_secs(25)))
        .await
        .expect("wake")
}

/// Fees rose while the phone slept: the wake's sync sees the new block, the fee policy wants
/// the commitment raised, the wake dials the LSP and the update completes on the connection.
#[tokio::test(start_paused = true)]
async fn a_wake_raises_the_feerate_of_a_channel_we_fund() {
    let Ready {
        chain,
        net,
        dp,
        phone,
        lsp,
        ..
    } = ready("wake-fee", None).await;
    phone.stop().await;
    drop(phone);
    chain.set_fee_estimates(estimates(RISEN));
    chain.mine(1);
    lsp.sync(None).await.expect("sync");
    let report = wake_phone(&chain, &net, &dp).await;
    assert_eq!(report.outcome, WakeOutcome::Completed, "{report:?}");
    assert!(report.pending.is_empty(), "{report:?}");
    assert_eq!(report.costs.dials, 1, "{report:?}");
    let c = &lsp.list_channels().await[0];
    assert_eq!(
        (
            c.commitment_feerate_per_kw,
            c.commitment_number,
            c.update_pending
        ),
        (RISEN_PER_KW, 1, false),
        "{c:?}"
    );
}

/// The phone was killed in the middle of that update (its `commitment_signed` sent): the wake
/// finds the update pending, dials, and the reestablish finishes it.
#[tokio::test(start_paused = true)]
async fn a_wake_finishes_a_commitment_update_cut_by_a_kill() {
    let Ready {
        chain,
        net,
        dp,
        phone,
        lsp,
        ..
    } = ready("wake-update", Some("send:commitment_signed")).await;
    chain.set_fee_estimates(estimates(RISEN));
    mine_until(&chain, &[&phone, &lsp], 1).await;
    until_halted(&phone, "send:commitment_signed").await;
    drop(phone);
    let report = wake_phone(&chain, &net, &dp).await;
    assert_eq!(report.outcome, WakeOutcome::Completed, "{report:?}");
    assert!(report.pending.is_empty(), "{report:?}");
    assert_eq!(report.costs.dials, 1, "{report:?}");
    settle("the LSP's side of the update", || async {
        let c = &lsp.list_channels().await[0];
        (
            c.commitment_feerate_per_kw,
            c.commitment_number,
            c.update_pending,
        ) == (RISEN_PER_KW, 1, false)
    })
    .await;
    let phone = node(&chain, &net, &dp, 32, false).await;
    let c = &phone.list_channels().await[0];
    assert_eq!((c.commitment_number, c.update_pending), (1, false), "{c:?}");
    phone.stop().await;
}

/// The user closed the channel while the LSP was away: the phone stored its `shutdown`; a wake
/// once the LSP is back dials it, the close is negotiated and broadcast, and nothing is left
/// for the peer (the channel waits on chain).
#[tokio::test(start_paused = true)]
async fn a_wake_carries_out_a_close_asked_while_the_peer_was_away() {
    let Ready {
        chain,
        net,
        dl,
        dp,
        phone,
        lsp,
    } = ready("wake-close", None).await;
    let id = phone.list_channels().await[0].channel_id;
    lsp.stop().await;
    drop(lsp);
    phone.close_channel(id, None).await.expect("close asked");
    phone.stop().await;
    drop(phone);
    let lsp = node(&chain, &net, &dl, 31, true).await;
    let report = wake_phone(&chain, &net, &dp).await;
    assert_eq!(report.outcome, WakeOutcome::Completed, "{report:?}");
    assert!(report.pending.is_empty(), "{report:?}");
    assert_eq!(report.costs.dials, 1, "{report:?}");
    // (ChannelClosing was queued when the close was asked, before the wake.)
    assert_eq!(
        report.next_wake_after,
        Duration::from_secs(3600),
        "closing on chain"
    );
    let phone = node(&chain, &net, &dp, 32, false).await;
    let c = &phone.list_channels().await[0];
    assert!(
        matches!(c.closing, Some(ClosingStatus::OnChain { .. })),
        "{c:?}"
    );
    phone.stop().await;
    lsp.stop().await;
}
