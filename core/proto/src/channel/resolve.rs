//! What happens on chain once a channel's funding is spent, or once we decide to spend it
//! (BOLT 5, no HTLCs yet): the [`Phase::Closing`] and [`Phase::Closed`] phases.
//!
//! # The model
//!
//! A closing channel keeps its [`Established`] part (keys, commitments, the peer's
//! secrets) and a [`Resolution`]: how it closes ([`CloseKind`]), the transaction that spends
//! (or will spend) the funding — our signed commitment, the agreed closing tx, or whatever
//! spent it on chain — with its confirmation height, and the outputs of that transaction that
//! are ours ([`Tracked`]), each with an [`OutputState`]: waiting for its timelock (the height
//! is derived: the spend's height + the CSV), a sweep broadcast `{tx, feerate, height}`,
//! confirmed at `h`, uneconomical (recorded, never swept), or nothing to do (paid straight to
//! our wallet). Everything is in the record (fields 70–76, `resolve_record.rs`), so a restart
//! rebuilds the same next actions with [`Channel::resume_actions`].
//!
//! # Entering
//!
//! - [`Channel::start_closing`]: the one entry point of the cooperative close (the agreed
//!   closing tx, [`CloseKind::Cooperative`]) and of every force path ([`Input::ForceClose`],
//!   a protocol failure, the peer's `error`, a timeout: `fail_and_close`, our latest signed
//!   commitment, [`CloseKind::LocalForce`]). It returns, in order: `Commit` (the record and
//!   `ChannelClosing`), the broadcasts (funding if a funder's is unconfirmed, then the
//!   commitment or the closing tx; nothing when the spend is the peer's), the sweeps already
//!   possible, then the watches (funding, and each tracked output). A force close sends its
//!   `error` only after all of that.
//! - [`Input::FundingSpent`] on any durable channel: classified (`classify.rs`) and persisted
//!   before anything acts: ours → LocalForce, their current or next commitment →
//!   RemoteForce, a higher number → RemoteFuture (we lost data; only `to_remote` is ours), a
//!   revoked one → Revoked (penalty), a closing tx we signed ([`Channel::signed_closing_txids`])
//!   → Cooperative, else Unknown (warned). A different spend than the one a closing channel
//!   holds (their commitment winning the race against ours, a replacement after a reorg)
//!   re-resolves the channel and emits `ChannelClosing` again with the new kind.
//!
//! Our commitment is never broadcast once a spend was seen, nor by a channel that fell behind
//! (it stays [`Phase::Failed`], "waiting for their commitment", and that commitment, when it
//! shows up, is RemoteFuture). A closing channel ignores the peer's `error` and LDK's
//! placeholder `channel_reestablish` (no broadcast ever comes of them) and answers a
//! reestablish with our `error` unless the close is cooperative.
//!
//! # On every block
//!
//! Our commitment (LocalForce) or the closing tx (Cooperative) is rebroadcast until it
//! confirms; a funder's unconfirmed funding too. Each tracked output whose sweep is due is
//! swept to the context's destination ([`super::Context::with_destination`]; without one it
//! waits, and the status says so) at the 144-block estimate (penalties: the commitment
//! estimate; [`super::Context::with_fee_estimates`]): the sweep is persisted
//! (`Broadcast{tx, feerate, height}`) before its broadcast, then its outpoint is watched.
//! `to_local` is due at tip ≥ h + csv − 1 (h: the commitment's block; the sweep is then valid
//! in the next block), an anchors `to_remote` at tip ≥ h (1 CSV), a static_remotekey
//! `to_remote` and a penalty at once. An unconfirmed sweep is rebroadcast every block and
//! replaced (RBF, persisted first) when the estimate rises above its feerate — only upward.
//! [`Input::OutputSpent`] / [`Input::OutputUnspent`] move an output to confirmed / back to
//! waiting (the next block rebuilds and rebroadcasts its sweep).
//!
//! # Closed, and reorgs
//!
//! When the spend and every tracked output's resolution are 6 deep, one `Commit` moves the
//! channel to [`Phase::Closed`] with `ChannelClosed{claimed_sat, closing_txid}` — exactly
//! once: a restart re-arms the watches ([`Channel::resume_actions`]) and emits nothing. The
//! node keeps its watches until [`Channel::irrevocably_resolved_at`] (100 deep, BOLT 5) and
//! may drop them then.
//!
//! A reorg that unconfirms anything of a **closed** channel (its spend:
//! [`Input::FundingUnspent`] or [`Input::FundingSpent`] at another height or by another
//! transaction; a sweep: [`Input::OutputUnspent`] or [`Input::OutputSpent`] at another height)
//! brings it back to [`Phase::Closing`] in one `Commit` that carries `ChannelClosing` again
//! (same kind, or the new one; the reason names the reorg). It becomes `Closed` again, with a
//! second `ChannelClosed`, once everything is 6 deep again. That is the only way either event
//! repeats.

