//! One task per peer: it owns the peer's channels, feeds them messages, commands and chain
//! events, and performs the actions they return — persist first, then what depends on it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::PublicKey;
use bitcoin::{FeeRate, OutPoint, Transaction, Txid};
use tokio::sync::{mpsc, oneshot};

use super::{lock, now, ChannelDetails, Event, InboundPolicy, NodeError, Shared};
use crate::chain::{ChainSource, Confirmation as ChainConfirmation};
use crate::net::PeerSender;
use crate::proto::channel::{
    message_channel_id, Action, Channel, ChannelError, ChannelEvent, ChannelRecord, ChannelState,
    Confirmation, Context, InboundParams, Input, OutboundParams, Role,
};
use crate::proto::wire::{ChannelId, ErrorMessage, Message};
use crate::store::OpenIntentStatus;

/// What the node tells a peer task.
#[derive(Debug)]
pub(crate) enum PeerCommand {
    /// The connection is up.
    Connected {
        sender: PeerSender,
        receiver: mpsc::Receiver<Message>,
    },
    /// The connection is gone.
    Disconnected,
    /// The user opens a channel.
    Open {
        intent_id: i64,
        funding_sat: u64,
        push_msat: u64,
        public: bool,
        reply: oneshot::Sender<Result<String, NodeError>>,
    },
    /// A chain event about one of this peer's fundings, or a new block.
    Chain(ChainInput),
    /// The app answered an `OpenChannelRequest` (manual inbound policy).
    Answer {
        temporary_channel_id: ChannelId,
        accept: bool,
        reply: oneshot::Sender<Result<(), NodeError>>,
    },
}

/// Chain events routed to a peer task.
#[derive(Debug, Clone)]
pub(crate) enum ChainInput {
    Confirmed {
        txid: Txid,
        confirmation: ChainConfirmation,
        tx_index: u32,
        tip_height: u32,
    },
    Reorged {
        txid: Txid,
    },
    DoubleSpent {
        txid: Txid,
        by: Txid,
    },
    NewBlock {
        height: u32,
    },
}

/// An open waiting for the connection: intent, amount, push, public, reply.
type DeferredOpen = (
    i64,
    u64,
    u64,
    bool,
    oneshot::Sender<Result<String, NodeError>>,
);

pub(crate) struct PeerTask {
    shared: Arc<Shared>,
    node_id: PublicKey,
    channels: Vec<Channel>,
    /// Open intents of our outbound channels, by temporary id.
    intents: HashMap<ChannelId, i64>,
    /// Funding transactions built but not yet broadcast, by temporary id.
    built: HashMap<ChannelId, Transaction>,
    sender: Option<PeerSender>,
    /// Inbound opens waiting for the app's answer (manual policy).
    requests: HashMap<ChannelId, crate::proto::wire::OpenChannel>,
}

impl PeerTask {
    pub(crate) fn new(
        shared: Arc<Shared>,
        node_id: PublicKey,
        records: Vec<ChannelRecord>,
    ) -> Self {
        let channels: Vec<Channel> = records.into_iter().map(Channel::from_record).collect();
        // Reattach the open intents of resumed channels, so their status keeps following them.
        let mut intents = HashMap::new();
        let stored = lock(&shared.store).list_open_intents().unwrap_or_default();
        for intent in stored {
            if let Some(c) = channels
                .iter()
                .find(|c| intent.channel_id == Some(c.current_id().0))
            {
                intents.insert(c.temporary_channel_id(), intent.id);
            }
        }
        PeerTask {
            shared,
            node_id,
            channels,
            intents,
            built: HashMap::new(),
            sender: None,
            requests: HashMap::new(),
        }
    }

