//! The commitment fee policy, pure: as funder, which feerate a ready channel's commitment
//! should move to (the driver then feeds [`super::Input::SetFeerate`]); as fundee, which
//! `update_fee` feerates we accept. No I/O: the estimates are an input ([`FeeEstimates`], built
//! by the driver from its fee cache).
//!
//! # As funder ([`funder_feerate`], [`Channel::wanted_feerate`])
//!
//! BOLT 2 ("Updating Fees") makes the funder keep the feerate "sufficient (by a significant
//! margin) for timely processing of the commitment transaction". The rule:
//!
//! - **raise** whenever the wanted feerate is above the current one;
//! - **lower** only when the wanted feerate is at most half the current one — LDK's own rule
//!   (lightning 0.2.7, `ChannelManager::update_channel_fee`: a decrease is sent only when
//!   `new_feerate * 2 <= current_feerate`), which keeps estimator noise from producing an
//!   `update_fee` (and two signatures each way) on every block;
//! - **never below a floor**: max(253, our 144-block estimate) for `static_remotekey` channels,
//!   max(253, our 1008-block estimate) for anchor channels.
//!
//! The wanted feerate is [`FeeEstimates::commitment_per_kw`] raised to the floor.
//!
//! Why these floors: an LDK fundee (ldk-node, every LSP built on LDK) checks on every block,
//! whether or not we are connected, that the feerate of a channel it did not fund is not below
//! the lowest of its `MinAllowed*ChannelRemoteFee` estimates over the past day (144 blocks),
//! and force-closes it if it is (lightning 0.2.7, `FundedChannel::check_for_stale_feerate`,
//! called from `ChannelManager::best_block_updated` with the minimum over
//! `FEERATE_TRACKING_BLOCKS` = 144 blocks of estimates; it also refuses an `update_fee` below
//! them in `check_remote_fee`). ldk-node 0.7.1 (`fee_estimator.rs`,
//! `get_num_block_defaults_for_target`) derives `MinAllowedNonAnchorChannelRemoteFee` from its
//! 144-block estimate (minus 250 sat/kw, at least 253: `apply_post_estimation_adjustments`) and
//! `MinAllowedAnchorChannelRemoteFee` from its 1008-block estimate, each read from Esplora's
//! `/fee-estimates` as the largest target at or below the wanted one (esplora-client's
//! `convert_fee_rate`). A commitment never below our own estimates for those targets is never
//! below the peer's view of them, as long as both read similar servers.
//!
//! Why the commitment follows [`FeeEstimates::commitment_per_kw`] in both channel types, and not
//! only the floor for anchors (ldk-node funds anchor commitments at its 1008-block estimate): a
//! Tern funder is a phone that may have no wallet coin to CPFP through its anchor, so its
//! commitment should confirm on its own; the funder pays, the fundee never objects to more
//! (LDK 0.2 has no upper bound, see [`check_peer_feerate`]).
//!
//! # As fundee ([`check_peer_feerate`])
//!
//! Bounds on a funder's `update_fee` from [`ChannelConfig`]: `update_fee_min_per_kw` (default
//! 253, what lightning-kmp accepts from its LSP) and `update_fee_max_per_kw` (default
//! 1,000,000 sat/kw = 4,000 sat/vB). The reserve-affordability rule of BOLT 2 is the update
//! handler's.

use super::{Channel, ChannelConfig, ChannelState, Role, MIN_FEERATE_PER_KW};

/// The fee estimates the policy needs, in sat per 1000 weight units, each at least 253. The
/// driver builds them from its fee cache (`tern_core::chain::FeeCache::fee_estimates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeEstimates {
    /// What a commitment should pay now: the driver's ~2-block ("high priority") estimate, the
    /// same target the funder's first commitment uses at open, so that the policy never
    /// contradicts the open. Between ldk-node's `NonAnchorChannelFee` (12 blocks) and its
    /// `MaximumFeeEstimate` (1 block): a non-anchor commitment must confirm on its own at
    /// whatever time it is broadcast, possibly after a phone slept for days.
    pub commitment_per_kw: u32,
    /// Our estimate for confirmation within 144 blocks (a day): the floor of non-anchor
    /// channels.
    pub in_144_blocks_per_kw: u32,
    /// Our estimate for confirmation within 1008 blocks (a week): the floor of anchor channels.
    pub in_1008_blocks_per_kw: u32,
}

