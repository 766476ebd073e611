//! One connection: handshake and `init` under a timeout, then a read task, a write task and a
//! supervisor that pings and closes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bitcoin::secp256k1::{rand, PublicKey, SecretKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn, Instrument};

use super::io::{dial, Stream};
use super::manager::Command;
use super::{DisconnectReason, InboundQueue, NetConfig, PeerReceiver, PeerSender, Queued};
use crate::proto::transport::{
    Decryptor, Encryptor, Handshake, HandshakeStep, Transport, LENGTH_HEADER_LEN, MAC_LEN,
};
use crate::proto::wire::{ChannelId, Init, Message, Ping, Warning};

/// What a connection task needs from its manager.
#[derive(Clone)]
pub(super) struct ConnCtx {
    pub cfg: Arc<NetConfig>,
    pub cmd: mpsc::UnboundedSender<Command>,
    pub shutdown: watch::Receiver<bool>,
}

/// A connection past `init`, handed to the manager.
pub(super) struct Established {
    pub node_id: PublicKey,
    pub their_init: Init,
    pub remote_addr: SocketAddr,
    pub inbound: bool,
    pub sender: PeerSender,
    pub receiver: PeerReceiver,
}

async fn read_message(
    rd: &mut (impl AsyncReadExt + Unpin),
    dec: &mut Decryptor,
) -> Result<Vec<u8>, DisconnectReason> {
    let mut header = [0u8; LENGTH_HEADER_LEN];
    rd.read_exact(&mut header).await?;
    let len = dec.decrypt_length(&header)?;
    let mut body = vec![0u8; len + MAC_LEN];
    rd.read_exact(&mut body).await?;
    Ok(dec.decrypt_body(&body)?)
}

async fn write_message(
    wr: &mut (impl AsyncWriteExt + Unpin),
    enc: &mut Encryptor,
    msg: &Message,
) -> Result<(), DisconnectReason> {
    write_encoded(wr, enc, &msg.encode()).await
}

async fn write_encoded(
    wr: &mut (impl AsyncWriteExt + Unpin),
    enc: &mut Encryptor,
    encoded: &[u8],
) -> Result<(), DisconnectReason> {
    let bytes = enc.encrypt_message(encoded)?;
    wr.write_all(&bytes).await?;
    Ok(())
}

/// Runs the handshake; `remote` is the node dialled (outbound) or `None` (inbound).
async fn handshake(
    stream: &mut Stream,
    node_secret: SecretKey,
    remote: Option<PublicKey>,
) -> Result<(Transport, PublicKey), DisconnectReason> {
    let ephemeral = SecretKey::new(&mut rand::thread_rng());
    let mut hs = match remote {
        Some(remote) => {
            let (hs, act_one) = Handshake::initiator(node_secret, remote, ephemeral);
            stream.write_all(&act_one).await?;
            hs
        }
        None => Handshake::responder(node_secret, ephemeral),
    };
    loop {
        let mut act = vec![0u8; hs.expected_len()];
        stream.read_exact(&mut act).await?;
        match hs.process(&act)? {
            HandshakeStep::Continue { next, send } => {
                stream.write_all(&send).await?;
                hs = next;
            }
            HandshakeStep::Done {
                transport,
                remote_static,
                send,
            } => {
                stream.write_all(&send).await?;
                return Ok((transport, remote_static));
            }
        }
    }
}

