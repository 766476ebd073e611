//! The exported `Node`: the core node's API, every call that touches disk or network async and
//! run on the node's own runtime ([`crate::runtime`]); only pure reads are synchronous.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bitcoin::address::NetworkUnchecked;
use bitcoin::{Address, Amount, FeeRate};
use tern_core::node as core;

use crate::error::TernError;
use crate::runtime::Rt;
use crate::types::{
    channel_id, Balances, ChannelDetails, ClaimableBalance, Counters, NodeConfig, PendingEvent,
    SyncSummary,
};

/// A running Tern node. Stop it with [`Node::stop`]; dropping it (Kotlin `close()` or the
/// cleaner, Swift `deinit`, Python garbage collection) stops it too, from any thread.
#[derive(uniffi::Object)]
pub struct Node {
    inner: core::Node,
    rt: Rt,
}

impl Drop for Node {
    fn drop(&mut self) {
        let node = self.inner.clone();
        self.rt.dispose(async move { node.stop().await });
    }
}

fn address(text: &str) -> Result<Address, TernError> {
    Address::<NetworkUnchecked>::from_str(text)
        .map(Address::assume_checked)
        .map_err(|e| TernError::invalid("address", format!("{text:?}: {e}")))
}

/// The core builder for `config` and `seed`.
pub(crate) fn builder(config: NodeConfig, seed: tern_core::proto::keys::NodeSeed) -> core::Builder {
    let mut b = core::Builder::new(config.network.into(), config.data_dir, &config.esplora_url)
        .esplora_fallbacks(config.esplora_fallback_urls)
        .seed(seed)
        .connect_timeout(config.connect_timeout)
        .inbound_policy(config.inbound_policy.into())
        .anchor_reserve_per_channel(Amount::from_sat(config.anchor_reserve_per_channel_sat));
    if let Some(listen) = config.listen {
        b = b.listen(listen);
    }
    if let Some(every) = config.sync_interval {
        b = b.sync_interval(every);
    }
    b
}

/// A 32-byte seed from the bytes an app gives.
pub(crate) fn seed_bytes(seed: Vec<u8>) -> Result<tern_core::proto::keys::NodeSeed, TernError> {
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|s: Vec<u8>| TernError::invalid("seed", format!("{} bytes, not 32", s.len())))?;
    Ok(seed.into())
}

impl Node {
    async fn start_with(
        config: NodeConfig,
        seed: tern_core::proto::keys::NodeSeed,
    ) -> Result<Arc<Node>, TernError> {
        let rt = Rt::new(config.runtime_threads)?;
        let b = builder(config, seed);
        match rt.spawned(b.start()).await {
            Ok(Ok(inner)) => Ok(Arc::new(Node { inner, rt })),
            Ok(Err(e)) => {
                rt.dispose(async {});
                Err(e.into())
            }
            Err(e) => {
                rt.dispose(async {});
                Err(e)
            }
        }
    }

    /// The runtime's handle (tests: run something on the node's own threads).
    #[cfg(test)]
    pub(crate) fn runtime_handle(&self) -> tokio::runtime::Handle {
        self.rt.handle().clone()
    }

    /// Runs `call` on the core node as a task of the node's runtime.
    async fn call<T, F>(
        &self,
        call: impl FnOnce(core::Node) -> F + Send + 'static,
    ) -> Result<T, TernError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, core::NodeError>> + Send + 'static,
    {
        let node = self.inner.clone();
        Ok(self.rt.spawned(async move { call(node).await }).await??)
    }
}

#[uniffi::export]
impl Node {
    /// Starts a node from `config` and its 32-byte seed.
    ///
    /// The seed is the app's to keep (in the Keychain / Keystore): Tern never writes it
    /// anywhere, so a data dir without the app's copy of its seed cannot be opened again and
    /// its funds are lost. The database records the node id it belongs to: a start with
    /// another seed fails with `InvalidInput` ("this database belongs to node 02ab…, the seed
    /// is node 03cd…") and writes nothing.
    #[uniffi::constructor(name = "start")]
    pub async fn start(config: NodeConfig, seed: Vec<u8>) -> Result<Arc<Node>, TernError> {
        Self::start_with(config, seed_bytes(seed)?).await
    }

