//! A whole background wake in one call: [`Builder::wake`]. A phone gives an app seconds (iOS
//! ~30 s for a `BGAppRefreshTask`, an Android worker as a fresh process), so the wake does, in
//! order, only what the chain and the channels need, and reports what it cost:
//!
//! 1. **lock**: the data-dir lock, non-blocking; held by another node or wake: `Busy`.
//! 2. **open**: the store, wallet and watcher, every channel in its peer task — no listener,
//!    no sync loop, and no peer dialled on its own (the node's `dial_only` set is empty).
//! 3. **sync**: one bounded [`Node::sync`] (1 request when nothing changed).
//! 4. **talk**: the dial plan (`dial.rs`, asked of each peer task): only the peers with a
//!    channel that needs them are dialled; the wake waits until no channel needs its peer, or
//!    nothing moved for [`STALL`] on live connections, or the dial timed out, or the deadline.
//! 5. **stop**: [`Node::stop`] — the store thread finishes its running job, both SQLite
//!    connections close, then the lock goes.
//!
//! Cancelling ([`WakeCancel::cancel`], e.g. from iOS's expiration handler) ends the phase under
//! way and goes to the stop at once. Dropping the future is the hard cancel: the node is
//! abandoned as a killed process would leave it (every state is persisted before it is acted
//! on), its store thread closes the database, and only then is the lock released.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::db::Parts;
use super::dirlock::DirLock;
use super::peer::PeerCommand;
use super::{lock, Builder, ChannelDetails, DialReason, Event, Node, NodeError, Shared};
use crate::proto::channel::{ChannelState, ClosingStatus};
use crate::proto::wire::ChannelId;

/// The deadline of a wake when none is given: inside iOS's ~30 s refresh budget.
pub const DEFAULT_WAKE_DEADLINE: Duration = Duration::from_secs(25);

/// Nothing moved on live connections for this long: the wake stops waiting (the channels that
/// still want their peer are reported as pending; the next wake tries again).
pub const STALL: Duration = Duration::from_secs(3);

/// How a wake ends early on request: clone it, hand one clone to [`WakeOptions::cancel`], and
/// call [`WakeCancel::cancel`] on another from anywhere (a signal handler, iOS's expiration
/// handler, a dropped coroutine).
#[derive(Debug, Clone, Default)]
pub struct WakeCancel(Arc<CancelInner>);

#[derive(Debug, Default)]
struct CancelInner {
    cancelled: AtomicBool,
    notify: Notify,
}

impl WakeCancel {
    /// A handle not cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ends the wake: the phase under way stops, the node stops cleanly, the report says
    /// `Cancelled`. Idempotent.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Whether [`WakeCancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    async fn cancelled(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// How a wake runs.
#[derive(Debug, Clone)]
pub struct WakeOptions {
    /// The whole wake, stop included, ends within this (less the time the OS takes to run
    /// the process).
    pub deadline: Duration,
    /// A handle to end it early.
    pub cancel: Option<WakeCancel>,
}

impl Default for WakeOptions {
    fn default() -> Self {
        WakeOptions::new(DEFAULT_WAKE_DEADLINE)
    }
}

impl WakeOptions {
    /// A wake that ends within `deadline`.
    pub fn new(deadline: Duration) -> Self {
        WakeOptions {
            deadline,
            cancel: None,
        }
    }

    /// Ends early when `cancel` is cancelled.
    pub fn cancel(mut self, cancel: WakeCancel) -> Self {
        self.cancel = Some(cancel);
        self
    }
}

/// How a wake ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WakeOutcome {
    /// Everything the wake could do is done (see [`WakeReport::pending`] for channels whose
    /// peer did not answer or was not reachable).
    Completed,
    /// The deadline came while channels still needed their peer.
    DeadlineReached,
    /// [`WakeCancel::cancel`] was called.
    Cancelled,
    /// Another node or wake holds the data dir; nothing was opened.
    Busy,
    /// The sync failed (the chain source is unreachable or wrong); nothing was changed by it,
    /// and no peer was dialled.
    Failed {
        /// What went wrong.
        reason: String,
    },
}

