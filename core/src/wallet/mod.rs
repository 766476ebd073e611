//! The on-chain wallet: `bdk_wallet` with BIP84 descriptors from the node seed, persisted with
//! its rusqlite support in Tern's database file.
//!
//! BDK keeps the keys, the UTXOs, coin selection and signing. What is Tern's own is how the
//! wallet is kept in sync within a request budget: instead of BDK's sync of every revealed
//! script, [`OnchainWallet::scripts_to_query`] names only the scripts that can have changed
//! (addresses handed out and not yet paid, scripts of unconfirmed wallet transactions), the
//! chain planner fetches them on a new tip, and [`OnchainWallet::apply_sync`] turns the answers
//! and the chain events into a BDK update. A full scan of the lookahead happens only on restore
//! from seed ([`OnchainWallet::full_scan`]), and after a reorg ([`OnchainWallet::resync`]); both
//! go through the same [`crate::chain::ChainSource`] as the sync (`scan`).

mod cpfp;
mod scan;
mod send;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bdk_wallet::chain::{BlockId, ConfirmationBlockTime, TxUpdate};
use bdk_wallet::rusqlite::Connection;
use bdk_wallet::{KeychainKind, PersistedWallet, SignOptions, Update, Wallet};
use bitcoin::{Address, Amount, FeeRate, Network, OutPoint, ScriptBuf, Transaction, Txid};

use crate::chain::{BlockRef, ChainEvent, ScriptTx, TxStatus};
use crate::proto::keys::WalletDescriptors;

pub use scan::{fetch_resync, ResyncAnswer, ResyncRequest};
pub use send::{check_send_fee_rate, SendAmount, MAX_SEND_FEERATE, MIN_SEND_FEERATE};

/// Errors of the on-chain wallet.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// BDK refused something (descriptor, persistence, building, signing).
    #[error("wallet: {0}")]
    Bdk(String),
    /// Not enough confirmed or trusted coins.
    #[error("insufficient funds: {needed} sat needed, {available} sat available")]
    InsufficientFunds {
        /// What the transaction needs, fee included.
        needed: u64,
        /// What the wallet can spend (locked coins excluded).
        available: u64,
    },
    /// An unparsable address.
    #[error("invalid address {address}: {reason}")]
    InvalidAddress {
        /// The address given.
        address: String,
        /// Why it is refused.
        reason: String,
    },
    /// A valid address of another network.
    #[error("address {address} is for {address_network}, this wallet is on {ours}")]
    WrongNetwork {
        /// The address given.
        address: String,
        /// The network(s) it is valid for (`testnet or signet`: they share a prefix).
        address_network: String,
        /// Ours.
        ours: Network,
    },
    /// A payment below the recipient script's dust limit (no node would relay it).
    #[error("{amount} sat is below the dust limit of {dust_limit} sat for this address")]
    DustAmount {
        /// The amount asked.
        amount: u64,
        /// The smallest amount that output can carry.
        dust_limit: u64,
    },
    /// A send's feerate outside 1..=1000 sat/vB.
    #[error(
        "feerate {} sat/vB is outside 1..=1000 sat/vB",
        *.sat_per_kwu as f64 / 250.0
    )]
    FeeRateOutOfRange {
        /// The feerate asked, in sat per 1000 weight units (250 = 1 sat/vB).
        sat_per_kwu: u64,
    },
    /// A transaction the wallet does not know or cannot bump.
    #[error("cannot bump {txid}: {reason}")]
    CannotBump {
        /// Transaction.
        txid: Txid,
        /// Why.
        reason: String,
    },
}

fn bdk<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> WalletError + '_ {
    move |e| WalletError::Bdk(format!("{what}: {e}"))
}

/// Maps BDK's build error: too little to select is [`WalletError::InsufficientFunds`] with what
/// the wallet could spend (`available` sat).
fn build_error(available: u64) -> impl FnOnce(bdk_wallet::error::CreateTxError) -> WalletError {
    move |e| match e {
        bdk_wallet::error::CreateTxError::CoinSelection(c) => WalletError::InsufficientFunds {
            needed: c.needed.to_sat(),
            available,
        },
        other => WalletError::Bdk(format!("build: {other}")),
    }
}

