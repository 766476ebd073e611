//! Commitment transactions.
//!
//! See [BOLT 3 "Commitment Transaction"](https://github.com/lightning/bolts/blob/master/03-transactions.md#commitment-transaction)
//! and ["Commitment Transaction Construction"](https://github.com/lightning/bolts/blob/master/03-transactions.md#commitment-transaction-construction).

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{
    ecdsa::Signature, PublicKey, Secp256k1, SecretKey, Signing, Verification,
};
use bitcoin::transaction::Version;
use bitcoin::{Amount, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

use super::fees::{commitment_fee, htlc_is_trimmed, ANCHOR_OUTPUT_VALUE};
use super::funding::FundingInput;
use super::htlc::HtlcTx;
use super::scripts::{
    anchor_witness_script, offered_htlc_witness_script, received_htlc_witness_script,
    to_local_witness_script, to_remote_script,
};
use super::{Bolt3Error, ChannelType};
use crate::keys::{derive_public_key, derive_revocation_public_key, ChannelPublicKeys, KeysError};

/// The 48-bit factor that obscures commitment numbers: the lower 48 bits of
/// `SHA256(opener payment_basepoint || accepter payment_basepoint)`.
pub fn obscure_factor(
    opener_payment_basepoint: &PublicKey,
    accepter_payment_basepoint: &PublicKey,
) -> u64 {
    let mut engine = sha256::Hash::engine();
    engine.input(&opener_payment_basepoint.serialize());
    engine.input(&accepter_payment_basepoint.serialize());
    let hash = sha256::Hash::from_engine(engine).to_byte_array();
    let mut low = [0u8; 8];
    low[2..].copy_from_slice(&hash[26..]);
    u64::from_be_bytes(low)
}

/// The keys of one commitment transaction, from its owner's ("local") point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitmentKeys {
    /// The owner's per-commitment point for this commitment.
    pub per_commitment_point: PublicKey,
    /// `revocationpubkey` (from the remote's revocation basepoint).
    pub revocation_pubkey: PublicKey,
    /// `local_delayedpubkey`.
    pub local_delayed_pubkey: PublicKey,
    /// `local_htlcpubkey`.
    pub local_htlc_pubkey: PublicKey,
    /// `remote_htlcpubkey`.
    pub remote_htlc_pubkey: PublicKey,
    /// `remotepubkey` (the remote's `payment_basepoint`, static_remotekey).
    pub remote_pubkey: PublicKey,
    /// The owner's funding pubkey.
    pub local_funding_pubkey: PublicKey,
    /// The remote's funding pubkey.
    pub remote_funding_pubkey: PublicKey,
}

impl CommitmentKeys {
    /// Derives the keys of `local`'s commitment at `per_commitment_point` (local's point).
    ///
    /// For our own commitment pass `(our keys, their keys)` and our point; for theirs pass
    /// `(their keys, our keys)` and their point.
    pub fn derive<C: Verification>(
        secp: &Secp256k1<C>,
        per_commitment_point: &PublicKey,
        local: &ChannelPublicKeys,
        remote: &ChannelPublicKeys,
    ) -> Result<Self, KeysError> {
        Ok(Self {
            per_commitment_point: *per_commitment_point,
            revocation_pubkey: derive_revocation_public_key(
                secp,
                &remote.revocation_basepoint,
                per_commitment_point,
            )?,
            local_delayed_pubkey: derive_public_key(
                secp,
                &local.delayed_payment_basepoint,
                per_commitment_point,
            )?,
            local_htlc_pubkey: derive_public_key(
                secp,
                &local.htlc_basepoint,
                per_commitment_point,
            )?,
            remote_htlc_pubkey: derive_public_key(
                secp,
                &remote.htlc_basepoint,
                per_commitment_point,
            )?,
            remote_pubkey: remote.payment_basepoint,
            local_funding_pubkey: local.funding_pubkey,
            remote_funding_pubkey: remote.funding_pubkey,
        })
    }
}

/// Direction of an HTLC from the commitment owner's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HtlcDirection {
    /// Offered by the owner (timed out by it through an HTLC-timeout transaction).
    Offered,
    /// Received by the owner (claimed by it through an HTLC-success transaction).
    Received,
}

