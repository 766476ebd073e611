//! The node's public methods. Every one that touches the store, the wallet or the network is
//! `async` and awaits the store thread or a peer task; only pure getters are synchronous.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use bitcoin::{Address, Amount};
use tokio::sync::oneshot;

use super::db::Parts;
use super::peer::PeerCommand;
use super::{
    lock, peer_addr_key, Balances, ChannelDetails, Event, Node, NodeError, OpenChannelParams,
};
use crate::proto::wire::ChannelId;
use crate::store::NewOpenIntent;

impl Node {
    /// Our node id.
    pub fn node_id(&self) -> PublicKey {
        self.shared.node_id
    }

    /// The address peers can reach us on, if listening.
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen_addr
    }

    /// Whether the node has stopped (by [`Node::stop`], halted after a storage failure, or
    /// killed by a test hook).
    pub fn is_stopped(&self) -> bool {
        *self.shared.stopped.borrow()
    }

    pub(super) fn check_running(&self) -> Result<(), NodeError> {
        if self.is_stopped() {
            Err(NodeError::Stopped)
        } else {
            Ok(())
        }
    }

    /// What the node has cost since it started: chain requests, SQLite commits and fsyncs,
    /// dials (a wake reports the same for itself), and the process's lock acquisitions and waits. No round trip: the store thread publishes
    /// its figures after every job.
    pub fn counters(&self) -> super::Counters {
        let (commits, fsyncs) = self.shared.db.stats();
        let (lock_acquisitions, lock_waits, _) = super::lock_stats();
        super::Counters {
            requests: self.shared.source.requests(),
            commits,
            fsyncs,
            dials: self.shared.net.dials(),
            http_bytes: self.shared.source.http_bytes(),
            lock_acquisitions,
            lock_waits,
        }
    }

    /// Connects to a peer (and remembers its address for reconnection).
    pub async fn connect(&self, node_id: PublicKey, address: &str) -> Result<(), NodeError> {
        self.check_running()?;
        let (key, value) = (peer_addr_key(&node_id), address.as_bytes().to_vec());
        self.shared
            .db
            .run(move |p: &mut Parts| p.store.put_meta(&key, &value))
            .await?;
        self.shared
            .net
            .ensure_connected(node_id, address.to_string())?;
        Ok(())
    }

    /// Disconnects a peer and stops redialling it.
    pub async fn disconnect(&self, node_id: PublicKey) -> Result<(), NodeError> {
        self.check_running()?;
        self.shared.net.forget_peer(node_id)?;
        self.shared.net.disconnect(node_id)?;
        Ok(())
    }

    async fn wait_connected(&self, node_id: PublicKey) -> Result<(), NodeError> {
        let deadline = tokio::time::Instant::now() + self.shared.config.connect_timeout;
        loop {
            if self.shared.net.connected_peers().await?.contains(&node_id) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(NodeError::PeerUnreachable {
                    node_id,
                    reason: format!(
                        "not connected within {:?}",
                        self.shared.config.connect_timeout
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens a channel (we fund all of it). The request is persisted as an open intent first;
    /// the result arrives as events (`ChannelPending`, then `ChannelReady`, or
    /// `ChannelOpenFailed`). Returns the temporary channel id.
    ///
    /// Cancellation-safe: the open runs in a task of the node, so dropping this future (a
    /// cancelled coroutine or Swift task) only stops the wait for the id — the open still ends
    /// as events, and its intent never stays pending (it would hold its funds until restart).
    pub async fn open_channel(&self, params: OpenChannelParams) -> Result<ChannelId, NodeError> {
        self.check_running()?;
        let node = self.clone();
        tokio::spawn(async move { node.open_channel_inner(params).await })
            .await
            .map_err(|e| NodeError::Internal(format!("the open task ended: {e}")))?
    }

    async fn open_channel_inner(&self, params: OpenChannelParams) -> Result<ChannelId, NodeError> {
        let OpenChannelParams {
            node_id,
            address,
            channel_value,
            push_msat,
            announce,
        } = params;
        if channel_value == Amount::ZERO {
            return Err(NodeError::invalid("channel_value", "must be positive"));
        }
        if push_msat > channel_value.to_sat().saturating_mul(1000) {
            return Err(NodeError::invalid(
                "push_msat",
                format!(
                    "{push_msat} msat exceeds the channel's {} sat",
                    channel_value.to_sat()
                ),
            ));
        }
        let intent = NewOpenIntent {
            peer_id: node_id.serialize(),
            address: address.clone(),
            amount_sat: channel_value.to_sat(),
            push_msat,
            public: announce,
        };
        // Funds checked and the intent recorded as the reservation (one store job), before a
        // word to the peer.
        // An anchor channel (our config prefers anchors; the peer's features are not known
        // yet) must leave the anchor reserve on chain (`reserve.rs`).
        let reserve = if self.shared.config.channel.prefer_anchors {
            let (required, n) = self.shared.anchor_reserve(1);
            (required, n, self.shared.config.anchor_reserve_per_channel)
        } else {
            (Amount::ZERO, 0, Amount::ZERO)
        };
        let intent_id = self
            .shared
            .db
            .run(move |p: &mut Parts| super::funds::reserve_open(p, &intent, reserve))
            .await?;
        let connected = match self.connect(node_id, &address).await {
            Ok(()) => self.wait_connected(node_id).await,
            Err(e) => Err(e),
        };
        if let Err(e) = connected {
            self.shared.fail_intent(intent_id, e.to_string()).await?;
            return Err(e);
        }
        self.ask(node_id, |reply| PeerCommand::Open {
            intent_id,
            channel_value,
            push_msat,
            announce,
            reply,
        })
        .await
    }

    /// Sends a command to the peer's task and waits for its answer.
    pub(super) async fn ask<T>(
        &self,
        node_id: PublicKey,
        command: impl FnOnce(oneshot::Sender<Result<T, NodeError>>) -> PeerCommand,
    ) -> Result<T, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .peer_sender(node_id)
            .send(command(reply))
            .map_err(|_| NodeError::Stopped)?;
        answer.await.map_err(|_| NodeError::Stopped)?
    }

    async fn answer(
        &self,
        node_id: PublicKey,
        temporary_channel_id: ChannelId,
        accept: bool,
    ) -> Result<(), NodeError> {
        self.check_running()?;
        self.ask(node_id, |reply| PeerCommand::Answer {
            temporary_channel_id,
            accept,
            reply,
        })
        .await
    }

    /// Accepts a channel announced by [`Event::OpenChannelRequest`].
    pub async fn accept_channel(
        &self,
        node_id: PublicKey,
        temporary_channel_id: ChannelId,
    ) -> Result<(), NodeError> {
        self.answer(node_id, temporary_channel_id, true).await
    }

    /// Refuses a channel announced by [`Event::OpenChannelRequest`] (the peer gets an `error`).
    pub async fn reject_channel(
        &self,
        node_id: PublicKey,
        temporary_channel_id: ChannelId,
    ) -> Result<(), NodeError> {
        self.answer(node_id, temporary_channel_id, false).await
    }

    /// Every channel (from memory: never waits for the disk).
    pub async fn list_channels(&self) -> Vec<ChannelDetails> {
        let mut list: Vec<ChannelDetails> = lock(&self.shared.views)
            .values()
            .cloned()
            .map(|c| self.shared.with_fee_words(c))
            .collect();
        list.sort_by_key(|c| c.channel_id);
        list
    }

    /// Connected peers.
    pub async fn list_peers(&self) -> Result<Vec<PublicKey>, NodeError> {
        Ok(self.shared.net.connected_peers().await?)
    }

    /// A new on-chain receive address (persisted before it is returned).
    pub async fn new_address(&self) -> Result<Address, NodeError> {
        self.check_running()?;
        let address = self
            .shared
            .db
            .run(|p: &mut Parts| p.wallet.new_address())
            .await?;
        self.shared.fresh_addresses.store(true, Ordering::SeqCst);
        Ok(address)
    }

    /// On-chain balances (coins locked for opens in progress shown apart, and the reserve the
    /// anchor channels keep for fee bumps: [`Balances::anchor_reserve`]).
    pub async fn list_balances(&self) -> Result<Balances, NodeError> {
        let (mut b, spendable) = self
            .shared
            .db
            .run(|p: &mut Parts| {
                let locked = p.store.locked_coins()?;
                let spendable = p.wallet.spendable_sat(&locked);
                Ok::<_, NodeError>((p.wallet.balances(&locked), spendable))
            })
            .await?;
        self.shared.note_spendable(spendable);
        b.anchor_reserve = self.shared.anchor_reserve(0).0;
        Ok(b)
    }

    /// The height of the tip the chain watcher last synced to (persisted; `None` before the
    /// first sync). From memory.
    pub fn synced_height(&self) -> Option<u32> {
        self.shared.db.tip_height()
    }

    /// The oldest pending event, if any (stays pending until [`Node::event_handled`]).
    pub async fn next_event(&self) -> Result<Option<(u64, Event)>, NodeError> {
        Ok(self.pending_events(1).await?.into_iter().next())
    }

    /// Up to `limit` pending events, oldest first (each stays pending until
    /// [`Node::event_handled`]).
    pub async fn pending_events(&self, limit: usize) -> Result<Vec<(u64, Event)>, NodeError> {
        let pending = self
            .shared
            .db
            .run(move |p: &mut Parts| p.store.pending_events(limit))
            .await?;
        pending
            .into_iter()
            .map(|(seq, bytes)| {
                let event = Event::decode(&bytes).map_err(|e| NodeError::corrupt("events", e))?;
                Ok((seq, event))
            })
            .collect()
    }

    /// Waits for the next pending event; returns [`NodeError::Stopped`] when the node stops.
    pub async fn wait_next_event(&self) -> Result<(u64, Event), NodeError> {
        let mut stopped = self.shared.stopped.subscribe();
        loop {
            let notified = self.shared.events.notified();
            if *stopped.borrow() {
                return Err(NodeError::Stopped);
            }
            if let Some(e) = self.next_event().await? {
                return Ok(e);
            }
            tokio::select! {
                _ = notified => {}
                _ = stopped.changed() => {}
            }
        }
    }

    /// Marks an event handled (removes it from the queue).
    pub async fn event_handled(&self, seq: u64) -> Result<(), NodeError> {
        self.shared
            .db
            .run(move |p: &mut Parts| p.store.mark_event_handled(seq))
            .await?;
        Ok(())
    }

    /// Stops the node and releases everything it holds — both SQLite connections, the
    /// sockets, the tasks and the data-dir lock, in that order — before it returns, so another
    /// node can open the data dir at once. Every event waiter wakes with
    /// [`NodeError::Stopped`]. Everything durable is already on disk.
    pub async fn stop(&self) {
        self.shared.shutdown().await;
    }

    /// Dev builds: every breach of persist-before-act the node observed in what it actually
    /// did (sends, broadcasts, events checked against the records read back from SQLite; a
    /// channel left in memory ahead of its stored record after a failed write). Empty when all
    /// is well.
    #[cfg(feature = "dev-disconnect")]
    pub fn dev_durability_violations(&self) -> Vec<String> {
        self.shared.dev.audit().violations()
    }

    /// Dev builds: how many channel persists failed on purpose ([`super::StoreFaults`]).
    #[cfg(feature = "dev-disconnect")]
    pub fn dev_injected_store_failures(&self) -> u32 {
        self.shared.dev.audit().injected_count()
    }

    /// Dev builds: how many channel actions the node performed and checked.
    #[cfg(feature = "dev-disconnect")]
    pub fn dev_audited_actions(&self) -> u64 {
        self.shared.dev.audit().performed_count()
    }

    /// Dev builds: every `Input::SetFeerate` the funder's fee policy fed, in order: (channel,
    /// feerate_per_kw).
    #[cfg(feature = "dev-disconnect")]
    pub fn dev_feerates_set(&self) -> Vec<(ChannelId, u32)> {
        self.shared.dev.feerates_set()
    }
}
