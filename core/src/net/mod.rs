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
use std::sync::Arc;
use std::time::Duration;

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

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
    /// Time allowed for TCP connect, handshake and `init` together (the handshake timeout: an
    /// inbound peer that trickles its acts or its `init` — slowloris — is cut when it runs out,
    /// however many bytes it sent).
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
    /// Most inbound connections at once, from the accepted socket to its end, handshake
    /// included (default 128). A connection accepted beyond it is closed at once, before the
    /// handshake (counted by [`ConnectionManager::inbound_refused`]). Outbound dials are not
    /// counted.
    pub max_inbound_connections: usize,
    /// Most encoded bytes queued in each direction of one connection (default 256 KiB, at
    /// least one largest message, 65,535 bytes). Outbound, to the peer and not yet written to
    /// its socket: our own messages wait for room (backpressure); a `pong` or `ping` that
    /// finds no room means the peer is not reading, and the connection is closed
    /// ([`DisconnectReason::SendQueueFull`]) rather than buffered. Inbound, read from the peer
    /// and not yet taken by its [`PeerReceiver`]: the reader stops reading the socket until
    /// there is room, so a peer that sends faster than its messages are handled is slowed by
    /// TCP, not buffered.
    pub max_queued_bytes: usize,
    /// Fault-injection rules (test builds only).
    #[cfg(any(test, feature = "dev-disconnect"))]
    pub faults: faults::FaultPlan,
    /// Listen and dial on this in-memory network instead of TCP (test builds only).
    #[cfg(any(test, feature = "dev-disconnect"))]
    pub memory_net: Option<MemoryNet>,
}

/// [`NetConfig::max_inbound_connections`]'s default.
pub const DEFAULT_MAX_INBOUND_CONNECTIONS: usize = 128;
/// [`NetConfig::max_queued_bytes`]'s default.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 256 * 1024;
/// The largest BOLT 8 message (its length is a `u16`): the floor of
/// [`NetConfig::max_queued_bytes`].
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

impl NetConfig {
    /// Defaults: Tern's `init` features, 10 s init timeout, 30 s pings, backoff 1 s → 60 s
    /// reset after 60 s of connection, queues of 64 messages and 256 KiB, 128 inbound
    /// connections.
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
            max_inbound_connections: DEFAULT_MAX_INBOUND_CONNECTIONS,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
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
    /// The peer does not read: a `pong` (or our `ping`) found its send queue full
    /// ([`NetConfig::max_queued_bytes`]).
    #[error("send queue full: the peer is not reading")]
    SendQueueFull,
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
    tx: mpsc::Sender<Queued>,
    /// One permit per byte queued and not yet written ([`NetConfig::max_queued_bytes`]).
    room: Arc<Semaphore>,
    max_queued_bytes: usize,
}

/// The receiving side of a connection: the peer's messages, in order. Bounded in messages
/// ([`NetConfig::queue_len`]) and in bytes ([`NetConfig::max_queued_bytes`], counted as
/// received on the wire): while it is full the connection reads nothing more from the peer.
#[derive(Debug)]
pub struct PeerReceiver {
    rx: mpsc::Receiver<(Message, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
    max_queued_bytes: usize,
}

impl PeerReceiver {
    /// The next message; `None` once the connection is closed and every message read before
    /// was taken.
    pub async fn recv(&mut self) -> Option<Message> {
        self.rx.recv().await.map(|(msg, _room)| msg)
    }

    /// Bytes read from the peer and waiting here.
    pub fn queued_bytes(&self) -> usize {
        self.max_queued_bytes - self.room.available_permits()
    }
}

/// The connection's end of a [`PeerReceiver`].
pub(crate) struct InboundQueue {
    tx: mpsc::Sender<(Message, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
    max_queued_bytes: usize,
}

impl InboundQueue {
    /// A queue of `len` messages and `max_queued_bytes` bytes (at least one largest message).
    pub(crate) fn new(len: usize, max_queued_bytes: usize) -> (InboundQueue, PeerReceiver) {
        let max_queued_bytes = max_queued_bytes.max(MAX_MESSAGE_LEN);
        let room = Arc::new(Semaphore::new(max_queued_bytes));
        let (tx, rx) = mpsc::channel(len.max(1));
        let queue = InboundQueue {
            tx,
            room: room.clone(),
            max_queued_bytes,
        };
        let receiver = PeerReceiver {
            rx,
            room,
            max_queued_bytes,
        };
        (queue, receiver)
    }

