//! Hostile peers against the connection manager over loopback TCP, with counted bounds (issue
//! 17 §1; the pyln-proto suite in tests/hostile drives a whole daemon): inbound connections past
//! the limit are closed at once, a slowloris handshake is cut at the handshake timeout, a peer
//! that asks for pongs and never reads them is disconnected once its queue is full, and an
//! unknown even message gets a `warning` before the close.

// This binary's TRACE log file, for the log-secret check (see common/trace.rs).
#[path = "common/trace.rs"]
mod trace;

use std::time::Duration;

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::Network;
use tern_core::net::{ConnectionManager, DisconnectReason, NetConfig, NetEvent};
use tern_core::proto::transport::{
    Decryptor, Encryptor, Handshake, HandshakeStep, LENGTH_HEADER_LEN, MAC_LEN,
};
use tern_core::proto::wire::{Features, Init, Message, Ping};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

fn regtest() -> ChainHash {
    ChainHash::using_genesis_block(Network::Regtest)
}

fn config() -> NetConfig {
    let mut cfg = NetConfig::new(SecretKey::from_slice(&[7; 32]).expect("key"), regtest());
    cfg.init_timeout = Duration::from_secs(3);
    cfg
}

async fn listening(
    cfg: NetConfig,
) -> (ConnectionManager, mpsc::UnboundedReceiver<NetEvent>, String) {
    let (m, ev) = ConnectionManager::start(cfg);
    let addr = m.listen("127.0.0.1:0").await.expect("bind").to_string();
    (m, ev, addr)
}