use bitcoin::{OutPoint, Transaction, Txid};

use super::phase::{Established, Failed, Funded, LockIn, Phase};
#[cfg(doc)]
use super::Input;
use super::{
    Action, Channel, ChannelEvent, ClaimStatus, Claimable, CloseKind, ClosingStatus, Commit,
    Context, Initiator, OpenProgress, Role, SpendKind,
};

/// Confirmations at which a close (and each of its outputs) counts as resolved.
pub const CLOSED_DEPTH: u32 = 6;
/// Confirmations at which BOLT 5 calls an output irrevocably resolved: watches may stop.
pub const IRREVOCABLE_DEPTH: u32 = 100;

/// A closing (or closed) channel: what it was, why it closes and how far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Closing {
    pub(super) channel: Established,
    /// Why (the user's request, the peer's error, the spend that closed it...).
    pub(super) reason: String,
    pub(super) resolution: Resolution,
    /// The cooperative close negotiated before it came to this, if one was (record field 62
    /// kept): a spend by a closing transaction we signed is still ours to recognise, after a
    /// force close overtook the negotiation.
    pub(super) coop: Option<Box<super::shutdown::Shutdown>>,
}

/// How the funding is (being) spent and what of it is ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolution {
    pub(super) kind: CloseKind,
    /// The transaction that spends, or will spend, the funding output (fully signed).
    pub(super) spend: Transaction,
    /// The height of the block holding it, once mined.
    pub(super) confirmed_at: Option<u32>,
    /// The outputs of `spend` that are ours.
    pub(super) outputs: Vec<Tracked>,
    /// The CPFP child of our unconfirmed commitment, if one was built (`resolve_cpfp.rs`).
    pub(super) cpfp: Option<super::resolve_cpfp::AnchorCpfp>,
}

/// One output of the spend that is ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tracked {
    pub(super) outpoint: OutPoint,
    pub(super) amount_sat: u64,
    pub(super) claim: Claim,
    pub(super) state: OutputState,
}

/// What an output is and how we take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Our `to_local` on our commitment `number`: after the peer's `to_self_delay`, with our
    /// delayed payment key.
    ToLocal { number: u64 },
    /// Our `to_remote` on the peer's commitment (P2WPKH to our payment basepoint, or the
    /// anchors P2WSH with 1 CSV).
    ToRemote,
    /// The peer's `to_local` on its revoked commitment `number`: at once, with the revocation
    /// key (penalty).
    Penalty { number: u64 },
    /// Paid straight to our wallet (a cooperative close's output): nothing to sweep.
    Wallet,
}

