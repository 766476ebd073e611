//! Dev builds (`dev-disconnect`): the node checks what it actually did against the
//! persist-before-act contract ([`DurabilityChecker`]). Every action is fed to the checker
//! *after* the driver performed it; a commit is fed as the record read back from SQLite after
//! the transaction, so the check is about what is durable, not what was meant to be. Tests read
//! [`super::Node::dev_durability_violations`] after every step.

use super::db::Parts;
use super::peer::PeerTask;
use crate::proto::channel::{Action, ChannelRecord, Commit, DurabilityChecker};
use crate::proto::wire::ChannelId;
use crate::store::StoreError;

#[derive(Debug, Default)]
pub(crate) struct Audit {
    checker: DurabilityChecker,
    violations: Vec<String>,
    performed: u64,
    /// Channel persists attempted since start, and how many failed on purpose.
    persists: u32,
    injected: u32,
}

impl Audit {
    /// Starts from the records loaded from the store at start-up.
    pub(crate) fn new<'a>(records: impl IntoIterator<Item = &'a ChannelRecord>) -> Self {
        Audit {
            checker: DurabilityChecker::with_persisted(records),
            violations: Vec::new(),
            performed: 0,
            persists: 0,
            injected: 0,
        }
    }

    /// One action the driver performed.
    pub(crate) fn performed(&mut self, action: &Action) {
        self.performed += 1;
        if let Err(e) = self.checker.observe(std::slice::from_ref(action)) {
            tracing::error!("durability violated: {e}");
            self.violations.push(e.to_string());
        }
    }

    /// A persist the store does not hold afterwards.
    pub(crate) fn lost_persist(&mut self, what: String) {
        tracing::error!("durability violated: {what}");
        self.violations.push(what);
    }

    pub(crate) fn violations(&self) -> Vec<String> {
        self.violations.clone()
    }

    pub(crate) fn performed_count(&self) -> u64 {
        self.performed
    }
}

/// Dev builds: persists of channel records that fail on purpose, to test that a failed write
/// never leaves memory ahead of disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreFaults {
    /// Which of the node's channel persists fail (1 = the first since start).
    pub fail_persists: Vec<u32>,
    /// Fail them as an I/O error (the storage is gone: the node halts) rather than as one
    /// refused write (the peer is disconnected).
    pub storage_gone: bool,
}

impl Audit {
    /// Counts a channel persist; the injected error if this one is to fail.
    pub(crate) fn next_persist(&mut self, faults: &StoreFaults) -> Option<StoreError> {
        self.persists += 1;
        if !faults.fail_persists.contains(&self.persists) {
            return None;
        }
        self.injected += 1;
        let code = if faults.storage_gone {
            rusqlite::ffi::SQLITE_IOERR
        } else {
            rusqlite::ffi::SQLITE_BUSY
        };
        Some(StoreError::Sqlite {
            context: "dev: an injected persist failure",
            source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
        })
    }

    pub(crate) fn injected_count(&self) -> u32 {
        self.injected
    }
}

impl super::Shared {
    /// The injected failure of the next channel persist, if the plan says so.
    pub(crate) fn dev_store_fault(&self) -> Option<super::NodeError> {
        super::lock(&self.audit)
            .next_persist(&self.config.store_faults)
            .map(super::NodeError::Storage)
    }
}

impl PeerTask {
    /// Feeds the audit the record SQLite holds after a commit (its events follow, as emitted).
    pub(super) async fn audit_commit(&self, id: ChannelId, meant: &Commit) {
        let stored = self.stored_record(id).await;
        let mut audit = super::lock(&self.shared.audit);
        match stored {
            Some(record) if record == meant.record => audit.performed(&Action::Commit(Commit {
                record,
                events: Vec::new(),
                open: meant.open,
                release: meant.release,
            })),
            Some(_) => audit.lost_persist(format!("channel {id}: the store holds another record")),
            None => audit.lost_persist(format!("channel {id}: persisted but not in the store")),
        }
    }

    /// After a failed persist: channel `i` in memory must be what the store holds (nothing,
    /// for a channel that never became durable).
    pub(super) async fn audit_memory_matches_disk(&self, i: usize) {
        let channel = &self.channels[i];
        let id = channel.current_id();
        let stored = self.stored_record(id).await;
        let memory = channel.to_record();
        let ok = match &stored {
            Some(record) => record == &memory,
            None => !channel.state().is_durable(),
        };
        if !ok {
            super::lock(&self.shared.audit).lost_persist(format!(
                "channel {id}: after a failed persist memory is {:?}, the store holds {:?}",
                channel.state(),
                stored.map(|r| r.state())
            ));
        }
    }

    async fn stored_record(&self, id: ChannelId) -> Option<ChannelRecord> {
        self.shared
            .db
            .call(move |p: &mut Parts| p.store.get_channel(&id.0))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
            .and_then(|row| ChannelRecord::decode(&row.record).ok())
    }
}
