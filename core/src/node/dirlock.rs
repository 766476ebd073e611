//! One node per data dir: an exclusive, non-blocking lock on `D/tern.lock`, taken by
//! `Node::start` before the database is opened and released by `Node::stop` after it is
//! closed. It is an advisory `flock` (std's `File::try_lock`): it belongs to the open file, so
//! two `Node`s in one process exclude each other like two processes do, and the kernel drops
//! it when the process dies — a killed app leaves no stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use super::NodeError;

/// The lock file's name inside the data dir.
pub const LOCK_FILE: &str = "tern.lock";

/// A held data-dir lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock at once or fails with [`NodeError::AlreadyRunning`].
    pub(crate) fn acquire(data_dir: &Path) -> Result<DirLock, NodeError> {
        let path = data_dir.join(LOCK_FILE);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path).map_err(|e| {
            NodeError::invalid("data_dir", format!("cannot open {}: {e}", path.display()))
        })?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(NodeError::AlreadyRunning {
                data_dir: PathBuf::from(data_dir),
            }),
            Err(TryLockError::Error(e)) => Err(NodeError::invalid(
                "data_dir",
                format!("cannot lock {}: {e}", path.display()),
            )),
        }
    }
}
