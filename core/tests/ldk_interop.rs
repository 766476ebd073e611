//! Interop: Tern's connection manager against LDK's `PeerManager` over loopback TCP, both
//! directions: BOLT 8 handshake, `init` accepted by both sides, pings answered.

// This binary's TRACE log file, for the log-secret check (see common/trace.rs).
#[path = "common/trace.rs"]
mod trace;

use std::sync::Arc;
use std::time::Duration;

use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::Network;
use lightning::ln::peer_handler::{
    ErroringMessageHandler, IgnoringMessageHandler, MessageHandler, PeerManager,
};
use lightning::sign::{KeysManager, NodeSigner, Recipient};
use lightning::util::logger::{Logger, Record};
use lightning_net_tokio::SocketDescriptor;
use tern_core::net::{ConnectionManager, NetConfig, NetEvent};
use tern_core::proto::wire::Features;
use tokio::sync::mpsc::UnboundedReceiver;

struct NoLog;
impl Logger for NoLog {
    fn log(&self, _record: Record) {}
}

type LdkPeerManager = PeerManager<
    SocketDescriptor,
    Arc<ErroringMessageHandler>,
    Arc<IgnoringMessageHandler>,
    Arc<IgnoringMessageHandler>,
    Arc<NoLog>,
    Arc<IgnoringMessageHandler>,
    Arc<KeysManager>,
    Arc<IgnoringMessageHandler>,
>;

const WAIT: Duration = Duration::from_secs(10);

fn ldk_node(seed: u8) -> (Arc<LdkPeerManager>, PublicKey) {
    let keys = Arc::new(KeysManager::new(&[seed; 32], 1_700_000_000, 0, true));
    let node_id = keys.get_node_id(Recipient::Node).expect("node id");
    let handler = MessageHandler {
        chan_handler: Arc::new(ErroringMessageHandler::new()),
        route_handler: Arc::new(IgnoringMessageHandler {}),
        onion_message_handler: Arc::new(IgnoringMessageHandler {}),
        custom_message_handler: Arc::new(IgnoringMessageHandler {}),
        send_only_message_handler: Arc::new(IgnoringMessageHandler {}),
    };
    let pm = PeerManager::new(
        handler,
        1_700_000_000,
        &[seed ^ 0xff; 32],
        Arc::new(NoLog),
        keys,
    );
    (Arc::new(pm), node_id)
}

fn tern_node(seed: u8) -> (ConnectionManager, UnboundedReceiver<NetEvent>) {
    let cfg = NetConfig::new(
        SecretKey::from_slice(&[seed; 32]).expect("valid key"),
        ChainHash::using_genesis_block(Network::Regtest),
    );
    // Default 30 s pings: during the test only LDK pings, so only our pongs keep LDK happy.
    ConnectionManager::start(cfg)
}

async fn expect_connected(
    ev: &mut UnboundedReceiver<NetEvent>,
    ldk_id: PublicKey,
    inbound: bool,
) -> tern_core::net::PeerSender {
    match tokio::time::timeout(WAIT, ev.recv())
        .await
        .expect("event in time")
    {
        Some(NetEvent::PeerConnected {
            node_id,
            inbound: got_inbound,
            their_features,
            sender,
            ..
        }) => {
            assert_eq!(node_id, ldk_id);
            assert_eq!(got_inbound, inbound);
            // LDK's features passed our compatibility check; it offers static_remote_key.
            assert!(their_features.supports(tern_core::proto::wire::Feature::StaticRemoteKey));
            sender
        }
        other => panic!("expected PeerConnected, got {other:?}"),
    }
}

