//! `tern wake --data-dir D [--deadline-ms N]`: one background wake of the node at D
//! (`Builder::wake`), its report printed as one JSON object. The network and the Esplora
//! server are the ones the daemon last ran with (it keeps them in `D/node.json`; no secret in
//! it), unless `--network` / `--esplora` are given. SIGINT or SIGTERM cancels the wake (it
//! still stops cleanly). Exit 0 with any report but a failed sync (1).

use std::path::{Path, PathBuf};
use std::time::Duration;

use bitcoin::Network;
use serde_json::{json, Value};
use tern_core::node::{Builder, WakeCancel, WakeOptions, WakeOutcome, WakeReport};

/// Where the daemon leaves its network and Esplora URL for `tern wake`.
pub const NODE_FILE: &str = "node.json";

/// What `tern wake` was asked.
#[derive(Debug, Clone)]
pub struct WakeCommand {
    /// The node's data dir.
    pub data_dir: PathBuf,
    /// The whole wake ends within this.
    pub deadline: Duration,
    /// The network (default: `D/node.json`'s).
    pub network: Option<Network>,
    /// The Esplora server (default: `D/node.json`'s).
    pub esplora: Option<String>,
}

/// Writes `D/node.json` (mode 0600, replaced atomically) for later wakes.
pub fn remember(
    dir: &Path,
    network: Network,
    esplora: &str,
    fallbacks: &[String],
) -> Result<(), String> {
    let text = json!({
        "network": network.to_string(),
        "esplora": esplora,
        "esplora_fallbacks": fallbacks,
    })
    .to_string();
    let tmp = dir.join(format!("{NODE_FILE}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = options.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(NODE_FILE))
    };
    write().map_err(|e| format!("cannot write {}: {e}", dir.join(NODE_FILE).display()))
}

/// The network, Esplora URL and fall-back URLs of a wake: the flags (no fall-backs), else
/// `D/node.json`.
fn settings(cmd: &WakeCommand) -> Result<(Network, String, Vec<String>), String> {
    let stored: Option<Value> = std::fs::read_to_string(cmd.data_dir.join(NODE_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let stored_str = |key: &str| {
        stored
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let network = match cmd.network {
        Some(n) => n,
        None => stored_str("network")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                format!(
                    "no --network, and no {NODE_FILE} in {} (a daemon writes it at start)",
                    cmd.data_dir.display()
                )
            })?,
    };
    let (esplora, fallbacks) = match &cmd.esplora {
        Some(url) => (url.clone(), Vec::new()),
        None => {
            let url = stored_str("esplora").ok_or_else(|| {
                format!(
                    "no --esplora, and no {NODE_FILE} in {} (a daemon writes it at start)",
                    cmd.data_dir.display()
                )
            })?;
            let fallbacks = stored
                .as_ref()
                .and_then(|v| v.get("esplora_fallbacks"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            (url, fallbacks)
        }
    };
    Ok((network, esplora, fallbacks))
}

/// Runs the wake; the report as JSON, and whether it failed.
pub async fn run(cmd: WakeCommand) -> Result<(Value, bool), String> {
    let (network, esplora, fallbacks) = settings(&cmd)?;
    let seed = crate::secrets::load_node_seed(&cmd.data_dir).map_err(|e| e.to_string())?;
    let cancel = WakeCancel::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        on_signal.cancel();
    });
    let report = Builder::new(network, &cmd.data_dir, &esplora)
        .esplora_fallbacks(fallbacks)
        .seed(seed)
        .wake(WakeOptions::new(cmd.deadline).cancel(cancel))
        .await
        .map_err(|e| e.to_string())?;
    let failed = matches!(report.outcome, WakeOutcome::Failed { .. });
    Ok((report_json(&report), failed))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The report as one JSON object (costs in milliseconds and counts).
pub fn report_json(r: &WakeReport) -> Value {
    let (outcome, reason) = match &r.outcome {
        WakeOutcome::Completed => ("completed", None),
        WakeOutcome::DeadlineReached => ("deadline_reached", None),
        WakeOutcome::Cancelled => ("cancelled", None),
        WakeOutcome::Busy => ("busy", None),
        WakeOutcome::Failed { reason } => ("failed", Some(reason.clone())),
        _ => ("unknown", None),
    };
    let events: Vec<Value> = r
        .events
        .iter()
        .map(|e| {
            let mut v = crate::daemon::event_json(0, e);
            if let Value::Object(map) = &mut v {
                map.remove("seq");
            }
            v
        })
        .collect();
    let pending: Vec<Value> = r
        .pending
        .iter()
        .map(|(id, why)| json!({"channel_id": id.to_string(), "reason": format!("{why:?}")}))
        .collect();
    let c = &r.costs;
    json!({
        "outcome": outcome,
        "reason": reason,
        "tip_height": r.tip_height,
        "events": events,
        "pending": pending,
        "next_wake_after_secs": r.next_wake_after.as_secs(),
        "costs": {
            "lock_ms": ms(c.lock), "open_ms": ms(c.open), "sync_ms": ms(c.sync),
            "talk_ms": ms(c.talk), "stop_ms": ms(c.stop), "total_ms": ms(c.total),
            "requests": c.requests, "commits": c.commits, "fsyncs": c.fsyncs,
            "dials": c.dials, "http_bytes": c.http_bytes, "peak_rss_bytes": c.peak_rss_bytes,
        },
    })
}
