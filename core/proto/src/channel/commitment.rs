//! The first commitment transactions (number 0) of both sides, built with BOLT 3.

use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::{Amount, OutPoint, Transaction};

use super::phase::ChannelParams;
use super::{Channel, Context, Role, SideParams};
use crate::bolt3::{
    build_commitment_tx, obscure_factor, Bolt3Error, CommitmentKeys, CommitmentParams,
    CommitmentTx, FundingInput,
};
use crate::keys::ChannelPublicKeys;
use crate::wire::ChannelKeys;

fn public_keys(k: &ChannelKeys) -> ChannelPublicKeys {
    ChannelPublicKeys {
        funding_pubkey: k.funding_pubkey,
        revocation_basepoint: k.revocation_basepoint,
        payment_basepoint: k.payment_basepoint,
        delayed_payment_basepoint: k.delayed_payment_basepoint,
        htlc_basepoint: k.htlc_basepoint,
    }
}

const MISSING: Bolt3Error = Bolt3Error::Amount {
    reason: "channel parameters or funding outpoint not known yet",
};

impl ChannelParams {
    fn obscure(&self, theirs: &SideParams) -> u64 {
        let (opener, accepter) = match self.role {
            Role::Funder => (&self.ours, theirs),
            Role::Fundee => (theirs, &self.ours),
        };
        obscure_factor(
            &opener.keys.payment_basepoint,
            &accepter.keys.payment_basepoint,
        )
    }

    /// Builds the first commitment of `us` (true: ours, false: theirs) spending `outpoint`.
    fn first_commitment(
        &self,
        ctx: &Context<'_>,
        theirs: &SideParams,
        outpoint: OutPoint,
        us: bool,
    ) -> Result<CommitmentTx, Bolt3Error> {
        let (local, remote) = if us {
            (&self.ours, theirs)
        } else {
            (theirs, &self.ours)
        };
        let keys = CommitmentKeys::derive(
            ctx.secp,
            &local.keys.first_per_commitment_point,
            &public_keys(&local.keys),
            &public_keys(&remote.keys),
        )?;
        let funder_msat = (self.funding_sat * 1000).saturating_sub(self.push_msat);
        let local_is_funder = (self.role == Role::Funder) == us;
        let (to_local_msat, to_remote_msat) = if local_is_funder {
            (funder_msat, self.push_msat)
        } else {
            (self.push_msat, funder_msat)
        };
        build_commitment_tx(&CommitmentParams {
            funding: FundingInput {
                outpoint,
                amount: Amount::from_sat(self.funding_sat),
                local_funding_pubkey: local.keys.funding_pubkey,
                remote_funding_pubkey: remote.keys.funding_pubkey,
            },
            commitment_number: 0,
            obscure_factor: self.obscure(theirs),
            // The delay on the owner's outputs is the one the other side asked for.
            to_self_delay: remote.to_self_delay,
            dust_limit: Amount::from_sat(local.dust_limit_sat),
            feerate_per_kw: self.commitment_feerate_per_kw,
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
    fn commitment_inputs(&self) -> Result<(&SideParams, OutPoint), Bolt3Error> {
        let theirs = self.their_params().ok_or(MISSING)?;
        let outpoint = self.funding().ok_or(MISSING)?.outpoint;
        Ok((theirs, outpoint))
    }

    /// Our first commitment transaction (unsigned).
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

    /// Our fully signed first commitment, for a unilateral close.
    pub(crate) fn signed_our_commitment(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Transaction, Bolt3Error> {
        let their_sig = self.their_commitment_signature().ok_or(MISSING)?;
        let commitment = self.our_first_commitment(ctx)?;
        let our_sig = commitment.sign(ctx.secp, &ctx.keys.funding_key)?;
        Ok(commitment.finalize(&our_sig, &their_sig))
    }
}
