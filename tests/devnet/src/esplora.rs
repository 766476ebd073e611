//! Read-only Esplora endpoints: shapes as `../shared/esplora-api.md` describes them (the ones
//! `esplora-client`, `bdk_esplora` and LDK's transaction sync parse).

use bitcoin::consensus::encode::{serialize, serialize_hex};
use bitcoin::hashes::{sha256, sha256d, Hash};
use bitcoin::{Address, BlockHash, MerkleBlock, Network, OutPoint, Script, Transaction, Txid};
use serde_json::{json, Value};

use crate::chain::{script_hash, ChainState, StoredBlock};

/// What a handler answers.
#[derive(Debug)]
pub enum Reply {
    /// `text/plain`, no trailing newline.
    Text(String),
    /// `application/json`.
    Json(Value),
    /// Raw bytes.
    Raw(Vec<u8>),
    /// 404 with a message.
    NotFound(String),
    /// 400 with a message.
    BadRequest(String),
}

const BLOCK_NOT_FOUND: &str = "Block not found";
const TX_NOT_FOUND: &str = "Transaction not found";
/// Confirmed transactions per page of `/scripthash/:hash/txs[/chain]`.
const CHAIN_PAGE: usize = 25;
/// Mempool transactions in `/scripthash/:hash/txs`.
const MEMPOOL_PAGE: usize = 50;
/// Transactions per page of `/block/:hash/txs`.
const BLOCK_TXS_PAGE: usize = 25;

/// Which transactions of a script a query wants.
#[derive(Debug, Clone)]
pub enum ScriptQuery {
    /// `/scripthash/:hash` or `/address/:address`: funded/spent statistics.
    Stats,
    /// `/txs`: mempool then the first confirmed page.
    Txs,
    /// `/txs/chain[/:last_seen]`: a confirmed page.
    TxsChain(Option<Txid>),
    /// `/txs/mempool`.
    TxsMempool,
    /// `/utxo`.
    Utxo,
}

fn median_time_of(chain: &ChainState, hash: &BlockHash) -> u32 {
    let mut times = Vec::with_capacity(11);
    let mut cursor = chain.blocks.get(hash);
    while let Some(b) = cursor {
        times.push(b.block.header.time);
        if times.len() == 11 {
            break;
        }
        cursor = chain.blocks.get(&b.block.header.prev_blockhash);
    }
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or(0)
}

fn block_info(chain: &ChainState, stored: &StoredBlock) -> Value {
    let block = &stored.block;
    let hash = block.block_hash();
    let mut info = json!({
        "id": hash.to_string(),
        "height": stored.height,
        "version": block.header.version.to_consensus(),
        "timestamp": block.header.time,
        "tx_count": block.txdata.len(),
        "size": serialize(block).len(),
        "weight": block.weight().to_wu(),
        "merkle_root": block.header.merkle_root.to_string(),
        "mediantime": median_time_of(chain, &hash),
        "nonce": block.header.nonce,
        "bits": block.header.bits.to_consensus(),
        "difficulty": block.header.difficulty_float(),
    });
    if stored.height > 0 {
        info["previousblockhash"] = json!(block.header.prev_blockhash.to_string());
    }
    info
}

fn with_block<F: FnOnce(&StoredBlock) -> Reply>(
    chain: &ChainState,
    hash: &BlockHash,
    f: F,
) -> Reply {
    match chain.blocks.get(hash) {
        Some(b) => f(b),
        None => Reply::NotFound(BLOCK_NOT_FOUND.into()),
    }
}

/// `/blocks/tip/hash`.
pub fn tip_hash(chain: &ChainState) -> Reply {
    Reply::Text(chain.tip_hash().to_string())
}

/// `/blocks/tip/height`.
pub fn tip_height(chain: &ChainState) -> Reply {
    Reply::Text(chain.tip_height().to_string())
}

