//! What `list_channels` shows of a peer task's channels: the views it keeps current after
//! every action list, and the state in words.

use bitcoin::Amount;

use super::peer::PeerTask;
use super::{lock, ChannelDetails};
use crate::proto::channel::{Channel, ChannelState, Role};

impl PeerTask {
    /// Records the channel's funding owner and its view for `list_channels`.
    pub(super) fn register(&self, i: usize) {
        let c = &self.channels[i];
        if let Some(f) = c.funding() {
            lock(&self.shared.fundings).insert(f.outpoint.txid, self.node_id);
        }
        let tip = self.shared.tip_height();
        let confirmations = c.confirmations(tip);
        let details = ChannelDetails {
            channel_id: c.current_id(),
            temporary_channel_id: c.temporary_channel_id(),
            counterparty_node_id: self.node_id,
            state: c.state(),
            status: status(c, confirmations),
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