/// On-chain balances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Balances {
    /// Confirmed and spendable (locked coins excluded).
    pub confirmed: Amount,
    /// Unconfirmed: our own change (trusted) and incoming payments (untrusted).
    pub unconfirmed: Amount,
    /// Coins locked for channel opens in progress.
    pub locked: Amount,
    /// What the node's anchor channels ask to keep on chain for fee bumps (reserve per
    /// anchor channel × anchor channels; the node fills it in, the wallet alone says 0). Part
    /// of `confirmed` + `unconfirmed`, not on top of it; opens of anchor channels keep it.
    pub anchor_reserve: Amount,
}

impl Balances {
    /// What may be spent without touching the anchor reserve: `confirmed` less
    /// [`Balances::anchor_reserve`].
    pub fn spendable_after_reserve(&self) -> Amount {
        self.confirmed
            .checked_sub(self.anchor_reserve)
            .unwrap_or(Amount::ZERO)
    }
}

/// A coin the wallet spends in its own transactions: confirmed, or the unconfirmed change of
/// one of our own transactions (nobody else can replace it). Unconfirmed coins paid to us by
/// others are never spent before they confirm: their sender could replace them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpendableCoin {
    /// The coin.
    pub outpoint: OutPoint,
    /// Its value.
    pub value: Amount,
    /// Whether it is confirmed (else it is our own unconfirmed change).
    pub confirmed: bool,
}

/// The fee of a funding transaction spending `inputs` P2WPKH coins to one P2WSH funding output
/// and one P2WPKH change output, at `fee_rate` (BDK's worst-case signature size).
pub fn funding_fee(fee_rate: FeeRate, inputs: usize) -> Amount {
    // Version, locktime, counts: 10 bytes; segwit marker and flag: 2 WU. A P2WPKH input: 41
    // bytes plus a 109 WU witness (73-byte signature). Outputs: P2WSH 43 bytes, P2WPKH 31.
    const BASE_WU: u64 = 10 * 4 + 2 + (43 + 31) * 4;
    const INPUT_WU: u64 = 41 * 4 + 109;
    let inputs = u64::try_from(inputs.max(1)).unwrap_or(u64::MAX);
    let weight = bitcoin::Weight::from_wu(BASE_WU.saturating_add(INPUT_WU.saturating_mul(inputs)));
    fee_rate.fee_wu(weight).unwrap_or(Amount::MAX_MONEY)
}

/// The first receive address of `descriptors` on `network` (external index 0), without a
/// wallet or a database: what a new node will hand out first.
pub fn first_receive_address(
    descriptors: &WalletDescriptors,
    network: Network,
) -> Result<Address, WalletError> {
    let wallet = Wallet::create(descriptors.external.clone(), descriptors.internal.clone())
        .network(network)
        .create_wallet_no_persist()
        .map_err(bdk("descriptors"))?;
    Ok(wallet.peek_address(KeychainKind::External, 0).address)
}

/// The wallet and its database connection.
#[derive(Debug)]
pub struct OnchainWallet {
    wallet: PersistedWallet<Connection>,
    conn: Connection,
    network: Network,
    /// Count commits made on an async thread (see [`crate::store::note_commit`]).
    guard_async_commits: bool,
    /// Write transactions committed on the wallet's connection since it was opened.
    commits: u64,
}

impl OnchainWallet {
    /// Loads the wallet from `conn`, or creates it there. Returns whether it was created (a
    /// created wallet may be a restore from seed: run [`OnchainWallet::full_scan`]).
    pub fn open(
        mut conn: Connection,
        descriptors: &WalletDescriptors,
        network: Network,
    ) -> Result<(Self, bool), WalletError> {
        let loaded = Wallet::load()
            .descriptor(KeychainKind::External, Some(descriptors.external.clone()))
            .descriptor(KeychainKind::Internal, Some(descriptors.internal.clone()))
            .extract_keys()
            .check_network(network)
            .load_wallet(&mut conn)
            .map_err(bdk("load"))?;
        let (wallet, created) = match loaded {
            Some(w) => (w, false),
            None => {
                let w = Wallet::create(descriptors.external.clone(), descriptors.internal.clone())
                    .network(network)
                    .create_wallet(&mut conn)
                    .map_err(bdk("create"))?;
                (w, true)
            }
        };
        Ok((
            OnchainWallet {
                wallet,
                conn,
                network,
                guard_async_commits: false,
                commits: 0,
            },
            created,
        ))
    }