/// Handshake then `init` both ways, with the feature and chain checks; `peer` is the
/// address of the other end.
async fn establish(
    stream: &mut Stream,
    cfg: &NetConfig,
    remote: Option<PublicKey>,
    peer: SocketAddr,
) -> Result<(Transport, PublicKey, Init), DisconnectReason> {
    let (mut transport, node_id) = handshake(stream, cfg.node_secret, remote).await?;
    // BOLT 1: the receiver of a connection SHOULD tell the peer its public address.
    let remote_addr = match remote {
        None => address_descriptor(peer),
        Some(_) => None,
    };
    let ours = Init {
        features: cfg.features.clone(),
        networks: Some(vec![cfg.chain_hash]),
        remote_addr,
    };
    write_message(stream, &mut transport.encryptor, &ours.into()).await?;
    let first = read_message(stream, &mut transport.decryptor).await?;
    let theirs = match Message::decode(&first)? {
        Message::Init(init) => init,
        other => return Err(DisconnectReason::InitExpected(other.name())),
    };
    let refusal = if let Err(e) = cfg.features.check_compatible(&theirs.features) {
        Some(DisconnectReason::IncompatibleFeatures(e))
    } else if !theirs.accepts_chain(&cfg.chain_hash) {
        Some(DisconnectReason::NoCommonChain)
    } else {
        None
    };
    if let Some(reason) = refusal {
        let warning = Warning::new(ChannelId::ALL, &reason.to_string());
        // Best effort: the connection is closed whatever happens.
        let _ = write_message(stream, &mut transport.encryptor, &warning.into()).await;
        return Err(reason);
    }
    Ok((transport, node_id, theirs))
}

