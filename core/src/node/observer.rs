//! What watches the driver's action loop ([`super::perform`]). The loop calls these hooks and
//! nothing else outside its job: release builds install [`Quiet`] (every hook a no-op, no action
//! cloned), dev builds the audit (`audit.rs`: the persist-before-act checker over what was
//! actually done, injected store failures, `halt_after`). No `#[cfg]` inside the loop.

use crate::proto::channel::{Action, ChannelEvent, ChannelRecord};
use crate::proto::wire::ChannelId;
use crate::store::Store;

use super::NodeError;

/// What the loop does after an action an observer saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on with the next action.
    Continue,
    /// End the node now, as a killed process would (dev: `halt_after`).
    Halt,
}

/// Hooks on the action loop. Store hooks run on the store thread, inside the job that wrote
/// (so they see exactly what SQLite holds, with no extra round trip); the others on the peer
/// task. All default to doing nothing.
pub(crate) trait Observer: Send + Sync {
    /// Whether to show this observer each performed action (the loop clones it only then).
    fn watching(&self) -> bool {
        false
    }

    /// Before a channel's commit is written: an error to fail it with instead.
    fn persist_fault(&self) -> Option<NodeError> {
        None
    }

    /// Store thread, right after channel `id`'s commit of `meant` (with `events`) committed.
    fn committed(
        &self,
        _store: &Store,
        _id: ChannelId,
        _meant: &ChannelRecord,
        _events: &[ChannelEvent],
    ) {
    }

    /// Events committed by a job other than a channel's commit (a failed open's).
    fn emitted(&self, _events: &[ChannelEvent]) {}

    /// An action the loop performed (never a persist: see [`Observer::committed`]).
    fn performed(&self, _action: &Action) -> Flow {
        Flow::Continue
    }

    /// The fee policy fed channel `id` an `Input::SetFeerate` (`fees.rs`).
    fn feerate_set(&self, _id: ChannelId, _feerate_per_kw: u32) {}

    /// Store thread, after a failed commit put channel `id` back: `memory` is the record it
    /// is at now (`durable`: whether its state must be stored at all).
    fn restored(&self, _store: &Store, _id: ChannelId, _memory: &ChannelRecord, _durable: bool) {}
}

/// The release builds' observer: sees nothing.
// Dev builds install the audit instead.
#[cfg_attr(feature = "dev-disconnect", allow(dead_code))]
pub(crate) struct Quiet;

impl Observer for Quiet {}
