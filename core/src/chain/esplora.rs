//! [`ChainSource`] over Esplora, on `esplora-client`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::block::Header;
use bitcoin::{BlockHash, MerkleBlock, OutPoint, ScriptBuf, Transaction, Txid};
use esplora_client::{AsyncClient, Builder};

use super::http::{Answer, Clock, Http};
use super::{
    BlockStatus, ChainError, ChainSource, Confirmation, ScriptTx, Spend, Traffic, TxStatus,
};

/// How to reach an Esplora server.
#[derive(Debug, Clone)]
pub struct EsploraConfig {
    /// Base URL without a trailing slash, e.g. `https://blockstream.info/api`.
    pub url: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries of a 429/500/502/503/504 answer within one request (Tern's own, counted:
    /// after 256 ms, doubling, or after a `Retry-After` of at most 1 s).
    pub max_retries: usize,
    /// Largest response body read; a longer one fails the request (never read whole).
    pub max_body_bytes: usize,
    /// Backoff across requests after the second failed request in a row (doubling).
    pub backoff_base: Duration,
    /// Longest backoff without a `Retry-After`.
    pub backoff_max: Duration,
    /// Longest `Retry-After` honoured.
    pub retry_after_max: Duration,
}

/// Default cap of a response body: far above any header, proof, transaction or 25-tx page
/// of a script's history Tern asks for.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

impl EsploraConfig {
    /// Defaults for a phone: 10 s per request, 2 retries (≈ 0.8 s of backoff at most), 4 MiB
    /// bodies, backoff from 2 s to 10 min, `Retry-After` honoured up to 1 h.
    pub fn new(url: impl Into<String>) -> Self {
        EsploraConfig {
            url: url.into().trim_end_matches('/').to_string(),
            timeout: Duration::from_secs(10),
            max_retries: 2,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(600),
            retry_after_max: Duration::from_secs(3600),
        }
    }
}

/// An Esplora server as a [`ChainSource`]. Cheap to clone; clones share the counters and the
/// backoff ([`super::http`]).
#[derive(Debug, Clone)]
pub struct EsploraSource {
    client: AsyncClient,
    http: Arc<Http>,
}

fn invalid(what: &str, reason: impl std::fmt::Display) -> ChainError {
    ChainError::InvalidResponse {
        what: what.to_string(),
        reason: reason.to_string(),
    }
}

fn http_error(what: &str, answer: &Answer) -> ChainError {
    let mut message = answer.text();
    message.truncate(200);
    ChainError::Http {
        status: answer.status,
        what: what.to_string(),
        message,
    }
}

/// The body of a 200 answer; `None` for a 404; an error for any other status.
fn ok_body(what: &str, answer: Answer) -> Result<Option<Answer>, ChainError> {
    match answer.status {
        200..=299 => Ok(Some(answer)),
        404 => Ok(None),
        _ => Err(http_error(what, &answer)),
    }
}

fn required(what: &str, answer: Answer) -> Result<Answer, ChainError> {
    ok_body(what, answer)?.ok_or_else(|| ChainError::Http {
        status: 404,
        what: what.to_string(),
        message: "not found".into(),
    })
}

fn json<T: serde::de::DeserializeOwned>(what: &str, answer: &Answer) -> Result<T, ChainError> {
    serde_json::from_slice(&answer.body).map_err(|e| invalid(what, e))
}

fn hex<T: bitcoin::consensus::Decodable>(what: &str, answer: &Answer) -> Result<T, ChainError> {
    bitcoin::consensus::encode::deserialize_hex(&answer.text()).map_err(|e| invalid(what, e))
}

fn parsed<T: std::str::FromStr>(what: &str, answer: &Answer) -> Result<T, ChainError>
where
    T::Err: std::fmt::Display,
{
    answer.text().parse().map_err(|e| invalid(what, e))
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
        Self::with_clock(config, Arc::new(Instant::now))
    }

    /// A client for `config` whose backoff reads `clock` (tests move time by hand).
    pub fn with_clock(config: &EsploraConfig, clock: Clock) -> Result<Self, ChainError> {
        // esplora-client's own retries are off: Tern retries, counts and backs off itself.
        let builder = Builder::new(&config.url)
            .timeout(config.timeout.as_secs().max(1))
            .max_retries(0);
        let client = AsyncClient::from_builder(builder).map_err(|e| invalid("client", e))?;
        let http = Arc::new(Http::new(client.client().clone(), config, clock));
        Ok(EsploraSource { client, http })
    }

    /// The underlying esplora-client (Tern's requests go through its inner HTTP client).
    pub fn client(&self) -> &AsyncClient {
        &self.client
    }

    /// HTTP requests sent through this source and its clones, every retry included.
    pub fn requests(&self) -> usize {
        usize::try_from(self.http.requests()).unwrap_or(usize::MAX)
    }

    /// Response body bytes received through this source and its clones.
    pub fn http_bytes(&self) -> u64 {
        self.http.bytes()
    }

    /// How long the server stays closed by the backoff, if it is.
    pub fn backing_off_for(&self) -> Option<Duration> {
        self.http.closed_for()
    }
}

impl ChainSource for EsploraSource {
    fn traffic(&self) -> Option<Traffic> {
        Some(Traffic {
            requests: self.http.requests(),
            bytes: self.http.bytes(),
        })
    }

    async fn tip_hash(&self) -> Result<BlockHash, ChainError> {
        let what = "tip hash";
        let answer = required(what, self.http.get(what, "/blocks/tip/hash").await?)?;
        parsed(what, &answer)
    }

