//! Cooperative close, part 1: `shutdown` ([BOLT 2: Closing Initiation](https://github.com/lightning/bolts/blob/master/02-peer-protocol.md#closing-initiation-shutdown)).
//!
//! A funded channel (ready, or still locking in: BOLT 2 allows `shutdown` before
//! `channel_ready`) starts closing when the user asks ([`Input::Close`](super::Input::Close))
//! or the peer's `shutdown` arrives. The state lives in [`Funded`](super::phase::Funded) as a
//! [`Shutdown`]: who asked, the scripts known so far, every closing transaction we signed and,
//! once both signatures are on one fee, the agreed transaction (`negotiate.rs`).
//!
//! Durable points: our script before our `shutdown` leaves (never chosen again after a
//! restart), the peer's script when it arrives, each closing transaction we sign before its
//! `closing_signed` leaves, the agreed transaction before its broadcast. What belongs to one
//! connection ([`Link`]: whether our `shutdown` and which proposal went out, the peer's last
//! fee) is not stored: BOLT 2 restarts the negotiation on reconnection.
//!
//! Our `shutdown` goes out only when no update is in flight (BOLT 2: not with updates pending)
//! and is retransmitted after every `channel_reestablish` of the peer; once either side sent
//! `shutdown` we propose no update (the fee policy's [`Input::SetFeerate`](super::Input::SetFeerate)
//! is ignored) but finish an exchange the peer started.

use bitcoin::{ScriptBuf, Transaction, Txid};

use super::close_types::{ClosingStatus, Initiator};
use super::effects::one_commit;
use super::phase::{Funded, LockIn, Phase};
use super::record::{ConsensusTx, Marker};
use super::{Action, Channel, ChannelEvent, CloseKind, Context, DisconnectScope};
use crate::bolt3::{shutdown_script_form, ShutdownScript};
use crate::wire::{
    Bytes, DecodeError, Feature, Features, FeeRange, Message, Reader, Repeated,
    Shutdown as ShutdownMsg, Warning, WireField,
};

/// A cooperative close in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shutdown {
    pub(super) initiator: Initiator,
    pub(super) scripts: Scripts,
    /// Every closing transaction we signed, in order (durable before its `closing_signed`
    /// leaves, so that the peer broadcasting any of them is recognized).
    pub(super) signed: Vec<SignedClosing>,
    /// Both signatures on one fee: the transaction to broadcast (durable before that).
    pub(super) agreed: Option<Transaction>,
    /// This connection only.
    pub(super) link: Link,
}

/// The scripts known so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scripts {
    /// Ours (chosen and stored before our `shutdown` is sent); the peer's not yet received.
    Ours(ScriptBuf),
    /// The peer's; ours waits until no update is in flight.
    Theirs(ScriptBuf),
    /// Both: the fee negotiation runs once no update is in flight.
    Both {
        /// Where our share goes.
        ours: ScriptBuf,
        /// Where the peer's share goes.
        theirs: ScriptBuf,
    },
}

/// A closing transaction we signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SignedClosing {
    pub(super) fee_sat: u64,
    pub(super) txid: Txid,
}

crate::wire_message! {
    struct SignedClosing {
        fee_sat: u64,
        txid: Txid,
    }
}

/// What happened on the current connection: a reconnection starts it again, and with it the
/// negotiation. Written with the record like every other field (odd fields: a build that
/// ignores them only renegotiates), so that a channel rebuilt from its record acts the same.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Link {
    /// Our `shutdown` was sent on this connection.
    pub(super) shutdown_sent: bool,
    /// Our last `closing_signed`: its fee and range.
    pub(super) proposed: Option<(u64, FeeRange)>,
    /// The peer's last `closing_signed` fee.
    pub(super) received: Option<u64>,
    /// The first tick seen while our proposal waits for an answer (the watchdog).
    pub(super) waiting_since: Option<u64>,
}

