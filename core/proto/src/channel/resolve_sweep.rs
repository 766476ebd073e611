//! The outputs of a closing channel's spend that are ours, and their sweeps (BOLT 5, built
//! with [`SweepTx`]): which outputs to track for each [`CloseKind`], when each sweep is valid,
//! at what feerate, and the build, bump and sign steps. State changes are the caller's to
//! persist (`resolve.rs` commits before any broadcast returned here).

use bitcoin::secp256k1::SecretKey;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction};

use super::commitment::public_keys;
use super::phase::Commits;
use super::resolve::{Claim, OutputState, Tracked};
use super::{
    Action, BroadcastKind, Channel, CloseKind, Context, SpendKind, WatchRequest, MIN_FEERATE_PER_KW,
};
use crate::bolt3::{
    to_local_witness_script, to_remote_script, Bolt3Error, CommitmentKeys, SweepTx,
};
use crate::keys::INITIAL_COMMITMENT_NUMBER;

impl Channel {
    /// The outputs of the held spend that are ours, for `kind`.
    /// `coop_script`: our script of a cooperative close (the negotiation's), if known.
    pub(super) fn find_outputs(
        &self,
        kind: CloseKind,
        coop_script: Option<ScriptBuf>,
        ctx: &Context<'_>,
    ) -> Vec<Tracked> {
        let Some(spend) = self.closing_tx() else {
            return Vec::new();
        };
        let txid = spend.compute_txid();
        let paying = |script: &ScriptBuf, claim: Claim| -> Vec<Tracked> {
            spend
                .output
                .iter()
                .enumerate()
                .filter(|(_, o)| o.script_pubkey == *script)
                .filter_map(|(i, o)| {
                    let vout = u32::try_from(i).ok()?;
                    Some(Tracked::new(
                        OutPoint { txid, vout },
                        o.value.to_sat(),
                        claim,
                    ))
                })
                .collect()
        };
        let to_remote = self.our_to_remote_script();
        match kind {
            CloseKind::LocalForce => {
                let number = self.commitment_number();
                match self.our_to_local(number, ctx) {
                    Some((script, _)) => paying(
                        &ScriptBuf::new_p2wsh(&script.wscript_hash()),
                        Claim::ToLocal { number },
                    ),
                    None => Vec::new(),
                }
            }
            CloseKind::Revoked => {
                let mut out = Vec::new();
                if let SpendKind::TheirRevokedCommitment { number } =
                    self.classify_spend(spend, ctx)
                {
                    if let Some((script, _)) = self.their_revoked_to_local(number, ctx) {
                        out = paying(
                            &ScriptBuf::new_p2wsh(&script.wscript_hash()),
                            Claim::Penalty { number },
                        );
                    }
                }
                out.extend(paying(&to_remote, Claim::ToRemote));
                out
            }
            // Their commitment (known, from our future, or unplaced): our to_remote is found
            // by its script, which does not depend on the commitment number.
            CloseKind::RemoteForce | CloseKind::RemoteFuture | CloseKind::Unknown => {
                paying(&to_remote, Claim::ToRemote)
            }
            // Our output of the closing tx: the script our shutdown named (else the context's
            // destination, the driver's wallet address).
            CloseKind::Cooperative { .. } => match coop_script.or_else(|| ctx.destination.cloned())
            {
                Some(script) => paying(&script, Claim::Wallet),
                None => Vec::new(),
            },
        }
    }

    /// Our `to_remote` script on the peer's commitments (it pays our payment basepoint).
    fn our_to_remote_script(&self) -> ScriptBuf {
        to_remote_script(
            &self.our_params().keys.payment_basepoint,
            self.channel_type(),
        )
        .0
    }

