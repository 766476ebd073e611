//! Cooperative close, part 2: the fee negotiation with `closing_signed` and `fee_range`
//! ([BOLT 2: Legacy Closing Negotiation](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#legacy-closing-negotiation-closing_signed)),
//! as LDK 0.2 speaks it (no `option_simple_close` yet).
//!
//! - As funder we propose once both `shutdown`s are exchanged and no update is in flight:
//!   `fee_satoshis = max_fee_satoshis =` our target (the channel's commitment feerate, at
//!   least the 144-block estimate, times the closing transaction's weight), `min_fee_satoshis`
//!   = the fee at the relay floor (253 sat/kw). LDK as fundee answers the highest fee in the
//!   overlap, i.e. our target: done in two messages.
//! - As fundee we never send first. We accept the funder's fee if it is at least our floor and
//!   inside its own range (echoing it), else counter with the lowest fee of the overlap.
//! - A signature is checked against every variant BOLT 3 allows (as built with our dust limit,
//!   without our output, without theirs); the matching one is signed back.
//! - No overlap: a warning, then the watchdog. A fee outside the sender's own range, or a
//!   fundee's different fee after we proposed: BOLT 2 "MUST fail the channel". A bad signature:
//!   warning and disconnect (the negotiation restarts on reconnection).
//!
//! Each closing transaction we sign is stored before its `closing_signed` leaves; the agreed
//! one before its broadcast.

use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::{Amount, Transaction};

use super::phase::Phase;
use super::shutdown::{Scripts, SignedClosing};
use super::{Action, BroadcastKind, Channel, Context, Role, MIN_FEERATE_PER_KW};
use crate::bolt3::{
    build_closing_tx, closing_tx_variants, ClosingTx, ClosingTxParams, FundingInput,
};
use crate::wire::{ClosingSigned, FeeRange, Message};

/// The witness of a closing transaction's funding input: the empty item, two signatures, the
/// 2-of-2 script (71 bytes), each with its length, plus the item count; and the segwit marker.
const CLOSING_WITNESS_WEIGHT: u64 = 1 + 1 + 73 + 73 + 72 + 2;

impl Channel {
    /// The closing transaction at `fee_sat` with both scripts, outputs below our dust limit
    /// removed.
    fn closing_params(&self, fee_sat: u64) -> Option<ClosingTxParams> {
        let s = self.shutdown()?;
        let Scripts::Both { ours, theirs } = &s.scripts else {
            return None;
        };
        let their_params = self.their_params()?;
        let local = self.local_commit()?;
        Some(ClosingTxParams {
            funding: FundingInput {
                outpoint: self.funding()?.outpoint,
                amount: Amount::from_sat(self.params.funding_sat),
                local_funding_pubkey: self.params.ours.keys.funding_pubkey,
                remote_funding_pubkey: their_params.keys.funding_pubkey,
            },
            to_local_msat: local.spec.our_msat,
            to_remote_msat: local.spec.their_msat,
            local_script: ours.clone(),
            remote_script: theirs.clone(),
            fee: Amount::from_sat(fee_sat),
            local_is_funder: self.params.role == Role::Funder,
            dust_limit: Amount::from_sat(self.params.ours.dust_limit_sat),
        })
    }

    /// The funder's balance in whole satoshis: the most a closing fee can be.
    fn funder_balance_sat(&self) -> u64 {
        self.local_commit().map_or(0, |l| match self.params.role {
            Role::Funder => l.spec.our_msat / 1000,
            Role::Fundee => l.spec.their_msat / 1000,
        })
    }

    /// The closing fee at `feerate_per_kw`, for the weight with both outputs present whatever
    /// their value (as LDK weighs it: a fee range computed on a smaller transaction may not
    /// overlap LDK's), capped at the funder's balance.
    fn closing_fee(&self, feerate_per_kw: u32) -> u64 {
        let Some(tx) = self
            .closing_params(0)
            .map(|p| ClosingTxParams {
                dust_limit: Amount::ZERO,
                ..p
            })
            .and_then(|p| build_closing_tx(&p).ok())
        else {
            return 0;
        };
        let weight = tx.tx.weight().to_wu() + CLOSING_WITNESS_WEIGHT;
        (weight * u64::from(feerate_per_kw) / 1000).min(self.funder_balance_sat())
    }