impl Shutdown {
    pub(super) fn ours(&self) -> Option<&ScriptBuf> {
        match &self.scripts {
            Scripts::Ours(s) | Scripts::Both { ours: s, .. } => Some(s),
            Scripts::Theirs(_) => None,
        }
    }

    pub(super) fn theirs(&self) -> Option<&ScriptBuf> {
        match &self.scripts {
            Scripts::Theirs(s) | Scripts::Both { theirs: s, .. } => Some(s),
            Scripts::Ours(_) => None,
        }
    }

    fn kind(&self) -> CloseKind {
        CloseKind::Cooperative {
            initiator: self.initiator,
        }
    }
}

/// Whether `option_shutdown_anysegwit` is negotiated: we always offer it, so the peer's
/// `init` decides.
fn anysegwit(their_features: Option<&Features>) -> bool {
    their_features.is_some_and(|f| f.supports(Feature::ShutdownAnySegwit))
}

impl Channel {
    pub(crate) fn shutdown(&self) -> Option<&Shutdown> {
        match &self.phase {
            Phase::Funded(Funded {
                shutdown: Some(s), ..
            }) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn shutdown_mut(&mut self) -> Option<&mut Shutdown> {
        match &mut self.phase {
            Phase::Funded(Funded {
                shutdown: Some(s), ..
            }) => Some(s),
            _ => None,
        }
    }

    /// Whether a cooperative close has begun (either side sent `shutdown`): no update of ours
    /// is proposed any more.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown().is_some()
    }

    /// Whether our `shutdown` is stored and must reach the peer: dial it (the wake's dial
    /// decision) until the close is agreed.
    pub fn shutdown_to_send(&self) -> bool {
        self.shutdown()
            .is_some_and(|s| s.ours().is_some() && s.agreed.is_none())
    }

    /// Our shutdown script, once stored: a `shutdown` from the peer then needs no new one.
    pub fn our_shutdown_script(&self) -> Option<&ScriptBuf> {
        self.shutdown().and_then(Shutdown::ours)
    }

    /// Why [`Input::Close`](super::Input::Close) with `script` would be refused now, if it
    /// would: nothing is stored or sent for a refused close. `their_features` are the peer's
    /// `init` features on the current connection (`None` when not connected: a script that
    /// needs `option_shutdown_anysegwit` is then refused, since it cannot be checked).
    pub fn close_refusal(
        &self,
        script: Option<&ScriptBuf>,
        their_features: Option<&Features>,
    ) -> Option<String> {
        let state = self.state();
        match &self.phase {
            Phase::Funded(f) if f.shutdown.is_some() => {
                return Some("the channel is already closing".into())
            }
            Phase::Funded(_) => {}
            Phase::Opening(_) => {
                return Some(format!(
                    "the channel is not durable yet ({state:?}): wait for ChannelPending, or let the open fail"
                ))
            }
            _ => return Some(format!("the channel cannot close cooperatively in state {state:?}")),
        }
        let script = script?;
        match shutdown_script_form(script.as_bytes(), anysegwit(their_features)) {
            Ok(ShutdownScript::P2pkh | ShutdownScript::P2sh) => Some(
                "a legacy (P2PKH / P2SH) destination is not allowed by BOLT 2: give a segwit address"
                    .into(),
            ),
            Ok(_) => None,
            Err(e) => Some(format!("destination refused: {e}")),
        }
    }

    /// The user's cooperative close ([`super::Input::Close`]).
    pub(crate) fn on_close(&mut self, script: Option<ScriptBuf>, ctx: &Context<'_>) -> Vec<Action> {
        let script = match script.or_else(|| ctx.destination.cloned()) {
            Some(s) => s,
            None => {
                tracing::warn!(channel = %self.current_id(), "close without a destination script: ignored");
                return Vec::new();
            }
        };
        if let Some(why) = self.close_refusal(Some(&script), ctx.their_features) {
            tracing::warn!(channel = %self.current_id(), %why, "close refused");
            return Vec::new();
        }
        let Phase::Funded(f) = &mut self.phase else {
            return Vec::new();
        };
        f.shutdown = Some(Box::new(Shutdown {
            initiator: Initiator::Local,
            scripts: Scripts::Ours(script),
            signed: Vec::new(),
            agreed: None,
            link: Link::default(),
        }));
        let event = self.closing_event("the user asked for a cooperative close");
        let mut actions = vec![self.commit(vec![event])];
        actions.extend(self.shutdown_progress(ctx));
        actions
    }

    fn closing_event(&self, reason: &str) -> ChannelEvent {
        let kind = self.shutdown().map_or(
            CloseKind::Cooperative {
                initiator: Initiator::Local,
            },
            |s| s.kind(),
        );
        ChannelEvent::ChannelClosing {
            counterparty_node_id: self.params.counterparty_node_id,
            channel_id: self.current_id(),
            kind,
            reason: reason.into(),
        }
    }

    pub(super) fn warn(&self, text: String, disconnect: bool) -> Vec<Action> {
        tracing::warn!(channel = %self.current_id(), %text, "closing: warning the peer");
        let mut actions = vec![Action::Send(Message::Warning(Warning::new(
            self.current_id(),
            &text,
        )))];
        if disconnect {
            actions.push(Action::Disconnect {
                counterparty_node_id: self.params.counterparty_node_id,
                reason: text,
                scope: DisconnectScope::Connection,
            });
        }
        actions
    }

    /// The peer's `shutdown`.
    pub(crate) fn on_shutdown(&mut self, msg: &ShutdownMsg, ctx: &Context<'_>) -> Vec<Action> {
        match &self.phase {
            Phase::Opening(_) => {
                return self.fail_transient(
                    "the peer sent shutdown before the channel was funded".into(),
                    true,
                )
            }
            Phase::Funded(_) => {}
            _ => return Vec::new(),
        }
        let script = ScriptBuf::from_bytes(msg.scriptpubkey.clone());
        match shutdown_script_form(script.as_bytes(), anysegwit(ctx.their_features)) {
            Ok(ShutdownScript::P2pkh | ShutdownScript::P2sh) => {
                // BOLT 2 no longer lists them; its rationale lets old nodes' be accepted.
                tracing::warn!(channel = %self.current_id(), "the peer's shutdown pays a legacy script: accepted");
            }
            Ok(_) => {}
            Err(e) => {
                return self.warn(format!("shutdown scriptpubkey refused: {e}"), false);
            }
        }
        if let Some(known) = self.shutdown().and_then(|s| s.theirs()) {
            if *known != script {
                return self.warn(
                    "a second shutdown with a different scriptpubkey: keeping the first".into(),
                    false,
                );
            }
            // A retransmission after a reconnection.
            return self.shutdown_progress(ctx);
        }
        let Phase::Funded(f) = &mut self.phase else {
            return Vec::new();
        };
        let first = f.shutdown.is_none();
        match &mut f.shutdown {
            Some(s) => {
                let Scripts::Ours(ours) = &s.scripts else {
                    return Vec::new();
                };
                s.scripts = Scripts::Both {
                    ours: ours.clone(),
                    theirs: script,
                };
                s.link.waiting_since = None;
            }
            None => {
                f.shutdown = Some(Box::new(Shutdown {
                    initiator: Initiator::Remote,
                    scripts: Scripts::Theirs(script),
                    signed: Vec::new(),
                    agreed: None,
                    link: Link::default(),
                }));
            }
        }
        // Our reply (if the commitments are clean) is stored in the same write.
        self.choose_our_script(ctx);
        let events = if first {
            vec![self.closing_event("the peer sent shutdown")]
        } else {
            Vec::new()
        };
        let mut actions = vec![self.commit(events)];
        actions.extend(self.shutdown_progress(ctx));
        // The peer's script, ours and (as funder) the first proposal: one write.
        one_commit(actions)
    }

    /// Peer asked first and no update is in flight: our script is the context's destination.
    fn choose_our_script(&mut self, ctx: &Context<'_>) -> bool {
        let clean = !self.update_pending();
        let Some(s) = self.shutdown_mut() else {
            return false;
        };
        let Scripts::Theirs(theirs) = &s.scripts else {
            return false;
        };
        if !clean {
            return false;
        }
        let Some(ours) = ctx.destination else {
            tracing::warn!("the peer's shutdown waits: no destination script for ours");
            return false;
        };
        s.scripts = Scripts::Both {
            ours: ours.clone(),
            theirs: theirs.clone(),
        };
        true
    }

    /// What the close can do now: answer the peer's `shutdown` with ours (stored first), send
    /// ours if it has not gone out on this connection, and as funder start the negotiation.
    /// Called after every input that may have changed it (a close, a message, the end of an
    /// update).
    pub(crate) fn shutdown_progress(&mut self, ctx: &Context<'_>) -> Vec<Action> {
        if self.shutdown().is_none_or(|s| s.agreed.is_some()) || self.update_pending() {
            return Vec::new();
        }
        let mut actions = Vec::new();
        if self.choose_our_script(ctx) {
            actions.push(self.commit(Vec::new()));
        }
        let channel_id = self.current_id();
        let Some(s) = self.shutdown_mut() else {
            return actions;
        };
        let Some(ours) = s.ours().cloned() else {
            return actions;
        };
        if !s.link.shutdown_sent {
            s.link.shutdown_sent = true;
            actions.push(Action::Send(Message::Shutdown(ShutdownMsg {
                channel_id,
                scriptpubkey: ours.into_bytes(),
            })));
        }
        actions.extend(self.propose_if_funder(ctx));
        // Our script chosen now and the first proposal: one write.
        one_commit(actions)
    }

    /// After the peer's `channel_reestablish`: our `shutdown` again (BOLT 2 MUST), then the
    /// negotiation from the start; an agreed close is broadcast again.
    pub(crate) fn shutdown_after_reestablish(&mut self, ctx: &Context<'_>) -> Vec<Action> {
        let Some(s) = self.shutdown_mut() else {
            return Vec::new();
        };
        s.link = Link::default();
        if let Some(tx) = s.agreed.clone() {
            let mut actions = vec![Action::Broadcast {
                tx,
                kind: super::BroadcastKind::MutualClose,
            }];
            actions.extend(self.agreed_retransmission(ctx));
            return actions;
        }
        self.shutdown_progress(ctx)
    }

    /// The connection is gone: what it carried is forgotten.
    pub(crate) fn shutdown_disconnected(&mut self) {
        if let Some(s) = self.shutdown_mut() {
            s.link = Link::default();
        }
    }

    /// How far the close is, for `list_channels` (`None` for a channel that is not closing).
    pub fn closing_status(&self, _tip: u32) -> Option<ClosingStatus> {
        self.shutdown_status().or_else(|| self.onchain_status())
    }

    /// How far the cooperative close is.
    fn shutdown_status(&self) -> Option<ClosingStatus> {
        let s = self.shutdown()?;
        Some(match (&s.scripts, &s.agreed) {
            (_, Some(_)) => ClosingStatus::OnChain {
                kind: s.kind(),
                confirmed_at: None,
                done_at: None,
            },
            (Scripts::Ours(_), None) if !s.link.shutdown_sent => ClosingStatus::ShutdownPending,
            (Scripts::Both { .. }, None) if !self.update_pending() => ClosingStatus::Negotiating {
                awaiting_peer: s.link.proposed.is_some() || self.role() == super::Role::Fundee,
            },
            _ => ClosingStatus::ShuttingDown,
        })
    }
}

/// What record field 62 holds: a cooperative close and the lock-in it interrupted (a channel
/// may shut down before `channel_ready`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShutdownState {
    pub(crate) lock: LockIn,
    pub(crate) shutdown: Shutdown,
}