/// What a wake cost (wall times per phase, network, disk).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WakeCosts {
    /// Taking the data-dir lock.
    pub lock: Duration,
    /// Opening the store, wallet, watcher and channels.
    pub open: Duration,
    /// The chain sync.
    pub sync: Duration,
    /// Dialling and waiting for the peers.
    pub talk: Duration,
    /// Stopping: the store thread joined, both SQLite connections closed, the lock released.
    pub stop: Duration,
    /// The whole wake.
    pub total: Duration,
    /// Requests to the chain source (see [`super::Counters::requests`]).
    pub requests: u64,
    /// SQLite commits (see [`super::Counters::commits`]).
    pub commits: u64,
    /// Estimated fsyncs (see [`super::Counters::fsyncs`]).
    pub fsyncs: u64,
    /// Outbound dials.
    pub dials: u64,
    /// Response body bytes from the chain source (see [`super::Counters::http_bytes`]).
    pub http_bytes: u64,
    /// The process's peak resident memory so far (Linux and Android: `VmHWM`), where the
    /// platform can tell.
    pub peak_rss_bytes: Option<u64>,
}

/// What a wake did and found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WakeReport {
    /// How it ended.
    pub outcome: WakeOutcome,
    /// The synced tip height at the end (`None`: never synced).
    pub tip_height: Option<u32>,
    /// The events the wake queued, in order (they stay queued for the app, which handles them
    /// as usual with `next_event` / `event_handled` on its next start).
    pub events: Vec<Event>,
    /// The channels that still need their peer, and why.
    pub pending: Vec<(ChannelId, DialReason)>,
    /// When the next wake should come ([`next_wake_after`]); platforms clamp it (Android: at
    /// least 15 minutes; iOS: a lower bound only).
    pub next_wake_after: Duration,
    /// What it cost.
    pub costs: WakeCosts,
}

/// How an awaited phase ended.
enum Ended<T> {
    Done(T),
    Deadline,
    Cancelled,
}

async fn until<T>(
    phase: impl std::future::Future<Output = T>,
    at: Instant,
    cancel: &WakeCancel,
) -> Ended<T> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Ended::Cancelled,
        _ = tokio::time::sleep_until(at) => Ended::Deadline,
        done = phase => Ended::Done(done),
    }
}

/// Abandons the node if the wake's future is dropped before its clean stop.
struct AbandonOnDrop(Option<Arc<Shared>>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.abandon();
        }
    }
}

