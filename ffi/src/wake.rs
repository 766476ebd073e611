//! The background wake: one async call (`wake`) that locks the data dir, syncs, talks only to
//! the peers that need it and stops, with a cancel handle for the platform's expiration
//! callback. It runs on a one-thread runtime of its own (the light profile of a background
//! context), disposed of when the wake ends.

use std::sync::Arc;
use std::time::Duration;

use tern_core::node as core;

use crate::error::TernError;
use crate::node::{builder, seed_bytes};
use crate::runtime::Rt;
use crate::types::{Event, NodeConfig};

/// Ends a wake early: pass it in [`WakeOptions::cancel`] and call `cancel()` from anywhere
/// (iOS's expiration handler, Android's `onStopped`). Cancelling a Kotlin coroutine or
/// dropping the Python awaitable that runs `wake` cancels it too.
#[derive(Debug, Default, uniffi::Object)]
pub struct WakeCancel {
    inner: core::WakeCancel,
}

#[uniffi::export]
impl WakeCancel {
    /// A handle not cancelled yet.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Ends the wake: the phase under way stops, the node stops cleanly, the report says
    /// `Cancelled`. Idempotent.
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Whether `cancel` was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
}

/// How a wake runs.
#[derive(Debug, Clone, uniffi::Record)]
pub struct WakeOptions {
    /// The whole wake, stop included, ends within this many milliseconds (25,000 fits iOS's
    /// ~30 s refresh budget).
    pub deadline_ms: u64,
    /// A handle to end it early.
    pub cancel: Option<Arc<WakeCancel>>,
}

/// How a wake ended.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum WakeOutcome {
    /// Everything the wake could do is done (see `pending` for channels whose peer did not
    /// answer or was unreachable).
    Completed,
    /// The deadline came while channels still needed their peer.
    DeadlineReached,
    /// `WakeCancel.cancel()` was called.
    Cancelled,
    /// Another node or wake holds the data dir (the app's own node is running): nothing done.
    Busy,
    /// The sync failed (the Esplora server is unreachable or wrong); nothing was changed.
    Failed { reason: String },
}

impl From<core::WakeOutcome> for WakeOutcome {
    fn from(o: core::WakeOutcome) -> Self {
        match o {
            core::WakeOutcome::Completed => WakeOutcome::Completed,
            core::WakeOutcome::DeadlineReached => WakeOutcome::DeadlineReached,
            core::WakeOutcome::Cancelled => WakeOutcome::Cancelled,
            core::WakeOutcome::Busy => WakeOutcome::Busy,
            core::WakeOutcome::Failed { reason } => WakeOutcome::Failed { reason },
            other => WakeOutcome::Failed {
                reason: format!("{other:?}"),
            },
        }
    }
}

/// Why a channel still needs its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DialReason {
    /// A commitment update is in flight.
    UpdatePending,
    /// A cooperative close is under way.
    Shutdown,
    /// The open is not finished: the peer's `channel_ready` has not arrived.
    ChannelReady,
    /// A channel we fund needs its commitment feerate moved.
    Feerate {
        current_per_kw: u32,
        wanted_per_kw: u32,
    },
}

impl From<core::DialReason> for DialReason {
    fn from(r: core::DialReason) -> Self {
        match r {
            core::DialReason::UpdatePending => DialReason::UpdatePending,
            core::DialReason::Shutdown => DialReason::Shutdown,
            core::DialReason::ChannelReady => DialReason::ChannelReady,
            core::DialReason::Feerate {
                current_per_kw,
                wanted_per_kw,
            } => DialReason::Feerate {
                current_per_kw,
                wanted_per_kw,
            },
            // A reason a later core adds: the nearest the app can act on.
            _ => DialReason::UpdatePending,
        }
    }
}

/// A channel that still needs its peer after the wake.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PendingChannel {
    /// The channel id (hex).
    pub channel_id: String,
    pub reason: DialReason,
}

