//! BOLT 3 transactions: funding output, commitment transactions (both views), HTLC-success and
//! HTLC-timeout transactions, closing transactions and sweeps, with BIP143 signing.
//!
//! See [BOLT 3](https://github.com/lightning/bolts/blob/master/03-transactions.md).
//!
//! Naming follows the spec: "local" is the owner (broadcaster) of the commitment transaction
//! being built and "remote" the other party, so our own commitment and the counterparty's are
//! built by the same code with the roles swapped ([`CommitmentKeys::derive`]).
//! `option_static_remotekey` is always on; [`ChannelType::anchors`] selects `option_anchors`
//! (anchor outputs, CSV-locked `to_remote` and HTLC outputs, zero-fee HTLC transactions).

mod anchor;
mod closing;
mod commitment;
mod fees;
mod funding;
mod htlc;
mod scripts;
mod shutdown;
mod sweep;

pub use anchor::{anchor_script_pubkey, AnchorSpend, ANCHOR_SATISFACTION_WEIGHT};
pub use closing::{
    build_closing_tx, closing_tx_fee, closing_tx_variants, closing_tx_weight,
    verify_closing_signature, ClosingTx, ClosingTxParams,
};
pub use commitment::{
    build_commitment_tx, obscure_factor, CommitmentKeys, CommitmentOutput, CommitmentParams,
    CommitmentTx, Htlc, HtlcDirection, OutputKind,
};
pub use fees::{
    commitment_fee, htlc_is_trimmed, htlc_success_fee, htlc_timeout_fee, ANCHOR_OUTPUT_VALUE,
};
pub use funding::{sign_sighash, verify_sighash, FundingInput};
pub use htlc::{HtlcSigner, HtlcTx, HtlcTxKind};
pub use scripts::{
    anchor_witness_script, funding_script_pubkey, funding_witness_script,
    offered_htlc_witness_script, p2wpkh_script_pubkey, received_htlc_witness_script,
    to_local_witness_script, to_remote_anchors_witness_script, to_remote_script,
};
pub use shutdown::{shutdown_script_form, ShutdownScript, ShutdownScriptError};
pub use sweep::{SweepKind, SweepTx};

/// The commitment format negotiated for a channel. `option_static_remotekey` is implied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelType {
    /// `option_anchors` (features 22/23): anchor outputs and zero-fee HTLC transactions.
    pub anchors: bool,
}

impl ChannelType {
    /// `option_static_remotekey` without anchors.
    pub const STATIC_REMOTE_KEY: ChannelType = ChannelType { anchors: false };
    /// `option_anchors` (zero-fee HTLC transactions).
    pub const ANCHORS: ChannelType = ChannelType { anchors: true };
}

/// Errors from building, signing and verifying BOLT 3 transactions.
#[derive(Debug, thiserror::Error)]
pub enum Bolt3Error {
    /// Sighash computation failed (input index out of range).
    #[error("sighash computation failed: {0}")]
    Sighash(#[from] bitcoin::transaction::InputsIndexError),
    /// P2WPKH sighash computation failed.
    #[error("p2wpkh sighash computation failed: {0}")]
    P2wpkhSighash(#[from] bitcoin::sighash::P2wpkhError),
    /// A signature does not verify.
    #[error("invalid signature for {what}")]
    InvalidSignature {
        /// Which signature.
        what: &'static str,
    },
    /// An amount does not fit or an output would be negative.
    #[error("amounts do not add up: {reason}")]
    Amount {
        /// What is wrong.
        reason: &'static str,
    },
    /// A sweep whose output, once the fee is paid, would be below its destination's dust
    /// threshold: not worth sweeping at this feerate (record it, do not broadcast).
    #[error("uneconomical sweep: {amount} minus a fee of {fee} is below the dust threshold {dust_threshold}")]
    Uneconomical {
        /// The value of the output to sweep.
        amount: bitcoin::Amount,
        /// The fee at the requested feerate.
        fee: bitcoin::Amount,
        /// The destination script's dust threshold.
        dust_threshold: bitcoin::Amount,
    },
    /// An input that does not spend the output being signed for.
    #[error("input {input} does not spend the output being signed for")]
    WrongInput {
        /// The input index given.
        input: usize,
    },
    /// An HTLC-success transaction needs the payment preimage.
    #[error("the htlc-success transaction needs the payment preimage")]
    MissingPreimage,
    /// Key derivation failed.
    #[error("key derivation failed: {0}")]
    Keys(#[from] crate::keys::KeysError),
}