async fn wait_for_ldk_peer(pm: &LdkPeerManager, tern_id: PublicKey) -> bool {
    for _ in 0..100 {
        if pm.peer_by_node_id(&tern_id).is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// LDK pings on each timer tick and drops a peer that sent nothing by the next tick. Two
/// rounds with the connection still up prove Tern answers pings.
async fn pings_answered(
    pm: &LdkPeerManager,
    tern_id: PublicKey,
    ev: &mut UnboundedReceiver<NetEvent>,
) {
    for _ in 0..3 {
        pm.timer_tick_occurred();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(pm.peer_by_node_id(&tern_id).is_some(), "LDK dropped Tern");
    assert!(ev.try_recv().is_err(), "Tern saw an unexpected event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tern_dials_ldk() {
    let (pm, ldk_id) = ldk_node(1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let pm2 = pm.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let std_stream = stream.into_std().expect("std stream");
            tokio::spawn(lightning_net_tokio::setup_inbound(pm2.clone(), std_stream));
        }
    });

    let (tern, mut ev) = tern_node(2);
    tern.connect(ldk_id, addr.to_string()).expect("running");
    let _sender = expect_connected(&mut ev, ldk_id, false).await;
    assert!(
        wait_for_ldk_peer(&pm, tern.node_id()).await,
        "LDK never listed Tern"
    );
    let details = pm.peer_by_node_id(&tern.node_id()).expect("listed");
    assert!(details.is_inbound_connection);
    // LDK parsed Tern's init: the offered bits are what Tern sent.
    let ours = Features::tern_init();
    let theirs = Features::from_be_bytes(
        &details
            .init_features
            .le_flags()
            .iter()
            .rev()
            .copied()
            .collect::<Vec<_>>(),
    );
    assert_eq!(theirs, ours);
    pings_answered(&pm, tern.node_id(), &mut ev).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldk_dials_tern() {
    let (pm, ldk_id) = ldk_node(3);
    let (tern, mut ev) = tern_node(4);
    let addr = tern.listen("127.0.0.1:0").await.expect("bind");
    let connection = lightning_net_tokio::connect_outbound(pm.clone(), tern.node_id(), addr)
        .await
        .expect("LDK connects");
    tokio::spawn(connection);
    let _sender = expect_connected(&mut ev, ldk_id, true).await;
    assert!(
        wait_for_ldk_peer(&pm, tern.node_id()).await,
        "LDK never completed init"
    );
    assert!(
        !pm.peer_by_node_id(&tern.node_id())
            .expect("listed")
            .is_inbound_connection
    );
    pings_answered(&pm, tern.node_id(), &mut ev).await;
}

/// LDK sends a `channel_update` to its peer for an unannounced channel right after
/// `channel_ready`: Tern decodes it (it used to close the connection on the unknown even
/// type 258), with the signature over the same bytes LDK signed.
#[test]
fn ldk_channel_update_decodes() {
    use bitcoin::hashes::{sha256d, Hash};
    use bitcoin::secp256k1::{Message as SecpMessage, Secp256k1};
    use lightning::ln::msgs::{ChannelUpdate as LdkChannelUpdate, UnsignedChannelUpdate};
    use lightning::util::ser::Writeable;
    use tern_core::proto::wire::{ChannelUpdate, Message};

    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[9; 32]).expect("key");
    let contents = UnsignedChannelUpdate {
        chain_hash: ChainHash::using_genesis_block(Network::Regtest),
        short_channel_id: 0x0001_0200_0300_0004,
        timestamp: 1_700_000_123,
        message_flags: 1,
        channel_flags: 1,
        cltv_expiry_delta: 72,
        htlc_minimum_msat: 1,
        htlc_maximum_msat: 198_000_000,
        fee_base_msat: 1000,
        fee_proportional_millionths: 0,
        excess_data: Vec::new(),
    };
    let digest = sha256d::Hash::hash(&contents.encode());
    let signature = secp.sign_ecdsa(&SecpMessage::from_digest(digest.to_byte_array()), &key);
    let ldk = LdkChannelUpdate {
        signature,
        contents: contents.clone(),
    };
    let mut bytes = 258u16.to_be_bytes().to_vec();
    bytes.extend_from_slice(&ldk.encode());

    let Ok(Message::ChannelUpdate(ours)) = Message::decode(&bytes) else {
        panic!(
            "LDK's channel_update does not decode: {:?}",
            Message::decode(&bytes)
        );
    };
    let expected = ChannelUpdate {
        signature,
        chain_hash: contents.chain_hash,
        short_channel_id: tern_core::proto::wire::ShortChannelId(contents.short_channel_id),
        timestamp: contents.timestamp,
        message_flags: 1,
        channel_flags: 1,
        cltv_expiry_delta: 72,
        htlc_minimum_msat: 1,
        fee_base_msat: 1000,
        fee_proportional_millionths: 0,
        htlc_maximum_msat: 198_000_000,
        excess_data: Vec::new(),
    };
    assert_eq!(ours, expected);
    assert_eq!(Message::ChannelUpdate(ours.clone()).encode(), bytes);
    let signed = sha256d::Hash::hash(&ours.signed_bytes());
    secp.verify_ecdsa(
        &SecpMessage::from_digest(signed.to_byte_array()),
        &ours.signature,
        &PublicKey::from_secret_key(&secp, &key),
    )
    .expect("the signature covers the signed bytes");
}
