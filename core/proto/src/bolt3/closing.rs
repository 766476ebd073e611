//! Cooperative closing transactions.
//!
//! See [BOLT 3 "Legacy Closing Transaction"](https://github.com/lightning/bolts/blob/master/03-transactions.md#legacy-closing-transaction)
//! and [BOLT 5](https://github.com/lightning/bolts/blob/master/05-onchain.md).

use bitcoin::absolute::LockTime;
use bitcoin::secp256k1::{
    ecdsa::Signature, PublicKey, Secp256k1, SecretKey, Signing, Verification,
};
use bitcoin::transaction::Version;
use bitcoin::{Amount, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

use super::funding::FundingInput;
use super::Bolt3Error;

/// Inputs of [`build_closing_tx`] (legacy `closing_signed` variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosingTxParams {
    /// The funding output.
    pub funding: FundingInput,
    /// Our final balance in msat.
    pub to_local_msat: u64,
    /// Their final balance in msat.
    pub to_remote_msat: u64,
    /// Our `shutdown` scriptpubkey.
    pub local_script: ScriptBuf,
    /// Their `shutdown` scriptpubkey.
    pub remote_script: ScriptBuf,
    /// `fee_satoshis`, paid by the funder.
    pub fee: Amount,
    /// Whether we funded the channel.
    pub local_is_funder: bool,
    /// The signer's `dust_limit_satoshis`: outputs below it are removed.
    pub dust_limit: Amount,
}

/// An unsigned cooperative closing transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosingTx {
    /// The unsigned transaction.
    pub tx: Transaction,
    /// The funding input.
    pub funding: FundingInput,
}

/// Builds the legacy closing transaction we sign: version 2, locktime 0, sequence 0xFFFFFFFF,
/// amounts rounded down, fee subtracted from the funder, outputs below `params.dust_limit`
/// (our own `dust_limit_satoshis`, BOLT 3) removed, outputs in BIP69 order.
pub fn build_closing_tx(params: &ClosingTxParams) -> Result<ClosingTx, Bolt3Error> {
    let (to_local, to_remote) = closing_balances(params)?;
    let keep = |value: u64| value >= params.dust_limit.to_sat();
    Ok(closing_tx(
        params,
        keep(to_local).then_some(to_local),
        keep(to_remote).then_some(to_remote),
    ))
}

/// Every closing transaction whose signature by the peer we accept, for one `fee_satoshis`
/// (BOLT 2: the signature must be valid for "either variant", BOLT 3 "Legacy Closing
/// Transaction"): the transaction [`build_closing_tx`] builds, then that one without our
/// output, then without theirs. Deduplicated, and never a transaction without outputs.
///
/// BOLT 3 lets a signer remove outputs below *its own* dust limit and eliminate its own
/// output, never ours otherwise. So the variant without our output is only offered when our
/// output is at most `their_dust_limit` (their `dust_limit_satoshis`; "at most" rather than
/// "below" because LDK removes outputs *at* its limit too): a peer cannot make us sign away a
/// balance it had no right to drop. The caller verifies the peer's signature against each
/// candidate in order and signs back the one that matched ([`verify_closing_signature`]).
pub fn closing_tx_variants(
    params: &ClosingTxParams,
    their_dust_limit: Amount,
) -> Result<Vec<ClosingTx>, Bolt3Error> {
    let built = build_closing_tx(params)?;
    let (to_local, to_remote) = closing_balances(params)?;
    let keep = |value: u64| value >= params.dust_limit.to_sat();
    let ours = keep(to_local).then_some(to_local);
    let theirs = keep(to_remote).then_some(to_remote);
    let mut variants = vec![built];
    if to_local <= their_dust_limit.to_sat() {
        variants.push(closing_tx(params, None, theirs));
    }
    variants.push(closing_tx(params, ours, None));
    let mut unique: Vec<ClosingTx> = Vec::with_capacity(variants.len());
    for variant in variants {
        if !variant.tx.output.is_empty() && !unique.contains(&variant) {
            unique.push(variant);
        }
    }
    Ok(unique)
}

/// Verifies the peer's `closing_signed` signature (by `their_funding_pubkey`) against every
/// [`closing_tx_variants`] candidate and returns the first one it signs: the transaction the
/// caller signs back and broadcasts. [`Bolt3Error::InvalidSignature`] if none matches.
pub fn verify_closing_signature<C: Verification>(
    secp: &Secp256k1<C>,
    params: &ClosingTxParams,
    their_dust_limit: Amount,
    signature: &Signature,
    their_funding_pubkey: &PublicKey,
) -> Result<ClosingTx, Bolt3Error> {
    closing_tx_variants(params, their_dust_limit)?
        .into_iter()
        .find(|variant| {
            variant
                .verify(secp, signature, their_funding_pubkey)
                .is_ok()
        })
        .ok_or(Bolt3Error::InvalidSignature {
            what: "closing transaction (every variant)",
        })
}