    /// Makes the resumed channels visible (views, funding owners) before the task runs.
    pub(crate) fn register_all(&self) {
        for i in 0..self.channels.len() {
            self.register(i);
        }
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<PeerCommand>) {
        // Resume: re-arm watches, rebroadcast unconfirmed fundings.
        for i in 0..self.channels.len() {
            let actions = self.channels[i].resume_actions();
            self.perform(i, actions).await;
        }
        let mut receiver: Option<mpsc::Receiver<Message>> = None;
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
                    Some(PeerCommand::Connected { sender, receiver: r }) => {
                        self.sender = Some(sender);
                        receiver = Some(r);
                        self.feed_all(Input::PeerReconnected).await;
                        // Opens asked for before the node saw the connection.
                        for (intent_id, funding_sat, push_msat, public, reply) in
                            std::mem::take(&mut deferred)
                        {
                            let result = self.open(intent_id, funding_sat, push_msat, public).await;
                            let _ = reply.send(result);
                        }
                    }
                    Some(PeerCommand::Disconnected) => {
                        self.sender = None;
                        receiver = None;
                        // Unanswered inbound requests die with the connection (the funder
                        // forgets them too); a late answer gets `UnknownChannel`.
                        self.requests.clear();
                        self.feed_all(Input::PeerDisconnected).await;
                    }
                    Some(PeerCommand::Open { intent_id, funding_sat, push_msat, public, reply }) => {
                        // The connection manager may report the peer connected before the
                        // node handed this task the connection: wait for it, or the
                        // open_channel would be dropped.
                        if self.sender.is_none() {
                            deferred.push((intent_id, funding_sat, push_msat, public, reply));
                        } else {
                            let result = self.open(intent_id, funding_sat, push_msat, public).await;
                            let _ = reply.send(result);
                        }
                    }
                    Some(PeerCommand::Chain(input)) => self.on_chain(input).await,
                    Some(PeerCommand::Answer { temporary_channel_id, accept, reply }) => {
                        let result = match self.requests.remove(&temporary_channel_id) {
                            None => Err(NodeError::UnknownChannel(temporary_channel_id.to_string())),
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
        }
    }

    fn context_keys(&self, keys_index: u32) -> Result<crate::proto::keys::ChannelKeys, NodeError> {
        self.shared
            .keys
            .channel_keys(keys_index)
            .map_err(|e| NodeError::InvalidInput(format!("channel keys {keys_index}: {e}")))
    }

    /// Feeds `input` to channel `i` and performs the resulting actions.
    async fn feed(&mut self, i: usize, input: Input) {
        let keys = match self.context_keys(self.channels[i].keys_index()) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!("{e}");
                return;
            }
        };
        let actions = {
            let ctx = Context::new(&self.shared.secp, &keys, &self.shared.config.channel)
                .with_node_key(&self.shared.node_secret);
            self.channels[i].handle(input, &ctx)
        };
        self.perform(i, actions).await;
    }

    async fn feed_all(&mut self, input: Input) {
        for i in 0..self.channels.len() {
            self.feed(i, input.clone()).await;
        }
        self.cleanup();
    }

    async fn open(
        &mut self,
        intent_id: i64,
        funding_sat: u64,
        push_msat: u64,
        public: bool,
    ) -> Result<String, NodeError> {
        let keys_index = self.shared.allocate_keys_index()?;
        let keys = self.context_keys(keys_index)?;
        let temporary_channel_id = temporary_id(&self.shared, keys_index);
        let fees = crate::chain::ChainWatcher::<crate::chain::EsploraSource>::fee_cache(&lock(
            &self.shared.store,
        ))?;
        let (commitment, funding) = (
            fees.fee_rate(crate::wallet::FeeTarget::HighPriority),
            fees.fee_rate(crate::wallet::FeeTarget::Normal),
        );
        let params = OutboundParams {
            counterparty_node_id: self.node_id,
            temporary_channel_id,
            keys_index,
            funding_sat,
            push_msat,
            announce: public,
            commitment_feerate_per_kw: u32::try_from(commitment.to_sat_per_kwu())
                .unwrap_or(u32::MAX),
            funding_feerate_per_kw: u32::try_from(funding.to_sat_per_kwu()).unwrap_or(u32::MAX),
            current_height: self.shared.tip_height(),
        };
        let result = {
            let ctx = Context::new(&self.shared.secp, &keys, &self.shared.config.channel)
                .with_node_key(&self.shared.node_secret);
            Channel::new_outbound(params, &ctx)
        };
        let (channel, actions) = match result {
            Ok(ok) => ok,
            Err(e) => {
                let reason = e.to_string();
                let _ = lock(&self.shared.store).update_open_intent_status(
                    intent_id,
                    OpenIntentStatus::Failed,
                    None,
                    Some(&reason),
                    now(),
                );
                return Err(match e {
                    ChannelError::InvalidCommand(v) => NodeError::InvalidInput(v.to_string()),
                    other => NodeError::InvalidInput(other.to_string()),
                });
            }
        };
        self.intents.insert(temporary_channel_id, intent_id);
        self.channels.push(channel);
        let i = self.channels.len() - 1;
        self.perform(i, actions).await;
        self.cleanup();
        Ok(temporary_channel_id.to_string())
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
        for i in targets {
            self.feed(i, Input::Message(msg.clone())).await;
        }
        self.cleanup();
    }

    async fn on_open_channel(&mut self, open: crate::proto::wire::OpenChannel) {
        match self.shared.config.inbound {
            InboundPolicy::AcceptAll => self.accept_open(open).await,
            InboundPolicy::RejectAll => {
                let error =
                    ErrorMessage::new(open.temporary_channel_id, "not accepting inbound channels");
                self.send(Message::Error(error)).await;
            }
            InboundPolicy::Manual => {
                let event = Event::OpenChannelRequest {
                    temporary_channel_id: open.temporary_channel_id.to_string(),
                    counterparty_node_id: self.node_id,
                    funding_sat: open.funding_satoshis,
                    push_msat: open.push_msat,
                };
                self.requests.insert(open.temporary_channel_id, open);
                if let Err(e) = self.shared.push_event(&event) {
                    tracing::error!("cannot queue event: {e}");
                }
            }
        }
    }

    async fn accept_open(&mut self, open: crate::proto::wire::OpenChannel) {
        let keys_index = match self.shared.allocate_keys_index() {
            Ok(i) => i,
            Err(e) => {
                tracing::error!("cannot allocate channel keys: {e}");
                return;
            }
        };
        let Ok(keys) = self.context_keys(keys_index) else {
            return;
        };
        let params = InboundParams {
            counterparty_node_id: self.node_id,
            keys_index,
            current_height: self.shared.tip_height(),
        };
        let result = {
            let ctx = Context::new(&self.shared.secp, &keys, &self.shared.config.channel)
                .with_node_key(&self.shared.node_secret);
            Channel::new_inbound(&open, params, &ctx)
        };
        match result {
            Ok((channel, actions)) => {
                self.channels.push(channel);
                let i = self.channels.len() - 1;
                self.perform(i, actions).await;
            }
            Err(ChannelError::Rejected { error, actions }) => {
                tracing::info!(peer = %self.node_id, "open_channel refused: {error}");
                for action in actions {
                    match action {
                        Action::Send(m) => self.send(m).await,
                        Action::Disconnect { .. } => {
                            let _ = self.shared.net.disconnect(self.node_id);
                        }
                        _ => {}
                    }
                }
            }
            Err(e) => tracing::error!("inbound open failed: {e}"),
        }
    }

    async fn on_chain(&mut self, input: ChainInput) {
        match input {
            ChainInput::NewBlock { height } => {
                self.feed_all(Input::NewBlock { height }).await;
            }
            ChainInput::Confirmed {
                txid,
                confirmation,
                tx_index,
                tip_height,
            } => {
                let Some(i) = self.by_funding(&txid) else {
                    return;
                };
                let tx = match self.channels[i].funding().and_then(|f| f.tx.clone()) {
                    Some(tx) => Some(tx),
                    None => self.shared.source.raw_tx(txid).await.ok().flatten(),
                };
                let Some(tx) = tx else {
                    tracing::warn!(%txid, "confirmed funding tx could not be fetched; retrying next sync");
                    return;
                };
                let confirmation = Confirmation {
                    block_height: confirmation.height,
                    block_hash: confirmation.block_hash,
                    tx_index,
                };
                self.feed(
                    i,
                    Input::FundingConfirmed {
                        tx,
                        confirmation,
                        tip_height,
                    },
                )
                .await;
            }
            ChainInput::Reorged { txid } => {
                if let Some(i) = self.by_funding(&txid) {
                    self.feed(i, Input::FundingReorged).await;
                }
            }
            ChainInput::DoubleSpent { txid, by } => {
                if let Some(i) = self.by_funding(&txid) {
                    self.feed(i, Input::FundingDoubleSpent { spending_txid: by })
                        .await;
                }
            }
        }
        self.cleanup();
    }

    fn by_funding(&self, txid: &Txid) -> Option<usize> {
        self.channels
            .iter()
            .position(|c| c.funding().is_some_and(|f| f.outpoint.txid == *txid))
    }

    async fn send(&self, msg: Message) {
        if let Some(sender) = &self.sender {
            if let Err(e) = sender.send(msg).await {
                tracing::debug!(peer = %self.node_id, "send failed: {e}");
            }
        }
    }

    /// Records the channel's funding owner and its view for `list_channels`.
    fn register(&self, i: usize) {
        let c = &self.channels[i];
        if let Some(f) = c.funding() {
            lock(&self.shared.fundings).insert(f.outpoint.txid, self.node_id);
        }
        let tip = self.shared.tip_height();
        let confirmations = c.confirmations(tip);
        let status = match c.state() {
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
                        .created_height
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
            ChannelState::Aborted => "open abandoned".to_string(),
        };
        let details = ChannelDetails {
            channel_id: c.current_id().to_string(),
            temporary_channel_id: c.temporary_channel_id().to_string(),
            counterparty_node_id: self.node_id,
            state: c.state(),
            status,
            is_outbound: c.role() == Role::Funder,
            funding_sat: c.funding_sat(),
            our_balance_msat: c.our_balance_msat(),
            funding_txo: c.funding().map(|f| f.outpoint),
            confirmations,
            required_confirmations: c.minimum_depth(),
            is_public: c.is_public(),
            announcement_ready: c.channel_announcement().is_some(),
        };
        let mut views = lock(&self.shared.views);
        views.remove(&c.temporary_channel_id());
        views.insert(c.current_id(), details);
    }

    /// Forgets channels whose open was abandoned (transient, never persisted).
    fn cleanup(&mut self) {
        let views = &self.shared.views;
        self.channels.retain(|c| {
            let keep = c.state() != ChannelState::Aborted;
            if !keep {
                lock(views).remove(&c.current_id());
            }
            keep
        });
    }

    /// Performs channel `i`'s actions in order. A failed persist stops the list: nothing that
    /// depends on it may happen.
    async fn perform(&mut self, i: usize, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            #[cfg(feature = "dev-disconnect")]
            let label = action_label(&action);
            // Dev builds audit what was done, after doing it (a persist: what SQLite holds).
            #[cfg(feature = "dev-disconnect")]
            let audited = match &action {
                Action::Persist(_) | Action::NeedFundingTx { .. } => None,
                other => Some(other.clone()),
            };
            match action {
                Action::Persist(record) => {
                    // The events announcing this state go into the same transaction as the
                    // state (and the open intent's status, and the release of its coin locks
                    // once ready): a kill can lose none of them, nor show one early.
                    let events = take_events_until_persist(&mut queue);
                    let c = &self.channels[i];
                    let id = c.current_id();
                    let temp = c.temporary_channel_id();
                    let ready = c.state() == ChannelState::Ready;
                    let intent = self.intents.get(&temp).copied();
                    let result = lock(&self.shared.store).write(|tx| {
                        tx.put_channel(&id.0, &self.node_id.serialize(), &record.encode(), now())?;
                        if let Some(intent) = intent {
                            let status = if ready {
                                OpenIntentStatus::Ready
                            } else {
                                OpenIntentStatus::ChannelPending
                            };
                            tx.update_open_intent_status(intent, status, Some(&id.0), None, now())?;
                            if ready {
                                tx.unlock_coins_for_intent(intent)?;
                            }
                        }
                        for e in &events {
                            tx.push_event(&Event::from_channel(e).encode(), now())?;
                        }
                        Ok(())
                    });
                    if let Err(e) = result {
                        tracing::error!(channel = %id, "persist failed, stopping: {e}");
                        return;
                    }
                    #[cfg(feature = "dev-disconnect")]
                    self.audit_persist(id, &record);
                    if ready {
                        self.intents.remove(&temp);
                    }
                    self.emitted(&events);
                    if let Some(addr) = self.shared.peer_addr(&self.node_id) {
                        let _ = self.shared.net.keep_peer(self.node_id, addr);
                    }
                }
                Action::Send(msg) => self.send(msg).await,
                Action::NeedFundingTx {
                    temporary_channel_id,
                    script_pubkey,
                    amount,
                    feerate_per_kw,
                } => {
                    let input = self.build_funding(
                        temporary_channel_id,
                        script_pubkey,
                        amount,
                        feerate_per_kw,
                    );
                    let keys = match self.context_keys(self.channels[i].keys_index()) {
                        Ok(k) => k,
                        Err(e) => {
                            tracing::error!("{e}");
                            return;
                        }
                    };
                    let next = {
                        let ctx =
                            Context::new(&self.shared.secp, &keys, &self.shared.config.channel)
                                .with_node_key(&self.shared.node_secret);
                        self.channels[i].handle(input, &ctx)
                    };
                    for a in next.into_iter().rev() {
                        queue.push_front(a);
                    }
                }
                Action::BroadcastFunding(tx) => {
                    if let Err(e) = lock(&self.shared.wallet).record_broadcast(&tx, now()) {
                        tracing::warn!("wallet could not record the funding: {e}");
                    }
                    self.built.remove(&self.channels[i].temporary_channel_id());
                    if let Err(e) = self.shared.source.broadcast(tx).await {
                        tracing::warn!("funding broadcast failed (retried every block): {e}");
                    }
                }
                Action::BroadcastCommitment(tx) => {
                    if let Err(e) = self.shared.source.broadcast(tx).await {
                        tracing::warn!("commitment broadcast failed: {e}");
                    }
                }
                Action::WatchFunding { outpoint, .. } => {
                    let inputs: Vec<OutPoint> = self.channels[i]
                        .funding()
                        .and_then(|f| f.tx.as_ref())
                        .map(|tx| tx.input.iter().map(|x| x.previous_output).collect())
                        .unwrap_or_default();
                    lock(&self.shared.fundings).insert(outpoint.txid, self.node_id);
                    let mut watcher = lock(&self.shared.watcher);
                    let mut store = lock(&self.shared.store);
                    if let Err(e) = watcher.watch_tx(&mut store, outpoint.txid, inputs) {
                        tracing::error!("cannot watch the funding: {e}");
                    }
                }
                Action::AbandonFunding { .. } => {
                    let temp = self.channels[i].temporary_channel_id();
                    self.release(temp);
                }
                Action::Emit(event) => self.emit(&event),
                Action::Disconnect { reason, .. } => {
                    tracing::info!(peer = %self.node_id, "disconnecting: {reason}");
                    let _ = self.shared.net.disconnect(self.node_id);
                }
                Action::ReconnectPeer { reason, .. } => {
                    tracing::info!(peer = %self.node_id, "reconnecting: {reason}");
                    let _ = self.shared.net.disconnect(self.node_id);
                    let _ = self.shared.net.reconnect_now(self.node_id);
                }
                Action::FailOpen {
                    temporary_channel_id,
                    reason,
                    ..
                } => {
                    tracing::info!(peer = %self.node_id, "open failed: {reason}");
                    // Coins first (a kill after this leaves a pending intent, failed at the
                    // next start); then the intent's status and the events telling of it, in
                    // one transaction so neither is seen without the other.
                    let events = take_events_until_persist(&mut queue);
                    self.release(temporary_channel_id);
                    let intent = self.intents.remove(&temporary_channel_id);
                    let result = lock(&self.shared.store).write(|tx| {
                        if let Some(intent) = intent {
                            let status = OpenIntentStatus::Failed;
                            tx.update_open_intent_status(
                                intent,
                                status,
                                None,
                                Some(&reason),
                                now(),
                            )?;
                        }
                        for e in &events {
                            tx.push_event(&Event::from_channel(e).encode(), now())?;
                        }
                        Ok(())
                    });
                    match result {
                        Ok(()) => self.emitted(&events),
                        Err(e) => {
                            tracing::error!(peer = %self.node_id, "cannot record the failed open: {e}")
                        }
                    }
                }
            }
            #[cfg(feature = "dev-disconnect")]
            if let Some(done) = audited {
                lock(&self.shared.audit).performed(&done);
            }
            #[cfg(feature = "dev-disconnect")]
            if self.shared.config.halt_after.as_deref() == Some(label.as_str()) {
                // The view shows the state the channel was in when the node stopped.
                self.register(i);
                self.shared.kill();
                return;
            }
        }
        self.register(i);
    }

    /// Events just committed to the queue (with a state or a failure): wake the waiters, and
    /// in dev builds count them as emitted now.
    fn emitted(&self, events: &[ChannelEvent]) {
        #[cfg(feature = "dev-disconnect")]
        for e in events {
            lock(&self.shared.audit).performed(&Action::Emit(e.clone()));
        }
        if !events.is_empty() {
            self.shared.events.notify_waiters();
        }
    }

    /// Dev builds: feeds the audit the record SQLite holds after a persist's commit.
    #[cfg(feature = "dev-disconnect")]
    fn audit_persist(&self, id: ChannelId, meant: &ChannelRecord) {
        let stored = lock(&self.shared.store)
            .get_channel(&id.0)
            .ok()
            .flatten()
            .and_then(|row| ChannelRecord::decode(&row.record).ok());
        let mut audit = lock(&self.shared.audit);
        match stored {
            Some(record) if &record == meant => audit.performed(&Action::Persist(record)),
            Some(_) => audit.lost_persist(format!("channel {id}: the store holds another record")),
            None => audit.lost_persist(format!("channel {id}: persisted but not in the store")),
        }
    }

    fn build_funding(
        &mut self,
        temporary_channel_id: ChannelId,
        script: bitcoin::ScriptBuf,
        amount: bitcoin::Amount,
        feerate_per_kw: u32,
    ) -> Input {
        let fee = FeeRate::from_sat_per_kwu(u64::from(feerate_per_kw));
        let locked = match lock(&self.shared.store).locked_coins() {
            Ok(l) => l,
            Err(e) => {
                return Input::FundingTxFailed {
                    reason: e.to_string(),
                }
            }
        };
        // The wallet stays locked until the coins are: a concurrent send (wallet, then store)
        // never sees them built but not yet locked.
        let mut wallet = lock(&self.shared.wallet);
        let built = wallet.build_funding_tx(script, amount, fee, &locked);
        match built {
            Ok(tx) => {
                let inputs: Vec<OutPoint> = tx.input.iter().map(|i| i.previous_output).collect();
                let intent = self.intents.get(&temporary_channel_id).copied();
                if let Err(e) = lock(&self.shared.store).lock_coins(&inputs, intent, now()) {
                    let _ = wallet.abandon(&tx);
                    return Input::FundingTxFailed {
                        reason: format!("cannot lock coins: {e}"),
                    };
                }
                drop(wallet);
                self.built.insert(temporary_channel_id, tx.clone());
                Input::FundingTxBuilt { tx }
            }
            Err(e) => Input::FundingTxFailed {
                reason: e.to_string(),
            },
        }
    }

    /// Gives back what an abandoned open held: its unbroadcast funding tx and locked coins.
    fn release(&mut self, temporary_channel_id: ChannelId) {
        if let Some(tx) = self.built.remove(&temporary_channel_id) {
            let _ = lock(&self.shared.wallet).abandon(&tx);
            let mut store = lock(&self.shared.store);
            for input in &tx.input {
                let _ = store.unlock_coin(&input.previous_output);
            }
        }
        if let Some(intent) = self.intents.get(&temporary_channel_id) {
            let _ = lock(&self.shared.store).unlock_coins_for_intent(*intent);
        }
    }

    /// Queues an event that no persist carried (e.g. `ChannelOpenFailed` of a transient open).
    fn emit(&mut self, event: &ChannelEvent) {
        if let Err(e) = self.shared.push_event(&Event::from_channel(event)) {
            tracing::error!("cannot queue event: {e}");
        }
    }
}

/// Removes from `queue` the events before its next persist: they are committed in the same
/// transaction as the state (or failure) that comes before them.
fn take_events_until_persist(queue: &mut VecDeque<Action>) -> Vec<ChannelEvent> {
    let mut events = Vec::new();
    let mut k = 0;
    while k < queue.len() {
        match &queue[k] {
            Action::Persist(_) => break,
            Action::Emit(_) => {
                if let Some(Action::Emit(e)) = queue.remove(k) {
                    events.push(e);
                }
            }
            _ => k += 1,
        }
    }
    events
}

/// The name of an action for [`super::Config::halt_after`].
#[cfg(feature = "dev-disconnect")]
fn action_label(action: &Action) -> String {
    match action {
        Action::Persist(_) => "persist".into(),
        Action::Send(m) => format!("send:{}", m.name()),
        Action::NeedFundingTx { .. } => "need_funding_tx".into(),
        Action::BroadcastFunding(_) => "broadcast".into(),
        Action::WatchFunding { .. } => "watch".into(),
        Action::Emit(_) => "emit".into(),
        other => format!("{other:?}")
            .split([' ', '(', '{'])
            .next()
            .unwrap_or("")
            .to_lowercase(),
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
