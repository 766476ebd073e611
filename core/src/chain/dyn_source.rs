//! [`DynSource`]: any [`ChainSource`] behind one pointer type.
//!
//! [`ChainSource`]'s methods are `async fn`s in a trait, so the trait is not object safe. The
//! node holds its source in many places (its shared state, the chain watcher on the store
//! thread, every broadcast path); making all of them generic would put a type parameter on
//! `Node`, its shared state, every peer task and every file of the node driver. Instead the
//! node holds a `DynSource`: the source's futures are boxed, one allocation per request,
//! which is nothing beside a network round trip.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bitcoin::block::Header;
use bitcoin::{BlockHash, MerkleBlock, OutPoint, ScriptBuf, Transaction, Txid};

use super::{BlockStatus, ChainError, ChainSource, ScriptTx, Spend, Traffic, TxStatus};

type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, ChainError>> + Send + 'a>>;

/// The object-safe mirror of [`ChainSource`], implemented for every `ChainSource`.
trait ObjectSource: Send + Sync {
    fn traffic(&self) -> Option<Traffic>;
    fn distrust(&self);
    fn tip_hash(&self) -> Answer<'_, BlockHash>;
    fn header(&self, hash: BlockHash) -> Answer<'_, Header>;
    fn block_status(&self, hash: BlockHash) -> Answer<'_, BlockStatus>;
    fn tx_status(&self, txid: Txid) -> Answer<'_, TxStatus>;
    fn merkle_block(&self, txid: Txid) -> Answer<'_, Option<MerkleBlock>>;
    fn outspend(&self, outpoint: OutPoint) -> Answer<'_, Option<Spend>>;
    fn script_txs(&self, script: ScriptBuf) -> Answer<'_, Vec<ScriptTx>>;
    fn script_txs_after(&self, script: ScriptBuf, last_seen: Txid) -> Answer<'_, Vec<ScriptTx>>;
    fn block_hash_at(&self, height: u32) -> Answer<'_, Option<BlockHash>>;
    fn raw_tx(&self, txid: Txid) -> Answer<'_, Option<Transaction>>;
    fn broadcast(&self, tx: Transaction) -> Answer<'_, ()>;
    fn fee_estimates(&self) -> Answer<'_, BTreeMap<u16, f64>>;
}

impl<S: ChainSource> ObjectSource for S {
    fn traffic(&self) -> Option<Traffic> {
        ChainSource::traffic(self)
    }
    fn distrust(&self) {
        ChainSource::distrust(self)
    }
    fn tip_hash(&self) -> Answer<'_, BlockHash> {
        Box::pin(ChainSource::tip_hash(self))
    }
    fn header(&self, hash: BlockHash) -> Answer<'_, Header> {
        Box::pin(ChainSource::header(self, hash))
    }
    fn block_status(&self, hash: BlockHash) -> Answer<'_, BlockStatus> {
        Box::pin(ChainSource::block_status(self, hash))
    }
    fn tx_status(&self, txid: Txid) -> Answer<'_, TxStatus> {
        Box::pin(ChainSource::tx_status(self, txid))
    }
    fn merkle_block(&self, txid: Txid) -> Answer<'_, Option<MerkleBlock>> {
        Box::pin(ChainSource::merkle_block(self, txid))
    }
    fn outspend(&self, outpoint: OutPoint) -> Answer<'_, Option<Spend>> {
        Box::pin(ChainSource::outspend(self, outpoint))
    }
    fn script_txs(&self, script: ScriptBuf) -> Answer<'_, Vec<ScriptTx>> {
        Box::pin(ChainSource::script_txs(self, script))
    }
    fn script_txs_after(&self, script: ScriptBuf, last_seen: Txid) -> Answer<'_, Vec<ScriptTx>> {
        Box::pin(ChainSource::script_txs_after(self, script, last_seen))
    }
    fn block_hash_at(&self, height: u32) -> Answer<'_, Option<BlockHash>> {
        Box::pin(ChainSource::block_hash_at(self, height))
    }
    fn raw_tx(&self, txid: Txid) -> Answer<'_, Option<Transaction>> {
        Box::pin(ChainSource::raw_tx(self, txid))
    }
    fn broadcast(&self, tx: Transaction) -> Answer<'_, ()> {
        Box::pin(ChainSource::broadcast(self, tx))
    }
    fn fee_estimates(&self) -> Answer<'_, BTreeMap<u16, f64>> {
        Box::pin(ChainSource::fee_estimates(self))
    }
}

/// Any [`ChainSource`], type-erased. Cheap to clone (three `Arc`s); itself a `ChainSource`.
/// Counts every request made through it (all clones share the count), whatever the source:
/// the node's request counters ([`DynSource::requests`]) read it.
#[derive(Clone)]
pub struct DynSource {
    inner: Arc<dyn ObjectSource>,
    calls: Arc<AtomicU64>,
    known: Arc<Mutex<Known>>,
}

/// Transactions served by `raw_tx` without a request.
#[derive(Default)]
struct Known {
    /// The spending transactions the last sync fetched and checked.
    checked: BTreeMap<Txid, Transaction>,
    /// The last [`POSTED_KEPT`] transactions posted through this source (ours).
    posted: VecDeque<Transaction>,
}