/// `/block-height/:height`.
pub fn block_height(chain: &ChainState, height: u32) -> Reply {
    match chain.best.get(height as usize) {
        Some(h) => Reply::Text(h.to_string()),
        None => Reply::NotFound(BLOCK_NOT_FOUND.into()),
    }
}

/// `/blocks[/:start_height]`: up to 10 BlockInfo, newest first.
pub fn blocks(chain: &ChainState, start: Option<u32>) -> Reply {
    let top = start.unwrap_or(chain.tip_height()).min(chain.tip_height());
    let list: Vec<Value> = (0..=top)
        .rev()
        .take(10)
        .filter_map(|h| chain.block_at(h).map(|b| block_info(chain, b)))
        .collect();
    Reply::Json(Value::Array(list))
}

/// `/block/:hash`.
pub fn block(chain: &ChainState, hash: &BlockHash) -> Reply {
    with_block(chain, hash, |b| Reply::Json(block_info(chain, b)))
}

/// `/block/:hash/header`.
pub fn block_header(chain: &ChainState, hash: &BlockHash) -> Reply {
    with_block(chain, hash, |b| Reply::Text(serialize_hex(&b.block.header)))
}

/// `/block/:hash/status`: stale blocks answer too, with `in_best_chain: false`.
pub fn block_status(chain: &ChainState, hash: &BlockHash) -> Reply {
    with_block(chain, hash, |b| {
        if chain.in_best_chain(hash) {
            let next = chain.best.get(b.height as usize + 1).map(|h| h.to_string());
            Reply::Json(json!({"in_best_chain": true, "height": b.height, "next_best": next}))
        } else {
            Reply::Json(json!({"in_best_chain": false}))
        }
    })
}

/// `/block/:hash/raw`.
pub fn block_raw(chain: &ChainState, hash: &BlockHash) -> Reply {
    with_block(chain, hash, |b| Reply::Raw(serialize(&b.block)))
}

/// `/block/:hash/txids`.
pub fn block_txids(chain: &ChainState, hash: &BlockHash) -> Reply {
    with_block(chain, hash, |b| {
        Reply::Json(json!(b
            .block
            .txdata
            .iter()
            .map(|t| t.compute_txid().to_string())
            .collect::<Vec<_>>()))
    })
}

/// `/block/:hash/txid/:index`.
pub fn block_txid(chain: &ChainState, hash: &BlockHash, index: usize) -> Reply {
    with_block(chain, hash, |b| match b.block.txdata.get(index) {
        Some(tx) => Reply::Text(tx.compute_txid().to_string()),
        None => Reply::NotFound("Transaction index out of range".into()),
    })
}

/// `/block/:hash/txs[/:start_index]`: 25 transactions from `start`.
pub fn block_txs(chain: &ChainState, hash: &BlockHash, start: usize) -> Reply {
    with_block(chain, hash, |b| {
        if !start.is_multiple_of(BLOCK_TXS_PAGE) {
            return Reply::BadRequest(format!(
                "start index must be a multiple of {BLOCK_TXS_PAGE}"
            ));
        }
        if start >= b.block.txdata.len() && start > 0 {
            return Reply::NotFound("start index out of range".into());
        }
        let status = block_status_json(chain, b);
        let txs: Vec<Value> = b
            .block
            .txdata
            .iter()
            .skip(start)
            .take(BLOCK_TXS_PAGE)
            .map(|tx| tx_json(chain, tx, status.clone()))
            .collect();
        Reply::Json(Value::Array(txs))
    })
}

fn block_status_json(chain: &ChainState, b: &StoredBlock) -> Value {
    let hash = b.block.block_hash();
    if chain.in_best_chain(&hash) {
        json!({"confirmed": true, "block_height": b.height, "block_hash": hash.to_string(),
               "block_time": b.block.header.time})
    } else {
        json!({"confirmed": false})
    }
}

/// Status JSON of a transaction: confirmed in the best chain, or not.
pub fn tx_status_json(chain: &ChainState, txid: &Txid) -> Value {
    match chain.confirmation(txid) {
        Some((height, hash, time)) => json!({"confirmed": true, "block_height": height,
            "block_hash": hash.to_string(), "block_time": time}),
        None => json!({"confirmed": false}),
    }
}

