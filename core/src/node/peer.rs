//! One task per peer: it owns the peer's channels, feeds them messages, commands and chain
//! events, and performs the actions they return (`perform.rs`) — persist first, then what
//! depends on it. Its future runs inside the peer's tracing span.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::PublicKey;
use bitcoin::Amount;
use tokio::sync::{mpsc, oneshot};

use super::db::Parts;
use super::peer_chain::ChainInput;
use super::{lock, NodeError, Shared};
use crate::chain::FeeTarget;
use crate::chain::{ChainWatcher, DynSource};
use crate::net::PeerSender;
use crate::proto::channel::{
    message_channel_id, Action, Channel, ChannelError, ChannelRecord, ChannelState, Context,
    FeeEstimates, Input, OutboundParams,
};
use crate::proto::wire::{ChannelId, ErrorMessage, Features, Message};
use crate::store::OpenIntent;

/// What the node tells a peer task.
#[derive(Debug)]
pub(crate) enum PeerCommand {
    /// The connection is up.
    Connected {
        sender: PeerSender,
        receiver: crate::net::PeerReceiver,
        /// The features of the peer's `init` (the `channel_type` we propose depends on them).
        their_features: Features,
    },
    /// The connection is gone; `unexpected` when we did not ask for it (the funding outputs
    /// are then checked at the next sync).
    Disconnected { unexpected: bool },
    /// The user opens a channel.
    Open {
        intent_id: i64,
        channel_value: Amount,
        push_msat: u64,
        announce: bool,
        reply: oneshot::Sender<Result<ChannelId, NodeError>>,
    },
    /// A chain event about one of this peer's fundings, or a new block.
    Chain(ChainInput),
    /// Fresh fee estimates (a refresh, a new block): ask the fee policy (`fees.rs`).
    Fees(FeeEstimates),
    /// The user closes a channel cooperatively (`script`: where our share goes, checked by
    /// the node against the network; `None`: a fresh wallet address).
    Close {
        channel_id: ChannelId,
        script: Option<bitcoin::ScriptBuf>,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    /// The user force-closes a channel.
    ForceClose {
        channel_id: ChannelId,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
    /// The wake's plan (`wake.rs`): which channels need the peer connected now, and why
    /// (`dial.rs`); `est`: the cached fee estimates, kept unless the task has newer ones.
    DialReasons {
        est: Option<FeeEstimates>,
        reply: oneshot::Sender<Vec<(ChannelId, super::DialReason)>>,
    },
    /// The app answered an `OpenChannelRequest` (manual inbound policy).
    Answer {
        temporary_channel_id: ChannelId,
        accept: bool,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
}

/// An open waiting for the connection.
struct DeferredOpen {
    intent_id: i64,
    channel_value: Amount,
    push_msat: u64,
    announce: bool,
    reply: oneshot::Sender<Result<ChannelId, NodeError>>,
}

pub(crate) struct PeerTask {
    pub(super) shared: Arc<Shared>,
    pub(super) node_id: PublicKey,
    pub(super) channels: Vec<Channel>,
    /// Open intents of our outbound channels, by temporary id.
    pub(super) intents: HashMap<ChannelId, i64>,
    /// Funding transactions built but not yet broadcast, by temporary id.
    pub(super) built: HashMap<ChannelId, bitcoin::Transaction>,
    sender: Option<PeerSender>,
    /// The peer's `init` features on the current connection (empty while disconnected).
    pub(super) their_features: Features,
    /// Inbound opens waiting for the app's answer (manual policy).
    pub(super) requests: HashMap<ChannelId, crate::proto::wire::OpenChannel>,
    /// Funding requests waiting for a sibling open's funding (funds.rs), by temporary id.
    pub(super) parked: Vec<(ChannelId, Action)>,
    /// Channels that were durable when this connection came up and whose peer's
    /// `channel_reestablish` has not arrived on it yet: until it does, such a channel sends
    /// nothing but its own `channel_reestablish` or `error` (BOLT 2). A channel that becomes
    /// durable on the connection (an open) needs none.
    pub(super) awaiting_reestablish: HashSet<ChannelId>,
    /// The latest fee estimates the node handed over (`fees.rs`).
    pub(super) fees: Option<FeeEstimates>,
    /// Watched outputs of closing channels (`WatchRequest::Output`) -> their channel.
    pub(super) outputs: HashMap<bitcoin::OutPoint, ChannelId>,
}

impl PeerTask {
    /// A task for `node_id` resuming `records`; `intents` are the stored open intents (those
    /// of resumed channels are reattached, so their status keeps following them).
    pub(crate) fn new(
        shared: Arc<Shared>,
        node_id: PublicKey,
        records: Vec<ChannelRecord>,
        intents: &[OpenIntent],
    ) -> Self {
        let channels: Vec<Channel> = records.into_iter().map(Channel::from_record).collect();
        let mut by_temp = HashMap::new();
        for intent in intents {
            if let Some(c) = channels
                .iter()
                .find(|c| intent.channel_id == Some(c.current_id().0))
            {
                by_temp.insert(c.temporary_channel_id(), intent.id);
            }
        }
        PeerTask {
            shared,
            node_id,
            channels,
            intents: by_temp,
            built: HashMap::new(),
            sender: None,
            their_features: Features::empty(),
            requests: HashMap::new(),
            parked: Vec::new(),
            awaiting_reestablish: HashSet::new(),
            fees: None,
            outputs: HashMap::new(),
        }
    }

    /// Makes the resumed channels visible (views, funding owners) before the task runs.
    pub(crate) fn register_all(&self) {
        for i in 0..self.channels.len() {
            self.register(i);
        }
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<PeerCommand>) {
        // Resume: rebroadcast unconfirmed fundings (the watches are re-armed already).
        for i in 0..self.channels.len() {
            let actions: Vec<Action> = self.channels[i]
                .resume_actions()
                .into_iter()
                .filter(|a| !matches!(a, Action::Watch(_)))
                .collect();
            if let Err(failed) = self.perform(i, actions).await {
                tracing::error!(channel = %self.channels[i].current_id(), "resuming: {failed}");
            }
        }
        let mut receiver: Option<crate::net::PeerReceiver> = None;
        let mut deferred: Vec<DeferredOpen> = Vec::new();
        let mut stopped = self.shared.stopped.subscribe();
        // The clock of transient opens (a silent peer times out): ticks only while one exists.
        let clock = tokio::time::Instant::now();
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let transient = self.channels.iter().any(Channel::needs_ticks);
            let next_message = async {
                match receiver.as_mut() {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    None => return,
                    Some(PeerCommand::Connected { sender, receiver: r, their_features }) => {
                        self.sender = Some(sender);
                        self.their_features = their_features;
                        receiver = Some(r);
                        self.awaiting_reestablish = self
                            .channels
                            .iter()
                            .filter(|c| c.state().is_durable())
                            .filter_map(Channel::channel_id)
                            .collect();
                        self.feed_all(Input::PeerReconnected).await;
                        // Opens asked for before the node saw the connection.
                        for d in std::mem::take(&mut deferred) {
                            let result =
                                self.open(d.intent_id, d.channel_value, d.push_msat, d.announce).await;
                            let _ = d.reply.send(result);
                        }
                    }
                    Some(PeerCommand::Disconnected { unexpected }) => {
                        if unexpected {
                            let all: Vec<usize> = (0..self.channels.len()).collect();
                            self.check_fundings_now(&all, "peer disconnected unexpectedly").await;
                        }
                        self.sender = None;
                        self.their_features = Features::empty();
                        receiver = None;
                        self.awaiting_reestablish.clear();
                        // Unanswered inbound requests die with the connection (the funder
                        // forgets them too); a late answer gets `UnknownChannel`.
                        self.requests.clear();
                        self.feed_all(Input::PeerDisconnected).await;
                    }
                    Some(PeerCommand::Open { intent_id, channel_value, push_msat, announce, reply }) => {
                        // The connection manager may report the peer connected before the
                        // node handed this task the connection: wait for it, or the
                        // open_channel would be dropped.
                        if self.sender.is_none() {
                            deferred.push(DeferredOpen { intent_id, channel_value, push_msat, announce, reply });
                        } else {
                            let result = self.open(intent_id, channel_value, push_msat, announce).await;
                            let _ = reply.send(result);
                        }
                    }
                    Some(PeerCommand::Chain(input)) => self.on_chain(input).await,
                    Some(PeerCommand::Close { channel_id, script, reply }) => {
                        let _ = reply.send(self.close(channel_id, script).await);
                    }
                    Some(PeerCommand::ForceClose { channel_id, reply }) => {
                        let _ = reply.send(self.force_close(channel_id).await);
                    }
                    Some(PeerCommand::Fees(est)) => self.on_fees(est).await,
                    Some(PeerCommand::DialReasons { est, reply }) => {
                        if self.fees.is_none() {
                            self.fees = est;
                        }
                        let _ = reply.send(self.dial_reasons());
                    }
                    Some(PeerCommand::Answer { temporary_channel_id, accept, reply }) => {
                        let result = match self.requests.remove(&temporary_channel_id) {
                            None => Err(NodeError::UnknownChannel(temporary_channel_id)),
                            Some(open) if accept => {
                                self.accept_open(open).await;
                                Ok(())
                            }
                            Some(_) => {
                                let error = ErrorMessage::new(temporary_channel_id, "channel rejected");
                                self.send(Message::Error(error)).await;
                                Ok(())
                            }
                        };
                        let _ = reply.send(result);
                    }
                },
                msg = next_message => match msg {
                    Some(msg) => self.on_message(msg).await,
                    None => receiver = None,
                },
                _ = ticker.tick(), if transient => {
                    let now_secs = clock.elapsed().as_secs();
                    for i in 0..self.channels.len() {
                        if self.channels[i].needs_ticks() {
                            self.feed(i, Input::Tick { now_secs }).await;
                        }
                    }
                    self.cleanup();
                }
                _ = stopped.changed() => return,
            }
            // Several opens, one wallet: a funding waiting for a sibling's (funds.rs).
            if !self.parked.is_empty() {
                self.retry_parked().await;
            }
            self.count_pending_inbound();
        }
    }

    /// Asks again for the fundings that waited for a sibling's; drops those whose channel
    /// moved on (failed, timed out).
    async fn retry_parked(&mut self) {
        for (temp, action) in std::mem::take(&mut self.parked) {
            let waiting = self.channels.iter().position(|c| {
                c.temporary_channel_id() == temp && c.state() == ChannelState::AwaitingFundingTx
            });
            if let Some(i) = waiting {
                if let Err(failed) = self.perform(i, vec![action]).await {
                    tracing::error!(channel = %temp, "funding: {failed}");
                }
            }
        }
        self.cleanup();
    }

    /// Whether the peer is connected (its messages reach us, ours reach it).
    pub(super) fn connected(&self) -> bool {
        self.sender.is_some()
    }

    /// Whether a channel or open other than `except` still needs the connection to the peer.
    pub(super) fn connection_shared(&self, except: Option<usize>) -> bool {
        !self.requests.is_empty()
            || self
                .channels
                .iter()
                .enumerate()
                .any(|(j, c)| Some(j) != except && c.uses_connection())
    }

    pub(super) fn context_keys(
        &self,
        keys_index: u32,
    ) -> Result<crate::proto::keys::ChannelKeys, NodeError> {
        self.shared
            .keys
            .channel_keys(keys_index)
            .map_err(|e| NodeError::Internal(format!("channel keys {keys_index}: {e}")))
    }

    /// Feeds `input` to channel `i` and performs the resulting actions. If a persist fails,
    /// the channel goes back to the last state the store holds (memory is never ahead of
    /// disk) and the peer is disconnected, or the node halts if the storage is gone.
    pub(super) async fn feed(&mut self, i: usize, input: Input) {
        if let Err(e) = self.feed_checked(i, input).await {
            tracing::debug!(channel = %self.channels[i].current_id(), "input not applied: {e}");
        }
    }

    /// [`PeerTask::feed`], telling the caller whether the actions held a commit, or why they
    /// failed (the channel is then back to its stored state).
    pub(super) async fn feed_checked(&mut self, i: usize, input: Input) -> Result<bool, NodeError> {
        let keys = match self.context_keys(self.channels[i].keys_index()) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(channel = %self.channels[i].current_id(), "{e}");
                return Err(e);
            }
        };
        let tip = self.shared.tip_height();
        let cached = lock(&self.shared.destination).clone();
        let destination = match cached {
            Some(d) => Some(d),
            None if super::close::needs_destination(&self.channels[i], &input, tip) => {
                match self.shared.close_destination().await {
                    Ok(d) => Some(d),
                    Err(e) => {
                        tracing::error!("cannot hand out the close destination: {e}");
                        None
                    }
                }
            }
            None => None,
        };
        // A close needs the fee estimates (its closing fee, a sweep's feerate).
        if self.fees.is_none() && super::close::needs_fees(&self.channels[i], &input, tip) {
            self.fees = self.shared.cached_fees().await;
        }
        let fees = self.fees;
        let before = self.channels[i].clone();
        let actions = {
            let mut ctx = Context::new(&self.shared.secp, &keys, &self.shared.config.channel)
                .with_node_key(&self.shared.node_secret);
            if let Some(d) = &destination {
                ctx = ctx.with_destination(d);
            }
            if let Some(e) = &fees {
                ctx = ctx.with_fee_estimates(e);
            }
            if self.sender.is_some() {
                ctx = ctx.with_their_features(&self.their_features);
            }
            self.channels[i].handle(input, &ctx)
        };
        let committed = actions.iter().any(|a| matches!(a, Action::Commit(_)));
        match self.perform(i, actions).await {
            Ok(()) => Ok(committed),
            Err(failed) => Err(self.restore(i, before, failed).await),
        }
    }

