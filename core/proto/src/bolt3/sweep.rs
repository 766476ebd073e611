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
        let mut tx = Transaction {
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
        // Weight with a maximum-size signature.
        let dummy = [0u8; DUMMY_SIG_LEN];
        let mut witness = Witness::new();
        witness.push(dummy);
        match &kind {
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
        tx.input[0].witness = witness;
        let weight = tx.weight().to_wu();
        tx.input[0].witness = Witness::new();
        let fee = Amount::from_sat((u64::from(feerate_per_kw) * weight).div_ceil(1000));
        let value = amount
            .checked_sub(fee)
            .filter(|v| *v >= tx.output[0].script_pubkey.minimal_non_dust())
            .ok_or(Bolt3Error::Amount {
                reason: "the swept output does not cover the fee",
            })?;
        tx.output[0].value = value;
        Ok(Self { tx, kind, amount })
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
        let sig = witness_sig(&sig, EcdsaSighashType::All);
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
}
