//! The node driver: the public async API over the pure channel state machines.
//!
//! One task per peer owns that peer's channels (no lock across peers); the connection manager
//! (`net`) hands it the peer's message stream; the chain watcher's sync routes funding events
//! to the owning peer task. Every action list a channel returns is performed in order, and a
//! send, broadcast or event that depends on a state only happens after that state's `Persist`
//! succeeded (the store commits with fsync) — BOLT 2's durable points.
//!
//! Locks live only here: the store, wallet and watcher are each behind a `std::sync::Mutex`
//! held for short synchronous calls, never across an `.await`, never two peer locks at once.
//! The lock order when two are needed is watcher → store, wallet → store.

#[cfg(feature = "dev-disconnect")]
mod audit;
mod events;
mod onchain;
mod peer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::{All, PublicKey, Secp256k1};
use bitcoin::{Address, Network, Txid};
use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::chain::{
    self, ChainError, ChainEvent, ChainSource, ChainWatcher, EsploraConfig, EsploraSource,
    WatcherError,
};
use crate::net::{ConnectionManager, NetConfig, NetError, NetEvent};
use crate::proto::channel::{ChannelConfig, ChannelRecord, ChannelState};
use crate::proto::keys::{KeysManager, NodeSeed};
use crate::proto::wire::ChannelId;
use crate::store::{NewOpenIntent, OpenIntentStatus, Store, StoreError};
use crate::wallet::{Balances, OnchainWallet, WalletError};

pub use events::Event;
pub use onchain::SendAmount;
use peer::{ChainInput, PeerCommand, PeerTask};

/// The node's error type: one flat enum for the API (and the FFI).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A bad argument (amount, address, node id, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The wallet failed.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// The chain backend failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The connection manager failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A persisted record could not be read.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The peer is not connected (and could not be reached in time).
    #[error("peer {0} is not connected")]
    PeerNotConnected(PublicKey),
    /// The channel is unknown.
    #[error("unknown channel {0}")]
    UnknownChannel(String),
    /// The node was stopped.
    #[error("the node is stopped")]
    Stopped,
}

impl From<WatcherError> for NodeError {
    fn from(e: WatcherError) -> Self {
        match e {
            WatcherError::Chain(c) => NodeError::Chain(c),
            WatcherError::Store(s) => NodeError::Store(s),
            WatcherError::Corrupt(c) => NodeError::Corrupt(c),
        }
    }
}

/// What to do with channels peers open to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InboundPolicy {
    /// Accept every valid `open_channel` (an LSP).
    #[default]
    AcceptAll,
    /// Refuse every `open_channel` with an `error`.
    RejectAll,
    /// Ask the app: an [`Event::OpenChannelRequest`] answered by [`Node::accept_channel`] or
    /// [`Node::reject_channel`].
    Manual,
}

/// Settings of a node.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Bitcoin network.
    pub network: Network,
    /// Where the database lives.
    pub data_dir: PathBuf,
    /// The Esplora server.
    pub esplora: EsploraConfig,
    /// Address to accept peers on (`host:port`), if any.
    pub listen: Option<String>,
    /// Channel parameters and limits.
    pub channel: ChannelConfig,
    /// Sync in the background this often (`None`: only when [`Node::sync`] is called, as a
    /// background wake on a phone does).
    pub sync_interval: Option<Duration>,
    /// How long [`Node::open_channel`] waits for the connection to the peer.
    pub connect_timeout: Duration,
    /// Inbound channel policy.
    pub inbound: InboundPolicy,
    /// Fault injection on this node's connections (tests; `dev-disconnect` feature).
    #[cfg(feature = "dev-disconnect")]
    pub faults: crate::net::faults::FaultPlan,
    /// Kill the node right after performing this channel action (tests; `dev-disconnect`):
    /// `persist`, `broadcast`, `watch`, `emit`, or `send:<message name>` (e.g.
    /// `send:funding_signed`).
    #[cfg(feature = "dev-disconnect")]
    pub halt_after: Option<String>,
}

/// Builds a [`Node`].
#[derive(Debug)]
pub struct Builder {
    config: Config,
    seed: Option<NodeSeed>,
}

