//! What the state machine asks the driver to do (durable writes stated as one [`Commit`],
//! general broadcasts and watches), and the checker of the persist-before-act contract.

use std::collections::{HashMap, HashSet};

use bitcoin::secp256k1::PublicKey;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, Txid};

use super::commitments::RemoteNext;
use super::record::ChannelRecord;
use super::{ChannelState, CloseKind};
use crate::wire::{ChannelId, Message};

/// One thing for the driver to do. A list of actions must be performed in order; a failed
/// [`Action::Commit`] must stop the list (keep the input to retry) so that nothing after it
/// happens without the state it depends on being durable.
// Most lists hold one to four actions, consumed at once: boxing messages buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write everything the [`Commit`] states durably, in one transaction, then continue. The
    /// driver writes exactly that and infers nothing from the channel's state.
    Commit(Commit),
    /// Send a message to the channel's peer. If the peer is not connected, or is connected but
    /// its `channel_reestablish` has not arrived yet, drop it: reestablishment retransmits
    /// whatever the peer still needs.
    Send(Message),
    /// Funder: build and sign (do not broadcast) a funding transaction with one output of
    /// `amount` to `script_pubkey`, locking its coins; answer with
    /// [`super::Input::FundingTxBuilt`] or [`super::Input::FundingTxFailed`].
    NeedFundingTx {
        /// The channel asking.
        temporary_channel_id: ChannelId,
        /// The 2-of-2 P2WSH funding script.
        script_pubkey: ScriptBuf,
        /// The funding output's value.
        amount: Amount,
        /// Fee rate for the transaction (at least 253 sat/kw).
        feerate_per_kw: u32,
    },
    /// Broadcast a transaction (idempotent: also the rebroadcasts).
    Broadcast {
        /// The fully signed transaction.
        tx: Transaction,
        /// What it is.
        kind: BroadcastKind,
    },
    /// Register a chain watch (idempotent).
    Watch(WatchRequest),
    /// Tell the app, an event that no commit carries (persisted queue).
    Emit(ChannelEvent),
    /// Close the connection to the peer — always, or only if nothing else uses it (`scope`).
    Disconnect {
        /// The peer.
        counterparty_node_id: PublicKey,
        /// Why (for logs).
        reason: String,
        /// Whether the connection itself must go, or only this channel is done with it.
        scope: DisconnectScope,
    },
    /// Watchdog: disconnect the peer and connect again at once (logging `reason`).
    ReconnectPeer {
        /// The peer.
        counterparty_node_id: PublicKey,
        /// Why (for logs).
        reason: String,
    },
    /// A transient (never persisted) open failed: what to forget, release and tell.
    FailOpen(FailOpen),
    /// Build (do not broadcast) a CPFP child of our unconfirmed anchor commitment from a
    /// wallet coin, locking the coin; answer with [`super::Input::CpfpBuilt`]. Nothing to
    /// answer if the wallet cannot (no coin): the next block asks again.
    BumpCommitment(super::CpfpRequest),
}

/// What one durable write holds — like a staged change set: the channel's record, the events
/// announcing it, the progress of the user's open and the coins it gives back. The driver
/// writes all of it in one transaction before performing the next action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The channel's new record (replacing the previous one). Only ever a durable state.
    pub record: ChannelRecord,
    /// Events queued for the app in the same transaction.
    pub events: Vec<ChannelEvent>,
    /// Funder: the new status of the open that created the channel, if it changes (the driver
    /// applies it to the open intent it holds for the channel, if any).
    pub open: Option<OpenProgress>,
    /// Coins given back in the same transaction.
    pub release: Option<Release>,
}

/// The progress of a funder's open, as the open intent records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenProgress {
    /// The channel is durable and its funding (about to be) broadcast, not yet ready; also
    /// what a durable open that failed before becoming ready stays at (its funding may still
    /// be in flight, so its coins stay accounted to it).
    Pending,
    /// Both `channel_ready` were exchanged: the open is done.
    Ready,
}