/// Where a tracked output stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OutputState {
    /// Its sweep is not built yet (timelock, no destination, or the spend unconfirmed).
    Waiting,
    /// Our sweep, persisted then broadcast at `height` (the tip then, at least), unconfirmed.
    Broadcast {
        tx: Transaction,
        feerate_per_kw: u32,
        height: u32,
    },
    /// Spent by `txid`, mined at `height`; `claimed_sat` of it came to us.
    Confirmed {
        txid: Txid,
        height: u32,
        claimed_sat: u64,
    },
    /// Worth less than the fee to sweep it: recorded, never swept.
    Uneconomical,
    /// Nothing to do: paid to our wallet by the spend itself.
    Nothing,
}

impl Tracked {
    pub(super) fn new(outpoint: OutPoint, amount_sat: u64, claim: Claim) -> Self {
        let state = match claim {
            Claim::Wallet => OutputState::Nothing,
            _ => OutputState::Waiting,
        };
        Tracked {
            outpoint,
            amount_sat,
            claim,
            state,
        }
    }
}

/// Depth of something mined at `height` at tip `tip`.
fn depth(height: u32, tip: u32) -> u32 {
    tip.checked_sub(height).map_or(0, |d| d.saturating_add(1))
}

impl Resolution {
    /// The first tip height at which everything is `n` deep, if everything is mined.
    pub(super) fn deep_at(&self, n: u32) -> Option<u32> {
        let spend = self.confirmed_at?;
        let mut last = spend;
        for o in &self.outputs {
            match &o.state {
                OutputState::Confirmed { height, .. } => last = last.max(*height),
                OutputState::Uneconomical | OutputState::Nothing => {}
                OutputState::Waiting | OutputState::Broadcast { .. } => return None,
            }
        }
        Some(last.saturating_add(n - 1))
    }

    /// What came back to our wallet: the confirmed sweeps and the outputs paid to it.
    pub(super) fn claimed_sat(&self) -> u64 {
        self.outputs
            .iter()
            .map(|o| match &o.state {
                OutputState::Confirmed { claimed_sat, .. } => *claimed_sat,
                OutputState::Nothing => o.amount_sat,
                _ => 0,
            })
            .sum()
    }

    pub(super) fn is_confirmed(&self, tip: u32) -> bool {
        self.confirmed_at.is_some_and(|h| depth(h, tip) >= 1)
    }
}

impl Channel {
    /// The closing (or closed) phase.
    pub(super) fn closing(&self) -> Option<&Closing> {
        match &self.phase {
            Phase::Closing(c) | Phase::Closed(c) => Some(c),
            _ => None,
        }
    }

    /// The cooperative close: under way (Funded), or negotiated before the channel came to
    /// close otherwise (Closing, Closed).
    pub(crate) fn coop(&self) -> Option<&super::shutdown::Shutdown> {
        match &self.phase {
            Phase::Closing(c) | Phase::Closed(c) => c.coop.as_deref(),
            _ => self.shutdown(),
        }
    }

    pub(super) fn closing_mut(&mut self) -> Option<&mut Closing> {
        match &mut self.phase {
            Phase::Closing(c) | Phase::Closed(c) => Some(c),
            _ => None,
        }
    }

    /// How the channel is closing, once it is (or is closed).
    pub fn close_kind(&self) -> Option<CloseKind> {
        self.closing().map(|c| c.resolution.kind)
    }

    /// The transaction that spends (or will spend) the funding of a closing channel.
    pub fn closing_tx(&self) -> Option<&Transaction> {
        self.closing().map(|c| &c.resolution.spend)
    }

    /// The tip height from which the node may stop watching a closed channel: everything is
    /// [`IRREVOCABLE_DEPTH`] deep (BOLT 5 "irrevocably resolved"). `None` while closing (keep
    /// watching) and for channels that are not closed.
    pub fn irrevocably_resolved_at(&self) -> Option<u32> {
        match &self.phase {
            Phase::Closed(c) => c.resolution.deep_at(IRREVOCABLE_DEPTH),
            _ => None,
        }
    }

