//! `tern daemon`: one Tern node in a process, controlled over `D/tern.sock`.
//!
//! The node's secret is `D/mnemonic` (BIP39 words from `tern init`) or else `D/seed` (32 bytes
//! from the OS RNG, created once with mode 0600; see [`crate::secrets`]), the node's database
//! beside it, the log in `D/tern.log`. A background loop syncs the chain every
//! `sync_interval`. A node halted by `--dev-halt-after` keeps the socket up and reports
//! `"halted": true` so that a driver can SIGKILL the process at exactly that point.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::{Amount, FeeRate, Network};
use serde_json::{json, Value};
use tern_core::node::{
    Builder, ChannelDetails, Event, InboundPolicy, Node, NodeError, OpenChannelParams, SendAmount,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::control::{self, Request, Response};
pub use crate::secrets::{load_or_create_seed, MNEMONIC_FILE, SEED_FILE};
/// The log file's name inside the data dir.
pub const LOG_FILE: &str = "tern.log";

/// How long one control request may wait on the node (an open waits for the connection).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// `tern daemon`'s settings.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Where the seed, database, socket and log live.
    pub data_dir: PathBuf,
    /// The network.
    pub network: Network,
    /// The Esplora server.
    pub esplora: String,
    /// More Esplora servers, asked in order when the one asked fails or lies.
    pub esplora_fallbacks: Vec<String>,
    /// Accept peers here (`host:port`, port 0 picks one).
    pub listen: Option<String>,
    /// `dev-disconnect` rules, comma separated (`$channel_ready,-funding_created`).
    pub dev_faults: Option<String>,
    /// Halt the node after this channel action (`persist`, `send:channel_ready`, ...).
    pub dev_halt_after: Option<String>,
    /// Inbound channel policy.
    pub inbound: InboundPolicy,
    /// Background sync interval.
    pub sync_interval: Duration,
    /// How old the fee estimates may get before a sync at a new tip fetches them again
    /// (`None`: the node's default, 10 minutes).
    pub fee_max_age: Option<Duration>,
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The data dir, seed, socket or log could not be used.
    #[error("{0}")]
    Setup(String),
    /// Another daemon answers on the socket.
    #[error("another tern daemon is already running at {0}")]
    AlreadyRunning(String),
    /// The node did not start.
    #[error("the node did not start: {0}")]
    Node(#[from] NodeError),
}

impl From<crate::secrets::SecretError> for DaemonError {
    fn from(e: crate::secrets::SecretError) -> Self {
        DaemonError::Setup(e.to_string())
    }
}

/// Set by the test binaries (core/tests/common/trace.rs): a dir where the daemon also logs
/// every level to `tern-daemon-<pid>.log`, for the log-secret check.
pub const TEST_LOG_DIR_ENV: &str = "TERN_TEST_LOG_DIR";

/// Logs to `D/tern.log` and stderr; `TERN_LOG` (e.g. `tern_core=debug,info`) picks levels.
pub fn init_logging(data_dir: &Path) -> Result<(), DaemonError> {
    use tracing_subscriber::fmt::writer::MakeWriterExt;
    let path = data_dir.join(LOG_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| DaemonError::Setup(format!("cannot open the log {}: {e}", path.display())))?;
    let filter: tracing_subscriber::filter::Targets = std::env::var("TERN_LOG")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new()
                .with_default(tracing::level_filters::LevelFilter::INFO)
        });
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr.and(Mutex::new(file)))
        .with_filter(filter);
    // Tests: every level also to a file of this process in `$TERN_TEST_LOG_DIR`, which the
    // log-secret check greps (core/tests/log_secrets.rs).
    let test_log = std::env::var_os(TEST_LOG_DIR_ENV)
        .map(std::path::PathBuf::from)
        .and_then(|dir| {
            let path = dir.join(format!("tern-daemon-{}.log", std::process::id()));
            std::fs::File::create(path).ok()
        })
        .map(|file| {
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .with_filter(tracing::level_filters::LevelFilter::TRACE)
        });
    tracing_subscriber::registry()
        .with(layer)
        .with(test_log)
        .try_init()
        .map_err(|e| DaemonError::Setup(format!("logging: {e}")))
}

