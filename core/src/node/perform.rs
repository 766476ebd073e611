//! Performing a channel's actions, in order, one function per action kind. A commit is one
//! store transaction holding exactly what it states (record, events, open status, released
//! coins); nothing after a failed commit happens, and the caller puts the channel back to what
//! the store holds.

use std::collections::VecDeque;

use bitcoin::{Amount, FeeRate, ScriptBuf, Transaction};

use super::db::Parts;
use super::observer::Flow;
use super::peer::PeerTask;
use super::{lock, now, Event, NodeError};
use crate::proto::channel::{
    Action, BroadcastKind, Channel, ChannelEvent, ChannelRecord, Commit, Context, DisconnectScope,
    FailOpen, Input, OpenProgress, Release, WatchRequest,
};
use crate::proto::wire::{ChannelId, Message};
use crate::store::{OpenIntentStatus, StoreError};

/// What [`Action::NeedFundingTx`] asks for.
struct FundingRequest {
    temporary_channel_id: ChannelId,
    script_pubkey: ScriptBuf,
    amount: Amount,
    feerate_per_kw: u32,
}

/// A persist that did not happen. `stored` is the last record of this channel a persist of the
/// same action list did write (the state to go back to), if any.
#[derive(Debug)]
pub(crate) struct PersistFailed {
    pub(crate) error: NodeError,
    pub(crate) stored: Option<ChannelRecord>,
}

impl std::fmt::Display for PersistFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "persist failed: {}", self.error)
    }
}

impl PersistFailed {
    /// Whether the database itself is unusable (I/O error, read-only, corrupt, or the store
    /// thread is gone), as opposed to one refused write. A full disk is a refused write: the
    /// write kept nothing, the peer is disconnected, and the node goes on once there is space
    /// (SQLite's `SQLITE_FULL` leaves the database as it was).
    pub(crate) fn storage_gone(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match &self.error {
            NodeError::Stopped => true,
            NodeError::Storage(StoreError::Sqlite { source, .. }) => matches!(
                source.sqlite_error_code(),
                Some(
                    C::SystemIoFailure
                        | C::ReadOnly
                        | C::DatabaseCorrupt
                        | C::CannotOpen
                        | C::NotADatabase
                )
            ),
            NodeError::Storage(StoreError::File { .. }) => true,
            _ => false,
        }
    }
}

impl PeerTask {
    /// Whether `msg` of channel `i` must wait for the peer's `channel_reestablish` on this
    /// connection (BOLT 2: a durable channel sends only its `channel_reestablish` or `error`
    /// first). Dropped, not queued: the reestablish exchange retransmits what is owed.
    fn held_until_reestablish(&self, i: usize, msg: &Message) -> bool {
        let always = matches!(
            msg,
            Message::ChannelReestablish(_) | Message::Error(_) | Message::Warning(_)
        );
        !always
            && self.channels[i]
                .channel_id()
                .is_some_and(|id| self.awaiting_reestablish.contains(&id))
    }

    /// Performs channel `i`'s actions in order, one function per kind. A failed persist stops
    /// the list: nothing that depends on it may happen. The node's [`Observer`] sees each
    /// performed action and may halt the node (dev builds); nothing else watches here.
    pub(super) async fn perform(
        &mut self,
        i: usize,
        actions: Vec<Action>,
    ) -> Result<(), PersistFailed> {
        let mut queue: VecDeque<Action> = actions.into();
        let mut stored: Option<ChannelRecord> = None;
        while let Some(action) = queue.pop_front() {
            let seen = self.shared.observer.watching().then(|| action.clone());
            match action {
                Action::Commit(commit) => {
                    if let Err(error) = self.commit(i, &commit).await {
                        return Err(PersistFailed { error, stored });
                    }
                    stored = Some(commit.record);
                }
                Action::Send(msg) if self.held_until_reestablish(i, &msg) => {
                    tracing::debug!(
                        msg = msg.name(),
                        "dropped: the peer's channel_reestablish has not arrived"
                    );
                }
                Action::Send(msg) => self.send(msg).await,
                Action::NeedFundingTx {
                    temporary_channel_id,
                    script_pubkey,
                    amount,
                    feerate_per_kw,
                } => {
                    let request = FundingRequest {
                        temporary_channel_id,
                        script_pubkey,
                        amount,
                        feerate_per_kw,
                    };
                    let next = self.need_funding(i, request).await;
                    for a in next.into_iter().rev() {
                        queue.push_front(a);
                    }
                }
                Action::BumpCommitment(request) => {
                    let next = self.bump_commitment(i, request).await;
                    for a in next.into_iter().rev() {
                        queue.push_front(a);
                    }
                }
                Action::Broadcast { tx, kind } => self.broadcast(i, tx, kind).await,
                Action::Watch(WatchRequest::Funding { outpoint, .. }) => {
                    self.watch_funding(i, outpoint).await
                }
                Action::Watch(WatchRequest::Output { outpoint, .. }) => {
                    self.watch_output(i, outpoint).await
                }
                Action::Emit(event) => self.emit(&event).await,
                Action::Disconnect { reason, scope, .. } => self.disconnect(i, &reason, scope),
                Action::ReconnectPeer { reason, .. } => self.reconnect(i, &reason),
                Action::FailOpen(fail) => self.fail_open(fail).await,
            }
            if let Some(done) = seen {
                if self.shared.observer.performed(&done) == Flow::Halt {
                    // The view shows the state the channel was in when the node stopped.
                    self.register(i);
                    self.shared.kill();
                    return Ok(());
                }
            }
        }
        self.register(i);
        Ok(())
    }