    /// The on-chain part of [`Channel::closing_status`]: [`ClosingStatus::OnChain`] while
    /// closing, [`ClosingStatus::Closed`] once closed.
    pub(super) fn onchain_status(&self) -> Option<ClosingStatus> {
        match &self.phase {
            Phase::Closing(c) => Some(ClosingStatus::OnChain {
                kind: c.resolution.kind,
                confirmed_at: c.resolution.confirmed_at,
                done_at: c.resolution.deep_at(CLOSED_DEPTH),
            }),
            Phase::Closed(c) => Some(ClosingStatus::Closed {
                kind: c.resolution.kind,
            }),
            _ => None,
        }
    }

    /// What the close still gives back to us, and when (like ldk-node's lightning balances).
    /// Outputs swept and 6 deep (or uneconomical ones of a closed channel) are done and not
    /// listed; uneconomical ones of a closing channel are, so that the user sees why.
    pub fn claimable(&self, tip: u32) -> Vec<Claimable> {
        let Some(c) = self.closing() else {
            return Vec::new();
        };
        let r = &c.resolution;
        let closed = matches!(self.phase, Phase::Closed(_));
        let mut out = Vec::new();
        for o in &r.outputs {
            let status = match &o.state {
                OutputState::Nothing => {
                    if r.confirmed_at
                        .is_some_and(|h| depth(h, tip) >= CLOSED_DEPTH)
                    {
                        continue;
                    }
                    ClaimStatus::AwaitingConfirmations {
                        confirmed_at: r.confirmed_at,
                    }
                }
                OutputState::Waiting => match self.spendable_from(o.claim, r.confirmed_at) {
                    Some(height) if height > tip.saturating_add(1) => {
                        ClaimStatus::Timelocked { height }
                    }
                    // Due (or unknown until the spend confirms): the sweep comes with the
                    // next block (or the destination).
                    Some(height) => ClaimStatus::Timelocked { height },
                    None => ClaimStatus::AwaitingConfirmations { confirmed_at: None },
                },
                OutputState::Broadcast { .. } => ClaimStatus::Sweeping { confirmed_at: None },
                OutputState::Confirmed { height, .. } => {
                    if depth(*height, tip) >= CLOSED_DEPTH {
                        continue;
                    }
                    ClaimStatus::Sweeping {
                        confirmed_at: Some(*height),
                    }
                }
                OutputState::Uneconomical if closed => continue,
                OutputState::Uneconomical => ClaimStatus::Uneconomical,
            };
            out.push(Claimable {
                amount_sat: o.amount_sat,
                status,
            });
        }
        out
    }

