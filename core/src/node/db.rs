//! The node's one path to SQLite: a dedicated thread owns the store, the on-chain wallet and the
//! chain watcher (the three things that read or fsync the database file), and runs the closures
//! async callers send it, one at a time. Nothing that fsyncs ever runs on a caller's thread or
//! on a tokio worker: a UI thread calling an async `Node` method only awaits a reply.
//!
//! One thread rather than `spawn_blocking` with locks: SQLite takes one writer at a time anyway,
//! the three parts need no lock order (the watcher and the store used to be locked together),
//! several writes of one action run as one job, and [`Db::close`] can drop both SQLite
//! connections deterministically before `Node::stop` returns.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::{lock, NodeError};
use crate::chain::{ChainWatcher, DynSource};
use crate::store::Store;
use crate::wallet::OnchainWallet;

/// What the store thread owns.
pub(crate) struct Parts {
    pub(crate) store: Store,
    pub(crate) wallet: OnchainWallet,
    pub(crate) watcher: ChainWatcher<DynSource>,
}

type Job = Box<dyn FnOnce(&mut Parts) + Send>;

/// Called on the store thread before each job (tests: hold a job in flight, `dev-disconnect`
/// builds only; `None` otherwise).
pub(crate) type JobGate = Arc<dyn Fn() + Send + Sync>;

/// Handle to the store thread.
pub(crate) struct Db {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Set by [`Db::close`] (and a dev kill): queued jobs are dropped, not run.
    closed: Arc<AtomicBool>,
    /// The watcher's synced tip height + 1 (0: none yet), refreshed after every job, so pure
    /// getters read it without a round trip.
    tip: Arc<AtomicU64>,
    /// The store's and the wallet's commits and estimated fsyncs, refreshed after every job
    /// ([`Db::stats`]: the node's counters, read without a round trip).
    stats: Arc<DiskStats>,
    /// Wait for replies in a blocking-pool task (tests on a paused clock; see [`wait`]).
    hold_clock: bool,
}

/// Commits and estimated fsyncs of the store's and the wallet's connections.
#[derive(Debug, Default)]
pub(crate) struct DiskStats {
    commits: AtomicU64,
    fsyncs: AtomicU64,
}

impl DiskStats {
    fn publish(&self, parts: &Parts) {
        let store = parts.store.stats();
        let wallet = parts.wallet.commits();
        self.commits.store(store.commits + wallet, Ordering::SeqCst);
        // Each wallet commit syncs the WAL once; its connection's first also syncs the
        // directory (as the store's does: `StoreStats::setup_syncs`).
        let wallet_syncs = wallet + u64::from(wallet > 0);
        self.fsyncs
            .store(store.fsyncs + wallet_syncs, Ordering::SeqCst);
    }
}

/// Waits for the store thread's reply. With `hold_clock`, the wait runs in a blocking-pool
/// task: a paused tokio clock (tests) auto-advances to the next timer whenever the runtime has
/// nothing to run, and waiting on another thread looks like nothing to run, so every timeout
/// pending in the node or the test would fire while an fsync is under way. A blocking task in
/// flight inhibits that auto-advance; the clock moves again once the reply is in.
async fn wait<T: Send + 'static>(answer: oneshot::Receiver<T>, hold_clock: bool) -> Option<T> {
    if !hold_clock {
        return answer.await.ok();
    }
    tokio::task::spawn_blocking(move || answer.blocking_recv().ok())
        .await
        .ok()
        .flatten()
}

