//! The wallet's full scan (restore from seed) and resync (after a reorg) through a
//! [`ChainSource`], so any source serves them (Esplora, or a test's in-memory chain): the
//! script histories, anchors, mempool evictions and the chain update BDK needs, built from
//! Tern's own chain calls.
//!
//! The chain update connects to the wallet's local chain as BDK requires: local blocks no
//! longer in the best chain are found by walking down from the local tip (one request per
//! block until one is still in the best chain: a reorg's depth, plus one), and the best chain's
//! block at the lowest of them is included, which invalidates them all.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bdk_wallet::chain::{BlockId, CheckPoint, ConfirmationBlockTime, TxUpdate};
use bdk_wallet::{KeychainKind, Update};
use bitcoin::{BlockHash, ScriptBuf, Txid};

use super::{bdk, OnchainWallet, WalletError};
use crate::chain::{ChainError, ChainSource, ScriptTx, TxStatus, SCRIPT_PAGE};

fn chain(what: &'static str) -> impl Fn(ChainError) -> WalletError {
    move |e| WalletError::Bdk(format!("{what}: {e}"))
}

/// A script's whole history: the first page (mempool and the newest confirmed), then the
/// confirmed pages after it until a short one.
async fn history<S: ChainSource>(
    source: &S,
    script: &ScriptBuf,
) -> Result<Vec<ScriptTx>, ChainError> {
    let mut all = source.script_txs(script.clone()).await?;
    let mut page = all
        .iter()
        .filter(|t| matches!(t.status, TxStatus::Confirmed(_)))
        .count();
    while page >= SCRIPT_PAGE {
        let Some(last) = all.last().map(|t| t.tx.compute_txid()) else {
            break;
        };
        let next = source.script_txs_after(script.clone(), last).await?;
        page = next.len();
        all.extend(next);
    }
    Ok(all)
}

/// What a scan found.
#[derive(Default)]
struct Found {
    update: TxUpdate<ConfirmationBlockTime>,
    txids: HashSet<Txid>,
    /// Blocks the found transactions confirmed in (best chain).
    blocks: BTreeMap<u32, BlockHash>,
}

impl Found {
    fn add(&mut self, txs: Vec<ScriptTx>, now: u64) {
        for st in txs {
            let txid = st.tx.compute_txid();
            match st.status {
                TxStatus::Confirmed(c) => {
                    self.blocks.insert(c.height, c.block_hash);
                    self.update.anchors.insert((
                        ConfirmationBlockTime {
                            block_id: BlockId {
                                height: c.height,
                                hash: c.block_hash,
                            },
                            confirmation_time: c.block_time,
                        },
                        txid,
                    ));
                }
                _ => {
                    self.update.seen_ats.insert((txid, now));
                }
            }
            if self.txids.insert(txid) {
                self.update.txs.push(Arc::new(st.tx));
            }
        }
    }
}

/// The chain update: the local chain down to its last block still in the best chain, the
/// best chain's block replacing the lowest stale one (if any), the found blocks and the tip.
async fn chain_update<S: ChainSource>(
    source: &S,
    local: CheckPoint,
    blocks: &BTreeMap<u32, BlockHash>,
) -> Result<CheckPoint, WalletError> {
    let tip_hash = source.tip_hash().await.map_err(chain("tip"))?;
    let tip_height = source
        .block_status(tip_hash)
        .await
        .map_err(chain("tip status"))?
        .height
        .ok_or_else(|| WalletError::Bdk("the tip moved during the scan".into()))?;
    let mut agreed = local.clone();
    let mut lowest_stale = None;
    for cp in local.iter() {
        agreed = cp.clone();
        if cp.height() == 0 {
            break;
        }
        let status = source
            .block_status(cp.hash())
            .await
            .map_err(chain("local block status"))?;
        if status.in_best_chain {
            break;
        }
        lowest_stale = Some(cp.height());
    }
    let mut update = agreed;
    if let Some(height) = lowest_stale {
        let hash = source
            .block_hash_at(height)
            .await
            .map_err(chain("best block at a stale height"))?
            .ok_or_else(|| {
                WalletError::Bdk(format!(
                    "the best chain (tip {tip_height}) is below the wallet's stale block at \
                     {height}; scan again after the next block"
                ))
            })?;
        update = update.insert(BlockId { height, hash });
    }
    for (&height, &hash) in blocks.iter().chain([(&tip_height, &tip_hash)]) {
        update = update.insert(BlockId { height, hash });
    }
    Ok(update)
}

impl OnchainWallet {
    /// Full scan of both keychains (restore from seed): every script until `stop_gap`
    /// consecutive unused ones past the last revealed, through `source`.
    pub async fn full_scan<S: ChainSource>(
        &mut self,
        source: &S,
        stop_gap: usize,
    ) -> Result<(), WalletError> {
        let mut request = self.wallet.start_full_scan().build();
        let now = request.start_time();
        let gap = stop_gap.max(1);
        let mut found = Found::default();
        let mut last_active_indices = BTreeMap::new();
        for keychain in request.keychains() {
            let last_revealed = request.last_revealed(&keychain);
            let mut unused = 0;
            for (index, spk) in request.iter_spks(keychain) {
                let txs = history(source, &spk).await.map_err(chain("full scan"))?;
                if !txs.is_empty() {
                    unused = 0;
                    last_active_indices.insert(keychain, index);
                } else if last_revealed.is_none_or(|last| index > last) {
                    unused += 1;
                }
                found.add(txs, now);
                if unused >= gap {
                    break;
                }
            }
        }
        self.apply_scan(source, found, last_active_indices).await
    }

    /// Re-syncs every revealed script through `source` (after a reorg, which the light update
    /// of [`OnchainWallet::apply_sync`] cannot unwind): a transaction the wallet expected at a
    /// script and the source no longer lists is evicted.
    pub async fn resync<S: ChainSource>(&mut self, source: &S) -> Result<(), WalletError> {
        let mut request = self.wallet.start_sync_with_revealed_spks().build();
        let now = request.start_time();
        let mut found = Found::default();
        let mut evicted = HashSet::new();
        for spk in request.iter_spks_with_expected_txids() {
            let txs = history(source, &spk.spk).await.map_err(chain("resync"))?;
            let got: HashSet<Txid> = txs.iter().map(|t| t.tx.compute_txid()).collect();
            evicted.extend(spk.expected_txids.difference(&got).copied());
            found.add(txs, now);
        }
        found
            .update
            .evicted_ats
            .extend(evicted.into_iter().map(|txid| (txid, now)));
        self.apply_scan(source, found, BTreeMap::new()).await
    }

    async fn apply_scan<S: ChainSource>(
        &mut self,
        source: &S,
        found: Found,
        last_active_indices: BTreeMap<KeychainKind, u32>,
    ) -> Result<(), WalletError> {
        let cp = chain_update(source, self.wallet.latest_checkpoint(), &found.blocks).await?;
        self.wallet
            .apply_update(Update {
                last_active_indices,
                tx_update: found.update,
                chain: Some(cp),
            })
            .map_err(bdk("apply scan"))?;
        self.persist()
    }
}
