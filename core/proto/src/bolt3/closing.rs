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

/// Builds the legacy closing transaction: version 2, locktime 0, sequence 0xFFFFFFFF, amounts
/// rounded down, fee subtracted from the funder, outputs below the dust limit removed, outputs
/// in BIP69 order.
pub fn build_closing_tx(params: &ClosingTxParams) -> Result<ClosingTx, Bolt3Error> {
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
    if to_local + to_remote + params.fee.to_sat() > params.funding.amount.to_sat() {
        return Err(Bolt3Error::Amount {
            reason: "closing outputs exceed the funding amount",
        });
    }
    let mut outputs: Vec<TxOut> = [
        (to_local, &params.local_script),
        (to_remote, &params.remote_script),
    ]
    .into_iter()
    .filter(|(value, _)| *value >= params.dust_limit.to_sat())
    .map(|(value, script)| TxOut {
        value: Amount::from_sat(value),
        script_pubkey: script.clone(),
    })
    .collect();
    outputs.sort_by(|a, b| {
        a.value
            .cmp(&b.value)
            .then_with(|| a.script_pubkey.as_bytes().cmp(b.script_pubkey.as_bytes()))
    });
    Ok(ClosingTx {
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
    })
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
}
