//! The chain watcher: a [`ChainState`] kept in the store, synced through a [`ChainSource`].
//! A fresh process loads what the last one knew, so a wake where nothing changed costs one
//! request and no rescan.

use std::time::Duration;

use bitcoin::{OutPoint, ScriptBuf, Transaction, Txid};

use super::FeeCache;
use super::{sync, ChainError, ChainSource, ChainState, SyncOutcome, SyncPlanner};
use crate::store::{Store, StoreError};

/// Store key of the chain state record.
pub const CHAIN_STATE_KEY: &str = "chain_state";
/// Store key of the fee estimate cache.
pub const FEE_CACHE_KEY: &str = "fee_cache";

/// Errors of the watcher: the chain, or the store.
#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    /// The chain backend failed; nothing was persisted.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The persisted record could not be read.
    #[error(transparent)]
    Corrupt(#[from] super::state::ChainStateDecodeError),
}

/// Watches transactions and outpoints for the node; persists every change before reporting it.
#[derive(Debug)]
pub struct ChainWatcher<S> {
    source: S,
    state: ChainState,
}

impl<S: ChainSource> ChainWatcher<S> {
    /// Loads the persisted state (empty on a new database).
    pub fn load(store: &Store, source: S) -> Result<Self, WatcherError> {
        let state = match store.get_meta(CHAIN_STATE_KEY)? {
            Some(bytes) => ChainState::decode(&bytes).map_err(WatcherError::Corrupt)?,
            None => ChainState::default(),
        };
        Ok(ChainWatcher { source, state })
    }

    /// The chain source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// What is known.
    pub fn state(&self) -> &ChainState {
        &self.state
    }

    fn save(&mut self, store: &mut Store, state: ChainState) -> Result<(), WatcherError> {
        if state != self.state {
            store.put_meta(CHAIN_STATE_KEY, &state.encode())?;
            self.state = state;
        }
        Ok(())
    }

    /// Changes the watches (e.g. `|s| s.watch_tx(txid, inputs)`) and persists them.
    pub fn update(
        &mut self,
        store: &mut Store,
        change: impl FnOnce(&mut ChainState),
    ) -> Result<(), WatcherError> {
        let mut state = self.state.clone();
        change(&mut state);
        self.save(store, state)
    }

    /// Watches a transaction until [`ChainState::unwatch_tx`].
    pub fn watch_tx(
        &mut self,
        store: &mut Store,
        txid: Txid,
        inputs: Vec<OutPoint>,
    ) -> Result<(), WatcherError> {
        self.update(store, |s| s.watch_tx(txid, inputs))
    }

    /// Watches an outpoint's spend on the `to_self_delay / 4` schedule.
    pub fn watch_outpoint(
        &mut self,
        store: &mut Store,
        outpoint: OutPoint,
        to_self_delay: u16,
    ) -> Result<(), WatcherError> {
        self.update(store, |s| s.watch_outpoint(outpoint, to_self_delay))
    }

    /// One sync (with `scripts` fetched on a new tip). The new state is persisted before the
    /// outcome is returned; on error nothing changes.
    pub async fn sync(
        &mut self,
        store: &mut Store,
        scripts: Vec<ScriptBuf>,
        deadline: Option<Duration>,
    ) -> Result<SyncOutcome, WatcherError> {
        let planner = self.plan(scripts);
        let outcome = sync(&self.source, planner, deadline).await?;
        self.finish(store, &outcome)?;
        Ok(outcome)
    }

    /// A planner over a copy of the current state, for a sync run without holding the
    /// watcher (then [`ChainWatcher::finish`]).
    pub fn plan(&self, scripts: Vec<ScriptBuf>) -> SyncPlanner {
        SyncPlanner::new(self.state.clone(), scripts).verify_spends()
    }

    /// Persists a sync's outcome, keeping watches added or removed while it ran.
    pub fn finish(&mut self, store: &mut Store, outcome: &SyncOutcome) -> Result<(), WatcherError> {
        let mut state = self.state.clone();
        state.absorb(outcome.state.clone());
        self.save(store, state)
    }

    /// Broadcasts each transaction again (unconfirmed funding and wallet transactions after a
    /// restart or a new block); returns the failures.
    pub async fn rebroadcast(&self, txs: &[Transaction]) -> Vec<(Txid, ChainError)> {
        let mut failures = Vec::new();
        for tx in txs {
            if let Err(e) = self.source.broadcast(tx.clone()).await {
                failures.push((tx.compute_txid(), e));
            }
        }
        failures
    }

    /// The cached fee estimates (never blocks on the network).
    pub fn fee_cache(store: &Store) -> Result<FeeCache, WatcherError> {
        Ok(store
            .get_meta(FEE_CACHE_KEY)?
            .map(|b| FeeCache::decode(&b))
            .unwrap_or_default())
    }

    /// Refreshes the fee cache when it is older than `max_age_secs`; a failed fetch keeps the
    /// old figures and is returned as the error beside them.
    pub async fn refresh_fees(
        &self,
        store: &mut Store,
        now: u64,
        max_age_secs: u64,
    ) -> (FeeCache, Option<WatcherError>) {
        let cache = match Self::fee_cache(store) {
            Ok(c) => c,
            Err(e) => return (FeeCache::default(), Some(e)),
        };
        if !cache.is_stale(now, max_age_secs) {
            return (cache, None);
        }
        match self.source.fee_estimates().await {
            Ok(estimates) => match FeeCache::refreshed(estimates, now) {
                Some(fresh) => match store.put_meta(FEE_CACHE_KEY, &fresh.encode()) {
                    Ok(()) => (fresh, None),
                    Err(e) => (fresh, Some(e.into())),
                },
                None => (cache, None),
            },
            Err(e) => (cache, Some(e.into())),
        }
    }
}