/// An HTLC committed in a commitment transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Htlc {
    /// Offered or received, from the owner's point of view.
    pub direction: HtlcDirection,
    /// Amount in millisatoshi.
    pub amount_msat: u64,
    /// `payment_hash`.
    pub payment_hash: sha256::Hash,
    /// `cltv_expiry`.
    pub cltv_expiry: u32,
}

/// Inputs of [`build_commitment_tx`].
#[derive(Debug, Clone, Copy)]
pub struct CommitmentParams<'a> {
    /// The funding output.
    pub funding: FundingInput,
    /// The commitment number, counting up from 0 (its per-commitment secret index is
    /// `2^48 - 1 - commitment_number`).
    pub commitment_number: u64,
    /// See [`obscure_factor`].
    pub obscure_factor: u64,
    /// `to_self_delay` imposed on the owner (set by the remote).
    pub to_self_delay: u16,
    /// The owner's `dust_limit_satoshis`.
    pub dust_limit: Amount,
    /// `feerate_per_kw`.
    pub feerate_per_kw: u32,
    /// Whether the owner funded (opened) the channel and so pays the fee and the anchors.
    pub local_is_funder: bool,
    /// The owner's balance in msat, HTLCs already deducted.
    pub to_local_msat: u64,
    /// The remote's balance in msat, HTLCs already deducted.
    pub to_remote_msat: u64,
    /// Every committed HTLC (trimmed ones included).
    pub htlcs: &'a [Htlc],
    /// The commitment's keys.
    pub keys: &'a CommitmentKeys,
    /// Channel type.
    pub channel_type: ChannelType,
}

/// What a commitment output pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// `to_local` (revocable, CSV-delayed).
    ToLocal,
    /// `to_remote`.
    ToRemote,
    /// `to_local_anchor`.
    LocalAnchor,
    /// `to_remote_anchor`.
    RemoteAnchor,
    /// An HTLC; the index is into [`CommitmentParams::htlcs`].
    Htlc(usize),
}

/// One output of a commitment transaction (parallel to `tx.output`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentOutput {
    /// What it pays.
    pub kind: OutputKind,
    /// Its witness script (`None` for a P2WPKH `to_remote`).
    pub witness_script: Option<ScriptBuf>,
    /// The HTLC, for HTLC outputs.
    pub htlc: Option<Htlc>,
}

/// An unsigned commitment transaction and what is needed to sign it and spend its outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentTx {
    /// The unsigned transaction (empty witness).
    pub tx: Transaction,
    /// Description of each output, in output order.
    pub outputs: Vec<CommitmentOutput>,
    /// The funding input.
    pub funding: FundingInput,
    /// The commitment's keys.
    pub keys: CommitmentKeys,
    /// `to_self_delay` imposed on the owner.
    pub to_self_delay: u16,
    /// `feerate_per_kw`.
    pub feerate_per_kw: u32,
    /// Channel type.
    pub channel_type: ChannelType,
    /// The actual fee (funding amount minus outputs, trimmed amounts included).
    pub fee: Amount,
}