    /// Queues `msg`, `len` bytes on the wire, waiting for room. Fails once the receiver is
    /// gone.
    pub(crate) async fn send(&self, msg: Message, len: usize) -> Result<(), ()> {
        let permit = self
            .room
            .clone()
            .acquire_many_owned(permits(len, self.max_queued_bytes))
            .await
            .map_err(|_| ())?;
        self.tx.send((msg, permit)).await.map_err(|_| ())
    }
}

/// A message in a connection's send queue: encoded once, holding its bytes' room until the
/// writer has written it.
pub(crate) struct Queued {
    pub(crate) msg_type: u16,
    pub(crate) name: &'static str,
    pub(crate) bytes: Vec<u8>,
    _room: OwnedSemaphorePermit,
}

impl Queued {
    /// `msg` encoded, if the queue has room for it now.
    fn try_new(msg: &Message, room: &Arc<Semaphore>, max: usize) -> Option<Queued> {
        let bytes = msg.encode();
        let permit = room
            .clone()
            .try_acquire_many_owned(permits(bytes.len(), max))
            .ok()?;
        Some(Queued::with(msg, bytes, permit))
    }

    fn with(msg: &Message, bytes: Vec<u8>, permit: OwnedSemaphorePermit) -> Queued {
        Queued {
            msg_type: msg.msg_type(),
            name: msg.name(),
            bytes,
            _room: permit,
        }
    }
}

/// The permits a message of `len` bytes takes (a message larger than the whole queue takes
/// all of it, so it still goes, alone).
fn permits(len: usize, max: usize) -> u32 {
    u32::try_from(len.clamp(1, max)).unwrap_or(u32::MAX)
}

impl PeerSender {
    /// The peer this sends to.
    pub fn node_id(&self) -> PublicKey {
        self.node_id
    }

    pub(crate) fn new(
        node_id: PublicKey,
        tx: mpsc::Sender<Queued>,
        max_queued_bytes: usize,
    ) -> Self {
        let max_queued_bytes = max_queued_bytes.max(MAX_MESSAGE_LEN);
        PeerSender {
            node_id,
            tx,
            room: Arc::new(Semaphore::new(max_queued_bytes)),
            max_queued_bytes,
        }
    }

    /// Queues `msg`, waiting for room (in messages and in bytes). Fails once the connection
    /// is closed.
    pub async fn send(&self, msg: impl Into<Message>) -> Result<(), NetError> {
        let msg = msg.into();
        let bytes = msg.encode();
        let permit = self
            .room
            .clone()
            .acquire_many_owned(permits(bytes.len(), self.max_queued_bytes))
            .await
            .map_err(|_| NetError::Disconnected)?;
        self.tx
            .send(Queued::with(&msg, bytes, permit))
            .await
            .map_err(|_| NetError::Disconnected)
    }

    /// Queues `msg` if there is room now (our own pings): `false` when the queue is full or
    /// the connection closed.
    pub(crate) fn try_send(&self, msg: impl Into<Message>) -> bool {
        match Queued::try_new(&msg.into(), &self.room, self.max_queued_bytes) {
            Some(q) => self.tx.try_send(q).is_ok(),
            None => false,
        }
    }

    /// Queues `msg` (a `pong`) if its bytes fit now, waiting only for a message slot: a peer
    /// that asks for pongs and does not read them fills the bytes, and its connection closes
    /// ([`DisconnectReason::SendQueueFull`]).
    pub(crate) async fn send_if_room(
        &self,
        msg: impl Into<Message>,
    ) -> Result<(), DisconnectReason> {
        let q = Queued::try_new(&msg.into(), &self.room, self.max_queued_bytes)
            .ok_or(DisconnectReason::SendQueueFull)?;
        self.tx
            .send(q)
            .await
            .map_err(|_| DisconnectReason::Requested)
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.max_queued_bytes - self.room.available_permits()
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
        receiver: PeerReceiver,
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
