//! The mempool and transaction acceptance (`POST /tx`), validated like Bitcoin Core does:
//! inputs exist and are unspent, no inflation, coinbase maturity, absolute and BIP68 relative
//! locktimes against the next block, every input script checked by libbitcoinconsensus, and
//! conflicts resolved by BIP125 replace-by-fee.

use std::collections::{BTreeSet, HashMap, HashSet};

use bitcoin::consensus::encode::serialize;
use bitcoin::{Amount, OutPoint, Transaction, Txid};

use crate::chain::{ChainState, Coin, COINBASE_MATURITY};

/// Standard weight limit of a transaction (Bitcoin Core's MAX_STANDARD_TX_WEIGHT).
pub const MAX_STANDARD_TX_WEIGHT: u64 = 400_000;
/// BIP125 rule 5: at most this many transactions evicted by one replacement.
pub const MAX_REPLACEMENT_EVICTIONS: usize = 100;

/// Relay policy knobs.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Minimum relay fee rate in sat per 1000 vbytes (Bitcoin Core's `minrelaytxfee`).
    pub min_relay_sat_per_kvb: u64,
    /// BIP125 rule 4 increment, in sat per 1000 vbytes.
    pub incremental_relay_sat_per_kvb: u64,
    /// Replace conflicting transactions even when they do not signal BIP125 (Core's full RBF).
    pub full_rbf: bool,
    /// Reject outputs below their script's dust threshold (Core's standardness rule).
    pub reject_dust: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_relay_sat_per_kvb: 1_000,
            incremental_relay_sat_per_kvb: 1_000,
            full_rbf: false,
            reject_dust: true,
        }
    }
}

/// An unconfirmed transaction.
#[derive(Debug, Clone)]
pub struct MempoolEntry {
    /// The transaction.
    pub tx: Transaction,
    /// Its fee.
    pub fee: Amount,
    /// Its virtual size.
    pub vsize: u64,
}

/// Unconfirmed transactions in arrival order (parents always before children).
#[derive(Debug, Default)]
pub struct Mempool {
    /// Entries by txid.
    pub entries: HashMap<Txid, MempoolEntry>,
    /// Arrival order.
    pub order: Vec<Txid>,
    /// Outpoints spent by mempool transactions.
    pub spends: HashMap<OutPoint, Txid>,
}

impl Mempool {
    fn insert(&mut self, txid: Txid, entry: MempoolEntry) {
        for input in &entry.tx.input {
            self.spends.insert(input.previous_output, txid);
        }
        self.order.push(txid);
        self.entries.insert(txid, entry);
    }

    fn remove(&mut self, txid: &Txid) -> Option<MempoolEntry> {
        let entry = self.entries.remove(txid)?;
        for input in &entry.tx.input {
            if self.spends.get(&input.previous_output) == Some(txid) {
                self.spends.remove(&input.previous_output);
            }
        }
        self.order.retain(|t| t != txid);
        Some(entry)
    }

    /// `txid` and every mempool transaction descending from it.
    pub fn with_descendants(&self, txid: &Txid) -> Vec<Txid> {
        let mut out = vec![*txid];
        let mut i = 0;
        while i < out.len() {
            let current = out[i];
            if let Some(entry) = self.entries.get(&current) {
                for vout in 0..entry.tx.output.len() {
                    if let Some(child) = self.spends.get(&OutPoint::new(current, vout as u32)) {
                        if !out.contains(child) {
                            out.push(*child);
                        }
                    }
                }
            }
            i += 1;
        }
        out
    }

    /// Removes `txid` and its descendants; returns what was removed.
    pub fn remove_with_descendants(&mut self, txid: &Txid) -> Vec<Txid> {
        let all = self.with_descendants(txid);
        all.into_iter()
            .filter(|t| self.remove(t).is_some())
            .collect()
    }

    /// A transaction was confirmed: drop it, and drop whatever conflicts with it.
    pub fn remove_confirmed(&mut self, tx: &Transaction, txid: Txid) {
        self.remove(&txid);
        if tx.is_coinbase() {
            return;
        }
        for input in &tx.input {
            if let Some(conflict) = self.spends.get(&input.previous_output).copied() {
                self.remove_with_descendants(&conflict);
            }
        }
    }