    async fn header(&self, hash: BlockHash) -> Result<Header, ChainError> {
        let what = format!("header {hash}");
        let answer = self
            .http
            .get(&what, &format!("/block/{hash}/header"))
            .await?;
        hex(&what, &required(&what, answer)?)
    }

    async fn block_status(&self, hash: BlockHash) -> Result<BlockStatus, ChainError> {
        let what = format!("block status {hash}");
        let answer = self
            .http
            .get(&what, &format!("/block/{hash}/status"))
            .await?;
        let s: esplora_client::BlockStatus = json(&what, &required(&what, answer)?)?;
        Ok(BlockStatus {
            in_best_chain: s.in_best_chain,
            height: s.height,
        })
    }

    async fn tx_status(&self, txid: Txid) -> Result<TxStatus, ChainError> {
        let what = format!("tx {txid}");
        let answer = self.http.get(&what, &format!("/tx/{txid}")).await?;
        match ok_body(&what, answer)? {
            None => Ok(TxStatus::Unknown),
            Some(a) => {
                let tx: esplora_client::Tx = json(&what, &a)?;
                Ok(tx_status(&tx.status))
            }
        }
    }

    async fn merkle_block(&self, txid: Txid) -> Result<Option<MerkleBlock>, ChainError> {
        let what = format!("merkle block of {txid}");
        let path = format!("/tx/{txid}/merkleblock-proof");
        let answer = self.http.get(&what, &path).await?;
        ok_body(&what, answer)?.map(|a| hex(&what, &a)).transpose()
    }

    async fn outspend(&self, outpoint: OutPoint) -> Result<Option<Spend>, ChainError> {
        let what = format!("outspend {outpoint}");
        let path = format!("/tx/{}/outspend/{}", outpoint.txid, outpoint.vout);
        let answer = self.http.get(&what, &path).await?;
        let Some(answer) = ok_body(&what, answer)? else {
            return Ok(None);
        };
        let status: esplora_client::OutputStatus = json(&what, &answer)?;
        if !status.spent {
            return Ok(None);
        }
        let (Some(txid), Some(vin)) = (status.txid, status.vin) else {
            return Err(invalid(&what, "spent without a txid and vin"));
        };
        let vin = u32::try_from(vin)
            .map_err(|_| invalid(&what, format!("input index {vin} out of range")))?;
        Ok(Some(Spend {
            txid,
            vin,
            confirmed: status.status.as_ref().and_then(confirmation),
        }))
    }

    async fn script_txs(&self, script: ScriptBuf) -> Result<Vec<ScriptTx>, ChainError> {
        let what = format!("script history {script}");
        let path = format!("/scripthash/{}/txs", script_hash(&script));
        self.script_page(&what, &path).await
    }

    async fn script_txs_after(
        &self,
        script: ScriptBuf,
        last_seen: Txid,
    ) -> Result<Vec<ScriptTx>, ChainError> {
        let what = format!("script history {script} after {last_seen}");
        let path = format!("/scripthash/{}/txs/chain/{last_seen}", script_hash(&script));
        self.script_page(&what, &path).await
    }

    async fn block_hash_at(&self, height: u32) -> Result<Option<BlockHash>, ChainError> {
        let what = format!("block at height {height}");
        let answer = self
            .http
            .get(&what, &format!("/block-height/{height}"))
            .await?;
        ok_body(&what, answer)?
            .map(|a| parsed(&what, &a))
            .transpose()
    }

    async fn raw_tx(&self, txid: Txid) -> Result<Option<Transaction>, ChainError> {
        let what = format!("raw tx {txid}");
        let answer = self.http.get(&what, &format!("/tx/{txid}/raw")).await?;
        ok_body(&what, answer)?
            .map(|a| bitcoin::consensus::deserialize(&a.body).map_err(|e| invalid(&what, e)))
            .transpose()
    }

    async fn broadcast(&self, tx: Transaction) -> Result<(), ChainError> {
        let txid = tx.compute_txid();
        let what = format!("broadcast {txid}");
        let body = bitcoin::consensus::encode::serialize_hex(&tx);
        let answer = self.http.post(&what, "/tx", body).await?;
        if (200..300).contains(&answer.status) {
            return Ok(());
        }
        let message = answer.text();
        // Bitcoin Core's words for a transaction it already has.
        if message.contains("already in block chain")
            || message.contains("txn-already-known")
            || message.contains("txn-already-in-mempool")
        {
            return Ok(());
        }
        if answer.status == 400 {
            return Err(ChainError::BroadcastRefused {
                txid,
                reason: message,
            });
        }
        Err(http_error(&what, &answer))
    }

    async fn fee_estimates(&self) -> Result<BTreeMap<u16, f64>, ChainError> {
        let what = "fee estimates";
        let answer = required(what, self.http.get(what, "/fee-estimates").await?)?;
        json(what, &answer)
    }
}

impl EsploraSource {
    async fn script_page(&self, what: &str, path: &str) -> Result<Vec<ScriptTx>, ChainError> {
        let answer = required(what, self.http.get(what, path).await?)?;
        let txs: Vec<esplora_client::Tx> = json(what, &answer)?;
        Ok(txs
            .iter()
            .map(|t| ScriptTx {
                tx: t.to_tx(),
                status: tx_status(&t.status),
            })
            .collect())
    }
}

fn script_hash(script: &ScriptBuf) -> String {
    use bitcoin::hashes::{sha256, Hash};
    format!("{:x}", sha256::Hash::hash(script.as_bytes()))
}
