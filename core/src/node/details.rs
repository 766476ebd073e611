//! What `list_channels` shows of a peer task's channels: the views it keeps current after
//! every action list, and the state in words.

use bitcoin::Amount;

use super::peer::PeerTask;
use super::{lock, ChannelDetails};
use crate::proto::channel::{
    Channel, ChannelState, ClaimStatus, Claimable, CloseKind, ClosingStatus, Initiator, Role,
};

impl PeerTask {
    /// Records the channel's funding owner and its view for `list_channels`.
    pub(super) fn register(&self, i: usize) {
        let c = &self.channels[i];
        if let Some(f) = c.funding() {
            lock(&self.shared.fundings).insert(f.outpoint.txid, self.node_id);
        }
        let tip = self.shared.tip_height();
        let confirmations = c.confirmations(tip);
        let closing = closing_status(c, tip);
        let claimable = claimable(c, tip);
        let status = match &closing {
            // A channel closing on chain also says why (the force close's reason, the spend).
            Some(progress @ ClosingStatus::OnChain { .. }) if c.close_kind().is_some() => {
                let words = closing_words(progress, &claimable);
                match c.failure_reason() {
                    Some(reason) => format!("{words} ({reason})"),
                    None => words,
                }
            }
            Some(progress) => closing_words(progress, &claimable),
            None => status(c, confirmations),
        };
        let details = ChannelDetails {
            channel_id: c.current_id(),
            temporary_channel_id: c.temporary_channel_id(),
            counterparty_node_id: self.node_id,
            state: c.state(),
            status,
            is_outbound: c.role() == Role::Funder,
            channel_value: Amount::from_sat(c.funding_sat()),
            balance_msat: c.our_balance_msat(),
            funding_txo: c.funding().map(|f| f.outpoint),
            confirmations,
            confirmations_required: c.minimum_depth(),
            is_announced: c.is_public(),
            announcement_ready: c.channel_announcement().is_some(),
            anchors: c.channel_type().anchors,
            commitment_number: c.commitment_number(),
            commitment_feerate_per_kw: c.commitment_feerate_per_kw(),
            update_pending: c.update_pending(),
            closing,
            claimable,
            // Filled in by `list_channels` from the wallet's cached amount (`reserve.rs`).
            fee_bump: super::reserve::fee_bump(
                c.channel_type().anchors,
                c.commitment_feerate_per_kw(),
                false,
            ),
            fee_bump_words: String::new(),
        };
        let mut views = lock(&self.shared.views);
        views.remove(&c.temporary_channel_id());
        views.insert(c.current_id(), details);
    }
}

/// The state of a channel in words, for `list_channels`.
pub(super) fn status(c: &Channel, confirmations: u32) -> String {
    match c.state() {
        ChannelState::OutboundAwaitingAccept => "waiting for the peer to accept".to_string(),
        ChannelState::AwaitingFundingTx => "building the funding transaction".to_string(),
        ChannelState::AwaitingFundingSigned => "waiting for the peer's signature".to_string(),
        ChannelState::InboundAwaitingFundingCreated => "waiting for the funding".to_string(),
        ChannelState::AwaitingConfirmations => {
            let depth = c.minimum_depth().unwrap_or(1);
            if c.role() == Role::Fundee && confirmations == 0 {
                // We signed; only the funder can broadcast. If it never does (it failed
                // before receiving our funding_signed), BOLT 2 lets us forget the channel.
                let forget_at = c
                    .created_height()
                    .saturating_add(crate::proto::channel::FUNDEE_FUNDING_TIMEOUT_BLOCKS);
                format!(
                    "awaiting the funder's funding transaction (0/{depth} confirmations; \
                     forgotten at block {forget_at} if it never confirms)"
                )
            } else {
                format!(
                    "awaiting confirmations {}/{depth}",
                    confirmations.min(depth)
                )
            }
        }
        ChannelState::AwaitingChannelReady => "waiting for the peer's channel_ready".into(),
        ChannelState::Ready => "ready".to_string(),
        ChannelState::Failed => {
            format!("failed: {}", c.failure_reason().unwrap_or("unknown reason"))
        }
        ChannelState::FailedUnfunded => format!(
            "failed: {}; watching for a late funding until block {}",
            c.failure_reason().unwrap_or("unknown reason"),
            c.fundee_funding_deadline()
        ),
        ChannelState::Aborted => "open abandoned".to_string(),
        ChannelState::ShuttingDown | ChannelState::Negotiating => {
            use crate::proto::channel::ClosingStatus;
            match c.closing_status(0) {
                Some(ClosingStatus::ShutdownPending) => {
                    "closing: our shutdown waits for the peer (or for an update to finish)".into()
                }
                Some(ClosingStatus::Negotiating {
                    awaiting_peer: true,
                }) => "closing: waiting for the peer's fee".into(),
                Some(ClosingStatus::Negotiating { .. }) => "closing: negotiating the fee".into(),
                Some(ClosingStatus::OnChain { .. }) => {
                    "closing: cooperative close broadcast, waiting for it to confirm".into()
                }
                _ => "closing: waiting for the peer's shutdown".into(),
            }
        }
        ChannelState::Closing => format!(
            "closing on chain: {}",
            c.failure_reason().unwrap_or("unknown reason")
        ),
        ChannelState::Closed => "closed".to_string(),
    }
}

