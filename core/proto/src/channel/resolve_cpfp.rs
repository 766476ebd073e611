//! CPFP of our own anchor commitment (`option_anchors`) while it is unconfirmed (BOLT 5
//! "MUST ... spend `to_local_anchor` ... and RBF"): the decision is the channel's, the child's
//! coins are the wallet's.
//!
//! # The decision
//!
//! A channel in [`Phase::Closing`] with [`CloseKind::LocalForce`], whose commitment is not in a
//! block yet, asks for a child ([`Action::BumpCommitment`]) when the commitment's own feerate
//! (the one both sides signed) is below the target — the commitment (~2-block) estimate of the
//! driver ([`FeeEstimates::commitment_per_kw`]), the target of every commitment we sign — and
//! no child at that feerate or above is held yet. It asks at the force close itself (right
//! after the commitment's broadcast) and on every new block while the commitment is
//! unconfirmed. It stops once the commitment is mined (or another transaction spends the
//! funding: the child is then invalid and forgotten with the old resolution).
//!
//! # The answer: persist, then broadcast
//!
//! The driver builds the child from a wallet coin (never a locked one; the coin is locked
//! while the child is only built) and answers [`Input::CpfpBuilt`]. The channel checks it
//! spends our anchor of the commitment it holds, stores it (record field 78: feerate, height,
//! the child) in one `Commit`, then broadcasts the commitment and the child, in that order.
//! Every rebroadcast of the commitment (each block, at start) is followed by the child's.
//! A failed write leaves the channel as it was: the next block asks again.
//!
//! # Re-bumping: RBF of the child
//!
//! When the estimate rises above the held child's feerate, the next request names the held
//! child as `replaces`: the driver builds a **replacement** spending the same anchor (and, if
//! it can, the same wallet coin), which conflicts with the old child, so the mempool keeps
//! one of them (BIP125). RBF rather than a second child: a second child could only spend the
//! first one's change (the anchor is spent by it), making a longer chain to confirm (more
//! weight paid for, and up against the 25-descendant limit), and it would tie up another coin.
//! A replacement must pay the old child's fee plus the relay fee of its own size (BIP125 rule
//! 4): the package (commitment + child, together heavier than the child alone) at
//! [`RBF_STEP_PER_KW`] more than the old target always does, so a replacement targets at
//! least that.

use bitcoin::{Amount, OutPoint, Transaction};

use super::phase::Phase;
use super::{Action, BroadcastKind, Channel, CloseKind, Context};
#[cfg(doc)]
use super::{FeeEstimates, Input};
use crate::bolt3::{anchor_script_pubkey, AnchorSpend};
use crate::wire::codec::{Reader, WireWrite};
use crate::wire::{ChannelId, DecodeError, WireField};

/// The least rise of a replacement child's target over the held one, in sat per 1000 weight
/// units: the incremental relay fee (1 sat/vB = 250 sat/kw) rounded up, which BIP125 rule 4
/// asks of the child's own size — paid here over the package's larger weight.
pub const RBF_STEP_PER_KW: u32 = 253;

/// The CPFP child we hold for our unconfirmed commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnchorCpfp {
    /// The signed child (our anchor + wallet coins, change to the wallet).
    pub(super) child: Transaction,
    /// The package feerate it was built for.
    pub(super) feerate_per_kw: u32,
    /// The tip when it was built.
    pub(super) height: u32,
}

/// What [`Action::BumpCommitment`] asks of the driver: a child of `parent` spending `anchor`
/// (signed with the channel's funding key, which the driver derives from the channel's keys:
/// no secret travels in the action) and wallet coins, such that the package pays
/// `feerate_per_kw`. Answer with [`Input::CpfpBuilt`] echoing `feerate_per_kw` and `height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpfpRequest {
    /// The channel.
    pub channel_id: ChannelId,
    /// Our signed commitment (unconfirmed).
    pub parent: Transaction,
    /// The fee the commitment pays.
    pub parent_fee: Amount,
    /// Our anchor output on it.
    pub anchor: AnchorSpend,
    /// The package feerate wanted.
    pub feerate_per_kw: u32,
    /// The tip the decision was made at.
    pub height: u32,
    /// The child held so far, which the new one replaces (RBF), if any.
    pub replaces: Option<Transaction>,
}

impl Channel {
    /// The CPFP child this closing channel holds for its commitment, if any: what the
    /// durability checker asks before the child's broadcast.
    pub fn anchor_cpfp_child(&self) -> Option<&Transaction> {
        self.closing()
            .and_then(|c| c.resolution.cpfp.as_ref())
            .map(|b| &b.child)
    }

    /// The feerate (sat/kw) the held CPFP child lifts our commitment to, if any.
    pub fn anchor_cpfp_feerate(&self) -> Option<u32> {
        self.closing()
            .and_then(|c| c.resolution.cpfp.as_ref())
            .map(|b| b.feerate_per_kw)
    }

    /// The fee our commitment `tx` pays (the funding amount less its outputs).
    fn commitment_fee(&self, tx: &Transaction) -> Amount {
        let out: Amount = tx.output.iter().map(|o| o.value).sum();
        self.funding_amount()
            .checked_sub(out)
            .unwrap_or(Amount::ZERO)
    }