impl Builder {
    /// A node on `network`, keeping its data in `data_dir`, watching the chain through the
    /// Esplora server at `esplora_url`.
    pub fn new(network: Network, data_dir: impl Into<PathBuf>, esplora_url: &str) -> Self {
        Builder {
            config: Config {
                network,
                data_dir: data_dir.into(),
                esplora: EsploraConfig::new(esplora_url),
                listen: None,
                channel: ChannelConfig::new(ChainHash::using_genesis_block(network)),
                sync_interval: None,
                connect_timeout: Duration::from_secs(10),
                inbound: InboundPolicy::AcceptAll,
                #[cfg(feature = "dev-disconnect")]
                faults: crate::net::faults::FaultPlan::default(),
                #[cfg(feature = "dev-disconnect")]
                halt_after: None,
            },
            seed: None,
        }
    }

    /// The node seed: a raw `[u8; 32]` or any [`NodeSeed`] (never written to the database;
    /// the app keeps it).
    pub fn seed(mut self, seed: impl Into<NodeSeed>) -> Self {
        self.seed = Some(seed.into());
        self
    }

    /// The node seed from BIP39 words and an optional passphrase (the wallet is the standard
    /// BIP84 one of those words). Bad words are [`NodeError::InvalidInput`].
    pub fn mnemonic(self, words: &str, passphrase: Option<&str>) -> Result<Self, NodeError> {
        let seed = NodeSeed::from_words(words, passphrase)
            .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
        Ok(self.seed(seed))
    }

    /// Accept peers on `addr` (`host:port`; port 0 picks one).
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.config.listen = Some(addr.into());
        self
    }

    /// Adjusts the channel configuration.
    pub fn channel_config(mut self, change: impl FnOnce(&mut ChannelConfig)) -> Self {
        change(&mut self.config.channel);
        self
    }

    /// How long connecting to a peer (TCP, handshake, `init`) may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// What to do with channels peers open to us.
    pub fn inbound_policy(mut self, policy: InboundPolicy) -> Self {
        self.config.inbound = policy;
        self
    }

    /// Injects Core Lightning-style `dev-disconnect` faults into this node's connections.
    #[cfg(feature = "dev-disconnect")]
    pub fn dev_faults(mut self, plan: crate::net::faults::FaultPlan) -> Self {
        self.config.faults = plan;
        self
    }

    /// Kills the node (aborts every task, like a killed process) right after it performs the
    /// named channel action for the first time; see [`Config::halt_after`].
    #[cfg(feature = "dev-disconnect")]
    pub fn dev_halt_after(mut self, action: impl Into<String>) -> Self {
        self.config.halt_after = Some(action.into());
        self
    }

    /// Syncs in the background at this interval.
    pub fn sync_interval(mut self, every: Duration) -> Self {
        self.config.sync_interval = Some(every);
        self
    }

    /// Starts the node: opens the database, loads the wallet, the chain watches and every
    /// channel, resumes them, and starts the connection manager.
    pub async fn start(self) -> Result<Node, NodeError> {
        let seed = self
            .seed
            .ok_or_else(|| NodeError::InvalidInput("no seed given".into()))?;
        Node::start(self.config, seed).await
    }
}

/// A channel as the app sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelDetails {
    /// Final channel id (hex) once known, else the temporary id.
    pub channel_id: String,
    /// The temporary id (hex).
    pub temporary_channel_id: String,
    /// The peer.
    pub counterparty_node_id: PublicKey,
    /// The state machine's state.
    pub state: ChannelState,
    /// The state in words, e.g. "awaiting confirmations 2/3".
    pub status: String,
    /// Whether we funded it.
    pub is_outbound: bool,
    /// Channel size.
    pub funding_sat: u64,
    /// Our balance.
    pub our_balance_msat: u64,
    /// The funding outpoint once known.
    pub funding_txo: Option<bitcoin::OutPoint>,
    /// Confirmations of the funding at the synced tip.
    pub confirmations: u32,
    /// Confirmations required (`minimum_depth`), once known.
    pub required_confirmations: Option<u32>,
    /// Whether it is announced.
    pub is_public: bool,
    /// Whether the `channel_announcement` is built and verified (public channels, after 6
    /// confirmations and both halves of the proof).
    pub announcement_ready: bool,
}

