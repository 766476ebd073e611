//! # tern-devnet
//!
//! An embedded regtest chain for Tern's tests, its demo and developers' laptops: genuine blocks
//! (regtest proof of work, merkle roots, BIP34 heights, witness commitments, coinbase maturity),
//! a UTXO set and a mempool whose acceptance rules follow Bitcoin Core (libbitcoinconsensus
//! script checks, locktimes, BIP68, BIP125), served over the Esplora HTTP API that
//! `esplora-client`, BDK and LDK speak, plus a `/devnet/` control API (mine, faucet, reorg,
//! drop a mempool transaction, fee estimates, fault injection, request counts, the transactions
//! posted through `POST /tx`).
//!
//! The same chain without a server is a [`DevChain`]: driven and queried in process (the read
//! side of the Esplora API with plain types, computed by the same functions as the HTTP
//! answers), for whole-node tests with no HTTP. A [`Devnet`] derefs to the `DevChain` it serves.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tern_devnet::DevnetError> {
//! let devnet = tern_devnet::Devnet::start().await?;
//! let url = devnet.base_url(); // e.g. http://127.0.0.1:41234, no trailing slash
//! devnet.mine(1);
//! # Ok(()) }
//! ```

mod chain;
mod esplora;
mod faucet;
mod http;
mod mempool;
mod query;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bitcoin::{Address, Amount, BlockHash, Transaction, Txid};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use http::{FaultKind, FaultRule, PostedTx, RequestCounts};
pub use mempool::Policy;
pub use query::{BlockStatus, Confirmed, Outspend, ScriptTx, TxStatus};
pub use state::ReorgOutcome;

use http::{lock, Shared};
use state::Inner;

/// Errors starting or driving the devnet.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The data directory could not be used.
    #[error("devnet data dir: {0}")]
    DataDir(String),
    /// The faucet could not pay.
    #[error("faucet: {0}")]
    Faucet(String),
    /// A reorg was refused.
    #[error("reorg: {0}")]
    Reorg(String),
}

/// How to start a devnet.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Keep the chain in this directory across restarts.
    pub data_dir: Option<PathBuf>,
    /// Blocks mined to the faucet on a fresh chain (110 leaves 10 mature coinbases).
    pub initial_blocks: u32,
    /// Relay policy.
    pub policy: Policy,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        DevnetConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            initial_blocks: 110,
            policy: Policy::default(),
        }
    }
}

/// Confirmation state of a transaction as the devnet sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    /// Not known (never accepted, dropped, or replaced).
    Unknown,
    /// In the mempool.
    Mempool,
    /// In the best chain.
    Confirmed {
        /// Block height.
        height: u32,
        /// Block hash.
        block_hash: BlockHash,
    },
}

/// The devnet's chain, mempool, faucet and fee estimates, without a server: what a
/// [`Devnet`] serves over HTTP, to drive and query in process (a test's in-memory chain
/// source). Cheap to clone: clones are the same chain. Broadcasts go through the same
/// mempool acceptance rules as `POST /tx`.
#[derive(Debug, Clone)]
pub struct DevChain {
    shared: Arc<Shared>,
}

/// A running devnet: a [`DevChain`] served over the Esplora HTTP API (it derefs to its
/// chain). Dropping it stops the server.
#[derive(Debug)]
pub struct Devnet {
    chain: DevChain,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Devnet {
    /// Starts a devnet on a free loopback port with default settings.
    pub async fn start() -> Result<Devnet, DevnetError> {
        Self::start_with(DevnetConfig::default()).await
    }

    /// Starts a devnet with `config`.
    pub async fn start_with(config: DevnetConfig) -> Result<Devnet, DevnetError> {
        let (listener, addr) = bind(config.listen).await?;
        let chain = DevChain::with(config)?;
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(http::serve(listener, chain.shared.clone(), stopped));
        Ok(Devnet { chain, addr, stop })
    }

    /// Base URL of the Esplora API, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The chain served (a handle on the same chain).
    pub fn chain(&self) -> DevChain {
        self.chain.clone()
    }

    /// Request counts since start or the last [`Devnet::reset_requests`].
    pub fn requests(&self) -> RequestCounts {
        lock(&self.chain.shared.counts).clone()
    }

    /// Zeroes the request counts and forgets the posted transactions
    /// ([`Devnet::posted`]), as `POST /devnet/requests/reset`.
    pub fn reset_requests(&self) {
        *lock(&self.chain.shared.counts) = RequestCounts::default();
        lock(&self.chain.shared.posted).clear();
    }

    /// The transactions posted through `POST /tx` since start or the last
    /// [`Devnet::reset_requests`], in the order received, accepted or refused (as
    /// `GET /devnet/posted`). Broadcasts made in process ([`DevChain::broadcast`]) and the
    /// faucet's payments are not requests and are not listed.
    pub fn posted(&self) -> Vec<PostedTx> {
        lock(&self.chain.shared.posted).clone()
    }

    /// The txids of [`Devnet::posted`], in order.
    pub fn posted_txids(&self) -> Vec<Txid> {
        self.posted().into_iter().map(|p| p.txid).collect()
    }

    /// Adds a fault rule.
    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.chain.shared.faults).push(rule);
    }

    /// Removes every fault rule (as `DELETE /devnet/faults`).
    pub fn clear_faults(&self) {
        lock(&self.chain.shared.faults).clear();
    }

    /// Stops serving. Also happens on drop.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    /// Another Esplora server on the same chain, on a free loopback port (a second server
    /// for fail-over tests): the same answers, faults of its own with
    /// [`FaultRule::on_port`], its requests counted in [`RequestCounts::by_port`]. Dropping it
    /// stops it.
    pub async fn mirror(&self) -> Result<Mirror, DevnetError> {
        let (listener, addr) = bind(([127, 0, 0, 1], 0).into()).await?;
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(http::serve(listener, self.chain.shared.clone(), stopped));
        Ok(Mirror { addr, stop })
    }
}