    /// From now on, a commit made on a thread that runs async code is counted (dev builds;
    /// [`crate::store::dev_commits_on_async_threads`]). The node sets it on its wallet.
    pub fn guard_async_commits(&mut self) {
        self.guard_async_commits = true;
    }

    /// Write transactions the wallet committed on its connection since it was opened (each
    /// one fsync of the WAL with `synchronous=FULL`).
    pub fn commits(&self) -> u64 {
        self.commits
    }

    fn persist(&mut self) -> Result<(), WalletError> {
        let wrote = self
            .wallet
            .persist(&mut self.conn)
            .map_err(bdk("persist"))?;
        if wrote {
            self.commits += 1;
            crate::store::note_commit(self.guard_async_commits);
        }
        Ok(())
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.network
    }

    /// Hands out the next receive address (persisted before it is returned).
    pub fn new_address(&mut self) -> Result<Address, WalletError> {
        let info = self.wallet.reveal_next_address(KeychainKind::External);
        self.persist()?;
        Ok(info.address)
    }

    /// Scripts whose history can have changed: receive addresses handed out and never paid,
    /// and scripts touched by unconfirmed wallet transactions. Paid addresses and confirmed
    /// history are not queried again.
    pub fn scripts_to_query(&self) -> Vec<ScriptBuf> {
        let index = self.wallet.spk_index();
        let graph = self.wallet.tx_graph();
        let mut used: BTreeSet<ScriptBuf> = BTreeSet::new();
        let mut pending: BTreeSet<ScriptBuf> = BTreeSet::new();
        for wtx in self.wallet.transactions() {
            let confirmed = wtx.chain_position.is_confirmed();
            let tx = &wtx.tx_node.tx;
            let mut scripts: Vec<ScriptBuf> =
                tx.output.iter().map(|o| o.script_pubkey.clone()).collect();
            for input in &tx.input {
                if let Some(prev) = graph.get_txout(input.previous_output) {
                    scripts.push(prev.script_pubkey.clone());
                }
            }
            for s in scripts
                .into_iter()
                .filter(|s| index.index_of_spk(s.clone()).is_some())
            {
                used.insert(s.clone());
                if !confirmed {
                    pending.insert(s);
                }
            }
        }
        let mut out: Vec<ScriptBuf> = index
            .revealed_keychain_spks(KeychainKind::External)
            .map(|(_, spk)| spk)
            .filter(|spk| !used.contains(spk))
            .collect();
        out.extend(pending);
        out
    }

    /// Wallet transactions not yet confirmed (to watch and to rebroadcast), parents before
    /// children: a funding may spend the unconfirmed change of an earlier one, and a server
    /// refuses a child whose parent it does not have.
    pub fn unconfirmed_txs(&self) -> Vec<Arc<Transaction>> {
        let txs: Vec<Arc<Transaction>> = self
            .wallet
            .transactions()
            .filter(|t| !t.chain_position.is_confirmed())
            .map(|t| t.tx_node.tx.clone())
            .collect();
        parents_first(txs)
    }

    /// The wallet's unconfirmed transactions `tx` spends from, directly or not, parents first
    /// (evicted ones included: a parent dropped from the mempool must go back before its child).
    pub fn unconfirmed_ancestors(&self, tx: &Transaction) -> Vec<Transaction> {
        let graph = self.wallet.tx_graph();
        let confirmed: BTreeSet<Txid> = self
            .wallet
            .transactions()
            .filter(|t| t.chain_position.is_confirmed())
            .map(|t| t.tx_node.txid)
            .collect();
        let mut found: BTreeMap<Txid, Arc<Transaction>> = BTreeMap::new();
        let mut todo: Vec<Txid> = tx.input.iter().map(|i| i.previous_output.txid).collect();
        while let Some(txid) = todo.pop() {
            if confirmed.contains(&txid) || found.contains_key(&txid) {
                continue;
            }
            if let Some(parent) = graph.get_tx(txid) {
                todo.extend(parent.input.iter().map(|i| i.previous_output.txid));
                found.insert(txid, parent);
            }
        }
        parents_first(found.into_values().collect())
            .into_iter()
            .map(|t| (*t).clone())
            .collect()
    }

