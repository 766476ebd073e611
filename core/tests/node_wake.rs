//! `Builder::wake`, the whole background wake in one call, on the in-memory chain and network
//! (paused clock): what it costs when nothing changed (1 request, no dial, nothing written),
//! the lock conflict, finishing an open whose `channel_ready` is owed, the deadline, the
//! cancel handle, and dropping the wake's future.
#![cfg(feature = "dev-disconnect")]

use std::time::Duration;

use bitcoin::Amount;
use tern_core::net::faults::FaultPlan;
use tern_core::net::MemoryNet;
use tern_core::node::{
    DialReason, Event, NodeError, OpenChannelParams, WakeCancel, WakeOptions, WakeOutcome,
};
use tern_core::proto::channel::ChannelState;
use tern_devnet::DevChain;

mod common;

use common::memory::*;
use common::node::fund;

/// A phone whose channel to the LSP is ready, stopped; the LSP keeps running.
async fn ready_phone(
    name: &str,
) -> (
    DevChain,
    MemoryNet,
    std::path::PathBuf,
    tern_core::node::Node,
) {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir(&format!("{name}-lsp")), dir(&format!("{name}-phone")));
    let lsp = node(&chain, &net, &dl, 1, true).await;
    let phone = node(&chain, &net, &dp, 2, false).await;
    open_to_ready(&chain, &phone, &lsp).await;
    phone.stop().await;
    (chain, net, dp, lsp)
}

/// A phone that opened a channel to the LSP and stopped before the funding confirmed; then
/// `blocks` blocks are mined and the LSP syncs them (its `channel_ready` is owed to the
/// phone, which does not listen: only the phone can redial).
async fn opening_phone(
    name: &str,
    blocks: u32,
    lsp_faults: FaultPlan,
) -> (
    DevChain,
    MemoryNet,
    std::path::PathBuf,
    tern_core::node::Node,
) {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir(&format!("{name}-lsp")), dir(&format!("{name}-phone")));
    let lsp = node_with(&chain, &net, &dl, 1, true, |b| b.dev_faults(lsp_faults)).await;
    let phone = node(&chain, &net, &dp, 2, false).await;
    lsp.sync(None).await.expect("sync");
    fund(&chain, &phone, 1_000_000).await;
    let addr = lsp.listen_addr().expect("listening").to_string();
    phone
        .open_channel(OpenChannelParams::new(
            lsp.node_id(),
            addr,
            Amount::from_sat(250_000),
        ))
        .await
        .expect("open");
    wait_for(&phone, "phone ChannelPending", |e| {
        matches!(e, Event::ChannelPending { .. })
    })
    .await;
    mine_until(&chain, &[&phone, &lsp], 0).await;
    phone.stop().await;
    chain.mine(blocks);
    lsp.sync(None).await.expect("lsp sync");
    (chain, net, dp, lsp)
}

/// [`opening_phone`] whose LSP drops its first `channel_ready`: a wake waits on its peer.
async fn stalled_phone(
    name: &str,
) -> (
    DevChain,
    MemoryNet,
    std::path::PathBuf,
    tern_core::node::Node,
) {
    let drop_ready = FaultPlan::parse(["$channel_ready"]).expect("rule");
    opening_phone(name, 3, drop_ready).await
}

/// Nothing changed since the phone stopped: the wake makes one request (the tip), dials
/// nobody, writes nothing, and reports the channel as it is.
#[tokio::test(start_paused = true)]
async fn a_wake_with_nothing_pending_makes_one_request_dials_nobody_and_writes_nothing() {
    let (chain, net, dp, _lsp) = ready_phone("wake-quiet").await;
    let report = builder(&chain, &net, &dp, 2)
        .wake(WakeOptions::new(Duration::from_secs(25)))
        .await
        .expect("wake");
    assert_eq!(report.outcome, WakeOutcome::Completed, "{report:?}");
    assert_eq!(report.costs.requests, 1, "{report:?}");
    assert_eq!(report.costs.dials, 0, "{report:?}");
    assert_eq!(report.costs.commits, 0, "{report:?}");
    assert_eq!(report.costs.fsyncs, 0, "{report:?}");
    assert!(report.pending.is_empty(), "{report:?}");
    assert!(report.events.is_empty(), "{report:?}");
    assert_eq!(report.tip_height, Some(chain.tip().0));
    // Ready channels only: a quarter of to_self_delay (1008 blocks), capped at a day.
    assert_eq!(report.next_wake_after, Duration::from_secs(24 * 3600));
    // The lock is free again: a node starts on the dir.
    let phone = node(&chain, &net, &dp, 2, false).await;
    assert_eq!(phone.list_channels().await[0].state, ChannelState::Ready);
    phone.stop().await;
}

