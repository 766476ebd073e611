//! Storage: one SQLite database file per node.
//!
//! The chain watcher, the wallet's coin locks, the channel state machine driver and the event
//! queue all keep their durable state here. The on-chain wallet (BDK) keeps its own `bdk_*`
//! tables in the same file through its own persister and connection
//! ([`Store::open_connection`]).
//!
//! # Durability
//!
//! The file is opened in WAL mode with `synchronous=FULL` (every commit syncs the WAL before
//! returning) and, on Apple targets, `fullfsync` and `checkpoint_fullfsync` (Apple's `fsync`
//! does not flush the drive cache). A commit that returned `Ok` survives a kill or a power cut.
//! The file and its `-wal`/`-shm` companions have mode 0600 on unix.
//!
//! # Atomicity
//!
//! [`Store::write`] runs a closure in one `BEGIN IMMEDIATE` transaction: either everything the
//! closure wrote is committed, or (closure error, panic, failed commit) nothing is. The typed
//! helpers on [`Store`] are one-statement transactions; compose them through [`WriteTx`] when
//! several changes must land together (e.g. persist a channel, mark its intent and queue an
//! event).
//!
//! # Records
//!
//! The store does not interpret channel, watch or event records: they are blobs whose owners
//! prefix them with a version byte. Schema changes go through numbered migrations
//! (`migrations.rs`, tracked in `PRAGMA user_version`); a database from a newer build is
//! refused with [`StoreError::SchemaTooNew`].
//!
//! # Clocks
//!
//! Store functions never read the clock: timestamps (`now`, unix seconds) are parameters.

mod error;
#[cfg(test)]
mod fault_tests;
mod migrations;
mod tables;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bitcoin::OutPoint;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

pub use error::StoreError;
pub use migrations::SCHEMA_VERSION;
pub use tables::{
    ChannelIdBytes, NewOpenIntent, OpenIntent, OpenIntentStatus, PeerIdBytes, StoredChannel,
    WatchRow,
};

use error::sql;

/// How long a connection waits for another connection's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL size (bytes) past which [`Store::write`] runs a passive checkpoint after its commit.
///
/// About SQLite's default of 1,000 pages of 4 KiB. The store runs checkpoints itself (automatic
/// checkpoints are off on its connections) so that [`StoreStats`] can count them.
pub const CHECKPOINT_WAL_BYTES: u64 = 4 * 1024 * 1024;

/// Prepared statements kept per connection.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// Counters of the store's disk work since it was opened, for benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Write transactions committed on this store's connection (each [`Store::write`] and each
    /// typed write helper is one; migrations applied at open are counted too).
    pub commits: u64,
    /// Checkpoints that copied WAL frames into the database file.
    pub checkpoints: u64,
    /// Commits that started a new WAL generation (the first after opening on an absent or
    /// empty WAL, and the first after a checkpoint that copied all of it); SQLite syncs the new
    /// WAL header.
    pub wal_restarts: u64,
    /// Syncs outside commits and checkpoints: 4 when `open` creates the database (SQLite
    /// switches a new file to WAL through a rollback-journal transaction: the journal twice,
    /// the directory, the database), and 1 directory sync at this connection's first commit
    /// (SQLite syncs the directory on a connection's first sync of the `-wal` file).
    pub setup_syncs: u64,
    /// Estimated `fsync` calls (`F_FULLFSYNC` on Apple):
    /// `commits + wal_restarts + 2 * checkpoints + setup_syncs`.
    ///
    /// With WAL and `synchronous=FULL`, SQLite syncs the WAL once per commit, syncs the new
    /// WAL header once when a commit restarts the WAL, and syncs twice per checkpoint (the WAL
    /// before copying frames, the database file after). SQLite runs no checkpoint when the last
    /// connection closes (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`): the WAL stays for the next
    /// process. Checked against `strace` on Linux with the bundled SQLite 3.45: the estimate
    /// matched the syscalls exactly. Not counted: commits on other connections (BDK's). Always
    /// 0 for an in-memory store.
    pub fsyncs: u64,
}

