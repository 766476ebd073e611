//! Commitment updates of a ready channel ([BOLT 2: Normal Operation](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#normal-operation)):
//! the funder's `update_fee`, `commitment_signed` and `revoke_and_ack` in both directions, over
//! the state of `commitments.rs`. HTLC updates are refused with a `warning` and a disconnect
//! (never an `error`: LDK fails the channel on one) and change nothing.
//!
//! Durable points, each one [`Action::Commit`] before the message it enables:
//! - before our `commitment_signed`: the commitment being signed (number, updates, feerate,
//!   point, our signature), so that after a restart we retransmit exactly it;
//! - before our `revoke_and_ack`: our new commitment and the peer's signature of it (we can
//!   broadcast it after a kill), and only then the old secret goes out;
//! - on the peer's `revoke_and_ack`: the revealed secret (shachain) and the now-current
//!   commitment, before anything acts on it.
//!
//! A peer message that breaks a rule leaves the state as it was: the checks run on a copy.

use bitcoin::secp256k1::ecdsa::Signature;

use super::commitment::Which;
use super::commitments::{Commitments, LocalCommit, RemoteNext, Spec, Update};
use super::config::MIN_FEERATE_PER_KW;
use super::fee_policy::check_peer_feerate;
use super::phase::{Commits, LockIn, Phase};
use super::{Action, Channel, Context, DisconnectScope, Role};
use crate::bolt3::{commitment_fee, Bolt3Error, ChannelType, ANCHOR_OUTPUT_VALUE};
use crate::keys::{per_commitment_point, INITIAL_COMMITMENT_NUMBER};
use crate::wire::{CommitmentSigned, Message, RevokeAndAck, UpdateFee, Warning};

/// Why a peer's update message is refused.
enum Refusal {
    /// `warning` and disconnect; nothing changes.
    Warn(String),
    /// `error`, fail the channel and broadcast our latest commitment.
    Fail(String),
}

impl Channel {
    /// The commitment type of this channel.
    pub(crate) fn commitment_type(&self) -> ChannelType {
        self.params.channel_type
    }

    /// Our latest commitment, once the channel is durable.
    pub(crate) fn local_commit(&self) -> Option<LocalCommit> {
        let e = self.phase.established()?;
        Some(match &e.commits {
            Commits::Updated(c) => c.local,
            Commits::Initial => LocalCommit {
                number: 0,
                spec: self.params.initial_spec(),
                point: self.params.ours.keys.first_per_commitment_point,
                their_sig: e.their_commitment_sig,
            },
        })
    }

    /// The commitment state of a ready channel (the initial one if never updated).
    pub(crate) fn commitments(&self) -> Option<Commitments> {
        let Phase::Funded(f) = &self.phase else {
            return None;
        };
        match &f.channel.commits {
            Commits::Updated(c) => Some((**c).clone()),
            Commits::Initial if f.lock == LockIn::Ready => {
                let theirs = &f.channel.negotiated.theirs;
                Some(Commitments::initial(
                    self.params.initial_spec(),
                    self.params.ours.keys.first_per_commitment_point,
                    f.channel.their_commitment_sig,
                    theirs.keys.first_per_commitment_point,
                    f.channel.their_second_point?,
                ))
            }
            Commits::Initial => None,
        }
    }

    /// Replaces the commitment state (the channel is ready: [`Channel::commitments`] was `Some`).
    fn set_commitments(&mut self, mut c: Commitments) {
        // Progress: the stall watchdog starts again.
        c.stalled_since = None;
        if let Phase::Funded(f) = &mut self.phase {
            f.channel.commits = Commits::Updated(Box::new(c));
        }
    }

    /// The update watchdog ([`super::Input::Tick`]): an update in flight that makes no
    /// progress for `update_timeout_secs` (a message lost on a connection that stays up)
    /// reconnects the peer; the reestablish exchange then retransmits what is owed.
    pub(crate) fn on_update_tick(&mut self, now: u64, timeout_secs: u64) -> Vec<Action> {
        let Phase::Funded(f) = &mut self.phase else {
            return Vec::new();
        };
        let Commits::Updated(c) = &mut f.channel.commits else {
            return Vec::new();
        };
        if !c.pending() {
            c.stalled_since = None;
            return Vec::new();
        }
        let Some(since) = c.stalled_since else {
            c.stalled_since = Some(now);
            return Vec::new();
        };
        if now.saturating_sub(since) < timeout_secs {
            return Vec::new();
        }
        c.stalled_since = None;
        vec![Action::ReconnectPeer {
            counterparty_node_id: self.params.counterparty_node_id,
            reason: format!("commitment update made no progress for {timeout_secs} s"),
        }]
    }