fn script_type(script: &Script) -> &'static str {
    if script.is_p2pkh() {
        "p2pkh"
    } else if script.is_p2sh() {
        "p2sh"
    } else if script.is_p2wpkh() {
        "v0_p2wpkh"
    } else if script.is_p2wsh() {
        "v0_p2wsh"
    } else if script.is_p2tr() {
        "v1_p2tr"
    } else if script.is_op_return() {
        "op_return"
    } else if script.is_p2pk() {
        "p2pk"
    } else {
        "unknown"
    }
}

fn output_json(script: &Script, value: u64) -> Value {
    let mut out = json!({
        "scriptpubkey": script.to_hex_string(),
        "scriptpubkey_asm": script.to_asm_string(),
        "scriptpubkey_type": script_type(script),
        "value": value,
    });
    if let Ok(address) = Address::from_script(script, Network::Regtest) {
        out["scriptpubkey_address"] = json!(address.to_string());
    }
    out
}

/// EsploraTx JSON.
pub fn tx_json(chain: &ChainState, tx: &Transaction, status: Value) -> Value {
    let is_coinbase = tx.is_coinbase();
    let vin: Vec<Value> = tx
        .input
        .iter()
        .map(|input| {
            let prevout = if is_coinbase {
                Value::Null
            } else {
                chain
                    .prevout(&input.previous_output)
                    .map(|o| output_json(&o.script_pubkey, o.value.to_sat()))
                    .unwrap_or(Value::Null)
            };
            json!({
                "txid": input.previous_output.txid.to_string(),
                "vout": input.previous_output.vout,
                "prevout": prevout,
                "scriptsig": input.script_sig.to_hex_string(),
                "scriptsig_asm": input.script_sig.to_asm_string(),
                "witness": input.witness.iter().map(|w| w.iter().map(|b| format!("{b:02x}")).collect::<String>()).collect::<Vec<_>>(),
                "is_coinbase": is_coinbase,
                "sequence": input.sequence.0,
            })
        })
        .collect();
    let vout: Vec<Value> = tx
        .output
        .iter()
        .map(|o| output_json(&o.script_pubkey, o.value.to_sat()))
        .collect();
    json!({
        "txid": tx.compute_txid().to_string(),
        "version": tx.version.0,
        "locktime": tx.lock_time.to_consensus_u32(),
        "vin": vin,
        "vout": vout,
        "size": tx.total_size(),
        "weight": tx.weight().to_wu(),
        "fee": chain.fee_of(tx).to_sat(),
        "status": status,
    })
}

/// A transaction the API knows: confirmed in the best chain, or in the mempool.
pub fn known_tx<'a>(chain: &'a ChainState, txid: &Txid) -> Option<&'a Transaction> {
    if chain.confirmed.contains_key(txid) {
        return chain.txs.get(txid);
    }
    chain.mempool.entries.get(txid).map(|e| &e.tx)
}

/// `/tx/:txid`.
pub fn tx(chain: &ChainState, txid: &Txid) -> Reply {
    match known_tx(chain, txid) {
        Some(tx) => Reply::Json(tx_json(chain, tx, tx_status_json(chain, txid))),
        None => Reply::NotFound(TX_NOT_FOUND.into()),
    }
}

/// `/tx/:txid/raw`.
pub fn tx_raw(chain: &ChainState, txid: &Txid) -> Reply {
    match known_tx(chain, txid) {
        Some(tx) => Reply::Raw(serialize(tx)),
        None => Reply::NotFound(TX_NOT_FOUND.into()),
    }
}

/// `/tx/:txid/hex`.
pub fn tx_hex(chain: &ChainState, txid: &Txid) -> Reply {
    match known_tx(chain, txid) {
        Some(tx) => Reply::Text(serialize_hex(tx)),
        None => Reply::NotFound(TX_NOT_FOUND.into()),
    }
}

