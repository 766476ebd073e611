//! Sweeps of a commitment's outputs: `to_local` after the CSV delay, `to_remote`, and the
//! penalty spend of a revoked `to_local`.
//!
//! See [BOLT 5](https://github.com/lightning/bolts/blob/master/05-onchain.md) and
//! [BOLT 3 "`to_local` Output"](https://github.com/lightning/bolts/blob/master/03-transactions.md#to_local-output).

use bitcoin::absolute::LockTime;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, Signing, Verification};
use bitcoin::sighash::{EcdsaSighashType, SegwitV0Sighash, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

use super::commitment::{CommitmentTx, OutputKind};
use super::funding::{sign_sighash, verify_sighash, witness_sig};
use super::scripts::{p2wpkh_script_pubkey, to_local_witness_script, to_remote_script};
use super::{Bolt3Error, ChannelType};
/// What a [`SweepTx`] spends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepKind {
    /// A `to_local` output (or an HTLC transaction's output) after `to_self_delay` blocks,
    /// with the delayed payment key.
    ToLocal {
        /// The output's witness script.
        witness_script: ScriptBuf,
        /// `local_delayedpubkey`, which signs.
        delayed_pubkey: PublicKey,
    },
    /// A revoked commitment's `to_local` output (or a revoked HTLC transaction's output),
    /// spent at once with the revocation key (penalty).
    RevokedToLocal {
        /// The output's witness script.
        witness_script: ScriptBuf,
        /// `revocationpubkey`, which signs.
        revocation_pubkey: PublicKey,
    },
    /// A P2WPKH `to_remote` output (static_remotekey), with the payment basepoint secret.
    ToRemote {
        /// The `remotepubkey`.
        pubkey: PublicKey,
    },
    /// An anchors `to_remote` output (1-block CSV), with the payment basepoint secret.
    ToRemoteAnchors {
        /// The output's witness script.
        witness_script: ScriptBuf,
    },
}

/// An unsigned transaction sweeping one output to a destination script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepTx {
    /// The unsigned transaction.
    pub tx: Transaction,
    /// What it spends.
    pub kind: SweepKind,
    /// Value of the spent output.
    pub amount: Amount,
}

const DUMMY_SIG_LEN: usize = 73;

/// Bitcoin Core's default incremental relay fee (BIP125 rule 4), in sat per vbyte.
const INCREMENTAL_RELAY_SAT_PER_VB: u64 = 1;

impl SweepTx {
    /// Sweeps a CSV-delayed output with witness script
    /// [`to_local_witness_script`]`(revocation_pubkey, to_self_delay, delayed_pubkey)`.
    /// The input's nSequence is `to_self_delay`, so the transaction is only valid once the
    /// spent output has that many confirmations.
    pub fn to_local(
        outpoint: OutPoint,
        amount: Amount,
        revocation_pubkey: &PublicKey,
        to_self_delay: u16,
        delayed_pubkey: &PublicKey,
        destination: ScriptBuf,
        feerate_per_kw: u32,
    ) -> Result<Self, Bolt3Error> {
        let witness_script =
            to_local_witness_script(revocation_pubkey, to_self_delay, delayed_pubkey);
        Self::build(
            outpoint,
            amount,
            Sequence(u32::from(to_self_delay)),
            SweepKind::ToLocal {
                witness_script,
                delayed_pubkey: *delayed_pubkey,
            },
            destination,
            feerate_per_kw,
        )
    }

    /// Penalty: spends a revoked CSV-delayed output with witness script
    /// [`to_local_witness_script`]`(revocation_pubkey, to_self_delay, delayed_pubkey)` at once,
    /// signed by the revocation private key.
    pub fn revoked_to_local(
        outpoint: OutPoint,
        amount: Amount,
        revocation_pubkey: &PublicKey,
        to_self_delay: u16,
        delayed_pubkey: &PublicKey,
        destination: ScriptBuf,
        feerate_per_kw: u32,
    ) -> Result<Self, Bolt3Error> {
        let witness_script =
            to_local_witness_script(revocation_pubkey, to_self_delay, delayed_pubkey);
        Self::build(
            outpoint,
            amount,
            Sequence::ENABLE_RBF_NO_LOCKTIME,
            SweepKind::RevokedToLocal {
                witness_script,
                revocation_pubkey: *revocation_pubkey,
            },
            destination,
            feerate_per_kw,
        )
    }