impl FeeEstimates {
    /// The lowest feerate a commitment of this type may have: max(253, the 144-block estimate)
    /// without anchors, max(253, the 1008-block estimate) with them.
    pub fn floor_per_kw(&self, anchors: bool) -> u32 {
        let estimate = if anchors {
            self.in_1008_blocks_per_kw
        } else {
            self.in_144_blocks_per_kw
        };
        estimate.max(MIN_FEERATE_PER_KW)
    }

    /// The feerate a commitment of this type should have now: the commitment estimate, raised
    /// to [`FeeEstimates::floor_per_kw`].
    pub fn wanted_per_kw(&self, anchors: bool) -> u32 {
        self.commitment_per_kw.max(self.floor_per_kw(anchors))
    }
}

/// The funder's decision: the feerate to move a commitment at `current_per_kw` to, or `None` to
/// leave it. Raises whenever the wanted feerate ([`FeeEstimates::wanted_per_kw`]) is above the
/// current one (a commitment below the floor always is); lowers only when it is at most half
/// the current one (LDK's rule, see the module docs).
pub fn funder_feerate(current_per_kw: u32, anchors: bool, est: &FeeEstimates) -> Option<u32> {
    let wanted = est.wanted_per_kw(anchors);
    let raise = wanted > current_per_kw;
    let lower = u64::from(wanted) * 2 <= u64::from(current_per_kw);
    (raise || lower).then_some(wanted)
}

/// The fundee's check of a funder's `update_fee` (BOLT 2: "too low for timely processing, OR
/// unreasonably large" must get a `warning` and a disconnect, or an `error`). `current_per_kw`
/// is the feerate of the commitment the update replaces.
///
/// - Below `config.update_fee_min_per_kw` (never below 253): refused, unless it raises the
///   current feerate — a commitment that pays more is better than the one we hold, and refusing
///   it only keeps the lower one (LDK's `check_remote_fee` accepts it too, with a warning).
/// - Above `config.update_fee_max_per_kw`: refused. LDK has no upper bound since 0.0.118
///   (rust-lightning PR #2696, "Drop non-anchor channel fee upper bound limit entirely": the
///   bound only caused spurious force-closes, and its purpose, limiting dust inflation, is the
///   HTLC dust-exposure check's). The funder pays the commitment fee out of its own balance, so
///   a high feerate costs us nothing; the default (4,000 sat/vB, well above any feerate the
///   network has seen) only catches nonsense.
///
/// Whether the funder can afford the feerate above its reserve is the update handler's check.
pub fn check_peer_feerate(
    config: &ChannelConfig,
    current_per_kw: u32,
    proposed_per_kw: u32,
) -> Result<(), String> {
    let min = config.update_fee_min_per_kw.max(MIN_FEERATE_PER_KW);
    if proposed_per_kw < min && proposed_per_kw <= current_per_kw {
        return Err(format!(
            "update_fee feerate_per_kw {proposed_per_kw} is below our minimum {min}"
        ));
    }
    if proposed_per_kw > config.update_fee_max_per_kw {
        return Err(format!(
            "update_fee feerate_per_kw {proposed_per_kw} is above our maximum {}",
            config.update_fee_max_per_kw
        ));
    }
    Ok(())
}

