//! The manager actor: one task owning the connection registry and the reconnect schedule.
//! Connection tasks and the public handle talk to it through a command channel, so no lock
//! is shared between connections.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitcoin::secp256k1::{PublicKey, Secp256k1};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::connection::{run_inbound, run_outbound, ConnCtx, Established};
use super::io::Listener;
use super::{DisconnectReason, NetConfig, NetError, NetEvent};

/// Messages to the manager actor.
pub(super) enum Command {
    Connect {
        node_id: PublicKey,
        addr: String,
        /// Replace a connection that is up (else a connected peer is left as it is).
        replace: bool,
    },
    Keep {
        node_id: PublicKey,
        addr: String,
    },
    Forget {
        node_id: PublicKey,
    },
    ReconnectNow {
        node_id: PublicKey,
    },
    Disconnect {
        node_id: PublicKey,
    },
    Connected {
        reply: oneshot::Sender<Vec<PublicKey>>,
    },
    Established {
        conn_id: u64,
        conn: Box<Established>,
        close: oneshot::Sender<DisconnectReason>,
    },
    Closed {
        conn_id: u64,
        node_id: PublicKey,
        reason: DisconnectReason,
    },
    Failed {
        node_id: Option<PublicKey>,
        addr: String,
        reason: DisconnectReason,
    },
    DialDue {
        node_id: PublicKey,
        generation: u64,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// The handle to a running connection manager. Cheap to clone; every method is
/// non-blocking except [`ConnectionManager::listen`] (binds) and the queries.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    cmd: mpsc::UnboundedSender<Command>,
    node_id: PublicKey,
    ctx_cfg: Arc<NetConfig>,
    shutdown: watch::Receiver<bool>,
    conn_ids: Arc<AtomicU64>,
    /// Outbound dials started (each a TCP connect and a handshake attempt).
    dial_count: Arc<AtomicU64>,
    /// Inbound connections taken and closed at once ([`NetConfig::max_inbound_connections`]).
    inbound: Arc<InboundCounts>,
}

/// What the listeners did with the connections they accepted.
#[derive(Debug)]
struct InboundCounts {
    /// Taken: the handshake ran.
    accepted: AtomicU64,
    /// Closed at once: [`NetConfig::max_inbound_connections`] were open.
    refused: AtomicU64,
    /// Inbound connections open now (the permits held).
    limit: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

struct Conn {
    conn_id: u64,
    close: Option<oneshot::Sender<DisconnectReason>>,
    since: Instant,
}

struct Kept {
    addr: String,
    backoff: Duration,
    generation: u64,
    dialing: bool,
}

struct Actor {
    cfg: Arc<NetConfig>,
    ctx: ConnCtx,
    events: mpsc::UnboundedSender<NetEvent>,
    conns: HashMap<PublicKey, Conn>,
    kept: HashMap<PublicKey, Kept>,
    /// Peers a `connect` is dialling now: a second `connect` meanwhile (concurrent opens) rides
    /// on that dial instead of opening a connection that would replace the first one.
    dials: HashSet<PublicKey>,
    conn_ids: Arc<AtomicU64>,
    dial_count: Arc<AtomicU64>,
    shutdown_tx: watch::Sender<bool>,
}

impl ConnectionManager {
    /// Starts a manager (on the current tokio runtime) and returns its handle and its event
    /// stream. Nothing listens or dials until asked.
    pub fn start(cfg: NetConfig) -> (ConnectionManager, mpsc::UnboundedReceiver<NetEvent>) {
        let node_id = cfg.node_secret.public_key(&Secp256k1::signing_only());
        let cfg_limit = cfg.max_inbound_connections;
        let cfg = Arc::new(cfg);
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let conn_ids = Arc::new(AtomicU64::new(0));
        let dial_count = Arc::new(AtomicU64::new(0));
        let ctx = ConnCtx {
            cfg: cfg.clone(),
            cmd: cmd_tx.clone(),
            shutdown: shutdown_rx.clone(),
        };
        let actor = Actor {
            cfg: cfg.clone(),
            ctx,
            events: ev_tx,
            conns: HashMap::new(),
            kept: HashMap::new(),
            dials: HashSet::new(),
            conn_ids: conn_ids.clone(),
            dial_count: dial_count.clone(),
            shutdown_tx,
        };
        tokio::spawn(actor.run(cmd_rx));
        (
            ConnectionManager {
                cmd: cmd_tx,
                node_id,
                ctx_cfg: cfg,
                shutdown: shutdown_rx,
                conn_ids,
                dial_count,
                inbound: Arc::new(InboundCounts {
                    accepted: AtomicU64::new(0),
                    refused: AtomicU64::new(0),
                    limit: Arc::new(tokio::sync::Semaphore::new(cfg_limit)),
                }),
            },
            ev_rx,
        )
    }

