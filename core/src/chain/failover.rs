//! [`Failover`]: several chain sources (Esplora servers) as one [`ChainSource`].
//!
//! Requests go to the current server. When it fails as a server fails — unreachable, an HTTP
//! 429 or 5xx, an answer that does not parse or is too large, or backed off after such
//! failures (no request sent) — the same request goes to the next server at once, and that
//! one becomes current; each server is asked at most once per request, and the last error is
//! returned when all fail. An answer that is a lie is found by the sync planner, not here: the
//! node then calls [`ChainSource::distrust`], and the next sync starts on the next server.
//! Each server keeps its own backoff and counters; [`ChainSource::traffic`] adds them up.
//!
//! Answers of different servers may meet in one sync only around a switch (a request that
//! failed over mid-sync); every answer is checked by the planner as a single server's would
//! be, so a lagging server can fail that sync, never corrupt the state.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bitcoin::block::Header;
use bitcoin::{BlockHash, MerkleBlock, OutPoint, ScriptBuf, Transaction, Txid};

use super::{BlockStatus, ChainError, ChainSource, ScriptTx, Spend, Traffic, TxStatus};

/// Several servers in order of preference; cheap to clone when `S` is (clones share which
/// server is current).
#[derive(Debug, Clone)]
pub struct Failover<S> {
    sources: Arc<Vec<S>>,
    current: Arc<AtomicUsize>,
}

impl<S: ChainSource> Failover<S> {
    /// `first` then `others`, in order of preference.
    pub fn new(first: S, others: impl IntoIterator<Item = S>) -> Self {
        let mut sources = vec![first];
        sources.extend(others);
        Failover {
            sources: Arc::new(sources),
            current: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The index of the server asked first now (0: the first one given).
    pub fn current(&self) -> usize {
        self.current.load(Ordering::SeqCst)
    }

    /// The servers, in the order given.
    pub fn sources(&self) -> &[S] {
        &self.sources
    }

    /// Moves on from server `from` (unless another request already did).
    fn advance(&self, from: usize) {
        let next = (from + 1) % self.sources.len();
        let _ = self
            .current
            .compare_exchange(from, next, Ordering::SeqCst, Ordering::SeqCst);
    }

    async fn ask<'a, T, F, Fut>(&'a self, call: F) -> Result<T, ChainError>
    where
        F: Fn(&'a S) -> Fut,
        Fut: Future<Output = Result<T, ChainError>> + 'a,
    {
        let n = self.sources.len();
        let start = self.current();
        let mut last = None;
        for k in 0..n {
            let i = (start + k) % n;
            match call(&self.sources[i]).await {
                Err(e) if server_failed(&e) => {
                    if n > 1 {
                        tracing::debug!(server = i, "chain server failed ({e}); asking the next");
                    }
                    self.advance(i);
                    last = Some(e);
                }
                answer => return answer,
            }
        }
        Err(last.unwrap_or_else(|| ChainError::Transport {
            what: "any server".into(),
            reason: "no server configured".into(),
        }))
    }
}

/// Whether `e` is the server's failure (another server may answer), not an answer.
fn server_failed(e: &ChainError) -> bool {
    match e {
        ChainError::Http { status, .. } => *status == 429 || *status >= 500,
        ChainError::Transport { .. }
        | ChainError::InvalidResponse { .. }
        | ChainError::TooLarge { .. }
        | ChainError::BackingOff { .. } => true,
        other => other.is_lie(),
    }
}

impl<S: ChainSource> ChainSource for Failover<S> {
    fn traffic(&self) -> Option<Traffic> {
        self.sources
            .iter()
            .filter_map(ChainSource::traffic)
            .reduce(|a, b| Traffic {
                requests: a.requests + b.requests,
                bytes: a.bytes + b.bytes,
            })
    }
    fn distrust(&self) {
        let from = self.current();
        if self.sources.len() > 1 {
            tracing::warn!(
                server = from,
                "chain server lied; the next sync asks the next one"
            );
        }
        self.advance(from);
    }
    fn tip_hash(&self) -> impl Future<Output = Result<BlockHash, ChainError>> + Send {
        self.ask(|s| s.tip_hash())
    }
    fn header(&self, hash: BlockHash) -> impl Future<Output = Result<Header, ChainError>> + Send {
        self.ask(move |s| s.header(hash))
    }
    fn block_status(
        &self,
        hash: BlockHash,
    ) -> impl Future<Output = Result<BlockStatus, ChainError>> + Send {
        self.ask(move |s| s.block_status(hash))
    }
    fn tx_status(&self, txid: Txid) -> impl Future<Output = Result<TxStatus, ChainError>> + Send {
        self.ask(move |s| s.tx_status(txid))
    }
    fn merkle_block(
        &self,
        txid: Txid,
    ) -> impl Future<Output = Result<Option<MerkleBlock>, ChainError>> + Send {
        self.ask(move |s| s.merkle_block(txid))
    }
    fn outspend(
        &self,
        outpoint: OutPoint,
    ) -> impl Future<Output = Result<Option<Spend>, ChainError>> + Send {
        self.ask(move |s| s.outspend(outpoint))
    }
    fn script_txs(
        &self,
        script: ScriptBuf,
    ) -> impl Future<Output = Result<Vec<ScriptTx>, ChainError>> + Send {
        self.ask(move |s| s.script_txs(script.clone()))
    }
    fn script_txs_after(
        &self,
        script: ScriptBuf,
        last_seen: Txid,
    ) -> impl Future<Output = Result<Vec<ScriptTx>, ChainError>> + Send {
        self.ask(move |s| s.script_txs_after(script.clone(), last_seen))
    }
    fn block_hash_at(
        &self,
        height: u32,
    ) -> impl Future<Output = Result<Option<BlockHash>, ChainError>> + Send {
        self.ask(move |s| s.block_hash_at(height))
    }
    fn raw_tx(
        &self,
        txid: Txid,
    ) -> impl Future<Output = Result<Option<Transaction>, ChainError>> + Send {
        self.ask(move |s| s.raw_tx(txid))
    }
    fn broadcast(&self, tx: Transaction) -> impl Future<Output = Result<(), ChainError>> + Send {
        self.ask(move |s| s.broadcast(tx.clone()))
    }
    fn fee_estimates(&self) -> impl Future<Output = Result<BTreeMap<u16, f64>, ChainError>> + Send {
        self.ask(|s| s.fee_estimates())
    }
}
