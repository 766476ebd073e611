//! The read side of the Esplora API in process, with plain types: what a test's in-memory
//! chain source asks of a [`DevChain`]. Each answer is the one the matching HTTP endpoint
//! gives (the same functions compute both), without JSON or a socket.

use std::collections::BTreeMap;

use bitcoin::block::Header;
use bitcoin::{BlockHash, MerkleBlock, OutPoint, Script, Transaction, Txid};

use crate::chain::{script_hash, ChainState};
use crate::esplora::{chain_page, known_tx, script_txs_page, spender};
use crate::http::lock;
use crate::DevChain;

/// Where a best-chain transaction confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirmed {
    /// Block height.
    pub height: u32,
    /// Block hash.
    pub block_hash: BlockHash,
    /// The block's timestamp.
    pub block_time: u32,
}

/// A transaction as `/tx/:txid` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// Neither in the best chain nor in the mempool (`/tx/:txid` answers 404).
    Unknown,
    /// In the mempool.
    Mempool,
    /// In the best chain.
    Confirmed(Confirmed),
}

/// A block as `/block/:hash/status` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockStatus {
    /// Whether it is in the best chain.
    pub in_best_chain: bool,
    /// Its height, when in the best chain.
    pub height: Option<u32>,
}

/// The spend of an outpoint (`/tx/:txid/outspend/:vout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outspend {
    /// The spending transaction.
    pub txid: Txid,
    /// Its input index.
    pub vin: u32,
    /// Where it confirmed, if it did.
    pub confirmed: Option<Confirmed>,
}

/// A transaction of a script's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptTx {
    /// The transaction.
    pub tx: Transaction,
    /// Where it confirmed (`None`: in the mempool).
    pub confirmed: Option<Confirmed>,
}

fn confirmed(chain: &ChainState, txid: &Txid) -> Option<Confirmed> {
    chain
        .confirmation(txid)
        .map(|(height, block_hash, block_time)| Confirmed {
            height,
            block_hash,
            block_time,
        })
}

impl DevChain {
    fn read<T>(&self, f: impl FnOnce(&ChainState) -> T) -> T {
        f(&lock(&self.shared.inner).chain)
    }

    /// `/blocks/tip/hash`.
    pub fn tip_hash(&self) -> BlockHash {
        self.read(|c| c.tip_hash())
    }

    /// `/block-height/:height`: the best chain's block at `height`.
    pub fn block_hash_at(&self, height: u32) -> Option<BlockHash> {
        self.read(|c| c.best.get(height as usize).copied())
    }

    /// `/block/:hash/header` (stale blocks too); `None` for an unknown block.
    pub fn header(&self, hash: &BlockHash) -> Option<Header> {
        self.read(|c| c.blocks.get(hash).map(|b| b.block.header))
    }

    /// `/block/:hash/status`; `None` for an unknown block.
    pub fn block_status(&self, hash: &BlockHash) -> Option<BlockStatus> {
        self.read(|c| {
            let b = c.blocks.get(hash)?;
            let in_best_chain = c.in_best_chain(hash);
            Some(BlockStatus {
                in_best_chain,
                height: in_best_chain.then_some(b.height),
            })
        })
    }

    /// `/tx/:txid`'s status.
    pub fn tx_status(&self, txid: &Txid) -> TxStatus {
        self.read(|c| match confirmed(c, txid) {
            Some(conf) => TxStatus::Confirmed(conf),
            None if c.mempool.entries.contains_key(txid) => TxStatus::Mempool,
            None => TxStatus::Unknown,
        })
    }

    /// `/tx/:txid/raw`: a best-chain or mempool transaction.
    pub fn raw_tx(&self, txid: &Txid) -> Option<Transaction> {
        self.read(|c| known_tx(c, txid).cloned())
    }

    /// `/tx/:txid/merkleblock-proof`: a BIP37 merkle block matching only `txid`, for a
    /// best-chain transaction.
    pub fn merkle_block(&self, txid: &Txid) -> Option<MerkleBlock> {
        self.read(|c| {
            let pos = c.confirmed.get(txid)?;
            let b = c.block_at(pos.height)?;
            Some(MerkleBlock::from_block_with_predicate(&b.block, |t| {
                t == txid
            }))
        })
    }

    /// `/tx/:txid/outspend/:vout`: `None` when unspent, or when the transaction or the output
    /// is unknown.
    pub fn outspend(&self, outpoint: &OutPoint) -> Option<Outspend> {
        self.read(|c| {
            let tx = known_tx(c, &outpoint.txid)?;
            if outpoint.vout as usize >= tx.output.len() {
                return None;
            }
            let (txid, vin) = spender(c, outpoint)?;
            Some(Outspend {
                txid,
                vin,
                confirmed: confirmed(c, &txid),
            })
        })
    }

    /// `/scripthash/:hash/txs`: up to 50 mempool transactions touching `script`, newest
    /// first, then its 25 newest confirmed ones.
    pub fn script_txs(&self, script: &Script) -> Vec<ScriptTx> {
        let sh = script_hash(script);
        self.read(|c| {
            script_txs_page(c, &sh)
                .into_iter()
                .map(|tx| ScriptTx {
                    tx: tx.clone(),
                    confirmed: confirmed(c, &tx.compute_txid()),
                })
                .collect()
        })
    }

    /// `/scripthash/:hash/txs/chain/:last_seen`: the 25 confirmed transactions touching
    /// `script` after `last_seen`, newest first.
    pub fn script_txs_after(&self, script: &Script, last_seen: &Txid) -> Vec<ScriptTx> {
        let sh = script_hash(script);
        self.read(|c| {
            chain_page(c, &sh, Some(last_seen))
                .into_iter()
                .map(|tx| ScriptTx {
                    tx: tx.clone(),
                    confirmed: confirmed(c, &tx.compute_txid()),
                })
                .collect()
        })
    }

    /// `/fee-estimates`: confirmation target in blocks -> sat/vB.
    pub fn fee_estimates(&self) -> BTreeMap<u16, f64> {
        lock(&self.shared.inner).fee_estimates.clone()
    }

    /// Replaces the fee estimates (as `POST /devnet/fee-estimates`).
    pub fn set_fee_estimates(&self, estimates: BTreeMap<u16, f64>) {
        lock(&self.shared.inner).set_fee_estimates(estimates);
    }
}