    /// Funder: move the commitment feerate to `feerate_per_kw`.
    pub(crate) fn on_set_feerate(&mut self, feerate_per_kw: u32, ctx: &Context<'_>) -> Vec<Action> {
        let Some(mut c) = self.commitments() else {
            return Vec::new();
        };
        // BOLT 2: no update of ours once a shutdown was sent or received.
        if self.params.role != Role::Funder
            || c.latest_feerate() == feerate_per_kw
            || self.is_shutting_down()
        {
            return Vec::new();
        }
        let feerate_per_kw = feerate_per_kw.max(MIN_FEERATE_PER_KW);
        // Never propose a feerate we cannot pay on the peer's commitment with the reserve
        // the peer asked us to keep: they would refuse it.
        // Nor one above what we would accept ourselves (a peer's bound is likely similar).
        let affordable = self.max_affordable_feerate(&c.remote.spec);
        let feerate_per_kw = feerate_per_kw
            .min(affordable)
            .min(ctx.config.update_fee_max_per_kw);
        if feerate_per_kw == c.latest_feerate() {
            return Vec::new();
        }
        c.ours.proposed.push(Update::Fee { feerate_per_kw });
        let update = Message::UpdateFee(UpdateFee {
            channel_id: self.current_id(),
            feerate_per_kw,
        });
        match self.sign_next(&mut c, ctx) {
            Ok(Some(signed)) => {
                self.set_commitments(c);
                vec![
                    self.commit(Vec::new()),
                    Action::Send(update),
                    Action::Send(Message::CommitmentSigned(signed)),
                ]
            }
            // Waiting for the peer's revocation: the update goes now, the signature after it.
            Ok(None) => {
                self.set_commitments(c);
                vec![Action::Send(update)]
            }
            Err(e) => {
                tracing::error!(channel = %self.current_id(), error = %e, "cannot sign the peer's commitment");
                Vec::new()
            }
        }
    }

    /// The highest feerate the funder can pay on a commitment paying `spec` while keeping the
    /// reserve its peer asked for.
    fn max_affordable_feerate(&self, spec: &Spec) -> u32 {
        let (funder_msat, reserve_sat) = match (self.params.role, self.their_params()) {
            (Role::Funder, Some(theirs)) => (spec.our_msat, theirs.channel_reserve_sat),
            (Role::Fundee, _) => (spec.their_msat, self.params.ours.channel_reserve_sat),
            (Role::Funder, None) => return 0,
        };
        let mut lo = MIN_FEERATE_PER_KW;
        let mut hi = u32::MAX / 2;
        if !self.can_afford(lo, funder_msat, reserve_sat) {
            return lo;
        }
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self.can_afford(mid, funder_msat, reserve_sat) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }

    /// Whether a funder with `funder_msat` pays the commitment fee at `feerate_per_kw` (and
    /// the anchors) and keeps `reserve_sat`.
    fn can_afford(&self, feerate_per_kw: u32, funder_msat: u64, reserve_sat: u64) -> bool {
        let ct = self.commitment_type();
        let anchors = if ct.anchors {
            ANCHOR_OUTPUT_VALUE.to_sat() * 2
        } else {
            0
        };
        let cost = commitment_fee(feerate_per_kw, 0, ct).to_sat() + anchors + reserve_sat;
        funder_msat / 1000 >= cost
    }

    /// Signs the peer's next commitment if there is something to sign and no signature of
    /// ours is unrevoked; `c` moves on only when it did.
    fn sign_next(
        &self,
        c: &mut Commitments,
        ctx: &Context<'_>,
    ) -> Result<Option<CommitmentSigned>, Bolt3Error> {
        if !c.can_sign() {
            return Ok(None);
        }
        let Some(next) = c.next_remote() else {
            return Ok(None);
        };
        let (theirs, outpoint) = self.commitment_inputs()?;
        let tx = self.params.build_commitment(
            ctx,
            theirs,
            outpoint,
            &Which {
                ours: false,
                number: next.number,
                point: next.point,
                spec: next.spec,
            },
        )?;
        let signature = tx.sign(ctx.secp, &ctx.keys.funding_key)?;
        c.signed(next, signature);
        Ok(Some(self.commitment_signed_message(signature)))
    }