/// Takes the control socket: refuses when a daemon answers on it, removes a stale one.
fn bind_socket(data_dir: &Path) -> Result<UnixListener, DaemonError> {
    let path = control::socket_path(data_dir);
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(DaemonError::AlreadyRunning(data_dir.display().to_string()));
        }
        std::fs::remove_file(&path).map_err(|e| {
            DaemonError::Setup(format!("cannot remove the stale {}: {e}", path.display()))
        })?;
        tracing::info!("removed a stale control socket {}", path.display());
    }
    let listener = UnixListener::bind(&path)
        .map_err(|e| DaemonError::Setup(format!("cannot bind {}: {e}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| DaemonError::Setup(format!("chmod {}: {e}", path.display())))?;
    Ok(listener)
}

#[derive(Debug, Default)]
struct LastSync {
    at_unix: Option<u64>,
    tip_height: Option<u32>,
    error: Option<String>,
}

struct Daemon {
    node: Node,
    options: DaemonOptions,
    last_sync: Mutex<LastSync>,
    stop_requested: AtomicBool,
    shutdown: watch::Sender<bool>,
}

impl Daemon {
    fn halted(&self) -> bool {
        self.node.is_stopped() && !self.stop_requested.load(Ordering::SeqCst)
    }

    async fn sync_once(&self, deadline: Duration) -> Result<Value, NodeError> {
        let result = self.node.sync(Some(deadline)).await;
        let mut last = self.last_sync.lock().unwrap_or_else(|p| p.into_inner());
        last.at_unix = Some(unix_now());
        match &result {
            Ok(s) => {
                last.tip_height = s.tip_height.or(last.tip_height);
                last.error = None;
            }
            Err(e) => last.error = Some(e.to_string()),
        }
        let s = result?;
        Ok(json!({ "tip_height": s.tip_height, "requests": s.requests, "events": s.events }))
    }

    async fn handle(&self, request: Request) -> Response {
        match self.dispatch(request).await {
            Ok(v) => Response::ok(v),
            Err(e @ NodeError::InvalidInput { .. }) => {
                Response::err("invalid_input", e.to_string())
            }
            Err(NodeError::Stopped) if self.halted() => Response::err(
                "halted",
                "the node is halted (--dev-halt-after fired, as dead as a killed process: its \
                 store is closed); only info and channels (from memory) still answer",
            ),
            Err(e) => Response::err("node", e.to_string()),
        }
    }

    async fn dispatch(&self, request: Request) -> Result<Value, NodeError> {
        let node = &self.node;
        match request {
            Request::Info => {
                let last = self.last_sync.lock().unwrap_or_else(|p| p.into_inner());
                Ok(json!({
                    "node_id": node.node_id().to_string(),
                    "listen": node.listen_addr().map(|a| a.to_string()),
                    "network": self.options.network.to_string(),
                    "esplora": self.options.esplora,
                    "tip_height": last.tip_height,
                    "synced_height": node.synced_height(),
                    "last_sync_unix": last.at_unix,
                    "last_sync_error": last.error,
                    "halted": self.halted(),
                    "dev_halt_after": self.options.dev_halt_after,
                    "dev_faults": self.options.dev_faults,
                    "pid": std::process::id(),
                    // The node's self-audit of persist-before-act (tern-core dev builds, which
                    // the harness always is): what it sent, broadcast and emitted, checked
                    // against its records as read back from SQLite.
                    "dev_audited_actions": node.dev_audited_actions(),
                    "dev_durability_violations": node.dev_durability_violations(),
                }))
            }
            Request::NewAddress => Ok(json!({ "address": node.new_address().await?.to_string() })),
            Request::Balance => {
                let b = node.list_balances().await?;
                let channels: u64 = node
                    .list_channels()
                    .await
                    .iter()
                    .filter(|c| counts_in_balance(c))
                    .map(|c| c.balance_msat)
                    .sum();
                let claimable = node.claimable_balances();
                Ok(json!({
                    "onchain_confirmed_sat": b.confirmed.to_sat(),
                    "onchain_unconfirmed_sat": b.unconfirmed.to_sat(),
                    "onchain_locked_sat": b.locked.to_sat(),
                    "onchain_total_sat": (b.confirmed + b.unconfirmed + b.locked).to_sat(),
                    "channels_msat": channels,
                    // Kept on chain for the anchor channels' fee bumps (part of the on-chain
                    // balance, not on top of it), and what may be spent without touching it.
                    "anchor_reserve_sat": b.anchor_reserve.to_sat(),
                    "spendable_after_reserve_sat": b.spendable_after_reserve().to_sat(),
                    // What closing channels still give back on chain, and when.
                    "claimable_sat": claimable.iter().map(|c| c.amount.to_sat()).sum::<u64>(),
                    "claimable": claimable.iter().map(|c| json!({
                        "channel_id": c.channel_id.to_string(),
                        "amount_sat": c.amount.to_sat(),
                        "status": claim_status(&c.status),
                    })).collect::<Vec<_>>(),
                }))
            }
            Request::Connect { peer } => {
                let (id, addr) = parse_peer(&peer)?;
                node.connect(id, &addr).await?;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                while !node.list_peers().await?.contains(&id) {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(NodeError::PeerUnreachable {
                            node_id: id,
                            reason: "not connected within 10 s".into(),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(json!({ "connected": id.to_string(), "address": addr }))
            }
            Request::Open {
                peer,
                amount_sat,
                push_msat,
                public,
            } => {
                let (id, addr) = parse_peer(&peer)?;
                let params = OpenChannelParams::new(id, addr, Amount::from_sat(amount_sat))
                    .push_msat(push_msat)
                    .announce(public);
                let temp = node.open_channel(params).await?;
                Ok(json!({ "temporary_channel_id": temp.to_string() }))
            }
            Request::Channels => Ok(Value::Array(
                node.list_channels()
                    .await
                    .iter()
                    .map(channel_json)
                    .collect(),
            )),
            Request::Peers => Ok(Value::Array(
                node.list_peers()
                    .await?
                    .iter()
                    .map(|p| json!({ "node_id": p.to_string() }))
                    .collect(),
            )),
            Request::Events { ack } => {
                let events = node.pending_events(1000).await?;
                if ack {
                    for (seq, _) in &events {
                        node.event_handled(*seq).await?;
                    }
                }
                Ok(Value::Array(
                    events.iter().map(|(s, e)| event_json(*s, e)).collect(),
                ))
            }
            Request::Send {
                address,
                amount_sat,
                all,
                feerate_sat_vb,
            } => {
                let amount = match (amount_sat, all) {
                    (Some(sat), false) => SendAmount::Exact(Amount::from_sat(sat)),
                    (None, true) => SendAmount::All,
                    _ => {
                        return Err(NodeError::InvalidInput {
                            field: "amount",
                            reason: "send: give either amount_sat or all".into(),
                        })
                    }
                };
                let rate = match feerate_sat_vb {
                    Some(v) => Some(FeeRate::from_sat_per_vb(v).ok_or_else(|| {
                        NodeError::InvalidInput {
                            field: "fee_rate",
                            reason: format!("feerate {v} sat/vB is too large"),
                        }
                    })?),
                    None => None,
                };
                let txid = node.send_onchain(&address, amount, rate).await?;
                Ok(json!({ "txid": txid.to_string() }))
            }
            Request::Close {
                channel_id,
                address,
            } => {
                let id = parse_channel_id(&channel_id)?;
                let address = match address {
                    Some(a) => Some(
                        a.trim()
                            .parse::<bitcoin::Address<_>>()
                            .map_err(|e| NodeError::InvalidInput {
                                field: "address",
                                reason: format!("{a}: {e}"),
                            })?
                            // The node checks the network (and says which it is).
                            .assume_checked(),
                    ),
                    None => None,
                };
                node.close_channel(id, address).await?;
                Ok(json!({ "closing": channel_id }))
            }
            Request::ForceClose { channel_id } => {
                let id = parse_channel_id(&channel_id)?;
                node.force_close_channel(id).await?;
                Ok(json!({ "force_closing": channel_id }))
            }
            Request::Sync => self.sync_once(Duration::from_secs(30)).await,
            Request::Stop => {
                self.stop_requested.store(true, Ordering::SeqCst);
                self.shutdown.send_replace(true);
                Ok(json!({ "stopping": true }))
            }
        }
    }
}

fn parse_peer(peer: &str) -> Result<(bitcoin::secp256k1::PublicKey, String), NodeError> {
    control::parse_peer(peer).map_err(|reason| NodeError::InvalidInput {
        field: "peer",
        reason,
    })
}

fn parse_channel_id(id: &str) -> Result<tern_core::proto::wire::ChannelId, NodeError> {
    id.parse().map_err(|_| NodeError::InvalidInput {
        field: "channel_id",
        reason: format!("{id:?} is not a channel id (64 hex digits)"),
    })
}

/// A claimable amount's status as JSON: `{"state": "timelocked", "height": 1234}`.
fn claim_status(s: &tern_core::proto::channel::ClaimStatus) -> Value {
    use tern_core::proto::channel::ClaimStatus as S;
    match s {
        S::AwaitingConfirmations { confirmed_at } => {
            json!({ "state": "awaiting_confirmations", "confirmed_at": confirmed_at })
        }
        S::Timelocked { height } => json!({ "state": "timelocked", "height": height }),
        S::Sweeping { confirmed_at } => {
            json!({ "state": "sweeping", "confirmed_at": confirmed_at })
        }
        S::Uneconomical => json!({ "state": "uneconomical" }),
    }
}

fn counts_in_balance(c: &ChannelDetails) -> bool {
    use tern_core::proto::channel::ChannelState;
    matches!(
        c.state,
        ChannelState::AwaitingConfirmations
            | ChannelState::AwaitingChannelReady
            | ChannelState::Ready
    )
}

/// A channel as JSON: `status` in words, the rest machine fields.
pub fn channel_json(c: &ChannelDetails) -> Value {
    json!({
        "channel_id": c.channel_id.to_string(),
        "temporary_channel_id": c.temporary_channel_id.to_string(),
        "counterparty_node_id": c.counterparty_node_id.to_string(),
        "status": c.status,
        "state": format!("{:?}", c.state),
        "is_outbound": c.is_outbound,
        "funding_sat": c.channel_value.to_sat(),
        "our_balance_msat": c.balance_msat,
        "funding_txo": c.funding_txo.map(|o| o.to_string()),
        "confirmations": c.confirmations,
        "required_confirmations": c.confirmations_required,
        "is_public": c.is_announced,
        "announcement_ready": c.announcement_ready,
        "anchors": c.anchors,
        "channel_type": if c.anchors { "anchors" } else { "static_remotekey" },
        "commitment_number": c.commitment_number,
        "commitment_feerate_per_kw": c.commitment_feerate_per_kw,
        "update_pending": c.update_pending,
        "closing": c.closing.is_some(),
        // How far the close is, in words (the status line while closing), else null.
        "closing_status": c.closing.as_ref().map(|_| c.status.clone()),
        // Whether a force close's fee can be raised: "fee fixed at ...", "fee can be bumped:
        // ...", "fee cannot be bumped: no on-chain coin ...".
        "fee_bump": c.fee_bump_words,
        "claimable": c.claimable.iter().map(|claim| json!({
            "amount_sat": claim.amount_sat,
            "status": claim_status(&claim.status),
        })).collect::<Vec<_>>(),
    })
}

/// An event as a flat object: `{"seq": 3, "type": "ChannelReady", "channel_id": ...}`.
pub fn event_json(seq: u64, event: &Event) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("seq".into(), json!(seq));
    match serde_json::to_value(event) {
        Ok(Value::Object(map)) if map.len() == 1 => {
            for (name, fields) in map {
                out.insert("type".into(), Value::String(name));
                if let Value::Object(fields) = fields {
                    out.extend(fields);
                }
            }
        }
        Ok(other) => {
            out.insert("event".into(), other);
        }
        Err(e) => {
            out.insert("error".into(), Value::String(e.to_string()));
        }
    }
    Value::Object(out)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs the daemon until `stop`, Ctrl-C or SIGTERM.
pub async fn run(options: DaemonOptions) -> Result<(), DaemonError> {
    let dir = options.data_dir.clone();
    {
        // Mode 0700: the dir holds the seed and the database (the node sets an existing dir's
        // mode to 0700 at start).
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| DaemonError::Setup(format!("cannot create {}: {e}", dir.display())))?;
    }
    // The socket first: a second daemon must not touch the first one's log or database.
    let listener = bind_socket(&dir)?;
    let result = serve(options, listener).await;
    let _ = std::fs::remove_file(control::socket_path(&dir));
    result
}

async fn serve(options: DaemonOptions, listener: UnixListener) -> Result<(), DaemonError> {
    let dir = options.data_dir.clone();
    // The secret before the log: a data dir whose secret is missing or unusable is refused
    // before anything is written in it.
    let seed = crate::secrets::load_node_seed(&dir)?;
    init_logging(&dir)?;
    // For `tern wake` later: the network and server this node runs with.
    crate::wake::remember(
        &dir,
        options.network,
        &options.esplora,
        &options.esplora_fallbacks,
    )
    .map_err(DaemonError::Setup)?;
    let mut builder = Builder::new(options.network, &dir, &options.esplora)
        .esplora_fallbacks(options.esplora_fallbacks.clone())
        .seed(seed);
    if let Some(listen) = &options.listen {
        builder = builder.listen(listen.clone());
    }
    builder = builder.inbound_policy(options.inbound);
    if let Some(age) = options.fee_max_age {
        builder = builder.fee_max_age(age);
    }
    if let Some(rules) = &options.dev_faults {
        let plan = tern_core::net::faults::FaultPlan::parse(
            rules.split([',', ' ']).filter(|r| !r.is_empty()),
        )
        .map_err(|e| DaemonError::Setup(format!("--dev-faults: {e}")))?;
        builder = builder.dev_faults(plan);
    }
    if let Some(action) = &options.dev_halt_after {
        builder = builder.dev_halt_after(action.clone());
    }
    let node = builder.start().await?;
    tracing::info!(
        node_id = %node.node_id(),
        listen = ?node.listen_addr(),
        network = %options.network,
        "tern daemon started in {}",
        dir.display()
    );
    let (shutdown, mut shutdown_rx) = watch::channel(false);
    let daemon = Arc::new(Daemon {
        node,
        options,
        last_sync: Mutex::new(LastSync::default()),
        stop_requested: AtomicBool::new(false),
        shutdown,
    });
    let syncer = tokio::spawn(sync_loop(daemon.clone()));
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| DaemonError::Setup(format!("SIGTERM handler: {e}")))?;
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|e| DaemonError::Setup(format!("SIGINT handler: {e}")))?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let daemon = daemon.clone();
                    tokio::spawn(async move { connection(daemon, stream).await });
                }
                Err(e) => tracing::warn!("control socket accept failed: {e}"),
            },
            _ = shutdown_rx.changed() => break,
            _ = interrupt.recv() => break,
            _ = term.recv() => break,
        }
    }
    tracing::info!("stopping");
    daemon.stop_requested.store(true, Ordering::SeqCst);
    syncer.abort();
    daemon.node.stop().await;
    // Let the answer to `stop` leave before the process ends.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