    /// Starts a node from BIP39 words and an optional passphrase (its wallet is the standard
    /// BIP84 wallet of those words). As with [`Node::start`], the words are the app's to
    /// keep; Tern never writes them.
    #[uniffi::constructor(name = "start_with_mnemonic")]
    pub async fn start_with_mnemonic(
        config: NodeConfig,
        words: String,
        passphrase: Option<String>,
    ) -> Result<Arc<Node>, TernError> {
        let seed = tern_core::proto::keys::NodeSeed::from_words(&words, passphrase.as_deref())
            .map_err(|e| TernError::invalid("mnemonic", e))?;
        Self::start_with(config, seed).await
    }

    /// The node id (33-byte public key, hex).
    pub fn node_id(&self) -> String {
        self.inner.node_id().to_string()
    }

    /// Where the node accepts peers (`host:port`), if it listens.
    pub fn listen_addr(&self) -> Option<String> {
        self.inner.listen_addr().map(|a| a.to_string())
    }

    /// Whether the node is stopped.
    pub fn is_stopped(&self) -> bool {
        self.inner.is_stopped()
    }

    /// The height the chain watcher last synced to.
    pub fn synced_height(&self) -> Option<u32> {
        self.inner.synced_height()
    }

    /// What the node has cost since it started (no round trip).
    pub fn counters(&self) -> Counters {
        self.inner.counters().into()
    }

    /// Stops the node: every waiter wakes with `Stopped`, the database and the data-dir lock
    /// are released before it returns.
    pub async fn stop(&self) -> Result<(), TernError> {
        self.call(|n| async move {
            n.stop().await;
            Ok(())
        })
        .await
    }

    /// Connects to a peer (`host:port`).
    pub async fn connect(&self, node_id: String, address: String) -> Result<(), TernError> {
        let id = crate::types::node_id(&node_id)?;
        self.call(move |n| async move { n.connect(id, &address).await })
            .await
    }

    /// Disconnects a peer.
    pub async fn disconnect(&self, node_id: String) -> Result<(), TernError> {
        let id = crate::types::node_id(&node_id)?;
        self.call(move |n| async move { n.disconnect(id).await })
            .await
    }

    /// Opens a channel of `channel_value_sat` to a peer at `address`, funded by the wallet;
    /// returns its temporary id (`ChannelPending` names the final one).
    pub async fn open_channel(
        &self,
        node_id: String,
        address: String,
        channel_value_sat: u64,
        push_msat: u64,
        announce: bool,
    ) -> Result<String, TernError> {
        let id = crate::types::node_id(&node_id)?;
        let params = core::OpenChannelParams::new(id, address, Amount::from_sat(channel_value_sat))
            .push_msat(push_msat)
            .announce(announce);
        self.call(move |n| async move { n.open_channel(params).await })
            .await
            .map(|c| c.to_string())
    }

    /// Accepts a channel an `OpenChannelRequest` announced.
    pub async fn accept_channel(
        &self,
        node_id: String,
        temporary_channel_id: String,
    ) -> Result<(), TernError> {
        let (id, temp) = (
            crate::types::node_id(&node_id)?,
            channel_id(&temporary_channel_id)?,
        );
        self.call(move |n| async move { n.accept_channel(id, temp).await })
            .await
    }

    /// Refuses a channel an `OpenChannelRequest` announced.
    pub async fn reject_channel(
        &self,
        node_id: String,
        temporary_channel_id: String,
    ) -> Result<(), TernError> {
        let (id, temp) = (
            crate::types::node_id(&node_id)?,
            channel_id(&temporary_channel_id)?,
        );
        self.call(move |n| async move { n.reject_channel(id, temp).await })
            .await
    }

    /// Every channel.
    pub async fn list_channels(&self) -> Result<Vec<ChannelDetails>, TernError> {
        self.call(|n| async move { Ok(n.list_channels().await) })
            .await
            .map(|l| l.into_iter().map(Into::into).collect())
    }

    /// Connected peers' node ids.
    pub async fn list_peers(&self) -> Result<Vec<String>, TernError> {
        self.call(|n| async move { n.list_peers().await })
            .await
            .map(|l| l.iter().map(ToString::to_string).collect())
    }

    /// A fresh on-chain receive address.
    pub async fn new_address(&self) -> Result<String, TernError> {
        self.call(|n| async move { n.new_address().await })
            .await
            .map(|a| a.to_string())
    }