    /// Sweeps a `to_remote` output paying `remote_pubkey` (our payment basepoint).
    pub fn to_remote(
        outpoint: OutPoint,
        amount: Amount,
        remote_pubkey: &PublicKey,
        channel_type: ChannelType,
        destination: ScriptBuf,
        feerate_per_kw: u32,
    ) -> Result<Self, Bolt3Error> {
        let (kind, sequence) = match to_remote_script(remote_pubkey, channel_type) {
            (_, Some(witness_script)) => {
                (SweepKind::ToRemoteAnchors { witness_script }, Sequence(1))
            }
            (_, None) => (
                SweepKind::ToRemote {
                    pubkey: *remote_pubkey,
                },
                Sequence::ENABLE_RBF_NO_LOCKTIME,
            ),
        };
        Self::build(
            outpoint,
            amount,
            sequence,
            kind,
            destination,
            feerate_per_kw,
        )
    }

    /// Sweeps the `to_local` output of the owner's commitment, if it has one.
    pub fn from_commitment_to_local(
        commitment: &CommitmentTx,
        destination: ScriptBuf,
        feerate_per_kw: u32,
    ) -> Result<Option<Self>, Bolt3Error> {
        let Some(vout) = commitment.output_index(OutputKind::ToLocal) else {
            return Ok(None);
        };
        let amount = commitment.tx.output[vout as usize].value;
        Self::to_local(
            OutPoint {
                txid: commitment.tx.compute_txid(),
                vout,
            },
            amount,
            &commitment.keys.revocation_pubkey,
            commitment.to_self_delay,
            &commitment.keys.local_delayed_pubkey,
            destination,
            feerate_per_kw,
        )
        .map(Some)
    }

    /// Penalty: claims the `to_local` output of a revoked commitment (owned by the other
    /// party, rebuilt from its keys), if it has one.
    pub fn from_commitment_revoked_to_local(
        commitment: &CommitmentTx,
        destination: ScriptBuf,
        feerate_per_kw: u32,
    ) -> Result<Option<Self>, Bolt3Error> {
        let Some(vout) = commitment.output_index(OutputKind::ToLocal) else {
            return Ok(None);
        };
        let amount = commitment.tx.output[vout as usize].value;
        Self::revoked_to_local(
            OutPoint {
                txid: commitment.tx.compute_txid(),
                vout,
            },
            amount,
            &commitment.keys.revocation_pubkey,
            commitment.to_self_delay,
            &commitment.keys.local_delayed_pubkey,
            destination,
            feerate_per_kw,
        )
        .map(Some)
    }

    /// Sweeps the `to_remote` output of a commitment (owned by the other party), if it has one.
    pub fn from_commitment_to_remote(
        commitment: &CommitmentTx,
        destination: ScriptBuf,
        feerate_per_kw: u32,
    ) -> Result<Option<Self>, Bolt3Error> {
        let Some(vout) = commitment.output_index(OutputKind::ToRemote) else {
            return Ok(None);
        };
        let amount = commitment.tx.output[vout as usize].value;
        Self::to_remote(
            OutPoint {
                txid: commitment.tx.compute_txid(),
                vout,
            },
            amount,
            &commitment.keys.remote_pubkey,
            commitment.channel_type,
            destination,
            feerate_per_kw,
        )
        .map(Some)
    }