impl Builder {
    /// Runs one background wake (see the module docs of `node/wake.rs`): lock, open, one
    /// bounded sync, dial only the peers that are owed or owe a message, wait until they are
    /// quiet or the deadline, stop, report. A data dir held by another node or wake gives
    /// `Ok` with [`WakeOutcome::Busy`]; `Err` only for bad input (no seed, a data dir that
    /// cannot be created) or a store that cannot be opened.
    pub async fn wake(self, options: WakeOptions) -> Result<WakeReport, NodeError> {
        // Deadlines on tokio's clock (tests pause it); costs on the wall clock.
        let (started, clock) = (Instant::now(), std::time::Instant::now());
        let stop_at = started + options.deadline;
        // Kept for the stop: max(1 s, 10 %) of the deadline, never more than half of it.
        let reserve = (options.deadline / 10)
            .max(Duration::from_secs(1))
            .min(options.deadline / 2);
        let work_until = stop_at - reserve;
        let cancel = options.cancel.unwrap_or_default();
        let mut costs = WakeCosts::default();
        super::startup::create_data_dir(&self.config.data_dir)?;
        let dir_lock = match DirLock::acquire(&self.config.data_dir) {
            Ok(held) => held,
            Err(NodeError::AlreadyRunning { .. }) => {
                costs.lock = clock.elapsed();
                costs.total = costs.lock;
                return Ok(WakeReport {
                    outcome: WakeOutcome::Busy,
                    tip_height: None,
                    events: Vec::new(),
                    pending: Vec::new(),
                    next_wake_after: Duration::from_secs(15 * 60),
                    costs,
                });
            }
            Err(e) => return Err(e),
        };
        costs.lock = clock.elapsed();
        let node = self.start_for_wake(dir_lock).await?;
        let mut guard = AbandonOnDrop(Some(node.shared.clone()));
        costs.open = clock.elapsed().saturating_sub(costs.lock);
        let events_before = node.pending_seqs().await.unwrap_or_default();

        let phase = std::time::Instant::now();
        let left = work_until.saturating_duration_since(Instant::now());
        let synced = until(node.sync(Some(left)), work_until, &cancel).await;
        costs.sync = phase.elapsed();
        let mut outcome = match synced {
            Ended::Done(Ok(_)) => None,
            Ended::Done(Err(e)) => Some(WakeOutcome::Failed {
                reason: e.to_string(),
            }),
            Ended::Deadline => Some(WakeOutcome::DeadlineReached),
            Ended::Cancelled => Some(WakeOutcome::Cancelled),
        };

        let phase = std::time::Instant::now();
        let mut planned = Vec::new();
        if outcome != Some(WakeOutcome::Cancelled) {
            match until(node.dial_plan_by_peer(), work_until, &cancel).await {
                Ended::Done(plan) => planned = plan,
                Ended::Deadline => outcome = outcome.or(Some(WakeOutcome::DeadlineReached)),
                Ended::Cancelled => outcome = Some(WakeOutcome::Cancelled),
            }
        }
        let mut pending: Vec<(ChannelId, DialReason)> = planned
            .iter()
            .flat_map(|(_, r)| r.iter().copied())
            .collect();
        if outcome.is_none() {
            let (ended, still) = node.talk(planned, work_until, &cancel).await;
            outcome = Some(ended);
            pending = still;
        }
        costs.talk = phase.elapsed();

        let tip_height = node.shared.tip_height_opt();
        // A cancelled wake stops at once: no more store round trips (its events stay queued
        // for the app all the same).
        let events = match outcome {
            Some(WakeOutcome::Cancelled) => Vec::new(),
            _ => node.events_since(&events_before).await,
        };
        let views: Vec<ChannelDetails> = lock(&node.shared.views).values().cloned().collect();
        let counters = node.counters();
        let to_self_delay = node.shared.config.channel.our_to_self_delay;

        let phase = std::time::Instant::now();
        node.stop().await;
        guard.0 = None;
        costs.stop = phase.elapsed();
        costs.total = clock.elapsed();
        costs.requests = counters.requests;
        costs.commits = counters.commits;
        costs.fsyncs = counters.fsyncs;
        costs.dials = counters.dials;
        costs.http_bytes = counters.http_bytes;
        costs.peak_rss_bytes = peak_rss_bytes();
        Ok(WakeReport {
            outcome: outcome.unwrap_or(WakeOutcome::Completed),
            tip_height,
            events,
            next_wake_after: next_wake_after(&views, !pending.is_empty(), to_self_delay),
            pending,
            costs,
        })
    }
}

impl Node {
    /// Every channel that needs its peer connected now, and why (each peer task answers for
    /// its channels, with the cached fee estimates: no request).
    async fn dial_plan(&self) -> Vec<(ChannelId, DialReason)> {
        self.dial_plan_by_peer()
            .await
            .into_iter()
            .flat_map(|(_, reasons)| reasons)
            .collect()
    }

    async fn dial_plan_by_peer(&self) -> Vec<(PublicKey, Vec<(ChannelId, DialReason)>)> {
        let est = self.shared.cached_fees().await;
        let senders: Vec<_> = lock(&self.shared.peers)
            .iter()
            .map(|(peer, tx)| (*peer, tx.clone()))
            .collect();
        let mut plan = Vec::new();
        for (peer, tx) in senders {
            let (reply, answer) = oneshot::channel();
            if tx.send(PeerCommand::DialReasons { est, reply }).is_err() {
                continue;
            }
            if let Ok(reasons) = answer.await {
                if !reasons.is_empty() {
                    plan.push((peer, reasons));
                }
            }
        }
        plan.sort_by_key(|(peer, _)| *peer);
        plan
    }

