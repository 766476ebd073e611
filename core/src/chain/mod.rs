//! Chain access through Esplora.
//!
//! - [`ChainSource`]: what Tern asks of a chain backend (tip, headers, block status, transaction
//!   status, merkle proofs, outspends, script histories, broadcast, fee estimates).
//! - [`EsploraSource`]: the implementation on `esplora-client`, with timeouts, bounded retries
//!   and typed errors.
//! - [`Failover`]: several servers as one source, the next asked when one fails or lies.
//! - [`DynSource`]: any source behind one pointer type (what the node holds, so it runs on
//!   Esplora or on a test's in-memory chain alike).
//! - [`planner`]: the sans-IO sync planner. It decides which requests a sync makes and consumes
//!   the answers, so request budgets are unit-tested without HTTP.
//! - [`sync`]: the async driver that runs a plan against a source, with bounded concurrency.
//!
//! The watched state ([`ChainState`]) is a plain value the caller persists after a sync; a fresh
//! process that loads it knows what it knew, and a sync where the tip did not move costs one
//! request.

mod dyn_source;
mod esplora;
mod failover;
mod fees;
mod http;
pub mod planner;
mod state;
mod sync;
mod watcher;

use std::future::Future;

use bitcoin::block::Header;
use bitcoin::{BlockHash, MerkleBlock, OutPoint, ScriptBuf, Transaction, Txid};

pub use dyn_source::DynSource;
pub use esplora::{EsploraConfig, EsploraSource, DEFAULT_MAX_BODY_BYTES};
pub use failover::Failover;
pub use fees::{FeeCache, FeeTarget, MIN_FEERATE_SAT_PER_KW};
pub use http::{Clock, IN_REQUEST_WAIT};
pub use planner::{ChainEvent, Request, Response, ScriptHistories, SyncPlanner};
pub use state::{
    BlockRef, ChainState, ChainStateDecodeError, Confirmation, OutpointWatch, TxWatch, TxWatchState,
};
pub use sync::{sync, SyncOutcome};
pub use watcher::{ChainWatcher, WatcherError, CHAIN_STATE_KEY, FEE_CACHE_KEY};

/// Errors talking to the chain backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The server answered with an HTTP error status (after the client's bounded retries).
    #[error("esplora answered http {status} for {what}: {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// What was asked.
        what: String,
        /// The server's message.
        message: String,
    },
    /// No answer: connection refused or dropped, or the timeout passed.
    #[error("esplora unreachable for {what}: {reason}")]
    Transport {
        /// What was asked.
        what: String,
        /// Why.
        reason: String,
    },
    /// The answer could not be parsed.
    #[error("invalid answer from esplora for {what}: {reason}")]
    InvalidResponse {
        /// What was asked.
        what: String,
        /// Why.
        reason: String,
    },
    /// A merkle proof did not prove what the server claimed.
    #[error("merkle proof for {txid} does not match block {block_hash}")]
    BadProof {
        /// Transaction.
        txid: Txid,
        /// Claimed block.
        block_hash: BlockHash,
    },
    /// The tip moved while the sync ran; the next sync will catch up.
    #[error("the chain tip moved during the sync")]
    TipMoved,
    /// The server refused a broadcast.
    #[error("broadcast of {txid} refused: {reason}")]
    BroadcastRefused {
        /// Transaction.
        txid: Txid,
        /// The server's reason.
        reason: String,
    },
    /// The sync ran past its deadline.
    #[error("sync deadline passed")]
    Deadline,
    /// An answer's body was longer than [`EsploraConfig::max_body_bytes`] (not read whole).
    #[error("esplora answer for {what} is over {limit} bytes")]
    TooLarge {
        /// What was asked.
        what: String,
        /// The cap.
        limit: usize,
    },
    /// The server failed recently and is backed off from; no request was sent.
    #[error("esplora backed off for {what}: failing server, next try in {retry_in:?}")]
    BackingOff {
        /// What was asked.
        what: String,
        /// How long the backoff still lasts.
        retry_in: std::time::Duration,
    },
    /// A header is not the block asked for.
    #[error("header of block {asked} hashes to {got}")]
    WrongHeader {
        /// The block asked for.
        asked: BlockHash,
        /// The hash of the header served.
        got: BlockHash,
    },
    /// The server's headers do not connect: its tip does not build on our tip although it
    /// says our tip is in its best chain just below it, or its heights contradict each other.
    #[error("headers do not connect: tip {tip} at height {height}: {reason}")]
    HeadersDisconnected {
        /// The server's tip.
        tip: BlockHash,
        /// Its claimed height.
        height: u32,
        /// What does not fit.
        reason: String,
    },
    /// A transaction was reported confirmed at a height its block is not at.
    #[error(
        "tx {txid} reported confirmed at height {claimed} in block {block_hash}, which is {actual}"
    )]
    WrongHeight {
        /// Transaction.
        txid: Txid,
        /// Claimed block.
        block_hash: BlockHash,
        /// Claimed height.
        claimed: u32,
        /// What the block is, in words (its height, or why it cannot be).
        actual: String,
    },
    /// An outpoint was reported spent by a transaction that does not spend it.
    #[error(
        "outpoint {outpoint} reported spent by {txid}:{vin}, which does not spend it: {reason}"
    )]
    BadSpend {
        /// The watched outpoint.
        outpoint: OutPoint,
        /// The claimed spending transaction.
        txid: Txid,
        /// The claimed input index.
        vin: u32,
        /// What is wrong.
        reason: String,
    },
}

