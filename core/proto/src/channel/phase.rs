//! One type per phase of a channel's life. What is valid in a phase is what its type holds: an
//! open in progress has no commitment signature, a funded channel always has the peer's
//! parameters, a funding outpoint, the peer's signature of our first commitment and a
//! `minimum_depth`, and only a failed (or aborted) one has a failure reason.
//!
//! ```text
//! Channel { params: ChannelParams (shared by every phase), phase: Phase }
//! Phase::Opening(Opening { step: OpenStep, waiting_since })   transient, never persisted
//!        OpenStep::{OutboundAwaitingAccept, AwaitingFundingTx, AwaitingFundingSigned,
//!                   InboundAwaitingFundingCreated}
//! Phase::Funded(Funded { lock: LockIn, channel: Established, shutdown })  durable; a
//!        cooperative close in progress is its `shutdown` (`shutdown.rs`, `negotiate.rs`)
//! Phase::Failed(Failed { channel: Established, reason, unfunded, funding_spend })  durable, terminal unless
//!        `unfunded` and the funding confirms after all
//! Phase::Aborted(Aborted { reason, funding })   a transient open failed: forgotten
//! Phase::Closing(Closing { channel: Established, reason, resolution })  durable: the funding
//!        is spent (or our commitment / closing tx broadcast), resolving on chain (resolve.rs)
//! Phase::Closed(Closing)   durable: every output resolved 6 deep (a reorg reopens it)
//! ```
//!
//! Transitions move the channel from one phase value to the next (`Channel::set_phase` and
//! friends); the record (`record.rs`) maps each phase to the version-1 fields and refuses a
//! field combination no phase can hold.

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;
use bitcoin::Transaction;

use super::commitments::Commitments;
pub(crate) use super::resolve::Closing;
use super::shutdown::{Scripts, Shutdown};
use super::{ChannelState, Confirmation, FundingInfo, Role, SideParams};
use crate::bolt3::ChannelType;
use crate::wire::{ChannelAnnouncement, ChannelId};

/// What every phase of a channel shares: who, what, and our own parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelParams {
    pub(super) role: Role,
    pub(super) counterparty_node_id: PublicKey,
    pub(super) chain_hash: ChainHash,
    pub(super) temporary_channel_id: ChannelId,
    pub(super) keys_index: u32,
    pub(super) funding_sat: u64,
    pub(super) push_msat: u64,
    pub(super) announce: bool,
    /// The commitment format negotiated through `channel_type` (record field 58).
    pub(super) channel_type: ChannelType,
    pub(super) commitment_feerate_per_kw: u32,
    pub(super) funding_feerate_per_kw: u32,
    pub(super) created_height: u32,
    pub(super) ours: SideParams,
}

/// Where a channel is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The open is in progress (transient).
    Opening(Opening),
    /// Durable and not failed.
    Funded(Funded),
    /// Durable and failed.
    Failed(Failed),
    /// A transient open failed; every input is ignored.
    Aborted(Aborted),
    /// The funding is spent, or about to be by a transaction we broadcast: resolving on
    /// chain (`resolve.rs`).
    Closing(Closing),
    /// Every output of the close is resolved 6 deep (a reorg brings it back to `Closing`).
    Closed(Closing),
}

/// An open in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Opening {
    pub(super) step: OpenStep,
    /// The first tick seen in this step (the open timeout counts from it); a new step starts
    /// without one.
    pub(super) waiting_since: Option<u64>,
}

impl Opening {
    pub(super) fn new(step: OpenStep) -> Self {
        Opening {
            step,
            waiting_since: None,
        }
    }
}

/// The steps of an open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpenStep {
    /// Funder: `open_channel` sent.
    OutboundAwaitingAccept,
    /// Funder: `accept_channel` validated, waiting for the wallet.
    AwaitingFundingTx(Negotiated),
    /// Funder: `funding_created` sent; `funding.tx` is always set.
    AwaitingFundingSigned {
        negotiated: Negotiated,
        funding: FundingInfo,
    },
    /// Fundee: `accept_channel` sent.
    InboundAwaitingFundingCreated(Negotiated),
}

impl OpenStep {
    pub(super) fn state(&self) -> ChannelState {
        match self {
            OpenStep::OutboundAwaitingAccept => ChannelState::OutboundAwaitingAccept,
            OpenStep::AwaitingFundingTx(_) => ChannelState::AwaitingFundingTx,
            OpenStep::AwaitingFundingSigned { .. } => ChannelState::AwaitingFundingSigned,
            OpenStep::InboundAwaitingFundingCreated(_) => {
                ChannelState::InboundAwaitingFundingCreated
            }
        }
    }

    pub(super) fn negotiated(&self) -> Option<&Negotiated> {
        match self {
            OpenStep::OutboundAwaitingAccept => None,
            OpenStep::AwaitingFundingTx(n)
            | OpenStep::InboundAwaitingFundingCreated(n)
            | OpenStep::AwaitingFundingSigned { negotiated: n, .. } => Some(n),
        }
    }
}

/// What `open_channel` / `accept_channel` settled: the peer's parameters and the depth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Negotiated {
    pub(super) theirs: SideParams,
    pub(super) minimum_depth: u32,
}

/// A durable channel that has not failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Funded {
    pub(super) lock: LockIn,
    pub(super) channel: Established,
    /// A cooperative close, once either side sent `shutdown` (`shutdown.rs`).
    pub(super) shutdown: Option<Box<Shutdown>>,
}