/// Commits (each an fsync) made on a thread that runs async code — a tokio worker, or a
/// caller inside `block_on` — counted in `dev-disconnect` builds. The node's rule is that there
/// are none: its store, wallet and watcher live on their own thread (`node::db`). Tests read
/// [`dev_commits_on_async_threads`].
#[cfg(feature = "dev-disconnect")]
static COMMITS_ON_ASYNC_THREADS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0);

/// Records a commit of a node's store or wallet connection (see
/// [`dev_commits_on_async_threads`]; `guarded`: the owner asked for the check, as the node
/// does); nothing outside `dev-disconnect` builds.
pub fn note_commit(guarded: bool) {
    #[cfg(not(feature = "dev-disconnect"))]
    let _ = guarded;
    #[cfg(feature = "dev-disconnect")]
    if guarded && tokio::runtime::Handle::try_current().is_ok() {
        COMMITS_ON_ASYNC_THREADS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tracing::error!("an SQLite commit ran on an async thread");
    }
}

/// Dev builds: how many SQLite commits in this process ran on a thread that runs async code.
#[cfg(feature = "dev-disconnect")]
pub fn dev_commits_on_async_threads() -> u64 {
    COMMITS_ON_ASYNC_THREADS.load(std::sync::atomic::Ordering::SeqCst)
}