/// Builds the commitment transaction of its owner ("local").
pub fn build_commitment_tx(params: &CommitmentParams<'_>) -> Result<CommitmentTx, Bolt3Error> {
    let ct = params.channel_type;
    let keys = params.keys;
    let untrimmed: Vec<(usize, &Htlc)> = params
        .htlcs
        .iter()
        .enumerate()
        .filter(|(_, h)| !htlc_is_trimmed(h, params.dust_limit, params.feerate_per_kw, ct))
        .collect();

    // Fee and anchors are paid by the funder, saturating at zero.
    let mut funder_cost = commitment_fee(params.feerate_per_kw, untrimmed.len(), ct).to_sat();
    if ct.anchors {
        funder_cost += 2 * ANCHOR_OUTPUT_VALUE.to_sat();
    }
    let mut to_local = params.to_local_msat / 1000;
    let mut to_remote = params.to_remote_msat / 1000;
    if params.local_is_funder {
        to_local = to_local.saturating_sub(funder_cost);
    } else {
        to_remote = to_remote.saturating_sub(funder_cost);
    }
    let dust = params.dust_limit.to_sat();

    // (value, output, description, cltv tie-break)
    let mut outputs: Vec<(TxOut, CommitmentOutput, u32)> = Vec::new();
    for (index, htlc) in &untrimmed {
        let ws = match htlc.direction {
            HtlcDirection::Offered => offered_htlc_witness_script(
                &keys.revocation_pubkey,
                &keys.local_htlc_pubkey,
                &keys.remote_htlc_pubkey,
                &htlc.payment_hash,
                ct,
            ),
            HtlcDirection::Received => received_htlc_witness_script(
                &keys.revocation_pubkey,
                &keys.local_htlc_pubkey,
                &keys.remote_htlc_pubkey,
                &htlc.payment_hash,
                htlc.cltv_expiry,
                ct,
            ),
        };
        outputs.push((
            TxOut {
                value: Amount::from_sat(htlc.amount_msat / 1000),
                script_pubkey: ScriptBuf::new_p2wsh(&ws.wscript_hash()),
            },
            CommitmentOutput {
                kind: OutputKind::Htlc(*index),
                witness_script: Some(ws),
                htlc: Some(**htlc),
            },
            htlc.cltv_expiry,
        ));
    }
    let has_to_local = to_local >= dust;
    if has_to_local {
        let ws = to_local_witness_script(
            &keys.revocation_pubkey,
            params.to_self_delay,
            &keys.local_delayed_pubkey,
        );
        outputs.push((
            TxOut {
                value: Amount::from_sat(to_local),
                script_pubkey: ScriptBuf::new_p2wsh(&ws.wscript_hash()),
            },
            CommitmentOutput {
                kind: OutputKind::ToLocal,
                witness_script: Some(ws),
                htlc: None,
            },
            0,
        ));
    }
    let has_to_remote = to_remote >= dust;
    if has_to_remote {
        let (spk, ws) = to_remote_script(&keys.remote_pubkey, ct);
        outputs.push((
            TxOut {
                value: Amount::from_sat(to_remote),
                script_pubkey: spk,
            },
            CommitmentOutput {
                kind: OutputKind::ToRemote,
                witness_script: ws,
                htlc: None,
            },
            0,
        ));
    }
    if ct.anchors {
        let mut anchor = |pubkey: &PublicKey, kind| {
            let ws = anchor_witness_script(pubkey);
            outputs.push((
                TxOut {
                    value: ANCHOR_OUTPUT_VALUE,
                    script_pubkey: ScriptBuf::new_p2wsh(&ws.wscript_hash()),
                },
                CommitmentOutput {
                    kind,
                    witness_script: Some(ws),
                    htlc: None,
                },
                0,
            ));
        };
        if has_to_local || !untrimmed.is_empty() {
            anchor(&keys.local_funding_pubkey, OutputKind::LocalAnchor);
        }
        if has_to_remote || !untrimmed.is_empty() {
            anchor(&keys.remote_funding_pubkey, OutputKind::RemoteAnchor);
        }
    }

    // BIP69 + cltv tie-break.
    outputs.sort_by(|a, b| {
        a.0.value
            .cmp(&b.0.value)
            .then_with(|| {
                a.0.script_pubkey
                    .as_bytes()
                    .cmp(b.0.script_pubkey.as_bytes())
            })
            .then_with(|| a.2.cmp(&b.2))
    });

    let obscured = (params.commitment_number ^ params.obscure_factor) & 0xFFFF_FFFF_FFFF;
    let lock_time = LockTime::from_consensus((0x20 << 24) | (obscured & 0xFF_FFFF) as u32);
    let sequence = Sequence((0x80 << 24) | (obscured >> 24) as u32);
    let total_out: u64 = outputs.iter().map(|o| o.0.value.to_sat()).sum();
    let fee = params
        .funding
        .amount
        .to_sat()
        .checked_sub(total_out)
        .ok_or(Bolt3Error::Amount {
            reason: "commitment outputs exceed the funding amount",
        })?;
    let (txouts, descriptions): (Vec<TxOut>, Vec<CommitmentOutput>) =
        outputs.into_iter().map(|(o, d, _)| (o, d)).unzip();
    Ok(CommitmentTx {
        tx: Transaction {
            version: Version::TWO,
            lock_time,
            input: vec![TxIn {
                previous_output: params.funding.outpoint,
                script_sig: ScriptBuf::new(),
                sequence,
                witness: Witness::new(),
            }],
            output: txouts,
        },
        outputs: descriptions,
        funding: params.funding,
        keys: *keys,
        to_self_delay: params.to_self_delay,
        feerate_per_kw: params.feerate_per_kw,
        channel_type: ct,
        fee: Amount::from_sat(fee),
    })
}

