//! The node driver: the public async API over the pure channel state machines.
//!
//! One task per peer owns that peer's channels (no lock across peers); the connection manager
//! (`net`) hands it the peer's message stream; the chain watcher's sync routes funding events
//! to the owning peer task. Every action list a channel returns is performed in order, and a
//! send, broadcast or event that depends on a state only happens after that state's `Commit`
//! succeeded (the store commits with fsync) — BOLT 2's durable points. A persist that fails
//! puts the channel back to the state the store holds and disconnects the peer (the node halts
//! if the storage itself is gone).
//!
//! The store, the wallet and the chain watcher live on one dedicated thread ([`db`]); every
//! API call that touches them is `async` and only awaits that thread's answer, so no caller's
//! thread and no tokio worker ever waits for an fsync. The remaining locks (peer senders,
//! funding owners, channel views, tasks) guard in-memory maps, are held for a few
//! instructions and never across an `.await`.

mod api;
#[cfg(feature = "dev-disconnect")]
mod audit;
mod builder;
mod close;
mod cpfp;
mod db;
mod details;
mod dial;
mod dirlock;
mod error;
mod events;
mod fees;
mod funds;
mod inbound;
mod observer;
mod onchain;
mod outputs;
mod peer;
mod peer_chain;
mod perform;
mod reserve;
mod startup;
mod sync;
mod types;
mod wake;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::secp256k1::{All, PublicKey, Secp256k1};
use bitcoin::Txid;
use tokio::sync::{mpsc, watch, Notify};
use tracing::Instrument;

use crate::chain::DynSource;
use crate::net::ConnectionManager;
use crate::proto::keys::{KeysManager, NodeSeed};
use crate::proto::wire::ChannelId;
use crate::store::{OpenIntent, OpenIntentStatus, Store, StoreError};

pub use crate::wallet::Balances;
#[cfg(feature = "dev-disconnect")]
pub use audit::StoreFaults;
pub use builder::{Builder, Config, InboundPolicy};
pub use dial::{dial_reason, DialReason};
pub use dirlock::LOCK_FILE;
pub use error::NodeError;
pub use events::{CloseKind, Event};
pub use inbound::{DEFAULT_MAX_PENDING_OPENS, DEFAULT_MAX_PENDING_OPENS_PER_PEER};
pub use onchain::SendAmount;
pub use reserve::DEFAULT_ANCHOR_RESERVE;
pub use types::{
    ChannelDetails, ClaimableBalance, Counters, FeeBump, OpenChannelParams, SyncSummary,
};
pub use wake::{peak_rss_bytes, WakeCancel, WakeCosts, WakeOptions, WakeOutcome, WakeReport};

use db::{Db, Parts};
use dirlock::DirLock;
use peer::{PeerCommand, PeerTask};

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) keys: KeysManager,
    pub(crate) secp: Secp256k1<All>,
    pub(crate) node_id: PublicKey,
    /// Signs channel announcements (public channels).
    pub(crate) node_secret: bitcoin::secp256k1::SecretKey,
    /// The store, wallet and chain watcher, on their own thread.
    pub(crate) db: Db,
    /// The chain backend: Esplora, or what [`Builder::chain_source`] gave.
    pub(crate) source: DynSource,
    pub(crate) net: ConnectionManager,
    pub(crate) peers: Mutex<HashMap<PublicKey, mpsc::UnboundedSender<PeerCommand>>>,
    /// Funding txid -> the peer owning the channel.
    pub(crate) fundings: Mutex<HashMap<Txid, PublicKey>>,
    /// Watched outputs of closing channels ([`WatchRequest::Output`]) -> the owning peer.
    ///
    /// [`WatchRequest::Output`]: crate::proto::channel::WatchRequest::Output
    pub(crate) outputs: Mutex<HashMap<bitcoin::OutPoint, PublicKey>>,
    /// The close/sweep destination once revealed (`close.rs`).
    pub(crate) destination: Mutex<Option<bitcoin::ScriptBuf>>,
    /// The latest view of every channel, for `list_channels`.
    pub(crate) views: Mutex<HashMap<ChannelId, ChannelDetails>>,
    pub(crate) events: Notify,
    pub(crate) sync_lock: tokio::sync::Mutex<()>,
    pub(crate) stopped: watch::Sender<bool>,
    /// Every task the node spawned but the peer tasks, ended by `stop` (and aborted by a
    /// simulated kill).
    pub(crate) tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The peer tasks: a clean stop lets each finish the input in hand first.
    pub(crate) peer_tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// An address was handed out since the last sync planned its scripts.
    pub(crate) fresh_addresses: AtomicBool,
    /// What the wallet could spend at its last read (`reserve.rs`: the fee words).
    pub(crate) wallet_spendable_sat: std::sync::atomic::AtomicU64,
    /// Channels whose last CPFP child was not built because its fee would pass
    /// [`Config::max_cpfp_fee`]: the fee it needed (`cpfp.rs`; the fee words say it).
    pub(crate) cpfp_over_cap: Mutex<HashMap<ChannelId, bitcoin::Amount>>,
    /// Inbound opens held in memory before their durable point, by peer (`inbound.rs`).
    pub(crate) pending_inbound: Mutex<HashMap<PublicKey, usize>>,
    /// The data-dir lock, released last by `stop`.
    dir_lock: Mutex<Option<DirLock>>,
    /// `None`: the node keeps (redials) every peer with a live channel. In a wake
    /// (`wake.rs`): only the peers its dial plan chose.
    dial_only: Mutex<Option<std::collections::HashSet<PublicKey>>>,
    /// What watches the action loop ([`observer::Quiet`] in release builds).
    pub(crate) observer: Arc<dyn observer::Observer>,
    /// Dev builds: the same observer, typed, for the `dev_` accessors of the audit.
    #[cfg(feature = "dev-disconnect")]
    pub(crate) dev: Arc<audit::DevObserver>,
}