/// The node's database.
///
/// `Store` is `Send` but not `Sync`: the node driver owns it (or puts it behind its own lock).
/// Reads take `&self`; writes take `&mut self`, so a write can never nest inside another.
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
    stats: StoreStats,
    /// The next commit starts a new WAL generation.
    wal_fresh: bool,
    /// The next commit is this connection's first sync of the WAL (SQLite syncs the directory).
    first_wal_sync: bool,
    /// WAL size at which the next checkpoint runs.
    next_checkpoint_at: u64,
    /// `(log, copied)` frames reported by the last checkpoint, and whether this connection
    /// committed since: a checkpoint that finds both unchanged copied nothing (and synced
    /// nothing).
    last_checkpoint: (i64, i64),
    committed_since_checkpoint: bool,
    /// Count commits made on an async thread ([`Store::guard_async_commits`]).
    guard_async_commits: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it to
    /// [`SCHEMA_VERSION`].
    ///
    /// The parent directory must exist. On unix the file is created with mode 0600, and an
    /// existing file with another mode is set to 0600.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::open_limited(path.as_ref(), None)
    }

    /// Tests and dev builds: [`Store::open`] with the database capped at `max_pages` pages
    /// (SQLite's `max_page_count`, a full disk for SQLite) before the migrations run.
    #[cfg(any(test, feature = "dev-disconnect"))]
    pub fn dev_open_with_max_pages(
        path: impl AsRef<Path>,
        max_pages: u32,
    ) -> Result<Store, StoreError> {
        Store::open_limited(path.as_ref(), Some(max_pages))
    }

    /// Tests and dev builds: from now on this connection may grow the database by `extra`
    /// pages at most (`None`: no cap). A write that needs more fails with `SQLITE_FULL`
    /// ("database or disk is full"), as on a full disk.
    #[cfg(any(test, feature = "dev-disconnect"))]
    pub fn dev_limit_growth(&self, extra: Option<u32>) -> Result<(), StoreError> {
        let max = match extra {
            Some(extra) => {
                let pages: u32 = self
                    .conn
                    .query_row("PRAGMA page_count", [], |row| row.get(0))
                    .map_err(sql("reading the page count"))?;
                pages.saturating_add(extra)
            }
            None => u32::MAX - 1,
        };
        set_max_pages(&self.conn, max)
    }

    fn open_limited(path: &Path, max_pages: Option<u32>) -> Result<Store, StoreError> {
        let path = path.to_path_buf();
        let created = prepare_file(&path)?;
        let conn = open_file_connection(&path)?;
        if let Some(max) = max_pages {
            set_max_pages(&conn, max)?;
        }
        // A WAL left by the last process (no checkpoint at close) is appended to; an absent
        // or empty one gets a new header at the first commit.
        let wal_fresh = std::fs::metadata(companion(&path, "-wal")).map_or(true, |m| m.len() == 0);
        let mut store = Store {
            conn,
            path: Some(path),
            stats: StoreStats {
                setup_syncs: if created { 4 } else { 0 },
                ..StoreStats::default()
            },
            wal_fresh,
            first_wal_sync: true,
            next_checkpoint_at: CHECKPOINT_WAL_BYTES,
            last_checkpoint: (0, 0),
            committed_since_checkpoint: false,
            guard_async_commits: false,
        };
        store.migrate(migrations::MIGRATIONS)?;
        Ok(store)
    }

    /// Opens a fresh database in memory (for tests). It has no file, so
    /// [`Store::open_connection`] fails on it.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory().map_err(sql("opening an in-memory database"))?;
        apply_pragmas(&conn, false)?;
        let mut store = Store {
            conn,
            path: None,
            stats: StoreStats::default(),
            wal_fresh: false,
            first_wal_sync: false,
            next_checkpoint_at: u64::MAX,
            last_checkpoint: (0, 0),
            committed_since_checkpoint: false,
            guard_async_commits: false,
        };
        store.migrate(migrations::MIGRATIONS)?;
        Ok(store)
    }

    fn migrate(&mut self, migrations: &[&str]) -> Result<(), StoreError> {
        let applied = migrations::migrate(&mut self.conn, migrations)?;
        for _ in 0..applied {
            self.after_commit();
        }
        Ok(())
    }

    /// From now on, a commit made on a thread that runs async code is counted (dev builds;
    /// [`dev_commits_on_async_threads`]). The node sets it on its own store.
    pub fn guard_async_commits(&mut self) {
        self.guard_async_commits = true;
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Opens another connection to the same file with the same pragmas, for the on-chain
    /// wallet's own persister (`bdk_wallet`'s rusqlite support keeps `bdk_*` tables and its
    /// own versions in `bdk_schemas`).
    ///
    /// Its commits are not counted in [`Store::stats`]; its WAL frames are checkpointed by
    /// this store's writes (or [`Store::checkpoint`]).
    pub fn open_connection(&self) -> Result<Connection, StoreError> {
        let path = self.path.as_deref().ok_or(StoreError::InMemory {
            action: "open a second connection to",
        })?;
        open_file_connection(path)
    }

    /// The schema version of the open database (equal to [`SCHEMA_VERSION`] once open).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        migrations::user_version(&self.conn)
    }

    /// Counters of commits, checkpoints and estimated fsyncs since opening.
    pub fn stats(&self) -> StoreStats {
        let mut stats = self.stats;
        stats.fsyncs = if self.path.is_some() {
            stats.commits + stats.wal_restarts + 2 * stats.checkpoints + stats.setup_syncs
        } else {
            0
        };
        stats
    }

    /// Runs `f` in one write transaction and commits it if `f` returns `Ok`.
    ///
    /// If `f` returns an error (or panics), or the commit fails, nothing `f` wrote is kept.
    /// Return [`StoreError::Aborted`] from `f` to abort for a reason of your own.
    ///
    /// ```
    /// # use tern_core::store::{Store, StoreError};
    /// let mut store = Store::open_in_memory()?;
    /// let now = 1_700_000_000;
    /// // Persist a channel and queue the event that announces it, together or not at all.
    /// let seq = store.write(|tx| {
    ///     tx.put_channel(&[1; 32], &[2; 33], b"\x01record", now)?;
    ///     tx.push_event(b"\x01channel pending", now)
    /// })?;
    /// assert_eq!(store.pending_events(10)?, vec![(seq, b"\x01channel pending".to_vec())]);
    /// # Ok::<(), StoreError>(())
    /// ```
    pub fn write<T, F>(&mut self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&WriteTx<'_>) -> Result<T, StoreError>,
    {
        let value = {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql("starting a write transaction"))?;
            let write_tx = WriteTx { tx };
            // On error `write_tx` drops here, and dropping a rusqlite transaction rolls it back.
            let value = f(&write_tx)?;
            write_tx
                .tx
                .commit()
                .map_err(sql("committing a write transaction"))?;
            value
        };
        self.after_commit();
        Ok(value)
    }

    /// Runs a passive checkpoint now (copies committed WAL frames into the database file
    /// without waiting for readers). [`Store::write`] does this by itself when the WAL grows
    /// past [`CHECKPOINT_WAL_BYTES`]. Does nothing for an in-memory store.
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        if self.path.is_none() {
            return Ok(());
        }
        let (busy, log, copied): (i64, i64, i64) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .map_err(sql("running a checkpoint"))?;
        let copied_anything = copied > 0
            && (self.committed_since_checkpoint || (log, copied) != self.last_checkpoint);
        if copied_anything {
            self.stats.checkpoints += 1;
        }
        self.last_checkpoint = (log, copied);
        self.committed_since_checkpoint = false;
        if busy == 0 && log >= 0 && log == copied {
            // Everything is in the database file: the next commit rewinds the WAL.
            self.wal_fresh = log > 0 || self.wal_fresh;
            self.next_checkpoint_at = CHECKPOINT_WAL_BYTES;
        } else {
            // A reader pins part of the WAL: retry once it has grown by another threshold.
            self.next_checkpoint_at = self.wal_len().saturating_add(CHECKPOINT_WAL_BYTES);
        }
        tracing::debug!(busy, log, copied, "store: checkpoint");
        Ok(())
    }

    /// Book-keeping after a successful commit; never fails (the commit is durable already).
    fn after_commit(&mut self) {
        note_commit(self.guard_async_commits);
        self.stats.commits += 1;
        self.committed_since_checkpoint = true;
        if self.path.is_none() {
            return;
        }
        if self.wal_fresh {
            self.stats.wal_restarts += 1;
            self.wal_fresh = false;
        }
        if self.first_wal_sync {
            self.stats.setup_syncs += 1;
            self.first_wal_sync = false;
        }
        if self.wal_len() >= self.next_checkpoint_at {
            if let Err(error) = self.checkpoint() {
                tracing::warn!(%error, "store: checkpoint failed; will retry after a later write");
                self.next_checkpoint_at = self.wal_len().saturating_add(CHECKPOINT_WAL_BYTES);
            }
        }
    }

    /// The size of the `-wal` file (0 if absent). With `journal_size_limit=0` SQLite truncates
    /// it when a commit restarts the WAL, so after a commit this is the current WAL's size.
    fn wal_len(&self) -> u64 {
        self.path
            .as_deref()
            .and_then(|path| std::fs::metadata(companion(path, "-wal")).ok())
            .map_or(0, |meta| meta.len())
    }

    // ---- meta ----------------------------------------------------------------------------

    /// Reads a metadata value.
    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        tables::get_meta(&self.conn, key)
    }

    /// Writes (inserts or replaces) a metadata value.
    pub fn put_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(|tx| tx.put_meta(key, value))
    }

    /// Deletes a metadata value; returns whether it existed.
    pub fn delete_meta(&mut self, key: &str) -> Result<bool, StoreError> {
        self.write(|tx| tx.delete_meta(key))
    }

    // ---- chain_watches -------------------------------------------------------------------

    /// Writes (inserts or replaces) a chain watch.
    pub fn put_watch(&mut self, key: &[u8], kind: &str, record: &[u8]) -> Result<(), StoreError> {
        self.write(|tx| tx.put_watch(key, kind, record))
    }

    /// Deletes a chain watch; returns whether it existed.
    pub fn delete_watch(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        self.write(|tx| tx.delete_watch(key))
    }

    /// Reads one chain watch: `(kind, record)`.
    pub fn get_watch(&self, key: &[u8]) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        tables::get_watch(&self.conn, key)
    }

    /// Every chain watch as `(key, kind, record)`, ordered by key.
    pub fn list_watches(&self) -> Result<Vec<WatchRow>, StoreError> {
        tables::list_watches(&self.conn)
    }

    // ---- channels ------------------------------------------------------------------------

    /// Writes (inserts or replaces) a channel record.
    pub fn put_channel(
        &mut self,
        channel_id: &ChannelIdBytes,
        peer_id: &PeerIdBytes,
        record: &[u8],
        now: u64,
    ) -> Result<(), StoreError> {
        self.write(|tx| tx.put_channel(channel_id, peer_id, record, now))
    }

    /// Reads one channel.
    pub fn get_channel(
        &self,
        channel_id: &ChannelIdBytes,
    ) -> Result<Option<StoredChannel>, StoreError> {
        tables::get_channel(&self.conn, channel_id)
    }

    /// Every channel, ordered by channel id.
    pub fn list_channels(&self) -> Result<Vec<StoredChannel>, StoreError> {
        tables::list_channels(&self.conn, None)
    }

    /// The channels with one peer, ordered by channel id.
    pub fn list_channels_with_peer(
        &self,
        peer_id: &PeerIdBytes,
    ) -> Result<Vec<StoredChannel>, StoreError> {
        tables::list_channels(&self.conn, Some(peer_id))
    }

    /// Deletes a channel; returns whether it existed.
    pub fn delete_channel(&mut self, channel_id: &ChannelIdBytes) -> Result<bool, StoreError> {
        self.write(|tx| tx.delete_channel(channel_id))
    }

    // ---- open_intents --------------------------------------------------------------------

    /// Records a user's request to open a channel, with status
    /// [`OpenIntentStatus::Pending`]; returns its id.
    pub fn insert_open_intent(
        &mut self,
        intent: &NewOpenIntent,
        now: u64,
    ) -> Result<i64, StoreError> {
        self.write(|tx| tx.insert_open_intent(intent, now))
    }

    /// Sets an intent's status. `channel_id` and `failure_reason` replace the stored values
    /// when `Some` and leave them unchanged when `None`. Fails with
    /// [`StoreError::IntentNotFound`] for an unknown id.
    pub fn update_open_intent_status(
        &mut self,
        id: i64,
        status: OpenIntentStatus,
        channel_id: Option<&ChannelIdBytes>,
        failure_reason: Option<&str>,
        now: u64,
    ) -> Result<(), StoreError> {
        self.write(|tx| tx.update_open_intent_status(id, status, channel_id, failure_reason, now))
    }

    /// Reads one open intent.
    pub fn get_open_intent(&self, id: i64) -> Result<Option<OpenIntent>, StoreError> {
        tables::get_open_intent(&self.conn, id)
    }

    /// Every open intent, oldest first.
    pub fn list_open_intents(&self) -> Result<Vec<OpenIntent>, StoreError> {
        tables::list_open_intents(&self.conn)
    }

    // ---- events --------------------------------------------------------------------------

    /// Appends an event record to the persisted queue; returns its sequence number
    /// (increasing, never reused).
    pub fn push_event(&mut self, record: &[u8], now: u64) -> Result<u64, StoreError> {
        self.write(|tx| tx.push_event(record, now))
    }

    /// Up to `limit` unhandled events as `(seq, record)`, oldest first.
    pub fn pending_events(&self, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        tables::pending_events(&self.conn, limit)
    }

    /// Removes a handled event from the queue; returns whether it was there.
    pub fn mark_event_handled(&mut self, seq: u64) -> Result<bool, StoreError> {
        self.write(|tx| tx.mark_event_handled(seq))
    }

    // ---- coin_locks ----------------------------------------------------------------------

    /// Locks coins (all or none), optionally for an open intent (which must exist; deleting
    /// the intent would drop its locks). Re-locking a coin for the intent that holds it is a
    /// no-op; any other existing lock fails with [`StoreError::CoinAlreadyLocked`].
    pub fn lock_coins(
        &mut self,
        outpoints: &[OutPoint],
        intent_id: Option<i64>,
        now: u64,
    ) -> Result<(), StoreError> {
        self.write(|tx| tx.lock_coins(outpoints, intent_id, now))
    }

    /// Unlocks every coin locked for an intent; returns how many.
    pub fn unlock_coins_for_intent(&mut self, intent_id: i64) -> Result<usize, StoreError> {
        self.write(|tx| tx.unlock_coins_for_intent(intent_id))
    }

    /// Unlocks one coin; returns whether it was locked.
    pub fn unlock_coin(&mut self, outpoint: &OutPoint) -> Result<bool, StoreError> {
        self.write(|tx| tx.unlock_coin(outpoint))
    }

    /// Every locked coin.
    pub fn locked_coins(&self) -> Result<Vec<OutPoint>, StoreError> {
        Ok(tables::locked_coins(&self.conn)?
            .into_iter()
            .map(|(outpoint, _)| outpoint)
            .collect())
    }

    /// Every locked coin with the intent that locked it.
    pub fn coin_locks(&self) -> Result<Vec<(OutPoint, Option<i64>)>, StoreError> {
        tables::locked_coins(&self.conn)
    }
}

