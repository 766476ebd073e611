//! What spent a channel's funding output: our latest commitment, the peer's current one, a
//! commitment of the peer's it revoked (punishable: `resolve.rs` sweeps it with the
//! revocation key), one from our future (we lost data), or something else (a mutual close,
//! or a commitment we cannot place).
//!
//! A commitment carries its obscured number in its lock time and sequence (BOLT 3); the
//! obscuring factor is shared by both sides' commitments, so whose it is comes from its
//! outputs: the peer's commitment `n` pays its `to_local` to a script built on its point `n`,
//! which we can rebuild from the secret it revealed for a revoked one.

use bitcoin::{ScriptBuf, Transaction};

use super::commitment::public_keys;
use super::phase::Commits;
use super::{Channel, Context};
use crate::bolt3::{to_local_witness_script, CommitmentKeys};
use crate::keys::{per_commitment_point, INITIAL_COMMITMENT_NUMBER};

/// What a transaction spending the funding output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendKind {
    /// Our latest commitment (a unilateral close of ours).
    OurCommitment {
        /// Its commitment number.
        number: u64,
    },
    /// The peer's current commitment, or the next one we signed (a unilateral close of
    /// theirs).
    TheirCommitment {
        /// Its commitment number.
        number: u64,
    },
    /// A commitment of the peer's with a number above any we signed: we lost data (or fell
    /// behind). Only our `to_remote` can be taken (BOLT 5).
    TheirFutureCommitment {
        /// Its commitment number.
        number: u64,
    },
    /// A commitment the peer revoked: every output can be taken with the revocation key.
    TheirRevokedCommitment {
        /// Its commitment number.
        number: u64,
    },
    /// Not a commitment of this channel we can place (a mutual close, or unknown).
    Other,
}

impl Channel {
    /// Classifies `tx`, a spend of this channel's funding output.
    pub fn classify_spend(&self, tx: &Transaction, ctx: &Context<'_>) -> SpendKind {
        let Some(number) = self.commitment_number_of(tx) else {
            return SpendKind::Other;
        };
        let ours = self
            .signed_our_commitment(ctx)
            .is_ok_and(|ours| ours.compute_txid() == tx.compute_txid());
        if ours {
            return SpendKind::OurCommitment { number };
        }
        // Any durable phase (a failed or closing channel keeps its commitments).
        let Some(c) = self.phase.established().and_then(|e| match &e.commits {
            Commits::Updated(c) => Some(c),
            Commits::Initial => None,
        }) else {
            // Never updated: the peer's only commitment is number 0.
            return if number == 0 {
                SpendKind::TheirCommitment { number }
            } else {
                SpendKind::TheirFutureCommitment { number }
            };
        };
        if number < c.remote.number {
            let secret = c
                .their_secrets
                .get_secret(INITIAL_COMMITMENT_NUMBER - number);
            let script = secret.and_then(|s| self.their_to_local_script(&s, ctx));
            if script.is_some_and(|s| tx.output.iter().any(|o| o.script_pubkey == s)) {
                return SpendKind::TheirRevokedCommitment { number };
            }
            return SpendKind::Other;
        }
        let next = match c.next {
            super::commitments::RemoteNext::Signed(s) => s.commit.number,
            super::commitments::RemoteNext::Point(_) => c.remote.number,
        };
        if number == c.remote.number || number == next {
            SpendKind::TheirCommitment { number }
        } else {
            SpendKind::TheirFutureCommitment { number }
        }
    }

    /// The commitment number a transaction carries, if it has the commitment's form.
    fn commitment_number_of(&self, tx: &Transaction) -> Option<u64> {
        let input = match tx.input.as_slice() {
            [one] => one,
            _ => return None,
        };
        let lock = tx.lock_time.to_consensus_u32();
        let seq = input.sequence.0;
        if lock >> 24 != 0x20 || seq >> 24 != 0x80 {
            return None;
        }
        let obscured = (u64::from(seq & 0xFF_FFFF) << 24) | u64::from(lock & 0xFF_FFFF);
        let theirs = self.their_params()?;
        let factor = self.params().obscure(theirs);
        Some(obscured ^ factor)
    }

    /// The `to_local` output script of the peer's commitment built on the point of `secret`.
    fn their_to_local_script(&self, secret: &[u8; 32], ctx: &Context<'_>) -> Option<ScriptBuf> {
        let (script, _) = self.their_to_local(secret, ctx)?;
        Some(ScriptBuf::new_p2wsh(&script.wscript_hash()))
    }

    /// The witness script of the peer's `to_local` on the commitment of `secret`'s point, and
    /// that commitment's keys (the revocation key a penalty signs with).
    pub(super) fn their_to_local(
        &self,
        secret: &[u8; 32],
        ctx: &Context<'_>,
    ) -> Option<(ScriptBuf, CommitmentKeys)> {
        let theirs = self.their_params()?;
        let point = per_commitment_point(ctx.secp, secret).ok()?;
        let keys = CommitmentKeys::derive(
            ctx.secp,
            &point,
            &public_keys(&theirs.keys),
            &public_keys(&self.our_params().keys),
        )
        .ok()?;
        let script = to_local_witness_script(
            &keys.revocation_pubkey,
            self.our_params().to_self_delay,
            &keys.local_delayed_pubkey,
        );
        Some((script, keys))
    }
}