    /// The witness script and keys of our `to_local` on our commitment `number`.
    fn our_to_local(&self, number: u64, ctx: &Context<'_>) -> Option<(ScriptBuf, CommitmentKeys)> {
        let theirs = self.their_params()?;
        let point = ctx.point(number).ok()?;
        let keys = CommitmentKeys::derive(
            ctx.secp,
            &point,
            &public_keys(&self.our_params().keys),
            &public_keys(&theirs.keys),
        )
        .ok()?;
        let script = to_local_witness_script(
            &keys.revocation_pubkey,
            theirs.to_self_delay,
            &keys.local_delayed_pubkey,
        );
        Some((script, keys))
    }

    /// The secret the peer revealed for its commitment `number`.
    fn their_secret(&self, number: u64) -> Option<[u8; 32]> {
        match &self.phase.established()?.commits {
            Commits::Updated(c) => c
                .their_secrets
                .get_secret(INITIAL_COMMITMENT_NUMBER - number),
            Commits::Initial => None,
        }
    }

    /// The witness script and keys of the peer's `to_local` on its revoked commitment
    /// `number`.
    fn their_revoked_to_local(
        &self,
        number: u64,
        ctx: &Context<'_>,
    ) -> Option<(ScriptBuf, CommitmentKeys)> {
        let secret = self.their_secret(number)?;
        self.their_to_local(&secret, ctx)
    }

    /// The first block height at which the sweep of `claim` is valid; `None` while it
    /// depends on a confirmation not seen yet (0: at once).
    pub(super) fn spendable_from(&self, claim: Claim, confirmed_at: Option<u32>) -> Option<u32> {
        match claim {
            Claim::ToLocal { .. } => {
                let csv = u32::from(self.their_params()?.to_self_delay);
                confirmed_at.map(|h| h.saturating_add(csv))
            }
            Claim::ToRemote if self.channel_type().anchors => {
                confirmed_at.map(|h| h.saturating_add(1))
            }
            Claim::ToRemote | Claim::Penalty { .. } => Some(0),
            Claim::Wallet => None,
        }
    }

    /// The feerate a sweep of `claim` should pay now: the 144-block estimate, the commitment
    /// (~2-block) estimate for a penalty (the peer could take its `to_local` once its delay
    /// ends); without estimates the channel's commitment feerate.
    fn sweep_feerate(&self, claim: Claim, ctx: &Context<'_>) -> u32 {
        let rate = match (ctx.fee_estimates, claim) {
            (Some(e), Claim::Penalty { .. }) => e.commitment_per_kw,
            (Some(e), _) => e.in_144_blocks_per_kw,
            (None, _) => self.commitment_feerate_per_kw(),
        };
        rate.max(MIN_FEERATE_PER_KW)
    }

    /// Builds and signs the sweep of `o` at `feerate_per_kw` to `destination`.
    fn sign_sweep(
        &self,
        o: &Tracked,
        destination: ScriptBuf,
        feerate_per_kw: u32,
        ctx: &Context<'_>,
    ) -> Result<Transaction, Bolt3Error> {
        let (sweep, key) = self.unsigned_sweep(o, destination, feerate_per_kw, ctx)?;
        sweep.sign(ctx.secp, &key)
    }