/// An open write transaction, handed to the closure of [`Store::write`].
///
/// Reads through it see the transaction's own writes.
pub struct WriteTx<'a> {
    tx: Transaction<'a>,
}

impl std::fmt::Debug for WriteTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTx").finish_non_exhaustive()
    }
}

impl WriteTx<'_> {
    /// Reads a metadata value.
    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        tables::get_meta(&self.tx, key)
    }

    /// Writes (inserts or replaces) a metadata value.
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        tables::put_meta(&self.tx, key, value)
    }

    /// Deletes a metadata value; returns whether it existed.
    pub fn delete_meta(&self, key: &str) -> Result<bool, StoreError> {
        tables::delete_meta(&self.tx, key)
    }

    /// Writes (inserts or replaces) a chain watch.
    pub fn put_watch(&self, key: &[u8], kind: &str, record: &[u8]) -> Result<(), StoreError> {
        tables::put_watch(&self.tx, key, kind, record)
    }

    /// Deletes a chain watch; returns whether it existed.
    pub fn delete_watch(&self, key: &[u8]) -> Result<bool, StoreError> {
        tables::delete_watch(&self.tx, key)
    }

    /// Reads one chain watch: `(kind, record)`.
    pub fn get_watch(&self, key: &[u8]) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        tables::get_watch(&self.tx, key)
    }

    /// Every chain watch as `(key, kind, record)`, ordered by key.
    pub fn list_watches(&self) -> Result<Vec<WatchRow>, StoreError> {
        tables::list_watches(&self.tx)
    }

    /// Writes (inserts or replaces) a channel record.
    pub fn put_channel(
        &self,
        channel_id: &ChannelIdBytes,
        peer_id: &PeerIdBytes,
        record: &[u8],
        now: u64,
    ) -> Result<(), StoreError> {
        tables::put_channel(&self.tx, channel_id, peer_id, record, now)
    }

    /// Reads one channel.
    pub fn get_channel(
        &self,
        channel_id: &ChannelIdBytes,
    ) -> Result<Option<StoredChannel>, StoreError> {
        tables::get_channel(&self.tx, channel_id)
    }

    /// Every channel, ordered by channel id.
    pub fn list_channels(&self) -> Result<Vec<StoredChannel>, StoreError> {
        tables::list_channels(&self.tx, None)
    }

    /// Deletes a channel; returns whether it existed.
    pub fn delete_channel(&self, channel_id: &ChannelIdBytes) -> Result<bool, StoreError> {
        tables::delete_channel(&self.tx, channel_id)
    }

    /// Records an open intent with status [`OpenIntentStatus::Pending`]; returns its id.
    pub fn insert_open_intent(&self, intent: &NewOpenIntent, now: u64) -> Result<i64, StoreError> {
        tables::insert_open_intent(&self.tx, intent, now)
    }

    /// Sets an intent's status (see [`Store::update_open_intent_status`]).
    pub fn update_open_intent_status(
        &self,
        id: i64,
        status: OpenIntentStatus,
        channel_id: Option<&ChannelIdBytes>,
        failure_reason: Option<&str>,
        now: u64,
    ) -> Result<(), StoreError> {
        tables::update_open_intent_status(&self.tx, id, status, channel_id, failure_reason, now)
    }

    /// Reads one open intent.
    pub fn get_open_intent(&self, id: i64) -> Result<Option<OpenIntent>, StoreError> {
        tables::get_open_intent(&self.tx, id)
    }

    /// Every open intent, oldest first.
    pub fn list_open_intents(&self) -> Result<Vec<OpenIntent>, StoreError> {
        tables::list_open_intents(&self.tx)
    }

    /// Appends an event record to the persisted queue; returns its sequence number.
    pub fn push_event(&self, record: &[u8], now: u64) -> Result<u64, StoreError> {
        tables::push_event(&self.tx, record, now)
    }

    /// Up to `limit` unhandled events as `(seq, record)`, oldest first.
    pub fn pending_events(&self, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        tables::pending_events(&self.tx, limit)
    }

    /// Removes a handled event from the queue; returns whether it was there.
    pub fn mark_event_handled(&self, seq: u64) -> Result<bool, StoreError> {
        tables::mark_event_handled(&self.tx, seq)
    }

    /// Locks coins (see [`Store::lock_coins`]).
    pub fn lock_coins(
        &self,
        outpoints: &[OutPoint],
        intent_id: Option<i64>,
        now: u64,
    ) -> Result<(), StoreError> {
        tables::lock_coins(&self.tx, outpoints, intent_id, now)
    }

    /// Unlocks every coin locked for an intent; returns how many.
    pub fn unlock_coins_for_intent(&self, intent_id: i64) -> Result<usize, StoreError> {
        tables::unlock_coins_for_intent(&self.tx, intent_id)
    }

    /// Unlocks one coin; returns whether it was locked.
    pub fn unlock_coin(&self, outpoint: &OutPoint) -> Result<bool, StoreError> {
        tables::unlock_coin(&self.tx, outpoint)
    }

    /// Every locked coin with the intent that locked it.
    pub fn coin_locks(&self) -> Result<Vec<(OutPoint, Option<i64>)>, StoreError> {
        tables::locked_coins(&self.tx)
    }
}

