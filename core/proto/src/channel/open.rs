//! The funder's side of the open: `open_channel` → `accept_channel` → funding transaction →
//! `funding_created` → `funding_signed` → persist, broadcast.

use bitcoin::{OutPoint, Transaction};

use super::config::OutboundParams;
use super::phase::{
    ChannelParams, Established, Funded, LockIn, Negotiated, OpenStep, Opening, Phase,
};
use super::validate::{
    proposed_channel_type, validate_accept, validate_command, wire_channel_type, SentOpen,
};
use super::{
    broadcast_funding, Action, Channel, ChannelError, ChannelEvent, ChannelState, Context,
    FundingInfo, Role, SideParams,
};
use crate::channel::config::MAX_ACCEPTED_HTLCS;
use crate::channel::config::MIN_DUST_LIMIT_SAT;
use crate::wire::{AcceptChannel, FundingCreated, FundingSigned, Message, OpenChannel};

impl Channel {
    /// Starts an outbound open (we fund): returns the channel, in
    /// [`ChannelState::OutboundAwaitingAccept`], and `[Send(open_channel)]`.
    ///
    /// Fee rates below 253 sat/kw are raised to it (and to the configured floor).
    pub fn new_outbound(
        params: OutboundParams,
        ctx: &Context<'_>,
    ) -> Result<(Channel, Vec<Action>), ChannelError> {
        let config = ctx.config;
        let channel_type = proposed_channel_type(&params.their_features, config);
        validate_command(&params, channel_type, config).map_err(ChannelError::InvalidCommand)?;
        let keys = ctx.announced_keys()?;
        let dust_limit_sat = config.our_dust_limit_sat.max(MIN_DUST_LIMIT_SAT);
        let ours = SideParams {
            dust_limit_sat,
            max_htlc_value_in_flight_msat: config.max_in_flight_for(params.funding_sat),
            channel_reserve_sat: config.reserve_for(params.funding_sat, dust_limit_sat),
            htlc_minimum_msat: config.our_htlc_minimum_msat,
            to_self_delay: config.our_to_self_delay,
            max_accepted_htlcs: config.our_max_accepted_htlcs.clamp(1, MAX_ACCEPTED_HTLCS),
            keys,
            upfront_shutdown_script: Some(Vec::new()),
        };
        let params = ChannelParams {
            role: Role::Funder,
            counterparty_node_id: params.counterparty_node_id,
            chain_hash: config.chain_hash,
            temporary_channel_id: params.temporary_channel_id,
            keys_index: params.keys_index,
            funding_sat: params.funding_sat,
            push_msat: params.push_msat,
            announce: params.announce,
            channel_type,
            commitment_feerate_per_kw: params.commitment_feerate_per_kw.max(config.feerate_floor()),
            funding_feerate_per_kw: params.funding_feerate_per_kw.max(config.feerate_floor()),
            created_height: params.current_height,
            ours,
        };
        let channel = Channel::from_parts(
            params,
            Phase::Opening(Opening::new(OpenStep::OutboundAwaitingAccept)),
        );
        let open = channel.open_channel_message();
        Ok((channel, vec![Action::Send(Message::OpenChannel(open))]))
    }

    /// The `open_channel` we send (also usable to resend it on a new connection before
    /// `accept_channel`, which BOLT 2 allows).
    pub fn open_channel_message(&self) -> OpenChannel {
        let p = self.params();
        OpenChannel {
            chain_hash: p.chain_hash,
            temporary_channel_id: p.temporary_channel_id,
            funding_satoshis: p.funding_sat,
            push_msat: p.push_msat,
            dust_limit_satoshis: p.ours.dust_limit_sat,
            max_htlc_value_in_flight_msat: p.ours.max_htlc_value_in_flight_msat,
            channel_reserve_satoshis: p.ours.channel_reserve_sat,
            htlc_minimum_msat: p.ours.htlc_minimum_msat,
            feerate_per_kw: p.commitment_feerate_per_kw,
            to_self_delay: p.ours.to_self_delay,
            max_accepted_htlcs: p.ours.max_accepted_htlcs,
            keys: p.ours.keys,
            channel_flags: u8::from(p.announce),
            upfront_shutdown_script: p.ours.upfront_shutdown_script.clone(),
            channel_type: Some(wire_channel_type(p.channel_type)),
        }
    }