    fn build(
        outpoint: OutPoint,
        amount: Amount,
        sequence: Sequence,
        kind: SweepKind,
        destination: ScriptBuf,
        feerate_per_kw: u32,
    ) -> Result<Self, Bolt3Error> {
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: outpoint,
                script_sig: ScriptBuf::new(),
                sequence,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: amount,
                script_pubkey: destination,
            }],
        };
        let sweep = Self { tx, kind, amount };
        let fee = sweep.fee_for(feerate_per_kw);
        sweep.with_fee(fee)
    }

    /// The same sweep paying `fee`: [`Bolt3Error::Uneconomical`] if what is left is below the
    /// destination's dust threshold.
    fn with_fee(mut self, fee: Amount) -> Result<Self, Bolt3Error> {
        let dust_threshold = self.destination().minimal_non_dust();
        let value = self
            .amount
            .checked_sub(fee)
            .filter(|v| *v >= dust_threshold)
            .ok_or(Bolt3Error::Uneconomical {
                amount: self.amount,
                fee,
                dust_threshold,
            })?;
        if let Some(output) = self.tx.output.first_mut() {
            output.value = value;
        }
        Ok(self)
    }

    /// The destination script.
    pub fn destination(&self) -> &ScriptBuf {
        &self.tx.output[0].script_pubkey
    }

    /// The weight of the signed transaction, counting a 73-byte signature (the largest DER
    /// signature with its sighash byte): what the fee is computed on.
    pub fn weight(&self) -> u64 {
        let mut tx = self.tx.clone();
        tx.input[0].witness = self.witness(&[0u8; DUMMY_SIG_LEN]);
        tx.weight().to_wu()
    }

    /// The fee this sweep pays (the spent amount minus the output).
    pub fn fee(&self) -> Amount {
        self.amount
            .checked_sub(self.tx.output[0].value)
            .unwrap_or(Amount::ZERO)
    }

    /// The fee at `feerate_per_kw` (sat per 1000 weight units, rounded up) for
    /// [`SweepTx::weight`].
    pub fn fee_for(&self, feerate_per_kw: u32) -> Amount {
        Amount::from_sat((u64::from(feerate_per_kw) * self.weight()).div_ceil(1000))
    }

    /// The same sweep (same input, nSequence and destination) rebuilt at `feerate_per_kw`,
    /// higher or lower: [`Bolt3Error::Uneconomical`] if the output would be dust.
    pub fn at_feerate(&self, feerate_per_kw: u32) -> Result<Self, Bolt3Error> {
        let fee = self.fee_for(feerate_per_kw);
        self.clone().with_fee(fee)
    }

    /// A BIP125 replacement of this (unconfirmed) sweep at `feerate_per_kw` or more: it pays
    /// at least this sweep's fee plus the incremental relay fee (1 sat/vB of its own size,
    /// Bitcoin Core's default), so that the mempool accepts it and evicts this one.
    /// [`Bolt3Error::Uneconomical`] if the output would be dust. Every sweep signals
    /// replaceability (nSequence below 0xfffffffe).
    pub fn replacement(&self, feerate_per_kw: u32) -> Result<Self, Bolt3Error> {
        let vsize = self.weight().div_ceil(4);
        let bumped = self.fee() + Amount::from_sat(vsize * INCREMENTAL_RELAY_SAT_PER_VB);
        let fee = self.fee_for(feerate_per_kw).max(bumped);
        self.clone().with_fee(fee)
    }

    /// The witness for a signature (with its sighash byte).
    fn witness(&self, sig: &[u8]) -> Witness {
        let mut witness = Witness::new();
        witness.push(sig);
        match &self.kind {
            SweepKind::ToLocal { witness_script, .. } => {
                witness.push([]);
                witness.push(witness_script.as_bytes());
            }
            SweepKind::RevokedToLocal { witness_script, .. } => {
                witness.push([1u8]);
                witness.push(witness_script.as_bytes());
            }
            SweepKind::ToRemote { pubkey } => witness.push(pubkey.serialize()),
            SweepKind::ToRemoteAnchors { witness_script } => {
                witness.push(witness_script.as_bytes())
            }
        }
        witness
    }

    fn script_code(&self) -> ScriptBuf {
        match &self.kind {
            SweepKind::ToLocal { witness_script, .. }
            | SweepKind::RevokedToLocal { witness_script, .. }
            | SweepKind::ToRemoteAnchors { witness_script } => witness_script.clone(),
            SweepKind::ToRemote { pubkey } => p2wpkh_script_pubkey(pubkey),
        }
    }

    /// The BIP143 `SIGHASH_ALL` sighash.
    pub fn sighash(&self) -> Result<SegwitV0Sighash, Bolt3Error> {
        let mut cache = SighashCache::new(&self.tx);
        let script = self.script_code();
        Ok(match self.kind {
            SweepKind::ToRemote { .. } => {
                cache.p2wpkh_signature_hash(0, &script, self.amount, EcdsaSighashType::All)?
            }
            _ => cache.p2wsh_signature_hash(0, &script, self.amount, EcdsaSighashType::All)?,
        })
    }

    /// Signs with the delayed payment key (to_local) or the payment basepoint secret
    /// (to_remote) and returns the signed transaction.
    pub fn sign<C: Signing + Verification>(
        &self,
        secp: &Secp256k1<C>,
        key: &SecretKey,
    ) -> Result<Transaction, Bolt3Error> {
        let sighash = self.sighash()?;
        let sig = sign_sighash(secp, &sighash, key);
        let expected = match &self.kind {
            SweepKind::ToRemote { pubkey } => *pubkey,
            SweepKind::ToLocal { delayed_pubkey, .. } => *delayed_pubkey,
            SweepKind::RevokedToLocal {
                revocation_pubkey, ..
            } => *revocation_pubkey,
            SweepKind::ToRemoteAnchors { .. } => PublicKey::from_secret_key(secp, key),
        };
        verify_sighash(secp, &sighash, &sig, &expected, "sweep key")?;
        let witness = self.witness(&witness_sig(&sig, EcdsaSighashType::All));
        let mut tx = self.tx.clone();
        tx.input[0].witness = witness;
        Ok(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;
    use bitcoin::Txid;

    #[test]
    fn sweep_rejects_outputs_that_cannot_pay_the_fee() {
        let secp = Secp256k1::new();
        let key = SecretKey::from_slice(&[4u8; 32]).expect("key");
        let pk = PublicKey::from_secret_key(&secp, &key);
        let dest = p2wpkh_script_pubkey(&pk);
        let outpoint = OutPoint {
            txid: Txid::all_zeros(),
            vout: 0,
        };
        let sweep = SweepTx::to_remote(
            outpoint,
            Amount::from_sat(10_000),
            &pk,
            ChannelType::STATIC_REMOTE_KEY,
            dest.clone(),
            1000,
        )
        .expect("sweep");
        let fee = 10_000 - sweep.tx.output[0].value.to_sat();
        let signed = sweep.sign(&secp, &key).expect("sign");
        // At 1000 sat/kw the fee is the weight with a 73-byte signature: at least the signed
        // weight, at most 2 weight units more (DER signatures are 71 to 73 bytes).
        let weight = signed.weight().to_wu();
        assert!(
            fee >= weight && fee <= weight + 2,
            "fee {fee} weight {weight}"
        );
        let other = SecretKey::from_slice(&[5u8; 32]).expect("key");
        assert!(sweep.sign(&secp, &other).is_err());
        assert!(SweepTx::to_remote(
            outpoint,
            Amount::from_sat(500),
            &pk,
            ChannelType::STATIC_REMOTE_KEY,
            dest,
            1000
        )
        .is_err());
    }

    fn keys() -> (Secp256k1<bitcoin::secp256k1::All>, SecretKey, PublicKey) {
        let secp = Secp256k1::new();
        let key = SecretKey::from_slice(&[4u8; 32]).expect("key");
        let pk = PublicKey::from_secret_key(&secp, &key);
        (secp, key, pk)
    }

    fn outpoint() -> OutPoint {
        OutPoint {
            txid: Txid::all_zeros(),
            vout: 0,
        }
    }

    /// One sweep of each kind, 10_000 sat at 1000 sat/kw.
    fn every_kind(pk: &PublicKey, dest: &ScriptBuf) -> Vec<SweepTx> {
        vec![
            SweepTx::to_local(
                outpoint(),
                Amount::from_sat(10_000),
                pk,
                144,
                pk,
                dest.clone(),
                1000,
            )
            .expect("to_local"),
            SweepTx::revoked_to_local(
                outpoint(),
                Amount::from_sat(10_000),
                pk,
                144,
                pk,
                dest.clone(),
                1000,
            )
            .expect("penalty"),
            SweepTx::to_remote(
                outpoint(),
                Amount::from_sat(10_000),
                pk,
                ChannelType::STATIC_REMOTE_KEY,
                dest.clone(),
                1000,
            )
            .expect("to_remote"),
            SweepTx::to_remote(
                outpoint(),
                Amount::from_sat(10_000),
                pk,
                ChannelType::ANCHORS,
                dest.clone(),
                1000,
            )
            .expect("to_remote anchors"),
        ]
    }

    #[test]
    fn every_sweep_signals_replaceability() {
        let (_, _, pk) = keys();
        let dest = p2wpkh_script_pubkey(&pk);
        let sequences: Vec<u32> = every_kind(&pk, &dest)
            .iter()
            .map(|s| s.tx.input[0].sequence.0)
            .collect();
        // to_local: the CSV delay; penalty and P2WPKH to_remote: 0xfffffffd; anchors
        // to_remote: 1 (its CSV).
        assert_eq!(sequences, vec![144, 0xffff_fffd, 0xffff_fffd, 1]);
        for sweep in every_kind(&pk, &dest) {
            assert!(sweep.tx.is_explicitly_rbf(), "{:?}", sweep.kind);
            assert!(sweep.tx.input[0].sequence.0 < 0xffff_fffe);
        }
    }

    #[test]
    fn sweeps_rebuild_at_a_feerate_and_replace_with_a_higher_fee() {
        let (secp, key, pk) = keys();
        let dest = p2wpkh_script_pubkey(&pk);
        for sweep in every_kind(&pk, &dest) {
            let kind = format!("{:?}", sweep.kind);
            assert_eq!(sweep.fee(), sweep.fee_for(1000), "{kind}");
            assert_eq!(sweep.fee().to_sat(), sweep.weight(), "{kind}");
            // Rebuilt lower and higher: same input, sequence and destination.
            let low = sweep.at_feerate(253).expect("at 253");
            let high = sweep.at_feerate(5000).expect("at 5000");
            for rebuilt in [&low, &high] {
                assert_eq!(rebuilt.tx.input, sweep.tx.input, "{kind}");
                assert_eq!(rebuilt.destination(), &dest, "{kind}");
                assert_eq!(rebuilt.weight(), sweep.weight(), "{kind}");
            }
            assert_eq!(
                low.fee(),
                Amount::from_sat((253 * sweep.weight()).div_ceil(1000))
            );
            assert_eq!(high.fee(), Amount::from_sat(5 * sweep.weight()));
            // A replacement pays at least the old fee plus 1 sat/vB of its size, even when
            // asked for a feerate no higher than the old one.
            let vsize = sweep.weight().div_ceil(4);
            let same = sweep.replacement(1000).expect("replacement");
            assert_eq!(same.fee(), sweep.fee() + Amount::from_sat(vsize), "{kind}");
            let bumped = sweep.replacement(5000).expect("replacement");
            assert_eq!(bumped.fee(), high.fee(), "{kind}");
        }
        // The weight counts a signature no smaller than a real one.
        let sweep = &every_kind(&pk, &dest)[2];
        let signed = sweep.sign(&secp, &key).expect("sign");
        let actual = signed.weight().to_wu();
        assert!(sweep.weight() >= actual && sweep.weight() <= actual + 2);
    }

    #[test]
    fn an_uneconomical_sweep_is_a_typed_error() {
        let (_, _, pk) = keys();
        let dest = p2wpkh_script_pubkey(&pk);
        // 10_000 sat at 1000 sat/kw is fine; at 100_000 sat/kw the fee eats it.
        let sweep = SweepTx::to_remote(
            outpoint(),
            Amount::from_sat(10_000),
            &pk,
            ChannelType::STATIC_REMOTE_KEY,
            dest.clone(),
            1000,
        )
        .expect("sweep");
        let fee = sweep.fee_for(100_000);
        match sweep.at_feerate(100_000) {
            Err(Bolt3Error::Uneconomical {
                amount,
                fee: f,
                dust_threshold,
            }) => {
                assert_eq!(amount, Amount::from_sat(10_000));
                assert_eq!(f, fee);
                assert_eq!(dust_threshold, Amount::from_sat(294));
            }
            other => panic!("expected uneconomical, got {other:?}"),
        }
        // The boundary: a value left of exactly the dust threshold is swept, one less is not.
        let fee = sweep.fee();
        let at = SweepTx::to_remote(
            outpoint(),
            fee + Amount::from_sat(294),
            &pk,
            ChannelType::STATIC_REMOTE_KEY,
            dest.clone(),
            1000,
        )
        .expect("sweep at the dust threshold");
        assert_eq!(at.tx.output[0].value, Amount::from_sat(294));
        assert!(matches!(
            SweepTx::to_remote(
                outpoint(),
                fee + Amount::from_sat(293),
                &pk,
                ChannelType::STATIC_REMOTE_KEY,
                dest.clone(),
                1000
            ),
            Err(Bolt3Error::Uneconomical { .. })
        ));
        // The replacement path too.
        let tight = SweepTx::to_remote(
            outpoint(),
            fee + Amount::from_sat(300),
            &pk,
            ChannelType::STATIC_REMOTE_KEY,
            dest,
            1000,
        )
        .expect("sweep");
        assert!(matches!(
            tight.replacement(1000),
            Err(Bolt3Error::Uneconomical { .. })
        ));
        // A P2TR destination has its own threshold (330 sat).
        let secp = Secp256k1::new();
        let kp = bitcoin::secp256k1::Keypair::from_seckey_slice(&secp, &[3u8; 32]).expect("key");
        let p2tr = ScriptBuf::new_p2tr(&secp, kp.x_only_public_key().0, None);
        let sweep = SweepTx::to_remote(
            outpoint(),
            Amount::from_sat(10_000),
            &pk,
            ChannelType::STATIC_REMOTE_KEY,
            p2tr,
            1000,
        )
        .expect("sweep");
        match sweep.at_feerate(100_000) {
            Err(Bolt3Error::Uneconomical { dust_threshold, .. }) => {
                assert_eq!(dust_threshold, Amount::from_sat(330))
            }
            other => panic!("expected uneconomical, got {other:?}"),
        }
    }
}