    /// The transactions in arrival order.
    pub fn txs_in_order(&self) -> Vec<Transaction> {
        self.order
            .iter()
            .filter_map(|t| self.entries.get(t).map(|e| e.tx.clone()))
            .collect()
    }

    /// BIP125 signalling: explicitly, or inherited from an unconfirmed ancestor.
    fn signals_rbf(&self, txid: &Txid) -> bool {
        let mut seen = HashSet::new();
        let mut stack = vec![*txid];
        while let Some(t) = stack.pop() {
            if !seen.insert(t) {
                continue;
            }
            if let Some(entry) = self.entries.get(&t) {
                if entry.tx.is_explicitly_rbf() {
                    return true;
                }
                stack.extend(entry.tx.input.iter().map(|i| i.previous_output.txid));
            }
        }
        false
    }
}

fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b)
}

impl ChainState {
    /// Validates `tx` against the next block and the mempool and accepts it, evicting what it
    /// replaces. An already known transaction is accepted again without change.
    pub fn accept(&mut self, tx: Transaction, policy: &Policy) -> Result<Txid, String> {
        let txid = tx.compute_txid();
        if self.mempool.entries.contains_key(&txid) || self.confirmed.contains_key(&txid) {
            return Ok(txid);
        }
        if tx.input.is_empty() {
            return Err("bad-txns-vin-empty: the transaction has no inputs".into());
        }
        if tx.output.is_empty() {
            return Err("bad-txns-vout-empty: the transaction has no outputs".into());
        }
        if tx.is_coinbase() {
            return Err("coinbase: a coinbase transaction cannot be broadcast".into());
        }
        let weight = tx.weight().to_wu();
        if weight > MAX_STANDARD_TX_WEIGHT {
            return Err(format!(
                "tx-size: weight {weight} exceeds the standard limit {MAX_STANDARD_TX_WEIGHT}"
            ));
        }
        let mut seen = HashSet::new();
        for input in &tx.input {
            if !seen.insert(input.previous_output) {
                return Err(format!(
                    "bad-txns-inputs-duplicate: outpoint {} is spent twice",
                    input.previous_output
                ));
            }
        }
        let mut out_sum = Amount::ZERO;
        for output in &tx.output {
            out_sum = out_sum
                .checked_add(output.value)
                .filter(|s| *s <= Amount::MAX_MONEY)
                .ok_or("bad-txns-txouttotal-toolarge: outputs exceed 21 million bitcoin")?;
        }

        let tip = self.tip_height();
        let next_height = tip + 1;
        let tip_mtp = self.median_time_past(tip);
        let mut coins: Vec<Coin> = Vec::with_capacity(tx.input.len());
        let mut conflicts: BTreeSet<Txid> = BTreeSet::new();
        for (i, input) in tx.input.iter().enumerate() {
            let op = input.previous_output;
            let coin = self.find_coin(&op, next_height).map_err(|why| {
                format!("bad-txns-inputs-missingorspent: input {i} spends {op}, {why}")
            })?;
            if let Some(other) = self.mempool.spends.get(&op) {
                conflicts.insert(*other);
            }
            if coin.is_coinbase && next_height - coin.height < COINBASE_MATURITY {
                return Err(format!(
                    "bad-txns-premature-spend-of-coinbase: input {i} spends the coinbase of \
                     height {} which has {} confirmations at the next block; {COINBASE_MATURITY} \
                     are required",
                    coin.height,
                    next_height - coin.height
                ));
            }
            coins.push(coin);
        }
        let in_sum: Amount = coins.iter().map(|c| c.txout.value).sum();
        let fee = in_sum.checked_sub(out_sum).ok_or_else(|| {
            format!(
                "bad-txns-in-belowout: outputs pay {} sat but the inputs hold only {} sat \
                 (inflation)",
                out_sum.to_sat(),
                in_sum.to_sat()
            )
        })?;

        self.check_locktimes(&tx, &coins, next_height, tip_mtp)?;

        let vsize = tx.vsize() as u64;
        let min_fee = ceil_div(vsize * policy.min_relay_sat_per_kvb, 1000);
        if fee.to_sat() < min_fee {
            return Err(format!(
                "min relay fee not met: the fee is {} sat, at least {min_fee} sat are required \
                 for {vsize} vB",
                fee.to_sat()
            ));
        }
        if policy.reject_dust {
            for (n, output) in tx.output.iter().enumerate() {
                let threshold = output.script_pubkey.minimal_non_dust();
                if !output.script_pubkey.is_op_return() && output.value < threshold {
                    return Err(format!(
                        "dust: output {n} pays {} sat, below its dust threshold of {} sat",
                        output.value.to_sat(),
                        threshold.to_sat()
                    ));
                }
            }
        }

        verify_scripts(&tx, &coins)?;

        let evicted = self.check_replacement(&tx, fee, vsize, &conflicts, policy)?;
        for t in &evicted {
            self.mempool.remove(t);
        }
        self.txs.insert(txid, tx.clone());
        self.mempool.insert(txid, MempoolEntry { tx, fee, vsize });
        Ok(txid)
    }

