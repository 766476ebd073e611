//! The Tern side of the bench: the LSP every phone opens to (in the driver's process), and
//! Tern phones with `n` ready channels to it.

use std::path::Path;
use std::time::Duration;

use bitcoin::{Amount, Network};
use tern_core::node::{Builder, Event, Node, OpenChannelParams};
use tern_devnet::Devnet;

/// The LSP: a Tern node listening on loopback, accepting every channel.
pub async fn lsp(devnet: &Devnet, dir: &Path) -> Node {
    Builder::new(Network::Regtest, dir, &devnet.base_url())
        .seed([1; 32])
        .listen("127.0.0.1:0")
        .start()
        .await
        .expect("lsp starts")
}

/// A Tern phone on `dir` (its seed written to `bench-seed` first).
pub async fn phone(devnet: &Devnet, dir: &Path, seed: u8) -> Node {
    std::fs::create_dir_all(dir).expect("dir");
    let file = dir.join("bench-seed");
    if !file.exists() {
        std::fs::write(&file, [seed; 32]).expect("seed");
    }
    Builder::new(Network::Regtest, dir, &devnet.base_url())
        .seed(crate::child::tern_seed(dir))
        .start()
        .await
        .expect("phone starts")
}

/// Waits for `count` events matching `want` (60 s at most), handling every event seen.
pub async fn wait_events(node: &Node, count: usize, want: impl Fn(&Event) -> bool) {
    let mut seen = 0;
    while seen < count {
        let next = tokio::time::timeout(Duration::from_secs(60), node.wait_next_event()).await;
        let (seq, event) = next.expect("an event in time").expect("event");
        node.event_handled(seq).await.expect("handled");
        if let Event::ChannelOpenFailed { reason, .. } = &event {
            panic!("open failed: {reason}");
        }
        if want(&event) {
            seen += 1;
        }
    }
}

/// Opens `n` channels of 100,000 sat from `phone` to `lsp` (each from its own confirmed coin)
/// and drives them to ready; `confirm`: mine and wait for ready, else leave them pending.
pub async fn open_channels(devnet: &Devnet, phone: &Node, lsp: &Node, n: usize, confirm: bool) {
    for _ in 0..n {
        let address = phone.new_address().await.expect("address");
        devnet
            .faucet(&address, Amount::from_sat(150_000))
            .expect("faucet");
    }
    devnet.mine(1);
    phone.sync(None).await.expect("sync");
    lsp.sync(None).await.expect("sync");
    let addr = lsp.listen_addr().expect("listening").to_string();
    for _ in 0..n {
        phone
            .open_channel(OpenChannelParams::new(
                lsp.node_id(),
                addr.clone(),
                Amount::from_sat(100_000),
            ))
            .await
            .expect("open");
        wait_events(phone, 1, |e| matches!(e, Event::ChannelPending { .. })).await;
    }
    if !confirm {
        return;
    }
    for _ in 0..6 {
        devnet.mine(1);
        phone.sync(None).await.expect("sync");
        lsp.sync(None).await.expect("sync");
    }
    wait_events(phone, n, |e| matches!(e, Event::ChannelReady { .. })).await;
}
