//! The first commitment transactions (number 0) of both sides, built with BOLT 3.

use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::{Amount, OutPoint, Transaction};

use super::commitments::Spec;
use super::phase::ChannelParams;
use super::{Channel, Context, Role, SideParams};
use crate::bolt3::{
    build_commitment_tx, obscure_factor, Bolt3Error, CommitmentKeys, CommitmentParams,
    CommitmentTx, FundingInput,
};
use crate::keys::ChannelPublicKeys;
use crate::wire::ChannelKeys;

pub(crate) fn public_keys(k: &ChannelKeys) -> ChannelPublicKeys {
    ChannelPublicKeys {
        funding_pubkey: k.funding_pubkey,
        revocation_basepoint: k.revocation_basepoint,
        payment_basepoint: k.payment_basepoint,
        delayed_payment_basepoint: k.delayed_payment_basepoint,
        htlc_basepoint: k.htlc_basepoint,
    }
}

/// Which commitment to build: whose, its number, the per-commitment point it uses and what it
/// pays.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Which {
    pub(crate) ours: bool,
    pub(crate) number: u64,
    pub(crate) point: bitcoin::secp256k1::PublicKey,
    pub(crate) spec: Spec,
}

const MISSING: Bolt3Error = Bolt3Error::Amount {
    reason: "channel parameters or funding outpoint not known yet",
};

impl ChannelParams {
    pub(crate) fn obscure(&self, theirs: &SideParams) -> u64 {
        let (opener, accepter) = match self.role {
            Role::Funder => (&self.ours, theirs),
            Role::Fundee => (theirs, &self.ours),
        };
        obscure_factor(
            &opener.keys.payment_basepoint,
            &accepter.keys.payment_basepoint,
        )
    }

    /// What the first commitments (number 0) pay, from our side.
    pub(crate) fn initial_spec(&self) -> Spec {
        let funder_msat = (self.funding_sat * 1000).saturating_sub(self.push_msat);
        let (our_msat, their_msat) = match self.role {
            Role::Funder => (funder_msat, self.push_msat),
            Role::Fundee => (self.push_msat, funder_msat),
        };
        Spec {
            feerate_per_kw: self.commitment_feerate_per_kw,
            our_msat,
            their_msat,
        }
    }

    /// Builds the first commitment of `us` (true: ours, false: theirs) spending `outpoint`.
    fn first_commitment(
        &self,
        ctx: &Context<'_>,
        theirs: &SideParams,
        outpoint: OutPoint,
        us: bool,
    ) -> Result<CommitmentTx, Bolt3Error> {
        let point = if us {
            self.ours.keys.first_per_commitment_point
        } else {
            theirs.keys.first_per_commitment_point
        };
        let which = Which {
            ours: us,
            number: 0,
            point,
            spec: self.initial_spec(),
        };
        self.build_commitment(ctx, theirs, outpoint, &which)
    }

    /// Builds commitment `which` (ours or the peer's) spending `outpoint`.
    pub(crate) fn build_commitment(
        &self,
        ctx: &Context<'_>,
        theirs: &SideParams,
        outpoint: OutPoint,
        which: &Which,
    ) -> Result<CommitmentTx, Bolt3Error> {
        let (local, remote) = if which.ours {
            (&self.ours, theirs)
        } else {
            (theirs, &self.ours)
        };
        let keys = CommitmentKeys::derive(
            ctx.secp,
            &which.point,
            &public_keys(&local.keys),
            &public_keys(&remote.keys),
        )?;
        let local_is_funder = (self.role == Role::Funder) == which.ours;
        let (to_local_msat, to_remote_msat) = if which.ours {
            (which.spec.our_msat, which.spec.their_msat)
        } else {
            (which.spec.their_msat, which.spec.our_msat)
        };
        build_commitment_tx(&CommitmentParams {
            funding: FundingInput {
                outpoint,
                amount: Amount::from_sat(self.funding_sat),
                local_funding_pubkey: local.keys.funding_pubkey,
                remote_funding_pubkey: remote.keys.funding_pubkey,
            },
            commitment_number: which.number,
            obscure_factor: self.obscure(theirs),
            // The delay on the owner's outputs is the one the other side asked for.
            to_self_delay: remote.to_self_delay,
            dust_limit: Amount::from_sat(local.dust_limit_sat),
            feerate_per_kw: which.spec.feerate_per_kw,
            local_is_funder,
            to_local_msat,
            to_remote_msat,
            htlcs: &[],
            keys: &keys,
            channel_type: self.channel_type,
        })
    }

    /// Our signature of the peer's first commitment.
    pub(crate) fn sign_their_commitment(
        &self,
        ctx: &Context<'_>,
        theirs: &SideParams,
        outpoint: OutPoint,
    ) -> Result<Signature, Bolt3Error> {
        self.first_commitment(ctx, theirs, outpoint, false)?
            .sign(ctx.secp, &ctx.keys.funding_key)
    }

    /// Verifies the peer's signature of our first commitment (low-S included).
    pub(crate) fn verify_our_commitment(
        &self,
        ctx: &Context<'_>,
        theirs: &SideParams,
        outpoint: OutPoint,
        signature: &Signature,
    ) -> Result<(), Bolt3Error> {
        let mut normalized = *signature;
        normalized.normalize_s();
        if normalized != *signature {
            return Err(Bolt3Error::InvalidSignature {
                what: "commitment signature is not low-S",
            });
        }
        self.first_commitment(ctx, theirs, outpoint, true)?.verify(
            ctx.secp,
            signature,
            &theirs.keys.funding_pubkey,
        )
    }
}

impl Channel {
    pub(crate) fn commitment_inputs(&self) -> Result<(&SideParams, OutPoint), Bolt3Error> {
        let theirs = self.their_params().ok_or(MISSING)?;
        let outpoint = self.funding().ok_or(MISSING)?.outpoint;
        Ok((theirs, outpoint))
    }

    /// Our first commitment transaction (unsigned).
    #[cfg(test)]
    pub(crate) fn our_first_commitment(
        &self,
        ctx: &Context<'_>,
    ) -> Result<CommitmentTx, Bolt3Error> {
        let (theirs, outpoint) = self.commitment_inputs()?;
        self.params().first_commitment(ctx, theirs, outpoint, true)
    }

    /// The peer's first commitment transaction (unsigned).
    #[cfg(test)]
    pub(crate) fn their_first_commitment(
        &self,
        ctx: &Context<'_>,
    ) -> Result<CommitmentTx, Bolt3Error> {
        let (theirs, outpoint) = self.commitment_inputs()?;
        self.params().first_commitment(ctx, theirs, outpoint, false)
    }

    /// Our fully signed latest commitment, for a unilateral close.
    pub(crate) fn signed_our_commitment(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Transaction, Bolt3Error> {
        let local = self.local_commit().ok_or(MISSING)?;
        let (theirs, outpoint) = self.commitment_inputs()?;
        let point = ctx.point(local.number)?;
        let commitment = self.params().build_commitment(
            ctx,
            theirs,
            outpoint,
            &Which {
                ours: true,
                number: local.number,
                point,
                spec: local.spec,
            },
        )?;
        let our_sig = commitment.sign(ctx.secp, &ctx.keys.funding_key)?;
        Ok(commitment.finalize(&our_sig, &local.their_sig))
    }
}
