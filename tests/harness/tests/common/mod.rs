//! What the ldk-node interop tests share (`ldk_node.rs`, `ldk_node_opens.rs`,
//! `ldk_node_forgot.rs`): data dirs, a Tern node and an ldk-node on one devnet.
#![allow(dead_code)]

pub mod drive;
// This binary's TRACE log file, for the log-secret check.
#[path = "../../../../core/tests/common/trace.rs"]
pub mod trace;
// A stopped node's commitment from its stored record (tern-core's test helper).
#[path = "../../../../core/tests/common/commitment.rs"]
pub mod commitment;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use bitcoin::{Amount, Network};
use ldk_node::config::{Config as LdkConfig, EsploraSyncConfig};
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::logger::LogLevel;
use tern_core::net::faults::FaultPlan;
use tern_core::node::{Builder, Node};
use tern_devnet::Devnet;

/// LDK's reference node.
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

/// Options of a Tern node.
#[derive(Default, Clone, Copy)]
pub struct TernOpts<'a> {
    pub listen: bool,
    /// With `listen`: this port (else any free one). A restart on the port of the first
    /// start keeps the address a peer that dialled us knows, so it can dial us again.
    pub listen_port: Option<u16>,
    pub fault: Option<&'a str>,
    pub halt_after: Option<&'a str>,
    /// Fetch the fee estimates at every sync (`Builder::fee_max_age(0)`).
    pub fees_every_sync: bool,
}

pub async fn start_tern(devnet: &Devnet, dir: &Path, opts: TernOpts<'_>) -> Node {
    let mut b = Builder::new(Network::Regtest, dir, &devnet.base_url()).seed([7; 32]);
    if opts.listen {
        b = b.listen(format!("127.0.0.1:{}", opts.listen_port.unwrap_or(0)));
    }
    if let Some(rule) = opts.fault {
        b = b.dev_faults(FaultPlan::parse([rule]).expect("fault rule"));
    }
    if let Some(action) = opts.halt_after {
        b = b.dev_halt_after(action);
    }
    if opts.fees_every_sync {
        b = b.fee_max_age(std::time::Duration::ZERO);
    }
    b.start().await.expect("tern starts")
}

/// An ldk-node on `dir`, listening on `port`, syncing only when told (`sync_wallets`), with
/// its `anchor_channels_config` off: it neither offers nor accepts `option_anchors`, so its
/// channels with Tern are `static_remote_key` ones (the tests written before anchors, which
/// need no on-chain reserve in ldk-node's wallet). The same `dir` and `port` restart the same
/// node.
pub fn start_ldk(devnet: &Devnet, dir: &Path, port: u16) -> LdkNode {
    start_ldk_with(devnet, dir, port, false)
}

/// [`start_ldk`], with ldk-node's default `anchor_channels_config` when `anchors`: it then
/// offers `option_anchors`, and accepts an inbound anchor channel only with
/// `per_channel_reserve_sats` (25,000 sat) spendable on chain per anchor channel.
pub fn start_ldk_with(devnet: &Devnet, dir: &Path, port: u16, anchors: bool) -> LdkNode {
    let defaults = LdkConfig::default();
    assert!(
        defaults.anchor_channels_config.is_some(),
        "ldk-node defaults to anchors"
    );
    let config = LdkConfig {
        network: Network::Regtest,
        storage_dir_path: dir.display().to_string(),
        listening_addresses: Some(vec![ldk_addr(port)]),
        anchor_channels_config: if anchors {
            defaults.anchor_channels_config.clone()
        } else {
            None
        },
        ..defaults
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

/// Funds Tern's wallet with 0.01 BTC (confirmed).
pub async fn fund_tern(devnet: &Devnet, tern: &Node) {
    fund_tern_with(devnet, tern, 1_000_000).await;
}

/// Pays `sat` to Tern's wallet in one coin, confirmed.
pub async fn fund_tern_with(devnet: &Devnet, tern: &Node, sat: u64) {
    let address = tern.new_address().await.expect("address");
    devnet
        .faucet(&address, Amount::from_sat(sat))
        .expect("faucet");
    devnet.mine(1);
    tern.sync(None).await.expect("tern sync");
}

/// Pays `sat` to ldk-node's on-chain wallet in one coin, confirmed and synced.
pub fn fund_ldk(devnet: &Devnet, ldk: &LdkNode, sat: u64) {
    let address = ldk.onchain_payment().new_address().expect("ldk address");
    devnet
        .faucet(&address, Amount::from_sat(sat))
        .expect("faucet");
    devnet.mine(1);
    sync_ldk(ldk);
}

/// Syncs ldk-node's wallets, failing the test with the error.
pub fn sync_ldk(ldk: &LdkNode) {
    ldk.sync_wallets().expect("ldk-node sync_wallets");
}

pub async fn finish(tern: Node, ldk: LdkNode) {
    tern.stop().await;
    ldk.stop().expect("ldk-node stops");
}