/// `path` with `suffix` appended (SQLite's `-wal` and `-shm` companions).
fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates the database file if needed, with mode 0600 on unix, before SQLite opens it, and
/// sets the mode of an existing file to 0600. SQLite gives its `-wal` and `-shm` files the
/// database file's mode. Returns whether the file is new (empty).
fn prepare_file(path: &Path) -> Result<bool, StoreError> {
    let file_error = |action| {
        move |source| StoreError::File {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file: File = options.open(path).map_err(file_error("create"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file
            .metadata()
            .map_err(file_error("inspect"))?
            .permissions()
            .mode();
        if mode & 0o777 != 0o600 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777),
                "store: database file was not private; setting mode 0600");
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(file_error("set permissions on"))?;
        }
        for suffix in ["-wal", "-shm"] {
            let companion = companion(path, suffix);
            if let Ok(meta) = std::fs::metadata(&companion) {
                if meta.permissions().mode() & 0o777 != 0o600 {
                    std::fs::set_permissions(&companion, std::fs::Permissions::from_mode(0o600))
                        .map_err(file_error("set permissions on a companion of"))?;
                }
            }
        }
    }
    let created = file.metadata().map_err(file_error("inspect"))?.len() == 0;
    drop(file);
    Ok(created)
}

/// Opens a connection to an existing database file and applies the pragmas.
fn open_file_connection(path: &Path) -> Result<Connection, StoreError> {
    // No SQLITE_OPEN_CREATE: `prepare_file` created the file with the right mode.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let with_path = |error| match error {
        StoreError::Sqlite { context, source } => StoreError::Open {
            path: path.to_path_buf(),
            context,
            source,
        },
        other => other,
    };
    let conn = Connection::open_with_flags(path, flags)
        .map_err(sql("opening the file"))
        .map_err(with_path)?;
    apply_pragmas(&conn, true).map_err(with_path)?;
    Ok(conn)
}

