//! The block chain: blocks (best and stale), the UTXO set and the indexes the Esplora API reads.
//!
//! Blocks are connected incrementally; a reorg truncates the best chain and rebuilds every index
//! by replaying the remaining blocks (chains here are small, so simplicity wins over undo data).

use std::collections::HashMap;

use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::{
    absolute, transaction, Amount, Block, BlockHash, CompactTarget, OutPoint, Script, ScriptBuf,
    Sequence, Target, Transaction, TxIn, TxMerkleNode, TxOut, Txid, Witness,
};

use crate::mempool::Mempool;

/// Regtest's proof-of-work limit, as compact bits.
pub const REGTEST_BITS: u32 = 0x207f_ffff;
/// Blocks between subsidy halvings on regtest.
pub const HALVING_INTERVAL: u32 = 150;
/// Confirmations a coinbase output needs before it can be spent (consensus).
pub const COINBASE_MATURITY: u32 = 100;

/// An unspent output with what validation needs to know about it.
#[derive(Debug, Clone)]
pub struct Coin {
    /// The output itself.
    pub txout: TxOut,
    /// Height of the block that created it (`tip + 1` for a mempool output).
    pub height: u32,
    /// Whether it was created by a coinbase (maturity applies).
    pub is_coinbase: bool,
}

/// A block with its height; kept after it leaves the best chain so `/block/:hash/status` answers.
#[derive(Debug, Clone)]
pub struct StoredBlock {
    /// The block.
    pub block: Block,
    /// Its height.
    pub height: u32,
}

/// Where a confirmed transaction sits in the best chain.
#[derive(Debug, Clone, Copy)]
pub struct TxPos {
    /// Block height.
    pub height: u32,
    /// Index inside the block.
    pub index: usize,
}

/// The chain, the mempool and every index over them.
#[derive(Debug)]
pub struct ChainState {
    /// Every block ever connected, best or stale.
    pub blocks: HashMap<BlockHash, StoredBlock>,
    /// The best chain, by height.
    pub best: Vec<BlockHash>,
    /// The UTXO set of the best chain.
    pub utxos: HashMap<OutPoint, Coin>,
    /// Confirmed transactions of the best chain.
    pub confirmed: HashMap<Txid, TxPos>,
    /// Confirmed spends of the best chain: outpoint -> (spending txid, input index).
    pub spends: HashMap<OutPoint, (Txid, u32)>,
    /// Confirmed history per script hash (sha256 of the script), oldest first.
    pub history: HashMap<sha256::Hash, Vec<Txid>>,
    /// Every transaction ever seen (blocks and mempool); used to resolve prevouts.
    pub txs: HashMap<Txid, Transaction>,
    /// Unconfirmed transactions.
    pub mempool: Mempool,
    /// Makes every coinbase unique, so a reorg's replacement blocks never equal the old ones.
    pub extra_nonce: u64,
}

/// Block subsidy at `height` on regtest.
pub fn subsidy(height: u32) -> Amount {
    let halvings = height / HALVING_INTERVAL;
    if halvings >= 64 {
        return Amount::ZERO;
    }
    Amount::from_sat((50 * 100_000_000u64) >> halvings)
}

/// The script hash Esplora uses in `/scripthash/:hash`: sha256 of the script, natural order.
pub fn script_hash(script: &Script) -> sha256::Hash {
    sha256::Hash::hash(script.as_bytes())
}

