//! Dev builds (`dev-disconnect`): the node checks what it actually did against the
//! persist-before-act contract ([`DurabilityChecker`]). Every action is fed to the checker
//! *after* the driver performed it; a persist is fed as the record read back from SQLite after
//! the commit, so the check is about what is durable, not what was meant to be. Tests read
//! [`super::Node::dev_durability_violations`] after every step. It reaches the action loop only
//! as its [`Observer`] ([`DevObserver`]).

use std::sync::Mutex;

use super::observer::{Flow, Observer};
use super::NodeError;
use crate::proto::channel::{
    Action, BroadcastKind, ChannelEvent, ChannelRecord, Commit, DurabilityChecker,
};
use crate::proto::wire::ChannelId;
use crate::store::{Store, StoreError};

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
    /// Fail them as a full disk (`SQLITE_FULL`, what SQLite returns at its `max_page_count` or
    /// on `ENOSPC`; the store's own tests hit it for real): one refused write, the peer is
    /// disconnected and the channel resumes from the stored state once a write succeeds.
    /// Ignored when `storage_gone` is set.
    pub disk_full: bool,
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
        } else if faults.disk_full {
            rusqlite::ffi::SQLITE_FULL
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

/// The dev builds' [`Observer`]: the audit, the planned store faults and the halt point.
pub(crate) struct DevObserver {
    audit: Mutex<Audit>,
    faults: StoreFaults,
    /// The halt point: an action label and which of its occurrences (1 = the first).
    halt_after: Option<(String, u32)>,
    /// Occurrences of the halt point's action so far.
    halt_seen: std::sync::atomic::AtomicU32,
    /// Every `SetFeerate` the fee policy fed, in order.
    feerates: Mutex<Vec<(ChannelId, u32)>>,
}

impl DevObserver {
    pub(crate) fn new(audit: Audit, faults: StoreFaults, halt_after: Option<String>) -> Self {
        // `label*N`: the Nth occurrence (as in the fault rules); a bad count reads as the first.
        let halt_after = halt_after.map(|h| match h.split_once('*') {
            Some((label, n)) => (label.to_string(), n.parse().unwrap_or(1)),
            None => (h, 1),
        });
        DevObserver {
            audit: Mutex::new(audit),
            faults,
            halt_after,
            halt_seen: std::sync::atomic::AtomicU32::new(0),
            feerates: Mutex::new(Vec::new()),
        }
    }

    /// Every `SetFeerate` the fee policy fed so far: (channel, feerate_per_kw).
    pub(crate) fn feerates_set(&self) -> Vec<(ChannelId, u32)> {
        super::lock(&self.feerates).clone()
    }

    pub(crate) fn audit(&self) -> super::Held<'_, Audit> {
        super::lock(&self.audit)
    }
}

impl Observer for DevObserver {
    fn watching(&self) -> bool {
        true
    }

    fn persist_fault(&self) -> Option<NodeError> {
        self.audit()
            .next_persist(&self.faults)
            .map(NodeError::Storage)
    }

    fn committed(
        &self,
        store: &Store,
        id: ChannelId,
        meant: &ChannelRecord,
        events: &[ChannelEvent],
    ) {
        let stored = stored_record(store, id);
        let mut audit = self.audit();
        match stored {
            // The commit as SQLite holds it; its events follow as emitted.
            Some(record) if &record == meant => audit.performed(&Action::Commit(Commit {
                record,
                events: Vec::new(),
                open: None,
                release: None,
            })),
            Some(_) => audit.lost_persist(format!("channel {id}: the store holds another record")),
            None => audit.lost_persist(format!("channel {id}: persisted but not in the store")),
        }
        drop(audit);
        self.emitted(events);
    }

    fn emitted(&self, events: &[ChannelEvent]) {
        let mut audit = self.audit();
        for e in events {
            audit.performed(&Action::Emit(e.clone()));
        }
    }

    fn performed(&self, action: &Action) -> Flow {
        // A persist was checked as read back from SQLite (`committed`); a funding (or CPFP
        // child) request is not an effect.
        if !matches!(
            action,
            Action::Commit(_) | Action::NeedFundingTx { .. } | Action::BumpCommitment(_)
        ) {
            self.audit().performed(action);
        }
        let Some((label, nth)) = &self.halt_after else {
            return Flow::Continue;
        };
        if *label != action_label(action) {
            return Flow::Continue;
        }
        let seen = self
            .halt_seen
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        if seen == *nth {
            Flow::Halt
        } else {
            Flow::Continue
        }
    }

    fn feerate_set(&self, id: ChannelId, feerate_per_kw: u32) {
        super::lock(&self.feerates).push((id, feerate_per_kw));
    }

    fn restored(&self, store: &Store, id: ChannelId, memory: &ChannelRecord, durable: bool) {
        let stored = stored_record(store, id);
        let ok = match &stored {
            Some(record) => record == memory,
            None => !durable,
        };
        if !ok {
            self.audit().lost_persist(format!(
                "channel {id}: after a failed persist memory is {:?}, the store holds {:?}",
                memory.state(),
                stored.map(|r| r.state())
            ));
        }
    }
}

fn stored_record(store: &Store, id: ChannelId) -> Option<ChannelRecord> {
    store
        .get_channel(&id.0)
        .ok()
        .flatten()
        .and_then(|row| ChannelRecord::decode(&row.record).ok())
}

/// The name of an action for [`super::Config::halt_after`].
fn action_label(action: &Action) -> String {
    match action {
        Action::Commit(_) => "persist".into(),
        Action::Send(m) => format!("send:{}", m.name()),
        Action::NeedFundingTx { .. } => "need_funding_tx".into(),
        Action::Broadcast {
            kind: BroadcastKind::Funding,
            ..
        } => "broadcast".into(),
        Action::Broadcast {
            kind: BroadcastKind::Commitment,
            ..
        } => "broadcastcommitment".into(),
        Action::Broadcast {
            kind: BroadcastKind::MutualClose,
            ..
        } => "broadcastmutualclose".into(),
        Action::Broadcast {
            kind: BroadcastKind::Sweep,
            ..
        } => "broadcastsweep".into(),
        Action::Broadcast {
            kind: BroadcastKind::AnchorCpfp,
            ..
        } => "broadcastanchorcpfp".into(),
        Action::BumpCommitment(_) => "bumpcommitment".into(),
        Action::Watch(_) => "watch".into(),
        Action::Emit(_) => "emit".into(),
        Action::Disconnect { .. } => "disconnect".into(),
        Action::ReconnectPeer { .. } => "reconnectpeer".into(),
        Action::FailOpen(_) => "failopen".into(),
    }
}