/// `/tx/:txid/status`: like electrs, an unknown transaction is reported unconfirmed.
pub fn tx_status(chain: &ChainState, txid: &Txid) -> Reply {
    Reply::Json(tx_status_json(chain, txid))
}

/// Sibling hashes from a leaf to the root, bottom-up.
fn merkle_branch(txids: &[Txid], mut pos: usize) -> Vec<Txid> {
    let mut level: Vec<[u8; 32]> = txids.iter().map(|t| t.to_byte_array()).collect();
    let mut branch = Vec::new();
    while level.len() > 1 {
        if level.len() % 2 == 1 {
            level.push(level[level.len() - 1]);
        }
        branch.push(Txid::from_byte_array(level[pos ^ 1]));
        level = level
            .chunks(2)
            .map(|pair| {
                let mut data = [0u8; 64];
                data[..32].copy_from_slice(&pair[0]);
                data[32..].copy_from_slice(&pair[1]);
                sha256d::Hash::hash(&data).to_byte_array()
            })
            .collect();
        pos /= 2;
    }
    branch
}

/// `/tx/:txid/merkle-proof`.
pub fn merkle_proof(chain: &ChainState, txid: &Txid) -> Reply {
    let Some(pos) = chain.confirmed.get(txid) else {
        return Reply::NotFound(TX_NOT_FOUND.into());
    };
    let Some(b) = chain.block_at(pos.height) else {
        return Reply::NotFound(BLOCK_NOT_FOUND.into());
    };
    let txids: Vec<Txid> = b.block.txdata.iter().map(|t| t.compute_txid()).collect();
    let merkle: Vec<String> = merkle_branch(&txids, pos.index)
        .iter()
        .map(|h| h.to_string())
        .collect();
    Reply::Json(json!({"block_height": pos.height, "merkle": merkle, "pos": pos.index}))
}

/// `/tx/:txid/merkleblock-proof`: a BIP37 merkleblock matching only `txid`.
pub fn merkleblock_proof(chain: &ChainState, txid: &Txid) -> Reply {
    let Some(pos) = chain.confirmed.get(txid) else {
        return Reply::NotFound(TX_NOT_FOUND.into());
    };
    let Some(b) = chain.block_at(pos.height) else {
        return Reply::NotFound(BLOCK_NOT_FOUND.into());
    };
    let mb = MerkleBlock::from_block_with_predicate(&b.block, |t| t == txid);
    Reply::Text(serialize_hex(&mb))
}

/// The transaction spending `op` and its input index: in the best chain, else in the mempool.
pub fn spender(chain: &ChainState, op: &OutPoint) -> Option<(Txid, u32)> {
    chain.spends.get(op).copied().or_else(|| {
        chain.mempool.spends.get(op).and_then(|t| {
            let e = chain.mempool.entries.get(t)?;
            let vin = e.tx.input.iter().position(|i| i.previous_output == *op)?;
            Some((*t, vin as u32))
        })
    })
}

fn outspend_json(chain: &ChainState, op: &OutPoint) -> Value {
    match spender(chain, op) {
        Some((txid, vin)) => json!({"spent": true, "txid": txid.to_string(), "vin": vin,
            "status": tx_status_json(chain, &txid)}),
        None => json!({"spent": false}),
    }
}

/// `/tx/:txid/outspend/:vout`.
pub fn outspend(chain: &ChainState, txid: &Txid, vout: u32) -> Reply {
    match known_tx(chain, txid) {
        Some(tx) if (vout as usize) < tx.output.len() => {
            Reply::Json(outspend_json(chain, &OutPoint::new(*txid, vout)))
        }
        Some(_) => Reply::NotFound("Output index out of range".into()),
        None => Reply::NotFound(TX_NOT_FOUND.into()),
    }
}