impl Channel {
    /// The feerate this channel's commitment should move to now ([`funder_feerate`] applied to
    /// [`Channel::commitment_feerate_per_kw`]), only for a [`ChannelState::Ready`] channel we
    /// fund; `None` otherwise, or when the feerate is right. The floor is that of the
    /// channel's commitment type. It does not look at [`Channel::update_pending`]: the
    /// driver feeds [`super::Input::SetFeerate`] only when no update is in flight.
    pub fn wanted_feerate(&self, est: &FeeEstimates) -> Option<u32> {
        if self.role() != Role::Funder || self.state() != ChannelState::Ready {
            return None;
        }
        let anchors = self.channel_type().anchors;
        funder_feerate(self.commitment_feerate_per_kw(), anchors, est)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(commitment: u32, in_144: u32, in_1008: u32) -> FeeEstimates {
        FeeEstimates {
            commitment_per_kw: commitment,
            in_144_blocks_per_kw: in_144,
            in_1008_blocks_per_kw: in_1008,
        }
    }

    #[test]
    fn raises_whenever_the_estimate_is_above() {
        let e = est(1001, 253, 253);
        for anchors in [false, true] {
            assert_eq!(funder_feerate(1000, anchors, &e), Some(1001));
            assert_eq!(funder_feerate(253, anchors, &e), Some(1001));
            assert_eq!(funder_feerate(0, anchors, &e), Some(1001));
        }
        assert_eq!(
            funder_feerate(1000, false, &est(u32::MAX, 253, 253)),
            Some(u32::MAX)
        );
    }

    #[test]
    fn equal_changes_nothing() {
        for anchors in [false, true] {
            assert_eq!(funder_feerate(1000, anchors, &est(1000, 253, 253)), None);
        }
    }

    #[test]
    fn lowers_only_at_half_or_below() {
        // Exactly half: lowered.
        assert_eq!(
            funder_feerate(2000, false, &est(1000, 253, 253)),
            Some(1000)
        );
        // Just above half: kept.
        assert_eq!(funder_feerate(2000, false, &est(1001, 253, 253)), None);
        assert_eq!(funder_feerate(1999, false, &est(1000, 253, 253)), None);
        // Well below half: lowered to the estimate.
        assert_eq!(
            funder_feerate(10_000, false, &est(300, 253, 253)),
            Some(300)
        );
        // An odd current feerate: half rounds against lowering.
        assert_eq!(
            funder_feerate(2001, false, &est(1000, 253, 253)),
            Some(1000)
        );
        assert_eq!(funder_feerate(2001, false, &est(1001, 253, 253)), None);
        // No overflow at the top of the range.
        assert_eq!(
            funder_feerate(u32::MAX, false, &est(u32::MAX / 2, 253, 253)),
            Some(u32::MAX / 2)
        );
        assert_eq!(
            funder_feerate(u32::MAX, false, &est(u32::MAX / 2 + 1, 253, 253)),
            None
        );
    }

    #[test]
    fn never_below_253() {
        // Estimates below the relay floor (a bad cache) still give 253.
        let e = est(100, 100, 100);
        for anchors in [false, true] {
            assert_eq!(e.floor_per_kw(anchors), 253);
            assert_eq!(e.wanted_per_kw(anchors), 253);
            assert_eq!(funder_feerate(253, anchors, &e), None);
            assert_eq!(funder_feerate(252, anchors, &e), Some(253));
            assert_eq!(funder_feerate(506, anchors, &e), Some(253));
            assert_eq!(funder_feerate(505, anchors, &e), None);
        }
    }

    #[test]
    fn non_anchor_floor_is_the_144_block_estimate() {
        // The commitment estimate below the day's: the day's wins.
        let e = est(300, 800, 400);
        assert_eq!(e.floor_per_kw(false), 800);
        assert_eq!(funder_feerate(799, false, &e), Some(800));
        assert_eq!(funder_feerate(800, false, &e), None);
        // Lowering stops at the floor, and only when the floor is at most half.
        assert_eq!(funder_feerate(1600, false, &e), Some(800));
        assert_eq!(funder_feerate(1599, false, &e), None);
        // The 1008-block estimate plays no part without anchors.
        assert_eq!(funder_feerate(500, false, &est(300, 253, 5000)), None);
        assert_eq!(funder_feerate(600, false, &est(300, 253, 5000)), Some(300));
    }

    #[test]
    fn anchor_floor_is_the_1008_block_estimate() {
        let e = est(300, 800, 400);
        assert_eq!(e.floor_per_kw(true), 400);
        assert_eq!(funder_feerate(399, true, &e), Some(400));
        assert_eq!(funder_feerate(400, true, &e), None);
        assert_eq!(funder_feerate(800, true, &e), Some(400));
        assert_eq!(funder_feerate(799, true, &e), None);
        // The 144-block estimate plays no part with anchors.
        assert_eq!(funder_feerate(600, true, &est(300, 5000, 253)), Some(300));
        // Same estimates, the other type: the day's floor.
        assert_eq!(funder_feerate(600, false, &est(300, 5000, 253)), Some(5000));
    }

    /// A channel from a golden fixture (`core/tests/fixtures/records`, read only).
    fn fixture(hex: &str) -> Channel {
        use bitcoin::hex::FromHex;
        let bytes = Vec::<u8>::from_hex(hex.trim()).expect("hex");
        Channel::from_record(super::super::ChannelRecord::decode(&bytes).expect("record"))
    }

    #[test]
    fn wanted_only_for_a_ready_channel_we_fund() {
        let funders = [
            (
                fixture(include_str!(
                    "../../../tests/fixtures/records/channel_v1_funder_ready.hex"
                )),
                false,
            ),
            (
                fixture(include_str!(
                    "../../../tests/fixtures/records/channel_v1_funder_anchors_ready.hex"
                )),
                true,
            ),
        ];
        for (funder, anchors) in &funders {
            assert_eq!(funder.channel_type().anchors, *anchors);
            assert_eq!(
                (funder.role(), funder.state()),
                (Role::Funder, ChannelState::Ready)
            );
            let current = funder.commitment_feerate_per_kw();
            assert!(current > 253, "{current}");
            assert_eq!(
                funder.wanted_feerate(&est(current + 1, 253, 253)),
                Some(current + 1)
            );
            assert_eq!(funder.wanted_feerate(&est(current, 253, 253)), None);
            assert_eq!(
                funder.wanted_feerate(&est(current / 2, 253, 253)),
                Some(current / 2)
            );
            // The floor of the channel's type applies.
            let floor = funder.wanted_feerate(&est(253, current + 5, 253));
            if *anchors {
                assert_eq!(floor, (current >= 506).then_some(253));
            } else {
                assert_eq!(floor, Some(current + 5));
            }
        }
        let others = [
            include_str!("../../../tests/fixtures/records/channel_v1_fundee_ready.hex"),
            include_str!(
                "../../../tests/fixtures/records/channel_v1_funder_awaiting_channel_ready.hex"
            ),
            include_str!(
                "../../../tests/fixtures/records/channel_v1_funder_awaiting_confirmations.hex"
            ),
            include_str!(
                "../../../tests/fixtures/records/channel_v1_funder_failed_double_spent.hex"
            ),
        ];
        for hex in others {
            let c = fixture(hex);
            assert!(c.role() == Role::Fundee || c.state() != ChannelState::Ready);
            assert_eq!(
                c.wanted_feerate(&est(u32::MAX, u32::MAX, u32::MAX)),
                None,
                "{:?}",
                c.state()
            );
            assert_eq!(
                c.wanted_feerate(&est(253, 253, 253)),
                None,
                "{:?}",
                c.state()
            );
        }
    }

    #[test]
    fn peer_feerate_bounds() {
        let config = ChannelConfig::new(bitcoin::constants::ChainHash::REGTEST);
        assert_eq!(config.update_fee_min_per_kw, 253);
        assert_eq!(config.update_fee_max_per_kw, 1_000_000);
        assert_eq!(check_peer_feerate(&config, 1000, 253), Ok(()));
        assert_eq!(check_peer_feerate(&config, 1000, 1_000_000), Ok(()));
        let low = check_peer_feerate(&config, 1000, 252).expect_err("below 253");
        assert!(low.contains("252") && low.contains("253"), "{low}");
        let high = check_peer_feerate(&config, 1000, 1_000_001).expect_err("above the max");
        assert!(high.contains("1000001"), "{high}");
        // Below the minimum but a raise: accepted (better than what we hold).
        assert_eq!(check_peer_feerate(&config, 200, 252), Ok(()));
        assert!(
            check_peer_feerate(&config, 252, 252).is_err(),
            "not a raise"
        );
        // A configured minimum above 253, and one below (never under 253).
        let mut strict = config.clone();
        strict.update_fee_min_per_kw = 1000;
        assert!(check_peer_feerate(&strict, 2000, 999).is_err());
        assert_eq!(check_peer_feerate(&strict, 2000, 1000), Ok(()));
        assert_eq!(check_peer_feerate(&strict, 500, 999), Ok(()), "a raise");
        strict.update_fee_min_per_kw = 1;
        assert!(check_peer_feerate(&strict, 2000, 252).is_err());
        strict.update_fee_max_per_kw = 5000;
        assert!(check_peer_feerate(&strict, 2000, 5001).is_err());
        assert!(
            check_peer_feerate(&strict, 200, 5001).is_err(),
            "a raise, but too large"
        );
    }
}
