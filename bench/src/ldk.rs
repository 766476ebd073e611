//! ldk-node 0.7.1 as the bench's reference phone: built on a data dir with its entropy in
//! `bench-seed` (64 bytes), Esplora at the devnet, no background sync (it syncs when told, as
//! a phone's wake does), no listener.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bitcoin::secp256k1::PublicKey;
use bitcoin::{Amount, Network};
use ldk_node::config::{Config, EsploraSyncConfig};
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::Event;
use tern_devnet::Devnet;

/// ldk-node on `dir` (created with its seed file if new).
pub fn build(dir: &Path, url: &str, listen: Option<u16>) -> ldk_node::Node {
    std::fs::create_dir_all(dir).expect("dir");
    let seed_file = dir.join("bench-seed");
    if !seed_file.exists() {
        let mut seed = [0u8; 64];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = (dir.as_os_str().len() as u8).wrapping_add(i as u8);
        }
        std::fs::write(&seed_file, seed).expect("seed");
    }
    let seed: [u8; 64] = std::fs::read(&seed_file)
        .expect("seed")
        .try_into()
        .expect("64 bytes");
    let config = Config {
        network: Network::Regtest,
        storage_dir_path: dir.display().to_string(),
        listening_addresses: listen
            .map(|p| vec![SocketAddress::from_str(&format!("127.0.0.1:{p}")).expect("address")]),
        // Plain channels: no on-chain reserve per channel to fund.
        anchor_channels_config: None,
        ..Config::default()
    };
    let mut builder = ldk_node::Builder::from_config(config);
    builder
        .set_entropy_seed_bytes(seed)
        .set_chain_source_esplora(
            url.to_string(),
            Some(EsploraSyncConfig {
                background_sync_config: None,
            }),
        )
        .set_filesystem_logger(Some(dir.join("ldk_node.log").display().to_string()), None);
    builder.build().expect("ldk-node builds")
}

/// An ldk-node phone with `n` ready channels of 100,000 sat to the LSP at `lsp` (Tern), each
/// funded from its own confirmed coin; stopped when this returns.
pub fn phone_with_channels(
    devnet: &Devnet,
    dir: &Path,
    n: usize,
    lsp: (PublicKey, String),
    mut sync_lsp: impl FnMut(),
) {
    let node = build(dir, &devnet.base_url(), None);
    node.start().expect("ldk-node starts");
    for _ in 0..n {
        let address = node.onchain_payment().new_address().expect("address");
        devnet
            .faucet(&address, Amount::from_sat(150_000))
            .expect("faucet");
    }
    devnet.mine(1);
    node.sync_wallets().expect("sync");
    let addr = SocketAddress::from_str(&lsp.1).expect("lsp address");
    for _ in 0..n {
        node.open_channel(lsp.0, addr.clone(), 100_000, None, None)
            .expect("open");
        wait_event(&node, "ChannelPending", |e| {
            if let Event::ChannelClosed { reason, .. } = e {
                panic!("ldk channel closed at open: {reason:?}");
            }
            matches!(e, Event::ChannelPending { .. })
        });
        // Its wallet learns the funding it just broadcast: the next open must not pick the
        // same coin (ldk-node does not track its own unconfirmed spends until a sync).
        std::thread::sleep(Duration::from_millis(200));
        node.sync_wallets().expect("sync");
    }
    let mut ready = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while ready < n {
        assert!(
            Instant::now() < deadline,
            "ldk channels not ready: {ready}/{n}"
        );
        devnet.mine(1);
        sync_lsp();
        node.sync_wallets().expect("sync");
        while let Some(e) = node.next_event() {
            match &e {
                Event::ChannelReady { .. } => ready += 1,
                Event::ChannelClosed { reason, .. } => panic!("ldk channel closed: {reason:?}"),
                other => eprintln!("ldk-node event: {other:?}"),
            }
            node.event_handled().expect("handled");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    node.stop().expect("stop");
}

/// Waits (60 s at most) for an event matching `want`, handling everything seen.
pub fn wait_event(node: &ldk_node::Node, what: &str, want: impl Fn(&Event) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "ldk-node: no {what}");
        if let Some(e) = node.next_event() {
            let found = want(&e);
            node.event_handled().expect("handled");
            if found {
                return;
            }
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Opens one more channel of 100,000 sat from the ldk-node phone on `dir` to the LSP, funded
/// from a new confirmed coin, and stops with the funding unconfirmed.
pub fn open_unconfirmed(devnet: &Devnet, dir: &Path, lsp: (PublicKey, String)) {
    let node = build(dir, &devnet.base_url(), None);
    node.start().expect("ldk-node starts");
    let address = node.onchain_payment().new_address().expect("address");
    devnet
        .faucet(&address, Amount::from_sat(150_000))
        .expect("faucet");
    devnet.mine(1);
    node.sync_wallets().expect("sync");
    let addr = SocketAddress::from_str(&lsp.1).expect("lsp address");
    node.open_channel(lsp.0, addr, 100_000, None, None)
        .expect("open");
    wait_event(&node, "ChannelPending", |e| {
        matches!(e, Event::ChannelPending { .. })
    });
    node.stop().expect("stop");
}
