//! Tern's desktop harness: the `tern` binary's pieces (daemon, control protocol, CLI, demo)
//! and the process driver the demo and the process-level tests share.

pub mod cli;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod procs;
pub mod secrets;
pub mod wake;