/// Coins a commit gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The open's coin locks: its funding is spent for good (the channel is ready).
    OpenLocks,
    /// The funding `txid` will never confirm (an input was double-spent): drop it from the
    /// wallet's pending transactions and unlock its remaining coins and the open's locks.
    AbandonFunding {
        /// The funding transaction.
        txid: Txid,
    },
}

/// A transient open failed: forget the channel (nothing was persisted), give back its coins
/// and queue its events, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailOpen {
    /// The channel to forget.
    pub temporary_channel_id: ChannelId,
    /// The unbroadcast funding transaction built for it, if any: dropped from the wallet and
    /// its coins unlocked (the open's own coin locks are always released).
    pub funding_txid: Option<Txid>,
    /// Why.
    pub reason: String,
    /// Events queued with the failure.
    pub events: Vec<ChannelEvent>,
}

/// What a [`Action::Broadcast`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroadcastKind {
    /// The channel's funding transaction (funder).
    Funding,
    /// Our fully signed latest commitment transaction (unilateral close).
    Commitment,
    /// The agreed cooperative closing transaction.
    MutualClose,
    /// A sweep of a closing channel's output into the wallet (or a penalty).
    Sweep,
    /// The CPFP child of our commitment, spending our anchor (after the commitment).
    AnchorCpfp,
}

/// A chain watch ([`Action::Watch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchRequest {
    /// The funding transaction and output: report [`super::Input::FundingConfirmed`],
    /// [`super::Input::FundingReorged`], [`super::Input::FundingDoubleSpent`] and
    /// [`super::Input::FundingSpent`].
    Funding {
        /// The channel.
        channel_id: ChannelId,
        /// The funding outpoint.
        outpoint: OutPoint,
        /// The funding output's script.
        script_pubkey: ScriptBuf,
        /// Confirmations the channel waits for.
        min_depth: u32,
    },
    /// An output of a closing channel's transactions (a commitment's `to_local`, a sweep's
    /// input): report [`super::Input::OutputSpent`] (with the spending transaction, again
    /// whenever its confirmation changes) and [`super::Input::OutputUnspent`].
    Output {
        /// The channel.
        channel_id: ChannelId,
        /// The outpoint.
        outpoint: OutPoint,
        /// Its script.
        script_pubkey: ScriptBuf,
    },
}

/// How far an [`Action::Disconnect`] reaches. A channel knows only itself; the driver, which
/// owns every channel with the peer, decides for [`DisconnectScope::UnlessShared`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectScope {
    /// The connection itself is at fault (e.g. the peer sent invalid signatures on it): close
    /// it, whatever else uses it; durable channels reestablish on the next connection.
    Connection,
    /// Only this channel failed, and its `error` names it (BOLT 1: such an `error` fails that
    /// channel alone): close the connection only if no other channel or open with the peer is
    /// alive, so that one failed open never takes down its siblings.
    UnlessShared,
}

/// What the app is told (through the driver's persisted event queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// The channel is durable and its funding is (about to be) broadcast.
    ChannelPending {
        /// The peer.
        counterparty_node_id: PublicKey,
        /// The temporary id used during the open.
        temporary_channel_id: ChannelId,
        /// The final id.
        channel_id: ChannelId,
        /// The funding outpoint.
        funding_txo: OutPoint,
    },
    /// Both sides sent `channel_ready`.
    ChannelReady {
        /// The peer.
        counterparty_node_id: PublicKey,
        /// The channel.
        channel_id: ChannelId,
    },
    /// The open failed before the channel became usable.
    ChannelOpenFailed {
        /// The peer.
        counterparty_node_id: PublicKey,
        /// The temporary id.
        temporary_channel_id: ChannelId,
        /// The final id, if the funding outpoint was known.
        channel_id: Option<ChannelId>,
        /// Why.
        reason: String,
    },
    /// A ready channel failed.
    ChannelFailed {
        /// The peer.
        counterparty_node_id: PublicKey,
        /// The channel.
        channel_id: ChannelId,
        /// Why.
        reason: String,
    },
    /// The channel is closing: a `shutdown` exchange began, our commitment is being
    /// broadcast, or the funding was spent. Once per close (a reorg that reopens a closed
    /// channel emits it again, see `resolve.rs`).
    ChannelClosing {
        /// The peer.
        counterparty_node_id: PublicKey,
        /// The channel.
        channel_id: ChannelId,
        /// How, as far as known: a cooperative close may still end as a force close (then a
        /// second `ChannelClosing` names the new kind).
        kind: CloseKind,
        /// Why (the user's request, the peer's error, ...).
        reason: String,
    },
    /// Every output of the close is resolved at 6 confirmations.
    ChannelClosed {
        /// The peer.
        counterparty_node_id: PublicKey,
        /// The channel.
        channel_id: ChannelId,
        /// How it closed.
        kind: CloseKind,
        /// What came back to our wallet, in satoshis (after sweep fees).
        claimed_sat: u64,
        /// The closing transaction (the one that spent the funding).
        closing_txid: Txid,
    },
}

