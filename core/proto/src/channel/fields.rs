//! The flat field set of a version-1 channel record (one value per record field), its
//! layout (the record types and forms, declared once for both directions: a struct field
//! missing from the layout, from [`Fields::of`] or from [`Fields::into_channel`] does not
//! compile) and its mapping to and from the phase types. Writing flattens the
//! phase; reading checks that the fields make a phase — a combination no phase can hold (a
//! funded channel without the peer's signature, a reason on a live channel, a commitment
//! signature on an open in progress...) is a [`RecordError`], never a panic.

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{OutPoint, Transaction};

use super::commitments::{Commitments, CommitmentsForm};
use super::phase::{
    Aborted, Announcement, ChannelParams, Commits, Established, Failed, Funded, LockIn, Negotiated,
    OpenStep, Opening, Phase,
};
use super::record::{
    CommitmentType, ConsensusTx, FundeeFlag, Marker, RecordError, SignaturePair, StateByte, Utf8,
    Waiting,
};
use super::resolve::{Closing, Resolution, Tracked};
use super::resolve_cpfp::{AnchorCpfp, CpfpForm};
use super::resolve_record::{CloseKindByte, TrackedList};
use super::shutdown::{Scripts, ShutdownForm, ShutdownState};
use super::{Channel, ChannelState, CloseKind, Confirmation, FundingInfo, Role, SideParams};
use crate::bolt3::ChannelType;
use crate::wire::{ChannelAnnouncement, ChannelId};

/// Every field of a version-1 record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fields {
    pub(crate) role: Role,
    pub(crate) state: ChannelState,
    pub(crate) counterparty_node_id: PublicKey,
    pub(crate) chain_hash: ChainHash,
    pub(crate) temporary_channel_id: ChannelId,
    pub(crate) keys_index: u32,
    pub(crate) funding_sat: u64,
    pub(crate) push_msat: u64,
    pub(crate) announce: bool,
    pub(crate) commitment_feerate_per_kw: u32,
    pub(crate) funding_feerate_per_kw: u32,
    pub(crate) created_height: u32,
    pub(crate) minimum_depth: Option<u32>,
    pub(crate) ours: SideParams,
    pub(crate) theirs: Option<SideParams>,
    pub(crate) funding_outpoint: Option<OutPoint>,
    /// Read only with an outpoint (a record with a transaction but no outpoint has none).
    pub(crate) funding_tx: Option<Transaction>,
    pub(crate) their_commitment_sig: Option<Signature>,
    pub(crate) confirmation: Option<Confirmation>,
    pub(crate) channel_ready_sent: bool,
    pub(crate) their_second_point: Option<PublicKey>,
    pub(crate) failure_reason: Option<String>,
    /// Always written; a record without it reads as `false`.
    pub(crate) announcement_sigs_sent: Option<bool>,
    pub(crate) their_announcement_sigs: Option<(Signature, Signature)>,
    pub(crate) announcement: Option<ChannelAnnouncement>,
    /// Always written; a record without it reads as `false`.
    pub(crate) announcement_answered: Option<bool>,
    pub(crate) waiting_since: Option<(ChannelState, u64)>,
    /// Set (empty) on a [`ChannelState::FailedUnfunded`] channel, whose `state` is stored as
    /// `Failed`.
    pub(crate) failed_unfunded: Option<()>,
    pub(crate) funding_spend: Option<Transaction>,
    /// The commitment format, written only when it is not `option_static_remotekey`; a
    /// record without it reads as static_remotekey (every record before anchors).
    pub(crate) channel_type: Option<ChannelType>,
    /// The commitment state once a channel was updated (even: a build that does not know it
    /// must not read such a record as a channel at commitment 0).
    pub(crate) commitments: Option<Commitments>,
    /// A cooperative close in progress (states ShuttingDown and Negotiating), with the
    /// lock-in it interrupted.
    pub(crate) shutdown: Option<ShutdownState>,
    /// A closing (or closed) channel: how it closes (`resolve_record.rs`).
    pub(crate) close_kind: Option<CloseKind>,
    /// The transaction that spends (or will spend) the funding.
    pub(crate) closing_tx: Option<Transaction>,
    /// Its confirmation height.
    pub(crate) closing_height: Option<u32>,
    /// The outputs of it that are ours.
    pub(crate) tracked: Option<Vec<Tracked>>,
    /// The CPFP child of our unconfirmed commitment (`resolve_cpfp.rs`).
    pub(crate) cpfp: Option<AnchorCpfp>,
}