    pub(crate) fn commitment_signed_message(&self, signature: Signature) -> CommitmentSigned {
        CommitmentSigned {
            channel_id: self.current_id(),
            signature,
            htlc_signatures: Vec::new(),
            funding_txid: None,
        }
    }

    /// Refuses a peer's message: a warning and a disconnect, or the channel fails.
    fn refuse(&mut self, refusal: Refusal, ctx: &Context<'_>) -> Vec<Action> {
        match refusal {
            Refusal::Warn(text) => {
                tracing::warn!(channel = %self.current_id(), %text, "refusing the peer's update");
                vec![
                    Action::Send(Message::Warning(Warning::new(self.current_id(), &text))),
                    Action::Disconnect {
                        counterparty_node_id: self.params.counterparty_node_id,
                        reason: text,
                        scope: DisconnectScope::Connection,
                    },
                ]
            }
            Refusal::Fail(text) => self.fail_and_close(text, true, ctx),
        }
    }

    /// An HTLC update (`update_add_htlc` and its relatives): Tern takes no HTLCs yet.
    pub(crate) fn on_htlc_update(&mut self, name: &str, ctx: &Context<'_>) -> Vec<Action> {
        if !self.state().is_durable() || self.is_failed() {
            return Vec::new();
        }
        self.refuse(
            Refusal::Warn(format!(
                "{name} refused: this node does not accept HTLCs yet (its channels carry no payments)"
            )),
            ctx,
        )
    }

    /// The peer's `update_fee`.
    pub(crate) fn on_update_fee(&mut self, msg: &UpdateFee, ctx: &Context<'_>) -> Vec<Action> {
        match self.check_update_fee(msg, ctx) {
            Ok(c) => {
                self.set_commitments(c);
                Vec::new()
            }
            Err(refusal) => self.refuse(refusal, ctx),
        }
    }

    fn check_update_fee(&self, msg: &UpdateFee, ctx: &Context<'_>) -> Result<Commitments, Refusal> {
        let Some(mut c) = self.commitments() else {
            return Err(Refusal::Warn(
                "update_fee before both channel_ready were exchanged".into(),
            ));
        };
        if self.params.role == Role::Funder {
            return Err(Refusal::Warn(
                "update_fee from the peer, but we pay the commitment fee".into(),
            ));
        }
        let f = msg.feerate_per_kw;
        let current = c.next_local_spec().feerate_per_kw;
        if let Err(why) = check_peer_feerate(ctx.config, current, f) {
            return Err(Refusal::Warn(why));
        }
        let spec = c.local.spec;
        let funder_msat = spec.their_msat;
        if !self.can_afford(f, funder_msat, self.params.ours.channel_reserve_sat) {
            return Err(Refusal::Warn(format!(
                "update_fee {f} sat/kw refused: the funder cannot pay it and keep its reserve"
            )));
        }
        c.theirs.proposed.push(Update::Fee { feerate_per_kw: f });
        Ok(c)
    }

