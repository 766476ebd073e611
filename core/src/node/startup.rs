//! Starting a node: the data-dir lock, the store thread with the store, wallet and watcher,
//! the connection manager, every stored channel back in its peer's task (watches re-armed,
//! interrupted opens failed), and the loop that hands connection events to peer tasks.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use bitcoin::secp256k1::{PublicKey, Secp256k1};
use tokio::sync::{mpsc, watch, Notify};
use tracing::Instrument;

use super::db::{Db, Parts};
use super::*;
use crate::chain::{ChainError, ChainWatcher, DynSource, EsploraConfig, EsploraSource, Failover};
use crate::net::{ConnectionManager, NetConfig, NetEvent};
use crate::proto::channel::{ChannelRecord, ChannelState};
use crate::proto::keys::{KeysManager, WalletDescriptors};
use crate::store::{OpenIntent, Store};
use crate::wallet::OnchainWallet;

/// What start-up reads from the store, once.
struct Stored {
    channels: Vec<(PublicKey, ChannelRecord)>,
    intents: Vec<OpenIntent>,
}

/// The meta key holding the node id (33 bytes, compressed) the database belongs to: written
/// when the database is created, or at the first open of an older database (from before the
/// key existed) by a seed whose wallet matches the database's.
pub(crate) const NODE_ID_KEY: &str = "node_id";

/// Refuses a database that records another node id than the seed's, before anything is
/// written. Returns whether the database records one at all.
fn check_node_id(store: &Store, node_id: &PublicKey) -> Result<bool, NodeError> {
    let Some(bytes) = store.get_meta(NODE_ID_KEY)? else {
        return Ok(false);
    };
    let database = PublicKey::from_slice(&bytes)
        .map_err(|e| NodeError::corrupt("meta", format!("{NODE_ID_KEY}: {e}")))?;
    if database != *node_id {
        return Err(NodeError::WrongSeed {
            database: Box::new(database),
            seed: Box::new(*node_id),
        });
    }
    Ok(true)
}

fn open_parts(
    config: &Config,
    node_id: &PublicKey,
    descriptors: &WalletDescriptors,
    source: DynSource,
) -> Result<(Parts, Stored), NodeError> {
    let mut store = Store::open(config.data_dir.join(DB_FILE))?;
    store.guard_async_commits();
    let recorded = check_node_id(&store, node_id)?;
    let (mut wallet, _created) =
        match OnchainWallet::open(store.open_connection()?, descriptors, config.network) {
            Ok(opened) => opened,
            // A database from before the node id was recorded, opened with another seed: BDK
            // notices first; say what it means.
            Err(e) if !recorded && e.to_string().contains("Descriptor mismatch") => {
                return Err(NodeError::invalid(
                    "seed",
                    format!(
                        "this database's wallet was made from another seed than node \
                         {node_id}'s (the database predates recorded node ids): give this \
                         node's seed or mnemonic ({e})"
                    ),
                ));
            }
            Err(e) => return Err(e.into()),
        };
    wallet.guard_async_commits();
    if !recorded {
        // A new database, or an older one whose wallet this seed just opened: it is ours.
        store.put_meta(NODE_ID_KEY, &node_id.serialize())?;
    }
    let watcher = ChainWatcher::load(&store, source)?;
    // Every stored channel, decoded once: for the audit, the start-up reconciliation with the
    // chain watcher, and the peer tasks.
    let mut channels = Vec::new();
    for row in store.list_channels()? {
        let peer = PublicKey::from_slice(&row.peer_id)
            .map_err(|e| NodeError::corrupt("channels", format!("peer id: {e}")))?;
        let record = ChannelRecord::decode(&row.record)
            .map_err(|e| NodeError::corrupt("channels", format!("channel record: {e}")))?;
        channels.push((peer, record));
    }
    let intents = store.list_open_intents()?;
    Ok((
        Parts {
            store,
            wallet,
            watcher,
        },
        Stored { channels, intents },
    ))
}

/// Creates the data dir if needed, mode 0700 on unix (it holds the database, and the CLI keeps
/// the seed there); an existing data dir with another mode is set to 0700, as the database
/// file is set to 0600.
pub(super) fn create_data_dir(dir: &std::path::Path) -> Result<(), NodeError> {
    let fail =
        |e: std::io::Error| NodeError::invalid("data_dir", format!("{}: {e}", dir.display()));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir).map_err(fail)?;
        let mode = std::fs::metadata(dir).map_err(fail)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"),
                "data dir was not private; setting mode 0700");
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
        }
    }
    #[cfg(not(unix))]
    builder.create(dir).map_err(fail)?;
    Ok(())
}