/// What one [`Node::sync`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSummary {
    /// The synced tip height.
    pub tip_height: Option<u32>,
    /// Requests made.
    pub requests: usize,
    /// Chain events found.
    pub events: usize,
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) keys: KeysManager,
    pub(crate) secp: Secp256k1<All>,
    pub(crate) node_id: PublicKey,
    /// Signs channel announcements (public channels).
    pub(crate) node_secret: bitcoin::secp256k1::SecretKey,
    pub(crate) store: Mutex<Store>,
    pub(crate) wallet: Mutex<OnchainWallet>,
    pub(crate) watcher: Mutex<ChainWatcher<EsploraSource>>,
    pub(crate) source: EsploraSource,
    pub(crate) net: ConnectionManager,
    pub(crate) peers: Mutex<HashMap<PublicKey, mpsc::UnboundedSender<PeerCommand>>>,
    /// Funding txid -> the peer owning the channel.
    pub(crate) fundings: Mutex<HashMap<Txid, PublicKey>>,
    /// The latest view of every channel, for `list_channels`.
    pub(crate) views: Mutex<HashMap<ChannelId, ChannelDetails>>,
    pub(crate) events: Notify,
    pub(crate) sync_lock: tokio::sync::Mutex<()>,
    pub(crate) stopped: watch::Sender<bool>,
    /// Every task the node spawned, so that a simulated kill can abort them all.
    pub(crate) tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    /// An address was handed out since the last sync planned its scripts.
    pub(crate) fresh_addresses: std::sync::atomic::AtomicBool,
    /// Dev builds: every performed action checked against persist-before-act.
    #[cfg(feature = "dev-disconnect")]
    pub(crate) audit: Mutex<audit::Audit>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

const DB_FILE: &str = "tern.sqlite";
const KEYS_INDEX_KEY: &str = "next_channel_keys_index";

fn peer_addr_key(node_id: &PublicKey) -> String {
    format!("peer_addr:{node_id}")
}

impl Shared {
    /// Allocates a channel keys index, persisted before it is used.
    pub(crate) fn allocate_keys_index(&self) -> Result<u32, NodeError> {
        let mut store = lock(&self.store);
        let next = store
            .get_meta(KEYS_INDEX_KEY)?
            .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
            .map_or(0, u32::from_le_bytes);
        store.put_meta(KEYS_INDEX_KEY, &(next + 1).to_le_bytes())?;
        Ok(next)
    }

    /// Opens that were under way when the last process ended, before their channel became
    /// durable, are over: mark them failed, unlock their coins and tell the app.
    fn fail_interrupted_intents(&self) -> Result<(), NodeError> {
        let intents = lock(&self.store).list_open_intents()?;
        for intent in intents {
            if !matches!(
                intent.status,
                OpenIntentStatus::Pending | OpenIntentStatus::Negotiating
            ) || intent.channel_id.is_some()
            {
                continue;
            }
            let reason = "the app stopped before the channel was durable".to_string();
            {
                let mut store = lock(&self.store);
                store.unlock_coins_for_intent(intent.id)?;
                store.update_open_intent_status(
                    intent.id,
                    OpenIntentStatus::Failed,
                    None,
                    Some(&reason),
                    now(),
                )?;
            }
            let counterparty_node_id = PublicKey::from_slice(&intent.peer_id)
                .map_err(|e| NodeError::Corrupt(format!("intent peer id: {e}")))?;
            self.push_event(&Event::ChannelOpenFailed {
                temporary_channel_id: String::new(),
                channel_id: None,
                counterparty_node_id,
                reason,
            })?;
        }
        Ok(())
    }

    pub(crate) fn tip_height(&self) -> u32 {
        lock(&self.watcher).state().tip.map_or(0, |t| t.height)
    }

    pub(crate) fn push_event(&self, event: &Event) -> Result<(), StoreError> {
        lock(&self.store).push_event(&event.encode(), now())?;
        self.events.notify_waiters();
        Ok(())
    }

    pub(crate) fn peer_addr(&self, node_id: &PublicKey) -> Option<String> {
        let store = lock(&self.store);
        store
            .get_meta(&peer_addr_key(node_id))
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
    }

    fn peer_sender(self: &Arc<Self>, node_id: PublicKey) -> mpsc::UnboundedSender<PeerCommand> {
        let mut peers = lock(&self.peers);
        if let Some(tx) = peers.get(&node_id).filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        peers.insert(node_id, tx.clone());
        let handle = tokio::spawn(PeerTask::new(self.clone(), node_id, Vec::new()).run(rx));
        lock(&self.tasks).push(handle.abort_handle());
        tx
    }