    /// Outbound dials started since the manager started (redials of kept peers included).
    pub fn dials(&self) -> u64 {
        self.dial_count.load(Ordering::Relaxed)
    }

    /// Inbound connections taken (their handshake ran) since the manager started.
    pub fn inbound_accepted(&self) -> u64 {
        self.inbound.accepted.load(Ordering::Relaxed)
    }

    /// Inbound connections closed at once because [`NetConfig::max_inbound_connections`]
    /// were open.
    pub fn inbound_refused(&self) -> u64 {
        self.inbound.refused.load(Ordering::Relaxed)
    }

    /// Inbound connections open now (handshaking or established).
    pub fn inbound_open(&self) -> usize {
        self.ctx_cfg.max_inbound_connections - self.inbound.limit.available_permits()
    }

    /// Our node id.
    pub fn node_id(&self) -> PublicKey {
        self.node_id
    }

    fn send(&self, cmd: Command) -> Result<(), NetError> {
        self.cmd.send(cmd).map_err(|_| NetError::Shutdown)
    }

    /// Listens on `addr` (`host:port`, IPv4 or IPv6; port 0 picks one) and returns the bound
    /// address. Accepted connections run the responder handshake.
    pub async fn listen(&self, addr: &str) -> Result<std::net::SocketAddr, NetError> {
        let (mut listener, local) = Listener::bind(&self.ctx_cfg, addr)
            .await
            .map_err(NetError::Listen)?;
        let ctx = ConnCtx {
            cfg: self.ctx_cfg.clone(),
            cmd: self.cmd.clone(),
            shutdown: self.shutdown.clone(),
        };
        let conn_ids = self.conn_ids.clone();
        let counts = self.inbound.clone();
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            info!(%local, "listening");
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            // The permit lives as long as the connection's task.
                            let Ok(permit) = counts.limit.clone().try_acquire_owned() else {
                                counts.refused.fetch_add(1, Ordering::Relaxed);
                                debug!(%peer, "inbound connection refused: too many open");
                                drop(stream);
                                continue;
                            };
                            counts.accepted.fetch_add(1, Ordering::Relaxed);
                            let id = conn_ids.fetch_add(1, Ordering::Relaxed);
                            let ctx = ctx.clone();
                            tokio::spawn(async move {
                                run_inbound(ctx, id, stream, peer).await;
                                drop(permit);
                            });
                        }
                        Err(e) => {
                            warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }
        });
        Ok(local)
    }

    /// Dials `node_id` at `addr` (`host:port`) once.
    pub fn connect(&self, node_id: PublicKey, addr: impl Into<String>) -> Result<(), NetError> {
        self.send(Command::Connect {
            node_id,
            addr: addr.into(),
            replace: true,
        })
    }

    /// Dials `node_id` unless it is connected or being dialled: the check and the dial are one
    /// step of the manager, so concurrent callers (several opens) never replace a connection
    /// that came up between their check and their dial.
    pub fn ensure_connected(
        &self,
        node_id: PublicKey,
        addr: impl Into<String>,
    ) -> Result<(), NetError> {
        self.send(Command::Connect {
            node_id,
            addr: addr.into(),
            replace: false,
        })
    }

    /// Keeps `node_id` connected: dials it now unless connected, and redials after every
    /// disconnection or failure with exponential backoff, until [`ConnectionManager::forget_peer`].
    pub fn keep_peer(&self, node_id: PublicKey, addr: impl Into<String>) -> Result<(), NetError> {
        self.send(Command::Keep {
            node_id,
            addr: addr.into(),
        })
    }

    /// Stops redialling `node_id` (an open connection stays open).
    pub fn forget_peer(&self, node_id: PublicKey) -> Result<(), NetError> {
        self.send(Command::Forget { node_id })
    }

    /// Redials a kept peer now, skipping the rest of its backoff, and resets the backoff.
    pub fn reconnect_now(&self, node_id: PublicKey) -> Result<(), NetError> {
        self.send(Command::ReconnectNow { node_id })
    }

    /// Closes the connection to `node_id` (a kept peer will be redialled).
    pub fn disconnect(&self, node_id: PublicKey) -> Result<(), NetError> {
        self.send(Command::Disconnect { node_id })
    }

    /// The peers currently connected.
    pub async fn connected_peers(&self) -> Result<Vec<PublicKey>, NetError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Connected { reply })?;
        rx.await.map_err(|_| NetError::Shutdown)
    }

    /// Closes every connection and listener and stops the manager. Every connected peer gets
    /// a `PeerDisconnected { reason: Shutdown }` before this returns.
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::Shutdown { reply }).is_ok() {
            let _ = rx.await;
        }
    }
}

