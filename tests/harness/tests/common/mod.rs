//! Shared by the ldk-node interop tests (`ldk_node.rs`, `ldk_node_forgot.rs`): data dirs, free
//! ports and an ldk-node 0.7 on the devnet.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::str::FromStr;

use bitcoin::Network;
use ldk_node::config::{Config as LdkConfig, EsploraSyncConfig};
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::logger::LogLevel;
use tern_devnet::Devnet;

pub type LdkNode = ldk_node::Node;

/// A test's data dir, removed when the test passes.
pub struct Dirs(pub PathBuf);

impl Dirs {
    pub fn new(test: &str) -> Dirs {
        let dir = std::env::temp_dir().join(format!("tern-ldk-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Dirs(dir)
    }
    pub fn tern(&self) -> PathBuf {
        self.0.join("tern")
    }
    pub fn ldk(&self) -> PathBuf {
        self.0.join("ldk")
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// An ldk-node on `dir`, listening on `port`, syncing only when told (`sync_wallets`), without
/// anchor channels (Tern offers plain `static_remote_key` ones). The same `dir` and `port`
/// restart the same node.
pub fn start_ldk(devnet: &Devnet, dir: &Path, port: u16) -> LdkNode {
    let config = LdkConfig {
        network: Network::Regtest,
        storage_dir_path: dir.display().to_string(),
        listening_addresses: Some(vec![ldk_addr(port)]),
        anchor_channels_config: None,
        ..LdkConfig::default()
    };
    let mut builder = ldk_node::Builder::from_config(config);
    builder
        .set_entropy_seed_bytes([42; 64])
        .set_chain_source_esplora(
            devnet.base_url(),
            Some(EsploraSyncConfig {
                background_sync_config: None,
            }),
        )
        .set_filesystem_logger(
            Some(dir.join("ldk_node.log").display().to_string()),
            Some(LogLevel::Debug),
        );
    let node = builder.build().expect("ldk-node builds");
    node.start().expect("ldk-node starts");
    node
}

pub fn ldk_addr(port: u16) -> SocketAddress {
    SocketAddress::from_str(&format!("127.0.0.1:{port}")).expect("socket address")
}

/// Syncs ldk-node's wallets, failing the test with the error.
pub fn sync_ldk(ldk: &LdkNode) {
    ldk.sync_wallets().expect("ldk-node sync_wallets");
}
