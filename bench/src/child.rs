//! The measured processes: each case runs in a fresh process (`tern-bench child <kind> D URL`),
//! as a phone's background wake does, and prints one JSON line of what it saw itself (wall
//! times of its phases, its own request count where it has one, its peak RSS).

use std::path::Path;
use std::time::{Duration, Instant};

use bitcoin::Network;
use serde_json::{json, Value};
use tern_core::node::{Builder, WakeOptions, WakeOutcome};

/// The process's peak resident set (`VmHWM`), bytes (0 where the platform does not tell).
pub fn vmhwm() -> u64 {
    tern_core::node::peak_rss_bytes().unwrap_or(0)
}

/// The process's resident anonymous memory now (`RssAnon`: heap, stacks — what iOS's
/// footprint counts; file-backed clean pages such as the code are not in it), bytes.
pub fn rss_anon() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("RssAnon:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The seed a bench node keeps in its data dir (`bench-seed`, 32 bytes).
pub fn tern_seed(dir: &Path) -> [u8; 32] {
    let bytes = std::fs::read(dir.join("bench-seed")).expect("bench-seed");
    bytes.try_into().expect("32 bytes")
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A Tern background wake: `Builder::wake`, on one runtime thread (the light profile).
fn tern_wake(dir: &Path, url: &str) -> Value {
    let began = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let report = rt
        .block_on(
            Builder::new(Network::Regtest, dir, url)
                .seed(tern_seed(dir))
                .wake(WakeOptions::new(Duration::from_secs(25))),
        )
        .expect("wake");
    let c = &report.costs;
    json!({
        "ok": report.outcome == WakeOutcome::Completed,
        "outcome": format!("{:?}", report.outcome),
        "total_ms": ms(began.elapsed()),
        "open_ms": ms(c.open), "sync_ms": ms(c.sync), "talk_ms": ms(c.talk), "stop_ms": ms(c.stop),
        "own_requests": c.requests, "own_fsyncs": c.fsyncs, "dials": c.dials,
        "rss": vmhwm(), "anon": rss_anon(), "heap": crate::heap::peak(),
    })
}

/// Tern's cold start to locally ready: `Builder::start` (store, wallet, every channel in its
/// peer task), then stop.
fn tern_start(dir: &Path, url: &str, threads: usize) -> Value {
    let began = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    let ready = rt.block_on(async {
        let node = Builder::new(Network::Regtest, dir, url)
            .seed(tern_seed(dir))
            .start()
            .await
            .expect("start");
        let ready = began.elapsed();
        let channels = node.list_channels().await.len();
        node.stop().await;
        (ready, channels)
    });
    json!({"ok": true, "ready_ms": ms(ready.0), "channels": ready.1, "total_ms": ms(began.elapsed()), "rss": vmhwm()})
}

/// ldk-node's equivalent of a wake (what its users do: its issue #43): build, start,
/// `sync_wallets`, stop. No listener, no background sync.
fn ldk_wake(dir: &Path, url: &str, sync: bool) -> Value {
    let began = Instant::now();
    let node = crate::ldk::build(dir, url, None);
    let built = began.elapsed();
    node.start().expect("ldk-node starts");
    let started = began.elapsed();
    let channels = node.list_channels().len();
    if sync {
        node.sync_wallets().expect("sync_wallets");
    }
    let synced = began.elapsed();
    node.stop().expect("ldk-node stops");
    let total = began.elapsed();
    json!({
        "ok": true, "channels": channels,
        "build_ms": ms(built), "ready_ms": ms(started), "sync_ms": ms(synced - started),
        "stop_ms": ms(total - synced), "total_ms": ms(total), "rss": vmhwm(), "anon": rss_anon(), "heap": crate::heap::peak(),
    })
}

/// An LSP on `threads` runtime workers for the parallel-opens case: prints its id and address,
/// then, once `expect` channels are pending (or 120 s passed), how long that took from the
/// first one.
fn tern_lsp(dir: &Path, url: &str, threads: usize, expect: usize) -> Value {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let node = Builder::new(Network::Regtest, dir, url)
            .seed([9; 32])
            .listen("127.0.0.1:0")
            // `expect` phones open at once: room for all their pending opens (default 50).
            .peer_limits(
                tern_core::net::DEFAULT_MAX_INBOUND_CONNECTIONS.max(expect + 8),
                tern_core::net::DEFAULT_MAX_QUEUED_BYTES,
                tern_core::node::DEFAULT_MAX_PENDING_OPENS_PER_PEER,
                expect.max(tern_core::node::DEFAULT_MAX_PENDING_OPENS),
            )
            .start()
            .await
            .expect("lsp starts");
        println!(
            "{}",
            json!({"node_id": node.node_id().to_string(), "listen": node.listen_addr().expect("listening").to_string()})
        );
        let began = Instant::now();
        let mut first = None;
        let mut pending = 0;
        while began.elapsed() < Duration::from_secs(120) {
            pending = node
                .list_channels()
                .await
                .iter()
                .filter(|c| c.state == tern_core::proto::channel::ChannelState::AwaitingConfirmations)
                .count();
            if pending > 0 && first.is_none() {
                first = Some(Instant::now());
            }
            if pending >= expect {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let all_ms = first.map_or(0, |f| ms(f.elapsed()));
        let (acquired, contended, max_hold_ns) = tern_core::node::lock_stats();
        node.stop().await;
        json!({"ok": pending >= expect, "pending": pending, "first_to_all_ms": all_ms, "rss": vmhwm(), "total_ms": ms(began.elapsed()),
               "locks": acquired, "lock_waits": contended, "lock_max_hold_us": max_hold_ns / 1000})
    })
}

/// Runs child `kind` and prints its JSON line.
pub fn run(kind: &str, dir: &Path, url: &str) {
    if let Some(rest) = kind.strip_prefix("tern-lsp-") {
        // tern-lsp-<threads>-<channels>
        let mut parts = rest
            .split('-')
            .map(|n| n.parse::<usize>().expect("a number"));
        let (threads, expect) = (
            parts.next().expect("threads"),
            parts.next().expect("channels"),
        );
        println!("{}", tern_lsp(dir, url, threads, expect));
        return;
    }
    let out = match kind {
        "tern-wake" => tern_wake(dir, url),
        "tern-start" => tern_start(dir, url, 2),
        "ldk-wake" => ldk_wake(dir, url, true),
        "ldk-start" => ldk_wake(dir, url, false),
        other => panic!("unknown child {other}"),
    };
    println!("{out}");
}