impl Node {
    pub(crate) async fn start(
        config: Config,
        seed: NodeSeed,
        source: Option<DynSource>,
        #[cfg(feature = "dev-disconnect")] dev: DevSeams,
        held: Option<DirLock>,
    ) -> Result<Node, NodeError> {
        // A wake (`wake.rs`) took the lock itself, to tell `Busy` from other failures.
        let wake = held.is_some();
        let dir_lock = match held {
            Some(held) => held,
            None => {
                create_data_dir(&config.data_dir)?;
                DirLock::acquire(&config.data_dir)?
            }
        };
        let keys = KeysManager::from_seed(&seed, config.network)
            .map_err(|e| NodeError::invalid("seed", e.to_string()))?;
        let secp = Secp256k1::new();
        let node_secret = keys
            .node_secret_key()
            .map_err(|e| NodeError::invalid("seed", e.to_string()))?;
        let node_id = PublicKey::from_secret_key(&secp, &node_secret);
        let source = match source {
            Some(source) => source,
            None => esplora_source(&config)?,
        };
        #[cfg(not(feature = "dev-disconnect"))]
        let (hold_clock, gate) = (false, None);
        #[cfg(feature = "dev-disconnect")]
        let (hold_clock, gate) = (dev.hold_clock, dev.store_gate.clone());
        // The database is opened on the store thread (opening fsyncs); start-up's reads come
        // back with it.
        let (stored_tx, stored_rx) = tokio::sync::oneshot::channel();
        let (open_config, descriptors, open_source) =
            (config.clone(), keys.wallet_descriptors(), source.clone());
        let db = Db::start(hold_clock, gate, move || {
            let (parts, stored) = open_parts(&open_config, &node_id, &descriptors, open_source)?;
            let _ = stored_tx.send(stored);
            Ok(parts)
        })
        .await?;
        let stored = match stored_rx.await {
            Ok(stored) => stored,
            Err(_) => {
                db.close().await;
                return Err(NodeError::Internal("start-up read nothing".into()));
            }
        };
        let mut net_config = NetConfig::new(node_secret, config.channel.chain_hash);
        net_config.init_timeout = config.connect_timeout;
        net_config.max_inbound_connections = config.max_inbound_connections;
        net_config.max_queued_bytes = config.max_queued_bytes;
        if !config.channel.prefer_anchors {
            // No anchor channels either way: do not offer option_anchors in `init`.
            net_config
                .features
                .clear_bit(crate::proto::wire::Feature::Anchors.optional_bit());
        }
        #[cfg(feature = "dev-disconnect")]
        {
            net_config.faults = config.faults.clone();
            net_config.memory_net = dev.memory_net;
        }
        let (net, net_events) = ConnectionManager::start(net_config);
        #[cfg(feature = "dev-disconnect")]
        let dev = Arc::new(audit::DevObserver::new(
            audit::Audit::new(stored.channels.iter().map(|(_, r)| r)),
            config.store_faults.clone(),
            config.halt_after.clone(),
        ));
        #[cfg(feature = "dev-disconnect")]
        let observer: Arc<dyn observer::Observer> = dev.clone();
        #[cfg(not(feature = "dev-disconnect"))]
        let observer: Arc<dyn observer::Observer> = Arc::new(observer::Quiet);
        let (stopped, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            config,
            keys,
            secp,
            node_id,
            node_secret,
            db,
            source,
            net,
            peers: Mutex::new(HashMap::new()),
            fundings: Mutex::new(HashMap::new()),
            outputs: Mutex::new(HashMap::new()),
            destination: Mutex::new(None),
            views: Mutex::new(HashMap::new()),
            events: Notify::new(),
            sync_lock: tokio::sync::Mutex::new(()),
            stopped,
            tasks: Mutex::new(Vec::new()),
            fresh_addresses: AtomicBool::new(false),
            wallet_spendable_sat: std::sync::atomic::AtomicU64::new(0),
            cpfp_over_cap: Mutex::new(HashMap::new()),
            pending_inbound: Mutex::new(HashMap::new()),
            dir_lock: Mutex::new(Some(dir_lock)),
            dial_only: Mutex::new(wake.then(Default::default)),
            observer,
            #[cfg(feature = "dev-disconnect")]
            dev,
        });
        match Node::resume(&shared, stored, net_events).await {
            Ok(listen_addr) => Ok(Node {
                shared,
                listen_addr,
            }),
            Err(e) => {
                shared.shutdown().await;
                Err(e)
            }
        }
    }

    /// Fails interrupted opens, resumes every stored channel in its peer's task, redials the
    /// kept peers, reconciles the fundings with the chain watcher, starts listening.
    async fn resume(
        shared: &Arc<Shared>,
        stored: Stored,
        net_events: mpsc::UnboundedReceiver<NetEvent>,
    ) -> Result<Option<std::net::SocketAddr>, NodeError> {
        shared.fail_interrupted_intents(&stored.intents).await?;
        shared.release_child_locks().await?;
        let fundings: Vec<(PublicKey, Txid, bool)> = stored
            .channels
            .iter()
            .filter(|(_, r)| r.channel().state() != ChannelState::Failed)
            .filter_map(|(peer, r)| {
                let c = r.channel();
                c.funding()
                    .map(|f| (*peer, f.outpoint.txid, c.confirmation().is_some()))
            })
            .collect();
        let spent: Vec<(PublicKey, bitcoin::OutPoint)> = stored
            .channels
            .iter()
            .filter(|(_, r)| r.channel().funding_spend().is_some())
            .filter_map(|(peer, r)| r.channel().funding().map(|f| (*peer, f.outpoint)))
            .collect();
        let mut by_peer: HashMap<PublicKey, Vec<ChannelRecord>> = HashMap::new();
        for (peer, record) in stored.channels {
            by_peer.entry(peer).or_default().push(record);
        }
        for (peer, records) in by_peer {
            let (tx, rx) = mpsc::unbounded_channel();
            lock(&shared.peers).insert(peer, tx);
            let tip = shared.tip_height();
            let keep = records
                .iter()
                .any(|r| details::keeps_peer(r.channel(), tip));
            let mut task = PeerTask::new(shared.clone(), peer, records, &stored.intents);
            task.register_all();
            task.rearm_watches().await;
            shared.spawn(task.run(rx).instrument(peer_span(&peer)));
            // Peers whose channels are all closing on chain or closed are not redialled.
            let keep = keep && shared.may_keep(&peer);
            if let (true, Some(addr)) = (keep, shared.peer_addr(&peer).await?) {
                shared.net.keep_peer(peer, addr)?;
            }
        }
        sync::reconcile_chain_watches(shared, fundings).await?;
        sync::replay_funding_unspends(shared, spent).await?;
        let listen_addr = match &shared.config.listen {
            Some(addr) => Some(shared.net.listen(addr).await?),
            None => None,
        };
        shared.spawn(net_loop(shared.clone(), net_events));
        if let Some(every) = shared.config.sync_interval {
            let node = Node {
                shared: shared.clone(),
                listen_addr,
            };
            shared.spawn(async move {
                let mut stopped = node.shared.stopped.subscribe();
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = stopped.changed() => return,
                    }
                    match node.sync(Some(every)).await {
                        Ok(_) => {}
                        // No request was sent: the failure that started the backoff was
                        // logged at warn already.
                        Err(NodeError::Chain(e @ ChainError::BackingOff { .. })) => {
                            tracing::debug!("background sync skipped: {e}")
                        }
                        Err(e) => tracing::warn!("background sync failed: {e}"),
                    }
                }
            });
        }
        Ok(listen_addr)
    }
}