    /// The unsigned sweep of `o` at `feerate_per_kw` to `destination`, and the key that signs
    /// it.
    fn unsigned_sweep(
        &self,
        o: &Tracked,
        destination: ScriptBuf,
        feerate_per_kw: u32,
        ctx: &Context<'_>,
    ) -> Result<(SweepTx, SecretKey), Bolt3Error> {
        const MISSING: Bolt3Error = Bolt3Error::Amount {
            reason: "the keys of a tracked output cannot be derived",
        };
        let amount = Amount::from_sat(o.amount_sat);
        let (sweep, key) = match o.claim {
            Claim::ToLocal { number } => {
                let (_, keys) = self.our_to_local(number, ctx).ok_or(MISSING)?;
                let theirs = self.their_params().ok_or(MISSING)?;
                let sweep = SweepTx::to_local(
                    o.outpoint,
                    amount,
                    &keys.revocation_pubkey,
                    theirs.to_self_delay,
                    &keys.local_delayed_pubkey,
                    destination,
                    feerate_per_kw,
                )?;
                let key = ctx
                    .keys
                    .delayed_payment_key(ctx.secp, &keys.per_commitment_point)?;
                (sweep, key)
            }
            Claim::ToRemote => {
                let sweep = SweepTx::to_remote(
                    o.outpoint,
                    amount,
                    &self.our_params().keys.payment_basepoint,
                    self.channel_type(),
                    destination,
                    feerate_per_kw,
                )?;
                (sweep, ctx.keys.payment_base_secret)
            }
            Claim::Penalty { number } => {
                let (_, keys) = self.their_revoked_to_local(number, ctx).ok_or(MISSING)?;
                let secret = self.their_secret(number).ok_or(MISSING)?;
                let secret = SecretKey::from_slice(&secret).map_err(|_| MISSING)?;
                let sweep = SweepTx::revoked_to_local(
                    o.outpoint,
                    amount,
                    &keys.revocation_pubkey,
                    self.our_params().to_self_delay,
                    &keys.local_delayed_pubkey,
                    destination,
                    feerate_per_kw,
                )?;
                (sweep, ctx.keys.revocation_key(ctx.secp, &secret)?)
            }
            Claim::Wallet => return Err(MISSING),
        };
        Ok((sweep, key))
    }

    /// The BIP125 replacement of `broadcast` (our unconfirmed sweep of `o`) at
    /// `feerate_per_kw` or more, signed, with the feerate it pays: [`SweepTx::replacement`]
    /// (at least the old fee plus the incremental relay fee of its size, so that the mempool
    /// takes it and evicts the old one). Same input, nSequence and destination.
    fn replace_sweep(
        &self,
        o: &Tracked,
        broadcast: &Transaction,
        feerate_per_kw: u32,
        ctx: &Context<'_>,
    ) -> Result<(Transaction, u32), Bolt3Error> {
        const MALFORMED: Bolt3Error = Bolt3Error::Amount {
            reason: "a stored sweep has no output",
        };
        let paid = broadcast.output.first().ok_or(MALFORMED)?;
        let (mut old, key) =
            self.unsigned_sweep(o, paid.script_pubkey.clone(), MIN_FEERATE_PER_KW, ctx)?;
        // The sweep as broadcast: its fee is the one the replacement must beat.
        if let Some(out) = old.tx.output.first_mut() {
            out.value = paid.value;
        }
        let new = old.replacement(feerate_per_kw)?;
        // What it pays (at least `feerate_per_kw`: its fee is at least `fee_for` that rate).
        let paid_per_kw = new
            .fee()
            .to_sat()
            .saturating_mul(1000)
            .checked_div(new.weight())
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(feerate_per_kw)
            .max(feerate_per_kw);
        Ok((new.sign(ctx.secp, &key)?, paid_per_kw))
    }

    /// Builds the sweeps due at tip `tip` (state `Broadcast`, or `Uneconomical` for an output
    /// that cannot pay its fee) and returns their broadcasts and watches, to perform after
    /// the caller persists the new states.
    pub(super) fn build_due_sweeps(&mut self, tip: u32, ctx: &Context<'_>) -> Vec<Action> {
        let Some(c) = self.closing() else {
            return Vec::new();
        };
        let Some(destination) = ctx.destination else {
            return Vec::new();
        };
        let confirmed_at = c.resolution.confirmed_at;
        let mut updates = Vec::new();
        for (i, o) in c.resolution.outputs.iter().enumerate() {
            if o.state != OutputState::Waiting {
                continue;
            }
            let due = self
                .spendable_from(o.claim, confirmed_at)
                .is_some_and(|h| h <= tip.saturating_add(1));
            if !due {
                continue;
            }
            let feerate_per_kw = self.sweep_feerate(o.claim, ctx);
            match self.sign_sweep(o, destination.clone(), feerate_per_kw, ctx) {
                Ok(tx) => updates.push((
                    i,
                    OutputState::Broadcast {
                        tx,
                        feerate_per_kw,
                        height: tip,
                    },
                )),
                Err(e @ Bolt3Error::Uneconomical { .. }) => {
                    tracing::info!(channel = %self.current_id(), outpoint = %o.outpoint, amount_sat = o.amount_sat, error = %e, "output not worth sweeping: recorded, never swept");
                    updates.push((i, OutputState::Uneconomical));
                }
                Err(e) => {
                    tracing::error!(channel = %self.current_id(), outpoint = %o.outpoint, error = %e, "cannot build a sweep")
                }
            }
        }
        self.apply_sweeps(updates)
    }