    /// Why a sweep of this closing channel cannot be built yet, if that is the case (no
    /// destination script was given): for the node's status line.
    pub fn sweep_blocked(&self, ctx: &Context<'_>) -> Option<&'static str> {
        let c = self.closing()?;
        let waiting = c
            .resolution
            .outputs
            .iter()
            .any(|o| o.state == OutputState::Waiting);
        (waiting && ctx.destination.is_none()).then_some("waiting for a wallet address to sweep to")
    }

    /// The one entry point of every close: moves a durable channel (or a closing one, when
    /// the funding turns out spent by another transaction) to [`Phase::Closing`] with `kind`
    /// and `spend` (mined at `confirmation_height`, if it is). Returns `Commit` (record and
    /// `ChannelClosing`), then the broadcasts (the funding of a funder's unconfirmed channel,
    /// our commitment for [`CloseKind::LocalForce`], the closing tx for a cooperative close,
    /// nothing for the peer's transaction), the sweeps already possible and the watches. A
    /// channel that is not durable, or failed before its funding was seen, returns nothing.
    // The cooperative close (`negotiate.rs`) calls it with the agreed closing tx.
    #[allow(dead_code)]
    pub(super) fn start_closing(
        &mut self,
        kind: CloseKind,
        spend: Transaction,
        confirmation_height: Option<u32>,
        reason: String,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        self.enter_closing(kind, spend, confirmation_height, reason, Vec::new(), ctx)
    }

    /// [`Channel::start_closing`] with `events` queued before `ChannelClosing` (the failure
    /// event of a protocol failure).
    pub(super) fn enter_closing(
        &mut self,
        kind: CloseKind,
        spend: Transaction,
        confirmation_height: Option<u32>,
        reason: String,
        mut events: Vec<ChannelEvent>,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        let id = self.current_id();
        // A cooperative close in progress (or negotiated before a force close overtook it):
        // its script (our output of the closing tx) and the ChannelClosing it announced
        // already (not repeated for the same kind).
        let coop_script = self.coop().and_then(|s| s.ours().cloned());
        let announced = self.shutdown().map(|s| CloseKind::Cooperative {
            initiator: s.initiator,
        });
        let placeholder = Phase::Aborted(super::phase::Aborted {
            reason: String::new(),
            funding: None,
        });
        let (channel, was_ready, coop) = match std::mem::replace(&mut self.phase, placeholder) {
            Phase::Funded(Funded {
                lock,
                channel,
                shutdown,
            }) => (channel, lock == LockIn::Ready, shutdown),
            Phase::Failed(Failed {
                channel,
                unfunded: false,
                ..
            }) => (channel, true, None),
            Phase::Closing(c) | Phase::Closed(c) => (c.channel, true, c.coop),
            other => {
                self.phase = other;
                return Vec::new();
            }
        };
        tracing::warn!(channel = %id, kind = kind.name(), txid = %spend.compute_txid(), ?confirmation_height, %reason, "channel closing");
        self.phase = Phase::Closing(Closing {
            channel,
            coop,
            reason: reason.clone(),
            resolution: Resolution {
                kind,
                spend,
                confirmed_at: confirmation_height,
                outputs: Vec::new(),
                cpfp: None,
            },
        });
        let outputs = self.find_outputs(kind, coop_script, ctx);
        if let Some(c) = self.closing_mut() {
            c.resolution.outputs = outputs;
        }
        // Sweeps that need nothing more (a penalty, a static_remotekey to_remote) are built
        // now, in the same write.
        let tip = confirmation_height.unwrap_or_else(|| self.tip_floor());
        let sweeps = self.build_due_sweeps(tip, ctx);
        if announced != Some(kind) {
            events.push(ChannelEvent::ChannelClosing {
                counterparty_node_id: self.params.counterparty_node_id,
                channel_id: self.current_id(),
                kind,
                reason,
            });
        }
        let funder = self.params.role == Role::Funder;
        let mut actions = vec![Action::Commit(Commit {
            record: self.to_record(),
            events,
            open: (funder && !was_ready).then_some(OpenProgress::Pending),
            release: None,
        })];
        actions.extend(self.spend_broadcasts(tip));
        actions.extend(sweeps);
        actions.extend(self.closing_watches());
        // Our commitment pays less than the estimate: CPFP through our anchor (asked after
        // the commitment's broadcast; the child is stored before it is broadcast).
        actions.extend(self.cpfp_request(tip, ctx));
        actions
    }

    /// A lower bound of the tip: the highest height the channel knows of.
    pub(super) fn tip_floor(&self) -> u32 {
        self.confirmation()
            .map_or(self.params.created_height, |c| c.block_height)
    }

    /// The user's force close ([`Input::ForceClose`]): our latest commitment, persisted,
    /// broadcast, then our `error`. A failed channel never broadcasts (it fell behind, or its
    /// funding can never exist); a closing one already spends (or holds) the funding.
    ///
    /// On a channel already closing: a force close already decided (Closing{LocalForce}) is
    /// rebroadcast — its commitment (and CPFP child) while unconfirmed, and a CPFP asked for
    /// if the commitment pays too little — with nothing stored (idempotent). An agreed
    /// cooperative close (the agreed tx held while negotiating, or Closing{Cooperative}) is
    /// never answered with our commitment: nothing happens (the node refuses it first with
    /// `CannotClose`). Any other spend (the peer's commitment, ...) already closes it.
    pub(crate) fn on_force_close(&mut self, ctx: &Context<'_>) -> Vec<Action> {
        if self.agreed_closing_tx().is_some() {
            tracing::warn!(channel = %self.current_id(), "force close refused: a cooperative close is agreed");
            return Vec::new();
        }
        match &self.phase {
            Phase::Closing(c) if c.resolution.kind == CloseKind::LocalForce => {
                let tip = self.tip_floor();
                let mut actions = self.spend_broadcasts(tip);
                actions.extend(self.cpfp_request(tip, ctx));
                actions
            }
            Phase::Funded(_) => self.force_close(
                "force-closed at the user's request".into(),
                true,
                false,
                ctx,
            ),
            state => {
                tracing::warn!(channel = %self.current_id(), state = ?self.state(), "force close ignored: nothing to broadcast in this state");
                let _ = state;
                Vec::new()
            }
        }
    }

    /// Force-closes a funded channel with our latest commitment: persist Closing{LocalForce}
    /// (with the failure event when `failure`: a protocol failure, the peer's error, a
    /// timeout), broadcast, then send `error` if `tell_peer`. A channel whose commitment
    /// cannot be signed fails without a broadcast.
    pub(crate) fn force_close(
        &mut self,
        reason: String,
        tell_peer: bool,
        failure: bool,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        if !matches!(self.phase, Phase::Funded(_)) {
            return Vec::new();
        }
        let commitment = match self.signed_our_commitment(ctx) {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(channel = %self.current_id(), error = %e, "cannot sign our commitment");
                return self.fail_durable(reason, tell_peer, false);
            }
        };
        // Ready once both `channel_ready` were exchanged, also while shutting down: a failure
        // then is a ready channel's (`ChannelFailed`), never an open's.
        let was_ready = matches!(&self.phase, Phase::Funded(f) if f.lock == LockIn::Ready);
        let mut events = Vec::new();
        if failure || !was_ready {
            events.extend(self.failure_event(&reason, was_ready));
        }
        let error = tell_peer.then(|| self.error_message(&reason));
        let mut actions =
            self.enter_closing(CloseKind::LocalForce, commitment, None, reason, events, ctx);
        actions.extend(error);
        actions
    }