/// How far a funded channel is in locking in its funding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockIn {
    /// Not yet at `minimum_depth` (or reorged back).
    AwaitingConfirmations,
    /// Our `channel_ready` sent, waiting for the peer's.
    AwaitingChannelReady,
    /// Both `channel_ready` exchanged.
    Ready,
}

impl LockIn {
    pub(super) fn state(self) -> ChannelState {
        match self {
            LockIn::AwaitingConfirmations => ChannelState::AwaitingConfirmations,
            LockIn::AwaitingChannelReady => ChannelState::AwaitingChannelReady,
            LockIn::Ready => ChannelState::Ready,
        }
    }
}

/// What a durable channel holds, failed or not: both sides' parameters, the funding, the
/// peer's signature of our first commitment, the chain and `channel_ready` marks and the
/// announcement state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Established {
    pub(super) negotiated: Negotiated,
    pub(super) funding: FundingInfo,
    /// The peer's signature of our first commitment transaction.
    pub(super) their_commitment_sig: Signature,
    pub(super) confirmation: Option<Confirmation>,
    pub(super) channel_ready_sent: bool,
    /// The peer's `second_per_commitment_point`, once its `channel_ready` arrived.
    pub(super) their_second_point: Option<PublicKey>,
    pub(super) announcement: Announcement,
    /// The commitment updates since the open (`commitments.rs`).
    pub(super) commits: Commits,
}

/// A durable channel's commitments: untouched since the open — both sides at number 0, which
/// the open's own fields describe (the peer's signature, their second point) — or updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Commits {
    /// No update yet.
    Initial,
    /// At least one update was made or started.
    Updated(Box<Commitments>),
}

impl Established {
    pub(super) fn new(
        negotiated: Negotiated,
        funding: FundingInfo,
        their_commitment_sig: Signature,
    ) -> Self {
        Established {
            negotiated,
            funding,
            their_commitment_sig,
            confirmation: None,
            channel_ready_sent: false,
            their_second_point: None,
            announcement: Announcement::default(),
            commits: Commits::Initial,
        }
    }
}

/// Public channels: the `announcement_signatures` exchange (BOLT 7).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Announcement {
    /// Our `announcement_signatures` was sent (persisted mark).
    pub(super) sigs_sent: bool,
    /// The peer's half proof (node signature, bitcoin signature).
    pub(super) theirs: Option<(Signature, Signature)>,
    /// The `channel_announcement`, once both halves are in and verified.
    pub(super) built: Option<ChannelAnnouncement>,
    /// Whether our half already went out on the current connection (reset on every
    /// (re)connection).
    pub(super) answered: bool,
}

/// A durable channel that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failed {
    pub(super) channel: Established,
    pub(super) reason: String,
    /// A fundee failed before its funding was ever seen ([`ChannelState::FailedUnfunded`]):
    /// still watched, revived if it confirms.
    pub(super) unfunded: bool,
    /// The transaction that spent the funding output, once seen (`spent.rs`); never set on
    /// an unfunded one (a spend ends the wait).
    pub(super) funding_spend: Option<Transaction>,
}

/// A transient open that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Aborted {
    pub(super) reason: String,
    /// The funding the open had reached (`funding_created` sent), if any: the channel keeps
    /// the id the peer and the driver knew it by.
    pub(super) funding: Option<FundingInfo>,
}

impl Phase {
    pub(super) fn state(&self) -> ChannelState {
        match self {
            Phase::Opening(o) => o.step.state(),
            Phase::Funded(Funded {
                shutdown: Some(s), ..
            }) => match s.scripts {
                Scripts::Both { .. } => ChannelState::Negotiating,
                _ => ChannelState::ShuttingDown,
            },
            Phase::Funded(f) => f.lock.state(),
            Phase::Failed(f) if f.unfunded => ChannelState::FailedUnfunded,
            Phase::Failed(_) => ChannelState::Failed,
            Phase::Aborted(_) => ChannelState::Aborted,
            Phase::Closing(_) => ChannelState::Closing,
            Phase::Closed(_) => ChannelState::Closed,
        }
    }

    /// The durable part, failed or not.
    pub(super) fn established(&self) -> Option<&Established> {
        match self {
            Phase::Funded(f) => Some(&f.channel),
            Phase::Failed(f) => Some(&f.channel),
            Phase::Closing(c) | Phase::Closed(c) => Some(&c.channel),
            Phase::Opening(_) | Phase::Aborted(_) => None,
        }
    }

    pub(super) fn established_mut(&mut self) -> Option<&mut Established> {
        match self {
            Phase::Funded(f) => Some(&mut f.channel),
            Phase::Failed(f) => Some(&mut f.channel),
            Phase::Closing(c) | Phase::Closed(c) => Some(&mut c.channel),
            Phase::Opening(_) | Phase::Aborted(_) => None,
        }
    }

    pub(super) fn negotiated(&self) -> Option<&Negotiated> {
        match self {
            Phase::Opening(o) => o.step.negotiated(),
            Phase::Funded(_) | Phase::Failed(_) | Phase::Closing(_) | Phase::Closed(_) => {
                self.established().map(|e| &e.negotiated)
            }
            Phase::Aborted(_) => None,
        }
    }

    pub(super) fn funding(&self) -> Option<&FundingInfo> {
        match self {
            Phase::Opening(Opening {
                step: OpenStep::AwaitingFundingSigned { funding, .. },
                ..
            }) => Some(funding),
            Phase::Aborted(a) => a.funding.as_ref(),
            _ => self.established().map(|e| &e.funding),
        }
    }
}
