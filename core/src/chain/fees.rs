//! Fee estimates cached with their age: start-up and every caller use the cache at once; a
//! refresh happens only when the cache is older than its maximum age, and a failed refresh keeps
//! the old figures.

use std::collections::BTreeMap;

use bitcoin::FeeRate;
use serde::{Deserialize, Serialize};

use crate::proto::channel::FeeEstimates;

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
        FeeRate::from_sat_per_kwu(u64::from(sat_per_vb_to_kw(sat_per_vb)))
    }

    /// The estimates the commitment fee policy needs (`proto::channel::fee_policy`), in sat/kw:
    /// the commitment's [`FeeTarget::HighPriority`] rate (what [`FeeCache::fee_rate`] gives,
    /// the same the funder's first commitment uses at open), and the 144- and 1008-block
    /// estimates its floors derive from. Those two are read as ldk-node reads its own from
    /// Esplora (esplora-client's `convert_fee_rate`: the largest target at or below the wanted
    /// one), so that our floor is never below an LDK peer's view of the same server: for 144
    /// blocks an Esplora server's key 144, else the next lower one (25 ...); with no target at
    /// or below, the smallest above (the best we know); with none at all, 253. Never below 253.
    pub fn fee_estimates(&self) -> FeeEstimates {
        let commitment = self.fee_rate(FeeTarget::HighPriority).to_sat_per_kwu();
        FeeEstimates {
            commitment_per_kw: u32::try_from(commitment).unwrap_or(u32::MAX),
            in_144_blocks_per_kw: self.floor_estimate(144),
            in_1008_blocks_per_kw: self.floor_estimate(1008),
        }
    }

    /// The estimate for confirmation within `blocks`, in sat/kw (see [`FeeCache::fee_estimates`]).
    fn floor_estimate(&self, blocks: u16) -> u32 {
        let mut valid = self
            .estimates
            .iter()
            .filter(|(_, v)| v.is_finite() && **v > 0.0);
        let at_most = valid.clone().rfind(|(k, _)| **k <= blocks);
        let above = || valid.find(|(k, _)| **k > blocks);
        at_most
            .or_else(above)
            .map_or(MIN_FEERATE_SAT_PER_KW as u32, |(_, v)| sat_per_vb_to_kw(*v))
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

/// sat/vB -> sat/kw: x 250 (a vbyte is 4 weight units), rounded up, at least
/// [`MIN_FEERATE_SAT_PER_KW`], at most `u32::MAX`.
fn sat_per_vb_to_kw(sat_per_vb: f64) -> u32 {
    // `as` saturates (NaN gives 0, then the floor).
    let kw = (sat_per_vb * 250.0).ceil() as u64;
    u32::try_from(kw.max(MIN_FEERATE_SAT_PER_KW)).unwrap_or(u32::MAX)
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

    fn estimates(pairs: &[(u16, f64)]) -> FeeCache {
        FeeCache {
            fetched_at: 1,
            estimates: pairs.iter().copied().collect(),
        }
    }

    #[test]
    fn policy_estimates_from_esplora_keys() {
        // Esplora's keys: 1..=25, 144, 504, 1008.
        let mut all: Vec<(u16, f64)> = (1..=25).map(|k| (k, 60.0 - f64::from(k))).collect();
        all.extend([(144, 3.5), (504, 2.0), (1008, 1.2)]);
        let e = estimates(&all).fee_estimates();
        assert_eq!(
            e,
            FeeEstimates {
                commitment_per_kw: 58 * 250,
                in_144_blocks_per_kw: 875,
                in_1008_blocks_per_kw: 300,
            }
        );
        // sat/vB -> sat/kw rounds up.
        let e = estimates(&[(2, 10.001), (144, 1.001), (1008, 1.0)]).fee_estimates();
        assert_eq!(
            (
                e.commitment_per_kw,
                e.in_144_blocks_per_kw,
                e.in_1008_blocks_per_kw
            ),
            (2501, 253, 253)
        );
    }

    #[test]
    fn policy_estimates_fall_back() {
        // Nothing fetched: the commitment's fallback (10 sat/vB), floors at 253.
        let e = FeeCache::default().fee_estimates();
        assert_eq!(
            (
                e.commitment_per_kw,
                e.in_144_blocks_per_kw,
                e.in_1008_blocks_per_kw
            ),
            (2500, 253, 253)
        );
        // No 144 or 1008 key: the largest target below (as ldk-node reads them).
        let e = estimates(&[(1, 40.0), (6, 20.0), (25, 8.0)]).fee_estimates();
        assert_eq!(
            (e.in_144_blocks_per_kw, e.in_1008_blocks_per_kw),
            (2000, 2000)
        );
        let e = estimates(&[(6, 20.0), (144, 4.0), (504, 2.0)]).fee_estimates();
        assert_eq!(
            (e.in_144_blocks_per_kw, e.in_1008_blocks_per_kw),
            (1000, 500)
        );
        // Nothing at or below: the smallest target above.
        let e = estimates(&[(504, 2.0), (1008, 1.5)]).fee_estimates();
        assert_eq!(
            (e.in_144_blocks_per_kw, e.in_1008_blocks_per_kw),
            (500, 375)
        );
        assert_eq!(
            e.commitment_per_kw, 500,
            "HighPriority falls back to the largest target"
        );
        // Unusable values are skipped; below 1 sat/vB is floored.
        let e = estimates(&[(25, 6.0), (144, f64::NAN), (1008, -1.0)]).fee_estimates();
        assert_eq!(
            (e.in_144_blocks_per_kw, e.in_1008_blocks_per_kw),
            (1500, 1500)
        );
        let e = estimates(&[(144, 0.2), (1008, 0.1)]).fee_estimates();
        assert_eq!(
            (e.in_144_blocks_per_kw, e.in_1008_blocks_per_kw),
            (253, 253)
        );
        // Absurd values saturate.
        let e = estimates(&[(2, 1e30), (144, 1e30)]).fee_estimates();
        assert_eq!(
            (e.commitment_per_kw, e.in_144_blocks_per_kw),
            (u32::MAX, u32::MAX)
        );
    }
}