/// The BOLT 7 address descriptor of a public IP address (type 1: IPv4, type 2: IPv6, then the
/// port), or `None` for loopback, private and link-local addresses, which BOLT 1 says not to
/// send as `remote_addr`.
pub(super) fn address_descriptor(addr: SocketAddr) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(19);
    match addr.ip() {
        std::net::IpAddr::V4(ip) => {
            if ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified() {
                return None;
            }
            out.push(1);
            out.extend_from_slice(&ip.octets());
        }
        std::net::IpAddr::V6(ip) => {
            if ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_unique_local()
                || ip.is_unicast_link_local()
            {
                return None;
            }
            out.push(2);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
    Some(out)
}

/// Dials `addr` expecting `node_id`, then runs the connection until it ends.
pub(super) async fn run_outbound(ctx: ConnCtx, conn_id: u64, node_id: PublicKey, addr: String) {
    let cfg = ctx.cfg.clone();
    let attempt = async {
        let (mut stream, remote_addr) = dial(&cfg, &addr).await?;
        let (t, id, init) = establish(&mut stream, &cfg, Some(node_id), remote_addr).await?;
        Ok::<_, DisconnectReason>((stream, remote_addr, t, id, init))
    };
    match tokio::time::timeout(cfg.init_timeout, attempt).await {
        Ok(Ok((stream, remote_addr, transport, id, init))) => {
            run_established(
                ctx,
                conn_id,
                stream,
                remote_addr,
                false,
                transport,
                id,
                init,
            )
            .await
        }
        Ok(Err(reason)) => fail(&ctx, Some(node_id), addr, reason),
        Err(_) => fail(&ctx, Some(node_id), addr, DisconnectReason::Timeout),
    }
}

/// Runs an accepted connection until it ends.
pub(super) async fn run_inbound(ctx: ConnCtx, conn_id: u64, mut stream: Stream, peer: SocketAddr) {
    let cfg = ctx.cfg.clone();
    let established = establish(&mut stream, &cfg, None, peer);
    match tokio::time::timeout(cfg.init_timeout, established).await {
        Ok(Ok((transport, id, init))) => {
            run_established(ctx, conn_id, stream, peer, true, transport, id, init).await
        }
        Ok(Err(reason)) => fail(&ctx, None, peer.to_string(), reason),
        Err(_) => fail(&ctx, None, peer.to_string(), DisconnectReason::Timeout),
    }
}

fn fail(ctx: &ConnCtx, node_id: Option<PublicKey>, addr: String, reason: DisconnectReason) {
    debug!(?node_id, %addr, %reason, "connection attempt failed");
    let _ = ctx.cmd.send(Command::Failed {
        node_id,
        addr,
        reason,
    });
}

#[allow(clippy::too_many_arguments)]
async fn run_established(
    ctx: ConnCtx,
    conn_id: u64,
    stream: Stream,
    remote_addr: SocketAddr,
    inbound: bool,
    transport: Transport,
    node_id: PublicKey,
    their_init: Init,
) {
    let span = tracing::info_span!("peer", node_id = %node_id, conn_id);
    let run = run_connection(
        ctx,
        conn_id,
        stream,
        remote_addr,
        inbound,
        transport,
        node_id,
        their_init,
    );
    run.instrument(span).await
}

#[allow(clippy::too_many_arguments)]
async fn run_connection(
    ctx: ConnCtx,
    conn_id: u64,
    stream: Stream,
    remote_addr: SocketAddr,
    inbound: bool,
    transport: Transport,
    node_id: PublicKey,
    their_init: Init,
) {
    let cfg = ctx.cfg.clone();
    info!(inbound, %remote_addr, "peer connected");

    let (rd, wr) = tokio::io::split(stream);
    let (enc, dec) = transport.split();
    let (out_tx, out_rx) = mpsc::channel::<Queued>(cfg.queue_len.max(1));
    let sender = PeerSender::new(node_id, out_tx, cfg.max_queued_bytes);
    let (in_tx, in_rx) = InboundQueue::new(cfg.queue_len, cfg.max_queued_bytes);
    let (close_tx, close_rx) = oneshot::channel::<DisconnectReason>();
    let pong_pending = Arc::new(AtomicBool::new(false));

    let established = Established {
        node_id,
        their_init,
        remote_addr,
        inbound,
        sender: sender.clone(),
        receiver: in_rx,
    };
    if ctx
        .cmd
        .send(Command::Established {
            conn_id,
            conn: Box::new(established),
            close: close_tx,
        })
        .is_err()
    {
        return;
    }

    let (drain_tx, drain_rx) = oneshot::channel::<()>();
    // Set by the writer when an injected fault closes the connection (fault builds), so the
    // reason stays the fault even if the peer's answering close reaches the reader first.
    let fault_fired = Arc::new(AtomicBool::new(false));
    let mut writer = tokio::spawn(write_loop(
        wr,
        enc,
        out_rx,
        drain_rx,
        cfg.clone(),
        fault_fired.clone(),
    ));
    let mut reader = tokio::spawn(read_loop(
        rd,
        dec,
        in_tx,
        sender.clone(),
        pong_pending.clone(),
        cfg.clone(),
    ));
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + cfg.ping_interval,
        cfg.ping_interval,
    );
    let mut shutdown = ctx.shutdown.clone();
    let mut reader_done = false;
    let mut close_rx = close_rx;
    // `graceful`: we decided to close while the writer was healthy, so queued messages (an
    // `error` sent just before `disconnect`, say) are flushed first.
    let (reason, graceful) = loop {
        tokio::select! {
            biased;
            r = &mut writer => break (r.unwrap_or(DisconnectReason::Io("write task failed".into())), false),
            r = &mut reader => {
                reader_done = true;
                let r = r.unwrap_or(DisconnectReason::Io("read task failed".into()));
                let fault = fault_fired.load(Ordering::SeqCst);
                if let (false, DisconnectReason::Decode(e)) = (fault, &r) {
                    // BOLT 1: an unknown even message (or one we cannot parse) closes the
                    // connection; a `warning` says why first, flushed before the close.
                    let warning = Warning::new(ChannelId::ALL, &format!("bad message: {e}"));
                    let _ = sender.try_send(warning);
                    break (r, true);
                }
                break (if fault { DisconnectReason::FaultInjected } else { r }, false);
            }
            r = &mut close_rx => break (r.unwrap_or(DisconnectReason::Shutdown), true),
            _ = shutdown.changed() => break (DisconnectReason::Shutdown, true),
            _ = ping.tick() => {
                if pong_pending.swap(true, Ordering::SeqCst) {
                    break (DisconnectReason::PongTimeout, false);
                }
                // A full queue means the peer is not reading; the pong check catches it.
                let _ = sender.try_send(Ping::new(0, 0));
            }
        }
    };
    if !reader_done {
        reader.abort();
    }
    if graceful {
        let _ = drain_tx.send(());
        if tokio::time::timeout(DRAIN_TIMEOUT, &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    } else {
        writer.abort();
    }
    info!(%reason, "peer disconnected");
    let _ = ctx.cmd.send(Command::Closed {
        conn_id,
        node_id,
        reason,
    });
}

/// How long a closing connection may spend flushing its queue.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

async fn write_loop(
    mut wr: WriteHalf<Stream>,
    mut enc: Encryptor,
    mut out_rx: mpsc::Receiver<Queued>,
    mut drain: oneshot::Receiver<()>,
    cfg: Arc<NetConfig>,
    fault_fired: Arc<AtomicBool>,
) -> DisconnectReason {
    loop {
        tokio::select! {
            msg = out_rx.recv() => {
                let Some(msg) = msg else { return DisconnectReason::Requested };
                if let Err(reason) = send_one(&mut wr, &mut enc, &msg, &cfg, &fault_fired).await {
                    return reason;
                }
            }
            _ = &mut drain => {
                // Closing: send what is already queued, refuse more, then close our side.
                out_rx.close();
                while let Ok(msg) = out_rx.try_recv() {
                    if let Err(reason) = send_one(&mut wr, &mut enc, &msg, &cfg, &fault_fired).await {
                        return reason;
                    }
                }
                let _ = wr.shutdown().await;
                return DisconnectReason::Requested;
            }
        }
    }
}

/// Writes one message, applying the fault-injection rules in test builds. An error means the
/// connection must close.
async fn send_one(
    wr: &mut WriteHalf<Stream>,
    enc: &mut Encryptor,
    msg: &Queued,
    cfg: &NetConfig,
    fault_fired: &AtomicBool,
) -> Result<(), DisconnectReason> {
    let _ = (cfg, fault_fired);
    tracing::trace!(
        msg = msg.name,
        msg_type = msg.msg_type,
        len = msg.bytes.len(),
        "sending"
    );
    #[cfg(any(test, feature = "dev-disconnect"))]
    {
        use super::faults::{FaultAction, FaultVerdict};
        match cfg.faults.on_send(msg.msg_type) {
            FaultVerdict::Pass => {}
            FaultVerdict::Fire(FaultAction::DropSilently) => {
                warn!(msg = msg.name, "fault injected: dropping message");
                return Ok(());
            }
            FaultVerdict::Fire(FaultAction::SendThenClose) => {
                warn!(msg = msg.name, "fault injected: send then close");
                write_encoded(wr, enc, &msg.bytes).await?;
                fault_fired.store(true, Ordering::SeqCst);
                let _ = wr.shutdown().await;
                return Err(DisconnectReason::FaultInjected);
            }
            FaultVerdict::Fire(_) => {
                warn!(msg = msg.name, "fault injected: close before send");
                fault_fired.store(true, Ordering::SeqCst);
                return Err(DisconnectReason::FaultInjected);
            }
        }
    }
    write_encoded(wr, enc, &msg.bytes).await
}

async fn read_loop(
    mut rd: ReadHalf<Stream>,
    mut dec: Decryptor,
    in_tx: InboundQueue,
    out_tx: PeerSender,
    pong_pending: Arc<AtomicBool>,
    cfg: Arc<NetConfig>,
) -> DisconnectReason {
    let _ = &cfg;
    loop {
        let bytes = match read_message(&mut rd, &mut dec).await {
            Ok(b) => b,
            Err(reason) => return reason,
        };
        let msg = match Message::decode(&bytes) {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "undecodable message");
                return DisconnectReason::Decode(e);
            }
        };
        #[cfg(any(test, feature = "dev-disconnect"))]
        let close_after = matches!(
            cfg.faults.on_receive(msg.msg_type()),
            super::faults::FaultVerdict::Fire(_)
        );
        match msg {
            Message::Ping(ping) => {
                if let Some(pong) = ping.response() {
                    if let Err(reason) = out_tx.send_if_room(pong).await {
                        return reason;
                    }
                }
            }
            Message::Pong(_) => pong_pending.store(false, Ordering::SeqCst),
            Message::Unknown { msg_type, .. } => debug!(msg_type, "ignoring unknown odd message"),
            Message::Init(_) => debug!("ignoring repeated init"),
            other => {
                if in_tx.send(other, bytes.len()).await.is_err() {
                    return DisconnectReason::ReceiverDropped;
                }
            }
        }
        #[cfg(any(test, feature = "dev-disconnect"))]
        if close_after {
            warn!("fault injected: close after receive");
            return DisconnectReason::FaultInjected;
        }
    }
}
