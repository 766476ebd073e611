//! Pure protocol core.
//!
//! Everything under `proto` is deterministic: it performs no I/O, reads no clock and draws no
//! randomness. Time and entropy are parameters; state machines take inputs and return actions
//! that the node driver performs.

pub mod bolt3;
pub mod channel;
pub mod keys;
pub mod transport;
pub mod wire;