    /// Ends the node abruptly, as a killed process would: every task is aborted at its next
    /// await point and nothing more is written; connections close.
    #[cfg(feature = "dev-disconnect")]
    pub(crate) fn kill(self: &Arc<Self>) {
        tracing::warn!("dev: killing the node");
        self.stopped.send_replace(true);
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        self.events.notify_waiters();
        let shared = self.clone();
        tokio::spawn(async move { shared.net.shutdown().await });
    }
}

/// A running Tern node. Cheap to clone; every method is async or returns at once.
#[derive(Clone)]
pub struct Node {
    shared: Arc<Shared>,
    listen_addr: Option<std::net::SocketAddr>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("node_id", &self.shared.node_id)
            .finish_non_exhaustive()
    }
}

impl Node {
    async fn start(config: Config, seed: NodeSeed) -> Result<Node, NodeError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            NodeError::InvalidInput(format!("data dir {}: {e}", config.data_dir.display()))
        })?;
        let store = Store::open(config.data_dir.join(DB_FILE))?;
        let keys = KeysManager::from_seed(&seed, config.network)
            .map_err(|e| NodeError::InvalidInput(format!("seed: {e}")))?;
        let secp = Secp256k1::new();
        let node_secret = keys
            .node_secret_key()
            .map_err(|e| NodeError::InvalidInput(format!("seed: {e}")))?;
        let node_id = PublicKey::from_secret_key(&secp, &node_secret);
        let (wallet, _created) = OnchainWallet::open(
            store.open_connection()?,
            &keys.wallet_descriptors(),
            config.network,
        )?;
        let source = EsploraSource::new(&config.esplora)?;
        let watcher = ChainWatcher::load(&store, source.clone())?;
        let mut net_config = NetConfig::new(node_secret, config.channel.chain_hash);
        net_config.init_timeout = config.connect_timeout;
        #[cfg(feature = "dev-disconnect")]
        {
            net_config.faults = config.faults.clone();
        }
        let (net, net_events) = ConnectionManager::start(net_config);
        let listen_addr = match &config.listen {
            Some(addr) => Some(net.listen(addr).await?),
            None => None,
        };
        // Every stored channel, decoded once: for the audit, the start-up reconciliation with
        // the chain watcher, and the peer tasks.
        let mut stored: Vec<(PublicKey, ChannelRecord)> = Vec::new();
        for row in store.list_channels()? {
            let peer = PublicKey::from_slice(&row.peer_id)
                .map_err(|e| NodeError::Corrupt(format!("peer id: {e}")))?;
            let record = ChannelRecord::decode(&row.record)
                .map_err(|e| NodeError::Corrupt(format!("channel record: {e}")))?;
            stored.push((peer, record));
        }
        #[cfg(feature = "dev-disconnect")]
        let audit = audit::Audit::new(stored.iter().map(|(_, r)| r));
        let (stopped, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            config,
            keys,
            secp,
            node_id,
            node_secret,
            store: Mutex::new(store),
            wallet: Mutex::new(wallet),
            watcher: Mutex::new(watcher),
            source,
            net,
            peers: Mutex::new(HashMap::new()),
            fundings: Mutex::new(HashMap::new()),
            views: Mutex::new(HashMap::new()),
            events: Notify::new(),
            sync_lock: tokio::sync::Mutex::new(()),
            stopped,
            tasks: Mutex::new(Vec::new()),
            fresh_addresses: std::sync::atomic::AtomicBool::new(false),
            #[cfg(feature = "dev-disconnect")]
            audit: Mutex::new(audit),
        });
        shared.fail_interrupted_intents()?;
        // Resume every stored channel in its peer's task; keep and redial those peers.
        let fundings: Vec<(PublicKey, Txid, bool)> = stored
            .iter()
            .filter(|(_, r)| r.channel().state() != ChannelState::Failed)
            .filter_map(|(peer, r)| {
                let c = r.channel();
                c.funding()
                    .map(|f| (*peer, f.outpoint.txid, c.confirmation.is_some()))
            })
            .collect();
        let mut by_peer: HashMap<PublicKey, Vec<ChannelRecord>> = HashMap::new();
        for (peer, record) in stored {
            by_peer.entry(peer).or_default().push(record);
        }
        for (peer, records) in by_peer {
            let (tx, rx) = mpsc::unbounded_channel();
            lock(&shared.peers).insert(peer, tx);
            let task = PeerTask::new(shared.clone(), peer, records);
            task.register_all();
            let handle = tokio::spawn(task.run(rx));
            lock(&shared.tasks).push(handle.abort_handle());
            if let Some(addr) = shared.peer_addr(&peer) {
                shared.net.keep_peer(peer, addr)?;
            }
        }
        reconcile_chain_watches(&shared, &fundings)?;
        let handle = tokio::spawn(net_loop(shared.clone(), net_events));
        lock(&shared.tasks).push(handle.abort_handle());
        if let Some(every) = shared.config.sync_interval {
            let node = Node {
                shared: shared.clone(),
                listen_addr,
            };
            tokio::spawn(async move {
                let mut stopped = node.shared.stopped.subscribe();
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = stopped.changed() => return,
                    }
                    if let Err(e) = node.sync(Some(every)).await {
                        tracing::warn!("background sync failed: {e}");
                    }
                }
            });
        }
        Ok(Node {
            shared,
            listen_addr,
        })
    }

    /// Our node id.
    pub fn node_id(&self) -> PublicKey {
        self.shared.node_id
    }

    /// The address peers can reach us on, if listening.
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen_addr
    }

    fn check_running(&self) -> Result<(), NodeError> {
        if *self.shared.stopped.borrow() {
            Err(NodeError::Stopped)
        } else {
            Ok(())
        }
    }

    /// Connects to a peer (and remembers its address for reconnection).
    pub async fn connect(&self, node_id: PublicKey, addr: &str) -> Result<(), NodeError> {
        self.check_running()?;
        lock(&self.shared.store).put_meta(&peer_addr_key(&node_id), addr.as_bytes())?;
        if !self.shared.net.connected_peers().await?.contains(&node_id) {
            self.shared.net.connect(node_id, addr.to_string())?;
        }
        Ok(())
    }

    /// Disconnects a peer and stops redialling it.
    pub async fn disconnect(&self, node_id: PublicKey) -> Result<(), NodeError> {
        self.shared.net.forget_peer(node_id)?;
        self.shared.net.disconnect(node_id)?;
        Ok(())
    }

    async fn wait_connected(&self, node_id: PublicKey) -> Result<(), NodeError> {
        let deadline = tokio::time::Instant::now() + self.shared.config.connect_timeout;
        loop {
            if self.shared.net.connected_peers().await?.contains(&node_id) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(NodeError::PeerNotConnected(node_id));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens a channel of `amount_sat` to `node_id` at `addr`, giving `push_msat` to the peer.
    /// The request is persisted as an open intent first; the result arrives as events
    /// (`ChannelPending`, then `ChannelReady`, or `ChannelOpenFailed`). Returns the temporary
    /// channel id (hex).
    pub async fn open_channel(
        &self,
        node_id: PublicKey,
        addr: &str,
        amount_sat: u64,
        push_msat: u64,
        public: bool,
    ) -> Result<String, NodeError> {
        self.check_running()?;
        if amount_sat == 0 {
            return Err(NodeError::InvalidInput(
                "amount_sat must be positive".into(),
            ));
        }
        if push_msat > amount_sat.saturating_mul(1000) {
            return Err(NodeError::InvalidInput(format!(
                "push_msat {push_msat} exceeds the channel's {amount_sat} sat"
            )));
        }
        let intent_id = lock(&self.shared.store).insert_open_intent(
            &NewOpenIntent {
                peer_id: node_id.serialize(),
                address: addr.to_string(),
                amount_sat,
                push_msat,
                public,
            },
            now(),
        )?;
        let fail = |shared: &Shared, reason: String| {
            let mut store = lock(&shared.store);
            if let Err(e) = store.update_open_intent_status(
                intent_id,
                OpenIntentStatus::Failed,
                None,
                Some(&reason),
                now(),
            ) {
                tracing::warn!("cannot record the failed open intent {intent_id}: {e}");
            }
        };
        if let Err(e) = self.connect(node_id, addr).await {
            fail(&self.shared, e.to_string());
            return Err(e);
        }
        if let Err(e) = self.wait_connected(node_id).await {
            fail(&self.shared, e.to_string());
            return Err(e);
        }
        self.ask(node_id, |reply| PeerCommand::Open {
            intent_id,
            funding_sat: amount_sat,
            push_msat,
            public,
            reply,
        })
        .await
    }

    /// Sends a command to the peer's task and waits for its answer.
    async fn ask<T>(
        &self,
        node_id: PublicKey,
        command: impl FnOnce(oneshot::Sender<Result<T, NodeError>>) -> PeerCommand,
    ) -> Result<T, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .peer_sender(node_id)
            .send(command(reply))
            .map_err(|_| NodeError::Stopped)?;
        answer.await.map_err(|_| NodeError::Stopped)?
    }

    async fn answer(
        &self,
        node_id: PublicKey,
        temporary_channel_id: &str,
        accept: bool,
    ) -> Result<(), NodeError> {
        self.check_running()?;
        let id = parse_channel_id(temporary_channel_id)?;
        self.ask(node_id, |reply| PeerCommand::Answer {
            temporary_channel_id: id,
            accept,
            reply,
        })
        .await
    }

    /// Accepts a channel announced by [`Event::OpenChannelRequest`].
    pub async fn accept_channel(
        &self,
        node_id: PublicKey,
        temporary_channel_id: &str,
    ) -> Result<(), NodeError> {
        self.answer(node_id, temporary_channel_id, true).await
    }

    /// Refuses a channel announced by [`Event::OpenChannelRequest`] (the peer gets an `error`).
    pub async fn reject_channel(
        &self,
        node_id: PublicKey,
        temporary_channel_id: &str,
    ) -> Result<(), NodeError> {
        self.answer(node_id, temporary_channel_id, false).await
    }

    /// Every channel.
    pub fn list_channels(&self) -> Vec<ChannelDetails> {
        let mut list: Vec<ChannelDetails> = lock(&self.shared.views).values().cloned().collect();
        list.sort_by(|a, b| a.channel_id.cmp(&b.channel_id));
        list
    }

    /// Connected peers.
    pub async fn list_peers(&self) -> Result<Vec<PublicKey>, NodeError> {
        Ok(self.shared.net.connected_peers().await?)
    }

    /// A new on-chain receive address.
    pub fn new_address(&self) -> Result<Address, NodeError> {
        let mut wallet = lock(&self.shared.wallet);
        let address = wallet.new_address()?;
        self.shared.fresh_addresses.store(true, Ordering::SeqCst);
        Ok(address)
    }

    /// On-chain balances (coins locked for opens in progress shown apart).
    pub fn balances(&self) -> Result<Balances, NodeError> {
        let locked = lock(&self.shared.store).locked_coins()?;
        Ok(lock(&self.shared.wallet).balances(&locked))
    }

    /// One bounded sync of the chain watches and the wallet (a background wake): never runs
    /// past `deadline`, and on any failure leaves everything as it was.
    pub async fn sync(&self, deadline: Option<Duration>) -> Result<SyncSummary, NodeError> {
        self.check_running()?;
        let _one_at_a_time = self.shared.sync_lock.lock().await;
        // Addresses handed out since the last sync are queried even if the tip did not move:
        // a payment to one may already be in the tip a concurrent sync recorded without them.
        let (planner, fresh) = {
            let wallet = lock(&self.shared.wallet);
            let fresh = self.shared.fresh_addresses.swap(false, Ordering::SeqCst);
            let scripts = wallet.scripts_to_query();
            drop(wallet);
            let planner = lock(&self.shared.watcher).plan(scripts);
            let planner = if fresh {
                planner.scripts_without_new_tip()
            } else {
                planner
            };
            (planner, fresh)
        };
        let outcome = match chain::sync(&self.shared.source, planner, deadline).await {
            Ok(o) => o,
            Err(e) => {
                if fresh {
                    self.shared.fresh_addresses.store(true, Ordering::SeqCst);
                }
                return Err(e.into());
            }
        };
        {
            let mut watcher = lock(&self.shared.watcher);
            let mut store = lock(&self.shared.store);
            watcher.finish(&mut store, &outcome)?;
        }
        lock(&self.shared.wallet).apply_sync(
            &outcome.scripts,
            &outcome.events,
            outcome.state.tip,
            now(),
        )?;
        let tip_height = outcome.state.tip.map(|t| t.height);
        let mut new_tip = false;
        for event in &outcome.events {
            let (txid, input) = match event {
                ChainEvent::TxConfirmed {
                    txid,
                    confirmation,
                    tx_index,
                } => (
                    *txid,
                    ChainInput::Confirmed {
                        txid: *txid,
                        confirmation: *confirmation,
                        tx_index: *tx_index,
                        tip_height: tip_height.unwrap_or(confirmation.height),
                    },
                ),
                ChainEvent::TxUnconfirmed { txid } => (*txid, ChainInput::Reorged { txid: *txid }),
                ChainEvent::TxDoubleSpent { txid, by } => (
                    *txid,
                    ChainInput::DoubleSpent {
                        txid: *txid,
                        by: *by,
                    },
                ),
                ChainEvent::NewTip { .. } => {
                    new_tip = true;
                    continue;
                }
                _ => continue,
            };
            let owner = lock(&self.shared.fundings).get(&txid).copied();
            if let Some(peer) = owner {
                let _ = self
                    .shared
                    .peer_sender(peer)
                    .send(PeerCommand::Chain(input));
            }
        }
        if let (true, Some(height)) = (new_tip, tip_height) {
            let peers: Vec<_> = lock(&self.shared.peers).values().cloned().collect();
            for p in peers {
                let _ = p.send(PeerCommand::Chain(ChainInput::NewBlock { height }));
            }
            // Rebroadcast our unconfirmed transactions (funding included) on every new block.
            let txs: Vec<_> = lock(&self.shared.wallet)
                .unconfirmed_txs()
                .iter()
                .map(|t| (**t).clone())
                .collect();
            for tx in txs {
                let txid = tx.compute_txid();
                if let Err(e) = self.shared.source.broadcast(tx).await {
                    tracing::debug!(%txid, "rebroadcast refused: {e}");
                }
            }
        }
        Ok(SyncSummary {
            tip_height,
            requests: outcome.requests,
            events: outcome.events.len(),
        })
    }

    /// The oldest pending event, if any (stays pending until [`Node::event_handled`]).
    pub fn next_event(&self) -> Result<Option<(u64, Event)>, NodeError> {
        let pending = lock(&self.shared.store).pending_events(1)?;
        match pending.into_iter().next() {
            Some((seq, bytes)) => Ok(Some((
                seq,
                Event::decode(&bytes).map_err(NodeError::Corrupt)?,
            ))),
            None => Ok(None),
        }
    }

    /// Waits for the next pending event; returns [`NodeError::Stopped`] when the node stops.
    pub async fn wait_next_event(&self) -> Result<(u64, Event), NodeError> {
        let mut stopped = self.shared.stopped.subscribe();
        loop {
            let notified = self.shared.events.notified();
            if let Some(e) = self.next_event()? {
                return Ok(e);
            }
            if *stopped.borrow() {
                return Err(NodeError::Stopped);
            }
            tokio::select! {
                _ = notified => {}
                _ = stopped.changed() => {}
            }
        }
    }

    /// Dev builds: every breach of persist-before-act the node observed in what it actually
    /// did (sends, broadcasts, events checked against the records read back from SQLite).
    /// Empty when all is well.
    #[cfg(feature = "dev-disconnect")]
    pub fn dev_durability_violations(&self) -> Vec<String> {
        lock(&self.shared.audit).violations()
    }

    /// Dev builds: how many channel actions the node performed and checked.
    #[cfg(feature = "dev-disconnect")]
    pub fn dev_audited_actions(&self) -> u64 {
        lock(&self.shared.audit).performed_count()
    }

    /// Whether the node has stopped (by [`Node::stop`], or killed by a test hook).
    pub fn is_stopped(&self) -> bool {
        *self.shared.stopped.borrow()
    }

    /// Marks an event handled (removes it from the queue).
    pub fn event_handled(&self, seq: u64) -> Result<(), NodeError> {
        lock(&self.shared.store).mark_event_handled(seq)?;
        Ok(())
    }

    /// Stops the node: closes connections, ends the tasks, wakes every event waiter. Returns
    /// promptly; everything durable is already on disk.
    pub async fn stop(&self) {
        self.shared.stopped.send_replace(true);
        self.shared.events.notify_waiters();
        let peers: Vec<_> = lock(&self.shared.peers).drain().map(|(_, tx)| tx).collect();
        drop(peers);
        self.shared.net.shutdown().await;
    }

    /// The height of the tip the chain watcher last synced to (persisted; `None` before the
    /// first sync).
    pub fn synced_height(&self) -> Option<u32> {
        lock(&self.shared.watcher).state().tip.map(|t| t.height)
    }

    /// Up to `limit` pending events, oldest first (each stays pending until
    /// [`Node::event_handled`]).
    pub fn pending_events(&self, limit: usize) -> Result<Vec<(u64, Event)>, NodeError> {
        let pending = lock(&self.shared.store).pending_events(limit)?;
        pending
            .into_iter()
            .map(|(seq, bytes)| Ok((seq, Event::decode(&bytes).map_err(NodeError::Corrupt)?)))
            .collect()
    }
}