    /// Dials the planned peers (the plan by peer, asked once) and waits until no channel needs its peer, nothing moved for
    /// [`STALL`] on live connections, the dials timed out, the deadline, or a cancel.
    /// Returns the outcome and the channels still pending.
    async fn talk(
        &self,
        planned: Vec<(PublicKey, Vec<(ChannelId, DialReason)>)>,
        until_at: Instant,
        cancel: &WakeCancel,
    ) -> (WakeOutcome, Vec<(ChannelId, DialReason)>) {
        if planned.is_empty() {
            return (WakeOutcome::Completed, Vec::new());
        }
        let mut wanted: Vec<PublicKey> = Vec::new();
        let mut last: Vec<(ChannelId, DialReason)> = Vec::new();
        for (peer, reasons) in planned {
            last.extend(reasons);
            let addr = match self.shared.peer_addr(&peer).await {
                Ok(Some(addr)) => addr,
                _ => {
                    tracing::warn!(%peer, "wake: no address stored for the peer, not dialled");
                    continue;
                }
            };
            lock(&self.shared.dial_only)
                .get_or_insert_with(Default::default)
                .insert(peer);
            if self.shared.net.keep_peer(peer, addr).is_ok() {
                wanted.push(peer);
            }
        }
        let dialled = Instant::now();
        let mut last_connected: Vec<PublicKey> = Vec::new();
        let mut moved = Instant::now();
        loop {
            // The whole step ends on a cancel or the deadline, even a store round trip.
            let step = async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let now = self.dial_plan().await;
                let connected = self.shared.net.connected_peers().await.unwrap_or_default();
                (now, connected)
            };
            let (now, mut connected) = match until(step, until_at, cancel).await {
                Ended::Done(step) => step,
                Ended::Deadline => return (WakeOutcome::DeadlineReached, last),
                Ended::Cancelled => return (WakeOutcome::Cancelled, last),
            };
            if now.is_empty() {
                return (WakeOutcome::Completed, now);
            }
            connected.retain(|p| wanted.contains(p));
            connected.sort();
            if now != last || connected != last_connected {
                moved = Instant::now();
            }
            last = now;
            last_connected = connected;
            let all_up = wanted.iter().all(|p| last_connected.contains(p));
            if all_up && moved.elapsed() >= STALL {
                tracing::info!("wake: the peers are connected and nothing moved: stopping");
                return (WakeOutcome::Completed, last);
            }
            if !all_up && dialled.elapsed() >= self.shared.config.connect_timeout + STALL {
                tracing::info!("wake: a peer is unreachable: stopping");
                return (WakeOutcome::Completed, last);
            }
        }
    }

    /// The sequence numbers of the events queued now.
    async fn pending_seqs(&self) -> Result<Vec<u64>, NodeError> {
        self.shared
            .db
            .run(|p: &mut Parts| p.store.pending_events(usize::MAX))
            .await
            .map(|events| events.into_iter().map(|(seq, _)| seq).collect())
    }

    /// The events queued since `before` was read, decoded (a record that does not decode is
    /// left out here and stays queued).
    async fn events_since(&self, before: &[u64]) -> Vec<Event> {
        let all = self
            .shared
            .db
            .run(|p: &mut Parts| p.store.pending_events(usize::MAX))
            .await
            .unwrap_or_default();
        all.into_iter()
            .filter(|(seq, _)| !before.contains(seq))
            .filter_map(|(_, record)| Event::decode(&record).ok())
            .collect()
    }
}

/// When the next wake should come, from the channels after this one:
/// - a channel still needs its peer: 15 minutes (it was not reachable or did not answer);
/// - a funding waits for confirmations: 10 minutes per missing one (at least 10 minutes);
/// - a channel is closing on chain (sweeps, fee bumps each block): 1 hour;
/// - ready channels only: a quarter of `to_self_delay` blocks, 10 minutes each (about 6 h at
///   144), so that a revoked commitment is always seen in time, and at most a day;
/// - no channel: 24 hours.
pub fn next_wake_after(channels: &[ChannelDetails], pending: bool, to_self_delay: u16) -> Duration {
    const BLOCK: Duration = Duration::from_secs(600);
    const DAY: Duration = Duration::from_secs(24 * 3600);
    if pending {
        return Duration::from_secs(15 * 60);
    }
    let missing = channels
        .iter()
        .filter(|c| c.closing.is_none())
        .filter(|c| c.state == ChannelState::AwaitingConfirmations)
        .map(|c| {
            c.confirmations_required
                .unwrap_or(1)
                .saturating_sub(c.confirmations)
                .max(1)
        })
        .max();
    if let Some(missing) = missing {
        return BLOCK * missing;
    }
    let closing = |c: &&ChannelDetails| {
        c.closing
            .as_ref()
            .is_some_and(|s| !matches!(s, ClosingStatus::Closed { .. }))
    };
    if channels.iter().any(|c| closing(&c)) {
        return Duration::from_secs(3600);
    }
    if channels.iter().any(|c| c.state == ChannelState::Ready) {
        return (BLOCK * u32::from((to_self_delay / 4).max(1))).min(DAY);
    }
    DAY
}

/// The process's peak resident set so far, where the platform tells it (`VmHWM` on Linux and
/// Android); `None` elsewhere.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}