impl ChainState {
    /// A chain holding only the regtest genesis block.
    pub fn new() -> Self {
        let mut state = ChainState {
            blocks: HashMap::new(),
            best: Vec::new(),
            utxos: HashMap::new(),
            confirmed: HashMap::new(),
            spends: HashMap::new(),
            history: HashMap::new(),
            txs: HashMap::new(),
            mempool: Mempool::default(),
            extra_nonce: 0,
        };
        let genesis = bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Regtest);
        state.connect_block(genesis);
        state
    }

    /// Height of the best tip.
    pub fn tip_height(&self) -> u32 {
        (self.best.len() - 1) as u32
    }

    /// Hash of the best tip.
    pub fn tip_hash(&self) -> BlockHash {
        *self.best.last().expect("the chain always holds genesis")
    }

    /// The best-chain block at `height`.
    pub fn block_at(&self, height: u32) -> Option<&StoredBlock> {
        self.best
            .get(height as usize)
            .and_then(|h| self.blocks.get(h))
    }

    /// Whether `hash` is in the best chain.
    pub fn in_best_chain(&self, hash: &BlockHash) -> bool {
        self.blocks
            .get(hash)
            .is_some_and(|b| self.best.get(b.height as usize) == Some(hash))
    }

    /// Median time past of the best-chain block at `height` (median of the last 11 timestamps).
    pub fn median_time_past(&self, height: u32) -> u32 {
        let start = height.saturating_sub(10);
        let mut times: Vec<u32> = (start..=height)
            .filter_map(|h| self.block_at(h).map(|b| b.block.header.time))
            .collect();
        times.sort_unstable();
        times.get(times.len() / 2).copied().unwrap_or(0)
    }

    /// The previous output spent by an input, from any transaction ever seen.
    pub fn prevout(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        self.txs
            .get(&outpoint.txid)
            .and_then(|tx| tx.output.get(outpoint.vout as usize))
    }

    /// Fee paid by a non-coinbase transaction whose prevouts are known.
    pub fn fee_of(&self, tx: &Transaction) -> Amount {
        if tx.is_coinbase() {
            return Amount::ZERO;
        }
        let inputs: Amount = tx
            .input
            .iter()
            .filter_map(|i| self.prevout(&i.previous_output).map(|o| o.value))
            .sum();
        let outputs: Amount = tx.output.iter().map(|o| o.value).sum();
        inputs.checked_sub(outputs).unwrap_or(Amount::ZERO)
    }

    /// Scripts a transaction touches: its outputs and the outputs its inputs spend.
    pub fn touched_scripts(&self, tx: &Transaction) -> Vec<sha256::Hash> {
        let mut out: Vec<sha256::Hash> = Vec::new();
        let mut push = |h: sha256::Hash| {
            if !out.contains(&h) {
                out.push(h)
            }
        };
        if !tx.is_coinbase() {
            for input in &tx.input {
                if let Some(prev) = self.prevout(&input.previous_output) {
                    push(script_hash(&prev.script_pubkey));
                }
            }
        }
        for output in &tx.output {
            push(script_hash(&output.script_pubkey));
        }
        out
    }

    /// Appends `block` to the best chain and updates every index. The caller has validated it.
    pub fn connect_block(&mut self, block: Block) -> BlockHash {
        let hash = block.block_hash();
        let height = self.best.len() as u32;
        for (index, tx) in block.txdata.iter().enumerate() {
            let txid = tx.compute_txid();
            self.txs.insert(txid, tx.clone());
            let is_coinbase = tx.is_coinbase();
            if !is_coinbase {
                for (vin, input) in tx.input.iter().enumerate() {
                    self.utxos.remove(&input.previous_output);
                    self.spends
                        .insert(input.previous_output, (txid, vin as u32));
                }
            }
            for (vout, output) in tx.output.iter().enumerate() {
                if output.script_pubkey.is_op_return() {
                    continue;
                }
                self.utxos.insert(
                    OutPoint::new(txid, vout as u32),
                    Coin {
                        txout: output.clone(),
                        height,
                        is_coinbase,
                    },
                );
            }
            for sh in self.touched_scripts(tx) {
                self.history.entry(sh).or_default().push(txid);
            }
            self.confirmed.insert(txid, TxPos { height, index });
            // A confirmed transaction leaves the mempool, and so does anything it conflicts with.
            self.mempool.remove_confirmed(tx, txid);
        }
        self.blocks.insert(hash, StoredBlock { block, height });
        self.best.push(hash);
        hash
    }

    /// Disconnects the top `depth` blocks; returns their non-coinbase transactions, oldest first.
    /// Indexes are rebuilt from genesis; the mempool is left to the caller.
    pub fn disconnect(&mut self, depth: u32) -> Vec<Transaction> {
        let keep = self.best.len() - depth as usize;
        let removed: Vec<BlockHash> = self.best.split_off(keep);
        let mut returned = Vec::new();
        for hash in &removed {
            if let Some(stored) = self.blocks.get(hash) {
                returned.extend(stored.block.txdata.iter().skip(1).cloned());
            }
        }
        let best = std::mem::take(&mut self.best);
        self.utxos.clear();
        self.confirmed.clear();
        self.spends.clear();
        self.history.clear();
        let mempool = std::mem::take(&mut self.mempool);
        for hash in best {
            let block = self
                .blocks
                .remove(&hash)
                .expect("best-chain blocks are stored")
                .block;
            self.connect_block(block);
        }
        self.mempool = mempool;
        returned
    }

    /// Builds, solves and connects a block on the tip holding `txs` (already validated against
    /// the next block), paying subsidy and fees to `script`.
    pub fn mine_block(&mut self, script: &Script, txs: Vec<Transaction>, now: u32) -> BlockHash {
        let height = self.tip_height() + 1;
        let fees: Amount = txs.iter().map(|tx| self.fee_of(tx)).sum();
        self.extra_nonce += 1;
        let script_sig = bitcoin::script::Builder::new()
            .push_int(i64::from(height))
            .push_slice(self.extra_nonce.to_le_bytes())
            .into_script();
        let mut coinbase = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig,
                sequence: Sequence::MAX,
                witness: Witness::from_slice(&[[0u8; 32]]),
            }],
            output: vec![TxOut {
                value: subsidy(height) + fees,
                script_pubkey: script.into(),
            }],
        };
        let mut txdata = vec![coinbase.clone()];
        txdata.extend(txs);
        // BIP141 witness commitment, as Bitcoin Core always adds it.
        let probe = Block {
            header: self.header_template(now),
            txdata: txdata.clone(),
        };
        if let Some(witness_root) = probe.witness_root() {
            let commitment = Block::compute_witness_commitment(&witness_root, &[0u8; 32]);
            let mut bytes = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
            bytes.extend_from_slice(commitment.as_byte_array());
            coinbase.output.push(TxOut {
                value: Amount::ZERO,
                script_pubkey: ScriptBuf::from_bytes(bytes),
            });
            txdata[0] = coinbase;
        }
        let mut block = Block {
            header: self.header_template(now),
            txdata,
        };
        block.header.merkle_root = block
            .compute_merkle_root()
            .expect("a block with a coinbase has a merkle root");
        let target = Target::from_compact(CompactTarget::from_consensus(REGTEST_BITS));
        while block.header.validate_pow(target).is_err() {
            block.header.nonce = block.header.nonce.wrapping_add(1);
        }
        self.connect_block(block)
    }

    fn header_template(&self, now: u32) -> Header {
        let tip = self.tip_height();
        Header {
            version: BlockVersion::from_consensus(0x2000_0000),
            prev_blockhash: self.tip_hash(),
            merkle_root: TxMerkleNode::all_zeros(),
            time: now.max(self.median_time_past(tip) + 1),
            bits: CompactTarget::from_consensus(REGTEST_BITS),
            nonce: 0,
        }
    }

    /// Status of a confirmed (best-chain) transaction: height, block hash, block time.
    pub fn confirmation(&self, txid: &Txid) -> Option<(u32, BlockHash, u32)> {
        let pos = self.confirmed.get(txid)?;
        let block = self.block_at(pos.height)?;
        Some((
            pos.height,
            self.best[pos.height as usize],
            block.block.header.time,
        ))
    }
}