/// Hands established connections to their peer task and reports (dis)connections.
async fn net_loop(shared: Arc<Shared>, mut events: mpsc::UnboundedReceiver<NetEvent>) {
    let mut stopped = shared.stopped.subscribe();
    loop {
        let event = tokio::select! {
            e = events.recv() => match e { Some(e) => e, None => return },
            _ = stopped.changed() => return,
        };
        match event {
            NetEvent::PeerConnected {
                node_id,
                their_features,
                sender,
                receiver,
                ..
            } => {
                let _ = shared.peer_sender(node_id).send(PeerCommand::Connected {
                    sender,
                    receiver,
                    their_features,
                });
                if let Err(e) = shared.push_event(&Event::PeerConnected { node_id }).await {
                    tracing::warn!(peer = %node_id, "cannot queue event: {e}");
                }
            }
            NetEvent::PeerDisconnected { node_id, reason } => {
                let unexpected = peer_chain::unexpected(&reason);
                let _ = shared
                    .peer_sender(node_id)
                    .send(PeerCommand::Disconnected { unexpected });
                let event = Event::PeerDisconnected {
                    node_id,
                    reason: reason.to_string(),
                };
                if let Err(e) = shared.push_event(&event).await {
                    tracing::warn!(peer = %node_id, "cannot queue event: {e}");
                }
            }
            NetEvent::ConnectFailed {
                node_id,
                addr,
                reason,
            } => {
                tracing::debug!(peer = ?node_id, %addr, "connect failed: {reason}");
            }
        }
    }
}

/// The Esplora server of `config`, with its fall-backs if any.
fn esplora_source(config: &Config) -> Result<DynSource, NodeError> {
    let first = EsploraSource::new(&config.esplora)?;
    if config.esplora_fallbacks.is_empty() {
        return Ok(DynSource::new(first));
    }
    let others = config
        .esplora_fallbacks
        .iter()
        .map(|url| {
            EsploraSource::new(&EsploraConfig {
                url: EsploraConfig::new(url.as_str()).url,
                ..config.esplora.clone()
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DynSource::new(Failover::new(first, others)))
}