/// The flat form of [`ShutdownState`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShutdownFields {
    lock: LockByte,
    remote_initiated: bool,
    ours: Option<Vec<u8>>,
    theirs: Option<Vec<u8>>,
    signed: Vec<SignedClosing>,
    agreed: Option<Transaction>,
    shutdown_sent: Option<()>,
    proposed: Option<Proposal>,
    received: Option<u64>,
    waiting_since: Option<u64>,
}

/// Our last `closing_signed` on this connection: its fee, then its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proposal {
    fee_sat: u64,
    range: FeeRange,
}

crate::wire_message! {
    struct Proposal {
        fee_sat: u64,
        range: FeeRange,
    }
}

type LockByte = u8;

crate::wire_message! {
    struct ShutdownFields {}
    tlvs {
        0 => lock: required u8,
        2 => remote_initiated: required bool,
        4 => ours: option Bytes,
        6 => theirs: option Bytes,
        8 => signed: required Repeated<SignedClosing>,
        10 => agreed: option ConsensusTx,
        11 => shutdown_sent: option Marker,
        13 => proposed: option Proposal,
        15 => received: option u64,
        17 => waiting_since: option u64,
    }
}

/// Record field 62 (even: a build that does not know it must not read the channel as open).
#[derive(Debug)]
pub(crate) enum ShutdownForm {}