    /// The coins the wallet may spend in a funding or a send: confirmed ones, and the
    /// unconfirmed change of our own transactions (see [`SpendableCoin`]).
    pub fn spendable_coins(&self) -> Vec<SpendableCoin> {
        self.wallet
            .list_unspent()
            .filter_map(|u| {
                let confirmed = u.chain_position.is_confirmed();
                (confirmed || u.keychain == KeychainKind::Internal).then_some(SpendableCoin {
                    outpoint: u.outpoint,
                    value: u.txout.value,
                    confirmed,
                })
            })
            .collect()
    }

    /// Applies what a sync found: script histories, confirmations of watched wallet
    /// transactions, evictions, and the new tip.
    pub fn apply_sync(
        &mut self,
        scripts: &[(ScriptBuf, Vec<ScriptTx>)],
        events: &[ChainEvent],
        tip: Option<BlockRef>,
        now: u64,
    ) -> Result<(), WalletError> {
        let mut update = TxUpdate::<ConfirmationBlockTime>::default();
        let mut blocks: BTreeMap<u32, bitcoin::BlockHash> = BTreeMap::new();
        let mut add_anchor =
            |update: &mut TxUpdate<ConfirmationBlockTime>, txid, c: crate::chain::Confirmation| {
                blocks.insert(c.height, c.block_hash);
                update.anchors.insert((
                    ConfirmationBlockTime {
                        block_id: BlockId {
                            height: c.height,
                            hash: c.block_hash,
                        },
                        confirmation_time: c.block_time,
                    },
                    txid,
                ));
            };
        for (_, txs) in scripts {
            for st in txs {
                let txid = st.tx.compute_txid();
                update.txs.push(Arc::new(st.tx.clone()));
                match st.status {
                    TxStatus::Confirmed(c) => add_anchor(&mut update, txid, c),
                    _ => {
                        update.seen_ats.insert((txid, now));
                    }
                }
            }
        }
        // Every transaction the wallet ever had, evicted ones included: a funding evicted because
        // a sync asked for it just before its broadcast landed must come back when it confirms.
        let known: BTreeSet<Txid> = self.wallet.tx_graph().full_txs().map(|t| t.txid).collect();
        let mut evicted = Vec::new();
        for event in events {
            match event {
                ChainEvent::TxConfirmed {
                    txid, confirmation, ..
                } if known.contains(txid) => add_anchor(&mut update, *txid, *confirmation),
                ChainEvent::TxGone { txid } | ChainEvent::TxDoubleSpent { txid, .. }
                    if known.contains(txid) =>
                {
                    evicted.push((*txid, now))
                }
                _ => {}
            }
        }
        let mut cp = self.wallet.latest_checkpoint();
        let tip_height = cp.height();
        for (height, hash) in blocks {
            cp = cp.insert(BlockId { height, hash });
        }
        if let Some(tip) = tip.filter(|t| t.height >= tip_height) {
            cp = cp.insert(BlockId {
                height: tip.height,
                hash: tip.hash,
            });
        }
        self.wallet
            .apply_update(Update {
                last_active_indices: BTreeMap::new(),
                tx_update: update,
                chain: Some(cp),
            })
            .map_err(bdk("apply sync"))?;
        if !evicted.is_empty() {
            self.wallet.apply_evicted_txs(evicted);
        }
        self.persist()
    }

    /// Balances; `locked` are the coins reserved for channel opens in progress.
    pub fn balances(&self, locked: &[OutPoint]) -> Balances {
        let b = self.wallet.balance();
        let locked_sat: u64 = self
            .wallet
            .list_unspent()
            .filter(|u| locked.contains(&u.outpoint))
            .map(|u| u.txout.value.to_sat())
            .sum();
        Balances {
            confirmed: Amount::from_sat(b.confirmed.to_sat().saturating_sub(locked_sat)),
            unconfirmed: b.trusted_pending + b.untrusted_pending,
            locked: Amount::from_sat(locked_sat),
            anchor_reserve: Amount::ZERO,
        }
    }

