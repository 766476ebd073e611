//! The 2-of-2 funding input shared by commitment and closing transactions, and BIP143 signing.
//!
//! See [BOLT 3 "Funding Transaction Output"](https://github.com/lightning/bolts/blob/master/03-transactions.md#funding-transaction-output).

use bitcoin::secp256k1::{
    ecdsa::Signature, Message, PublicKey, Secp256k1, SecretKey, Signing, Verification,
};
use bitcoin::sighash::{EcdsaSighashType, SegwitV0Sighash, SighashCache};
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, Witness};

use super::scripts::{funding_witness_script, sorted_pair};
use super::Bolt3Error;

/// Signs a BIP143 sighash with RFC6979 deterministic nonces (no low-R grinding), as the BOLT 3
/// vectors do.
pub fn sign_sighash<C: Signing>(
    secp: &Secp256k1<C>,
    sighash: &SegwitV0Sighash,
    key: &SecretKey,
) -> Signature {
    secp.sign_ecdsa(&Message::from(*sighash), key)
}

/// Verifies a signature over a BIP143 sighash.
pub fn verify_sighash<C: Verification>(
    secp: &Secp256k1<C>,
    sighash: &SegwitV0Sighash,
    signature: &Signature,
    pubkey: &PublicKey,
    what: &'static str,
) -> Result<(), Bolt3Error> {
    secp.verify_ecdsa(&Message::from(*sighash), signature, pubkey)
        .map_err(|_| Bolt3Error::InvalidSignature { what })
}

/// Serializes a signature with its sighash byte for a witness.
pub(crate) fn witness_sig(signature: &Signature, sighash_type: EcdsaSighashType) -> Vec<u8> {
    bitcoin::ecdsa::Signature {
        signature: *signature,
        sighash_type,
    }
    .to_vec()
}

/// The channel's funding output as the input of a commitment or closing transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FundingInput {
    /// The funding outpoint.
    pub outpoint: OutPoint,
    /// The funding output's value.
    pub amount: Amount,
    /// The funding pubkey of the transaction's owner ("local").
    pub local_funding_pubkey: PublicKey,
    /// The other party's funding pubkey.
    pub remote_funding_pubkey: PublicKey,
}

impl FundingInput {
    /// The funding witness script (keys sorted).
    pub fn witness_script(&self) -> ScriptBuf {
        funding_witness_script(&self.local_funding_pubkey, &self.remote_funding_pubkey)
    }

    /// The BIP143 `SIGHASH_ALL` sighash of `tx` spending the funding output at input 0.
    pub fn sighash(&self, tx: &Transaction) -> Result<SegwitV0Sighash, Bolt3Error> {
        Ok(SighashCache::new(tx).p2wsh_signature_hash(
            0,
            &self.witness_script(),
            self.amount,
            EcdsaSighashType::All,
        )?)
    }

    /// Signs `tx` with one of the two funding keys.
    pub fn sign<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        tx: &Transaction,
        funding_key: &SecretKey,
    ) -> Result<Signature, Bolt3Error> {
        Ok(sign_sighash(secp, &self.sighash(tx)?, funding_key))
    }

    /// Verifies a signature of `tx` by `pubkey`.
    pub fn verify<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        tx: &Transaction,
        signature: &Signature,
        pubkey: &PublicKey,
    ) -> Result<(), Bolt3Error> {
        verify_sighash(secp, &self.sighash(tx)?, signature, pubkey, "funding input")
    }

    /// The witness `0 <sig for pubkey1> <sig for pubkey2> <witness script>`.
    pub fn witness(&self, local_sig: &Signature, remote_sig: &Signature) -> Witness {
        let (first, _) = sorted_pair(&self.local_funding_pubkey, &self.remote_funding_pubkey);
        let (sig1, sig2) = if *first == self.local_funding_pubkey {
            (local_sig, remote_sig)
        } else {
            (remote_sig, local_sig)
        };
        let mut witness = Witness::new();
        witness.push([]);
        witness.push(witness_sig(sig1, EcdsaSighashType::All));
        witness.push(witness_sig(sig2, EcdsaSighashType::All));
        witness.push(self.witness_script().as_bytes());
        witness
    }

    /// A copy of `tx` with the witness filled in.
    pub fn finalize(
        &self,
        tx: &Transaction,
        local_sig: &Signature,
        remote_sig: &Signature,
    ) -> Transaction {
        let mut signed = tx.clone();
        if let Some(input) = signed.input.first_mut() {
            input.witness = self.witness(local_sig, remote_sig);
        }
        signed
    }
}