/// What a wake cost.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WakeCosts {
    pub lock_ms: u64,
    pub open_ms: u64,
    pub sync_ms: u64,
    pub talk_ms: u64,
    pub stop_ms: u64,
    pub total_ms: u64,
    /// Requests to the Esplora server.
    pub http_requests: u64,
    /// SQLite commits (the store's and the wallet's).
    pub commits: u64,
    /// Estimated fsyncs of those commits.
    pub fsyncs: u64,
    /// Outbound dials.
    pub dials: u64,
    /// Response body bytes from the Esplora server.
    pub http_bytes: u64,
    /// The process's peak resident memory so far, where the platform tells it (Linux,
    /// Android).
    pub peak_rss_bytes: Option<u64>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl From<core::WakeCosts> for WakeCosts {
    fn from(c: core::WakeCosts) -> Self {
        WakeCosts {
            lock_ms: ms(c.lock),
            open_ms: ms(c.open),
            sync_ms: ms(c.sync),
            talk_ms: ms(c.talk),
            stop_ms: ms(c.stop),
            total_ms: ms(c.total),
            http_requests: c.requests,
            commits: c.commits,
            fsyncs: c.fsyncs,
            dials: c.dials,
            http_bytes: c.http_bytes,
            peak_rss_bytes: c.peak_rss_bytes,
        }
    }
}

/// What a wake did and found.
#[derive(Debug, Clone, uniffi::Record)]
pub struct WakeReport {
    pub outcome: WakeOutcome,
    /// The synced tip height at the end (`None`: never synced).
    pub tip_height: Option<u32>,
    /// The events the wake queued; they stay queued for the app's node (`next_event`).
    pub events: Vec<Event>,
    /// The channels that still need their peer.
    pub pending: Vec<PendingChannel>,
    /// When the next wake should come, in seconds (platforms clamp it: Android's periodic
    /// work runs at least 15 minutes apart; on iOS it is a lower bound).
    pub next_wake_after_secs: u64,
    pub costs: WakeCosts,
}

impl From<core::WakeReport> for WakeReport {
    fn from(r: core::WakeReport) -> Self {
        WakeReport {
            outcome: r.outcome.into(),
            tip_height: r.tip_height,
            events: r.events.into_iter().map(Event::from).collect(),
            pending: r
                .pending
                .into_iter()
                .map(|(id, reason)| PendingChannel {
                    channel_id: id.to_string(),
                    reason: reason.into(),
                })
                .collect(),
            next_wake_after_secs: r.next_wake_after.as_secs(),
            costs: r.costs.into(),
        }
    }
}

/// The wake's runtime and task while the caller awaits it. If the caller stops awaiting (a
/// cancelled coroutine, a dropped awaitable), the wake is cancelled and the runtime is
/// disposed of only once the wake has stopped cleanly (on a thread of its own: never a panic,
/// whatever thread drops it).
struct Running {
    rt: Rt,
    task: Option<tokio::task::JoinHandle<Result<core::WakeReport, core::NodeError>>>,
    cancel: core::WakeCancel,
}

impl Drop for Running {
    fn drop(&mut self) {
        match self.task.take() {
            Some(task) => {
                self.cancel.cancel();
                self.rt.dispose(async move {
                    let _ = task.await;
                });
            }
            None => self.rt.dispose(async {}),
        }
    }
}

/// Runs one background wake on the node in `config.data_dir` with its 32-byte `seed`: lock
/// the data dir (`Busy` if the app's node holds it), sync once, dial only the peers a channel
/// needs, wait until they are quiet or the deadline, stop, report. No listener, no background
/// sync, one runtime thread, whatever `config` says. Cancelling the call (a coroutine, a Swift
/// task, a Python awaitable) cancels the wake, which still stops cleanly.
#[uniffi::export]
pub async fn wake(
    config: NodeConfig,
    seed: Vec<u8>,
    options: WakeOptions,
) -> Result<WakeReport, TernError> {
    let seed = seed_bytes(seed)?;
    let cancel = options
        .cancel
        .as_ref()
        .map(|c| c.inner.clone())
        .unwrap_or_default();
    let core_options =
        core::WakeOptions::new(Duration::from_millis(options.deadline_ms)).cancel(cancel.clone());
    let rt = Rt::new(1)?;
    let task = rt.spawn(builder(config, seed).wake(core_options));
    let mut running = Running {
        rt,
        task: Some(task),
        cancel,
    };
    let joined = match running.task.as_mut() {
        Some(task) => task.await,
        None => return Err(TernError::Internal("the wake has no task".into())),
    };
    running.task = None;
    let report = joined.map_err(|e| TernError::Internal(format!("the wake's task failed: {e}")))?;
    Ok(report?.into())
}
