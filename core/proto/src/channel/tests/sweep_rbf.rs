//! The sweep fee bump (`resolve_sweep.rs` `bump_sweeps`) follows BIP125 through
//! [`crate::bolt3::SweepTx::replacement`]: a replacement pays the new estimate's fee and at
//! least the old fee plus 1 sat/vB of its own size (rules 3 and 4), never less, and nothing is
//! replaced when the estimate does not rise above what the sweep pays.

use super::harness::{kinds, Pair};
use super::resolve::{broadcasts, fees, node, wallet_script};
use crate::channel::{BroadcastKind, CloseKind, Input};

fn fee_of(sweep: &bitcoin::Transaction, spent: &bitcoin::Transaction) -> u64 {
    let vout = sweep.input[0].previous_output.vout as usize;
    (spent.output[vout].value - sweep.output[0].value).to_sat()
}

/// The weight the sweep's fee is computed on: the signed weight with a 73-byte signature
/// (the signature actually made is 71–73 bytes).
fn fee_weight(sweep: &bitcoin::Transaction) -> u64 {
    let sig = sweep.input[0].witness.nth(0).map_or(73, <[u8]>::len) as u64;
    sweep.weight().to_wu() + (73 - sig)
}

#[test]
fn a_sweep_is_replaced_by_bip125_rules_three_and_four() {
    for funder in [true, false] {
        let mut pair = Pair::open_to_ready();
        // The peer's current commitment spends the funding: our to_remote is swept at once,
        // at the 144-block estimate.
        let theirs = {
            let peer = node(&mut pair, !funder);
            peer.channel()
                .signed_our_commitment(&peer.ctx())
                .expect("commitment")
        };
        let us = node(&mut pair, funder);
        us.destination = wallet_script(3);
        us.estimates = fees(2_000, 1_000);
        let actions = us.input(Input::FundingSpent {
            spending_tx: theirs.clone(),
            confirmation_height: None,
        });
        assert_eq!(us.channel().close_kind(), Some(CloseKind::RemoteForce));
        let [first] = broadcasts(&actions, BroadcastKind::Sweep)
            .try_into()
            .expect("one sweep");
        let weight = fee_weight(&first);
        let vsize = weight.div_ceil(4);
        assert_eq!(fee_of(&first, &theirs), (1_000 * weight).div_ceil(1000));

        // One sat/kw more: the estimate's fee is hardly more, so rule 4 sets it — the old fee
        // plus 1 sat/vB of the replacement's size, exactly.
        us.estimates = fees(2_000, 1_001);
        pair.mine(1);
        let us = node(&mut pair, funder);
        let step = us.history.last().cloned().expect("acted");
        assert_eq!(
            kinds(&step),
            ["Persist", "BroadcastSweep", "WatchOutput"],
            "funder {funder}"
        );
        let [second] = broadcasts(&step, BroadcastKind::Sweep)
            .try_into()
            .expect("one");
        assert_eq!(
            second.input[0].previous_output,
            first.input[0].previous_output
        );
        assert_eq!(second.input[0].sequence, first.input[0].sequence);
        assert_eq!(
            second.output[0].script_pubkey,
            first.output[0].script_pubkey
        );
        assert_eq!(
            fee_of(&second, &theirs),
            fee_of(&first, &theirs) + vsize,
            "rule 4: the old fee plus the incremental relay fee of its size"
        );

        // What it pays now covers an estimate up to its own rate: no replacement, the same
        // sweep rebroadcast.
        let paid_per_kw = (fee_of(&second, &theirs) * 1000 / weight) as u32;
        assert!(paid_per_kw > 1_001, "{paid_per_kw}");
        us.estimates = fees(2_000, paid_per_kw);
        pair.mine(1);
        let step = node(&mut pair, funder)
            .history
            .last()
            .cloned()
            .expect("acted");
        assert_eq!(kinds(&step), ["BroadcastSweep"]);
        assert_eq!(
            broadcasts(&step, BroadcastKind::Sweep),
            std::slice::from_ref(&second)
        );

        // A large rise: rule 3's bound is far below the estimate's fee, which it pays.
        let us = node(&mut pair, funder);
        us.estimates = fees(2_000, 5_000);
        pair.mine(1);
        let step = node(&mut pair, funder)
            .history
            .last()
            .cloned()
            .expect("acted");
        let [third] = broadcasts(&step, BroadcastKind::Sweep)
            .try_into()
            .expect("one");
        assert_eq!(fee_of(&third, &theirs), (5_000 * weight).div_ceil(1000));
        assert!(fee_of(&third, &theirs) >= fee_of(&second, &theirs) + vsize);

        // A fall never replaces.
        let us = node(&mut pair, funder);
        us.estimates = fees(2_000, 300);
        pair.mine(1);
        let step = node(&mut pair, funder)
            .history
            .last()
            .cloned()
            .expect("acted");
        assert_eq!(broadcasts(&step, BroadcastKind::Sweep), [third]);
    }
}