async fn sync_loop(daemon: Arc<Daemon>) {
    let every = daemon.options.sync_interval;
    let mut reported_halt = false;
    loop {
        if daemon.halted() {
            if !reported_halt {
                tracing::warn!(
                    "node halted after {:?} (dev hook); the control socket stays up",
                    daemon.options.dev_halt_after
                );
                reported_halt = true;
            }
        } else if !daemon.node.is_stopped() {
            if let Err(e) = daemon.sync_once(every.max(Duration::from_secs(5))).await {
                tracing::warn!("background sync failed: {e}");
            }
        }
        tokio::time::sleep(every).await;
    }
}

async fn connection(daemon: Arc<Daemon>, stream: UnixStream) {
    use tokio::io::AsyncReadExt;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(control::MAX_LINE as u64 + 1));
    let mut line = String::new();
    let response = match reader.read_line(&mut line).await {
        Ok(0) => return,
        Ok(_) if line.len() > control::MAX_LINE => {
            Response::err("protocol", "request line too long")
        }
        Ok(_) => match serde_json::from_str::<Request>(line.trim()) {
            Ok(request) => {
                tracing::debug!(?request, "control request");
                match tokio::time::timeout(REQUEST_TIMEOUT, daemon.handle(request)).await {
                    Ok(r) => r,
                    Err(_) => Response::err("node", "the request timed out"),
                }
            }
            Err(e) => Response::err("protocol", format!("bad request: {e}")),
        },
        Err(e) => Response::err("protocol", format!("read: {e}")),
    };
    let mut out = serde_json::to_string(&response).unwrap_or_else(|e| {
        format!(r#"{{"ok":false,"error":{{"kind":"protocol","message":"{e}"}}}}"#)
    });
    out.push('\n');
    if let Err(e) = write.write_all(out.as_bytes()).await {
        tracing::debug!("control answer not delivered: {e}");
    }
    let _ = write.shutdown().await;
}