    /// The peer's `commitment_signed`: verify it against our next commitment, make that
    /// commitment ours (persisted), revoke the previous one, and sign back what is pending.
    pub(crate) fn on_commitment_signed(
        &mut self,
        msg: &CommitmentSigned,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        let mut c = match self.check_commitment_signed(msg, ctx) {
            Ok(c) => c,
            Err(refusal) => return self.refuse(refusal, ctx),
        };
        let revoked = c.local.number - 1;
        let next_point = match ctx.point(c.local.number + 1) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(channel = %self.current_id(), error = %e, "cannot derive our next point");
                return Vec::new();
            }
        };
        let revoke = RevokeAndAck {
            channel_id: self.current_id(),
            per_commitment_secret: ctx.secret(revoked),
            next_per_commitment_point: next_point,
        };
        let signed = match self.sign_next(&mut c, ctx) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(channel = %self.current_id(), error = %e, "cannot sign the peer's commitment");
                None
            }
        };
        self.set_commitments(c);
        let mut actions = vec![
            self.commit(Vec::new()),
            Action::Send(Message::RevokeAndAck(revoke)),
        ];
        actions.extend(signed.map(|s| Action::Send(Message::CommitmentSigned(s))));
        actions
    }

    fn check_commitment_signed(
        &self,
        msg: &CommitmentSigned,
        ctx: &Context<'_>,
    ) -> Result<Commitments, Refusal> {
        let Some(mut c) = self.commitments() else {
            return Err(Refusal::Warn(
                "commitment_signed before both channel_ready were exchanged".into(),
            ));
        };
        if msg
            .funding_txid
            .is_some_and(|t| Some(t) != self.funding().map(|f| f.outpoint.txid))
        {
            return Err(Refusal::Warn(
                "commitment_signed for another funding transaction (no splice here)".into(),
            ));
        }
        let spec = c.next_local_spec();
        let number = c.local.number + 1;
        if !msg.htlc_signatures.is_empty() {
            return Err(Refusal::Warn(format!(
                "commitment_signed with {} htlc signatures for a commitment without HTLCs",
                msg.htlc_signatures.len()
            )));
        }
        let mut normalized = msg.signature;
        normalized.normalize_s();
        if normalized != msg.signature {
            return Err(Refusal::Warn("commitment signature is not low-S".into()));
        }
        let point = ctx.point(number).map_err(|e| {
            Refusal::Warn(format!(
                "cannot derive our point for commitment {number}: {e}"
            ))
        })?;
        let verified = self.commitment_inputs().and_then(|(theirs, outpoint)| {
            let tx = self.params.build_commitment(
                ctx,
                theirs,
                outpoint,
                &Which {
                    ours: true,
                    number,
                    point,
                    spec,
                },
            )?;
            tx.verify(ctx.secp, &msg.signature, &theirs.keys.funding_pubkey)
        });
        if let Err(e) = verified {
            return Err(Refusal::Warn(format!(
                "commitment_signed does not sign our commitment {number} at {} sat/kw: {e}",
                spec.feerate_per_kw
            )));
        }
        c.received_commitment(spec, point, msg.signature);
        Ok(c)
    }

    /// The peer's `revoke_and_ack`: check the secret against the commitment it revokes,
    /// store it with the now-current commitment (persisted), then sign what is pending.
    pub(crate) fn on_revoke_and_ack(
        &mut self,
        msg: &RevokeAndAck,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        let mut c = match self.check_revoke_and_ack(msg, ctx) {
            Ok(c) => c,
            Err(refusal) => return self.refuse(refusal, ctx),
        };
        let signed = match self.sign_next(&mut c, ctx) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(channel = %self.current_id(), error = %e, "cannot sign the peer's commitment");
                None
            }
        };
        self.set_commitments(c);
        let mut actions = vec![self.commit(Vec::new())];
        actions.extend(signed.map(|s| Action::Send(Message::CommitmentSigned(s))));
        actions
    }

    fn check_revoke_and_ack(
        &self,
        msg: &RevokeAndAck,
        ctx: &Context<'_>,
    ) -> Result<Commitments, Refusal> {
        let Some(mut c) = self.commitments() else {
            return Err(Refusal::Warn(
                "revoke_and_ack before both channel_ready were exchanged".into(),
            ));
        };
        let RemoteNext::Signed(signed) = c.next else {
            return Err(Refusal::Warn(
                "revoke_and_ack without a commitment_signed of ours to answer".into(),
            ));
        };
        let revoked = c.remote.number;
        let point = per_commitment_point(ctx.secp, &msg.per_commitment_secret);
        if point.ok() != Some(c.remote.point) {
            return Err(Refusal::Fail(format!(
                "revoke_and_ack: per_commitment_secret does not match commitment {revoked}"
            )));
        }
        if let Err(e) = c.their_secrets.provide_secret(
            INITIAL_COMMITMENT_NUMBER - revoked,
            msg.per_commitment_secret,
        ) {
            return Err(Refusal::Fail(format!(
                "revoke_and_ack: per_commitment_secret for {revoked} is not from the BOLT 3 chain: {e}"
            )));
        }
        c.revoked(signed, msg.next_per_commitment_point);
        Ok(c)
    }

    /// The connection dropped: the peer's unsigned updates are reversed, ours forgotten (the
    /// driver asks again).
    pub(crate) fn drop_unsigned_updates(&mut self) {
        if let Some(Commits::Updated(c)) = self.phase.established_mut().map(|e| &mut e.commits) {
            c.drop_unsigned();
        }
    }
}