/// A data dir held by a running node: the wake says `Busy` and touches nothing; and a node
/// cannot start while a wake holds the dir.
#[tokio::test(start_paused = true)]
async fn a_wake_on_a_held_data_dir_is_busy_and_a_node_cannot_start_during_a_wake() {
    let (chain, net, dp, _lsp) = ready_phone("wake-busy").await;
    let phone = node(&chain, &net, &dp, 2, false).await;
    let report = builder(&chain, &net, &dp, 2)
        .wake(WakeOptions::default())
        .await
        .expect("wake");
    assert_eq!(report.outcome, WakeOutcome::Busy, "{report:?}");
    assert_eq!(report.costs.requests, 0, "{report:?}");
    phone.stop().await;

    // A wake waiting on its peer (the LSP drops its channel_ready) holds the dir.
    let (chain, net, dp, _lsp) = stalled_phone("wake-held").await;
    let cancel = WakeCancel::new();
    let wake = tokio::spawn(
        builder(&chain, &net, &dp, 2)
            .wake(WakeOptions::new(Duration::from_secs(25)).cancel(cancel.clone())),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = builder(&chain, &net, &dp, 2).start().await;
    assert!(
        matches!(refused, Err(NodeError::AlreadyRunning { .. })),
        "{refused:?}"
    );
    cancel.cancel();
    let report = wake.await.expect("join").expect("wake");
    assert_eq!(report.outcome, WakeOutcome::Cancelled, "{report:?}");
    assert_eq!(report.pending.len(), 1, "{report:?}");
    // Cancelled and returned: the dir is free.
    let phone = node(&chain, &net, &dp, 2, false).await;
    phone.stop().await;
}

/// The phone stopped before its funding confirmed; the blocks came while it slept. The wake's
/// sync sees the depth (our `channel_ready` is now owed), dials the LSP alone, and the channel
/// is ready when it returns; the report has the event and one dial.
#[tokio::test(start_paused = true)]
async fn a_wake_finishes_an_open_whose_channel_ready_is_owed() {
    let (chain, net, dp, lsp) = opening_phone("wake-open", 3, FaultPlan::default()).await;
    let report = builder(&chain, &net, &dp, 2)
        .wake(WakeOptions::new(Duration::from_secs(25)))
        .await
        .expect("wake");
    eprintln!("open wake: {report:#?}");
    assert_eq!(report.outcome, WakeOutcome::Completed, "{report:?}");
    assert!(report.pending.is_empty(), "{report:?}");
    assert_eq!(report.costs.dials, 1, "{report:?}");
    assert!(
        report
            .events
            .iter()
            .any(|e| matches!(e, Event::ChannelReady { .. })),
        "{report:?}"
    );
    assert!(report.costs.fsyncs <= 15, "{report:?}");
    settle("the LSP's channel ready", || async {
        lsp.list_channels().await[0].state == ChannelState::Ready
    })
    .await;
    let phone = node(&chain, &net, &dp, 2, false).await;
    assert_eq!(phone.list_channels().await[0].state, ChannelState::Ready);
    phone.stop().await;
}

/// The LSP drops its `channel_ready`: a wake with a deadline shorter than the stall rule ends
/// at the deadline with the channel pending; the next wake (the fault spent) finishes it.
#[tokio::test(start_paused = true)]
async fn a_wake_that_reaches_its_deadline_leaves_the_open_to_the_next_wake() {
    let (chain, net, dp, _lsp) = stalled_phone("wake-deadline").await;
    let report = builder(&chain, &net, &dp, 2)
        .wake(WakeOptions::new(Duration::from_secs(2)))
        .await
        .expect("wake");
    assert_eq!(report.outcome, WakeOutcome::DeadlineReached, "{report:?}");
    assert_eq!(
        report.pending.iter().map(|(_, r)| *r).collect::<Vec<_>>(),
        vec![DialReason::ChannelReady],
        "{report:?}"
    );
    assert_eq!(report.next_wake_after, Duration::from_secs(15 * 60));
    let again = builder(&chain, &net, &dp, 2)
        .wake(WakeOptions::new(Duration::from_secs(25)))
        .await
        .expect("wake");
    assert_eq!(again.outcome, WakeOutcome::Completed, "{again:?}");
    assert!(again.pending.is_empty(), "{again:?}");
}

/// Dropping the wake's future mid-talk (a hard cancel) leaves nothing held: the lock is
/// released once the store thread has closed the database, and the next start resumes.
#[tokio::test(start_paused = true)]
async fn dropping_a_wake_mid_talk_releases_the_dir() {
    let (chain, net, dp, _lsp) = stalled_phone("wake-drop").await;
    let cut = tokio::time::timeout(
        Duration::from_secs(1),
        builder(&chain, &net, &dp, 2).wake(WakeOptions::new(Duration::from_secs(25))),
    )
    .await;
    assert!(cut.is_err(), "the wake should still be talking: {cut:?}");
    let mut started = None;
    for _ in 0..200 {
        match builder(&chain, &net, &dp, 2).start().await {
            Ok(n) => {
                started = Some(n);
                break;
            }
            // Real time for the store thread to close the database (the paused clock
            // would not wait for it).
            Err(NodeError::AlreadyRunning { .. }) => {
                tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(10)))
                    .await
                    .expect("sleep")
            }
            Err(e) => panic!("start: {e}"),
        }
    }
    let phone = started.expect("the dir is released after the drop");
    assert_eq!(phone.list_channels().await.len(), 1);
    phone.stop().await;
}