    /// The event a failure of this channel told the app before closes existed.
    pub(super) fn failure_event(&self, reason: &str, was_ready: bool) -> Option<ChannelEvent> {
        let p = &self.params;
        Some(if was_ready {
            ChannelEvent::ChannelFailed {
                counterparty_node_id: p.counterparty_node_id,
                channel_id: self.current_id(),
                reason: reason.to_string(),
            }
        } else {
            ChannelEvent::ChannelOpenFailed {
                counterparty_node_id: p.counterparty_node_id,
                temporary_channel_id: p.temporary_channel_id,
                channel_id: self.channel_id(),
                reason: reason.to_string(),
            }
        })
    }

    /// Classifies a funding spend into a close kind (see the module doc).
    pub(super) fn close_kind_of(&self, tx: &Transaction, ctx: &Context<'_>) -> CloseKind {
        if self.signed_closing_txids().contains(&tx.compute_txid()) {
            return CloseKind::Cooperative {
                initiator: self.coop().map_or(Initiator::Remote, |s| s.initiator),
            };
        }
        match self.classify_spend(tx, ctx) {
            SpendKind::OurCommitment { .. } => CloseKind::LocalForce,
            SpendKind::TheirCommitment { .. } => CloseKind::RemoteForce,
            SpendKind::TheirFutureCommitment { .. } => CloseKind::RemoteFuture,
            SpendKind::TheirRevokedCommitment { .. } => CloseKind::Revoked,
            SpendKind::Other => CloseKind::Unknown,
        }
    }
}
