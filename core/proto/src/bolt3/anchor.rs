//! Spending our anchor output (`option_anchors`) with our funding key, to bump a commitment's
//! fee by CPFP: the child transaction (built by the wallet, with wallet coins) spends the
//! anchor with the witness `<sig> <witness script>`.
//!
//! See [BOLT 3 "`to_local_anchor` and `to_remote_anchor` Output"](https://github.com/lightning/bolts/blob/master/03-transactions.md#to_local_anchor-and-to_remote_anchor-output-option_anchors).

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, Signing, Verification};
use bitcoin::sighash::{EcdsaSighashType, SegwitV0Sighash, SighashCache};
use bitcoin::{OutPoint, ScriptBuf, Transaction, TxOut, Witness};

use super::commitment::CommitmentTx;
use super::fees::ANCHOR_OUTPUT_VALUE;
use super::funding::{sign_sighash, verify_sighash, witness_sig};
use super::scripts::anchor_witness_script;
use super::Bolt3Error;

/// The witness weight of an anchor spent with the funding key: the item count (1), a 73-byte
/// signature with its length (74) and the 40-byte witness script with its length (41). BDK's
/// `satisfaction_weight` of a foreign input (the input's own 41 bytes come on top).
pub const ANCHOR_SATISFACTION_WEIGHT: u64 = 1 + 1 + 73 + 1 + 40;

/// The `scriptPubKey` of the anchor output on `funding_pubkey` (P2WSH of
/// [`anchor_witness_script`]).
pub fn anchor_script_pubkey(funding_pubkey: &PublicKey) -> ScriptBuf {
    ScriptBuf::new_p2wsh(&anchor_witness_script(funding_pubkey).wscript_hash())
}

/// Our anchor output on a commitment transaction (ours or theirs), spendable at once with our
/// funding key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchorSpend {
    /// The anchor outpoint.
    pub outpoint: OutPoint,
    /// Our funding pubkey, the anchor's key.
    pub funding_pubkey: PublicKey,
}

impl AnchorSpend {
    /// Our anchor on `commitment` (either party's): the output paying
    /// [`anchor_script_pubkey`]`(our_funding_pubkey)`, if it has one (no anchors, or removed
    /// because our side has no output and no HTLC).
    pub fn find(commitment: &CommitmentTx, our_funding_pubkey: &PublicKey) -> Option<Self> {
        let script = anchor_script_pubkey(our_funding_pubkey);
        let vout = commitment
            .tx
            .output
            .iter()
            .position(|o| o.script_pubkey == script)?;
        Some(AnchorSpend {
            outpoint: OutPoint {
                txid: commitment.tx.compute_txid(),
                vout: u32::try_from(vout).ok()?,
            },
            funding_pubkey: *our_funding_pubkey,
        })
    }

    /// The witness script.
    pub fn witness_script(&self) -> ScriptBuf {
        anchor_witness_script(&self.funding_pubkey)
    }

    /// The anchor output (330 sat to [`anchor_script_pubkey`]).
    pub fn txout(&self) -> TxOut {
        TxOut {
            value: ANCHOR_OUTPUT_VALUE,
            script_pubkey: anchor_script_pubkey(&self.funding_pubkey),
        }
    }

    /// The BIP143 `SIGHASH_ALL` sighash of `tx` spending the anchor at `input`.
    pub fn sighash(&self, tx: &Transaction, input: usize) -> Result<SegwitV0Sighash, Bolt3Error> {
        Ok(SighashCache::new(tx).p2wsh_signature_hash(
            input,
            &self.witness_script(),
            ANCHOR_OUTPUT_VALUE,
            EcdsaSighashType::All,
        )?)
    }

    /// Signs input `input` of `tx` (which must spend [`AnchorSpend::outpoint`]) with the
    /// funding secret key and returns its witness `<sig> <witness script>`. Refuses another
    /// key or an input spending something else.
    pub fn sign<C: Signing + Verification>(
        &self,
        secp: &Secp256k1<C>,
        tx: &Transaction,
        input: usize,
        funding_key: &SecretKey,
    ) -> Result<Witness, Bolt3Error> {
        if tx.input.get(input).map(|i| i.previous_output) != Some(self.outpoint) {
            return Err(Bolt3Error::WrongInput { input });
        }
        let sighash = self.sighash(tx, input)?;
        let sig = sign_sighash(secp, &sighash, funding_key);
        verify_sighash(
            secp,
            &sighash,
            &sig,
            &self.funding_pubkey,
            "anchor funding key",
        )?;
        let mut witness = Witness::new();
        witness.push(witness_sig(&sig, EcdsaSighashType::All));
        witness.push(self.witness_script().as_bytes());
        Ok(witness)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::absolute::LockTime;
    use bitcoin::hashes::Hash;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, Sequence, TxIn, Txid};

    #[test]
    fn anchor_witness_weight_and_signature() {
        let secp = Secp256k1::new();
        let key = SecretKey::from_slice(&[9u8; 32]).expect("key");
        let pk = PublicKey::from_secret_key(&secp, &key);
        assert_eq!(anchor_witness_script(&pk).len(), 40);
        let anchor = AnchorSpend {
            outpoint: OutPoint {
                txid: Txid::all_zeros(),
                vout: 2,
            },
            funding_pubkey: pk,
        };
        assert_eq!(anchor.txout().value, Amount::from_sat(330));
        assert!(anchor.txout().script_pubkey.is_p2wsh());
        let other_input = TxIn {
            previous_output: OutPoint {
                txid: Txid::all_zeros(),
                vout: 7,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        };
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![
                other_input.clone(),
                TxIn {
                    previous_output: anchor.outpoint,
                    ..other_input
                },
            ],
            output: vec![],
        };
        let witness = anchor.sign(&secp, &tx, 1, &key).expect("sign");
        assert_eq!(witness.len(), 2);
        // The witness (count, signature, script) weighs at most the satisfaction weight.
        let size = witness.size() as u64;
        assert!(size <= ANCHOR_SATISFACTION_WEIGHT && size + 2 >= ANCHOR_SATISFACTION_WEIGHT);
        // The wrong input or key is refused.
        assert!(anchor.sign(&secp, &tx, 0, &key).is_err());
        let other = SecretKey::from_slice(&[8u8; 32]).expect("key");
        assert!(anchor.sign(&secp, &tx, 1, &other).is_err());
    }
}
