//! Performing a channel's actions, in order, one function per action kind. A persist is one store transaction with what it
//! announces; nothing after a failed persist happens, and the caller puts the channel back to
//! what the store holds.

use std::collections::VecDeque;

use bitcoin::{Amount, FeeRate, ScriptBuf, Transaction};

use super::db::Parts;
use super::observer::Flow;
use super::peer::PeerTask;
use super::{now, Event, NodeError};
use crate::chain::ChainSource;
use crate::proto::channel::{
    Action, ChannelEvent, ChannelRecord, ChannelState, Context, DisconnectScope, Input,
};
use crate::proto::wire::ChannelId;
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
    /// Whether the database itself is unusable (I/O error, disk full, read-only, corrupt, or
    /// the store thread is gone), as opposed to one refused write.
    pub(crate) fn storage_gone(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match &self.error {
            NodeError::Stopped => true,
            NodeError::Storage(StoreError::Sqlite { source, .. }) => matches!(
                source.sqlite_error_code(),
                Some(
                    C::SystemIoFailure
                        | C::DiskFull
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
                Action::Persist(record) => {
                    let events = take_events_until_persist(&mut queue);
                    if let Err(error) = self.persist(i, &record, &events).await {
                        return Err(PersistFailed { error, stored });
                    }
                    stored = Some(record);
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
                Action::BroadcastFunding(tx) => self.broadcast_funding(i, tx).await,
                Action::BroadcastCommitment(tx) => self.broadcast_commitment(i, tx).await,
                Action::WatchFunding { outpoint, .. } => self.watch_funding(i, outpoint).await,
                Action::AbandonFunding { .. } => self.abandon_funding(i).await,
                Action::Emit(event) => self.emit(&event).await,
                Action::Disconnect { reason, scope, .. } => self.disconnect(i, &reason, scope),
                Action::ReconnectPeer { reason, .. } => self.reconnect(i, &reason),
                Action::FailOpen {
                    temporary_channel_id,
                    reason,
                    ..
                } => {
                    let events = take_events_until_persist(&mut queue);
                    self.fail_open(temporary_channel_id, reason, events).await;
                }
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

    async fn broadcast_commitment(&self, i: usize, tx: Transaction) {
        if let Err(e) = self.shared.source.broadcast(tx).await {
            tracing::warn!(channel = %self.channels[i].current_id(), "commitment broadcast failed: {e}");
        }
    }

    /// The funding will never confirm: its unbroadcast tx and locked coins go back.
    async fn abandon_funding(&mut self, i: usize) {
        let temp = self.channels[i].temporary_channel_id();
        if let Err(e) = self.release(temp).await {
            // The intent stays pending on disk: the next start unlocks its coins.
            tracing::error!(channel = %temp, "cannot release the open's coins: {e}");
        }
    }

    fn disconnect(&self, i: usize, reason: &str, scope: DisconnectScope) {
        let id = self.channels[i].current_id();
        // The peer task owns all the peer's channels: it alone knows whether another one
        // still needs the connection (BOLT 1: the error named one).
        if scope == DisconnectScope::UnlessShared && self.connection_shared(Some(i)) {
            tracing::info!(channel = %id, "keeping the connection for the other channels: {reason}");
        } else {
            tracing::info!(channel = %id, "disconnecting: {reason}");
            let _ = self.shared.net.disconnect(self.node_id);
        }
    }

    fn reconnect(&self, i: usize, reason: &str) {
        tracing::info!(channel = %self.channels[i].current_id(), "reconnecting: {reason}");
        let _ = self.shared.net.disconnect(self.node_id);
        let _ = self.shared.net.reconnect_now(self.node_id);
    }

    /// Writes the record, the events announcing it, the open intent's new status and (once
    /// ready) the release of its coin locks in one transaction: a kill can lose none of them,
    /// nor show one early.
    async fn persist(
        &mut self,
        i: usize,
        record: &ChannelRecord,
        events: &[ChannelEvent],
    ) -> Result<(), NodeError> {
        let c = &self.channels[i];
        let id = c.current_id();
        let temp = c.temporary_channel_id();
        let ready = c.state() == ChannelState::Ready;
        let intent = self.intents.get(&temp).copied();
        let peer = self.node_id.serialize();
        let bytes = record.encode();
        let encoded: Vec<Vec<u8>> = events
            .iter()
            .map(|e| Event::from_channel(e).encode())
            .collect();
        let injected = self.shared.observer.persist_fault();
        let observer = self.shared.observer.clone();
        let (meant, announced) = (record.clone(), events.to_vec());
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
                    for e in &encoded {
                        tx.push_event(e, now())?;
                    }
                    Ok(())
                })?;
                observer.committed(&p.store, id, &meant, &announced);
                Ok::<_, NodeError>(p.store.get_meta(&keep_addr)?)
            })
            .await?;
        if ready {
            self.intents.remove(&temp);
        }
        self.wake_event_waiters(events);
        // A durable channel keeps its peer: redial it whenever the connection drops.
        if let Some(addr) = addr.and_then(|b| String::from_utf8(b).ok()) {
            let _ = self.shared.net.keep_peer(self.node_id, addr);
        }
        Ok(())
    }

    async fn broadcast_funding(&mut self, i: usize, tx: Transaction) {
        self.built.remove(&self.channels[i].temporary_channel_id());
        // Recorded in the wallet, sent after any unconfirmed parent (funds.rs).
        super::funds::broadcast_funding(&self.shared, tx).await;
    }

    /// A transient open failed: its coins and unbroadcast funding go back to the wallet, its
    /// intent is marked failed and the events telling of it are queued — one store job, the
    /// store's part in one transaction, so neither is seen without the other.
    async fn fail_open(
        &mut self,
        temporary_channel_id: ChannelId,
        reason: String,
        events: Vec<ChannelEvent>,
    ) {
        tracing::info!(channel = %temporary_channel_id, "open failed: {reason}");
        let built = self.built.remove(&temporary_channel_id);
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

    /// Gives back what an abandoned open held: its unbroadcast funding tx and locked coins.
    async fn release(&mut self, temporary_channel_id: ChannelId) -> Result<(), NodeError> {
        let built = self.built.remove(&temporary_channel_id);
        let intent = self.intents.get(&temporary_channel_id).copied();
        self.shared
            .db
            .run(move |p: &mut Parts| {
                if let Some(tx) = &built {
                    p.wallet.abandon(tx)?;
                }
                p.store.write(|w| {
                    if let Some(tx) = &built {
                        for input in &tx.input {
                            w.unlock_coin(&input.previous_output)?;
                        }
                    }
                    if let Some(intent) = intent {
                        w.unlock_coins_for_intent(intent)?;
                    }
                    Ok(())
                })?;
                Ok::<_, NodeError>(())
            })
            .await
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

    /// Queues an event that no persist carried (e.g. `ChannelOpenFailed` of a transient open).
    async fn emit(&mut self, event: &ChannelEvent) {
        if let Err(e) = self.shared.push_event(&Event::from_channel(event)).await {
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