    pub(super) async fn feed_all(&mut self, input: Input) {
        for i in 0..self.channels.len() {
            self.feed(i, input.clone()).await;
        }
        self.cleanup();
    }

    async fn open(
        &mut self,
        intent_id: i64,
        channel_value: Amount,
        push_msat: u64,
        announce: bool,
    ) -> Result<ChannelId, NodeError> {
        let result = self
            .try_open(intent_id, channel_value, push_msat, announce)
            .await;
        if let Err(e) = &result {
            if let Err(e) = self.shared.fail_intent(intent_id, e.to_string()).await {
                // Still pending on disk: the next start fails it (`fail_interrupted_intents`).
                tracing::error!("cannot record the failed open intent {intent_id}: {e}");
            }
        }
        result
    }

    async fn try_open(
        &mut self,
        intent_id: i64,
        channel_value: Amount,
        push_msat: u64,
        announce: bool,
    ) -> Result<ChannelId, NodeError> {
        let keys_index = self.shared.allocate_keys_index().await?;
        let keys = self.context_keys(keys_index)?;
        let temporary_channel_id = temporary_id(&self.shared, keys_index);
        // The cache as it is, never refreshed here: the open's reservation (`funds.rs`) was
        // computed from it. The fee policy moves the first commitment's feerate later.
        let fees = self
            .shared
            .db
            .run(|p: &mut Parts| ChainWatcher::<DynSource>::fee_cache(&p.store))
            .await?;
        let feerate = |target| {
            let rate: bitcoin::FeeRate = fees.fee_rate(target);
            u32::try_from(rate.to_sat_per_kwu()).unwrap_or(u32::MAX)
        };
        let params = OutboundParams {
            counterparty_node_id: self.node_id,
            temporary_channel_id,
            keys_index,
            funding_sat: channel_value.to_sat(),
            push_msat,
            announce,
            commitment_feerate_per_kw: feerate(FeeTarget::HighPriority),
            funding_feerate_per_kw: feerate(FeeTarget::Normal),
            current_height: self.shared.tip_height(),
            their_features: self.their_features.clone(),
        };
        let result = {
            let ctx = Context::new(&self.shared.secp, &keys, &self.shared.config.channel)
                .with_node_key(&self.shared.node_secret);
            Channel::new_outbound(params, &ctx)
        };
        let (channel, actions) = result.map_err(|e| match e {
            ChannelError::InvalidCommand(v) => NodeError::invalid("open_channel", v.to_string()),
            other => NodeError::invalid("open_channel", other.to_string()),
        })?;
        self.intents.insert(temporary_channel_id, intent_id);
        self.channels.push(channel);
        let i = self.channels.len() - 1;
        if let Err(failed) = self.perform(i, actions).await {
            // Nothing of it is durable yet: forget it.
            self.channels.remove(i);
            self.intents.remove(&temporary_channel_id);
            lock(&self.shared.views).remove(&temporary_channel_id);
            return Err(failed.error);
        }
        self.cleanup();
        Ok(temporary_channel_id)
    }