    /// Our anchor on our commitment `tx`, if it has one.
    fn our_anchor(&self, tx: &Transaction) -> Option<AnchorSpend> {
        let funding_pubkey = self.params.ours.keys.funding_pubkey;
        let script = anchor_script_pubkey(&funding_pubkey);
        let vout = tx.output.iter().position(|o| o.script_pubkey == script)?;
        Some(AnchorSpend {
            outpoint: OutPoint {
                txid: tx.compute_txid(),
                vout: u32::try_from(vout).ok()?,
            },
            funding_pubkey,
        })
    }

    /// The CPFP decision (see the module documentation) at tip `height`: a request, or `None`.
    pub(super) fn cpfp_request(&self, height: u32, ctx: &Context<'_>) -> Option<Action> {
        let c = match &self.phase {
            Phase::Closing(c) => c,
            _ => return None,
        };
        let r = &c.resolution;
        if r.kind != CloseKind::LocalForce || r.confirmed_at.is_some() {
            return None;
        }
        if !self.channel_type().anchors {
            return None;
        }
        let target = ctx.fee_estimates?.commitment_per_kw;
        let parent = &r.spend;
        let parent_fee = self.commitment_fee(parent);
        // The commitment's own feerate (the one both sides signed, BOLT 3's weight): at the
        // target already, nothing to do.
        let own = self.commitment_feerate_per_kw();
        if own >= target {
            return None;
        }
        let feerate_per_kw = match &r.cpfp {
            None => target,
            Some(held) if target > held.feerate_per_kw => {
                target.max(held.feerate_per_kw.saturating_add(RBF_STEP_PER_KW))
            }
            Some(_) => return None,
        };
        let anchor = self.our_anchor(parent)?;
        let channel_id = self.channel_id()?;
        tracing::info!(channel = %channel_id, own, feerate_per_kw, replaces = r.cpfp.is_some(), "our commitment pays too little: asking for a CPFP child");
        Some(Action::BumpCommitment(CpfpRequest {
            channel_id,
            parent: parent.clone(),
            parent_fee,
            anchor,
            feerate_per_kw,
            height,
            replaces: r.cpfp.as_ref().map(|b| b.child.clone()),
        }))
    }

    /// [`Input::CpfpBuilt`]: the driver's child for our commitment. Stored (one `Commit`), then
    /// the commitment and the child are broadcast. Ignored if the channel no longer waits for
    /// it: the commitment confirmed or was replaced, the child does not spend our anchor, or a
    /// child at this feerate or above is held already.
    pub(super) fn on_cpfp_built(
        &mut self,
        child: Transaction,
        feerate_per_kw: u32,
        height: u32,
    ) -> Vec<Action> {
        let Phase::Closing(c) = &self.phase else {
            return Vec::new();
        };
        let r = &c.resolution;
        let stale = r.kind != CloseKind::LocalForce
            || r.confirmed_at.is_some()
            || r.cpfp
                .as_ref()
                .is_some_and(|held| held.feerate_per_kw >= feerate_per_kw);
        let anchor = self.our_anchor(&r.spend);
        let spends_anchor =
            anchor.is_some_and(|a| child.input.iter().any(|i| i.previous_output == a.outpoint));
        if stale || !spends_anchor {
            tracing::warn!(channel = %self.current_id(), stale, spends_anchor, "CPFP child not taken");
            return Vec::new();
        }
        if let Phase::Closing(c) = &mut self.phase {
            c.resolution.cpfp = Some(AnchorCpfp {
                child,
                feerate_per_kw,
                height,
            });
        }
        let mut actions = vec![self.commit(Vec::new())];
        actions.extend(self.spend_broadcasts(height));
        actions
    }

    /// The broadcast of the held child, after its commitment's.
    pub(super) fn cpfp_broadcast(&self) -> Option<Action> {
        let c = self.closing()?;
        if c.resolution.kind != CloseKind::LocalForce {
            return None;
        }
        c.resolution.cpfp.as_ref().map(|b| Action::Broadcast {
            tx: b.child.clone(),
            kind: BroadcastKind::AnchorCpfp,
        })
    }
}

/// Record 78: feerate (`u32`), height (`u32`), the child (a `u32`-length-prefixed consensus
/// transaction).
#[derive(Debug)]
pub(super) enum CpfpForm {}

impl WireField for CpfpForm {
    type Value = AnchorCpfp;
    fn write(value: &AnchorCpfp, out: &mut Vec<u8>) {
        out.put_u32(value.feerate_per_kw);
        out.put_u32(value.height);
        let bytes = bitcoin::consensus::encode::serialize(&value.child);
        out.put_u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        out.put_bytes(&bytes);
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<AnchorCpfp, DecodeError> {
        let feerate_per_kw = r.read_u32(field)?;
        let height = r.read_u32(field)?;
        let len = usize::try_from(r.read_u32(field)?).map_err(|_| DecodeError::InvalidValue {
            field,
            reason: "too long",
        })?;
        let child =
            bitcoin::consensus::encode::deserialize(r.read_bytes(len, field)?).map_err(|_| {
                DecodeError::InvalidValue {
                    field,
                    reason: "not a transaction",
                }
            })?;
        Ok(AnchorCpfp {
            child,
            feerate_per_kw,
            height,
        })
    }
}