/// Caps the database at `max` pages on this connection (`PRAGMA max_page_count`; SQLite keeps
/// at least the current size).
fn set_max_pages(conn: &Connection, max: u32) -> Result<(), StoreError> {
    pragma(
        conn,
        &format!("PRAGMA max_page_count = {max}"),
        "setting max_page_count",
    )?;
    Ok(())
}

/// Runs a pragma that may answer with a row, and returns the first column of that row.
fn pragma(
    conn: &Connection,
    statement: &str,
    context: &'static str,
) -> Result<Option<String>, StoreError> {
    let mut stmt = conn.prepare(statement).map_err(sql(context))?;
    let mut rows = stmt.query([]).map_err(sql(context))?;
    let first = match rows.next().map_err(sql(context))? {
        Some(row) => Some(
            row.get::<_, rusqlite::types::Value>(0)
                .map_err(sql(context))
                .map(|value| match value {
                    rusqlite::types::Value::Text(text) => text,
                    other => format!("{other:?}"),
                })?,
        ),
        None => None,
    };
    Ok(first)
}

fn apply_pragmas(conn: &Connection, on_disk: bool) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sql("setting busy_timeout"))?;
    // Room for every statement of `tables.rs` (rusqlite's default keeps 16).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    if on_disk {
        let mode = pragma(
            conn,
            "PRAGMA journal_mode = WAL",
            "enabling write-ahead logging",
        )?
        .unwrap_or_default();
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::JournalMode { mode });
        }
        // Checkpoints are run by `Store` (see CHECKPOINT_WAL_BYTES); a restarted WAL is
        // truncated to its first commit, so the file's size tracks the WAL's content.
        pragma(
            conn,
            "PRAGMA wal_autocheckpoint = 0",
            "setting wal_autocheckpoint",
        )?;
        pragma(
            conn,
            "PRAGMA journal_size_limit = 0",
            "setting journal_size_limit",
        )?;
        // No checkpoint when the last connection closes: it would cost 2 fsyncs at the end of
        // every background wake that wrote anything, and a restarted WAL 1 more at the next
        // one. The WAL is durable as it is; the store's own passive checkpoint (past
        // CHECKPOINT_WAL_BYTES) copies it into the database file.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(sql("disabling the checkpoint on close"))?;
    }
    pragma(conn, "PRAGMA synchronous = FULL", "setting synchronous")?;
    #[cfg(target_vendor = "apple")]
    {
        pragma(conn, "PRAGMA fullfsync = ON", "setting fullfsync")?;
        pragma(
            conn,
            "PRAGMA checkpoint_fullfsync = ON",
            "setting checkpoint_fullfsync",
        )?;
    }
    pragma(conn, "PRAGMA foreign_keys = ON", "enabling foreign keys")?;
    Ok(())
}
