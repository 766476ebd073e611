//! Fee and trimming rules.
//!
//! See [BOLT 3 "Fee Calculation"](https://github.com/lightning/bolts/blob/master/03-transactions.md#fee-calculation)
//! and ["Trimmed Outputs"](https://github.com/lightning/bolts/blob/master/03-transactions.md#trimmed-outputs).

use bitcoin::Amount;

use super::commitment::{Htlc, HtlcDirection};
use super::ChannelType;

/// Value of each anchor output (`option_anchors`).
pub const ANCHOR_OUTPUT_VALUE: Amount = Amount::from_sat(330);

const COMMITMENT_BASE_WEIGHT: u64 = 724;
const COMMITMENT_BASE_WEIGHT_ANCHORS: u64 = 1124;
const HTLC_OUTPUT_WEIGHT: u64 = 172;
const HTLC_TIMEOUT_WEIGHT: u64 = 663;
const HTLC_SUCCESS_WEIGHT: u64 = 703;

fn fee(feerate_per_kw: u32, weight: u64) -> Amount {
    Amount::from_sat(u64::from(feerate_per_kw) * weight / 1000)
}

/// The base fee of a commitment transaction with `untrimmed_htlcs` HTLC outputs.
pub fn commitment_fee(
    feerate_per_kw: u32,
    untrimmed_htlcs: usize,
    channel_type: ChannelType,
) -> Amount {
    let base = if channel_type.anchors {
        COMMITMENT_BASE_WEIGHT_ANCHORS
    } else {
        COMMITMENT_BASE_WEIGHT
    };
    fee(
        feerate_per_kw,
        base + HTLC_OUTPUT_WEIGHT * untrimmed_htlcs as u64,
    )
}

/// The fee of an HTLC-timeout transaction (0 with anchors).
pub fn htlc_timeout_fee(feerate_per_kw: u32, channel_type: ChannelType) -> Amount {
    if channel_type.anchors {
        Amount::ZERO
    } else {
        fee(feerate_per_kw, HTLC_TIMEOUT_WEIGHT)
    }
}

/// The fee of an HTLC-success transaction (0 with anchors).
pub fn htlc_success_fee(feerate_per_kw: u32, channel_type: ChannelType) -> Amount {
    if channel_type.anchors {
        Amount::ZERO
    } else {
        fee(feerate_per_kw, HTLC_SUCCESS_WEIGHT)
    }
}

/// Whether an HTLC is trimmed from a commitment whose owner has `dust_limit`.
pub fn htlc_is_trimmed(
    htlc: &Htlc,
    dust_limit: Amount,
    feerate_per_kw: u32,
    channel_type: ChannelType,
) -> bool {
    let second_stage_fee = match htlc.direction {
        HtlcDirection::Offered => htlc_timeout_fee(feerate_per_kw, channel_type),
        HtlcDirection::Received => htlc_success_fee(feerate_per_kw, channel_type),
    };
    let amount = Amount::from_sat(htlc.amount_msat / 1000);
    amount < dust_limit + second_stage_fee
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::{sha256, Hash};

    /// The example in BOLT 3 "Fee Calculation".
    #[test]
    fn spec_fee_example() {
        let dust = Amount::from_sat(546);
        let ct = ChannelType::default();
        let htlc = |direction, amount_msat| Htlc {
            direction,
            amount_msat,
            payment_hash: sha256::Hash::all_zeros(),
            cltv_expiry: 0,
        };
        assert_eq!(htlc_timeout_fee(5000, ct), Amount::from_sat(3315));
        assert_eq!(htlc_success_fee(5000, ct), Amount::from_sat(3515));
        let htlcs = [
            htlc(HtlcDirection::Offered, 5_000_000),
            htlc(HtlcDirection::Offered, 1_000_000),
            htlc(HtlcDirection::Received, 7_000_000),
            htlc(HtlcDirection::Received, 800_000),
        ];
        let untrimmed = htlcs
            .iter()
            .filter(|h| !htlc_is_trimmed(h, dust, 5000, ct))
            .count();
        assert_eq!(untrimmed, 2);
        assert_eq!(commitment_fee(5000, untrimmed, ct), Amount::from_sat(5340));
    }
}