    fn find_coin(&self, op: &OutPoint, next_height: u32) -> Result<Coin, String> {
        if let Some(coin) = self.utxos.get(op) {
            return Ok(coin.clone());
        }
        if let Some(entry) = self.mempool.entries.get(&op.txid) {
            return entry
                .tx
                .output
                .get(op.vout as usize)
                .map(|txout| Coin {
                    txout: txout.clone(),
                    height: next_height,
                    is_coinbase: false,
                })
                .ok_or_else(|| "which does not exist".to_string());
        }
        if let Some((spender, _)) = self.spends.get(op) {
            return Err(format!(
                "which confirmed transaction {spender} already spent"
            ));
        }
        Err("which does not exist".into())
    }

    fn check_locktimes(
        &self,
        tx: &Transaction,
        coins: &[Coin],
        next_height: u32,
        tip_mtp: u32,
    ) -> Result<(), String> {
        // Absolute locktime (IsFinalTx with BIP113 median time past).
        let lock = tx.lock_time.to_consensus_u32();
        if lock != 0 && tx.is_lock_time_enabled() {
            let (limit, what) = if lock < bitcoin::absolute::LOCK_TIME_THRESHOLD {
                (next_height, "height")
            } else {
                (tip_mtp, "median time past")
            };
            if lock >= limit {
                return Err(format!(
                    "non-final: locktime {lock} is not reached by the next block ({what} {limit})"
                ));
            }
        }
        // BIP68 relative locktimes.
        if tx.version.0 < 2 {
            return Ok(());
        }
        for (i, (input, coin)) in tx.input.iter().zip(coins).enumerate() {
            let seq = input.sequence.0;
            if seq & (1 << 31) != 0 {
                continue;
            }
            let value = seq & 0xffff;
            if seq & (1 << 22) != 0 {
                let coin_time = self.median_time_past(coin.height.saturating_sub(1));
                let unlock = u64::from(coin_time) + (u64::from(value) << 9);
                if unlock > u64::from(tip_mtp) {
                    return Err(format!(
                        "non-BIP68-final: input {i} is time-locked for {} s after its coin \
                         (median time {coin_time}); unlocks at {unlock}, the chain's median \
                         time past is {tip_mtp}",
                        u64::from(value) << 9
                    ));
                }
            } else if coin.height + value > next_height {
                return Err(format!(
                    "non-BIP68-final: input {i} is locked for {value} blocks after its coin at \
                     height {}, so it can be mined at height {} at the earliest; the next block \
                     is {next_height}",
                    coin.height,
                    coin.height + value
                ));
            }
        }
        Ok(())
    }