    /// On-chain balances.
    pub async fn list_balances(&self) -> Result<Balances, TernError> {
        self.call(|n| async move { n.list_balances().await })
            .await
            .map(Into::into)
    }

    /// What closing channels still give back on chain, and when.
    pub async fn claimable_balances(&self) -> Result<Vec<ClaimableBalance>, TernError> {
        self.call(|n| async move { Ok(n.claimable_balances()) })
            .await
            .map(|l| l.into_iter().map(Into::into).collect())
    }

    /// One sync with the chain, within `deadline` if given.
    pub async fn sync(&self, deadline: Option<Duration>) -> Result<SyncSummary, TernError> {
        self.call(move |n| async move { n.sync(deadline).await })
            .await
            .map(Into::into)
    }

    /// Pays `amount_sat` (`None`: every spendable coin, less the fee) to `address`, at
    /// `fee_rate_sat_per_vb` (`None`: the ~6-block estimate); returns the txid.
    pub async fn send_onchain(
        &self,
        address: String,
        amount_sat: Option<u64>,
        fee_rate_sat_per_vb: Option<u64>,
    ) -> Result<String, TernError> {
        let amount = amount_sat.map_or(core::SendAmount::All, |s| {
            core::SendAmount::Exact(Amount::from_sat(s))
        });
        let fee_rate = match fee_rate_sat_per_vb {
            None => None,
            Some(r) => Some(FeeRate::from_sat_per_vb(r).ok_or_else(|| {
                TernError::invalid("fee_rate", format!("{r} sat/vB is out of range"))
            })?),
        };
        self.call(move |n| async move { n.send_onchain(&address, amount, fee_rate).await })
            .await
            .map(|t| t.to_string())
    }

    /// Closes a channel cooperatively, paying our share to `address` (or a fresh wallet
    /// address). Returns once the close is stored; `ChannelClosing` and `ChannelClosed`
    /// follow.
    pub async fn close_channel(
        &self,
        channel_id: String,
        address: Option<String>,
    ) -> Result<(), TernError> {
        let id = crate::types::channel_id(&channel_id)?;
        let destination = address.as_deref().map(self::address).transpose()?;
        self.call(move |n| async move { n.close_channel(id, destination).await })
            .await
    }

    /// Broadcasts our latest commitment; our funds come back to the wallet once its
    /// timelock expires.
    pub async fn force_close_channel(&self, channel_id: String) -> Result<(), TernError> {
        let id = crate::types::channel_id(&channel_id)?;
        self.call(move |n| async move { n.force_close_channel(id).await })
            .await
    }

    /// The oldest pending event, if any (delivered again until `event_handled`).
    pub async fn next_event(&self) -> Result<Option<PendingEvent>, TernError> {
        self.call(|n| async move { n.next_event().await })
            .await
            .map(|e| e.map(Into::into))
    }

    /// Up to `limit` pending events, oldest first.
    pub async fn pending_events(&self, limit: u32) -> Result<Vec<PendingEvent>, TernError> {
        self.call(move |n| async move { n.pending_events(limit as usize).await })
            .await
            .map(|l| l.into_iter().map(Into::into).collect())
    }

    /// Waits for the next pending event; `Stopped` when the node stops. Cancelling the
    /// caller (a Kotlin coroutine) cancels the wait.
    pub async fn wait_next_event(&self) -> Result<PendingEvent, TernError> {
        let node = self.inner.clone();
        let event = self
            .rt
            .entered(async move { node.wait_next_event().await })
            .await?;
        Ok(event.into())
    }

    /// [`Node::wait_next_event`] for at most `timeout`: `None` if nothing came (Swift cannot
    /// cancel a wait: it loops on this).
    pub async fn wait_next_event_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<PendingEvent>, TernError> {
        let node = self.inner.clone();
        let waited = self
            .rt
            .entered(async move { tokio::time::timeout(timeout, node.wait_next_event()).await })
            .await;
        match waited {
            Ok(event) => Ok(Some(event?.into())),
            Err(_elapsed) => Ok(None),
        }
    }

    /// Marks an event handled: it is not delivered again.
    pub async fn event_handled(&self, seq: u64) -> Result<(), TernError> {
        self.call(move |n| async move { n.event_handled(seq).await })
            .await
    }
}