/// A breach of the persist-before-act contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderViolation {
    /// A record of a transient state was persisted (BOLT 2: nothing before the durable point).
    #[error("action {index}: persisted channel {channel} in transient state {state:?}")]
    PersistedTransient {
        /// Position in the list.
        index: usize,
        /// The channel.
        channel: ChannelId,
        /// Its state.
        state: ChannelState,
    },
    /// A message left before the state it depends on was durable.
    #[error(
        "action {index}: {message} sent for {channel} before the state it depends on was persisted"
    )]
    SendBeforePersist {
        /// Position in the list.
        index: usize,
        /// The message name.
        message: &'static str,
        /// The channel.
        channel: ChannelId,
    },
    /// A transaction was broadcast without a persisted channel that allows it.
    #[error("action {index}: {what} {txid} broadcast without a persisted channel")]
    BroadcastBeforePersist {
        /// Position in the list.
        index: usize,
        /// Which transaction.
        what: &'static str,
        /// Its id.
        txid: Txid,
    },
    /// A fundee broadcast a commitment spending a funding it never saw on chain (the funder
    /// may never have broadcast it: [`ChannelState::FailedUnfunded`]).
    #[error("action {index}: commitment {txid} broadcast by a fundee that never saw its funding")]
    BroadcastUnfunded {
        /// Position in the list.
        index: usize,
        /// The commitment.
        txid: Txid,
    },
    /// An event announced a state that was not durable yet.
    #[error("action {index}: event {event} emitted for {channel} before its state was persisted")]
    EmitBeforePersist {
        /// Position in the list.
        index: usize,
        /// The event name.
        event: &'static str,
        /// The channel.
        channel: ChannelId,
    },
}

/// Checks, across any number of action lists (one per step, in order), that every
/// state-dependent action comes after the persist of that state:
/// - only durable states are persisted;
/// - `funding_signed` leaves only after a durable record of that channel;
/// - `channel_ready` leaves only after a record with the "channel_ready sent" mark;
/// - the funding transaction is broadcast only after a durable record holding the peer's
///   commitment signature and that funding outpoint; our commitment only after a record of
///   its channel in Closing{LocalForce} holding that very transaction (and by a fundee only
///   once it has seen the funding on chain); the cooperative closing transaction only after
///   a record holding it as a cooperative close; a sweep only after a record holding it as
///   broadcast; the CPFP child of our commitment only after a record in
///   Closing{LocalForce} holding that child;
/// - `announcement_signatures` leaves only after a record with the "sent" mark;
/// - `commitment_signed` leaves only after a record holding that signature as the peer's
///   unrevoked next commitment (number, updates, feerate, point);
/// - `revoke_and_ack` leaves only after a record whose own commitment number is at least the
///   count of distinct secrets revealed (the new commitment and the peer's signature of it are
///   durable before the old secret goes);
/// - `shutdown` leaves only after a record holding that script as ours; `closing_signed` only
///   after a record listing a closing transaction we signed at that fee; the agreed close is
///   broadcast only after a record holding it;
/// - `ChannelPending` / `ChannelReady` events follow the matching durable record,
///   `ChannelClosing` a record in a closing state, `ChannelClosed` a Closed one.
///
/// Usable by the driver's tests: feed it every action list the node performs.
#[derive(Debug, Clone, Default)]
pub struct DurabilityChecker {
    /// Last persisted record per (peer, temporary channel id).
    persisted: HashMap<(PublicKey, ChannelId), ChannelRecord>,
    /// The distinct per-commitment secrets each channel revealed in `revoke_and_ack`s.
    revealed: HashMap<ChannelId, HashSet<[u8; 32]>>,
    index: usize,
}