impl Default for ChainState {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mined_blocks_are_genuine() {
        let mut chain = ChainState::new();
        let script = ScriptBuf::new_op_return([1u8; 4]);
        // Like Bitcoin Core, heights 1..=16 are pushed as OP_1..OP_16, which rust-bitcoin's
        // `bip34_block_height` does not parse; check a height above that.
        let mut hash = chain.tip_hash();
        for _ in 0..17 {
            hash = chain.mine_block(&script, vec![], 1_700_000_000);
        }
        let block = &chain.blocks[&hash].block;
        assert_eq!(chain.tip_height(), 17);
        assert!(block.check_merkle_root());
        assert!(block.check_witness_commitment());
        assert_eq!(block.bip34_block_height().ok(), Some(17));
        assert!(block.header.validate_pow(block.header.target()).is_ok());
        assert_eq!(block.header.prev_blockhash, chain.best[16]);
    }

    #[test]
    fn disconnect_rebuilds_indexes() {
        let mut chain = ChainState::new();
        let script = ScriptBuf::new_op_return([1u8; 4]);
        for _ in 0..3 {
            chain.mine_block(&script, vec![], 1_700_000_000);
        }
        let old_tip = chain.tip_hash();
        chain.disconnect(2);
        assert_eq!(chain.tip_height(), 1);
        assert!(!chain.in_best_chain(&old_tip));
        assert!(chain.blocks.contains_key(&old_tip));
        let new = chain.mine_block(&script, vec![], 1_700_000_000);
        assert_ne!(new, chain.best[1]);
        assert_ne!(new, old_tip);
    }

    #[test]
    fn subsidy_halves_every_150_blocks() {
        assert_eq!(subsidy(149), Amount::from_btc(50.0).expect("valid"));
        assert_eq!(subsidy(150), Amount::from_btc(25.0).expect("valid"));
    }
}
