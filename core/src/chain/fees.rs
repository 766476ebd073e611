//! Fee estimates cached with their age: start-up and every caller use the cache at once; a
//! refresh happens only when the cache is older than its maximum age, and a failed refresh keeps
//! the old figures.

use std::collections::BTreeMap;

use bitcoin::FeeRate;
use serde::{Deserialize, Serialize};

/// The floor LDK requires of a peer's feerate (and of ours): 253 sat per 1000 weight units.
pub const MIN_FEERATE_SAT_PER_KW: u64 = 253;

/// How soon a transaction should confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeTarget {
    /// Within ~1-2 blocks (commitment fees, urgent).
    HighPriority,
    /// Within ~6 blocks (funding transactions).
    Normal,
    /// Within ~a day (sweeps, consolidation).
    Background,
}

impl FeeTarget {
    fn blocks(self) -> u16 {
        match self {
            FeeTarget::HighPriority => 2,
            FeeTarget::Normal => 6,
            FeeTarget::Background => 144,
        }
    }

    fn fallback_sat_per_vb(self) -> f64 {
        match self {
            FeeTarget::HighPriority => 10.0,
            FeeTarget::Normal => 5.0,
            FeeTarget::Background => 1.0,
        }
    }
}

/// Cached `/fee-estimates` (target blocks -> sat/vB) and when they were fetched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeeCache {
    /// Unix seconds of the fetch (0 = never).
    pub fetched_at: u64,
    /// Estimates.
    pub estimates: BTreeMap<u16, f64>,
}

impl FeeCache {
    /// The cache to keep after fetching `estimates` at `now`: the fresh one, or `None` when the
    /// server had no estimates (keep this one). The one rule of both refreshes (the watcher's
    /// and the node's send feerate, which fetches off the store thread).
    pub fn refreshed(estimates: BTreeMap<u16, f64>, now: u64) -> Option<FeeCache> {
        (!estimates.is_empty()).then_some(FeeCache {
            fetched_at: now,
            estimates,
        })
    }

    /// Whether a refresh is due at `now`.
    pub fn is_stale(&self, now: u64, max_age_secs: u64) -> bool {
        self.estimates.is_empty() || now.saturating_sub(self.fetched_at) > max_age_secs
    }

    /// The fee rate for `target`: the estimate for the smallest target at or above it (the
    /// largest available otherwise), a conservative fallback when nothing was ever fetched, and
    /// never below [`MIN_FEERATE_SAT_PER_KW`].
    pub fn fee_rate(&self, target: FeeTarget) -> FeeRate {
        let blocks = target.blocks();
        let sat_per_vb = self
            .estimates
            .range(blocks..)
            .next()
            .or_else(|| self.estimates.iter().next_back())
            .map(|(_, v)| *v)
            .filter(|v| v.is_finite() && *v > 0.0)
            .unwrap_or(target.fallback_sat_per_vb());
        // sat/vB -> sat/kwu: x 250.
        let kwu = ((sat_per_vb * 250.0).ceil() as u64).max(MIN_FEERATE_SAT_PER_KW);
        FeeRate::from_sat_per_kwu(kwu)
    }

    /// Versioned encoding (version byte + JSON).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![1u8];
        out.extend(serde_json::to_vec(self).expect("fee cache serialises"));
        out
    }

    /// Decodes [`FeeCache::encode`]'s output; anything unreadable is an empty cache.
    pub fn decode(bytes: &[u8]) -> FeeCache {
        match bytes.split_first() {
            Some((1, rest)) => serde_json::from_slice(rest).unwrap_or_default(),
            _ => FeeCache::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_target_falls_back_and_floors() {
        let mut c = FeeCache::default();
        assert!(c.is_stale(100, 600));
        assert_eq!(
            c.fee_rate(FeeTarget::Normal),
            FeeRate::from_sat_per_kwu(1250)
        );
        c.estimates = BTreeMap::from([(1, 30.0), (6, 8.0), (144, 0.5)]);
        c.fetched_at = 1000;
        assert!(!c.is_stale(1500, 600));
        assert!(c.is_stale(1601, 600));
        assert_eq!(
            c.fee_rate(FeeTarget::HighPriority),
            FeeRate::from_sat_per_kwu(2000)
        );
        assert_eq!(
            c.fee_rate(FeeTarget::Normal),
            FeeRate::from_sat_per_kwu(2000)
        );
        assert_eq!(
            c.fee_rate(FeeTarget::Background),
            FeeRate::from_sat_per_kwu(253)
        );
        assert_eq!(FeeCache::decode(&c.encode()), c);
        assert_eq!(FeeCache::decode(b"\x07junk"), FeeCache::default());
    }
}
