//! `tern-bench`: Tern and ldk-node 0.7.1 side by side on one in-process devnet, in one run
//! (`scripts/bench.sh` builds it in release and writes `docs/BENCHMARKS.md`).
//!
//! Every wake runs in a fresh process (`tern-bench child …`, as on a phone), under
//! `strace -f --seccomp-bpf -c -e trace=fsync,fdatasync` when strace works here: requests and
//! response bytes are counted by the devnet, fsyncs by the kernel, peak RSS (`VmHWM`) and wall
//! times by the process itself. Both phones have channels to the same Tern LSP, which runs in
//! the driver and makes no request of its own between cases.

mod child;
mod heap;
mod ldk;
mod opens;
mod tern;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tern_devnet::Devnet;

#[global_allocator]
static ALLOC: heap::Counting = heap::Counting;

/// What one measured process cost.
#[derive(Debug, Clone, Default)]
struct Cost {
    requests: u64,
    bytes: u64,
    /// `None`: strace cannot trace here.
    fsyncs: Option<u64>,
    rss: u64,
    /// Its resident anonymous memory at the end (heap and stacks, no code pages).
    anon: u64,
    /// The most heap bytes it had live at once (the bench's counting allocator).
    heap: u64,
    /// The process's own wall time (start to exit, inside the process).
    ms: u64,
    /// The process's own report.
    own: Value,
    /// The requests by route (what the count is made of).
    routes: Vec<(String, u64)>,
}

fn self_exe() -> PathBuf {
    std::env::current_exe().expect("current exe")
}

