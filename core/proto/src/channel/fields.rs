//! The flat field set of a version-1 channel record (one value per record field, as
//! `record.rs` lists them) and its mapping to and from the phase types. Writing flattens the
//! phase; reading checks that the fields make a phase — a combination no phase can hold (a
//! funded channel without the peer's signature, a reason on a live channel, a commitment
//! signature on an open in progress...) is a [`RecordError`], never a panic.

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;
use bitcoin::Transaction;

use super::phase::{
    Aborted, Announcement, ChannelParams, Established, Failed, Funded, LockIn, Negotiated,
    OpenStep, Opening, Phase,
};
use super::record::RecordError;
use super::{Channel, ChannelState, Confirmation, FundingInfo, Role, SideParams};
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
    pub(crate) funding: Option<FundingInfo>,
    pub(crate) their_commitment_sig: Option<Signature>,
    pub(crate) confirmation: Option<Confirmation>,
    pub(crate) channel_ready_sent: bool,
    pub(crate) their_second_point: Option<PublicKey>,
    pub(crate) announcement_sigs_sent: bool,
    pub(crate) their_announcement_sigs: Option<(Signature, Signature)>,
    pub(crate) announcement: Option<ChannelAnnouncement>,
    pub(crate) announcement_answered: bool,
    pub(crate) failure_reason: Option<String>,
    pub(crate) funding_spend: Option<Transaction>,
    pub(crate) waiting_since: Option<(ChannelState, u64)>,
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
            funding: channel.funding().cloned(),
            their_commitment_sig: channel.their_commitment_signature(),
            confirmation: channel.confirmation(),
            channel_ready_sent: channel.channel_ready_sent(),
            their_second_point: established.and_then(|e| e.their_second_point),
            announcement_sigs_sent: announcement.is_some_and(|a| a.sigs_sent),
            their_announcement_sigs: announcement.and_then(|a| a.theirs),
            announcement: announcement.and_then(|a| a.built.clone()),
            announcement_answered: announcement.is_some_and(|a| a.answered),
            failure_reason: channel.failure_reason().map(str::to_owned),
            funding_spend: channel.funding_spend().cloned(),
            waiting_since,
        }
    }

    /// The channel these fields describe, or why no phase holds them.
    pub(crate) fn into_channel(self) -> Result<Channel, RecordError> {
        let params = ChannelParams {
            role: self.role,
            counterparty_node_id: self.counterparty_node_id,
            chain_hash: self.chain_hash,
            temporary_channel_id: self.temporary_channel_id,
            keys_index: self.keys_index,
            funding_sat: self.funding_sat,
            push_msat: self.push_msat,
            announce: self.announce,
            commitment_feerate_per_kw: self.commitment_feerate_per_kw,
            funding_feerate_per_kw: self.funding_feerate_per_kw,
            created_height: self.created_height,
            ours: self.ours,
        };
        let durable_marks = [
            (self.their_commitment_sig.is_some(), "their_commitment_sig"),
            (self.confirmation.is_some(), "confirmation"),
            (self.channel_ready_sent, "channel_ready_sent"),
            (self.their_second_point.is_some(), "their_second_point"),
            (self.announcement_sigs_sent, "announcement_sigs_sent"),
            (
                self.their_announcement_sigs.is_some(),
                "their_announcement_sigs",
            ),
            (self.announcement.is_some(), "announcement"),
            (self.announcement_answered, "announcement_answered"),
        ];
        let state = self.state;
        if state != ChannelState::Failed && self.funding_spend.is_some() {
            // Only a failed channel records the spend of its funding output.
            return Err(RecordError::Invalid("funding_spend"));
        }
        let phase = match state {
            ChannelState::Aborted => {
                absent(&durable_marks)?;
                absent(&[
                    (self.minimum_depth.is_some(), "minimum_depth"),
                    (self.theirs.is_some(), "their params"),
                    (self.waiting_since.is_some(), "waiting"),
                ])?;
                Phase::Aborted(Aborted {
                    reason: required(self.failure_reason, "failure_reason")?,
                    funding: self.funding,
                })
            }
            ChannelState::OutboundAwaitingAccept
            | ChannelState::AwaitingFundingTx
            | ChannelState::AwaitingFundingSigned
            | ChannelState::InboundAwaitingFundingCreated => {
                absent(&durable_marks)?;
                absent(&[(self.failure_reason.is_some(), "failure_reason")])?;
                let fundee = state == ChannelState::InboundAwaitingFundingCreated;
                if fundee != (params.role == Role::Fundee) {
                    return Err(RecordError::Invalid("role"));
                }
                let waiting_since = match self.waiting_since {
                    None => None,
                    Some((s, since)) if s == state => Some(since),
                    Some(_) => return Err(RecordError::Invalid("waiting_state")),
                };
                let step = if state == ChannelState::OutboundAwaitingAccept {
                    absent(&[
                        (self.minimum_depth.is_some(), "minimum_depth"),
                        (self.theirs.is_some(), "their params"),
                        (self.funding.is_some(), "funding"),
                    ])?;
                    OpenStep::OutboundAwaitingAccept
                } else {
                    let negotiated = Negotiated {
                        theirs: required(self.theirs, "their params")?,
                        minimum_depth: required(self.minimum_depth, "minimum_depth")?,
                    };
                    match (state, self.funding) {
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
            | ChannelState::Failed
            | ChannelState::FailedUnfunded => {
                absent(&[(self.waiting_since.is_some(), "waiting")])?;
                let channel = Established {
                    negotiated: Negotiated {
                        theirs: required(self.theirs, "their params")?,
                        minimum_depth: required(self.minimum_depth, "minimum_depth")?,
                    },
                    funding: required(self.funding, "funding")?,
                    their_commitment_sig: required(
                        self.their_commitment_sig,
                        "their_commitment_sig",
                    )?,
                    confirmation: self.confirmation,
                    channel_ready_sent: self.channel_ready_sent,
                    their_second_point: self.their_second_point,
                    announcement: Announcement {
                        sigs_sent: self.announcement_sigs_sent,
                        theirs: self.their_announcement_sigs,
                        built: self.announcement,
                        answered: self.announcement_answered,
                    },
                };
                let lock = match state {
                    ChannelState::Failed | ChannelState::FailedUnfunded => None,
                    ChannelState::Ready => Some(LockIn::Ready),
                    ChannelState::AwaitingChannelReady => Some(LockIn::AwaitingChannelReady),
                    _ => Some(LockIn::AwaitingConfirmations),
                };
                match lock {
                    None => Phase::Failed(Failed {
                        channel,
                        reason: required(self.failure_reason, "failure_reason")?,
                        unfunded: state == ChannelState::FailedUnfunded,
                        funding_spend: self.funding_spend,
                    }),
                    Some(lock) => {
                        absent(&[(self.failure_reason.is_some(), "failure_reason")])?;
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
                        Phase::Funded(Funded { lock, channel })
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