/// Takes one of the node's in-memory locks (a poisoned one is taken as is: the maps stay
/// usable). Counted process-wide ([`lock_stats`]): acquisitions, the ones that had to wait
/// for another holder, and the longest hold — the evidence that no lock is global or held
/// across an `.await` (the bench's parallel opens).
pub(crate) fn lock<T>(m: &Mutex<T>) -> Held<'_, T> {
    use std::sync::atomic::Ordering::Relaxed;
    let guard = match m.try_lock() {
        Ok(guard) => guard,
        Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            LOCKS.contended.fetch_add(1, Relaxed);
            m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    };
    LOCKS.acquired.fetch_add(1, Relaxed);
    Held {
        guard,
        since: std::time::Instant::now(),
    }
}

/// A held lock ([`lock`]); its hold time is counted when it drops.
pub(crate) struct Held<'a, T> {
    guard: MutexGuard<'a, T>,
    since: std::time::Instant,
}

impl<T> std::ops::Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> std::ops::DerefMut for Held<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for Held<'_, T> {
    fn drop(&mut self) {
        let held = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        LOCKS
            .max_hold_ns
            .fetch_max(held, std::sync::atomic::Ordering::Relaxed);
    }
}

struct LockCounts {
    acquired: std::sync::atomic::AtomicU64,
    contended: std::sync::atomic::AtomicU64,
    max_hold_ns: std::sync::atomic::AtomicU64,
}

static LOCKS: LockCounts = LockCounts {
    acquired: std::sync::atomic::AtomicU64::new(0),
    contended: std::sync::atomic::AtomicU64::new(0),
    max_hold_ns: std::sync::atomic::AtomicU64::new(0),
};