    async fn on_message(&mut self, msg: Message) {
        let id = message_channel_id(&msg);
        if let Message::OpenChannel(open) = &msg {
            if !self
                .channels
                .iter()
                .any(|c| c.is_for(&open.temporary_channel_id))
            {
                self.on_open_channel(open.clone()).await;
                return;
            }
        }
        let Some(id) = id else { return };
        let targets: Vec<usize> = if id == ChannelId::ALL {
            (0..self.channels.len()).collect()
        } else {
            self.channels
                .iter()
                .position(|c| c.is_for(&id))
                .into_iter()
                .collect()
        };
        if targets.is_empty() {
            if !matches!(msg, Message::Error(_) | Message::Warning(_)) {
                let error = ErrorMessage::new(id, "unknown channel");
                self.send(Message::Error(error)).await;
            }
            return;
        }
        if matches!(msg, Message::Error(_)) {
            // A peer that closes a channel on chain says so with an `error`.
            self.check_fundings_now(&targets, "peer sent an error")
                .await;
            self.feed_spends_before_error(&targets).await;
        }
        if let Message::ChannelReestablish(m) = &msg {
            self.awaiting_reestablish.remove(&m.channel_id);
            // A negotiating channel whose closing transaction we signed: the peer may have
            // completed and broadcast it, then forgotten the channel; its placeholder
            // reestablish must meet that close, not a force close of ours (one request, only
            // for such a channel).
            let negotiating: Vec<usize> = targets
                .iter()
                .copied()
                .filter(|&i| {
                    let c = &self.channels[i];
                    c.is_shutting_down()
                        && c.agreed_closing_tx().is_none()
                        && !c.signed_closing_txids().is_empty()
                })
                .collect();
            if !negotiating.is_empty() {
                self.check_fundings_now(&negotiating, "a negotiating channel reestablishes")
                    .await;
                self.feed_spends_before_error(&negotiating).await;
            }
        }
        let reestablished = matches!(msg, Message::ChannelReestablish(_));
        let ids: Vec<ChannelId> = targets
            .iter()
            .map(|&i| self.channels[i].current_id())
            .collect();
        for i in targets {
            self.feed(i, Input::Message(msg.clone())).await;
        }
        self.cleanup();
        if reestablished {
            // The channel can take updates again: a feerate that moved while we were apart.
            self.apply_fee_policy(Some(&ids)).await;
        }
    }

    pub(super) async fn send(&self, msg: Message) {
        if let Some(sender) = &self.sender {
            if let Err(e) = sender.send(msg).await {
                tracing::debug!("send failed: {e}");
            }
        }
    }

    /// Forgets channels whose open was abandoned (transient, never persisted).
    pub(super) fn cleanup(&mut self) {
        let views = &self.shared.views;
        self.channels.retain(|c| {
            let keep = c.state() != ChannelState::Aborted;
            if !keep {
                lock(views).remove(&c.current_id());
            }
            keep
        });
    }
}

/// A temporary channel id unique to our node and the channel's key index (no RNG needed).
fn temporary_id(shared: &Shared, keys_index: u32) -> ChannelId {
    let mut engine = sha256::Hash::engine();
    engine.input(b"tern temporary channel id");
    engine.input(&shared.node_id.serialize());
    engine.input(&keys_index.to_be_bytes());
    ChannelId(sha256::Hash::from_engine(engine).to_byte_array())
}