impl CommitmentTx {
    /// Signs the commitment with a funding key (ours or, in tests, theirs).
    pub fn sign<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        funding_key: &SecretKey,
    ) -> Result<Signature, Bolt3Error> {
        self.funding.sign(secp, &self.tx, funding_key)
    }

    /// Verifies a funding-key signature of the commitment.
    pub fn verify<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        signature: &Signature,
        pubkey: &PublicKey,
    ) -> Result<(), Bolt3Error> {
        self.funding
            .verify(secp, &self.tx, signature, pubkey)
            .map_err(|_| Bolt3Error::InvalidSignature {
                what: "commitment transaction",
            })
    }

    /// The fully signed transaction (owner's and remote's funding signatures).
    pub fn finalize(&self, local_sig: &Signature, remote_sig: &Signature) -> Transaction {
        self.funding.finalize(&self.tx, local_sig, remote_sig)
    }

    /// Index of the output of the given kind, if present.
    pub fn output_index(&self, kind: OutputKind) -> Option<u32> {
        self.outputs
            .iter()
            .position(|o| o.kind == kind)
            .and_then(|i| u32::try_from(i).ok())
    }

    /// The unsigned HTLC-success / HTLC-timeout transactions of the untrimmed HTLC outputs, in
    /// commitment output order (the order of `htlc_signatures` in `commitment_signed`).
    pub fn htlc_txs(&self) -> Vec<HtlcTx> {
        let txid = self.tx.compute_txid();
        self.outputs
            .iter()
            .zip(&self.tx.output)
            .enumerate()
            .filter_map(|(vout, (desc, txout))| {
                let htlc = desc.htlc?;
                let ws = desc.witness_script.clone()?;
                let outpoint = bitcoin::OutPoint {
                    txid,
                    vout: u32::try_from(vout).ok()?,
                };
                Some(HtlcTx::new(self, outpoint, txout.value, ws, &htlc))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bolt3::{HtlcSigner, HtlcTxKind};
    use crate::keys::{KeysManager, INITIAL_COMMITMENT_NUMBER};
    use bitcoin::{Network, OutPoint, Txid};

    /// Alice (opener) and Bob build each other's commitment for the same state; the
    /// signatures each sends verify against the other's view and revocation works.
    #[test]
    fn both_views_of_one_state() {
        let secp = Secp256k1::new();
        let alice = KeysManager::new(&[1u8; 32], Network::Regtest)
            .expect("keys")
            .channel_keys(3)
            .expect("channel");
        let bob = KeysManager::new(&[2u8; 32], Network::Regtest)
            .expect("keys")
            .channel_keys(3)
            .expect("channel");
        let (a, b) = (alice.public_keys(&secp), bob.public_keys(&secp));
        let index = INITIAL_COMMITMENT_NUMBER - 5;
        let a_point = alice.per_commitment_point(&secp, index).expect("point");
        let b_point = bob.per_commitment_point(&secp, index).expect("point");
        let a_keys = CommitmentKeys::derive(&secp, &a_point, &a, &b).expect("keys");
        let b_keys = CommitmentKeys::derive(&secp, &b_point, &b, &a).expect("keys");
        let factor = obscure_factor(&a.payment_basepoint, &b.payment_basepoint);
        let funding = FundingInput {
            outpoint: OutPoint {
                txid: Txid::all_zeros(),
                vout: 0,
            },
            amount: Amount::from_sat(1_000_000),
            local_funding_pubkey: a.funding_pubkey,
            remote_funding_pubkey: b.funding_pubkey,
        };
        let b_funding = FundingInput {
            local_funding_pubkey: b.funding_pubkey,
            remote_funding_pubkey: a.funding_pubkey,
            ..funding
        };
        let offered_by_alice = |direction| Htlc {
            direction,
            amount_msat: 20_000_000,
            payment_hash: sha256::Hash::hash(&[1u8; 32]),
            cltv_expiry: 700,
        };
        let a_htlcs = [offered_by_alice(HtlcDirection::Offered)];
        let b_htlcs = [offered_by_alice(HtlcDirection::Received)];
        let params = |funding, keys, htlcs, local_is_funder, to_local_msat, to_remote_msat| {
            CommitmentParams {
                funding,
                commitment_number: 5,
                obscure_factor: factor,
                to_self_delay: 144,
                dust_limit: Amount::from_sat(546),
                feerate_per_kw: 2500,
                local_is_funder,
                to_local_msat,
                to_remote_msat,
                htlcs,
                keys,
                channel_type: ChannelType::default(),
            }
        };
        let a_commit = build_commitment_tx(&params(
            funding,
            &a_keys,
            &a_htlcs,
            true,
            680_000_000,
            300_000_000,
        ))
        .expect("alice's commitment");
        let b_commit = build_commitment_tx(&params(
            b_funding,
            &b_keys,
            &b_htlcs,
            false,
            300_000_000,
            680_000_000,
        ))
        .expect("bob's commitment");

        // Same obscured number, same fee (paid by Alice in both), same balances.
        assert_eq!(a_commit.tx.lock_time, b_commit.tx.lock_time);
        assert_eq!(a_commit.tx.input[0].sequence, b_commit.tx.input[0].sequence);
        assert_eq!(a_commit.fee, b_commit.fee);
        let fee = commitment_fee(2500, 1, ChannelType::default()).to_sat();
        let value = |c: &CommitmentTx, kind| {
            c.output_index(kind)
                .map(|i| c.tx.output[i as usize].value.to_sat())
        };
        assert_eq!(value(&a_commit, OutputKind::ToLocal), Some(680_000 - fee));
        assert_eq!(value(&b_commit, OutputKind::ToRemote), Some(680_000 - fee));
        assert_eq!(value(&b_commit, OutputKind::ToLocal), Some(300_000));
        assert_eq!(value(&a_commit, OutputKind::ToRemote), Some(300_000));
        assert_eq!(a_commit.keys.remote_pubkey, b.payment_basepoint);
        assert_eq!(b_commit.keys.remote_pubkey, a.payment_basepoint);

        // Alice signs Bob's commitment and its HTLC transaction; Bob verifies both.
        let sig = b_commit.sign(&secp, &alice.funding_key).expect("sign");
        b_commit
            .verify(&secp, &sig, &b_commit.funding.remote_funding_pubkey)
            .expect("alice's signature");
        let b_htlc_txs = b_commit.htlc_txs();
        assert_eq!(b_htlc_txs.len(), 1);
        assert_eq!(b_htlc_txs[0].kind, HtlcTxKind::Success);
        assert_eq!(a_commit.htlc_txs()[0].kind, HtlcTxKind::Timeout);
        let alice_htlc_key = alice.htlc_key(&secp, &b_point).expect("key");
        let htlc_sig = b_htlc_txs[0]
            .sign(&secp, HtlcSigner::Remote, &alice_htlc_key)
            .expect("sign");
        b_htlc_txs[0]
            .verify(
                &secp,
                HtlcSigner::Remote,
                &htlc_sig,
                &b_keys.remote_htlc_pubkey,
            )
            .expect("alice's htlc signature");

        // Bob's delayed key controls his to_local; once he revokes, Alice holds the
        // revocation key of his commitment.
        let delayed = bob.delayed_payment_key(&secp, &b_point).expect("key");
        assert_eq!(
            PublicKey::from_secret_key(&secp, &delayed),
            b_keys.local_delayed_pubkey
        );
        let revealed = SecretKey::from_slice(&bob.per_commitment_secret(index)).expect("secret");
        let revocation = alice.revocation_key(&secp, &revealed).expect("key");
        assert_eq!(
            PublicKey::from_secret_key(&secp, &revocation),
            b_keys.revocation_pubkey
        );
    }
}