    /// `accept_channel` received: validate it, then ask the wallet for the funding
    /// transaction.
    pub(crate) fn on_accept_channel(
        &mut self,
        msg: &AcceptChannel,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        if self.state() != ChannelState::OutboundAwaitingAccept
            || msg.temporary_channel_id != self.params.temporary_channel_id
        {
            tracing::debug!(channel = %self.current_id(), state = ?self.state(), "ignoring accept_channel");
            return Vec::new();
        }
        let p = &self.params;
        let sent = SentOpen {
            channel_type: p.channel_type,
            funding_sat: p.funding_sat,
            dust_limit_sat: p.ours.dust_limit_sat,
            channel_reserve_sat: p.ours.channel_reserve_sat,
        };
        let minimum_depth = match validate_accept(msg, &sent, ctx.config) {
            Ok(depth) => depth,
            Err(e) => return self.fail_transient(e.to_string(), true),
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
        self.phase = Phase::Opening(Opening::new(OpenStep::AwaitingFundingTx(Negotiated {
            theirs,
            minimum_depth,
        })));
        match self.funding_script_pubkey() {
            Some(script_pubkey) => vec![Action::NeedFundingTx {
                temporary_channel_id: self.params.temporary_channel_id,
                script_pubkey,
                amount: self.funding_amount(),
                feerate_per_kw: self.params.funding_feerate_per_kw,
            }],
            None => self.fail_transient("internal: funding script unavailable".into(), true),
        }
    }

    /// The wallet built the funding transaction: sign the peer's first commitment and send
    /// `funding_created`.
    pub(crate) fn on_funding_tx(&mut self, tx: Transaction, ctx: &Context<'_>) -> Vec<Action> {
        let Phase::Opening(Opening {
            step: OpenStep::AwaitingFundingTx(negotiated),
            ..
        }) = &self.phase
        else {
            tracing::debug!(channel = %self.current_id(), state = ?self.state(), "ignoring funding tx");
            return Vec::new();
        };
        let negotiated = negotiated.clone();
        let Some(script) = self.funding_script_pubkey() else {
            return self.fail_transient("internal: funding script unavailable".into(), true);
        };
        let amount = self.funding_amount();
        let txid = tx.compute_txid();
        let vout = tx
            .output
            .iter()
            .position(|o| o.script_pubkey == script && o.value == amount);
        let Some(index) = vout.and_then(|v| u16::try_from(v).ok()) else {
            // The wallet's fault: the transaction was built but is unusable; unlock it.
            return self.fail_open(
                "funding transaction has no output paying the funding amount to the funding script"
                    .into(),
                true,
                Some(txid),
            );
        };
        let outpoint = OutPoint {
            txid,
            vout: u32::from(index),
        };
        // BOLT 2: the funding must be non-malleable (segwit inputs only), and we broadcast it
        // as given, so it must be signed: every input carries a witness and no scriptSig.
        if tx.input.is_empty()
            || tx
                .input
                .iter()
                .any(|i| !i.script_sig.is_empty() || i.witness.is_empty())
        {
            return self.fail_open(
                "funding transaction must be signed and spend only native segwit inputs".into(),
                true,
                Some(txid),
            );
        }
        let signature = match self
            .params
            .sign_their_commitment(ctx, &negotiated.theirs, outpoint)
        {
            Ok(sig) => sig,
            Err(e) => {
                return self.fail_open(format!("cannot sign commitment: {e}"), true, Some(txid))
            }
        };
        self.phase = Phase::Opening(Opening::new(OpenStep::AwaitingFundingSigned {
            negotiated,
            funding: FundingInfo {
                outpoint,
                tx: Some(tx),
            },
        }));
        vec![Action::Send(Message::FundingCreated(FundingCreated {
            temporary_channel_id: self.params.temporary_channel_id,
            funding_txid: outpoint.txid,
            funding_output_index: index,
            signature,
        }))]
    }

    /// The wallet could not build the funding transaction.
    pub(crate) fn on_funding_tx_failed(&mut self, reason: &str) -> Vec<Action> {
        if self.state() != ChannelState::AwaitingFundingTx {
            return Vec::new();
        }
        self.fail_transient(
            format!("funding transaction could not be built: {reason}"),
            true,
        )
    }

    /// `funding_signed` received: verify it, persist, then broadcast (BOLT 2's funder durable
    /// point).
    pub(crate) fn on_funding_signed(
        &mut self,
        msg: &FundingSigned,
        ctx: &Context<'_>,
    ) -> Vec<Action> {
        let Phase::Opening(Opening {
            step:
                OpenStep::AwaitingFundingSigned {
                    negotiated,
                    funding,
                },
            ..
        }) = &self.phase
        else {
            tracing::debug!(channel = %self.current_id(), state = ?self.state(), "ignoring funding_signed");
            return Vec::new();
        };
        if Some(msg.channel_id) != self.channel_id() {
            return self.fail_transient(
                format!(
                    "funding_signed names channel {} instead of {}",
                    msg.channel_id,
                    self.current_id()
                ),
                true,
            );
        }
        if let Err(e) = self.params.verify_our_commitment(
            ctx,
            &negotiated.theirs,
            funding.outpoint,
            &msg.signature,
        ) {
            return self.fail_transient(format!("invalid funding_signed signature: {e}"), true);
        }
        let channel = Established::new(negotiated.clone(), funding.clone(), msg.signature);
        let tx = channel.funding.tx.clone();
        self.phase = Phase::Funded(Funded {
            lock: LockIn::AwaitingConfirmations,
            channel,
            shutdown: None,
        });
        let mut actions = vec![self.commit(self.pending_event().into_iter().collect())];
        actions.extend(tx.map(broadcast_funding));
        actions.extend(self.watch_action());
        actions
    }

    pub(crate) fn pending_event(&self) -> Option<ChannelEvent> {
        Some(ChannelEvent::ChannelPending {
            counterparty_node_id: self.params.counterparty_node_id,
            temporary_channel_id: self.params.temporary_channel_id,
            channel_id: self.channel_id()?,
            funding_txo: self.funding()?.outpoint,
        })
    }
}