    /// The fees we accept: from the relay floor to our target (funder), or to the funder's
    /// whole balance (fundee: we do not pay).
    fn our_fee_range(&self, ctx: &Context<'_>) -> FeeRange {
        let min = self.closing_fee(MIN_FEERATE_PER_KW);
        let max = match self.params.role {
            Role::Funder => {
                let target = ctx
                    .fee_estimates
                    .map_or(self.commitment_feerate_per_kw(), |e| {
                        self.commitment_feerate_per_kw().max(e.in_144_blocks_per_kw)
                    });
                self.closing_fee(target.max(MIN_FEERATE_PER_KW))
            }
            Role::Fundee => self.funder_balance_sat(),
        };
        FeeRange {
            min_fee_satoshis: min,
            max_fee_satoshis: max.max(min),
        }
    }

    /// Funder, both `shutdown`s out and no update in flight: propose our target fee.
    pub(crate) fn propose_if_funder(&mut self, ctx: &Context<'_>) -> Vec<Action> {
        let ready = self.shutdown().is_some_and(|s| {
            matches!(s.scripts, Scripts::Both { .. })
                && s.link.shutdown_sent
                && s.link.proposed.is_none()
                && s.agreed.is_none()
        });
        if self.params.role != Role::Funder || !ready || self.update_pending() {
            return Vec::new();
        }
        let range = self.our_fee_range(ctx);
        self.propose(range.max_fee_satoshis, range, ctx)
    }