/// A listener on `listen` and the address it got.
async fn bind(listen: SocketAddr) -> Result<(TcpListener, SocketAddr), DevnetError> {
    let bound = match TcpListener::bind(listen).await {
        Ok(l) => l.local_addr().map(|a| (l, a)),
        Err(e) => Err(e),
    };
    bound.map_err(|source| DevnetError::Bind {
        addr: listen,
        source,
    })
}

/// A second server of a [`Devnet`]'s chain ([`Devnet::mirror`]).
#[derive(Debug)]
pub struct Mirror {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Mirror {
    /// Base URL of its Esplora API, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its port (what [`FaultRule::on_port`] and [`RequestCounts::by_port`] name).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl std::ops::Deref for Devnet {
    type Target = DevChain;

    fn deref(&self) -> &DevChain {
        &self.chain
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl DevChain {
    /// A fresh chain with default settings (110 blocks mined to the faucet), in memory.
    pub fn new() -> DevChain {
        // Only a data dir can fail, and the default has none.
        Self::with(DevnetConfig::default()).unwrap_or_else(|e| unreachable!("{e}"))
    }

    /// A chain with `config` (its `listen` address is not used: nothing is served).
    pub fn with(config: DevnetConfig) -> Result<DevChain, DevnetError> {
        let inner = Inner::open(config.data_dir, config.policy, config.initial_blocks)?;
        Ok(DevChain {
            shared: Arc::new(Shared {
                inner: Mutex::new(inner),
                counts: Mutex::new(RequestCounts::default()),
                posted: Mutex::new(Vec::new()),
                faults: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Mines `n` blocks (with the whole mempool) paying the faucet.
    pub fn mine(&self, n: u32) -> Vec<BlockHash> {
        lock(&self.shared.inner).mine(n, None)
    }

    /// Mines `n` blocks paying their coinbases to `address`.
    pub fn mine_to(&self, n: u32, address: &Address) -> Vec<BlockHash> {
        lock(&self.shared.inner).mine(n, Some(address.script_pubkey()))
    }

    /// Pays `amount` from the faucet to `address` (unconfirmed until mined).
    pub fn faucet(&self, address: &Address, amount: Amount) -> Result<Txid, DevnetError> {
        lock(&self.shared.inner)
            .faucet_pay(address.script_pubkey(), amount)
            .map_err(DevnetError::Faucet)
    }

    /// Submits a transaction as `POST /tx` would; the error is the rejection reason.
    pub fn broadcast(&self, tx: &Transaction) -> Result<Txid, String> {
        lock(&self.shared.inner).broadcast(tx.clone())
    }

    /// Where a transaction stands.
    pub fn tx_state(&self, txid: &Txid) -> TxState {
        let inner = lock(&self.shared.inner);
        if let Some((height, block_hash, _)) = inner.chain.confirmation(txid) {
            TxState::Confirmed { height, block_hash }
        } else if inner.chain.mempool.entries.contains_key(txid) {
            TxState::Mempool
        } else {
            TxState::Unknown
        }
    }

    /// A transaction the devnet has seen (in a block, stale or best, or in the mempool).
    pub fn transaction(&self, txid: &Txid) -> Option<Transaction> {
        lock(&self.shared.inner).chain.txs.get(txid).cloned()
    }

    /// Removes a mempool transaction and its descendants (as `POST /devnet/drop-mempool-tx`).
    pub fn drop_mempool_tx(&self, txid: &Txid) -> Result<Vec<Txid>, String> {
        lock(&self.shared.inner).drop_mempool_tx(txid)
    }

    /// Height and hash of the best tip.
    pub fn tip(&self) -> (u32, BlockHash) {
        let inner = lock(&self.shared.inner);
        (inner.chain.tip_height(), inner.chain.tip_hash())
    }

    /// Disconnects `depth` blocks and mines `new_blocks` empty ones; disconnected transactions
    /// return to the mempool where still valid.
    pub fn reorg(&self, depth: u32, new_blocks: u32) -> Result<ReorgOutcome, DevnetError> {
        lock(&self.shared.inner)
            .reorg(depth, new_blocks)
            .map_err(DevnetError::Reorg)
    }

    /// The faucet's address.
    pub fn faucet_address(&self) -> Address {
        lock(&self.shared.inner).faucet.address()
    }
}

impl Default for DevChain {
    fn default() -> Self {
        DevChain::new()
    }
}