impl WireField for ShutdownForm {
    type Value = ShutdownState;
    fn write(v: &ShutdownState, out: &mut Vec<u8>) {
        let (ours, theirs) = (v.shutdown.ours(), v.shutdown.theirs());
        ShutdownFields::write(
            &ShutdownFields {
                lock: match v.lock {
                    LockIn::AwaitingConfirmations => 0,
                    LockIn::AwaitingChannelReady => 1,
                    LockIn::Ready => 2,
                },
                remote_initiated: v.shutdown.initiator == Initiator::Remote,
                ours: ours.map(|s| s.to_bytes()),
                theirs: theirs.map(|s| s.to_bytes()),
                signed: v.shutdown.signed.clone(),
                agreed: v.shutdown.agreed.clone(),
                shutdown_sent: v.shutdown.link.shutdown_sent.then_some(()),
                proposed: v
                    .shutdown
                    .link
                    .proposed
                    .map(|(fee_sat, range)| Proposal { fee_sat, range }),
                received: v.shutdown.link.received,
                waiting_since: v.shutdown.link.waiting_since,
            },
            out,
        );
    }
    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<ShutdownState, DecodeError> {
        let f = ShutdownFields::read(r, field)?;
        let invalid = |reason| DecodeError::InvalidValue { field, reason };
        let lock = match f.lock {
            0 => LockIn::AwaitingConfirmations,
            1 => LockIn::AwaitingChannelReady,
            2 => LockIn::Ready,
            _ => return Err(invalid("unknown lock-in")),
        };
        let scripts = match (f.ours, f.theirs) {
            (Some(o), Some(t)) => Scripts::Both {
                ours: ScriptBuf::from_bytes(o),
                theirs: ScriptBuf::from_bytes(t),
            },
            (Some(o), None) => Scripts::Ours(ScriptBuf::from_bytes(o)),
            (None, Some(t)) => Scripts::Theirs(ScriptBuf::from_bytes(t)),
            (None, None) => return Err(invalid("a shutdown without any script")),
        };
        if f.agreed.is_some() && !matches!(scripts, Scripts::Both { .. }) {
            return Err(invalid("an agreed close without both scripts"));
        }
        Ok(ShutdownState {
            lock,
            shutdown: Shutdown {
                initiator: if f.remote_initiated {
                    Initiator::Remote
                } else {
                    Initiator::Local
                },
                scripts,
                signed: f.signed,
                agreed: f.agreed,
                link: Link {
                    shutdown_sent: f.shutdown_sent.is_some(),
                    proposed: f.proposed.map(|p| (p.fee_sat, p.range)),
                    received: f.received,
                    waiting_since: f.waiting_since,
                },
            },
        })
    }
}