// The record after its version byte. Record types strictly increase (checked at compile
// time); see the table in `record.rs` for what each holds.
crate::wire_message! {
    struct Fields {}
    tlvs {
        0 => role: required FundeeFlag,
        2 => state: required StateByte,
        4 => counterparty_node_id: required PublicKey,
        6 => chain_hash: required ChainHash,
        8 => temporary_channel_id: required ChannelId,
        10 => keys_index: required u32,
        12 => funding_sat: required u64,
        14 => push_msat: required u64,
        16 => announce: required bool,
        18 => commitment_feerate_per_kw: required u32,
        20 => funding_feerate_per_kw: required u32,
        22 => created_height: required u32,
        24 => minimum_depth: option u32,
        26 => ours: required SideParams,
        28 => theirs: option SideParams,
        30 => funding_outpoint: option OutPoint,
        32 => funding_tx: option ConsensusTx,
        34 => their_commitment_sig: option Signature,
        36 => confirmation: option Confirmation,
        38 => channel_ready_sent: required bool,
        40 => their_second_point: option PublicKey,
        42 => failure_reason: option Utf8,
        44 => announcement_sigs_sent: option bool,
        46 => their_announcement_sigs: option SignaturePair,
        48 => announcement: option ChannelAnnouncement,
        50 => announcement_answered: option bool,
        53 => waiting_since: option Waiting,
        55 => failed_unfunded: option Marker,
        57 => funding_spend: option ConsensusTx,
        58 => channel_type: option CommitmentType,
        60 => commitments: option CommitmentsForm,
        62 => shutdown: option ShutdownForm,
        70 => close_kind: option CloseKindByte,
        72 => closing_tx: option ConsensusTx,
        74 => closing_height: option u32,
        76 => tracked: option TrackedList,
        78 => cpfp: option CpfpForm,
    }
}

fn required<T>(v: Option<T>, name: &'static str) -> Result<T, RecordError> {
    v.ok_or(RecordError::Missing(name))
}

