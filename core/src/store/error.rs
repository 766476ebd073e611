//! The storage layer's error type.

use std::path::PathBuf;

use bitcoin::OutPoint;

/// An error from the storage layer.
///
/// Every variant names what the store was doing when it failed, so a caller can log it
/// without adding context of its own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be created, opened or have its permissions set.
    #[error("cannot {action} database file {path}: {source}")]
    File {
        /// What the store was doing with the file.
        action: &'static str,
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite returned an error.
    #[error("sqlite error while {context}: {source}")]
    Sqlite {
        /// What the store was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// SQLite could not open or configure the database file (for example, it is not a
    /// SQLite database).
    #[error("cannot open database {path} ({context}): {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What the store was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// SQLite refused write-ahead logging for the database file.
    #[error("cannot enable write-ahead logging: sqlite kept journal mode {mode:?}")]
    JournalMode {
        /// The journal mode SQLite reported.
        mode: String,
    },
    /// The database was written by a newer version of Tern.
    #[error(
        "database schema version {found} is newer than this build supports ({supported}); \
         upgrade the app"
    )]
    SchemaTooNew {
        /// The version found in the file (`PRAGMA user_version`).
        found: i64,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A migration failed; the database stays at the previous version.
    #[error("migration to schema version {version} failed: {source}")]
    Migration {
        /// The version the failed migration would have produced.
        version: u32,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored row does not have the shape the schema promises.
    #[error("corrupt row in {table}: {reason}")]
    Corrupt {
        /// The table holding the row.
        table: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An open intent with this id does not exist.
    #[error("open intent {id} not found")]
    IntentNotFound {
        /// The id looked up.
        id: i64,
    },
    /// A coin is already locked (by another intent, or without an intent).
    #[error("coin {outpoint} is already locked (intent {locked_by:?})")]
    CoinAlreadyLocked {
        /// The coin.
        outpoint: OutPoint,
        /// The intent holding the existing lock, if any.
        locked_by: Option<i64>,
    },
    /// The operation needs a database file, and this store is in memory.
    #[error("an in-memory store has no file to {action}")]
    InMemory {
        /// What was attempted.
        action: &'static str,
    },
    /// A [`Store::write`](super::Store::write) closure chose to abort; nothing was written.
    #[error("write aborted: {reason}")]
    Aborted {
        /// Why the closure aborted.
        reason: String,
    },
}

impl StoreError {
    /// Whether SQLite reported a full disk (`SQLITE_FULL`: the file system, or the database's
    /// page cap). Nothing of the failed write was kept; the same write succeeds once there is
    /// space again.
    pub fn is_disk_full(&self) -> bool {
        let source = match self {
            StoreError::Sqlite { source, .. }
            | StoreError::Open { source, .. }
            | StoreError::Migration { source, .. } => source,
            _ => return false,
        };
        source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
    }
}

/// Builds a `map_err` adapter that wraps a rusqlite error with what the store was doing.
pub(super) fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { context, source }
}
