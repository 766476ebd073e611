//! CPFP of an anchor commitment: a child spending our anchor output (signed with the channel's
//! funding key) plus wallet coins, paying enough that the package (commitment + child) reaches
//! a target feerate. The node asks for it when a force-closed anchor channel's commitment
//! pays less than the estimate (`proto::channel` `resolve_cpfp.rs`, `node/cpfp.rs`).

use bdk_wallet::{KeychainKind, SignOptions};
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{psbt, Amount, FeeRate, OutPoint, Transaction, Weight};

use super::{bdk, build_error, OnchainWallet, WalletError};
use crate::proto::bolt3::{AnchorSpend, ANCHOR_SATISFACTION_WEIGHT};

/// A first guess of the child's weight: the anchor input, one P2WPKH wallet input and one
/// P2WPKH change output (about 720 WU); the build is repeated with the real weight.
const CHILD_WEIGHT_GUESS: u64 = 800;

/// How much lighter than the weight its fee was computed for the child may come out (a
/// signature a byte shorter than the previous round's) before it is rebuilt once more.
const WEIGHT_SLACK: u64 = 8;

/// The child's own feerate floor, Bitcoin Core's default relay fee (1 sat/vB).
const CHILD_MIN_FEERATE: FeeRate = FeeRate::from_sat_per_kwu(250);

impl OnchainWallet {
    /// The fee a CPFP child built by [`OnchainWallet::build_anchor_cpfp`] pays: its anchor
    /// input and wallet coins less its outputs. `None` if a coin is not (or no longer) the
    /// wallet's unspent output.
    pub fn anchor_cpfp_fee(&self, child: &Transaction, anchor: &AnchorSpend) -> Option<Amount> {
        let mut inputs = Amount::ZERO;
        for i in &child.input {
            inputs += if i.previous_output == anchor.outpoint {
                anchor.txout().value
            } else {
                self.wallet.get_utxo(i.previous_output)?.txout.value
            };
        }
        let outputs: Amount = child.output.iter().map(|o| o.value).sum();
        inputs.checked_sub(outputs)
    }

    /// Builds and signs (does not broadcast) a child of `parent` (a signed anchor commitment
    /// paying `parent_fee`) spending `anchor` (signed with `funding_key`, the channel's funding
    /// secret) and at least one wallet coin (never `locked` ones), its change back to the
    /// wallet, such that `(parent_fee + child fee) / (parent weight + child weight)` is at
    /// least `target`; the child also pays 1 sat/vB on its own. Record it with
    /// [`OnchainWallet::record_broadcast`] once broadcast (after the parent).
    pub fn build_anchor_cpfp(
        &mut self,
        parent: &Transaction,
        parent_fee: Amount,
        anchor: &AnchorSpend,
        funding_key: &SecretKey,
        target: FeeRate,
        locked: &[OutPoint],
    ) -> Result<Transaction, WalletError> {
        self.build_anchor_cpfp_replacing(
            parent,
            parent_fee,
            anchor,
            funding_key,
            target,
            locked,
            None,
            0,
        )
    }

