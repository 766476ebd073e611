//! The fundee's side of the open: `open_channel` → `accept_channel` → `funding_created` →
//! persist → `funding_signed`.

use bitcoin::OutPoint;

use super::config::{InboundParams, MAX_ACCEPTED_HTLCS, MIN_DUST_LIMIT_SAT};
use super::phase::{
    ChannelParams, Established, Funded, LockIn, Negotiated, OpenStep, Opening, Phase,
};
use super::validate::{validate_open, wire_channel_type};
use super::{
    Action, Channel, ChannelError, Context, DisconnectScope, FundingInfo, Role, SideParams,
};
use crate::wire::{
    AcceptChannel, ErrorMessage, FundingCreated, FundingSigned, Message, OpenChannel,
};

impl Channel {
    /// Starts an inbound open from a received `open_channel` (we are the fundee). On success
    /// the channel is in [`super::ChannelState::InboundAwaitingFundingCreated`] and the actions are
    /// `[Send(accept_channel)]`; a refusal is [`ChannelError::Rejected`] carrying the `error`
    /// to send (naming the field) and a disconnect.
    pub fn new_inbound(
        msg: &OpenChannel,
        params: InboundParams,
        ctx: &Context<'_>,
    ) -> Result<(Channel, Vec<Action>), ChannelError> {
        let config = ctx.config;
        let channel_type = match validate_open(msg, config) {
            Ok(channel_type) => channel_type,
            Err(error) => {
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
        };
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
        let params = ChannelParams {
            role: Role::Fundee,
            counterparty_node_id: params.counterparty_node_id,
            chain_hash: msg.chain_hash,
            temporary_channel_id: msg.temporary_channel_id,
            keys_index: params.keys_index,
            funding_sat: msg.funding_satoshis,
            push_msat: msg.push_msat,
            announce: msg.channel_flags & 1 == 1,
            channel_type,
            commitment_feerate_per_kw: msg.feerate_per_kw,
            funding_feerate_per_kw: 0,
            created_height: params.current_height,
            ours,
        };
        let negotiated = Negotiated {
            theirs,
            minimum_depth: config.our_minimum_depth.max(1),
        };
        let channel = Channel::from_parts(
            params,
            Phase::Opening(Opening::new(OpenStep::InboundAwaitingFundingCreated(
                negotiated,
            ))),
        );
        let accept = channel.accept_channel_message();
        Ok((channel, vec![Action::Send(Message::AcceptChannel(accept))]))
    }

    /// The `accept_channel` we send as fundee.
    pub fn accept_channel_message(&self) -> AcceptChannel {
        let ours = &self.params.ours;
        AcceptChannel {
            temporary_channel_id: self.params.temporary_channel_id,
            dust_limit_satoshis: ours.dust_limit_sat,
            max_htlc_value_in_flight_msat: ours.max_htlc_value_in_flight_msat,
            channel_reserve_satoshis: ours.channel_reserve_sat,
            htlc_minimum_msat: ours.htlc_minimum_msat,
            minimum_depth: self.minimum_depth().unwrap_or(1),
            to_self_delay: ours.to_self_delay,
            max_accepted_htlcs: ours.max_accepted_htlcs,
            keys: ours.keys,
            upfront_shutdown_script: ours.upfront_shutdown_script.clone(),
            // BOLT 2: the channel_type of `open_channel`, echoed.
            channel_type: Some(wire_channel_type(self.params.channel_type)),
        }
    }

    /// `funding_created` received: verify the funder's signature of our first commitment,
    /// persist (BOLT 2's fundee durable point), then send `funding_signed`.
    pub(crate) fn on_funding_created(
        &mut self,
        msg: &FundingCreated,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        let Phase::Opening(Opening {
            step: OpenStep::InboundAwaitingFundingCreated(negotiated),
            ..
        }) = &self.phase
        else {
            tracing::debug!(channel = %self.current_id(), state = ?self.state(), "ignoring funding_created");
            return Vec::new();
        };
        if msg.temporary_channel_id != self.params.temporary_channel_id {
            tracing::debug!(channel = %self.current_id(), "ignoring funding_created for another channel");
            return Vec::new();
        }
        let outpoint = OutPoint {
            txid: msg.funding_txid,
            vout: u32::from(msg.funding_output_index),
        };
        let theirs = &negotiated.theirs;
        if let Err(e) = self
            .params
            .verify_our_commitment(ctx, theirs, outpoint, &msg.signature)
        {
            return self.fail_transient(format!("invalid funding_created signature: {e}"), true);
        }
        let signature = match self.params.sign_their_commitment(ctx, theirs, outpoint) {
            Ok(sig) => sig,
            Err(e) => return self.fail_transient(format!("cannot sign commitment: {e}"), true),
        };
        let funding = FundingInfo { outpoint, tx: None };
        self.phase = Phase::Funded(Funded {
            lock: LockIn::AwaitingConfirmations,
            channel: Established::new(negotiated.clone(), funding, msg.signature),
            shutdown: None,
        });
        let Some(channel_id) = self.channel_id() else {
            return self.fail_transient("internal: channel id unavailable".into(), true);
        };
        let mut actions = vec![self.commit(self.pending_event().into_iter().collect())];
        actions.extend(self.watch_action());
        actions.push(Action::Send(Message::FundingSigned(FundingSigned {
            channel_id,
            signature,
        })));
        actions
    }
}