/// How many of the transactions we posted are kept (a close's few: commitment or closing
/// transaction, sweeps, a CPFP child; a node closing more at once asks for the rest).
const POSTED_KEPT: usize = 64;

impl DynSource {
    /// Wraps `source`.
    pub fn new(source: impl ChainSource + 'static) -> Self {
        DynSource {
            inner: Arc::new(source),
            calls: Arc::new(AtomicU64::new(0)),
            known: Arc::new(Mutex::new(Known::default())),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves these transactions from memory for `raw_tx` until the next call: the spending
    /// transactions the last sync fetched and checked, which the peer tasks ask for next.
    pub fn remember_txs(&self, txs: &[Transaction]) {
        let mut known = self.known();
        known.checked.clear();
        known
            .checked
            .extend(txs.iter().map(|t| (t.compute_txid(), t.clone())));
    }

    /// The transactions recently posted through this source (ours): a sync checks a spend by
    /// one of them without fetching it ([`super::SyncPlanner::known_txs`]).
    pub fn posted_txs(&self) -> Vec<Transaction> {
        self.known().posted.iter().cloned().collect()
    }

    fn remember_posted(&self, tx: &Transaction) {
        let mut known = self.known();
        let txid = tx.compute_txid();
        known.posted.retain(|t| t.compute_txid() != txid);
        if known.posted.len() == POSTED_KEPT {
            known.posted.pop_front();
        }
        known.posted.push_back(tx.clone());
    }

    fn remembered(&self, txid: &Txid) -> Option<Transaction> {
        let known = self.known();
        known.checked.get(txid).cloned().or_else(|| {
            known
                .posted
                .iter()
                .find(|t| t.compute_txid() == *txid)
                .cloned()
        })
    }

    /// Requests made through this source and its clones: the HTTP requests actually sent
    /// (every retry included, none for a call refused by the backoff) when the source speaks
    /// HTTP itself ([`ChainSource::traffic`]), else the calls made.
    pub fn requests(&self) -> u64 {
        match self.inner.traffic() {
            Some(t) => t.requests,
            None => self.calls.load(Ordering::Relaxed),
        }
    }

    /// Response body bytes received (0 for a source that does not speak HTTP).
    pub fn http_bytes(&self) -> u64 {
        self.inner.traffic().map_or(0, |t| t.bytes)
    }

    fn count(&self) -> &Arc<dyn ObjectSource> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        &self.inner
    }
}

impl std::fmt::Debug for DynSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DynSource")
    }
}

impl ChainSource for DynSource {
    fn traffic(&self) -> Option<Traffic> {
        Some(Traffic {
            requests: self.requests(),
            bytes: self.http_bytes(),
        })
    }
    fn distrust(&self) {
        self.inner.distrust()
    }
    fn tip_hash(&self) -> impl Future<Output = Result<BlockHash, ChainError>> + Send {
        self.count().tip_hash()
    }
    fn header(&self, hash: BlockHash) -> impl Future<Output = Result<Header, ChainError>> + Send {
        self.count().header(hash)
    }
    fn block_status(
        &self,
        hash: BlockHash,
    ) -> impl Future<Output = Result<BlockStatus, ChainError>> + Send {
        self.count().block_status(hash)
    }
    fn tx_status(&self, txid: Txid) -> impl Future<Output = Result<TxStatus, ChainError>> + Send {
        self.count().tx_status(txid)
    }
    fn merkle_block(
        &self,
        txid: Txid,
    ) -> impl Future<Output = Result<Option<MerkleBlock>, ChainError>> + Send {
        self.count().merkle_block(txid)
    }
    fn outspend(
        &self,
        outpoint: OutPoint,
    ) -> impl Future<Output = Result<Option<Spend>, ChainError>> + Send {
        self.count().outspend(outpoint)
    }
    fn script_txs(
        &self,
        script: ScriptBuf,
    ) -> impl Future<Output = Result<Vec<ScriptTx>, ChainError>> + Send {
        self.count().script_txs(script)
    }
    fn script_txs_after(
        &self,
        script: ScriptBuf,
        last_seen: Txid,
    ) -> impl Future<Output = Result<Vec<ScriptTx>, ChainError>> + Send {
        self.count().script_txs_after(script, last_seen)
    }
    fn block_hash_at(
        &self,
        height: u32,
    ) -> impl Future<Output = Result<Option<BlockHash>, ChainError>> + Send {
        self.count().block_hash_at(height)
    }
    fn raw_tx(
        &self,
        txid: Txid,
    ) -> impl Future<Output = Result<Option<Transaction>, ChainError>> + Send {
        let answer: Answer<'_, Option<Transaction>> = match self.remembered(&txid) {
            Some(tx) => Box::pin(async move { Ok(Some(tx)) }),
            None => self.count().raw_tx(txid),
        };
        answer
    }
    fn broadcast(&self, tx: Transaction) -> impl Future<Output = Result<(), ChainError>> + Send {
        self.remember_posted(&tx);
        self.count().broadcast(tx)
    }
    fn fee_estimates(&self) -> impl Future<Output = Result<BTreeMap<u16, f64>, ChainError>> + Send {
        self.count().fee_estimates()
    }
}
