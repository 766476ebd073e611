//! [`ChainSource`] over the devnet's own chain, in process: the devnet's validating chain and
//! mempool behind the trait the node syncs and broadcasts through, with no HTTP. Every answer
//! is the one the devnet's Esplora endpoint would give (the devnet computes both with the same
//! functions), mapped as `EsploraSource` maps the HTTP answer; broadcasts go through the
//! devnet mempool's acceptance rules, so a transaction Bitcoin Core would refuse is refused.
//!
//! It lives here, not in tern-devnet, because tern-devnet must not depend on tern-core (the
//! test binaries would hold two copies of tern-core's types).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bitcoin::block::Header;
use bitcoin::{BlockHash, MerkleBlock, OutPoint, ScriptBuf, Transaction, Txid};
use tern_core::chain::{
    BlockStatus, ChainError, ChainSource, Confirmation, ScriptTx, Spend, TxStatus,
};
use tern_devnet::DevChain;

/// The devnet's chain as a chain source. Cheap to clone (clones share the request log).
#[derive(Debug, Clone)]
pub struct DevnetSource {
    chain: DevChain,
    /// The kind of every request answered, in order (the Esplora endpoint's short name).
    log: Arc<Mutex<Vec<&'static str>>>,
    /// Every transaction posted, accepted or not.
    posted: Arc<Mutex<Vec<Transaction>>>,
}

fn confirmation(c: tern_devnet::Confirmed) -> Confirmation {
    Confirmation {
        height: c.height,
        block_hash: c.block_hash,
        block_time: u64::from(c.block_time),
    }
}

fn script_tx(t: tern_devnet::ScriptTx) -> ScriptTx {
    ScriptTx {
        tx: t.tx,
        status: t.confirmed.map_or(TxStatus::Unconfirmed, |c| {
            TxStatus::Confirmed(confirmation(c))
        }),
    }
}

/// What `EsploraSource` returns for a 404 on an endpoint that must answer.
fn not_found(what: String, message: &str) -> ChainError {
    ChainError::Http {
        status: 404,
        what,
        message: message.into(),
    }
}

impl DevnetSource {
    /// A source over `chain`.
    pub fn new(chain: DevChain) -> Self {
        DevnetSource {
            chain,
            log: Arc::new(Mutex::new(Vec::new())),
            posted: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.log.lock().expect("log").len()
    }

    /// The kinds of the requests answered since the first `from` (as [`Self::requests`]
    /// counted them), to say which requests a budget is made of.
    pub fn requests_since(&self, from: usize) -> Vec<&'static str> {
        self.log.lock().expect("log")[from..].to_vec()
    }

    /// Every transaction posted through this source so far, accepted or not.
    pub fn posted(&self) -> Vec<Transaction> {
        self.posted.lock().expect("posted").clone()
    }

    fn count(&self, kind: &'static str) -> &DevChain {
        self.log.lock().expect("log").push(kind);
        &self.chain
    }
}

impl ChainSource for DevnetSource {
    async fn tip_hash(&self) -> Result<BlockHash, ChainError> {
        Ok(self.count("tip_hash").tip_hash())
    }

    async fn header(&self, hash: BlockHash) -> Result<Header, ChainError> {
        self.count("header")
            .header(&hash)
            .ok_or_else(|| not_found(format!("header {hash}"), "Block not found"))
    }

    async fn block_status(&self, hash: BlockHash) -> Result<BlockStatus, ChainError> {
        let s = self
            .count("block_status")
            .block_status(&hash)
            .ok_or_else(|| not_found(format!("block status {hash}"), "Block not found"))?;
        Ok(BlockStatus {
            in_best_chain: s.in_best_chain,
            height: s.height,
        })
    }

    async fn tx_status(&self, txid: Txid) -> Result<TxStatus, ChainError> {
        Ok(match self.count("tx_status").tx_status(&txid) {
            tern_devnet::TxStatus::Unknown => TxStatus::Unknown,
            tern_devnet::TxStatus::Mempool => TxStatus::Unconfirmed,
            tern_devnet::TxStatus::Confirmed(c) => TxStatus::Confirmed(confirmation(c)),
        })
    }

    async fn merkle_block(&self, txid: Txid) -> Result<Option<MerkleBlock>, ChainError> {
        Ok(self.count("merkle_block").merkle_block(&txid))
    }

    async fn outspend(&self, outpoint: OutPoint) -> Result<Option<Spend>, ChainError> {
        Ok(self.count("outspend").outspend(&outpoint).map(|s| Spend {
            txid: s.txid,
            vin: s.vin,
            confirmed: s.confirmed.map(confirmation),
        }))
    }

    async fn script_txs(&self, script: ScriptBuf) -> Result<Vec<ScriptTx>, ChainError> {
        Ok(self
            .count("script_txs")
            .script_txs(&script)
            .into_iter()
            .map(|t| ScriptTx {
                tx: t.tx,
                status: t.confirmed.map_or(TxStatus::Unconfirmed, |c| {
                    TxStatus::Confirmed(confirmation(c))
                }),
            })
            .collect())
    }

    async fn script_txs_after(
        &self,
        script: ScriptBuf,
        last_seen: Txid,
    ) -> Result<Vec<ScriptTx>, ChainError> {
        Ok(self
            .count("script_txs_after")
            .script_txs_after(&script, &last_seen)
            .into_iter()
            .map(script_tx)
            .collect())
    }

    async fn block_hash_at(&self, height: u32) -> Result<Option<BlockHash>, ChainError> {
        Ok(self.count("block_hash_at").block_hash_at(height))
    }

    async fn raw_tx(&self, txid: Txid) -> Result<Option<Transaction>, ChainError> {
        Ok(self.count("raw_tx").raw_tx(&txid))
    }

    async fn broadcast(&self, tx: Transaction) -> Result<(), ChainError> {
        let txid = tx.compute_txid();
        self.posted.lock().expect("posted").push(tx.clone());
        // The devnet accepts a transaction it already has, as `EsploraSource` treats Core's
        // "already known" answers; anything else refused is refused here too.
        self.count("broadcast")
            .broadcast(&tx)
            .map(|_| ())
            .map_err(|reason| ChainError::BroadcastRefused { txid, reason })
    }

    async fn fee_estimates(&self) -> Result<BTreeMap<u16, f64>, ChainError> {
        Ok(self.count("fee_estimates").fee_estimates())
    }
}

/// Sets up a lie about a header over HTTP: `node` (synced after a block paying it) and a new
/// tip; returns the header of the block before (what a liar serves for the new tip's header)
/// and the new tip's hash.
pub async fn header_of_another_block(
    devnet: &tern_devnet::Devnet,
    node: &tern_core::node::Node,
) -> (Header, BlockHash) {
    use tern_core::chain::{EsploraConfig, EsploraSource};
    let address = node.new_address().await.expect("address");
    devnet
        .faucet(&address, bitcoin::Amount::from_sat(100_000))
        .expect("faucet");
    let old = devnet.mine(1)[0];
    node.sync(None).await.expect("sync");
    let esplora = EsploraSource::new(&EsploraConfig::new(devnet.base_url())).expect("client");
    let old_header = esplora.header(old).await.expect("header");
    (old_header, devnet.mine(1)[0])
}