/// The node's in-memory locks in this process so far: (acquisitions, acquisitions that waited
/// for another holder, the longest hold in nanoseconds). Every node of the process counts here.
pub fn lock_stats() -> (u64, u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    (
        LOCKS.acquired.load(Relaxed),
        LOCKS.contended.load(Relaxed),
        LOCKS.max_hold_ns.load(Relaxed),
    )
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

const DB_FILE: &str = "tern.sqlite";
const KEYS_INDEX_KEY: &str = "next_channel_keys_index";
/// How long a clean stop waits for the peer tasks to finish their input in hand (a peer that
/// does not read could hold a send forever).
const PEER_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

fn peer_addr_key(node_id: &PublicKey) -> String {
    format!("peer_addr:{node_id}")
}

/// Reads and bumps the channel keys counter in one write: the index is durable before it is
/// used, so no two channels ever share keys. A counter that is not 4 bytes is an error, never
/// read as 0 (that would reuse the first channel's keys).
fn allocate_keys_index(store: &mut Store) -> Result<u32, StoreError> {
    store.write(|tx| {
        let next = match tx.get_meta(KEYS_INDEX_KEY)? {
            None => 0,
            Some(bytes) => <[u8; 4]>::try_from(bytes.as_slice())
                .map(u32::from_le_bytes)
                .map_err(|_| StoreError::Corrupt {
                    table: "meta",
                    reason: format!("{KEYS_INDEX_KEY} has {} bytes, expected 4", bytes.len()),
                })?,
        };
        let after = next.checked_add(1).ok_or_else(|| StoreError::Corrupt {
            table: "meta",
            reason: format!("{KEYS_INDEX_KEY} is exhausted"),
        })?;
        tx.put_meta(KEYS_INDEX_KEY, &after.to_le_bytes())?;
        Ok(next)
    })
}

impl Shared {
    /// Allocates a channel keys index, persisted before it is used.
    pub(crate) async fn allocate_keys_index(&self) -> Result<u32, NodeError> {
        self.db
            .run(|p: &mut Parts| allocate_keys_index(&mut p.store))
            .await
    }

    /// Opens that were under way when the last process ended, before their channel became
    /// durable, are over: mark them failed, unlock their coins and tell the app — each in one
    /// transaction.
    async fn fail_interrupted_intents(&self, intents: &[OpenIntent]) -> Result<(), NodeError> {
        for intent in intents {
            if !matches!(
                intent.status,
                OpenIntentStatus::Pending | OpenIntentStatus::Negotiating
            ) || intent.channel_id.is_some()
            {
                continue;
            }
            let reason = "the app stopped before the channel was durable".to_string();
            let counterparty_node_id = PublicKey::from_slice(&intent.peer_id)
                .map_err(|e| NodeError::corrupt("open_intents", format!("peer id: {e}")))?;
            let event = Event::ChannelOpenFailed {
                temporary_channel_id: None,
                channel_id: None,
                counterparty_node_id,
                reason: reason.clone(),
            }
            .encode();
            let id = intent.id;
            self.db
                .run(move |p: &mut Parts| {
                    p.store.write(|tx| {
                        tx.unlock_coins_for_intent(id)?;
                        tx.update_open_intent_status(
                            id,
                            OpenIntentStatus::Failed,
                            None,
                            Some(&reason),
                            now(),
                        )?;
                        tx.push_event(&event, now())
                    })
                })
                .await?;
            self.events.notify_waiters();
        }
        Ok(())
    }

    /// Marks an open intent failed (the caller got the error; no event is queued).
    pub(crate) async fn fail_intent(&self, id: i64, reason: String) -> Result<(), NodeError> {
        self.db
            .run(move |p: &mut Parts| {
                p.store.update_open_intent_status(
                    id,
                    OpenIntentStatus::Failed,
                    None,
                    Some(&reason),
                    now(),
                )
            })
            .await
    }

    /// The synced tip height (0 before the first sync). No round trip.
    pub(crate) fn tip_height(&self) -> u32 {
        self.db.tip_height().unwrap_or(0)
    }

    /// The synced tip height, `None` before the first sync. No round trip.
    pub(crate) fn tip_height_opt(&self) -> Option<u32> {
        self.db.tip_height()
    }

    /// Queues an event (durable) and wakes the waiters.
    pub(crate) async fn push_event(&self, event: &Event) -> Result<(), NodeError> {
        let record = event.encode();
        self.db
            .run(move |p: &mut Parts| p.store.push_event(&record, now()))
            .await?;
        self.events.notify_waiters();
        Ok(())
    }

    /// The address a peer was last reached at (for redialling).
    pub(crate) async fn peer_addr(&self, node_id: &PublicKey) -> Result<Option<String>, NodeError> {
        let key = peer_addr_key(node_id);
        let bytes = self
            .db
            .run(move |p: &mut Parts| p.store.get_meta(&key))
            .await?;
        Ok(bytes.and_then(|b| String::from_utf8(b).ok()))
    }

    /// Whether the node may keep (redial) `peer` on its own: always, except in a wake, which
    /// dials only the peers its plan chose (`wake.rs`).
    pub(crate) fn may_keep(&self, peer: &PublicKey) -> bool {
        lock(&self.dial_only)
            .as_ref()
            .is_none_or(|chosen| chosen.contains(peer))
    }

    /// Spawns a task the node ends on `stop`.
    pub(crate) fn spawn(&self, future: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(future);
        lock(&self.tasks).push(handle);
    }

    /// Spawns a peer task ([`Shared::shutdown`] lets it finish its input in hand).
    pub(crate) fn spawn_peer(
        &self,
        future: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let handle = tokio::spawn(future);
        lock(&self.peer_tasks).push(handle);
    }

    /// Every task, peer tasks included, taken out to be aborted.
    fn take_all_tasks(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut all: Vec<_> = lock(&self.peer_tasks).drain(..).collect();
        all.extend(lock(&self.tasks).drain(..));
        all
    }

    fn peer_sender(self: &Arc<Self>, node_id: PublicKey) -> mpsc::UnboundedSender<PeerCommand> {
        let mut peers = lock(&self.peers);
        if let Some(tx) = peers.get(&node_id).filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        peers.insert(node_id, tx.clone());
        let task = PeerTask::new(self.clone(), node_id, Vec::new(), &[]);
        self.spawn_peer(task.run(rx).instrument(peer_span(&node_id)));
        tx
    }

    /// Ends everything the node holds, in this order: the peer tasks, each after the input
    /// in hand (its persist, then its sends: a fundee's `funding_signed` after its durable
    /// point reaches the peer, not a closed socket; at most [`PEER_STOP_GRACE`]); both
    /// SQLite connections (the store thread finishes its running job and drops the store,
    /// wallet and watcher); the sockets (what was queued is flushed); the other tasks; and
    /// last the data-dir lock — so another node can open the dir as soon as this returns.
    pub(crate) async fn shutdown(&self) {
        self.stopped.send_replace(true);
        self.events.notify_waiters();
        drop(lock(&self.peers).drain().collect::<Vec<_>>());
        let peer_tasks: Vec<_> = lock(&self.peer_tasks).drain(..).collect();
        let grace = tokio::time::sleep(PEER_STOP_GRACE);
        tokio::pin!(grace);
        for mut task in peer_tasks {
            tokio::select! {
                biased;
                _ = &mut task => {}
                _ = &mut grace => {
                    task.abort();
                    let _ = task.await;
                }
            }
        }
        self.db.close().await;
        self.net.shutdown().await;
        let tasks: Vec<_> = lock(&self.tasks).drain(..).collect();
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        drop(lock(&self.dir_lock).take());
    }

    /// The storage failed under the node: stop everything rather than act on a state that may
    /// not be on disk.
    pub(crate) fn halt(self: &Arc<Self>, why: &str) {
        if *self.stopped.borrow() {
            return;
        }
        tracing::error!("halting the node: {why}");
        self.stopped.send_replace(true);
        self.events.notify_waiters();
        let shared = self.clone();
        tokio::spawn(async move { shared.shutdown().await });
    }

    /// A wake's future was dropped before its clean stop (the hard cancel, `wake.rs`): ends
    /// everything without awaiting. Tasks are aborted at their next await; the store thread
    /// finishes its running job and drops both SQLite connections, and only then is the
    /// data-dir lock released (on a thread of its own: nothing here blocks the caller).
    pub(crate) fn abandon(self: &Arc<Self>) {
        tracing::warn!("the wake was dropped: abandoning the node");
        self.stopped.send_replace(true);
        self.events.notify_waiters();
        for task in self.take_all_tasks() {
            task.abort();
        }
        let dir_lock = lock(&self.dir_lock).take();
        let store_thread = self.db.detach();
        let released = std::thread::Builder::new()
            .name("tern-unlock".into())
            .spawn(move || {
                if let Some(thread) = store_thread {
                    let _ = thread.join();
                }
                drop(dir_lock);
            });
        if let Err(e) = released {
            tracing::error!("cannot start the unlock thread: {e}");
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let net = self.net.clone();
            runtime.spawn(async move { net.shutdown().await });
        }
    }

    /// Ends the node abruptly, as a killed process would: every task is aborted at its next
    /// await point and nothing more is written (queued store jobs are dropped); connections
    /// close; the data-dir lock goes as the kernel would drop it.
    pub(crate) fn kill(self: &Arc<Self>) {
        tracing::warn!("dev: killing the node");
        self.stopped.send_replace(true);
        self.db.kill();
        for task in self.take_all_tasks() {
            task.abort();
        }
        drop(lock(&self.dir_lock).take());
        self.events.notify_waiters();
        let shared = self.clone();
        tokio::spawn(async move { shared.net.shutdown().await });
    }
}

/// Test-only run-time seams of a node (`dev-disconnect`): see
/// [`Builder::dev_memory_net`] and [`Builder::dev_hold_clock_during_store_jobs`].
#[cfg(feature = "dev-disconnect")]
#[derive(Default)]
pub(crate) struct DevSeams {
    /// Peers over this in-memory network instead of TCP.
    pub(crate) memory_net: Option<crate::net::MemoryNet>,
    /// Callers of the store thread hold a paused tokio clock while they wait.
    pub(crate) hold_clock: bool,
    /// Called on the store thread before each job ([`Builder::dev_store_gate`]).
    pub(crate) store_gate: Option<db::JobGate>,
}

#[cfg(feature = "dev-disconnect")]
impl std::fmt::Debug for DevSeams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevSeams")
            .field("memory_net", &self.memory_net.is_some())
            .field("hold_clock", &self.hold_clock)
            .field("store_gate", &self.store_gate.is_some())
            .finish()
    }
}

/// The span of a peer's task: every log line it writes names the peer.
pub(crate) fn peer_span(node_id: &PublicKey) -> tracing::Span {
    tracing::info_span!("peer", id = %node_id)
}

/// A running Tern node. Cheap to clone; every method that touches the disk or the network is
/// async, and none blocks the calling thread.
#[derive(Clone)]
pub struct Node {
    shared: Arc<Shared>,
    listen_addr: Option<std::net::SocketAddr>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("node_id", &self.shared.node_id)
            .finish_non_exhaustive()
    }
}