/// The weight of a legacy closing transaction with both signatures (73 bytes each, the
/// largest DER signature with its sighash byte) and both outputs, `params.local_script` and
/// `params.remote_script`, whatever their values (an output removed as dust only makes the
/// transaction lighter, so the fee is never too low; LDK counts both outputs too).
pub fn closing_tx_weight(params: &ClosingTxParams) -> u64 {
    let mut tx = closing_tx(params, Some(0), Some(0));
    let mut witness = Witness::new();
    witness.push([]);
    witness.push([0u8; MAX_SIG_LEN]);
    witness.push([0u8; MAX_SIG_LEN]);
    witness.push(params.funding.witness_script().as_bytes());
    if let Some(input) = tx.tx.input.first_mut() {
        input.witness = witness;
    }
    tx.tx.weight().to_wu()
}

/// The closing fee at `feerate_per_kw` (sat per 1000 weight units, rounded up):
/// [`closing_tx_weight`] × feerate. BOLT 3: the funder pays it (`fee_satoshis`).
pub fn closing_tx_fee(params: &ClosingTxParams, feerate_per_kw: u32) -> Amount {
    Amount::from_sat((closing_tx_weight(params) * u64::from(feerate_per_kw)).div_ceil(1000))
}

/// A DER signature of at most 72 bytes plus the sighash byte.
const MAX_SIG_LEN: usize = 73;

/// Both balances in whole satoshis (rounded down), the fee taken from the funder's.
fn closing_balances(params: &ClosingTxParams) -> Result<(u64, u64), Bolt3Error> {
    let mut to_local = params.to_local_msat / 1000;
    let mut to_remote = params.to_remote_msat / 1000;
    let funder = if params.local_is_funder {
        &mut to_local
    } else {
        &mut to_remote
    };
    *funder = funder
        .checked_sub(params.fee.to_sat())
        .ok_or(Bolt3Error::Amount {
            reason: "the funder cannot pay the closing fee",
        })?;
    let total = to_local
        .checked_add(to_remote)
        .and_then(|sum| sum.checked_add(params.fee.to_sat()));
    if total.is_none_or(|total| total > params.funding.amount.to_sat()) {
        return Err(Bolt3Error::Amount {
            reason: "closing outputs exceed the funding amount",
        });
    }
    Ok((to_local, to_remote))
}

/// The closing transaction with the given outputs (`None`: removed), in BIP69 order.
fn closing_tx(
    params: &ClosingTxParams,
    to_local: Option<u64>,
    to_remote: Option<u64>,
) -> ClosingTx {
    let mut outputs: Vec<TxOut> = [
        (to_local, &params.local_script),
        (to_remote, &params.remote_script),
    ]
    .into_iter()
    .filter_map(|(value, script)| {
        value.map(|value| TxOut {
            value: Amount::from_sat(value),
            script_pubkey: script.clone(),
        })
    })
    .collect();
    outputs.sort_by(|a, b| {
        a.value
            .cmp(&b.value)
            .then_with(|| a.script_pubkey.as_bytes().cmp(b.script_pubkey.as_bytes()))
    });
    ClosingTx {
        tx: Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: params.funding.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: outputs,
        },
        funding: params.funding,
    }
}

