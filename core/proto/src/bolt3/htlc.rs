//! HTLC-success and HTLC-timeout (second-stage) transactions.
//!
//! See [BOLT 3 "HTLC-Timeout and HTLC-Success Transactions"](https://github.com/lightning/bolts/blob/master/03-transactions.md#htlc-timeout-and-htlc-success-transactions).

use bitcoin::absolute::LockTime;
use bitcoin::secp256k1::{
    ecdsa::Signature, PublicKey, Secp256k1, SecretKey, Signing, Verification,
};
use bitcoin::sighash::{EcdsaSighashType, SegwitV0Sighash, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

use super::commitment::{CommitmentTx, Htlc, HtlcDirection};
use super::fees::{htlc_success_fee, htlc_timeout_fee};
use super::funding::{sign_sighash, verify_sighash, witness_sig};
use super::scripts::to_local_witness_script;
use super::{Bolt3Error, ChannelType};

/// Which second-stage transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HtlcTxKind {
    /// HTLC-success: claims a received HTLC with the preimage (locktime 0).
    Success,
    /// HTLC-timeout: reclaims an offered HTLC after `cltv_expiry` (locktime `cltv_expiry`).
    Timeout,
}

/// Who signs an HTLC transaction: its commitment's owner, or the other party (who sends its
/// signature in `commitment_signed`; with anchors it signs `SIGHASH_SINGLE|ANYONECANPAY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HtlcSigner {
    /// The commitment's owner ("local"); signs `SIGHASH_ALL`.
    Local,
    /// The other party ("remote").
    Remote,
}

/// An unsigned HTLC-success or HTLC-timeout transaction spending one commitment HTLC output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtlcTx {
    /// The unsigned transaction.
    pub tx: Transaction,
    /// Success or timeout.
    pub kind: HtlcTxKind,
    /// The HTLC.
    pub htlc: Htlc,
    /// Witness script of the spent commitment output.
    pub htlc_witness_script: ScriptBuf,
    /// Value of the spent commitment output.
    pub htlc_amount: Amount,
    /// Witness script of this transaction's output (revocable, CSV-delayed).
    pub output_witness_script: ScriptBuf,
    /// Channel type.
    pub channel_type: ChannelType,
}

impl HtlcTx {
    pub(crate) fn new(
        commitment: &CommitmentTx,
        outpoint: OutPoint,
        htlc_amount: Amount,
        htlc_witness_script: ScriptBuf,
        htlc: &Htlc,
    ) -> Self {
        let ct = commitment.channel_type;
        let (kind, fee, lock_time) = match htlc.direction {
            HtlcDirection::Offered => (
                HtlcTxKind::Timeout,
                htlc_timeout_fee(commitment.feerate_per_kw, ct),
                htlc.cltv_expiry,
            ),
            HtlcDirection::Received => (
                HtlcTxKind::Success,
                htlc_success_fee(commitment.feerate_per_kw, ct),
                0,
            ),
        };
        let output_witness_script = to_local_witness_script(
            &commitment.keys.revocation_pubkey,
            commitment.to_self_delay,
            &commitment.keys.local_delayed_pubkey,
        );
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::from_consensus(lock_time),
            input: vec![TxIn {
                previous_output: outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence(u32::from(ct.anchors)),
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                // Untrimmed HTLCs are worth at least dust limit + fee.
                value: htlc_amount.checked_sub(fee).unwrap_or(Amount::ZERO),
                script_pubkey: ScriptBuf::new_p2wsh(&output_witness_script.wscript_hash()),
            }],
        };
        Self {
            tx,
            kind,
            htlc: *htlc,
            htlc_witness_script,
            htlc_amount,
            output_witness_script,
            channel_type: ct,
        }
    }

    /// The sighash type `signer` uses.
    pub fn sighash_type(&self, signer: HtlcSigner) -> EcdsaSighashType {
        match (signer, self.channel_type.anchors) {
            (HtlcSigner::Remote, true) => EcdsaSighashType::SinglePlusAnyoneCanPay,
            _ => EcdsaSighashType::All,
        }
    }

    /// The BIP143 sighash `signer` signs.
    pub fn sighash(&self, signer: HtlcSigner) -> Result<SegwitV0Sighash, Bolt3Error> {
        Ok(SighashCache::new(&self.tx).p2wsh_signature_hash(
            0,
            &self.htlc_witness_script,
            self.htlc_amount,
            self.sighash_type(signer),
        )?)
    }

    /// Signs as `signer` with its HTLC key for this commitment.
    pub fn sign<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        signer: HtlcSigner,
        htlc_key: &SecretKey,
    ) -> Result<Signature, Bolt3Error> {
        Ok(sign_sighash(secp, &self.sighash(signer)?, htlc_key))
    }

    /// Verifies `signer`'s signature against its HTLC pubkey for this commitment.
    pub fn verify<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        signer: HtlcSigner,
        signature: &Signature,
        htlc_pubkey: &PublicKey,
    ) -> Result<(), Bolt3Error> {
        verify_sighash(
            secp,
            &self.sighash(signer)?,
            signature,
            htlc_pubkey,
            "htlc transaction",
        )
    }

    /// The signed transaction: witness `0 <remotehtlcsig> <localhtlcsig> <preimage or <>>
    /// <witness script>`. An HTLC-success transaction needs the preimage.
    pub fn finalize(
        &self,
        local_sig: &Signature,
        remote_sig: &Signature,
        preimage: Option<&[u8; 32]>,
    ) -> Result<Transaction, Bolt3Error> {
        let mut witness = Witness::new();
        witness.push([]);
        witness.push(witness_sig(
            remote_sig,
            self.sighash_type(HtlcSigner::Remote),
        ));
        witness.push(witness_sig(local_sig, self.sighash_type(HtlcSigner::Local)));
        match self.kind {
            HtlcTxKind::Success => witness.push(preimage.ok_or(Bolt3Error::MissingPreimage)?),
            HtlcTxKind::Timeout => witness.push([]),
        }
        witness.push(self.htlc_witness_script.as_bytes());
        let mut tx = self.tx.clone();
        if let Some(input) = tx.input.first_mut() {
            input.witness = witness;
        }
        Ok(tx)
    }
}