/// Runs `tern-bench child <kind> <dir> <url>` and measures it.
fn measure(devnet: &Devnet, kind: &str, dir: &Path) -> Cost {
    let before = devnet.requests();
    let trace = dir.with_extension(format!("{kind}.strace"));
    let strace = Command::new("strace")
        .args([
            "-f",
            "--seccomp-bpf",
            "-c",
            "-e",
            "trace=fsync,fdatasync",
            "-o",
        ])
        .arg(&trace)
        .arg(self_exe())
        .args(["child", kind])
        .arg(dir)
        .arg(devnet.base_url())
        .output();
    let (out, traced) = match strace {
        Ok(o) if o.status.success() => (o, true),
        _ => {
            let o = Command::new(self_exe())
                .args(["child", kind])
                .arg(dir)
                .arg(devnet.base_url())
                .output()
                .expect("child runs");
            assert!(
                o.status.success(),
                "{kind}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            (o, false)
        }
    };
    let after = devnet.requests();
    let routes = after
        .by_route
        .iter()
        .map(|(r, n)| (r.clone(), n - before.by_route.get(r).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let own: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim())
        .unwrap_or_else(|e| {
            panic!(
                "{kind}: no report ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let fsyncs = traced.then(|| {
        let text = std::fs::read_to_string(&trace).unwrap_or_default();
        text.lines()
            .filter(|l| l.ends_with(" fsync") || l.ends_with(" fdatasync"))
            .filter_map(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
            .sum()
    });
    Cost {
        requests: after.total - before.total,
        bytes: after.bytes - before.bytes,
        fsyncs,
        rss: own["rss"].as_u64().unwrap_or(0),
        anon: own["anon"].as_u64().unwrap_or(0),
        heap: own["heap"].as_u64().unwrap_or(0),
        ms: own["total_ms"].as_u64().unwrap_or(0),
        own,
        routes,
    }
}

/// "GET /blocks/tip/hash ×1, …": what a count is made of.
fn routes(c: &Cost) -> String {
    c.routes
        .iter()
        .map(|(r, n)| format!("{r} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn ratio(tern: u64, ldk: u64) -> String {
    if tern == 0 && ldk == 0 {
        "=".into()
    } else if tern == 0 {
        format!("0 vs {ldk}")
    } else {
        format!("{:.1}×", ldk as f64 / tern as f64)
    }
}

fn fs(f: Option<u64>) -> String {
    f.map_or("n/a".into(), |n| n.to_string())
}

/// One table row: a case, Tern's cost, ldk-node's cost.
fn row(table: &mut String, case: &str, t: &Cost, l: &Cost) {
    let _ = writeln!(
        table,
        "| {case} | {} / {} | {} / {} | {} / {} | {} / {} | {} / {} | {} / {} | {} / {} | {} |",
        t.requests,
        l.requests,
        t.bytes,
        l.bytes,
        fs(t.fsyncs),
        fs(l.fsyncs),
        mb(t.rss),
        mb(l.rss),
        mb(t.anon),
        mb(l.anon),
        mb(t.heap),
        mb(l.heap),
        t.ms,
        l.ms,
        ratio(t.requests, l.requests),
    );
    eprintln!("{case}: tern {t:?}\n  ldk {l:?}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("child") => {
            // BENCH_LOG=1: the measured process logs at DEBUG to stderr (to see why a case
            // failed; the figures of such a run are not the ones to report).
            if std::env::var_os("BENCH_LOG").is_some() {
                tracing_subscriber::fmt()
                    .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
                    .with_writer(std::io::stderr)
                    .init();
            }
            child::run(&args[1], Path::new(&args[2]), &args[3])
        }
        Some("run") => drive(args.get(1).map(PathBuf::from)),
        _ => {
            eprintln!("usage: tern-bench run [OUT.md] | tern-bench child KIND DIR URL");
            std::process::exit(2);
        }
    }
}

fn drive(out: Option<PathBuf>) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let devnet = rt.block_on(Devnet::start()).expect("devnet");
    let base = std::env::temp_dir().join(format!("tern-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let lsp = rt.block_on(tern::lsp(&devnet, &base.join("lsp")));
    let lsp_id = (
        lsp.node_id(),
        lsp.listen_addr().expect("listening").to_string(),
    );
    // BENCH_OPENS_ONLY=1: only the parallel-opens case, printed (nothing written).
    if std::env::var_os("BENCH_OPENS_ONLY").is_some() {
        println!("{}", opens::table(&rt, &devnet, &base, 100));
        rt.block_on(lsp.stop());
        return;
    }
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| case | requests (Tern / ldk-node) | response bytes | fsyncs | peak RSS | anon RSS at end | peak heap | wall ms | requests: ldk ÷ Tern |\n|---|---|---|---|---|---|---|---|---|"
    );
    let mut per_block = Vec::new();
    // A Tern phone and an ldk-node phone with `n` ready channels to the LSP, both stopped, and a
    // first (unmeasured) wake of each to settle whatever the setup left.
    let phones = |n: usize| {
        let tdir = base.join(format!("tern-{n}"));
        rt.block_on(async {
            let phone = tern::phone(&devnet, &tdir, 40 + n as u8).await;
            tern::open_channels(&devnet, &phone, &lsp, n, true).await;
            phone.stop().await;
        });
        let ldir = base.join(format!("ldk-{n}"));
        ldk::phone_with_channels(&devnet, &ldir, n, lsp_id.clone(), || {
            rt.block_on(lsp.sync(None)).expect("lsp sync");
        });
        measure(&devnet, "tern-wake", &tdir);
        measure(&devnet, "ldk-wake", &ldir);
        (tdir, ldir)
    };
    for n in [1usize, 10] {
        // Tern: a phone with n ready channels, stopped.
        let (tdir, ldir) = phones(n);

        let t = measure(&devnet, "tern-wake", &tdir);
        let l = measure(&devnet, "ldk-wake", &ldir);
        row(
            &mut table,
            &format!("wake, nothing changed, {n} channel(s)"),
            &t,
            &l,
        );

        devnet.mine(1);
        rt.block_on(lsp.sync(None)).expect("lsp sync");
        let t = measure(&devnet, "tern-wake", &tdir);
        let l = measure(&devnet, "ldk-wake", &ldir);
        row(
            &mut table,
            &format!("wake after 1 new block, {n} channel(s)"),
            &t,
            &l,
        );
        per_block.push((n, t.requests, l.requests, routes(&t)));

        // One more channel each, funded and left unconfirmed; the next block confirms it.
        rt.block_on(async {
            let phone = tern::phone(&devnet, &tdir, 40 + n as u8).await;
            tern::open_channels(&devnet, &phone, &lsp, 1, false).await;
            phone.stop().await;
        });
        ldk::open_unconfirmed(&devnet, &ldir, lsp_id.clone());
        // (settle what the opens left: the funding broadcasts, the stored peers)
        measure(&devnet, "tern-wake", &tdir);
        measure(&devnet, "ldk-wake", &ldir);
        devnet.mine(1);
        rt.block_on(lsp.sync(None)).expect("lsp sync");
        let t = measure(&devnet, "tern-wake", &tdir);
        let l = measure(&devnet, "ldk-wake", &ldir);
        row(
            &mut table,
            &format!("wake after a block confirming a funding, {n}+1 channels"),
            &t,
            &l,
        );

        if n == 10 {
            let t = measure(&devnet, "tern-start", &tdir);
            let l = measure(&devnet, "ldk-start", &ldir);
            let _ = writeln!(
                table,
                "| cold start to locally ready, {n} channels (ms) | {} / {} | | | {} / {} | | {} / {} | |",
                t.own["ready_ms"], l.own["ready_ms"], mb(t.rss), mb(l.rss), t.ms, l.ms
            );
        }
    }
    // Per-block requests with 100 channels (the other cases are the same at this size).
    {
        let n = 100;
        let (tdir, ldir) = phones(n);
        devnet.mine(1);
        rt.block_on(lsp.sync(None)).expect("lsp sync");
        let t = measure(&devnet, "tern-wake", &tdir);
        let l = measure(&devnet, "ldk-wake", &ldir);
        row(
            &mut table,
            &format!("wake after 1 new block, {n} channels"),
            &t,
            &l,
        );
        per_block.push((n, t.requests, l.requests, routes(&t)));
    }
    let mut text = String::from(
        "# Benchmarks: Tern beside ldk-node 0.7.1\n\nWritten by `scripts/bench.sh` (release builds, one run, this machine). Each wake is a fresh process; \
         requests and response bytes are counted by the devnet, fsyncs by strace (fsync + fdatasync \
         syscalls of the whole process tree), peak RSS is the process's VmHWM (it includes the \
         clean code pages the process touched, which iOS's footprint does not count), peak heap \
         the most bytes live at once in the process's allocator (the bench's counting global \
         allocator, bytes asked for: an upper bound of the dirty heap — ldk-node's includes large \
         allocations it never touches, as its RSS shows; x86_64 figures are a proxy for iOS's). ldk-node's wake is build → start → sync_wallets → stop.\n\n",
    );
    text.push_str(&table);
    text.push_str("\n## Per-block requests of a wake (1 new block)\n\n| channels | Tern | ldk-node | Tern's requests |\n|---|---|---|---|\n");
    for (n, t, l, r) in per_block {
        let _ = writeln!(text, "| {n} | {t} | {l} | {r} |");
    }
    text.push_str(&opens::table(&rt, &devnet, &base, 100));
    rt.block_on(lsp.stop());
    println!("{text}");
    if let Some(out) = out {
        std::fs::write(&out, &text).expect("write the table");
        eprintln!("wrote {}", out.display());
    }
    let _ = std::fs::remove_dir_all(&base);
}
