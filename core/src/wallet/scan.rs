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

/// How deep below the tip the local chain's blocks are checked for a reorg (deeper reorgs are
/// not followed: the channels count a transaction irrevocable at this depth too).
const REORG_HORIZON: u32 = 100;

/// The chain update: the local chain's blocks within [`REORG_HORIZON`] of the tip are checked
/// (each one: a light sync may already have put the new tip on top of a stale block, so the
/// walk cannot stop at the first block still in the best chain); from the highest block below
/// the lowest stale one, every local height above is given the best chain's block, then the
/// found blocks and the tip.
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
    let floor = tip_height.saturating_sub(REORG_HORIZON);
    // (height, hash, still in the best chain), top down, within the horizon.
    let mut recent = Vec::new();
    let mut base = local.clone();
    for cp in local.iter() {
        base = cp.clone();
        if cp.height() == 0 || cp.height() <= floor {
            break;
        }
        let status = source
            .block_status(cp.hash())
            .await
            .map_err(chain("local block status"))?;
        recent.push((cp.height(), cp.hash(), status.in_best_chain));
    }
    let Some(lowest_stale) = recent.iter().filter(|r| !r.2).map(|r| r.0).min() else {
        let mut update = local;
        for (&height, &hash) in blocks.iter().chain([(&tip_height, &tip_hash)]) {
            update = update.insert(BlockId { height, hash });
        }
        return Ok(update);
    };
    // The highest local block below the lowest stale one (all of those are in the best chain).
    let mut update = recent
        .iter()
        .find(|r| r.0 < lowest_stale)
        .and_then(|r| local.get(r.0))
        .unwrap_or(base);
    let agreed_height = update.height();
    for &(height, hash, in_best) in recent.iter().rev().filter(|r| r.0 > agreed_height) {
        let hash = if in_best {
            hash
        } else {
            source
                .block_hash_at(height)
                .await
                .map_err(chain("best block at a stale height"))?
                .ok_or_else(|| {
                    WalletError::Bdk(format!(
                        "the best chain (tip {tip_height}) is below the wallet's stale block at \
                         {height}; scan again after the next block"
                    ))
                })?
        };
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
    /// script and the source no longer lists is evicted, and the local chain is cut back to its
    /// last block still in the best chain. The same three steps as the node takes them apart
    /// (the wallet lives on the store thread): [`OnchainWallet::resync_request`],
    /// [`fetch_resync`], [`OnchainWallet::apply_resync`].
    pub async fn resync<S: ChainSource>(&mut self, source: &S) -> Result<(), WalletError> {
        let request = self.resync_request();
        let answer = fetch_resync(source, &request).await?;
        self.apply_resync(answer)
    }

    /// What a resync asks of the chain: every revealed script with the transactions the wallet
    /// expects there, and the local chain.
    pub fn resync_request(&mut self) -> ResyncRequest {
        let mut request = self.wallet.start_sync_with_revealed_spks().build();
        let now = request.start_time();
        let spks = request
            .iter_spks_with_expected_txids()
            .map(|s| (s.spk, s.expected_txids.into_iter().collect()))
            .collect();
        ResyncRequest {
            spks,
            local: self.wallet.latest_checkpoint(),
            now,
        }
    }

    /// Applies what [`fetch_resync`] found (persisted before it returns).
    pub fn apply_resync(&mut self, answer: ResyncAnswer) -> Result<(), WalletError> {
        self.wallet
            .apply_update(Update {
                last_active_indices: BTreeMap::new(),
                tx_update: answer.found.update,
                chain: Some(answer.chain),
            })
            .map_err(bdk("apply resync"))?;
        self.persist()
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

/// What a resync asks of the chain ([`OnchainWallet::resync_request`], on the wallet's thread).
pub struct ResyncRequest {
    spks: Vec<(ScriptBuf, HashSet<Txid>)>,
    local: CheckPoint,
    now: u64,
}

/// What the chain answered a [`ResyncRequest`] ([`fetch_resync`]).
pub struct ResyncAnswer {
    found: Found,
    chain: CheckPoint,
}

/// The requests of a resync, anywhere (no wallet needed): each script's history, then the
/// chain walked down from the local tip to its last block still in the best chain.
pub async fn fetch_resync<S: ChainSource>(
    source: &S,
    request: &ResyncRequest,
) -> Result<ResyncAnswer, WalletError> {
    let mut found = Found::default();
    let mut evicted = HashSet::new();
    for (spk, expected) in &request.spks {
        let txs = history(source, spk).await.map_err(chain("resync"))?;
        let got: HashSet<Txid> = txs.iter().map(|t| t.tx.compute_txid()).collect();
        evicted.extend(expected.difference(&got).copied());
        found.add(txs, request.now);
    }
    found
        .update
        .evicted_ats
        .extend(evicted.into_iter().map(|txid| (txid, request.now)));
    let chain = chain_update(source, request.local.clone(), &found.blocks).await?;
    Ok(ResyncAnswer { found, chain })
}
