//! Settings of a node and the builder that starts it.

use std::path::PathBuf;
use std::time::Duration;

use bitcoin::constants::ChainHash;
use bitcoin::Network;

use super::{Node, NodeError};
use crate::chain::{ChainSource, DynSource, EsploraConfig};
use crate::proto::channel::ChannelConfig;
use crate::proto::keys::NodeSeed;

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
    /// More Esplora servers, asked in this order when the one asked fails or lies
    /// ([`crate::chain::Failover`]); each with [`Config::esplora`]'s settings. Empty: one
    /// server only.
    pub esplora_fallbacks: Vec<String>,
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
    /// The fee estimates are fetched again when older than this (default 10 minutes): by
    /// sends, and by a sync at a new tip while we fund a ready channel (the fee
    /// policy, `fees.rs`). Zero: at every use.
    pub fee_max_age: Duration,
    /// The on-chain reserve kept per anchor channel (default 25 000 sat, ldk-node's): an open
    /// of an anchor channel that would leave less than this times the anchor channels is
    /// refused (`node/reserve.rs`). Zero: no reserve.
    pub anchor_reserve_per_channel: bitcoin::Amount,
    /// Whether the reserve also refuses an inbound anchor open (default `false`: a phone
    /// accepts its LSP's channel with an empty wallet, as ldk-node does for its
    /// `trusted_peers_no_reserve`; such a channel's force close cannot be bumped until the
    /// wallet holds a coin, and `list_channels` says so).
    pub anchor_reserve_inbound: bool,
    /// The most a CPFP child of one force-closed anchor commitment may pay in fee (default
    /// 50 000 sat, twice the per-channel reserve: a package of ~460 vB at ~100 sat/vB). A bump
    /// whose child would pay more is not built (`node/cpfp.rs`): a wrong or manipulated fee
    /// estimate cannot drain the wallet into fees, and `list_channels` says the bump was
    /// refused (`fee_bump_words`); the commitment stays out at its own fee and is asked again
    /// at the next block (a lower estimate then bumps). Checked against the built child's
    /// exact fee. Raise it for large channels when fees are high.
    pub max_cpfp_fee: bitcoin::Amount,
    /// Most inbound connections at once, handshakes included (default 128,
    /// [`crate::net::NetConfig::max_inbound_connections`]): more are closed on accept.
    pub max_inbound_connections: usize,
    /// Most bytes queued in each direction of one connection (default 256 KiB,
    /// [`crate::net::NetConfig::max_queued_bytes`]): a peer that asks for pongs and never
    /// reads is disconnected instead of growing our memory, and one that sends faster than
    /// its messages are handled is no longer read from until they are.
    pub max_queued_bytes: usize,
    /// Most inbound opens one peer may have held in memory before their durable point (an
    /// `open_channel` accepted or waiting for the app, its `funding_created` not yet
    /// persisted; default 4, LDK's figure). One more is refused with an `error` for its
    /// temporary channel id: nothing is written, the peer's other channels are untouched.
    pub max_pending_inbound_opens_per_peer: usize,
    /// The same, all peers together (default 50, LDK's figure).
    pub max_pending_inbound_opens: usize,
    /// Fault injection on this node's connections (tests; `dev-disconnect` feature).
    #[cfg(feature = "dev-disconnect")]
    pub faults: crate::net::faults::FaultPlan,
    /// Kill the node right after performing this channel action (tests; `dev-disconnect`):
    /// `persist`, `broadcast`, `watch`, `emit`, or `send:<message name>` (e.g.
    /// `send:funding_signed`); a `*N` suffix kills after its Nth occurrence (`persist*2`).
    #[cfg(feature = "dev-disconnect")]
    pub halt_after: Option<String>,
    /// Channel persists that fail on purpose (tests; `dev-disconnect`).
    #[cfg(feature = "dev-disconnect")]
    pub store_faults: super::audit::StoreFaults,
}

