//! The fundee's side of the open: `open_channel` → `accept_channel` → `funding_created` →
//! persist → `funding_signed`.

use bitcoin::OutPoint;

use super::config::{InboundParams, MAX_ACCEPTED_HTLCS, MIN_DUST_LIMIT_SAT};
use super::validate::{supported_channel_type, validate_open};
use super::{
    Action, Channel, ChannelError, ChannelState, Context, DisconnectScope, FundingInfo, Role,
    SideParams,
};
use crate::wire::{
    AcceptChannel, ErrorMessage, FundingCreated, FundingSigned, Message, OpenChannel,
};

impl Channel {
    /// Starts an inbound open from a received `open_channel` (we are the fundee). On success
    /// the channel is in [`ChannelState::InboundAwaitingFundingCreated`] and the actions are
    /// `[Send(accept_channel)]`; a refusal is [`ChannelError::Rejected`] carrying the `error`
    /// to send (naming the field) and a disconnect.
    pub fn new_inbound(
        msg: &OpenChannel,
        params: InboundParams,
        ctx: &Context<'_>,
    ) -> Result<(Channel, Vec<Action>), ChannelError> {
        let config = ctx.config;
        if let Err(error) = validate_open(msg, config) {
            let actions = vec![
                Action::Send(Message::Error(ErrorMessage::new(
                    msg.temporary_channel_id,
                    &error.to_string(),
                ))),
                Action::Disconnect {
                    counterparty_node_id: params.counterparty_node_id,
                    reason: error.to_string(),
                    scope: DisconnectScope::UnlessShared,
                },
            ];
            return Err(ChannelError::Rejected { error, actions });
        }
        let keys = ctx.announced_keys()?;
        // Our dust limit must not exceed the reserve the funder asked us to keep.
        let dust_limit_sat = config
            .our_dust_limit_sat
            .max(MIN_DUST_LIMIT_SAT)
            .min(msg.channel_reserve_satoshis);
        let ours = SideParams {
            dust_limit_sat,
            max_htlc_value_in_flight_msat: config.max_in_flight_for(msg.funding_satoshis),
            // Our reserve for the funder must cover its dust limit and ours.
            channel_reserve_sat: config.reserve_for(
                msg.funding_satoshis,
                msg.dust_limit_satoshis.max(dust_limit_sat),
            ),
            htlc_minimum_msat: config.our_htlc_minimum_msat,
            to_self_delay: config.our_to_self_delay,
            max_accepted_htlcs: config.our_max_accepted_htlcs.clamp(1, MAX_ACCEPTED_HTLCS),
            keys,
            upfront_shutdown_script: Some(Vec::new()),
        };
        let theirs = SideParams {
            dust_limit_sat: msg.dust_limit_satoshis,
            max_htlc_value_in_flight_msat: msg.max_htlc_value_in_flight_msat,
            channel_reserve_sat: msg.channel_reserve_satoshis,
            htlc_minimum_msat: msg.htlc_minimum_msat,
            to_self_delay: msg.to_self_delay,
            max_accepted_htlcs: msg.max_accepted_htlcs,
            keys: msg.keys,
            upfront_shutdown_script: msg.upfront_shutdown_script.clone(),
        };
        let channel = Channel {
            role: Role::Fundee,
            state: ChannelState::InboundAwaitingFundingCreated,
            counterparty_node_id: params.counterparty_node_id,
            chain_hash: msg.chain_hash,
            temporary_channel_id: msg.temporary_channel_id,
            keys_index: params.keys_index,
            funding_sat: msg.funding_satoshis,
            push_msat: msg.push_msat,
            announce: msg.channel_flags & 1 == 1,
            commitment_feerate_per_kw: msg.feerate_per_kw,
            funding_feerate_per_kw: 0,
            created_height: params.current_height,
            minimum_depth: Some(config.our_minimum_depth.max(1)),
            ours,
            theirs: Some(theirs),
            funding: None,
            their_commitment_sig: None,
            confirmation: None,
            channel_ready_sent: false,
            their_second_point: None,
            announcement_sigs_sent: false,
            their_announcement_sigs: None,
            announcement: None,
            announcement_answered: false,
            failure_reason: None,
            funding_spend: None,
            waiting_since: None,
        };
        let accept = channel.accept_channel_message();
        Ok((channel, vec![Action::Send(Message::AcceptChannel(accept))]))
    }

    /// The `accept_channel` we send as fundee.
    pub fn accept_channel_message(&self) -> AcceptChannel {
        AcceptChannel {
            temporary_channel_id: self.temporary_channel_id,
            dust_limit_satoshis: self.ours.dust_limit_sat,
            max_htlc_value_in_flight_msat: self.ours.max_htlc_value_in_flight_msat,
            channel_reserve_satoshis: self.ours.channel_reserve_sat,
            htlc_minimum_msat: self.ours.htlc_minimum_msat,
            minimum_depth: self.minimum_depth.unwrap_or(1),
            to_self_delay: self.ours.to_self_delay,
            max_accepted_htlcs: self.ours.max_accepted_htlcs,
            keys: self.ours.keys,
            upfront_shutdown_script: self.ours.upfront_shutdown_script.clone(),
            channel_type: Some(supported_channel_type()),
        }
    }

    /// `funding_created` received: verify the funder's signature of our first commitment,
    /// persist (BOLT 2's fundee durable point), then send `funding_signed`.
    pub(crate) fn on_funding_created(
        &mut self,
        msg: &FundingCreated,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        if self.state != ChannelState::InboundAwaitingFundingCreated
            || msg.temporary_channel_id != self.temporary_channel_id
        {
            tracing::debug!(channel = %self.current_id(), state = ?self.state, "ignoring funding_created");
            return Vec::new();
        }
        self.funding = Some(FundingInfo {
            outpoint: OutPoint {
                txid: msg.funding_txid,
                vout: u32::from(msg.funding_output_index),
            },
            tx: None,
        });
        if let Err(e) = self.verify_our_commitment(ctx, &msg.signature) {
            self.funding = None;
            return self.fail_transient(format!("invalid funding_created signature: {e}"), true);
        }
        let signature = match self.sign_their_commitment(ctx) {
            Ok(sig) => sig,
            Err(e) => {
                self.funding = None;
                return self.fail_transient(format!("cannot sign commitment: {e}"), true);
            }
        };
        self.their_commitment_sig = Some(msg.signature);
        self.state = ChannelState::AwaitingConfirmations;
        let Some(channel_id) = self.channel_id() else {
            return self.fail_transient("internal: channel id unavailable".into(), true);
        };
        let mut actions = vec![Action::Persist(self.to_record())];
        actions.extend(self.watch_action());
        actions.push(Action::Send(Message::FundingSigned(FundingSigned {
            channel_id,
            signature,
        })));
        actions.extend(self.pending_event());
        actions
    }
}
