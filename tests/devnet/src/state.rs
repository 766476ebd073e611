//! The devnet's mutable state behind one lock: chain + mempool, relay policy, faucet, fee
//! estimates and optional persistence to a data directory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::{Block, BlockHash, ScriptBuf, Transaction, Txid};
use serde::{Deserialize, Serialize};

use crate::chain::{ChainState, StoredBlock};
use crate::faucet::Faucet;
use crate::mempool::Policy;
use crate::DevnetError;

const STATE_FILE: &str = "devnet.json";
const STATE_VERSION: u32 = 1;

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn now32() -> u32 {
    u32::try_from(now()).unwrap_or(u32::MAX)
}

/// What a reorg did.
#[derive(Debug, Clone, Serialize)]
pub struct ReorgOutcome {
    /// Blocks that left the best chain, oldest first.
    pub disconnected: Vec<BlockHash>,
    /// The new blocks, oldest first.
    pub hashes: Vec<BlockHash>,
    /// Transactions of the disconnected blocks that are back in the mempool.
    pub returned_to_mempool: Vec<Txid>,
    /// Transactions that could not return (no longer valid), with the reason.
    pub dropped: Vec<(Txid, String)>,
}

/// Everything mutable.
#[derive(Debug)]
pub struct Inner {
    /// Chain and mempool.
    pub chain: ChainState,
    /// Relay policy.
    pub policy: Policy,
    /// The faucet.
    pub faucet: Faucet,
    /// `/fee-estimates`: confirmation target (blocks) -> sat/vB.
    pub fee_estimates: BTreeMap<u16, f64>,
    data_dir: Option<PathBuf>,
}

/// Bitcoin Core-like defaults for `/fee-estimates`.
pub fn default_fee_estimates() -> BTreeMap<u16, f64> {
    BTreeMap::from([
        (1, 25.0),
        (2, 20.0),
        (3, 15.0),
        (6, 10.0),
        (12, 5.0),
        (25, 3.0),
        (144, 2.0),
        (504, 1.0),
        (1008, 1.0),
    ])
}

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    blocks: Vec<String>,
    stale: Vec<String>,
    mempool: Vec<String>,
    fee_estimates: BTreeMap<u16, f64>,
    extra_nonce: u64,
}

impl Inner {
    /// Loads the state from `data_dir` when it holds one, otherwise starts a chain and mines
    /// `initial_blocks` to the faucet.
    pub fn open(
        data_dir: Option<PathBuf>,
        policy: Policy,
        initial_blocks: u32,
    ) -> Result<Self, DevnetError> {
        let mut inner = Inner {
            chain: ChainState::new(),
            policy,
            faucet: Faucet::new(),
            fee_estimates: default_fee_estimates(),
            data_dir,
        };
        if let Some(dir) = inner.data_dir.clone() {
            std::fs::create_dir_all(&dir)
                .map_err(|e| DevnetError::DataDir(format!("{}: {e}", dir.display())))?;
            let file = dir.join(STATE_FILE);
            if file.exists() {
                inner.load(&file)?;
                return Ok(inner);
            }
        }
        inner.mine(initial_blocks, None);
        Ok(inner)
    }

    fn load(&mut self, file: &std::path::Path) -> Result<(), DevnetError> {
        let bad = |why: String| DevnetError::DataDir(format!("{}: {why}", file.display()));
        let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
        let saved: Saved = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if saved.version != STATE_VERSION {
            return Err(bad(format!("unknown state version {}", saved.version)));
        }
        for hex in saved.blocks.iter().skip(1) {
            let block: Block = deserialize_hex(hex).map_err(|e| bad(e.to_string()))?;
            if block.header.prev_blockhash != self.chain.tip_hash() {
                return Err(bad("saved blocks do not form a chain".into()));
            }
            self.chain.connect_block(block);
        }
        for hex in &saved.stale {
            let block: Block = deserialize_hex(hex).map_err(|e| bad(e.to_string()))?;
            let height = self
                .chain
                .blocks
                .get(&block.header.prev_blockhash)
                .map(|p| p.height + 1)
                .ok_or_else(|| bad("a stale block's parent is unknown".into()))?;
            for tx in &block.txdata {
                self.chain.txs.insert(tx.compute_txid(), tx.clone());
            }
            self.chain
                .blocks
                .insert(block.block_hash(), StoredBlock { block, height });
        }
        for hex in &saved.mempool {
            let tx: Transaction = deserialize_hex(hex).map_err(|e| bad(e.to_string()))?;
            if let Err(why) = self.chain.accept(tx, &self.policy) {
                tracing::warn!("saved mempool transaction no longer valid: {why}");
            }
        }
        self.fee_estimates = saved.fee_estimates;
        self.chain.extra_nonce = saved.extra_nonce;
        Ok(())
    }