/// `/tx/:txid/outspends`.
pub fn outspends(chain: &ChainState, txid: &Txid) -> Reply {
    match known_tx(chain, txid) {
        Some(tx) => Reply::Json(Value::Array(
            (0..tx.output.len() as u32)
                .map(|v| outspend_json(chain, &OutPoint::new(*txid, v)))
                .collect(),
        )),
        None => Reply::NotFound(TX_NOT_FOUND.into()),
    }
}

fn mempool_txs_of<'a>(
    chain: &'a ChainState,
    sh: &'a sha256::Hash,
) -> impl Iterator<Item = &'a Transaction> + 'a {
    chain
        .mempool
        .order
        .iter()
        .rev()
        .filter_map(|t| chain.mempool.entries.get(t).map(|e| &e.tx))
        .filter(move |tx| chain.touched_scripts(tx).contains(sh))
}

fn stats(chain: &ChainState, sh: &sha256::Hash, txs: &[&Transaction]) -> Value {
    let (mut funded, mut funded_sum, mut spent, mut spent_sum) = (0u64, 0u64, 0u64, 0u64);
    for tx in txs {
        for o in tx
            .output
            .iter()
            .filter(|o| script_hash(&o.script_pubkey) == *sh)
        {
            funded += 1;
            funded_sum += o.value.to_sat();
        }
        if tx.is_coinbase() {
            continue;
        }
        for i in &tx.input {
            if let Some(o) = chain.prevout(&i.previous_output) {
                if script_hash(&o.script_pubkey) == *sh {
                    spent += 1;
                    spent_sum += o.value.to_sat();
                }
            }
        }
    }
    json!({"funded_txo_count": funded, "funded_txo_sum": funded_sum,
           "spent_txo_count": spent, "spent_txo_sum": spent_sum, "tx_count": txs.len()})
}

/// The confirmed history of a script, newest first.
fn confirmed_txs_of<'a>(chain: &'a ChainState, sh: &sha256::Hash) -> Vec<&'a Transaction> {
    chain
        .history
        .get(sh)
        .map(|h| h.iter().rev().filter_map(|t| chain.txs.get(t)).collect())
        .unwrap_or_default()
}

/// What `/scripthash/:hash/txs` lists: up to 50 mempool transactions, newest first, then the
/// first page of 25 confirmed ones, newest first.
pub fn script_txs_page<'a>(chain: &'a ChainState, sh: &'a sha256::Hash) -> Vec<&'a Transaction> {
    let mut list: Vec<&Transaction> = mempool_txs_of(chain, sh).take(MEMPOOL_PAGE).collect();
    list.extend(confirmed_txs_of(chain, sh).into_iter().take(CHAIN_PAGE));
    list
}

/// What `/scripthash/:hash/txs/chain[/:last_seen]` lists: the 25 confirmed transactions after
/// `last_seen`, newest first (like electrs, an unknown `last_seen` yields an empty page).
pub fn chain_page<'a>(
    chain: &'a ChainState,
    sh: &sha256::Hash,
    last_seen: Option<&Txid>,
) -> Vec<&'a Transaction> {
    let confirmed = confirmed_txs_of(chain, sh);
    let start = match last_seen {
        None => 0,
        Some(last) => confirmed
            .iter()
            .position(|tx| tx.compute_txid() == *last)
            .map_or(confirmed.len(), |p| p + 1),
    };
    confirmed.into_iter().skip(start).take(CHAIN_PAGE).collect()
}