impl ChainError {
    /// Whether the server lied (an answer that parsed but contradicts itself or the chain),
    /// as opposed to failing or being unreachable.
    pub fn is_lie(&self) -> bool {
        matches!(
            self,
            ChainError::BadProof { .. }
                | ChainError::WrongHeader { .. }
                | ChainError::HeadersDisconnected { .. }
                | ChainError::WrongHeight { .. }
                | ChainError::BadSpend { .. }
        )
    }
}

/// What a source has cost on the wire: HTTP requests sent (every retry included) and response
/// body bytes received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Requests sent.
    pub requests: u64,
    /// Response body bytes received.
    pub bytes: u64,
}

/// Status of a block as the server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockStatus {
    /// Whether it is in the server's best chain.
    pub in_best_chain: bool,
    /// Its height, when in the best chain.
    pub height: Option<u32>,
}

/// What the server knows of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatus {
    /// Never seen, or dropped from the mempool.
    Unknown,
    /// In the mempool.
    Unconfirmed,
    /// In the best chain.
    Confirmed(Confirmation),
}

/// The spend of an outpoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Spend {
    /// Spending transaction.
    pub txid: Txid,
    /// Its input index.
    pub vin: u32,
    /// Where it confirmed, if it did.
    pub confirmed: Option<Confirmation>,
}

impl Spend {
    /// Checks that `tx` is this spend of `outpoint`: its txid, spending `outpoint` at input
    /// `vin`. Otherwise the server lied, and the error says how.
    pub fn check(&self, outpoint: OutPoint, tx: &Transaction) -> Result<(), String> {
        let txid = tx.compute_txid();
        if txid != self.txid {
            return Err(format!("the transaction served is {txid}"));
        }
        match usize::try_from(self.vin).ok().and_then(|i| tx.input.get(i)) {
            Some(i) if i.previous_output == outpoint => Ok(()),
            Some(i) => Err(format!(
                "its input {} spends {}",
                self.vin, i.previous_output
            )),
            None => Err(format!("it has {} inputs", tx.input.len())),
        }
    }
}

/// A transaction from a script's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptTx {
    /// The transaction.
    pub tx: Transaction,
    /// Where it stands.
    pub status: TxStatus,
}

/// Confirmed transactions per page of a script's history (Esplora's page size).
pub const SCRIPT_PAGE: usize = 25;

/// What Tern needs from a chain backend. Implemented over Esplora by [`EsploraSource`].
pub trait ChainSource: Send + Sync {
    /// What this source has cost on the wire, when it speaks HTTP itself (Esplora); `None`
    /// for a source that does not (a test's in-memory chain), whose calls are counted instead.
    fn traffic(&self) -> Option<Traffic> {
        None
    }
    /// A sync found a lie in this source's answers (the node says so): a source of several
    /// servers ([`Failover`]) asks the next one from now on. Nothing by default.
    fn distrust(&self) {}
    /// Hash of the best tip.
    fn tip_hash(&self) -> impl Future<Output = Result<BlockHash, ChainError>> + Send;
    /// A block header.
    fn header(&self, hash: BlockHash) -> impl Future<Output = Result<Header, ChainError>> + Send;
    /// Whether a block is in the best chain, and its height.
    fn block_status(
        &self,
        hash: BlockHash,
    ) -> impl Future<Output = Result<BlockStatus, ChainError>> + Send;
    /// Status of a transaction; `Unknown` when the server does not have it.
    fn tx_status(&self, txid: Txid) -> impl Future<Output = Result<TxStatus, ChainError>> + Send;
    /// A BIP37 merkle block proving a confirmed transaction; `None` when unconfirmed.
    fn merkle_block(
        &self,
        txid: Txid,
    ) -> impl Future<Output = Result<Option<MerkleBlock>, ChainError>> + Send;
    /// The spend of an outpoint; `None` when unspent.
    fn outspend(
        &self,
        outpoint: OutPoint,
    ) -> impl Future<Output = Result<Option<Spend>, ChainError>> + Send;
    /// Transactions touching a script: mempool first, then the first [`SCRIPT_PAGE`]
    /// confirmed ones, newest first.
    fn script_txs(
        &self,
        script: ScriptBuf,
    ) -> impl Future<Output = Result<Vec<ScriptTx>, ChainError>> + Send;
    /// The next page of a script's confirmed history after `last_seen` (a confirmed txid of
    /// the page before), newest first; a page shorter than [`SCRIPT_PAGE`] is the last.
    fn script_txs_after(
        &self,
        script: ScriptBuf,
        last_seen: Txid,
    ) -> impl Future<Output = Result<Vec<ScriptTx>, ChainError>> + Send;
    /// The hash of the best chain's block at `height` (`None` above the tip).
    fn block_hash_at(
        &self,
        height: u32,
    ) -> impl Future<Output = Result<Option<BlockHash>, ChainError>> + Send;
    /// A transaction by txid (`None` when the server does not have it).
    fn raw_tx(
        &self,
        txid: Txid,
    ) -> impl Future<Output = Result<Option<Transaction>, ChainError>> + Send;
    /// Broadcasts a transaction (a transaction the server already has is a success).
    fn broadcast(&self, tx: Transaction) -> impl Future<Output = Result<(), ChainError>> + Send;
    /// Fee estimates: confirmation target in blocks -> sat/vB.
    fn fee_estimates(
        &self,
    ) -> impl Future<Output = Result<std::collections::BTreeMap<u16, f64>, ChainError>> + Send;
}