    /// Signs the closing transaction at `fee_sat`, stores it, sends `closing_signed`.
    fn propose(&mut self, fee_sat: u64, range: FeeRange, ctx: &Context<'_>) -> Vec<Action> {
        let Some(tx) = self
            .closing_params(fee_sat)
            .and_then(|p| build_closing_tx(&p).ok())
        else {
            tracing::error!(channel = %self.current_id(), fee_sat, "cannot build the closing transaction");
            return Vec::new();
        };
        let signature = match tx.sign(ctx.secp, &ctx.keys.funding_key) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(channel = %self.current_id(), error = %e, "cannot sign the closing transaction");
                return Vec::new();
            }
        };
        let channel_id = self.current_id();
        let Some(s) = self.shutdown_mut() else {
            return Vec::new();
        };
        let entry = SignedClosing {
            fee_sat,
            txid: tx.tx.compute_txid(),
        };
        if !s.signed.contains(&entry) {
            s.signed.push(entry);
        }
        s.link.proposed = Some((fee_sat, range));
        s.link.waiting_since = None;
        vec![
            self.commit(Vec::new()),
            Action::Send(Message::ClosingSigned(ClosingSigned {
                channel_id,
                fee_satoshis: fee_sat,
                signature,
                fee_range: Some(range),
            })),
        ]
    }

    /// The candidates BOLT 3 allows for the peer's signature at `fee_sat`: as built, built by
    /// the peer's own dust rule, without our output (only when it is at most the peer's dust
    /// limit: a peer may not make us sign away a balance it had no right to drop), without
    /// theirs (each signer removes outputs below its own dust limit, and may drop its own).
    pub(crate) fn closing_variants(&self, fee_sat: u64) -> Vec<ClosingTx> {
        let Some(params) = self.closing_params(fee_sat) else {
            return Vec::new();
        };
        let their_dust = self
            .their_params()
            .map_or(Amount::ZERO, |t| Amount::from_sat(t.dust_limit_sat));
        let Ok(mut out) = closing_tx_variants(&params, their_dust) else {
            return Vec::new();
        };
        // Built by the peer's own dust rule (BOLT 3: each signer removes outputs below its
        // own dust_limit_satoshis).
        let by_them = ClosingTxParams {
            dust_limit: their_dust,
            ..params
        };
        if let Ok(v) = build_closing_tx(&by_them) {
            if !v.tx.output.is_empty() && !out.contains(&v) {
                out.insert(1.min(out.len()), v);
            }
        }
        out
    }

    /// The peer's `closing_signed`.
    pub(crate) fn on_closing_signed(
        &mut self,
        msg: &ClosingSigned,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        let Phase::Funded(_) = &self.phase else {
            return Vec::new();
        };
        let Some(s) = self.shutdown() else {
            return self.warn("closing_signed before any shutdown".into(), false);
        };
        if s.agreed.is_some() {
            return Vec::new();
        }
        if !matches!(s.scripts, Scripts::Both { .. }) || self.update_pending() {
            return self.warn(
                "closing_signed before both shutdowns were exchanged with no update in flight"
                    .into(),
                false,
            );
        }
        let proposed = s.link.proposed;
        let fee = msg.fee_satoshis;
        if let Some(r) = msg.fee_range {
            if fee < r.min_fee_satoshis || fee > r.max_fee_satoshis {
                return self.fail_and_close(
                    format!(
                        "closing_signed fee {fee} sat outside its own fee_range [{}, {}]",
                        r.min_fee_satoshis, r.max_fee_satoshis
                    ),
                    true,
                    ctx,
                );
            }
        }
        if fee > self.funder_balance_sat() {
            return self.warn(
                format!("closing_signed fee {fee} sat exceeds the funder's balance"),
                true,
            );
        }
        let matched = self.closing_variants(fee).into_iter().find(|v| {
            self.their_params().is_some_and(|t| {
                v.verify(ctx.secp, &msg.signature, &t.keys.funding_pubkey)
                    .is_ok()
            })
        });
        let Some(tx) = matched else {
            return self.warn(
                format!(
                    "closing_signed signature invalid for every closing variant at fee {fee} sat"
                ),
                true,
            );
        };
        if let Some(o) = tx
            .tx
            .output
            .iter()
            .find(|o| o.value < o.script_pubkey.minimal_non_dust())
        {
            return self.fail_and_close(
                format!(
                    "closing transaction output of {} sat is below the dust limit of its script",
                    o.value.to_sat()
                ),
                true,
                ctx,
            );
        }
        if let Some(s) = self.shutdown_mut() {
            s.link.received = Some(fee);
        }
        let ours = match proposed {
            Some((_, range)) => range,
            None => self.our_fee_range(ctx),
        };
        if proposed.is_some_and(|(sent, _)| sent == fee) {
            return self.agree(fee, tx, &msg.signature, None, ctx);
        }
        if self
            .shutdown()
            .is_some_and(|s| s.signed.iter().any(|c| c.fee_sat == fee))
        {
            // A fee we signed on an earlier connection (the peer agreed to it then): agree.
            let range = FeeRange {
                min_fee_satoshis: fee,
                max_fee_satoshis: fee,
            };
            return self.agree(fee, tx, &msg.signature, Some(range), ctx);
        }
        let funder = self.params.role == Role::Funder;
        if !funder && proposed.is_some() {
            return self.fail_and_close(
                format!(
                    "the funder's closing_signed fee {fee} sat differs from the {} sat we accepted",
                    proposed.map_or(0, |(f, _)| f)
                ),
                true,
                ctx,
            );
        }
        let Some(theirs) = msg.fee_range else {
            // No fee_range (old style): take a fee in our range, else move toward it.
            if (ours.min_fee_satoshis..=ours.max_fee_satoshis).contains(&fee) {
                return self.agree(fee, tx, &msg.signature, Some(ours), ctx);
            }
            let counter = fee.clamp(ours.min_fee_satoshis, ours.max_fee_satoshis);
            return self.propose(counter, ours, ctx);
        };
        let low = ours.min_fee_satoshis.max(theirs.min_fee_satoshis);
        let high = ours.max_fee_satoshis.min(theirs.max_fee_satoshis);
        if low > high {
            return self.warn(
                format!(
                    "no overlap between our fee_range [{}, {}] and yours [{}, {}]",
                    ours.min_fee_satoshis,
                    ours.max_fee_satoshis,
                    theirs.min_fee_satoshis,
                    theirs.max_fee_satoshis
                ),
                false,
            );
        }
        if (low..=high).contains(&fee) {
            return self.agree(fee, tx, &msg.signature, Some(ours), ctx);
        }
        if funder {
            return self.fail_and_close(
                format!("closing_signed fee {fee} sat outside the overlap [{low}, {high}] of both fee_ranges"),
                true,
                ctx,
            );
        }
        // Fundee, the funder's fee below our floor: the lowest fee both accept.
        self.propose(low, ours, ctx)
    }

    /// Both signatures on one fee: store the signed transaction, broadcast it, then echo our
    /// signature if the peer has not got it yet (`echo` is the range to send with it).
    fn agree(
        &mut self,
        fee_sat: u64,
        tx: ClosingTx,
        their_sig: &Signature,
        echo: Option<FeeRange>,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        let our_sig = match tx.sign(ctx.secp, &ctx.keys.funding_key) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(channel = %self.current_id(), error = %e, "cannot sign the closing transaction");
                return Vec::new();
            }
        };
        let signed: Transaction = tx.finalize(&our_sig, their_sig);
        let channel_id = self.current_id();
        let Some(s) = self.shutdown_mut() else {
            return Vec::new();
        };
        let entry = SignedClosing {
            fee_sat,
            txid: signed.compute_txid(),
        };
        if !s.signed.contains(&entry) {
            s.signed.push(entry);
        }
        s.agreed = Some(signed.clone());
        tracing::info!(channel = %channel_id, fee_sat, txid = %entry.txid, "cooperative close agreed");
        let mut actions = vec![
            self.commit(Vec::new()),
            Action::Broadcast {
                tx: signed,
                kind: BroadcastKind::MutualClose,
            },
        ];
        if let Some(range) = echo {
            actions.push(Action::Send(Message::ClosingSigned(ClosingSigned {
                channel_id,
                fee_satoshis: fee_sat,
                signature: our_sig,
                fee_range: Some(range),
            })));
        }
        actions
    }

    /// Whether we wait for the peer on this connection: our `shutdown` out and theirs not
    /// in, or our `closing_signed` unanswered.
    pub(crate) fn close_waits_for_peer(&self) -> bool {
        self.shutdown().is_some_and(|s| {
            s.agreed.is_none()
                && ((s.link.shutdown_sent && matches!(s.scripts, Scripts::Ours(_)))
                    || s.link.proposed.is_some())
        })
    }

    /// Our `shutdown` or our proposal unanswered for `timeout_secs` of ticks: reconnect (the
    /// reestablish exchange retransmits `shutdown`, and BOLT 2 restarts the negotiation).
    pub(crate) fn on_close_tick(&mut self, now: u64, timeout_secs: u64) -> Vec<Action> {
        let counterparty_node_id = self.params.counterparty_node_id;
        let waits = self.close_waits_for_peer();
        let Some(s) = self.shutdown_mut() else {
            return Vec::new();
        };
        if !waits {
            s.link.waiting_since = None;
            return Vec::new();
        }
        let since = *s.link.waiting_since.get_or_insert(now);
        if now.saturating_sub(since) < timeout_secs {
            return Vec::new();
        }
        s.link.waiting_since = None;
        vec![Action::ReconnectPeer {
            counterparty_node_id,
            reason: format!("no answer to our shutdown or closing_signed within {timeout_secs} s"),
        }]
    }

    /// Agreed before this connection: our `shutdown` and our signature of the agreed close
    /// again, so that a peer that missed our last `closing_signed` can finish too.
    pub(crate) fn agreed_retransmission(&self, ctx: &Context<'_>) -> Vec<Action> {
        let Some(s) = self.shutdown() else {
            return Vec::new();
        };
        let (Some(agreed), Some(ours)) = (&s.agreed, s.ours()) else {
            return Vec::new();
        };
        let txid = agreed.compute_txid();
        let Some(fee_sat) = s.signed.iter().find(|c| c.txid == txid).map(|c| c.fee_sat) else {
            return Vec::new();
        };
        let Some(tx) = self
            .closing_variants(fee_sat)
            .into_iter()
            .find(|v| v.tx.compute_txid() == txid)
        else {
            return Vec::new();
        };
        let Ok(signature) = tx.sign(ctx.secp, &ctx.keys.funding_key) else {
            return Vec::new();
        };
        let channel_id = self.current_id();
        vec![
            Action::Send(Message::Shutdown(crate::wire::Shutdown {
                channel_id,
                scriptpubkey: ours.to_bytes(),
            })),
            Action::Send(Message::ClosingSigned(ClosingSigned {
                channel_id,
                fee_satoshis: fee_sat,
                signature,
                fee_range: Some(FeeRange {
                    min_fee_satoshis: fee_sat,
                    max_fee_satoshis: fee_sat,
                }),
            })),
        ]
    }

    /// The closing transactions we signed (their txids): a funding spend by one of them is
    /// our cooperative close — also once a force close overtook the negotiation.
    pub fn signed_closing_txids(&self) -> Vec<bitcoin::Txid> {
        self.coop()
            .map(|s| s.signed.iter().map(|c| c.txid).collect())
            .unwrap_or_default()
    }

    /// The agreed cooperative close, once both signatures are on one fee.
    pub fn agreed_closing_tx(&self) -> Option<&Transaction> {
        self.shutdown().and_then(|s| s.agreed.as_ref())
    }
}
