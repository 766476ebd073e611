//! Thin uniffi layer over `tern-core`: the node API for Kotlin, Swift and Python.
//!
//! Every call that touches the disk or the network is `async` in each language and runs on
//! the node's own runtime ([`runtime`]); only pure reads (`node_id`, `listen_addr`,
//! `is_stopped`, `synced_height`) are synchronous. Events are pulled (`wait_next_event`,
//! `next_event`) and acknowledged with `event_handled` once the app has handled them: no
//! callback into foreign code. Core types are mirrored in [`types`] so tern-core does not
//! depend on uniffi. Generated bindings are build outputs, never committed.

uniffi::setup_scaffolding!("tern");

mod error;
mod log;
mod node;
mod runtime;
mod types;
mod wake;

use std::time::Duration;

pub use error::TernError;
pub use log::{
    dropped_log_records, init_logging, init_logging_with_sink, LogLevel, LogRecord, LogSink,
};
pub use node::Node;
pub use types::*;
pub use wake::{
    wake, DialReason, PendingChannel, WakeCancel, WakeCosts, WakeOptions, WakeOutcome, WakeReport,
};

/// The version of the Tern library, so that bindings can check what they loaded.
#[uniffi::export]
pub fn tern_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// A configuration with the defaults: no listener, no background sync (the app calls `sync`,
/// as a background wake does), 10 s to connect, every inbound channel accepted, two runtime
/// threads, 25,000 sat kept per anchor channel to CPFP its force close.
#[uniffi::export]
pub fn default_config(network: Network, data_dir: String, esplora_url: String) -> NodeConfig {
    NodeConfig {
        network,
        data_dir,
        esplora_url,
        esplora_fallback_urls: Vec::new(),
        listen: None,
        sync_interval: None,
        connect_timeout: Duration::from_secs(10),
        inbound_policy: InboundPolicy::AcceptAll,
        runtime_threads: 2,
        anchor_reserve_per_channel_sat: 25_000,
    }
}

#[cfg(test)]
mod tests;