/// Refuses the first field of `present` that is set (the phase cannot hold it).
fn absent(present: &[(bool, &'static str)]) -> Result<(), RecordError> {
    match present.iter().find(|(set, _)| *set) {
        Some((_, name)) => Err(RecordError::Invalid(name)),
        None => Ok(()),
    }
}

impl Fields {
    /// The fields of `channel`'s phase.
    pub(crate) fn of(channel: &Channel) -> Fields {
        let p = channel.params();
        let state = channel.state();
        let established = channel.phase().established();
        let announcement = established.map(|e| &e.announcement);
        let closing = channel.closing();
        let waiting_since = match channel.phase() {
            Phase::Opening(o) => o.waiting_since.map(|t| (state, t)),
            _ => None,
        };
        Fields {
            role: p.role,
            state,
            counterparty_node_id: p.counterparty_node_id,
            chain_hash: p.chain_hash,
            temporary_channel_id: p.temporary_channel_id,
            keys_index: p.keys_index,
            funding_sat: p.funding_sat,
            push_msat: p.push_msat,
            announce: p.announce,
            commitment_feerate_per_kw: p.commitment_feerate_per_kw,
            funding_feerate_per_kw: p.funding_feerate_per_kw,
            created_height: p.created_height,
            minimum_depth: channel.minimum_depth(),
            ours: p.ours.clone(),
            theirs: channel.their_params().cloned(),
            funding_outpoint: channel.funding().map(|f| f.outpoint),
            funding_tx: channel.funding().and_then(|f| f.tx.clone()),
            their_commitment_sig: channel.their_commitment_signature(),
            confirmation: channel.confirmation(),
            channel_ready_sent: channel.channel_ready_sent(),
            their_second_point: established.and_then(|e| e.their_second_point),
            failure_reason: channel.failure_reason().map(str::to_owned),
            announcement_sigs_sent: Some(announcement.is_some_and(|a| a.sigs_sent)),
            their_announcement_sigs: announcement.and_then(|a| a.theirs),
            announcement: announcement.and_then(|a| a.built.clone()),
            announcement_answered: Some(announcement.is_some_and(|a| a.answered)),
            waiting_since,
            failed_unfunded: (state == ChannelState::FailedUnfunded).then_some(()),
            funding_spend: match channel.phase() {
                Phase::Failed(f) => f.funding_spend.clone(),
                _ => None,
            },
            channel_type: (p.channel_type != ChannelType::STATIC_REMOTE_KEY)
                .then_some(p.channel_type),
            commitments: match established.map(|e| &e.commits) {
                Some(Commits::Updated(c)) => Some((**c).clone()),
                _ => None,
            },
            shutdown: match channel.phase() {
                Phase::Funded(Funded {
                    lock,
                    shutdown: Some(s),
                    ..
                }) => Some(ShutdownState {
                    lock: *lock,
                    shutdown: (**s).clone(),
                }),
                // A closing channel keeps the negotiation it came from (a lock is meaningless
                // there: written as Ready, read back as it was).
                Phase::Closing(c) | Phase::Closed(c) => c.coop.as_ref().map(|s| ShutdownState {
                    lock: LockIn::Ready,
                    shutdown: (**s).clone(),
                }),
                _ => None,
            },
            close_kind: closing.map(|c| c.resolution.kind),
            closing_tx: closing.map(|c| c.resolution.spend.clone()),
            closing_height: closing.and_then(|c| c.resolution.confirmed_at),
            tracked: closing.map(|c| c.resolution.outputs.clone()),
            cpfp: closing.and_then(|c| c.resolution.cpfp.clone()),
        }
    }

    /// The channel these fields describe, or why no phase holds them.
    pub(crate) fn into_channel(self) -> Result<Channel, RecordError> {
        let Fields {
            role,
            state,
            counterparty_node_id,
            chain_hash,
            temporary_channel_id,
            keys_index,
            funding_sat,
            push_msat,
            announce,
            commitment_feerate_per_kw,
            funding_feerate_per_kw,
            created_height,
            minimum_depth,
            ours,
            theirs,
            funding_outpoint,
            funding_tx,
            their_commitment_sig,
            confirmation,
            channel_ready_sent,
            their_second_point,
            failure_reason,
            announcement_sigs_sent,
            their_announcement_sigs,
            announcement,
            announcement_answered,
            waiting_since,
            failed_unfunded,
            funding_spend,
            channel_type,
            commitments,
            shutdown,
            close_kind,
            closing_tx,
            closing_height,
            tracked,
            cpfp,
        } = self;
        let funding = match funding_outpoint {
            None => None,
            Some(outpoint) if u16::try_from(outpoint.vout).is_err() => {
                return Err(RecordError::Invalid("outpoint"))
            }
            Some(outpoint) => Some(FundingInfo {
                outpoint,
                tx: funding_tx,
            }),
        };
        let state = match (failed_unfunded, state) {
            (None, state) => state,
            (Some(()), ChannelState::Failed) => ChannelState::FailedUnfunded,
            (Some(()), _) => return Err(RecordError::Invalid("failed_unfunded")),
        };
        let announcement_sigs_sent = announcement_sigs_sent.unwrap_or(false);
        let announcement_answered = announcement_answered.unwrap_or(false);
        let params = ChannelParams {
            role,
            counterparty_node_id,
            chain_hash,
            temporary_channel_id,
            keys_index,
            funding_sat,
            push_msat,
            announce,
            channel_type: channel_type.unwrap_or(ChannelType::STATIC_REMOTE_KEY),
            commitment_feerate_per_kw,
            funding_feerate_per_kw,
            created_height,
            ours,
        };
        let durable_marks = [
            (their_commitment_sig.is_some(), "their_commitment_sig"),
            (confirmation.is_some(), "confirmation"),
            (channel_ready_sent, "channel_ready_sent"),
            (their_second_point.is_some(), "their_second_point"),
            (announcement_sigs_sent, "announcement_sigs_sent"),
            (their_announcement_sigs.is_some(), "their_announcement_sigs"),
            (announcement.is_some(), "announcement"),
            (announcement_answered, "announcement_answered"),
        ];
        let closes = matches!(state, ChannelState::Closing | ChannelState::Closed);
        let shutting_down = matches!(
            state,
            ChannelState::ShuttingDown | ChannelState::Negotiating
        );
        if (shutting_down && shutdown.is_none())
            || (shutdown.is_some() && !(shutting_down || closes))
            || (closes && shutdown.as_ref().is_some_and(|s| s.lock != LockIn::Ready))
        {
            return Err(RecordError::Invalid("shutdown"));
        }
        if commitments.is_some()
            && !(closes || matches!(state, ChannelState::Ready | ChannelState::Failed))
            && !shutdown.as_ref().is_some_and(|s| s.lock == LockIn::Ready)
        {
            // Updates start once both `channel_ready` were exchanged.
            return Err(RecordError::Invalid("commitments"));
        }
        if state != ChannelState::Failed && funding_spend.is_some() {
            // Only a failed channel records the spend of its funding output.
            return Err(RecordError::Invalid("funding_spend"));
        }
        if !closes {
            // Only a closing channel holds a resolution.
            absent(&[
                (close_kind.is_some(), "close_kind"),
                (closing_tx.is_some(), "closing_tx"),
                (closing_height.is_some(), "closing_height"),
                (tracked.is_some(), "tracked"),
                (cpfp.is_some(), "cpfp"),
            ])?;
        }
        let phase = match state {
            ChannelState::Aborted => {
                absent(&durable_marks)?;
                absent(&[
                    (minimum_depth.is_some(), "minimum_depth"),
                    (theirs.is_some(), "their params"),
                    (waiting_since.is_some(), "waiting"),
                ])?;
                Phase::Aborted(Aborted {
                    reason: required(failure_reason, "failure_reason")?,
                    funding,
                })
            }
            ChannelState::OutboundAwaitingAccept
            | ChannelState::AwaitingFundingTx
            | ChannelState::AwaitingFundingSigned
            | ChannelState::InboundAwaitingFundingCreated => {
                absent(&durable_marks)?;
                absent(&[(failure_reason.is_some(), "failure_reason")])?;
                let fundee = state == ChannelState::InboundAwaitingFundingCreated;
                if fundee != (params.role == Role::Fundee) {
                    return Err(RecordError::Invalid("role"));
                }
                let waiting_since = match waiting_since {
                    None => None,
                    Some((s, since)) if s == state => Some(since),
                    Some(_) => return Err(RecordError::Invalid("waiting_state")),
                };
                let step = if state == ChannelState::OutboundAwaitingAccept {
                    absent(&[
                        (minimum_depth.is_some(), "minimum_depth"),
                        (theirs.is_some(), "their params"),
                        (funding.is_some(), "funding"),
                    ])?;
                    OpenStep::OutboundAwaitingAccept
                } else {
                    let negotiated = Negotiated {
                        theirs: required(theirs, "their params")?,
                        minimum_depth: required(minimum_depth, "minimum_depth")?,
                    };
                    match (state, funding) {
                        (ChannelState::AwaitingFundingSigned, Some(funding)) => {
                            if funding.tx.is_none() {
                                return Err(RecordError::Missing("funding_tx"));
                            }
                            OpenStep::AwaitingFundingSigned {
                                negotiated,
                                funding,
                            }
                        }
                        (ChannelState::AwaitingFundingSigned, None) => {
                            return Err(RecordError::Missing("funding"))
                        }
                        (_, Some(_)) => return Err(RecordError::Invalid("funding")),
                        (ChannelState::AwaitingFundingTx, None) => {
                            OpenStep::AwaitingFundingTx(negotiated)
                        }
                        (_, None) => OpenStep::InboundAwaitingFundingCreated(negotiated),
                    }
                };
                Phase::Opening(Opening {
                    step,
                    waiting_since,
                })
            }
            ChannelState::AwaitingConfirmations
            | ChannelState::AwaitingChannelReady
            | ChannelState::Ready
            | ChannelState::ShuttingDown
            | ChannelState::Negotiating
            | ChannelState::Failed
            | ChannelState::FailedUnfunded
            | ChannelState::Closing
            | ChannelState::Closed => {
                absent(&[(waiting_since.is_some(), "waiting")])?;
                let channel = Established {
                    negotiated: Negotiated {
                        theirs: required(theirs, "their params")?,
                        minimum_depth: required(minimum_depth, "minimum_depth")?,
                    },
                    funding: required(funding, "funding")?,
                    their_commitment_sig: required(their_commitment_sig, "their_commitment_sig")?,
                    confirmation,
                    channel_ready_sent,
                    their_second_point,
                    announcement: Announcement {
                        sigs_sent: announcement_sigs_sent,
                        theirs: their_announcement_sigs,
                        built: announcement,
                        answered: announcement_answered,
                    },
                    commits: match commitments {
                        Some(c) => Commits::Updated(Box::new(c)),
                        None => Commits::Initial,
                    },
                };
                if closes {
                    let closing = Closing {
                        channel,
                        coop: shutdown.map(|s| Box::new(s.shutdown)),
                        reason: required(failure_reason, "failure_reason")?,
                        resolution: Resolution {
                            kind: required(close_kind, "close_kind")?,
                            spend: required(closing_tx, "closing_tx")?,
                            confirmed_at: closing_height,
                            outputs: required(tracked, "tracked")?,
                            cpfp,
                        },
                    };
                    let phase = if state == ChannelState::Closed {
                        Phase::Closed(closing)
                    } else {
                        Phase::Closing(closing)
                    };
                    return Ok(Channel::from_parts(params, phase));
                }
                let lock = match (state, &shutdown) {
                    (_, Some(s)) => Some(s.lock),
                    (ChannelState::Failed | ChannelState::FailedUnfunded, _) => None,
                    (ChannelState::Ready, _) => Some(LockIn::Ready),
                    (ChannelState::AwaitingChannelReady, _) => Some(LockIn::AwaitingChannelReady),
                    _ => Some(LockIn::AwaitingConfirmations),
                };
                match lock {
                    None => Phase::Failed(Failed {
                        channel,
                        reason: required(failure_reason, "failure_reason")?,
                        unfunded: state == ChannelState::FailedUnfunded,
                        funding_spend,
                    }),
                    Some(lock) => {
                        absent(&[(failure_reason.is_some(), "failure_reason")])?;
                        let ready_sent = channel.channel_ready_sent;
                        let received = channel.their_second_point.is_some();
                        match lock {
                            LockIn::AwaitingChannelReady if !ready_sent => {
                                return Err(RecordError::Missing("channel_ready_sent"))
                            }
                            LockIn::Ready if !(ready_sent && received) => {
                                return Err(RecordError::Missing("channel_ready marks"))
                            }
                            _ => {}
                        }
                        let shutdown = shutdown.map(|s| Box::new(s.shutdown));
                        if let Some(s) = &shutdown {
                            let both = matches!(s.scripts, Scripts::Both { .. });
                            if both != (state == ChannelState::Negotiating) {
                                return Err(RecordError::Invalid("shutdown scripts"));
                            }
                        }
                        Phase::Funded(Funded {
                            lock,
                            channel,
                            shutdown,
                        })
                    }
                }
            }
        };
        let channel = Channel::from_parts(params, phase);
        if channel.state() == ChannelState::FailedUnfunded && !channel.funding_unseen() {
            return Err(RecordError::Invalid("failed_unfunded"));
        }
        Ok(channel)
    }
}