impl ClosingTx {
    /// Signs with a funding key.
    pub fn sign<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        funding_key: &SecretKey,
    ) -> Result<Signature, Bolt3Error> {
        self.funding.sign(secp, &self.tx, funding_key)
    }

    /// Verifies a funding-key signature.
    pub fn verify<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        signature: &Signature,
        pubkey: &PublicKey,
    ) -> Result<(), Bolt3Error> {
        self.funding.verify(secp, &self.tx, signature, pubkey)
    }

    /// The fully signed transaction.
    pub fn finalize(&self, local_sig: &Signature, remote_sig: &Signature) -> Transaction {
        self.funding.finalize(&self.tx, local_sig, remote_sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bolt3::p2wpkh_script_pubkey;
    use bitcoin::hashes::Hash;
    use bitcoin::OutPoint;
    use bitcoin::Txid;

    fn funding(secp: &Secp256k1<bitcoin::secp256k1::All>) -> (FundingInput, SecretKey, SecretKey) {
        let a = SecretKey::from_slice(&[1u8; 32]).expect("key");
        let b = SecretKey::from_slice(&[2u8; 32]).expect("key");
        let input = FundingInput {
            outpoint: OutPoint {
                txid: Txid::all_zeros(),
                vout: 1,
            },
            amount: Amount::from_sat(100_000),
            local_funding_pubkey: PublicKey::from_secret_key(secp, &a),
            remote_funding_pubkey: PublicKey::from_secret_key(secp, &b),
        };
        (input, a, b)
    }

    fn params(funding: FundingInput, to_local_msat: u64, local_is_funder: bool) -> ClosingTxParams {
        let local_pk = PublicKey::from_secret_key(
            &Secp256k1::new(),
            &SecretKey::from_slice(&[3u8; 32]).expect("key"),
        );
        ClosingTxParams {
            funding,
            to_local_msat,
            to_remote_msat: 100_000_000 - to_local_msat,
            local_script: p2wpkh_script_pubkey(&local_pk),
            remote_script: ScriptBuf::new_op_return([1u8; 4]),
            fee: Amount::from_sat(500),
            local_is_funder,
            dust_limit: Amount::from_sat(546),
        }
    }

    #[test]
    fn closing_tx_pays_fee_from_funder_and_drops_dust() {
        let secp = Secp256k1::new();
        let (funding, a, b) = funding(&secp);
        let close = build_closing_tx(&params(funding, 30_000_999, true)).expect("close");
        let values: Vec<u64> = close.tx.output.iter().map(|o| o.value.to_sat()).collect();
        // Each balance is rounded down: 30_000.999 and 69_999.001 sat.
        assert_eq!(values, vec![29_500, 69_999]);
        assert_eq!(close.tx.input[0].sequence, Sequence::MAX);
        let close = build_closing_tx(&params(funding, 30_000_000, false)).expect("close");
        let values: Vec<u64> = close.tx.output.iter().map(|o| o.value.to_sat()).collect();
        assert_eq!(values, vec![30_000, 69_500]);
        // Our output below the dust limit is removed.
        let close = build_closing_tx(&params(funding, 545_999, false)).expect("close");
        assert_eq!(close.tx.output.len(), 1);
        assert_eq!(close.tx.output[0].value.to_sat(), 98_954);
        // The funder cannot pay more than it has.
        assert!(build_closing_tx(&params(funding, 400_000, true)).is_err());

        let sig_a = close.sign(&secp, &a).expect("sign");
        let sig_b = close.sign(&secp, &b).expect("sign");
        close
            .verify(&secp, &sig_b, &funding.remote_funding_pubkey)
            .expect("verify");
        assert!(close
            .verify(&secp, &sig_a, &funding.remote_funding_pubkey)
            .is_err());
        let signed = close.finalize(&sig_a, &sig_b);
        assert_eq!(signed.input[0].witness.len(), 4);
    }

    /// A P2WPKH script of a fixed test key.
    fn p2wpkh(byte: u8) -> ScriptBuf {
        p2wpkh_script_pubkey(&PublicKey::from_secret_key(
            &Secp256k1::new(),
            &SecretKey::from_slice(&[byte; 32]).expect("key"),
        ))
    }

    /// Both balances in sat, the funder paying 500 sat, our dust limit as given.
    fn close_params(
        funding: FundingInput,
        to_local_sat: u64,
        to_remote_sat: u64,
        local_is_funder: bool,
        dust_limit_sat: u64,
    ) -> ClosingTxParams {
        ClosingTxParams {
            funding,
            to_local_msat: to_local_sat * 1000,
            to_remote_msat: to_remote_sat * 1000,
            local_script: p2wpkh(3),
            remote_script: p2wpkh(4),
            fee: Amount::from_sat(500),
            local_is_funder,
            dust_limit: Amount::from_sat(dust_limit_sat),
        }
    }

    fn values(tx: &ClosingTx) -> Vec<(u64, ScriptBuf)> {
        tx.tx
            .output
            .iter()
            .map(|o| (o.value.to_sat(), o.script_pubkey.clone()))
            .collect()
    }

    #[test]
    fn variants_are_as_built_then_without_ours_then_without_theirs() {
        let secp = Secp256k1::new();
        let (funding, a, b) = funding(&secp);
        let ours = p2wpkh(3);
        let theirs = p2wpkh(4);
        // Both outputs well above every dust limit: without ours is not offered (the peer
        // may not drop it), without theirs is.
        let p = close_params(funding, 40_000, 59_500, false, 355);
        let variants = closing_tx_variants(&p, Amount::from_sat(354)).expect("variants");
        assert_eq!(variants.len(), 2);
        assert_eq!(variants[0], build_closing_tx(&p).expect("build"));
        assert_eq!(
            values(&variants[0]),
            vec![(40_000, ours.clone()), (59_000, theirs.clone())]
        );
        assert_eq!(values(&variants[1]), vec![(40_000, ours.clone())]);
        // Our output within their dust limit: they may drop it.
        let p = close_params(funding, 600, 98_900, false, 355);
        let variants = closing_tx_variants(&p, Amount::from_sat(600)).expect("variants");
        let all: Vec<_> = variants.iter().map(values).collect();
        assert_eq!(
            all,
            vec![
                vec![(600, ours.clone()), (98_400, theirs.clone())],
                vec![(98_400, theirs.clone())],
                vec![(600, ours.clone())],
            ]
        );
        // Ours below our dust limit: one variant (without ours is the same, without theirs
        // would have no output).
        let p = close_params(funding, 354, 99_146, false, 355);
        let variants = closing_tx_variants(&p, Amount::from_sat(354)).expect("variants");
        let all: Vec<_> = variants.iter().map(values).collect();
        assert_eq!(all, vec![vec![(98_646, theirs.clone())]]);
        // A zero balance on our side likewise.
        let p = close_params(funding, 0, 99_500, false, 355);
        let variants = closing_tx_variants(&p, Amount::from_sat(354)).expect("variants");
        assert_eq!(variants.len(), 1);
        assert!(variants.iter().all(|v| !v.tx.output.is_empty()));
        // The funder unable to pay is an error, not an empty list.
        assert!(
            closing_tx_variants(&close_params(funding, 100, 99_400, true, 355), Amount::ZERO)
                .is_err()
        );

        // The matching variant comes back; a peer dropping our non-dust output is refused.
        let p = close_params(funding, 40_000, 59_500, false, 355);
        let without_theirs = closing_tx(&p, Some(40_000), None);
        let sig = without_theirs.sign(&secp, &b).expect("sign");
        let matched = verify_closing_signature(
            &secp,
            &p,
            Amount::from_sat(354),
            &sig,
            &funding.remote_funding_pubkey,
        )
        .expect("verifies");
        assert_eq!(matched, without_theirs);
        let without_ours = closing_tx(&p, None, Some(59_000));
        let sig = without_ours.sign(&secp, &b).expect("sign");
        assert!(matches!(
            verify_closing_signature(
                &secp,
                &p,
                Amount::from_sat(354),
                &sig,
                &funding.remote_funding_pubkey
            ),
            Err(Bolt3Error::InvalidSignature { .. })
        ));
        // Our own signature is not theirs.
        let built = build_closing_tx(&p).expect("build");
        let sig = built.sign(&secp, &a).expect("sign");
        assert!(verify_closing_signature(
            &secp,
            &p,
            Amount::from_sat(354),
            &sig,
            &funding.remote_funding_pubkey
        )
        .is_err());
    }

    /// LDK 0.2's legacy closing transaction, written from LDK's side ("holder" = LDK):
    /// outputs *at or below* its `holder_dust_limit_satoshis` (354) are dropped, and a
    /// signature from us is accepted on that transaction or on it without our output.
    struct Ldk {
        funding: FundingInput,
        to_tern: u64,
        to_ldk: u64,
    }

    impl Ldk {
        const DUST: u64 = 354;

        fn tx(&self, keep_tern: bool) -> Transaction {
            let mut outputs: Vec<TxOut> = [
                (self.to_tern, p2wpkh(3), keep_tern),
                (self.to_ldk, p2wpkh(4), true),
            ]
            .into_iter()
            .filter(|(value, _, keep)| *keep && *value > Self::DUST)
            .map(|(value, script_pubkey, _)| TxOut {
                value: Amount::from_sat(value),
                script_pubkey,
            })
            .collect();
            outputs.sort_by(|a, b| {
                a.value
                    .cmp(&b.value)
                    .then_with(|| a.script_pubkey.cmp(&b.script_pubkey))
            });
            Transaction {
                version: Version::TWO,
                lock_time: LockTime::ZERO,
                input: vec![TxIn {
                    previous_output: self.funding.outpoint,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                }],
                output: outputs,
            }
        }

        /// Whether LDK accepts our signature: on its transaction, else without our output.
        fn accepts(&self, secp: &Secp256k1<bitcoin::secp256k1::All>, sig: &Signature) -> bool {
            [self.tx(true), self.tx(false)].iter().any(|tx| {
                !tx.output.is_empty()
                    && self
                        .funding
                        .verify(secp, tx, sig, &self.funding.local_funding_pubkey)
                        .is_ok()
            })
        }
    }

    /// BOLT 3 with our dust limit 355 and LDK's "<= 354" rule build the same transaction for
    /// every balance; with the old 546, an LDK balance of 355-545 sat makes both sides refuse
    /// the other's signature (LDK force-closes), while our own balance of 355-545 still closes
    /// through LDK's "without the counterparty's output" variant.
    #[test]
    fn dust_limit_355_matches_ldk_exactly() {
        let secp = Secp256k1::new();
        let (funding, a, b) = funding(&secp);
        let their_dust = Amount::from_sat(Ldk::DUST);
        for small in [0u64, 353, 354, 355, 545, 546, 547] {
            // The small balance on each side in turn, the other side funding (paying 500).
            for tern_small in [true, false] {
                let (to_tern, to_ldk) = if tern_small {
                    (small, 100_000 - small)
                } else {
                    (100_000 - small, small)
                };
                let ldk = Ldk {
                    funding,
                    to_tern: if tern_small { to_tern } else { to_tern - 500 },
                    to_ldk: if tern_small { to_ldk - 500 } else { to_ldk },
                };
                let ldk_sig = funding.sign(&secp, &ldk.tx(true), &b).expect("sign");
                let case = format!("balance {small}, small side tern: {tern_small}");
                for dust in [355u64, 546] {
                    let p = close_params(funding, to_tern, to_ldk, !tern_small, dust);
                    let ours = build_closing_tx(&p).expect("build");
                    let our_sig = ours.sign(&secp, &a).expect("sign");
                    let theirs_verified = verify_closing_signature(
                        &secp,
                        &p,
                        their_dust,
                        &ldk_sig,
                        &funding.remote_funding_pubkey,
                    );
                    let mismatch_band = (355..=545).contains(&small);
                    if dust == 355 || !mismatch_band {
                        // Exactly LDK's transaction, both ways.
                        assert_eq!(ours.tx, ldk.tx(true), "{case}, dust {dust}");
                        assert!(ldk.accepts(&secp, &our_sig), "{case}, dust {dust}");
                        assert_eq!(
                            theirs_verified.expect("LDK's signature verifies").tx,
                            ours.tx,
                            "{case}, dust {dust}"
                        );
                    } else if tern_small {
                        // We drop our own output; LDK's fallback (without its counterparty's
                        // output) still verifies our signature, but LDK's own signature
                        // (both outputs) is on no variant we may sign.
                        assert_ne!(ours.tx, ldk.tx(true), "{case}");
                        assert_eq!(ours.tx, ldk.tx(false), "{case}");
                        assert!(ldk.accepts(&secp, &our_sig), "{case}");
                        assert!(theirs_verified.is_err(), "{case}");
                    } else {
                        // We drop LDK's output, which LDK keeps: neither side accepts the
                        // other's signature and LDK force-closes.
                        assert_ne!(ours.tx, ldk.tx(true), "{case}");
                        assert!(!ldk.accepts(&secp, &our_sig), "{case}");
                        assert!(theirs_verified.is_err(), "{case}");
                    }
                }
            }
        }
    }

    #[test]
    fn closing_fee_is_the_signed_weight_at_the_feerate() {
        let secp = Secp256k1::new();
        let (funding, a, b) = funding(&secp);
        let p = close_params(funding, 40_000, 59_500, true, 355);
        let weight = closing_tx_weight(&p);
        let built = build_closing_tx(&p).expect("build");
        let signed = built.finalize(
            &built.sign(&secp, &a).expect("sign"),
            &built.sign(&secp, &b).expect("sign"),
        );
        // Two 73-byte signatures assumed: at most 2 weight units each above DER's 71-73.
        let actual = signed.weight().to_wu();
        assert!(
            weight >= actual && weight <= actual + 4,
            "{weight} vs {actual}"
        );
        assert_eq!(closing_tx_fee(&p, 1000), Amount::from_sat(weight));
        assert_eq!(
            closing_tx_fee(&p, 253),
            Amount::from_sat((weight * 253).div_ceil(1000))
        );
        // Both outputs are counted even when one is dust.
        let dusty = close_params(funding, 0, 99_500, false, 355);
        assert_eq!(closing_tx_weight(&dusty), weight);
        // At 253 sat/kw the fee meets the 1 sat/vB relay floor.
        assert!(closing_tx_fee(&p, 253).to_sat() >= signed.vsize() as u64);
    }
}