    fn build(
        &mut self,
        script: ScriptBuf,
        amount: Amount,
        fee_rate: FeeRate,
        locked: &[OutPoint],
    ) -> Result<Transaction, WalletError> {
        // Never locked coins, nor unconfirmed ones others paid us (they could replace them).
        let (unspendable, available) = self.not_spendable(locked);
        let mut builder = self.wallet.build_tx();
        builder
            .add_recipient(script, amount)
            .fee_rate(fee_rate)
            .unspendable(unspendable);
        let psbt = builder.finish().map_err(build_error(available))?;
        self.sign_and_persist(psbt)
    }

    /// Signs a built transaction (every input must be finalized) and persists the wallet (the
    /// change address it revealed).
    fn sign_and_persist(&mut self, mut psbt: bitcoin::Psbt) -> Result<Transaction, WalletError> {
        let finalized = self
            .wallet
            .sign(&mut psbt, SignOptions::default())
            .map_err(bdk("sign"))?;
        if !finalized {
            return Err(WalletError::Bdk(
                "sign: the transaction is not fully signed".into(),
            ));
        }
        let tx = psbt.extract_tx().map_err(bdk("extract"))?;
        self.persist()?;
        Ok(tx)
    }

    /// Builds and signs (does not broadcast) a transaction paying exactly `amount` to `script`
    /// at `fee_rate`, never spending `locked` coins. The caller locks its inputs until the open
    /// completes or is abandoned ([`OnchainWallet::abandon`]).
    pub fn build_funding_tx(
        &mut self,
        script: ScriptBuf,
        amount: Amount,
        fee_rate: FeeRate,
        locked: &[OutPoint],
    ) -> Result<Transaction, WalletError> {
        self.build(script, amount, fee_rate, locked)
    }

    /// Builds and signs a payment to `address` (broadcast it, then [`OnchainWallet::record_broadcast`]).
    pub fn build_send(
        &mut self,
        address: &Address,
        amount: Amount,
        fee_rate: FeeRate,
        locked: &[OutPoint],
    ) -> Result<Transaction, WalletError> {
        self.build(address.script_pubkey(), amount, fee_rate, locked)
    }

    /// Builds and signs a replacement of an unconfirmed wallet transaction at `fee_rate` (RBF).
    pub fn build_fee_bump(
        &mut self,
        txid: Txid,
        fee_rate: FeeRate,
    ) -> Result<Transaction, WalletError> {
        let mut builder =
            self.wallet
                .build_fee_bump(txid)
                .map_err(|e| WalletError::CannotBump {
                    txid,
                    reason: e.to_string(),
                })?;
        builder.fee_rate(fee_rate);
        let mut psbt = builder.finish().map_err(|e| WalletError::CannotBump {
            txid,
            reason: e.to_string(),
        })?;
        self.wallet
            .sign(&mut psbt, SignOptions::default())
            .map_err(bdk("sign"))?;
        let tx = psbt.extract_tx().map_err(bdk("extract"))?;
        self.persist()?;
        Ok(tx)
    }

    /// Records a transaction we broadcast, so balances and coin selection see it at once.
    pub fn record_broadcast(&mut self, tx: &Transaction, now: u64) -> Result<(), WalletError> {
        self.wallet.apply_unconfirmed_txs([(tx.clone(), now)]);
        self.persist()
    }

    /// Records a channel's transaction (a cooperative close, a sweep) that pays one of the
    /// wallet's scripts, as [`OnchainWallet::record_broadcast`] does; one that pays none is
    /// left out. Its scripts are then queried by every sync until it confirms, even when
    /// another payment already used the address. Returns whether it was recorded.
    pub fn record_if_ours(&mut self, tx: &Transaction, now: u64) -> Result<bool, WalletError> {
        if !tx
            .output
            .iter()
            .any(|o| self.wallet.is_mine(o.script_pubkey.clone()))
        {
            return Ok(false);
        }
        if self.knows(&tx.compute_txid()) {
            return Ok(true);
        }
        self.record_broadcast(tx, now)?;
        Ok(true)
    }

    /// Whether `script` is one of the wallet's (revealed or within the lookahead).
    pub fn is_mine(&self, script: &ScriptBuf) -> bool {
        self.wallet.is_mine(script.clone())
    }