fn parse_channel_id(hex: &str) -> Result<ChannelId, NodeError> {
    use bitcoin::hex::FromHex;
    <[u8; 32]>::from_hex(hex)
        .map(ChannelId)
        .map_err(|_| NodeError::InvalidInput(format!("channel id {hex} is not 64 hex digits")))
}

/// A sync persists the watcher's new state before its chain events reach the peer tasks, so a
/// process killed in between loses them: the watcher only reports changes, and the channel
/// would wait forever (found by the harness's process-level kill test). At start, each
/// channel's view of its funding (`confirmed`) is compared with the watcher's last state:
/// - confirmed for the watcher, not for the channel: the watch goes back to unconfirmed, so
///   the next sync reports it again with its proof (the channel needs the tx index);
/// - double-spent, or unconfirmed/gone while the channel has a confirmation: the event is
///   sent to the peer task again, which handles it before anything else.
fn reconcile_chain_watches(
    shared: &Shared,
    fundings: &[(PublicKey, Txid, bool)],
) -> Result<(), NodeError> {
    let mut watcher = lock(&shared.watcher);
    let mut replay = Vec::new();
    let mut rewatch = Vec::new();
    for (peer, txid, confirmed) in fundings {
        let Some(watch) = watcher.state().txs.get(txid) else {
            continue;
        };
        match watch.state {
            chain::TxWatchState::Confirmed(_) if !*confirmed => rewatch.push(*txid),
            chain::TxWatchState::DoubleSpent { by } => {
                replay.push((*peer, ChainInput::DoubleSpent { txid: *txid, by }))
            }
            chain::TxWatchState::Unconfirmed | chain::TxWatchState::Gone if *confirmed => {
                replay.push((*peer, ChainInput::Reorged { txid: *txid }))
            }
            _ => {}
        }
    }
    if !rewatch.is_empty() {
        let mut store = lock(&shared.store);
        watcher.update(&mut store, |state| {
            for txid in &rewatch {
                tracing::info!(%txid, "funding confirmed but not applied to its channel: reporting it again");
                if let Some(watch) = state.txs.get_mut(txid) {
                    watch.state = chain::TxWatchState::Unconfirmed;
                }
            }
        })?;
    }
    for (peer, input) in replay {
        tracing::info!(
            ?input,
            "chain event not applied to its channel: replaying it"
        );
        if let Some(tx) = lock(&shared.peers).get(&peer) {
            let _ = tx.send(PeerCommand::Chain(input));
        }
    }
    Ok(())
}

