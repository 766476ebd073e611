//! The connection manager ("connectd"): everything that touches a socket, apart from channel
//! logic.
//!
//! It listens and dials over TCP, runs the BOLT 8 handshake and the `init` exchange under a
//! timeout, refuses peers with incompatible features (sending a `warning` first), answers
//! pings and sends its own, and runs one read task and one write task per connection with
//! bounded queues (backpressure: a node that stops reading stalls the peer's socket, not
//! memory). It reports [`NetEvent::PeerConnected`] with a [`PeerSender`] and a message
//! receiver, and [`NetEvent::PeerDisconnected`] with a [`DisconnectReason`]. A second
//! connection from the same node replaces the first. Peers it is told to keep
//! ([`ConnectionManager::keep_peer`]) are redialled forever with exponential backoff
//! (1 s doubling to 60 s by default, reset after a stable connection) and on demand
//! ([`ConnectionManager::reconnect_now`]).
//!
//! In test builds (or with the `dev-disconnect` feature) `NetConfig::faults` injects
//! Core Lightning-style `dev-disconnect` faults (see `faults`), and `NetConfig::memory_net`
//! runs every connection over an in-memory [`MemoryNet`] instead of TCP (the streams are
//! chosen in `io`; nothing else knows which carries them).
//!
//! All protocol logic is in [`crate::proto::wire`] and [`crate::proto::transport`]; this
//! module only moves bytes and keeps time.

mod connection;
#[cfg(any(test, feature = "dev-disconnect"))]
pub mod faults;
mod io;
mod manager;
#[cfg(any(test, feature = "dev-disconnect"))]
mod memory;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use tokio::sync::mpsc;

use crate::proto::transport::{HandshakeError, TransportError};
use crate::proto::wire::{DecodeError, FeatureError, Features, Init, Message};

pub use manager::ConnectionManager;
#[cfg(any(test, feature = "dev-disconnect"))]
pub use memory::MemoryNet;

/// Settings of a [`ConnectionManager`].
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Our node key: the static key of the BOLT 8 handshake.
    pub node_secret: SecretKey,
    /// The features we send in `init` and accept peers against.
    pub features: Features,
    /// The chain we work on, sent in `init`'s `networks`; peers without it are refused.
    pub chain_hash: ChainHash,
    /// Time allowed for TCP connect, handshake and `init` together.
    pub init_timeout: Duration,
    /// How often we ping; a peer that has not answered the previous ping by the next one is
    /// disconnected.
    pub ping_interval: Duration,
    /// First reconnect delay for kept peers.
    pub backoff_initial: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// A connection that lasts this long resets the backoff.
    pub stable_after: Duration,
    /// Capacity of each connection's inbound and outbound message queues.
    pub queue_len: usize,
    /// Fault-injection rules (test builds only).
    #[cfg(any(test, feature = "dev-disconnect"))]
    pub faults: faults::FaultPlan,
    /// Listen and dial on this in-memory network instead of TCP (test builds only).
    #[cfg(any(test, feature = "dev-disconnect"))]
    pub memory_net: Option<MemoryNet>,
}

impl NetConfig {
    /// Defaults: Tern's `init` features, 10 s init timeout, 30 s pings, backoff 1 s → 60 s
    /// reset after 60 s of connection, queues of 64 messages.
    pub fn new(node_secret: SecretKey, chain_hash: ChainHash) -> Self {
        NetConfig {
            node_secret,
            features: Features::tern_init(),
            chain_hash,
            init_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
            queue_len: 64,
            #[cfg(any(test, feature = "dev-disconnect"))]
            faults: faults::FaultPlan::default(),
            #[cfg(any(test, feature = "dev-disconnect"))]
            memory_net: None,
        }
    }
}

/// Why a connection ended (or never got established).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisconnectReason {
    /// The BOLT 8 handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// Connect, handshake and `init` did not complete in time.
    #[error("timed out before init completed")]
    Timeout,
    /// The peer's first message was not `init`.
    #[error("first message was {0}, not init")]
    InitExpected(&'static str),
    /// The peer's features are incompatible with ours.
    #[error("incompatible features: {0}")]
    IncompatibleFeatures(#[from] FeatureError),
    /// The peer's `networks` does not include our chain.
    #[error("peer does not support our chain")]
    NoCommonChain,
    /// A socket error.
    #[error("i/o error: {0}")]
    Io(String),
    /// The peer sent a message we could not decode.
    #[error("bad message: {0}")]
    Decode(#[from] DecodeError),
    /// The encrypted stream failed.
    #[error("transport error: {0}")]
    Transport(#[from] TransportError),
    /// The peer stopped answering pings.
    #[error("pong timeout")]
    PongTimeout,
    /// A newer connection from the same node replaced this one.
    #[error("replaced by a newer connection")]
    Replaced,
    /// We asked for the disconnection.
    #[error("disconnect requested")]
    Requested,
    /// The peer closed the connection.
    #[error("peer closed the connection")]
    RemoteClosed,
    /// The manager is shutting down.
    #[error("shutting down")]
    Shutdown,
    /// The node dropped the connection's message receiver.
    #[error("message receiver dropped")]
    ReceiverDropped,
    /// A fault-injection rule fired.
    #[error("fault injected")]
    FaultInjected,
}

impl From<std::io::Error> for DisconnectReason {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            DisconnectReason::RemoteClosed
        } else {
            DisconnectReason::Io(e.to_string())
        }
    }
}

/// Errors of the [`ConnectionManager`] API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The manager has shut down.
    #[error("connection manager is shut down")]
    Shutdown,
    /// The peer's connection is gone.
    #[error("peer is disconnected")]
    Disconnected,
    /// Binding a listener failed.
    #[error("cannot listen: {0}")]
    Listen(String),
}

/// The sending side of a connection: queue messages for the peer. Bounded: `send` waits
/// while the queue is full.
#[derive(Debug, Clone)]
pub struct PeerSender {
    node_id: PublicKey,
    tx: mpsc::Sender<Message>,
}

impl PeerSender {
    /// The peer this sends to.
    pub fn node_id(&self) -> PublicKey {
        self.node_id
    }

    /// Queues `msg`, waiting for room. Fails once the connection is closed.
    pub async fn send(&self, msg: impl Into<Message>) -> Result<(), NetError> {
        self.tx
            .send(msg.into())
            .await
            .map_err(|_| NetError::Disconnected)
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// What the connection manager reports.
#[derive(Debug)]
pub enum NetEvent {
    /// A peer completed the handshake and `init`.
    PeerConnected {
        /// Its node id.
        node_id: PublicKey,
        /// Its `init` features.
        their_features: Features,
        /// Its whole `init`.
        their_init: Init,
        /// The socket address of the peer.
        remote_addr: SocketAddr,
        /// Whether the peer dialled us.
        inbound: bool,
        /// Sends messages to the peer.
        sender: PeerSender,
        /// Messages from the peer (pings, pongs and unknown odd messages are handled here and
        /// not delivered).
        receiver: mpsc::Receiver<Message>,
    },
    /// A connection reported by `PeerConnected` ended.
    PeerDisconnected {
        /// The peer.
        node_id: PublicKey,
        /// Why.
        reason: DisconnectReason,
    },
    /// A connection attempt failed before `init` completed.
    ConnectFailed {
        /// The peer, when known (always for outbound attempts).
        node_id: Option<PublicKey>,
        /// The address dialled or accepted.
        addr: String,
        /// Why.
        reason: DisconnectReason,
    },
}