impl Actor {
    async fn run(mut self, mut cmd_rx: mpsc::UnboundedReceiver<Command>) {
        while let Some(cmd) = cmd_rx.recv().await {
            if let Command::Shutdown { reply } = cmd {
                self.shutdown();
                let _ = reply.send(());
                return;
            }
            self.handle(cmd);
        }
    }

    fn emit(&self, ev: NetEvent) {
        let _ = self.events.send(ev);
    }

    fn dial(&mut self, node_id: PublicKey, addr: String) {
        let conn_id = self.conn_ids.fetch_add(1, Ordering::Relaxed);
        self.dial_count.fetch_add(1, Ordering::Relaxed);
        debug!(%node_id, %addr, conn_id, "dialling");
        tokio::spawn(run_outbound(self.ctx.clone(), conn_id, node_id, addr));
    }

    /// Dials a kept peer unless it is connected or being dialled.
    fn dial_kept(&mut self, node_id: PublicKey) {
        if self.conns.contains_key(&node_id) {
            return;
        }
        let Some(k) = self.kept.get_mut(&node_id) else {
            return;
        };
        if k.dialing {
            return;
        }
        k.dialing = true;
        let addr = k.addr.clone();
        self.dial(node_id, addr);
    }

    /// Schedules the next dial of a kept peer after its backoff, then doubles the backoff.
    fn schedule(&mut self, node_id: PublicKey) {
        let max = self.cfg.backoff_max;
        let Some(k) = self.kept.get_mut(&node_id) else {
            return;
        };
        k.generation += 1;
        let (delay, generation) = (k.backoff, k.generation);
        k.backoff = (k.backoff * 2).min(max);
        debug!(%node_id, ?delay, "reconnect scheduled");
        let cmd = self.ctx.cmd.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = cmd.send(Command::DialDue {
                node_id,
                generation,
            });
        });
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Connect {
                node_id,
                addr,
                replace,
            } => {
                if !replace && self.conns.contains_key(&node_id) {
                    debug!(%node_id, "already connected");
                    return;
                }
                // A dial already under way answers this one too (a connection that is up is
                // replaced, as asked).
                let dialling = self.kept.get(&node_id).is_some_and(|k| k.dialing);
                if dialling || !self.dials.insert(node_id) {
                    debug!(%node_id, "already being dialled");
                    return;
                }
                self.dial(node_id, addr);
            }
            Command::Keep { node_id, addr } => {
                let initial = self.cfg.backoff_initial;
                let k = self.kept.entry(node_id).or_insert(Kept {
                    addr: addr.clone(),
                    backoff: initial,
                    generation: 0,
                    dialing: false,
                });
                k.addr = addr;
                self.dial_kept(node_id);
            }
            Command::Forget { node_id } => {
                self.kept.remove(&node_id);
            }
            Command::ReconnectNow { node_id } => {
                let initial = self.cfg.backoff_initial;
                if let Some(k) = self.kept.get_mut(&node_id) {
                    k.generation += 1; // cancels the pending timer
                    k.backoff = initial;
                }
                self.dial_kept(node_id);
            }
            Command::Disconnect { node_id } => {
                if let Some(close) = self.conns.get_mut(&node_id).and_then(|c| c.close.take()) {
                    let _ = close.send(DisconnectReason::Requested);
                }
            }
            Command::Connected { reply } => {
                let _ = reply.send(self.conns.keys().copied().collect());
            }
            Command::Established {
                conn_id,
                conn,
                close,
            } => self.established(conn_id, *conn, close),
            Command::Closed {
                conn_id,
                node_id,
                reason,
            } => {
                if self.conns.get(&node_id).map(|c| c.conn_id) != Some(conn_id) {
                    return; // already replaced and reported
                }
                let Some(c) = self.conns.remove(&node_id) else {
                    return;
                };
                self.emit(NetEvent::PeerDisconnected { node_id, reason });
                let stable = c.since.elapsed() >= self.cfg.stable_after;
                let initial = self.cfg.backoff_initial;
                if let Some(k) = self.kept.get_mut(&node_id) {
                    if stable {
                        k.backoff = initial;
                    }
                    self.schedule(node_id);
                }
            }
            Command::Failed {
                node_id,
                addr,
                reason,
            } => {
                self.emit(NetEvent::ConnectFailed {
                    node_id,
                    addr,
                    reason,
                });
                if let Some(node_id) = node_id {
                    self.dials.remove(&node_id);
                    if let Some(k) = self.kept.get_mut(&node_id) {
                        k.dialing = false;
                        self.schedule(node_id);
                    }
                }
            }
            Command::DialDue {
                node_id,
                generation,
            } => {
                if self.kept.get(&node_id).map(|k| k.generation) == Some(generation) {
                    self.dial_kept(node_id);
                }
            }
            Command::Shutdown { .. } => {}
        }
    }

    fn established(
        &mut self,
        conn_id: u64,
        conn: Established,
        close: oneshot::Sender<DisconnectReason>,
    ) {
        let node_id = conn.node_id;
        self.dials.remove(&node_id);
        if let Some(k) = self.kept.get_mut(&node_id) {
            k.dialing = false;
        }
        if let Some(mut old) = self.conns.remove(&node_id) {
            // A second connection from the same node replaces the first.
            if let Some(c) = old.close.take() {
                let _ = c.send(DisconnectReason::Replaced);
            }
            self.emit(NetEvent::PeerDisconnected {
                node_id,
                reason: DisconnectReason::Replaced,
            });
        }
        self.conns.insert(
            node_id,
            Conn {
                conn_id,
                close: Some(close),
                since: Instant::now(),
            },
        );
        self.emit(NetEvent::PeerConnected {
            node_id,
            their_features: conn.their_init.features.clone(),
            their_init: conn.their_init,
            remote_addr: conn.remote_addr,
            inbound: conn.inbound,
            sender: conn.sender,
            receiver: conn.receiver,
        });
    }

    fn shutdown(&mut self) {
        let _ = self.shutdown_tx.send(true);
        self.kept.clear();
        for (node_id, mut c) in self.conns.drain() {
            if let Some(close) = c.close.take() {
                let _ = close.send(DisconnectReason::Shutdown);
            }
            let _ = self.events.send(NetEvent::PeerDisconnected {
                node_id,
                reason: DisconnectReason::Shutdown,
            });
        }
    }
}