/// How far a closing channel is, `None` for one that is not closing.
pub(crate) fn closing_status(c: &Channel, tip: u32) -> Option<ClosingStatus> {
    c.closing_status(tip)
}

/// What a closing channel still gives back to us on chain, and when.
pub(crate) fn claimable(c: &Channel, tip: u32) -> Vec<Claimable> {
    c.claimable(tip)
}

/// How a close is named in `list_channels`.
fn kind_words(kind: CloseKind) -> &'static str {
    match kind {
        CloseKind::Cooperative {
            initiator: Initiator::Local,
        } => "cooperative, we asked",
        CloseKind::Cooperative {
            initiator: Initiator::Remote,
        } => "cooperative, the peer asked",
        CloseKind::LocalForce => "force-closed by us",
        CloseKind::RemoteForce => "force-closed by the peer",
        CloseKind::RemoteFuture => {
            "force-closed by the peer with a commitment newer than ours (we lost data)"
        }
        CloseKind::Revoked => "the peer broadcast a revoked commitment: penalty",
        CloseKind::Unknown => "funding spent by a transaction we cannot place",
    }
}

/// One claimable amount in words: "to_local 120000 sat spendable at block 1234".
fn claim_words(c: &Claimable) -> String {
    let what = match c.status {
        ClaimStatus::AwaitingConfirmations { confirmed_at: None } => {
            "paid to the wallet, unconfirmed".to_string()
        }
        ClaimStatus::AwaitingConfirmations {
            confirmed_at: Some(h),
        } => format!("paid to the wallet, resolved at block {h}"),
        ClaimStatus::Timelocked { height } => format!("spendable at block {height}"),
        ClaimStatus::Sweeping { confirmed_at: None } => "sweep broadcast, unconfirmed".into(),
        ClaimStatus::Sweeping {
            confirmed_at: Some(h),
        } => format!("swept at block {h}"),
        ClaimStatus::Uneconomical => "worth less than its sweep fee: not swept".into(),
    };
    format!("{} sat {what}", c.amount_sat)
}

/// A closing channel's progress in words, for `list_channels`: "closing: waiting for the
/// peer's fee", "force-closed by us: 120000 sat spendable at block 1234", "closed (cooperative,
/// we asked)".
pub(crate) fn closing_words(progress: &ClosingStatus, claimable: &[Claimable]) -> String {
    match progress {
        ClosingStatus::ShutdownPending => {
            "closing: our shutdown waits for the update in flight or the peer's reconnection".into()
        }
        ClosingStatus::ShuttingDown => {
            "closing: shutdown sent, waiting for the peer's shutdown or for updates to settle"
                .into()
        }
        ClosingStatus::Negotiating {
            awaiting_peer: true,
        } => "closing: waiting for the peer's fee".into(),
        ClosingStatus::Negotiating {
            awaiting_peer: false,
        } => "closing: negotiating the closing fee".into(),
        ClosingStatus::OnChain {
            kind,
            confirmed_at,
            done_at,
        } => {
            let mut words = vec![match confirmed_at {
                None => "closing transaction unconfirmed".to_string(),
                Some(h) => format!("closing transaction confirmed at block {h}"),
            }];
            words.extend(claimable.iter().map(claim_words));
            if let Some(h) = done_at {
                words.push(format!("closed at block {h}"));
            }
            format!("{}: {}", kind_words(*kind), words.join("; "))
        }
        ClosingStatus::Closed { kind } => format!("closed ({})", kind_words(*kind)),
    }
}

/// Whether `c` keeps its peer connected (redialled whenever the connection drops): a durable
/// channel does, until its close is on chain — a `shutdown` to retransmit or a fee to
/// negotiate still needs the peer, the resolution on chain does not. A failed channel keeps
/// its peer as before the closing work (its peer may still send what we need).
pub(crate) fn keeps_peer(c: &Channel, tip: u32) -> bool {
    c.state().is_durable()
        && !matches!(
            closing_status(c, tip),
            Some(ClosingStatus::OnChain { .. } | ClosingStatus::Closed { .. })
        )
}
