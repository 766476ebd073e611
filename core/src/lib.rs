//! # tern-core
//!
//! The Rust core of Tern, a Lightning Network light node for phones and laptops.
//!
//! Layers (see `docs/ARCHITECTURE.md`):
//! - [`proto`]: pure protocol logic (wire codec, BOLT 8 transport, keys, BOLT 3 transactions,
//!   channel and peer state machines). No I/O, clocks or randomness: those are inputs.
//! - [`net`]: the connection manager (tokio): listener, dialer, handshake, `init`, pings,
//!   reconnect with backoff.
//!
//! Storage (`store`), chain access (`chain`), the on-chain wallet (`wallet`) and the node
//! driver (`node`) arrive with their issues.
#![cfg_attr(not(test), warn(missing_docs))]

// The unit tests' TRACE log file, for the log-secret check (tests/common/trace.rs).
#[cfg(test)]
#[path = "../tests/common/trace.rs"]
mod test_trace;

pub mod chain;
pub mod net;
pub mod node;
pub use tern_proto as proto;
pub mod store;
pub mod wallet;