/// The order of a cancelled wake's stop: the store job in flight finishes, both SQLite
/// connections close (no file descriptor of this process is left on the phone's database),
/// and only then is the data-dir lock released. A job is held in flight on the store thread
/// (the dev gate) while the wake is cancelled: the lock and the database stay open until it
/// is let go.
#[tokio::test(start_paused = true)]
async fn a_cancelled_wake_finishes_the_store_job_closes_the_database_then_unlocks() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc, Mutex};

    let (chain, net, dp, _lsp) = stalled_phone("wake-order").await;
    let armed = Arc::new(AtomicBool::new(false));
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let (gate_armed, released) = (armed.clone(), Mutex::new(released));
    let cancel = WakeCancel::new();
    let wake = tokio::spawn(
        builder(&chain, &net, &dp, 2)
            .dev_store_gate(move || {
                if gate_armed.swap(false, Ordering::SeqCst) {
                    let _ = entered_tx.send(());
                    let _ = released.lock().expect("gate").recv();
                }
            })
            .wake(WakeOptions::new(Duration::from_secs(25)).cancel(cancel.clone())),
    );
    // In the talk phase (the LSP's channel_ready is dropped: the wake waits on its peer).
    tokio::time::sleep(Duration::from_millis(500)).await;
    armed.store(true, Ordering::SeqCst);
    let entered =
        tokio::task::spawn_blocking(move || entered.recv_timeout(Duration::from_secs(10)))
            .await
            .expect("join");
    entered.expect("a store job is held in flight");
    cancel.cancel();
    let db = dp.join("tern.sqlite");
    // Real time for the wake to run into its stop (the paused clock does not wait).
    for _ in 0..20 {
        tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(10)))
            .await
            .expect("sleep");
        assert!(
            open_fds(&db) > 0,
            "the database closed before its job finished"
        );
        let held = builder(&chain, &net, &dp, 2).start().await;
        assert!(
            matches!(held, Err(NodeError::AlreadyRunning { .. })),
            "the lock went before the store job finished: {held:?}"
        );
    }
    release.send(()).expect("release");
    let report = wake.await.expect("join").expect("wake");
    assert_eq!(report.outcome, WakeOutcome::Cancelled, "{report:?}");
    assert_eq!(
        open_fds(&db),
        0,
        "both connections are closed when the wake returns"
    );
    let phone = node(&chain, &net, &dp, 2, false).await;
    phone.stop().await;
}

/// This process's open file descriptors on `db` or its `-wal` / `-shm` files (Linux).
fn open_fds(db: &std::path::Path) -> usize {
    let name = db.to_string_lossy().into_owned();
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with(&name))
        .count()
}
