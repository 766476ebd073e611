//! Dev builds (`dev-disconnect`): the node checks what it actually did against the
//! persist-before-act contract ([`DurabilityChecker`]). Every action is fed to the checker
//! *after* the driver performed it; a persist is fed as the record read back from SQLite after
//! the commit, so the check is about what is durable, not what was meant to be. Tests read
//! [`super::Node::dev_durability_violations`] after every step.

use crate::proto::channel::{Action, ChannelRecord, DurabilityChecker};

#[derive(Debug, Default)]
pub(crate) struct Audit {
    checker: DurabilityChecker,
    violations: Vec<String>,
    performed: u64,
}

impl Audit {
    /// Starts from the records loaded from the store at start-up.
    pub(crate) fn new<'a>(records: impl IntoIterator<Item = &'a ChannelRecord>) -> Self {
        Audit {
            checker: DurabilityChecker::with_persisted(records),
            violations: Vec::new(),
            performed: 0,
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