    /// [`OnchainWallet::build_anchor_cpfp`], replacing (RBF) `previous`, an earlier child of
    /// the same anchor recorded in the wallet: the previous child is marked evicted (at
    /// `now`), so that its wallet coin is spendable again and is taken first (a replacement
    /// may not add unconfirmed inputs, BIP125 rule 2, and the coin would otherwise be tied up
    /// by a transaction the mempool drops). If the previous child is still in the mempool
    /// when the replacement is refused, the next sync sees it again.
    #[allow(clippy::too_many_arguments)]
    pub fn build_anchor_cpfp_replacing(
        &mut self,
        parent: &Transaction,
        parent_fee: Amount,
        anchor: &AnchorSpend,
        funding_key: &SecretKey,
        target: FeeRate,
        locked: &[OutPoint],
        previous: Option<&Transaction>,
        now: u64,
    ) -> Result<Transaction, WalletError> {
        let secp = Secp256k1::new();
        let reused: Vec<OutPoint> = previous
            .map(|p| {
                p.input
                    .iter()
                    .map(|i| i.previous_output)
                    .filter(|o| *o != anchor.outpoint)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(p) = previous {
            if self.knows(&p.compute_txid()) {
                self.wallet.apply_evicted_txs([(p.compute_txid(), now)]);
            }
        }
        // The previous child's coins are ours to reuse even if locked for it.
        let locked: Vec<OutPoint> = locked
            .iter()
            .filter(|o| !reused.contains(o))
            .copied()
            .collect();
        let (excluded, available) = self.not_spendable(&locked);
        let coins: Vec<_> = self
            .spendable_coins()
            .into_iter()
            .filter(|c| !excluded.contains(&c.outpoint))
            .collect();
        let coin = coins
            .iter()
            .find(|c| reused.contains(&c.outpoint))
            .or_else(|| coins.iter().max_by_key(|c| c.value))
            .cloned()
            .ok_or(WalletError::InsufficientFunds {
                needed: 1,
                available,
            })?;
        let change = self
            .wallet
            .next_unused_address(KeychainKind::Internal)
            .script_pubkey();
        let anchor_input = psbt::Input {
            witness_utxo: Some(anchor.txout()),
            non_witness_utxo: Some(parent.clone()),
            ..Default::default()
        };
        let parent_weight = parent.weight();
        let mut guess = Weight::from_wu(CHILD_WEIGHT_GUESS);
        // Usually two rounds: the second pays for the real (signed) weight of the first.
        for _ in 0..4 {
            let package_fee = target
                .checked_mul_by_weight(parent_weight + guess)
                .ok_or_else(|| WalletError::Bdk("cpfp: fee overflow".into()))?;
            let own_floor = CHILD_MIN_FEERATE
                .checked_mul_by_weight(guess)
                .ok_or_else(|| WalletError::Bdk("cpfp: fee overflow".into()))?;
            let child_fee = package_fee
                .checked_sub(parent_fee)
                .unwrap_or(Amount::ZERO)
                .max(own_floor);
            let mut builder = self.wallet.build_tx();
            builder
                .add_foreign_utxo(
                    anchor.outpoint,
                    anchor_input.clone(),
                    Weight::from_wu(ANCHOR_SATISFACTION_WEIGHT),
                )
                .map_err(bdk("cpfp: anchor input"))?
                .add_utxo(coin.outpoint)
                .map_err(bdk("cpfp: wallet coin"))?
                .unspendable(excluded.clone())
                .drain_to(change.clone())
                .fee_absolute(child_fee);
            let mut psbt = builder.finish().map_err(build_error(available))?;
            let index = psbt
                .unsigned_tx
                .input
                .iter()
                .position(|i| i.previous_output == anchor.outpoint)
                .ok_or_else(|| WalletError::Bdk("cpfp: the anchor input is missing".into()))?;
            let witness = anchor
                .sign(&secp, &psbt.unsigned_tx, index, funding_key)
                .map_err(bdk("cpfp: anchor signature"))?;
            if let Some(input) = psbt.inputs.get_mut(index) {
                input.final_script_witness = Some(witness);
            }
            let finalized = self
                .wallet
                .sign(&mut psbt, SignOptions::default())
                .map_err(bdk("cpfp: sign"))?;
            if !finalized {
                return Err(WalletError::Bdk(
                    "cpfp: the child is not fully signed".into(),
                ));
            }
            let child = psbt.extract_tx().map_err(bdk("cpfp: extract"))?;
            let weight = child.weight();
            if weight <= guess && guess.to_wu() - weight.to_wu() <= WEIGHT_SLACK {
                self.persist()?;
                return Ok(child);
            }
            guess = weight;
        }
        Err(WalletError::Bdk(
            "cpfp: the child's weight did not settle".into(),
        ))
    }
}