    /// The channel asked for its funding transaction: build it (coins locked) and feed the
    /// answer back; the actions that answer returns go first in the queue. Nothing when the
    /// request must wait for a sibling's funding (parked; asked again after it).
    async fn need_funding(&mut self, i: usize, request: FundingRequest) -> Vec<Action> {
        let temporary_channel_id = request.temporary_channel_id;
        let Some(input) = self.build_funding(&request).await else {
            let again = Action::NeedFundingTx {
                temporary_channel_id,
                script_pubkey: request.script_pubkey,
                amount: request.amount,
                feerate_per_kw: request.feerate_per_kw,
            };
            self.parked.push((temporary_channel_id, again));
            return Vec::new();
        };
        let keys = match self.context_keys(self.channels[i].keys_index()) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(channel = %temporary_channel_id, "{e}");
                return Vec::new();
            }
        };
        let ctx = Context::new(&self.shared.secp, &keys, &self.shared.config.channel)
            .with_node_key(&self.shared.node_secret);
        self.channels[i].handle(input, &ctx)
    }

    async fn broadcast(&mut self, i: usize, tx: Transaction, kind: BroadcastKind) {
        match kind {
            BroadcastKind::Funding => self.broadcast_funding(i, tx).await,
            BroadcastKind::Commitment
            | BroadcastKind::MutualClose
            | BroadcastKind::Sweep
            | BroadcastKind::AnchorCpfp => self.broadcast_closing(i, tx, kind).await,
        }
    }

    fn disconnect(&mut self, i: usize, reason: &str, scope: DisconnectScope) {
        let id = self.channels[i].current_id();
        // The peer task owns all the peer's channels: it alone knows whether another one
        // still needs the connection (BOLT 1: the error named one).
        if scope == DisconnectScope::UnlessShared && self.connection_shared(Some(i)) {
            tracing::info!(channel = %id, "keeping the connection for the other channels: {reason}");
        } else {
            tracing::info!(channel = %id, "disconnecting: {reason}");
            let _ = self.shared.net.disconnect(self.node_id);
            self.closing_connection = true;
        }
    }

    fn reconnect(&mut self, i: usize, reason: &str) {
        tracing::info!(channel = %self.channels[i].current_id(), "reconnecting: {reason}");
        let _ = self.shared.net.disconnect(self.node_id);
        self.closing_connection = true;
        let _ = self.shared.net.reconnect_now(self.node_id);
    }

    /// Writes exactly what `commit` states in one transaction: the record, the events
    /// announcing it, the open intent's new status and the coins it releases. A kill can lose
    /// none of them, nor show one early.
    async fn commit(&mut self, i: usize, commit: &Commit) -> Result<(), NodeError> {
        let c = &self.channels[i];
        let id = c.current_id();
        let temp = c.temporary_channel_id();
        let intent = self.intents.get(&temp).copied();
        let open = commit.open.map(|p| match p {
            OpenProgress::Pending => OpenIntentStatus::ChannelPending,
            OpenProgress::Ready => OpenIntentStatus::Ready,
        });
        let release = commit.release;
        // An abandoned funding: the unbroadcast transaction the wallet built for it, if any.
        let abandoned = match release {
            Some(Release::AbandonFunding { txid }) => self
                .built
                .get(&temp)
                .filter(|tx| tx.compute_txid() == txid)
                .cloned(),
            _ => None,
        };
        let peer = self.node_id.serialize();
        let bytes = commit.record.encode();
        let encoded: Vec<Vec<u8>> = commit
            .events
            .iter()
            .map(|e| Event::from_channel(e).encode())
            .collect();
        let injected = self.shared.observer.persist_fault();
        let observer = self.shared.observer.clone();
        let (meant, announced) = (commit.record.clone(), commit.events.clone());
        let keep_addr = super::peer_addr_key(&self.node_id);
        let addr = self
            .shared
            .db
            .run(move |p: &mut Parts| {
                if let Some(fault) = injected {
                    return Err(fault);
                }
                p.store.write(|tx| {
                    tx.put_channel(&id.0, &peer, &bytes, now())?;
                    if let (Some(intent), Some(status)) = (intent, open) {
                        tx.update_open_intent_status(intent, status, Some(&id.0), None, now())?;
                    }
                    if let Some(funding) = &abandoned {
                        for input in &funding.input {
                            tx.unlock_coin(&input.previous_output)?;
                        }
                    }
                    if let (Some(intent), Some(_)) = (intent, release) {
                        tx.unlock_coins_for_intent(intent)?;
                    }
                    for e in &encoded {
                        tx.push_event(e, now())?;
                    }
                    Ok(())
                })?;
                if let Some(funding) = &abandoned {
                    // After the commit: the wallet forgets a transaction the store gave up.
                    if let Err(e) = p.wallet.abandon(funding) {
                        tracing::error!("cannot drop the abandoned funding from the wallet: {e}");
                    }
                }
                observer.committed(&p.store, id, &meant, &announced);
                Ok::<_, NodeError>(p.store.get_meta(&keep_addr)?)
            })
            .await?;
        if commit.open == Some(OpenProgress::Ready) {
            self.intents.remove(&temp);
        }
        if let Some(Release::AbandonFunding { .. }) = release {
            self.built.remove(&temp);
        }
        self.wake_event_waiters(&commit.events);
        // A durable channel keeps its peer: redial it whenever the connection drops — until
        // every channel of the peer is closing on chain or closed (`details::keeps_peer`).
        let tip = self.shared.tip_height();
        if self
            .channels
            .iter()
            .any(|c| super::details::keeps_peer(c, tip))
        {
            // (In a wake, only if the wake's plan chose the peer.)
            let addr = addr.and_then(|b| String::from_utf8(b).ok());
            if let (true, Some(addr)) = (self.shared.may_keep(&self.node_id), addr) {
                let _ = self.shared.net.keep_peer(self.node_id, addr);
            }
        } else if self.channels.iter().any(|c| c.state().is_durable()) {
            let _ = self.shared.net.forget_peer(self.node_id);
        }
        Ok(())
    }

    async fn broadcast_funding(&mut self, i: usize, tx: Transaction) {
        self.built.remove(&self.channels[i].temporary_channel_id());
        // Recorded in the wallet, sent after any unconfirmed parent (funds.rs).
        super::funds::broadcast_funding(&self.shared, tx).await;
    }

    /// A transient open failed: its coins and unbroadcast funding (`funding_txid`) go back to
    /// the wallet, its intent is marked failed and its events are queued — one store job, the
    /// store's part in one transaction, so neither is seen without the other.
    async fn fail_open(&mut self, fail: FailOpen) {
        let FailOpen {
            temporary_channel_id,
            funding_txid,
            reason,
            events,
        } = fail;
        tracing::info!(channel = %temporary_channel_id, "open failed: {reason}");
        let built = self.built.remove(&temporary_channel_id);
        let built_txid = built.as_ref().map(Transaction::compute_txid);
        if built_txid != funding_txid {
            tracing::warn!(channel = %temporary_channel_id, "the failed open names funding {funding_txid:?}, the wallet built {built_txid:?}");
        }
        let built = built.filter(|tx| Some(tx.compute_txid()) == funding_txid);
        let intent = self.intents.remove(&temporary_channel_id);
        let encoded: Vec<Vec<u8>> = events
            .iter()
            .map(|e| Event::from_channel(e).encode())
            .collect();
        let result = self
            .shared
            .db
            .run(move |p: &mut Parts| {
                if let Some(tx) = &built {
                    p.wallet.abandon(tx)?;
                }
                p.store.write(|tx| {
                    if let Some(funding) = &built {
                        for input in &funding.input {
                            tx.unlock_coin(&input.previous_output)?;
                        }
                    }
                    if let Some(intent) = intent {
                        tx.unlock_coins_for_intent(intent)?;
                        tx.update_open_intent_status(
                            intent,
                            OpenIntentStatus::Failed,
                            None,
                            Some(&reason),
                            now(),
                        )?;
                    }
                    for e in &encoded {
                        tx.push_event(e, now())?;
                    }
                    Ok(())
                })?;
                Ok::<_, NodeError>(())
            })
            .await;
        match result {
            Ok(()) => {
                self.shared.observer.emitted(&events);
                self.wake_event_waiters(&events);
            }
            // The intent stays pending on disk: the next start fails it and unlocks its coins.
            Err(e) => {
                tracing::error!(channel = %temporary_channel_id, "cannot record the failed open: {e}")
            }
        }
    }

    /// Events just committed to the queue (with a state or a failure): wake the waiters.
    fn wake_event_waiters(&self, events: &[ChannelEvent]) {
        if !events.is_empty() {
            self.shared.events.notify_waiters();
        }
    }

    /// The channel's answer to its funding request (built, coins locked, in one store job:
    /// no other open can pick the same coins in between); `None`: wait for a sibling's funding.
    async fn build_funding(&mut self, request: &FundingRequest) -> Option<Input> {
        use super::funds::Funding;
        let temporary_channel_id = request.temporary_channel_id;
        let (script, amount) = (request.script_pubkey.clone(), request.amount);
        let fee = FeeRate::from_sat_per_kwu(u64::from(request.feerate_per_kw));
        let intent = self.intents.get(&temporary_channel_id).copied();
        let built = self
            .shared
            .db
            .call(move |p: &mut Parts| super::funds::build_funding(p, intent, script, amount, fee))
            .await;
        match built {
            Ok(Funding::Built(tx)) => {
                self.built.insert(temporary_channel_id, tx.clone());
                Some(Input::FundingTxBuilt { tx })
            }
            Ok(Funding::Wait) => None,
            Ok(Funding::Failed(reason)) => Some(Input::FundingTxFailed { reason }),
            Err(e) => Some(Input::FundingTxFailed {
                reason: e.to_string(),
            }),
        }
    }

    /// Puts channel `i` back to the last state the store holds after a failed persist, and
    /// disconnects the peer (a reconnection resumes from that state), or halts the node if
    /// the storage itself is gone.
    pub(super) async fn restore(
        &mut self,
        i: usize,
        before: Channel,
        failed: PersistFailed,
    ) -> NodeError {
        tracing::error!(channel = %before.current_id(), "{failed}; back to the stored state");
        let gone = failed.storage_gone();
        let PersistFailed { error, stored } = failed;
        let channel = stored.map(Channel::from_record).unwrap_or(before);
        let id = channel.current_id();
        let ahead = self.channels[i].current_id();
        if ahead != id {
            lock(&self.shared.views).remove(&ahead);
        }
        self.channels[i] = channel;
        self.register(i);
        self.observe_restored(i).await;
        // The input may have been a chain event the watcher reports only once (a
        // confirmation): reconcile this funding with the watcher as a restart does, so the
        // next sync reports it again.
        let c = &self.channels[i];
        if let Some(f) = c.funding() {
            let funding = vec![(self.node_id, f.outpoint.txid, c.confirmation().is_some())];
            if let Err(e) = super::sync::reconcile_chain_watches(&self.shared, funding).await {
                tracing::error!(channel = %id, "cannot reconcile the funding watch: {e}");
            }
            // Or a funding spend, which the watcher also reports once, or its undoing.
            self.replay_missed_spend(i).await;
            if c.funding_spend().is_some() {
                let spent = vec![(self.node_id, f.outpoint)];
                if let Err(e) = super::sync::replay_funding_unspends(&self.shared, spent).await {
                    tracing::error!(channel = %id, "cannot reconcile the funding spend: {e}");
                }
            }
        }
        // Or the spend of a watched output.
        self.replay_output_spends(self.output_watches_of(i)).await;
        if gone {
            self.shared.halt("the database cannot be written");
        } else {
            let _ = self.shared.net.disconnect(self.node_id);
        }
        error
    }

    /// After a failed persist put channel `i` back: the observer checks, on the store thread,
    /// that memory is what the store holds (nothing, for a channel that never became durable).
    pub(super) async fn observe_restored(&self, i: usize) {
        if !self.shared.observer.watching() {
            return;
        }
        let channel = &self.channels[i];
        let (id, memory, durable) = (
            channel.current_id(),
            channel.to_record(),
            channel.state().is_durable(),
        );
        let observer = self.shared.observer.clone();
        let _ = self
            .shared
            .db
            .call(move |p: &mut Parts| observer.restored(&p.store, id, &memory, durable))
            .await;
    }

    /// Queues an event that no commit carried (e.g. `ChannelOpenFailed` of a transient open).
    async fn emit(&mut self, event: &ChannelEvent) {
        if let Err(e) = self.shared.push_event(&Event::from_channel(event)).await {
            tracing::error!("cannot queue event: {e}");
        }
    }
}
