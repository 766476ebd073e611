//! # tern-proto
//!
//! Tern's pure protocol core (re-exported by `tern-core` as `tern_core::proto`).
//!
//! Everything here is deterministic: it performs no I/O, reads no clock and draws no
//! randomness. Time and entropy are parameters; state machines take inputs and return actions
//! that the node driver performs. The crate depends on nothing that does I/O, and CI checks that
//! it stays so (no tokio, rusqlite, reqwest or `rand-std` in its feature tree; clippy forbids
//! `SystemTime::now`, `Instant::now` and `thread_rng` here).
#![cfg_attr(not(test), warn(missing_docs))]

// The unit tests' TRACE log file, for the log-secret check (core/tests/common/trace.rs).
// Test builds only: the log file is the test harness's I/O, not the protocol layer's.
#[cfg(test)]
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
#[path = "../../tests/common/trace.rs"]
mod test_trace;

pub mod bolt3;
pub mod channel;
pub mod keys;
pub mod transport;
pub mod wire;