    /// Rebroadcasts every unconfirmed sweep; one whose feerate is below the estimate now is
    /// replaced (never lower), by BIP125's rules 3 and 4 as [`SweepTx::replacement`] applies
    /// them: the estimate's fee, and at least the old fee plus 1 sat/vB of the replacement's
    /// size — the caller persists it first.
    pub(super) fn bump_sweeps(&mut self, tip: u32, ctx: &Context<'_>) -> Vec<Action> {
        let Some(c) = self.closing() else {
            return Vec::new();
        };
        let mut updates = Vec::new();
        let mut actions = Vec::new();
        for (i, o) in c.resolution.outputs.iter().enumerate() {
            let OutputState::Broadcast {
                tx, feerate_per_kw, ..
            } = &o.state
            else {
                continue;
            };
            let wanted = self.sweep_feerate(o.claim, ctx);
            let bumped = (wanted > *feerate_per_kw)
                .then(|| self.replace_sweep(o, tx, wanted, ctx).ok())
                .flatten();
            match bumped {
                Some((tx, rate)) => {
                    tracing::info!(channel = %self.current_id(), outpoint = %o.outpoint, from = feerate_per_kw, to = rate, "bumping a sweep");
                    updates.push((
                        i,
                        OutputState::Broadcast {
                            tx,
                            feerate_per_kw: rate,
                            height: tip,
                        },
                    ));
                }
                None => actions.push(Action::Broadcast {
                    tx: tx.clone(),
                    kind: BroadcastKind::Sweep,
                }),
            }
        }
        actions.extend(self.apply_sweeps(updates));
        actions
    }

    /// Sets the new output states; returns the broadcast and watch of each new sweep.
    fn apply_sweeps(&mut self, updates: Vec<(usize, OutputState)>) -> Vec<Action> {
        let channel_id = self.channel_id();
        let Some(c) = self.closing_mut() else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        for (i, state) in updates {
            let Some(o) = c.resolution.outputs.get_mut(i) else {
                continue;
            };
            if let OutputState::Broadcast { tx, .. } = &state {
                actions.push(Action::Broadcast {
                    tx: tx.clone(),
                    kind: BroadcastKind::Sweep,
                });
                let script = usize::try_from(o.outpoint.vout)
                    .ok()
                    .and_then(|v| c.resolution.spend.output.get(v))
                    .map(|out| out.script_pubkey.clone());
                if let (Some(channel_id), Some(script_pubkey)) = (channel_id, script) {
                    actions.push(Action::Watch(WatchRequest::Output {
                        channel_id,
                        outpoint: o.outpoint,
                        script_pubkey,
                    }));
                }
            }
            o.state = state;
        }
        actions
    }

    /// Whether a sweep with this txid is held (as broadcast) by this closing channel: what
    /// the durability checker asks before a sweep's broadcast.
    pub(crate) fn holds_sweep(&self, txid: &bitcoin::Txid) -> bool {
        self.closing().is_some_and(|c| {
            c.resolution.outputs.iter().any(|o| {
                matches!(&o.state, OutputState::Broadcast { tx, .. } if tx.compute_txid() == *txid)
            })
        })
    }
}
