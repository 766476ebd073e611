//! [`ChainSource`] over Esplora, on `esplora-client`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitcoin::block::Header;
use bitcoin::{BlockHash, MerkleBlock, OutPoint, ScriptBuf, Transaction, Txid};
use esplora_client::{AsyncClient, Builder};

use super::{BlockStatus, ChainError, ChainSource, Confirmation, ScriptTx, Spend, TxStatus};

/// How to reach an Esplora server.
#[derive(Debug, Clone)]
pub struct EsploraConfig {
    /// Base URL without a trailing slash, e.g. `https://blockstream.info/api`.
    pub url: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries of 429/500/503 answers (esplora-client backs off from 256 ms, doubling).
    pub max_retries: usize,
}

impl EsploraConfig {
    /// Defaults for a phone: 10 s per request, 2 retries (≈ 0.8 s of backoff at most).
    pub fn new(url: impl Into<String>) -> Self {
        EsploraConfig {
            url: url.into().trim_end_matches('/').to_string(),
            timeout: Duration::from_secs(10),
            max_retries: 2,
        }
    }
}

/// An Esplora server as a [`ChainSource`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EsploraSource {
    client: AsyncClient,
    requests: Arc<AtomicUsize>,
}

fn map_err(what: impl Into<String>, e: esplora_client::Error) -> ChainError {
    let what = what.into();
    match e {
        esplora_client::Error::HttpResponse { status, message } => ChainError::Http {
            status,
            what,
            message,
        },
        esplora_client::Error::Reqwest(e) if e.is_decode() => ChainError::InvalidResponse {
            what,
            reason: e.to_string(),
        },
        esplora_client::Error::Reqwest(e) => ChainError::Transport {
            what,
            reason: e.to_string(),
        },
        other => ChainError::InvalidResponse {
            what,
            reason: format!("{other:?}"),
        },
    }
}

fn confirmation(status: &esplora_client::TxStatus) -> Option<Confirmation> {
    match (
        status.confirmed,
        status.block_height,
        status.block_hash,
        status.block_time,
    ) {
        (true, Some(height), Some(block_hash), Some(block_time)) => Some(Confirmation {
            height,
            block_hash,
            block_time,
        }),
        _ => None,
    }
}

fn tx_status(status: &esplora_client::TxStatus) -> TxStatus {
    match confirmation(status) {
        Some(c) => TxStatus::Confirmed(c),
        None => TxStatus::Unconfirmed,
    }
}