/// Hands established connections to their peer task and reports (dis)connections.
async fn net_loop(shared: Arc<Shared>, mut events: mpsc::UnboundedReceiver<NetEvent>) {
    let mut stopped = shared.stopped.subscribe();
    loop {
        let event = tokio::select! {
            e = events.recv() => match e { Some(e) => e, None => return },
            _ = stopped.changed() => return,
        };
        match event {
            NetEvent::PeerConnected {
                node_id,
                sender,
                receiver,
                ..
            } => {
                let _ = shared
                    .peer_sender(node_id)
                    .send(PeerCommand::Connected { sender, receiver });
                if let Err(e) = shared.push_event(&Event::PeerConnected { node_id }) {
                    tracing::warn!("cannot queue event: {e}");
                }
            }
            NetEvent::PeerDisconnected { node_id, reason } => {
                let _ = shared.peer_sender(node_id).send(PeerCommand::Disconnected);
                let event = Event::PeerDisconnected {
                    node_id,
                    reason: reason.to_string(),
                };
                if let Err(e) = shared.push_event(&event) {
                    tracing::warn!("cannot queue event: {e}");
                }
            }
            NetEvent::ConnectFailed {
                node_id,
                addr,
                reason,
            } => {
                tracing::debug!(?node_id, %addr, "connect failed: {reason}");
            }
        }
    }
}