    /// BIP125: returns the transactions the replacement evicts, or why it is refused.
    fn check_replacement(
        &self,
        tx: &Transaction,
        fee: Amount,
        vsize: u64,
        conflicts: &BTreeSet<Txid>,
        policy: &Policy,
    ) -> Result<Vec<Txid>, String> {
        if conflicts.is_empty() {
            return Ok(Vec::new());
        }
        let mempool = &self.mempool;
        let mut evicted: Vec<Txid> = Vec::new();
        for conflict in conflicts {
            if !policy.full_rbf && !mempool.signals_rbf(conflict) {
                return Err(format!(
                    "txn-mempool-conflict: an input is already spent by mempool transaction \
                     {conflict}, which does not signal BIP125 replaceability"
                ));
            }
            for t in mempool.with_descendants(conflict) {
                if !evicted.contains(&t) {
                    evicted.push(t);
                }
            }
        }
        if evicted.len() > MAX_REPLACEMENT_EVICTIONS {
            return Err(format!(
                "too many potential replacements: {} transactions would be evicted, at most \
                 {MAX_REPLACEMENT_EVICTIONS} may be (BIP125 rule 5)",
                evicted.len()
            ));
        }
        let conflict_parents: HashSet<Txid> = conflicts
            .iter()
            .filter_map(|c| mempool.entries.get(c))
            .flat_map(|e| e.tx.input.iter().map(|i| i.previous_output.txid))
            .collect();
        for input in &tx.input {
            let parent = input.previous_output.txid;
            if evicted.contains(&parent) {
                return Err(format!(
                    "bad-txns-spends-conflicting-tx: the replacement spends an output of \
                     {parent}, which it would evict"
                ));
            }
            if mempool.entries.contains_key(&parent) && !conflict_parents.contains(&parent) {
                return Err(format!(
                    "replacement-adds-unconfirmed: the replacement spends unconfirmed {parent}, \
                     which no replaced transaction spent (BIP125 rule 2)"
                ));
            }
        }
        for conflict in conflicts {
            if let Some(e) = mempool.entries.get(conflict) {
                // new feerate must be higher than each direct conflict's: fee/vsize > e.fee/e.vsize
                if u128::from(fee.to_sat()) * u128::from(e.vsize)
                    <= u128::from(e.fee.to_sat()) * u128::from(vsize)
                {
                    return Err(format!(
                        "insufficient fee: the replacement's fee rate ({} sat / {vsize} vB) is \
                         not higher than that of {conflict} ({} sat / {} vB)",
                        fee.to_sat(),
                        e.fee.to_sat(),
                        e.vsize
                    ));
                }
            }
        }
        let replaced_fees: u64 = evicted
            .iter()
            .filter_map(|t| mempool.entries.get(t))
            .map(|e| e.fee.to_sat())
            .sum();
        if fee.to_sat() < replaced_fees {
            return Err(format!(
                "insufficient fee: the replacement pays {} sat, less than the {replaced_fees} \
                 sat of the {} transactions it replaces (BIP125 rule 3)",
                fee.to_sat(),
                evicted.len()
            ));
        }
        let needed = replaced_fees + ceil_div(vsize * policy.incremental_relay_sat_per_kvb, 1000);
        if fee.to_sat() < needed {
            return Err(format!(
                "insufficient fee: the replacement pays {} sat; it must pay at least {needed} sat \
                 (the replaced fees plus the incremental relay fee for {vsize} vB, BIP125 rule 4)",
                fee.to_sat()
            ));
        }
        Ok(evicted)
    }
}

/// Verifies every input's script with libbitcoinconsensus (P2SH, DERSIG, NULLDUMMY, CLTV, CSV,
/// WITNESS). libbitcoinconsensus 25.1 predates taproot, so spends of witness v1+ outputs are
/// refused rather than waved through unchecked.
fn verify_scripts(tx: &Transaction, coins: &[Coin]) -> Result<(), String> {
    let serialized = serialize(tx);
    for (i, coin) in coins.iter().enumerate() {
        let script = &coin.txout.script_pubkey;
        if script.witness_version().is_some_and(|v| v.to_num() >= 1) {
            return Err(format!(
                "unsupported: input {i} spends a witness v1+ (taproot) output, which this \
                 devnet's libbitcoinconsensus cannot verify"
            ));
        }
        bitcoin::consensus::verify_script_with_flags(
            script,
            i,
            coin.txout.value,
            &serialized,
            bitcoinconsensus::VERIFY_ALL,
        )
        .map_err(|e| {
            format!(
                "mandatory-script-verify-flag-failed: input {i} ({}) failed script \
                 verification: {e:?}",
                tx.input[i].previous_output
            )
        })?;
    }
    Ok(())
}