    /// Forgets a built transaction that will never be broadcast (frees its change address).
    pub fn abandon(&mut self, tx: &Transaction) -> Result<(), WalletError> {
        self.wallet.cancel_tx(tx);
        self.persist()
    }

    /// Whether the wallet knows this transaction.
    pub fn knows(&self, txid: &Txid) -> bool {
        self.wallet.get_tx(*txid).is_some()
    }

    /// The wallet's transactions with their confirmation height (None = unconfirmed).
    pub fn list_transactions(&self) -> Vec<(Txid, Option<u32>)> {
        self.wallet
            .transactions()
            .map(|t| {
                let height = match t.chain_position {
                    bdk_wallet::chain::ChainPosition::Confirmed { anchor, .. } => {
                        Some(anchor.block_id.height)
                    }
                    _ => None,
                };
                (t.tx_node.txid, height)
            })
            .collect()
    }
}

/// Orders transactions so that each comes after every one of them it spends from.
fn parents_first(txs: Vec<Arc<Transaction>>) -> Vec<Arc<Transaction>> {
    let mut left: BTreeMap<Txid, Arc<Transaction>> =
        txs.into_iter().map(|t| (t.compute_txid(), t)).collect();
    let mut out = Vec::with_capacity(left.len());
    while !left.is_empty() {
        // Those whose parents among `left` are all out already (a cycle cannot exist).
        let ready: Vec<Txid> = left
            .iter()
            .filter(|(_, t)| {
                t.input
                    .iter()
                    .all(|i| !left.contains_key(&i.previous_output.txid))
            })
            .map(|(txid, _)| *txid)
            .collect();
        if ready.is_empty() {
            out.extend(left.into_values());
            break;
        }
        for txid in ready {
            if let Some(t) = left.remove(&txid) {
                out.push(t);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::absolute::LockTime;
    use bitcoin::hashes::Hash;
    use bitcoin::transaction::Version;
    use bitcoin::{Sequence, TxIn, TxOut, Witness};

    fn spending(parents: &[&Transaction], tag: u64) -> Arc<Transaction> {
        let mut input: Vec<TxIn> = parents
            .iter()
            .map(|p| TxIn {
                previous_output: OutPoint::new(p.compute_txid(), 0),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            })
            .collect();
        if input.is_empty() {
            input.push(TxIn {
                previous_output: OutPoint::new(Txid::from_byte_array([7; 32]), 0),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            });
        }
        Arc::new(Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input,
            output: vec![TxOut {
                value: Amount::from_sat(tag),
                script_pubkey: ScriptBuf::new(),
            }],
        })
    }

    /// Every order of a chain of fundings (each spending the previous one's change, one also
    /// spending two parents) comes out parents first.
    #[test]
    fn parents_come_before_their_children() {
        let a = spending(&[], 1);
        let b = spending(&[&a], 2);
        let c = spending(&[&b], 3);
        let d = spending(&[&a, &c], 4);
        let all = [a, b, c, d];
        let orders = [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]];
        for order in orders {
            let given: Vec<Arc<Transaction>> = order.iter().map(|&i| all[i].clone()).collect();
            let sorted = parents_first(given);
            let position = |t: &Arc<Transaction>| {
                sorted
                    .iter()
                    .position(|s| s.compute_txid() == t.compute_txid())
                    .expect("kept")
            };
            assert_eq!(sorted.len(), 4);
            assert!(position(&all[0]) < position(&all[1]), "{order:?}");
            assert!(position(&all[1]) < position(&all[2]), "{order:?}");
            assert!(position(&all[2]) < position(&all[3]), "{order:?}");
        }
    }

    #[test]
    fn funding_fee_counts_inputs() {
        let rate = FeeRate::from_sat_per_vb(2).expect("rate");
        // 1 input: 10.5 + 68.25 + 74 = 152.75 vB -> 306 sat at 2 sat/vB (rounded up).
        assert_eq!(funding_fee(rate, 1), Amount::from_sat(306));
        assert_eq!(funding_fee(rate, 0), funding_fee(rate, 1));
        assert_eq!(
            funding_fee(rate, 2).to_sat() - funding_fee(rate, 1).to_sat(),
            136
        );
    }
}