/// `/scripthash/:hash[/...]` and `/address/:address[/...]`.
pub fn script(
    chain: &ChainState,
    sh: &sha256::Hash,
    address: Option<&str>,
    q: &ScriptQuery,
) -> Reply {
    let confirmed = confirmed_txs_of(chain, sh);
    let json_of = |tx: &Transaction| tx_json(chain, tx, tx_status_json(chain, &tx.compute_txid()));
    match q {
        ScriptQuery::Stats => {
            let mempool: Vec<&Transaction> = mempool_txs_of(chain, sh).collect();
            let mut v = json!({
                "chain_stats": stats(chain, sh, &confirmed),
                "mempool_stats": stats(chain, sh, &mempool),
            });
            match address {
                Some(a) => v["address"] = json!(a),
                None => v["scripthash"] = json!(sh.to_string()),
            }
            Reply::Json(v)
        }
        ScriptQuery::Txs => Reply::Json(Value::Array(
            script_txs_page(chain, sh)
                .into_iter()
                .map(json_of)
                .collect(),
        )),
        ScriptQuery::TxsChain(last_seen) => Reply::Json(Value::Array(
            chain_page(chain, sh, last_seen.as_ref())
                .into_iter()
                .map(json_of)
                .collect(),
        )),
        ScriptQuery::TxsMempool => Reply::Json(Value::Array(
            mempool_txs_of(chain, sh)
                .take(MEMPOOL_PAGE)
                .map(json_of)
                .collect(),
        )),
        ScriptQuery::Utxo => {
            let mut list = Vec::new();
            let mut candidates: Vec<&Transaction> = confirmed.clone();
            candidates.extend(mempool_txs_of(chain, sh));
            for tx in candidates {
                let txid = tx.compute_txid();
                for (vout, o) in tx.output.iter().enumerate() {
                    let op = OutPoint::new(txid, vout as u32);
                    if script_hash(&o.script_pubkey) != *sh
                        || chain.mempool.spends.contains_key(&op)
                    {
                        continue;
                    }
                    let unspent =
                        chain.utxos.contains_key(&op) || chain.mempool.entries.contains_key(&txid);
                    if unspent {
                        list.push(json!({"txid": txid.to_string(), "vout": vout,
                            "value": o.value.to_sat(), "status": tx_status_json(chain, &txid)}));
                    }
                }
            }
            Reply::Json(Value::Array(list))
        }
    }
}

/// `/mempool`.
pub fn mempool(chain: &ChainState) -> Reply {
    let entries = chain.mempool.entries.values();
    let vsize: u64 = entries.clone().map(|e| e.vsize).sum();
    let total_fee: u64 = entries.map(|e| e.fee.to_sat()).sum();
    Reply::Json(json!({"count": chain.mempool.entries.len(), "vsize": vsize,
        "total_fee": total_fee, "fee_histogram": []}))
}

/// `/mempool/txids`.
pub fn mempool_txids(chain: &ChainState) -> Reply {
    Reply::Json(json!(chain
        .mempool
        .order
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()))
}

/// `/mempool/recent`: the last 10 transactions accepted.
pub fn mempool_recent(chain: &ChainState) -> Reply {
    let list: Vec<Value> = chain
        .mempool
        .order
        .iter()
        .rev()
        .take(10)
        .filter_map(|t| chain.mempool.entries.get(t).map(|e| (t, e)))
        .map(|(t, e)| {
            let value: u64 = e.tx.output.iter().map(|o| o.value.to_sat()).sum();
            json!({"txid": t.to_string(), "fee": e.fee.to_sat(), "vsize": e.vsize, "value": value})
        })
        .collect();
    Reply::Json(Value::Array(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merkle_branch_leads_to_the_root() {
        let txids: Vec<Txid> = (0u8..5).map(|i| Txid::from_byte_array([i; 32])).collect();
        let root = bitcoin::merkle_tree::calculate_root(txids.iter().map(|t| t.to_raw_hash()))
            .expect("non-empty");
        for pos in 0..txids.len() {
            let mut acc = txids[pos].to_byte_array();
            let mut p = pos;
            for sibling in merkle_branch(&txids, pos) {
                let mut data = [0u8; 64];
                let s = sibling.to_byte_array();
                if p % 2 == 0 {
                    data[..32].copy_from_slice(&acc);
                    data[32..].copy_from_slice(&s);
                } else {
                    data[..32].copy_from_slice(&s);
                    data[32..].copy_from_slice(&acc);
                }
                acc = sha256d::Hash::hash(&data).to_byte_array();
                p /= 2;
            }
            assert_eq!(acc, root.to_byte_array(), "position {pos}");
        }
    }
}