/// Waits for `cond`, polling (the counters have no event of their own).
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether the other end closed `s` (EOF or reset) before `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read).await.is_ok()
}

/// A raw BOLT 8 peer built from tern-proto's transport: handshake and `init` done.
struct RawPeer {
    stream: TcpStream,
    enc: Encryptor,
    dec: Decryptor,
}

impl RawPeer {
    async fn connect(addr: &str, node: PublicKey, seed: u8) -> RawPeer {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let ours = SecretKey::from_slice(&[seed; 32]).expect("key");
        let eph = SecretKey::from_slice(&[seed.wrapping_add(100); 32]).expect("key");
        let (hs, act_one) = Handshake::initiator(ours, node, eph);
        stream.write_all(&act_one).await.expect("act one");
        let mut act_two = vec![0u8; hs.expected_len()];
        stream.read_exact(&mut act_two).await.expect("act two");
        let HandshakeStep::Done {
            transport, send, ..
        } = hs.process(&act_two).expect("act two ok")
        else {
            panic!("the initiator is done after act two")
        };
        stream.write_all(&send).await.expect("act three");
        let (enc, dec) = transport.split();
        let mut peer = RawPeer { stream, enc, dec };
        let theirs = peer.read().await.expect("their init");
        assert!(matches!(theirs, Message::Init(_)), "{theirs:?}");
        let init = Init {
            features: Features::tern_init(),
            networks: Some(vec![regtest()]),
            remote_addr: None,
        };
        peer.write(&Message::Init(init).encode())
            .await
            .expect("init");
        peer
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let frame = self.enc.encrypt_message(bytes).expect("encrypt");
        self.stream.write_all(&frame).await
    }

    async fn read(&mut self) -> Option<Message> {
        let mut header = [0u8; LENGTH_HEADER_LEN];
        self.stream.read_exact(&mut header).await.ok()?;
        let len = self.dec.decrypt_length(&header).ok()?;
        let mut body = vec![0u8; len + MAC_LEN];
        self.stream.read_exact(&mut body).await.ok()?;
        Message::decode(&self.dec.decrypt_body(&body).ok()?).ok()
    }
}

async fn next_event(ev: &mut mpsc::UnboundedReceiver<NetEvent>) -> NetEvent {
    tokio::time::timeout(WAIT, ev.recv())
        .await
        .expect("event in time")
        .expect("manager up")
}

#[tokio::test]
async fn inbound_connections_past_the_limit_are_closed_at_once() {
    let mut cfg = config();
    cfg.max_inbound_connections = 5;
    let (m, _ev, addr) = listening(cfg).await;
    let mut socks = Vec::new();
    for _ in 0..20 {
        socks.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    until("20 accepts counted", || {
        m.inbound_accepted() + m.inbound_refused() == 20
    })
    .await;
    assert_eq!(m.inbound_accepted(), 5);
    assert_eq!(m.inbound_refused(), 15);
    assert_eq!(m.inbound_open(), 5);
    // The refused ones see EOF at once; the held ones wait for act one (3 s timeout).
    let mut closed = 0;
    for s in &mut socks {
        if closed_within(s, Duration::from_millis(300)).await {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 15,
        "refused connections are closed, held ones are not"
    );
    drop(socks);
    until("the slots free", || m.inbound_open() == 0).await;
    // A real peer gets in afterwards.
    let node = m.node_id();
    let mut peer = RawPeer::connect(&addr, node, 9).await;
    peer.write(&Message::Ping(Ping::new(4, 0)).encode())
        .await
        .expect("ping");
    assert!(matches!(peer.read().await, Some(Message::Pong(_))));
    assert_eq!(m.inbound_accepted(), 6);
}

#[tokio::test]
async fn slowloris_handshake_is_cut_at_the_timeout() {
    let mut cfg = config();
    cfg.init_timeout = Duration::from_millis(800);
    let (_m, mut ev, addr) = listening(cfg).await;
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    // One byte every 100 ms of a 50-byte act one: 5 s to finish, cut at 0.8 s.
    let mut sent = 0;
    for _ in 0..50 {
        if s.write_all(&[0x00]).await.is_err() {
            break;
        }
        sent += 1;
        if closed_within(&mut s, Duration::from_millis(100)).await {
            break;
        }
    }
    assert!(
        sent < 20,
        "the node took {sent} bytes of a trickled act one"
    );
    match next_event(&mut ev).await {
        NetEvent::ConnectFailed { reason, .. } => assert_eq!(reason, DisconnectReason::Timeout),
        other => panic!("expected ConnectFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_peer_that_never_reads_its_pongs_is_disconnected() {
    let (m, mut ev, addr) = listening(config()).await;
    let mut peer = RawPeer::connect(&addr, m.node_id(), 3).await;
    let NetEvent::PeerConnected { sender, .. } = next_event(&mut ev).await else {
        panic!("expected PeerConnected")
    };
    // 65,531-byte pongs asked for and never read: the queue (256 KiB) and the socket buffers
    // fill, and the node closes the connection instead of buffering more.
    let big = Message::Ping(Ping::new(65_531, 0)).encode();
    let disconnected = async {
        loop {
            match ev.recv().await {
                Some(NetEvent::PeerDisconnected { reason, .. }) => return reason,
                Some(_) => {}
                None => panic!("manager gone"),
            }
        }
    };
    let flood = async {
        for _ in 0..100_000 {
            if peer.write(&big).await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await
    };
    let reason = tokio::select! {
        r = tokio::time::timeout(WAIT * 3, disconnected) => r.expect("disconnected in time"),
        _ = flood => unreachable!(),
    };
    assert_eq!(reason, DisconnectReason::SendQueueFull);
    assert!(sender.queued_bytes() <= tern_core::net::DEFAULT_MAX_QUEUED_BYTES);
}

#[tokio::test]
async fn unknown_even_message_gets_a_warning_then_the_close() {
    let (m, mut ev, addr) = listening(config()).await;
    let mut peer = RawPeer::connect(&addr, m.node_id(), 4).await;
    let _ = next_event(&mut ev).await;
    peer.write(&[0x12, 0x34, 1, 2, 3]).await.expect("send");
    let warning = loop {
        match peer.read().await {
            Some(Message::Warning(w)) => break w,
            Some(_) => {}
            None => panic!("closed without a warning"),
        }
    };
    let text = String::from_utf8_lossy(&warning.data).to_string();
    assert!(text.contains("4660"), "{text}");
    assert!(peer.read().await.is_none(), "still open after the warning");
    match next_event(&mut ev).await {
        NetEvent::PeerDisconnected { reason, .. } => {
            assert!(matches!(reason, DisconnectReason::Decode(_)), "{reason:?}")
        }
        other => panic!("expected PeerDisconnected, got {other:?}"),
    }
}