/// Builds a [`Node`].
#[derive(Debug)]
pub struct Builder {
    pub(crate) config: Config,
    seed: Option<NodeSeed>,
    /// The chain source given with [`Builder::chain_source`] (else Esplora at the URL).
    source: Option<DynSource>,
    /// Test-only run-time seams (in-memory network, paused clock).
    #[cfg(feature = "dev-disconnect")]
    dev: super::DevSeams,
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
                esplora_fallbacks: Vec::new(),
                listen: None,
                channel: ChannelConfig::new(ChainHash::using_genesis_block(network)),
                sync_interval: None,
                connect_timeout: Duration::from_secs(10),
                inbound: InboundPolicy::AcceptAll,
                fee_max_age: Duration::from_secs(600),
                anchor_reserve_per_channel: super::reserve::DEFAULT_ANCHOR_RESERVE,
                anchor_reserve_inbound: false,
                max_cpfp_fee: super::cpfp::DEFAULT_MAX_CPFP_FEE,
                max_inbound_connections: crate::net::DEFAULT_MAX_INBOUND_CONNECTIONS,
                max_queued_bytes: crate::net::DEFAULT_MAX_QUEUED_BYTES,
                max_pending_inbound_opens_per_peer:
                    super::inbound::DEFAULT_MAX_PENDING_OPENS_PER_PEER,
                max_pending_inbound_opens: super::inbound::DEFAULT_MAX_PENDING_OPENS,
                #[cfg(feature = "dev-disconnect")]
                faults: crate::net::faults::FaultPlan::default(),
                #[cfg(feature = "dev-disconnect")]
                halt_after: None,
                #[cfg(feature = "dev-disconnect")]
                store_faults: super::audit::StoreFaults::default(),
            },
            seed: None,
            source: None,
            #[cfg(feature = "dev-disconnect")]
            dev: super::DevSeams::default(),
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
            .map_err(|e| NodeError::invalid("mnemonic", e.to_string()))?;
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

    /// Fetch the fee estimates again when older than `age` ([`Config::fee_max_age`]).
    pub fn fee_max_age(mut self, age: Duration) -> Self {
        self.config.fee_max_age = age;
        self
    }

    /// The on-chain reserve per anchor channel ([`Config::anchor_reserve_per_channel`]; zero
    /// for none).
    pub fn anchor_reserve_per_channel(mut self, reserve: bitcoin::Amount) -> Self {
        self.config.anchor_reserve_per_channel = reserve;
        self
    }

    /// The most a CPFP child may pay in fee ([`Config::max_cpfp_fee`]).
    pub fn max_cpfp_fee(mut self, max: bitcoin::Amount) -> Self {
        self.config.max_cpfp_fee = max;
        self
    }

    /// Whether the anchor reserve also refuses inbound anchor opens
    /// ([`Config::anchor_reserve_inbound`]).
    pub fn anchor_reserve_inbound(mut self, enforce: bool) -> Self {
        self.config.anchor_reserve_inbound = enforce;
        self
    }

    /// The peer limits: inbound connections, bytes queued per connection, inbound opens
    /// held before their durable point per peer and in total (see the [`Config`] fields).
    pub fn peer_limits(
        mut self,
        max_inbound_connections: usize,
        max_queued_bytes: usize,
        max_pending_inbound_opens_per_peer: usize,
        max_pending_inbound_opens: usize,
    ) -> Self {
        self.config.max_inbound_connections = max_inbound_connections;
        self.config.max_queued_bytes = max_queued_bytes;
        self.config.max_pending_inbound_opens_per_peer = max_pending_inbound_opens_per_peer;
        self.config.max_pending_inbound_opens = max_pending_inbound_opens;
        self
    }

    /// How long connecting to a peer (TCP, handshake, `init`) may take; also the handshake
    /// timeout of inbound connections (a peer trickling its handshake is cut at it).
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

    /// Makes some of the node's channel persists fail (see [`super::StoreFaults`]).
    #[cfg(feature = "dev-disconnect")]
    pub fn dev_store_faults(mut self, faults: super::StoreFaults) -> Self {
        self.config.store_faults = faults;
        self
    }

    /// More Esplora servers to fail over to, in order: when the server asked is unreachable,
    /// answers 429 or 5xx, sends a body that is garbage or too large, or is backed off, the
    /// same request goes to the next one (which stays the one asked); when a sync finds a
    /// lie, the next sync asks the next one ([`crate::chain::Failover`]).
    pub fn esplora_fallbacks(mut self, urls: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.config.esplora_fallbacks = urls.into_iter().map(Into::into).collect();
        self
    }

    /// Watches the chain through `source` instead of the Esplora server named in
    /// [`Builder::new`] (whose URL is then unused): another backend, or a test's in-memory
    /// chain.
    pub fn chain_source(mut self, source: impl ChainSource + 'static) -> Self {
        self.source = Some(DynSource::new(source));
        self
    }

    /// Connects to peers over `net`, an in-memory network, instead of TCP: `listen` and the
    /// peer addresses name places on `net` (tests; `dev-disconnect`).
    #[cfg(feature = "dev-disconnect")]
    pub fn dev_memory_net(mut self, net: crate::net::MemoryNet) -> Self {
        self.dev.memory_net = Some(net);
        self
    }

    /// For tests on a paused tokio clock (`tokio::time::pause`, current-thread runtime): while
    /// the store thread runs a job for the node, the waiting task holds the clock (it waits in
    /// a blocking-pool task, which keeps tokio from auto-advancing), so no timer fires because
    /// the runtime idled waiting for an fsync (`dev-disconnect`).
    #[cfg(feature = "dev-disconnect")]
    pub fn dev_hold_clock_during_store_jobs(mut self) -> Self {
        self.dev.hold_clock = true;
        self
    }

    /// Calls `gate` on the store thread before each of its jobs, so that a test can hold a
    /// job in flight (the order of a stop: `node_wake.rs`; `dev-disconnect`).
    #[cfg(feature = "dev-disconnect")]
    pub fn dev_store_gate(mut self, gate: impl Fn() + Send + Sync + 'static) -> Self {
        self.dev.store_gate = Some(std::sync::Arc::new(gate));
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
            .ok_or_else(|| NodeError::invalid("seed", "no seed given"))?;
        Node::start(
            self.config,
            seed,
            self.source,
            #[cfg(feature = "dev-disconnect")]
            self.dev,
            None,
        )
        .await
    }

    /// Starts the node for a wake (`wake.rs`): the lock is held already; no listener and no
    /// sync loop whatever the config says; peers are dialled only when the wake chooses.
    pub(super) async fn start_for_wake(
        mut self,
        lock: super::dirlock::DirLock,
    ) -> Result<Node, NodeError> {
        let seed = self
            .seed
            .take()
            .ok_or_else(|| NodeError::invalid("seed", "no seed given"))?;
        self.config.listen = None;
        self.config.sync_interval = None;
        Node::start(
            self.config,
            seed,
            self.source,
            #[cfg(feature = "dev-disconnect")]
            self.dev,
            Some(lock),
        )
        .await
    }
}