impl EsploraSource {
    /// A client for `config`.
    pub fn new(config: &EsploraConfig) -> Result<Self, ChainError> {
        let builder = Builder::new(&config.url)
            .timeout(config.timeout.as_secs().max(1))
            .max_retries(config.max_retries);
        let client = AsyncClient::from_builder(builder).map_err(|e| map_err("client", e))?;
        Ok(EsploraSource {
            client,
            requests: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The underlying esplora-client.
    pub fn client(&self) -> &AsyncClient {
        &self.client
    }

    /// Requests started through this source (retries inside esplora-client not included).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

impl ChainSource for EsploraSource {
    async fn tip_hash(&self) -> Result<BlockHash, ChainError> {
        self.count();
        self.client
            .get_tip_hash()
            .await
            .map_err(|e| map_err("tip hash", e))
    }

    async fn header(&self, hash: BlockHash) -> Result<Header, ChainError> {
        self.count();
        self.client
            .get_header_by_hash(&hash)
            .await
            .map_err(|e| map_err(format!("header {hash}"), e))
    }

    async fn block_status(&self, hash: BlockHash) -> Result<BlockStatus, ChainError> {
        self.count();
        let s = self
            .client
            .get_block_status(&hash)
            .await
            .map_err(|e| map_err(format!("block status {hash}"), e))?;
        Ok(BlockStatus {
            in_best_chain: s.in_best_chain,
            height: s.height,
        })
    }

    async fn tx_status(&self, txid: Txid) -> Result<TxStatus, ChainError> {
        self.count();
        let tx = self
            .client
            .get_tx_info(&txid)
            .await
            .map_err(|e| map_err(format!("tx {txid}"), e))?;
        Ok(tx.map_or(TxStatus::Unknown, |t| tx_status(&t.status)))
    }

    async fn merkle_block(&self, txid: Txid) -> Result<Option<MerkleBlock>, ChainError> {
        self.count();
        self.client
            .get_merkle_block(&txid)
            .await
            .map_err(|e| map_err(format!("merkle block of {txid}"), e))
    }

    async fn outspend(&self, outpoint: OutPoint) -> Result<Option<Spend>, ChainError> {
        self.count();
        let what = format!("outspend {outpoint}");
        let status = self
            .client
            .get_output_status(&outpoint.txid, u64::from(outpoint.vout))
            .await
            .map_err(|e| map_err(what.clone(), e))?;
        match status {
            Some(s) if s.spent => {
                let (Some(txid), Some(vin)) = (s.txid, s.vin) else {
                    return Err(ChainError::InvalidResponse {
                        what,
                        reason: "spent without a txid and vin".into(),
                    });
                };
                let vin = u32::try_from(vin).map_err(|_| ChainError::InvalidResponse {
                    what: what.clone(),
                    reason: format!("input index {vin} out of range"),
                })?;
                Ok(Some(Spend {
                    txid,
                    vin,
                    confirmed: s.status.as_ref().and_then(confirmation),
                }))
            }
            _ => Ok(None),
        }
    }

    async fn script_txs(&self, script: ScriptBuf) -> Result<Vec<ScriptTx>, ChainError> {
        self.count();
        let txs = self
            .client
            .scripthash_txs(&script, None)
            .await
            .map_err(|e| map_err(format!("script history {script}"), e))?;
        Ok(txs
            .iter()
            .map(|t| ScriptTx {
                tx: t.to_tx(),
                status: tx_status(&t.status),
            })
            .collect())
    }

    async fn script_txs_after(
        &self,
        script: ScriptBuf,
        last_seen: Txid,
    ) -> Result<Vec<ScriptTx>, ChainError> {
        self.count();
        let txs = self
            .client
            .scripthash_txs(&script, Some(last_seen))
            .await
            .map_err(|e| map_err(format!("script history {script} after {last_seen}"), e))?;
        Ok(txs
            .iter()
            .map(|t| ScriptTx {
                tx: t.to_tx(),
                status: tx_status(&t.status),
            })
            .collect())
    }

    async fn block_hash_at(&self, height: u32) -> Result<Option<BlockHash>, ChainError> {
        self.count();
        match self.client.get_block_hash(height).await {
            Ok(hash) => Ok(Some(hash)),
            Err(esplora_client::Error::HttpResponse { status: 404, .. }) => Ok(None),
            Err(e) => Err(map_err(format!("block at height {height}"), e)),
        }
    }

    async fn raw_tx(&self, txid: Txid) -> Result<Option<Transaction>, ChainError> {
        self.count();
        self.client
            .get_tx(&txid)
            .await
            .map_err(|e| map_err(format!("raw tx {txid}"), e))
    }

    async fn broadcast(&self, tx: Transaction) -> Result<(), ChainError> {
        self.count();
        let txid = tx.compute_txid();
        match self.client.broadcast(&tx).await {
            Ok(()) => Ok(()),
            // Bitcoin Core's words for a transaction it already has.
            Err(esplora_client::Error::HttpResponse { message, .. })
                if message.contains("already in block chain")
                    || message.contains("txn-already-known")
                    || message.contains("txn-already-in-mempool") =>
            {
                Ok(())
            }
            Err(esplora_client::Error::HttpResponse {
                status: 400,
                message,
            }) => Err(ChainError::BroadcastRefused {
                txid,
                reason: message,
            }),
            Err(e) => Err(map_err(format!("broadcast {txid}"), e)),
        }
    }

    async fn fee_estimates(&self) -> Result<BTreeMap<u16, f64>, ChainError> {
        self.count();
        let fees = self
            .client
            .get_fee_estimates()
            .await
            .map_err(|e| map_err("fee estimates", e))?;
        Ok(fees.into_iter().collect())
    }
}