impl Db {
    /// Starts the thread and builds its parts there (opening the database fsyncs).
    pub(crate) async fn start(
        hold_clock: bool,
        gate: Option<JobGate>,
        open: impl FnOnce() -> Result<Parts, NodeError> + Send + 'static,
    ) -> Result<Db, NodeError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (opened, answer) = oneshot::channel();
        let closed = Arc::new(AtomicBool::new(false));
        let tip = Arc::new(AtomicU64::new(0));
        let stats = Arc::new(DiskStats::default());
        let (thread_closed, thread_tip, thread_stats) =
            (closed.clone(), tip.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("tern-store".into())
            .spawn(move || {
                let mut parts = match open() {
                    Ok(parts) => {
                        let _ = opened.send(Ok(()));
                        parts
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                        return;
                    }
                };
                publish_tip(&parts, &thread_tip);
                thread_stats.publish(&parts);
                while let Ok(job) = queue.recv() {
                    if thread_closed.load(Ordering::SeqCst) {
                        // Dropping the job drops its reply: the caller sees `Stopped`.
                        continue;
                    }
                    if let Some(gate) = &gate {
                        gate();
                    }
                    job(&mut parts);
                    thread_stats.publish(&parts);
                }
                // Every sender is gone: `parts` drops here, closing both SQLite connections.
            })
            .map_err(|e| NodeError::Internal(format!("cannot start the store thread: {e}")))?;
        let db = Db {
            jobs: Mutex::new(Some(jobs)),
            thread: Mutex::new(Some(thread)),
            closed,
            tip,
            stats,
            hold_clock,
        };
        match wait(answer, hold_clock).await {
            Some(Ok(())) => Ok(db),
            Some(Err(e)) => {
                db.close().await;
                Err(e)
            }
            None => {
                db.close().await;
                Err(NodeError::Internal(
                    "the store thread ended while opening".into(),
                ))
            }
        }
    }

    /// Runs `f` on the store thread and returns its result. [`NodeError::Stopped`] once the
    /// store is closed.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Parts) -> T + Send + 'static,
    ) -> Result<T, NodeError> {
        let (reply, answer) = oneshot::channel();
        let tip = self.tip.clone();
        let job: Job = Box::new(move |parts| {
            let result = f(parts);
            // Before the reply: a caller that synced reads the new tip at once.
            publish_tip(parts, &tip);
            let _ = reply.send(result);
        });
        {
            let jobs = lock(&self.jobs);
            let sender = jobs.as_ref().ok_or(NodeError::Stopped)?;
            sender.send(job).map_err(|_| NodeError::Stopped)?;
        }
        wait(answer, self.hold_clock).await.ok_or_else(|| {
            if self.closed.load(Ordering::SeqCst) {
                NodeError::Stopped
            } else {
                NodeError::Internal("the store thread ended".into())
            }
        })
    }

    /// [`Db::call`] for closures that fail with an error convertible to [`NodeError`].
    pub(crate) async fn run<T: Send + 'static, E: Into<NodeError> + Send + 'static>(
        &self,
        f: impl FnOnce(&mut Parts) -> Result<T, E> + Send + 'static,
    ) -> Result<T, NodeError> {
        self.call(f).await?.map_err(Into::into)
    }

    /// (commits, estimated fsyncs) of the store's and the wallet's connections so far, as of
    /// the last job. No round trip.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.stats.commits.load(Ordering::SeqCst),
            self.stats.fsyncs.load(Ordering::SeqCst),
        )
    }

    /// The synced tip height (`None` before the first sync). No round trip.
    pub(crate) fn tip_height(&self) -> Option<u32> {
        match self.tip.load(Ordering::SeqCst) {
            0 => None,
            h => u32::try_from(h - 1).ok(),
        }
    }

    /// Refuses new jobs, lets the running one finish, drops the queued ones and the store,
    /// wallet and watcher (both SQLite connections), and waits for the thread to end.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        drop(lock(&self.jobs).take());
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            // Joining blocks until the running job's fsync is done: not on this worker.
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!("the store thread panicked");
            }
        }
    }

    /// [`Db::close`] without the wait: refuses new jobs and returns the store thread, which
    /// finishes its running job and drops the store, wallet and watcher (both SQLite
    /// connections) before it ends.
    pub(crate) fn detach(&self) -> Option<JoinHandle<()>> {
        self.closed.store(true, Ordering::SeqCst);
        drop(lock(&self.jobs).take());
        lock(&self.thread).take()
    }

    /// A simulated kill, as faithful as a process death: every job queued and not yet
    /// started is dropped unrun, and no later call runs (they get `Stopped`); the running job,
    /// if any, finishes (its commit happened or not, as a real kill would leave it).
    pub(crate) fn kill(&self) {
        self.closed.store(true, Ordering::SeqCst);
        drop(lock(&self.jobs).take());
    }
}

fn publish_tip(parts: &Parts, tip: &AtomicU64) {
    let height = parts
        .watcher
        .state()
        .tip
        .map_or(0, |t| u64::from(t.height) + 1);
    tip.store(height, Ordering::SeqCst);
}