    /// Writes the state to the data dir, if any (write to a temporary file, then rename).
    pub fn save(&self) {
        let Some(dir) = &self.data_dir else { return };
        let chain = &self.chain;
        let blocks: Vec<String> = chain
            .best
            .iter()
            .map(|h| serialize_hex(&chain.blocks[h].block))
            .collect();
        let mut stale: Vec<&StoredBlock> = chain
            .blocks
            .iter()
            .filter(|(h, _)| !chain.in_best_chain(h))
            .map(|(_, b)| b)
            .collect();
        stale.sort_by_key(|b| b.height);
        let saved = Saved {
            version: STATE_VERSION,
            blocks,
            stale: stale.iter().map(|b| serialize_hex(&b.block)).collect(),
            mempool: chain
                .mempool
                .txs_in_order()
                .iter()
                .map(serialize_hex)
                .collect(),
            fee_estimates: self.fee_estimates.clone(),
            extra_nonce: chain.extra_nonce,
        };
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let result = serde_json::to_vec(&saved)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, dir.join(STATE_FILE)));
        if let Err(e) = result {
            tracing::warn!("could not save the devnet state to {}: {e}", dir.display());
        }
    }

    /// Mines `n` blocks holding the whole mempool, paying to `script` (the faucet by default).
    pub fn mine(&mut self, n: u32, script: Option<ScriptBuf>) -> Vec<BlockHash> {
        let script = script.unwrap_or_else(|| self.faucet.script.clone());
        let hashes = (0..n)
            .map(|_| {
                let txs = self.chain.mempool.txs_in_order();
                self.chain.mine_block(&script, txs, now32())
            })
            .collect();
        self.save();
        hashes
    }

    /// Validates and accepts a transaction into the mempool.
    pub fn broadcast(&mut self, tx: Transaction) -> Result<Txid, String> {
        let result = self.chain.accept(tx, &self.policy);
        if result.is_ok() {
            self.save();
        }
        result
    }

    /// Pays `amount` from the faucet to `script`.
    pub fn faucet_pay(
        &mut self,
        script: ScriptBuf,
        amount: bitcoin::Amount,
    ) -> Result<Txid, String> {
        let result = self
            .faucet
            .pay(&mut self.chain, &self.policy, script, amount);
        if result.is_ok() {
            self.save();
        }
        result
    }

    /// Disconnects `depth` blocks, mines `new_blocks` empty ones, and returns the disconnected
    /// transactions (then the old mempool) to the mempool where they are still valid.
    pub fn reorg(&mut self, depth: u32, new_blocks: u32) -> Result<ReorgOutcome, String> {
        let tip = self.chain.tip_height();
        if depth == 0 || depth > tip {
            return Err(format!(
                "depth must be between 1 and the tip height {tip}, not {depth}"
            ));
        }
        let disconnected = self.chain.best[(tip + 1 - depth) as usize..].to_vec();
        let returned = self.chain.disconnect(depth);
        let old_mempool = std::mem::take(&mut self.chain.mempool).txs_in_order();
        let script = self.faucet.script.clone();
        let hashes = (0..new_blocks)
            .map(|_| self.chain.mine_block(&script, vec![], now32()))
            .collect();
        let mut outcome = ReorgOutcome {
            disconnected,
            hashes,
            returned_to_mempool: vec![],
            dropped: vec![],
        };
        let returned_count = returned.len();
        for (i, tx) in returned.into_iter().chain(old_mempool).enumerate() {
            let txid = tx.compute_txid();
            match self.chain.accept(tx, &self.policy) {
                Ok(txid) if i < returned_count => outcome.returned_to_mempool.push(txid),
                Ok(_) => {}
                Err(why) => outcome.dropped.push((txid, why)),
            }
        }
        self.save();
        Ok(outcome)
    }

    /// Removes a mempool transaction and its descendants.
    pub fn drop_mempool_tx(&mut self, txid: &Txid) -> Result<Vec<Txid>, String> {
        if !self.chain.mempool.entries.contains_key(txid) {
            return Err(format!("transaction {txid} is not in the mempool"));
        }
        let dropped = self.chain.mempool.remove_with_descendants(txid);
        self.save();
        Ok(dropped)
    }

    /// Replaces the fee estimates.
    pub fn set_fee_estimates(&mut self, estimates: BTreeMap<u16, f64>) {
        self.fee_estimates = estimates;
        self.save();
    }
}