impl DurabilityChecker {
    /// A checker that has seen nothing persisted.
    pub fn new() -> Self {
        Self::default()
    }

    /// A checker that knows `records` were persisted earlier (e.g. loaded at start-up).
    pub fn with_persisted<'a>(records: impl IntoIterator<Item = &'a ChannelRecord>) -> Self {
        let mut checker = Self::new();
        for r in records {
            checker.remember(r.clone());
        }
        checker
    }

    fn remember(&mut self, record: ChannelRecord) {
        let c = record.channel();
        self.persisted
            .insert((c.counterparty_node_id(), c.temporary_channel_id()), record);
    }

    /// Forgets a channel's record (the driver deleted it).
    pub fn forget(&mut self, counterparty_node_id: PublicKey, temporary_channel_id: ChannelId) {
        self.persisted
            .remove(&(counterparty_node_id, temporary_channel_id));
    }

    /// The last persisted record of a channel, by final id.
    fn by_id(&self, id: &ChannelId) -> Option<&ChannelRecord> {
        self.persisted
            .values()
            .find(|r| r.channel().channel_id().as_ref() == Some(id))
    }

    fn by_funding_txid(&self, txid: &Txid) -> Option<&ChannelRecord> {
        self.persisted.values().find(|r| {
            r.channel()
                .funding()
                .is_some_and(|f| f.outpoint.txid == *txid)
        })
    }

    /// Checks the next action list (positions in errors count across all lists).
    pub fn observe(&mut self, actions: &[Action]) -> Result<(), OrderViolation> {
        for action in actions {
            let index = self.index;
            self.index += 1;
            match action {
                Action::Commit(commit) => {
                    let c = commit.record.channel();
                    if !c.state().is_durable() {
                        return Err(OrderViolation::PersistedTransient {
                            index,
                            channel: c.current_id(),
                            state: c.state(),
                        });
                    }
                    self.remember(commit.record.clone());
                    for event in &commit.events {
                        self.check_event(index, event)?;
                    }
                }
                Action::Send(Message::FundingSigned(m)) => {
                    let ok = self
                        .by_id(&m.channel_id)
                        .is_some_and(|r| r.channel().state().is_durable());
                    if !ok {
                        return Err(OrderViolation::SendBeforePersist {
                            index,
                            message: "funding_signed",
                            channel: m.channel_id,
                        });
                    }
                }
                Action::Send(Message::ChannelReady(m)) => {
                    let ok = self
                        .by_id(&m.channel_id)
                        .is_some_and(|r| r.channel().channel_ready_sent());
                    if !ok {
                        return Err(OrderViolation::SendBeforePersist {
                            index,
                            message: "channel_ready",
                            channel: m.channel_id,
                        });
                    }
                }
                Action::Send(Message::CommitmentSigned(m)) => {
                    let ok = self.by_id(&m.channel_id).is_some_and(|r| {
                        r.channel().commitments().is_some_and(
                            |c| matches!(c.next, RemoteNext::Signed(s) if s.our_sig == m.signature),
                        )
                    });
                    if !ok {
                        return Err(OrderViolation::SendBeforePersist {
                            index,
                            message: "commitment_signed",
                            channel: m.channel_id,
                        });
                    }
                }
                Action::Send(Message::RevokeAndAck(m)) => {
                    let revealed = self.revealed.entry(m.channel_id).or_default();
                    revealed.insert(m.per_commitment_secret);
                    let count = revealed.len() as u64;
                    let ok = self
                        .by_id(&m.channel_id)
                        .is_some_and(|r| r.channel().commitment_number() >= count);
                    if !ok {
                        return Err(OrderViolation::SendBeforePersist {
                            index,
                            message: "revoke_and_ack",
                            channel: m.channel_id,
                        });
                    }
                }
                Action::Send(Message::Shutdown(m)) => {
                    let ok = self.by_id(&m.channel_id).is_some_and(|r| {
                        r.channel()
                            .shutdown()
                            .and_then(|s| s.ours())
                            .is_some_and(|s| s.as_bytes() == m.scriptpubkey.as_slice())
                    });
                    if !ok {
                        return Err(OrderViolation::SendBeforePersist {
                            index,
                            message: "shutdown",
                            channel: m.channel_id,
                        });
                    }
                }
                Action::Send(Message::ClosingSigned(m)) => {
                    let ok = self.by_id(&m.channel_id).is_some_and(|r| {
                        r.channel()
                            .shutdown()
                            .is_some_and(|s| s.signed.iter().any(|c| c.fee_sat == m.fee_satoshis))
                    });
                    if !ok {
                        return Err(OrderViolation::SendBeforePersist {
                            index,
                            message: "closing_signed",
                            channel: m.channel_id,
                        });
                    }
                }
                Action::Send(Message::AnnouncementSignatures(m)) => {
                    let ok = self
                        .by_id(&m.channel_id)
                        .is_some_and(|r| r.channel().announcement_signatures_sent());
                    if !ok {
                        return Err(OrderViolation::SendBeforePersist {
                            index,
                            message: "announcement_signatures",
                            channel: m.channel_id,
                        });
                    }
                }
                Action::Broadcast {
                    tx,
                    kind: BroadcastKind::Funding,
                } => {
                    let txid = tx.compute_txid();
                    let ok = self.by_funding_txid(&txid).is_some_and(|r| {
                        r.channel().state().is_durable()
                            && r.channel().their_commitment_signature().is_some()
                    });
                    if !ok {
                        return Err(OrderViolation::BroadcastBeforePersist {
                            index,
                            what: "funding",
                            txid,
                        });
                    }
                }
                Action::Broadcast {
                    tx,
                    kind: BroadcastKind::Commitment,
                } => {
                    // Only our force close broadcasts our commitment: a record of its channel
                    // in Closing{LocalForce} holding exactly that transaction.
                    let txid = tx.compute_txid();
                    let spent = tx.input.first().map(|i| i.previous_output);
                    let record = self.persisted.values().find(|r| {
                        r.channel().state().is_durable()
                            && r.channel().funding().map(|f| f.outpoint) == spent
                    });
                    match record {
                        Some(r) if r.channel().funding_unseen() => {
                            return Err(OrderViolation::BroadcastUnfunded { index, txid })
                        }
                        Some(r)
                            if r.channel().state() == ChannelState::Closing
                                && r.channel().close_kind() == Some(CloseKind::LocalForce)
                                && r.channel().closing_tx() == Some(tx) => {}
                        _ => {
                            return Err(OrderViolation::BroadcastBeforePersist {
                                index,
                                what: "commitment",
                                txid,
                            })
                        }
                    }
                }
                Action::Broadcast {
                    tx,
                    kind: BroadcastKind::MutualClose,
                } => {
                    // The agreed close (Negotiating, `negotiate.rs`) or a closing channel
                    // holding it as its cooperative close.
                    let ok = self.persisted.values().any(|r| {
                        let c = r.channel();
                        c.agreed_closing_tx() == Some(tx)
                            || (matches!(c.close_kind(), Some(CloseKind::Cooperative { .. }))
                                && c.closing_tx() == Some(tx))
                    });
                    if !ok {
                        return Err(OrderViolation::BroadcastBeforePersist {
                            index,
                            what: "cooperative close",
                            txid: tx.compute_txid(),
                        });
                    }
                }
                Action::Broadcast {
                    tx,
                    kind: BroadcastKind::Sweep,
                } => {
                    let txid = tx.compute_txid();
                    let ok = self
                        .persisted
                        .values()
                        .any(|r| r.channel().holds_sweep(&txid));
                    if !ok {
                        return Err(OrderViolation::BroadcastBeforePersist {
                            index,
                            what: "sweep",
                            txid,
                        });
                    }
                }
                Action::Broadcast {
                    tx,
                    kind: BroadcastKind::AnchorCpfp,
                } => {
                    // A record in Closing{LocalForce} holding that child.
                    let ok = self.persisted.values().any(|r| {
                        let c = r.channel();
                        c.state() == ChannelState::Closing
                            && c.close_kind() == Some(CloseKind::LocalForce)
                            && c.anchor_cpfp_child() == Some(tx)
                    });
                    if !ok {
                        return Err(OrderViolation::BroadcastBeforePersist {
                            index,
                            what: "cpfp child",
                            txid: tx.compute_txid(),
                        });
                    }
                }
                Action::Emit(event) => self.check_event(index, event)?,
                Action::FailOpen(fail) => {
                    for event in &fail.events {
                        self.check_event(index, event)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// An event that announces a state needs that state durable (a commit carrying it has
    /// been remembered before its events are checked).
    fn check_event(&self, index: usize, event: &ChannelEvent) -> Result<(), OrderViolation> {
        match event {
            // A closing state: the cooperative close's (shutdown.rs) or Closing (resolve.rs).
            ChannelEvent::ChannelClosing { channel_id, .. } => {
                let ok = self
                    .by_id(channel_id)
                    .is_some_and(|r| is_closing_state(r.channel().state()));
                if !ok {
                    return Err(OrderViolation::EmitBeforePersist {
                        index,
                        event: "ChannelClosing",
                        channel: *channel_id,
                    });
                }
            }
            ChannelEvent::ChannelClosed { channel_id, .. } => {
                let ok = self
                    .by_id(channel_id)
                    .is_some_and(|r| r.channel().state() == ChannelState::Closed);
                if !ok {
                    return Err(OrderViolation::EmitBeforePersist {
                        index,
                        event: "ChannelClosed",
                        channel: *channel_id,
                    });
                }
            }
            ChannelEvent::ChannelPending { channel_id, .. } => {
                let ok = self
                    .by_id(channel_id)
                    .is_some_and(|r| r.channel().state().is_durable());
                if !ok {
                    return Err(OrderViolation::EmitBeforePersist {
                        index,
                        event: "ChannelPending",
                        channel: *channel_id,
                    });
                }
            }
            ChannelEvent::ChannelReady { channel_id, .. } => {
                let ok = self
                    .by_id(channel_id)
                    .is_some_and(|r| r.channel().state() == ChannelState::Ready);
                if !ok {
                    return Err(OrderViolation::EmitBeforePersist {
                        index,
                        event: "ChannelReady",
                        channel: *channel_id,
                    });
                }
            }
            ChannelEvent::ChannelOpenFailed { .. } | ChannelEvent::ChannelFailed { .. } => {}
        }
        Ok(())
    }
}

/// The states in which a `ChannelClosing` may be announced.
fn is_closing_state(state: ChannelState) -> bool {
    matches!(
        state,
        ChannelState::ShuttingDown | ChannelState::Negotiating | ChannelState::Closing
    )
}

/// Checks one action list: every state-dependent send, broadcast or event must follow, in the
/// same list, the persist of the state it depends on — or `persisted`, the channel's last
/// record made durable by an earlier step (for retransmissions). See [`DurabilityChecker`].
pub fn check_action_order(
    actions: &[Action],
    persisted: Option<&ChannelRecord>,
) -> Result<(), OrderViolation> {
    DurabilityChecker::with_persisted(persisted).observe(actions)
}
