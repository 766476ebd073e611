//! 100 peers opening to one node at once: a Tern LSP in a child process on 1 and then 2
//! runtime threads, `peers` Tern phones in the driver (each funded with one coin) opening to
//! it all at the same moment. The LSP reports how long it took from the first pending channel
//! to the last; the driver, from the launch to the last phone's `ChannelPending`. Each peer has
//! its own task and no lock is held across peers (ARCHITECTURE: "one task per peer"), so the
//! second thread should shorten it — on 2 shared cores it cannot show more.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use bitcoin::secp256k1::PublicKey;
use bitcoin::Amount;
use serde_json::Value;
use tern_core::node::{Event, Node, OpenChannelParams};
use tern_devnet::Devnet;

async fn phones(devnet: &Devnet, base: &Path, peers: usize, tag: &str) -> Vec<Node> {
    let mut nodes = Vec::new();
    for i in 0..peers {
        // A seed of its own (the phone's node id): the tag's and the index's bytes.
        let dir = base.join(format!("{tag}-phone-{i}"));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut seed = [0x77u8; 32];
        seed[..tag.len().min(16)].copy_from_slice(&tag.as_bytes()[..tag.len().min(16)]);
        seed[30..].copy_from_slice(&(i as u16).to_be_bytes());
        std::fs::write(dir.join("bench-seed"), seed).expect("seed");
        nodes.push(crate::tern::phone(devnet, &dir, 0).await);
    }
    for n in &nodes {
        let address = n.new_address().await.expect("address");
        devnet
            .faucet(&address, Amount::from_sat(150_000))
            .expect("faucet");
    }
    devnet.mine(1);
    for n in &nodes {
        n.sync(None).await.expect("sync");
    }
    nodes
}

/// One run at `threads`: (the LSP's report, the driver's launch-to-last-pending ms).
fn run(
    rt: &tokio::runtime::Runtime,
    devnet: &Devnet,
    base: &Path,
    peers: usize,
    threads: usize,
) -> (Value, u128) {
    let tag = format!("opens-{threads}");
    let phones = rt.block_on(phones(devnet, base, peers, &tag));
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args(["child", &format!("tern-lsp-{threads}-{peers}")])
        .arg(base.join(format!("{tag}-lsp")))
        .arg(devnet.base_url())
        .stdout(Stdio::piped())
        .spawn()
        .expect("lsp child");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let hello: Value =
        serde_json::from_str(&lines.next().expect("a line").expect("read")).expect("json");
    let lsp_id: PublicKey = hello["node_id"].as_str().expect("id").parse().expect("key");
    let addr = hello["listen"].as_str().expect("listen").to_string();
    let launched = Instant::now();
    rt.block_on(async {
        let mut opens = Vec::new();
        for p in &phones {
            let (p, addr) = (p.clone(), addr.clone());
            opens.push(tokio::spawn(async move {
                p.open_channel(OpenChannelParams::new(
                    lsp_id,
                    addr,
                    Amount::from_sat(100_000),
                ))
                .await
                .expect("open");
                crate::tern::wait_events(&p, 1, |e| matches!(e, Event::ChannelPending { .. }))
                    .await;
            }));
        }
        for o in opens {
            o.await.expect("open task");
        }
    });
    let driver_ms = launched.elapsed().as_millis();
    let report: Value =
        serde_json::from_str(&lines.next().expect("a report").expect("read")).expect("json");
    let _ = child.wait();
    rt.block_on(async {
        for p in phones {
            p.stop().await;
        }
    });
    (report, driver_ms)
}

/// The table section of the parallel-opens case.
pub fn table(rt: &tokio::runtime::Runtime, devnet: &Devnet, base: &Path, peers: usize) -> String {
    let mut text = format!(
        "\n## {peers} peers opening to one Tern node at once\n\nThe LSP's in-memory locks (`node::lock_stats`): how many acquisitions had to wait for another holder, and the longest hold — no lock is global or held across an await.\n\n| LSP runtime threads | first to last pending (LSP) | launch to last ChannelPending (phones) | LSP peak RSS | lock waits / acquisitions | longest hold |\n|---|---|---|---|---|---|\n"
    );
    for threads in [1, 2] {
        let (report, driver_ms) = run(rt, devnet, base, peers, threads);
        eprintln!("opens with {threads} thread(s): {report} driver {driver_ms} ms");
        let _ = writeln!(
            text,
            "| {threads} | {} ms | {driver_ms} ms | {:.1} MiB | {} / {} | {} µs |",
            report["first_to_all_ms"],
            report["rss"].as_u64().unwrap_or(0) as f64 / 1048576.0,
            report["lock_waits"],
            report["locks"],
            report["lock_max_hold_us"]
        );
    }
    text
}
