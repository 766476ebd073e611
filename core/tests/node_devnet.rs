//! The node driver end to end against the devnet: two Tern nodes open a channel over TCP and
//! both reach ready; a node restarted from its data dir after the durable point resumes the
//! open by itself.

use std::time::Duration;

use bitcoin::{Amount, Network};
use tern_core::node::{Builder, Event, Node, OpenChannelParams};
use tern_devnet::Devnet;

mod common;

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tern-node-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

async fn node(devnet: &Devnet, data: &std::path::Path, seed: u8, listen: bool) -> Node {
    let mut b = Builder::new(Network::Regtest, data, &devnet.base_url()).seed([seed; 32]);
    if listen {
        b = b.listen("127.0.0.1:0");
    }
    b.start().await.expect("node starts")
}

/// Waits for an event matching `want`, marking everything seen as handled.
async fn wait_for(node: &Node, what: &str, want: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let next = tokio::time::timeout(left, node.wait_next_event())
            .await
            .ok();
        let Some(next) = next else {
            panic!(
                "timed out waiting for {what}; channels: {:?}",
                node.list_channels().await
            )
        };
        let (seq, event) = next.expect("event");
        node.event_handled(seq).await.expect("handled");
        common::node::check_durability(node, "node");
        if want(&event) {
            return event;
        }
        if let Event::ChannelOpenFailed { reason, .. } = &event {
            panic!("open failed while waiting for {what}: {reason}");
        }
    }
}

/// Waits until the devnet knows the funding of every channel the nodes list.
async fn wait_broadcast(devnet: &Devnet, nodes: &[&Node]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut listed = Vec::new();
        for n in nodes {
            listed.extend(n.list_channels().await);
        }
        let missing: Vec<_> = listed
            .into_iter()
            .filter_map(|c| c.funding_txo)
            .filter(|o| devnet.tx_state(&o.txid) == tern_devnet::TxState::Unknown)
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fundings never broadcast: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`wait_for`] on each node in turn.
async fn wait_both(nodes: &[&Node], what: &str, want: impl Fn(&Event) -> bool) {
    for n in nodes {
        wait_for(n, what, &want).await;
    }
}

async fn fund(devnet: &Devnet, node: &Node, sat: u64) {
    let address = node.new_address().await.expect("address");
    devnet
        .faucet(&address, Amount::from_sat(sat))
        .expect("faucet");
    devnet.mine(1);
    node.sync(None).await.expect("sync");
    assert_eq!(
        node.list_balances()
            .await
            .expect("balances")
            .confirmed
            .to_sat(),
        sat
    );
}

/// Mines a block and syncs both nodes until `done` holds for both.
async fn mine_until(devnet: &Devnet, nodes: &[&Node], blocks: u32) {
    // ChannelPending is queued with the durable state, just before the funder broadcasts:
    // let every known funding reach the mempool first.
    wait_broadcast(devnet, nodes).await;
    for _ in 0..blocks {
        devnet.mine(1);
        for n in nodes {
            n.sync(None).await.expect("sync");
            common::node::check_durability(n, "node");
        }
    }
}

#[tokio::test]
async fn two_nodes_open_a_channel_to_ready() {
    let devnet = Devnet::start().await.expect("devnet");
    let (dl, dp) = (dir("lsp"), dir("phone"));
    let lsp = node(&devnet, &dl, 1, true).await;
    let phone = node(&devnet, &dp, 2, false).await;
    lsp.sync(None).await.expect("sync");
    fund(&devnet, &phone, 1_000_000).await;
    let addr = lsp.listen_addr().expect("listening").to_string();

    let temp = phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(250_000))
                .push_msat(10_000_000)
                .announce(false),
        )
        .await
        .expect("open");
    assert_eq!(temp.to_string().len(), 64);
    let pending = wait_for(&phone, "phone ChannelPending", |e| {
        matches!(e, Event::ChannelPending { .. })
    })
    .await;
    wait_for(&lsp, "lsp ChannelPending", |e| {
        matches!(e, Event::ChannelPending { .. })
    })
    .await;
    let Event::ChannelPending { funding_txo, .. } = pending else {
        unreachable!()
    };
    wait_broadcast(&devnet, &[&phone]).await;
    assert_eq!(
        devnet.tx_state(&funding_txo.txid),
        tern_devnet::TxState::Mempool,
        "funding broadcast"
    );
    // The funding spent the wallet's coin: only the unconfirmed change is left.
    let b = phone.list_balances().await.expect("balances");
    assert_eq!(b.confirmed.to_sat(), 0, "{b:?}");
    assert!(
        (740_000..750_000).contains(&b.unconfirmed.to_sat()),
        "{b:?}"
    );

    mine_until(&devnet, &[&phone, &lsp], 3).await;
    wait_both(&[&phone, &lsp], "ChannelReady", |e| {
        matches!(e, Event::ChannelReady { .. })
    })
    .await;
    let ch = &phone.list_channels().await[0];
    assert_eq!(ch.status, "ready");
    assert_eq!(ch.channel_value.to_sat(), 250_000);
    assert_eq!(ch.balance_msat, 250_000_000 - 10_000_000);
    assert_eq!(lsp.list_channels().await[0].balance_msat, 10_000_000);
    // Wallet + channel add up: what left the wallet is the channel plus the funding fee.
    let b = phone.list_balances().await.expect("balances");
    assert_eq!(b.locked.to_sat(), 0, "locks released once ready");
    assert!(
        b.confirmed.to_sat() + 250_000 < 1_000_000 && b.confirmed.to_sat() + 250_000 > 990_000,
        "{b:?}"
    );
    phone.stop().await;
    lsp.stop().await;
    assert!(matches!(
        phone.wait_next_event().await,
        Err(tern_core::node::NodeError::Stopped)
    ));
}

#[tokio::test]
async fn a_restarted_funder_resumes_the_open() {
    let devnet = Devnet::start().await.expect("devnet");
    let (dl, dp) = (dir("lsp2"), dir("phone2"));
    let lsp = node(&devnet, &dl, 3, true).await;
    let phone = node(&devnet, &dp, 4, false).await;
    lsp.sync(None).await.expect("sync");
    fund(&devnet, &phone, 1_000_000).await;
    let addr = lsp.listen_addr().expect("listening").to_string();
    phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(300_000))
                .push_msat(0)
                .announce(false),
        )
        .await
        .expect("open");
    wait_for(&phone, "ChannelPending", |e| {
        matches!(e, Event::ChannelPending { .. })
    })
    .await;
    // The phone goes away after the durable point; a new process starts on the same data.
    phone.stop().await;
    drop(phone);
    mine_until(&devnet, &[&lsp], 2).await;
    let phone = node(&devnet, &dp, 4, false).await;
    assert!(
        phone
            .list_channels()
            .await
            .iter()
            .any(|c| c.channel_value.to_sat() == 300_000),
        "resumed from the store"
    );
    mine_until(&devnet, &[&phone, &lsp], 1).await;
    wait_both(&[&phone, &lsp], "ChannelReady", |e| {
        matches!(e, Event::ChannelReady { .. })
    })
    .await;
    phone.stop().await;
    lsp.stop().await;
}

#[tokio::test]
async fn three_channels_with_one_peer_and_twenty_peers_at_once() {
    let devnet = Devnet::start().await.expect("devnet");
    let lsp = node(&devnet, &dir("hub"), 10, true).await;
    lsp.sync(None).await.expect("sync");
    let addr = lsp.listen_addr().expect("listening").to_string();

    // One phone, three channels opened concurrently.
    let phone = node(&devnet, &dir("multi"), 11, false).await;
    for _ in 0..3 {
        let a = phone.new_address().await.expect("address");
        devnet
            .faucet(&a, Amount::from_sat(400_000))
            .expect("faucet");
    }
    // Twenty more phones, one channel each, all at once.
    let mut phones = Vec::new();
    for i in 0..20u8 {
        let p = node(&devnet, &dir(&format!("p{i}")), 100 + i, false).await;
        let a = p.new_address().await.expect("address");
        devnet
            .faucet(&a, Amount::from_sat(400_000))
            .expect("faucet");
        phones.push(p);
    }
    devnet.mine(1);
    phone.sync(None).await.expect("sync");
    for p in &phones {
        p.sync(None).await.expect("sync");
    }
    let lsp_id = lsp.node_id();
    let opens = (0..3).map(|_| {
        phone.open_channel(
            OpenChannelParams::new(lsp_id, addr.clone(), Amount::from_sat(100_000))
                .push_msat(0)
                .announce(false),
        )
    });
    for r in futures::future::join_all(opens).await {
        r.expect("open");
    }
    let opens = phones.iter().map(|p| {
        p.open_channel(
            OpenChannelParams::new(lsp_id, addr.clone(), Amount::from_sat(150_000))
                .push_msat(0)
                .announce(false),
        )
    });
    for r in futures::future::join_all(opens).await {
        r.expect("open");
    }
    for _ in 0..3 {
        wait_for(&phone, "ChannelPending", |e| {
            matches!(e, Event::ChannelPending { .. })
        })
        .await;
    }
    for p in &phones {
        wait_for(p, "ChannelPending", |e| {
            matches!(e, Event::ChannelPending { .. })
        })
        .await;
    }
    let mut all: Vec<&Node> = phones.iter().collect();
    all.push(&phone);
    all.push(&lsp);
    mine_until(&devnet, &all, 3).await;
    for _ in 0..3 {
        wait_for(&phone, "ChannelReady", |e| {
            matches!(e, Event::ChannelReady { .. })
        })
        .await;
    }
    for p in &phones {
        wait_for(p, "ChannelReady", |e| {
            matches!(e, Event::ChannelReady { .. })
        })
        .await;
    }
    let ready = lsp
        .list_channels()
        .await
        .iter()
        .filter(|c| c.status == "ready")
        .count();
    assert_eq!(ready, 23, "{:?}", lsp.list_channels().await);
    assert_eq!(
        phone
            .list_channels()
            .await
            .iter()
            .filter(|c| c.status == "ready")
            .count(),
        3
    );
    for n in all {
        n.stop().await;
    }
}

#[tokio::test]
async fn manual_inbound_policy_asks_the_app() {
    use tern_core::node::InboundPolicy;
    let devnet = Devnet::start().await.expect("devnet");
    let lsp = Builder::new(Network::Regtest, dir("manual-lsp"), &devnet.base_url())
        .seed([40; 32])
        .listen("127.0.0.1:0")
        .inbound_policy(InboundPolicy::Manual)
        .start()
        .await
        .expect("lsp");
    lsp.sync(None).await.expect("sync");
    let phone = node(&devnet, &dir("manual-phone"), 41, false).await;
    fund(&devnet, &phone, 1_000_000).await;
    let addr = lsp.listen_addr().expect("listening").to_string();

    // Refused: the phone is told, its coins are free again.
    phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(200_000))
                .push_msat(0)
                .announce(false),
        )
        .await
        .expect("open");
    let request = wait_for(&lsp, "request", |e| {
        matches!(e, Event::OpenChannelRequest { .. })
    })
    .await;
    let Event::OpenChannelRequest {
        temporary_channel_id,
        channel_value,
        ..
    } = request
    else {
        unreachable!()
    };
    assert_eq!(channel_value.to_sat(), 200_000);
    lsp.reject_channel(phone.node_id(), temporary_channel_id)
        .await
        .expect("reject");
    let failed = loop {
        let (seq, e) = tokio::time::timeout(Duration::from_secs(20), phone.wait_next_event())
            .await
            .expect("in time")
            .expect("event");
        phone.event_handled(seq).await.expect("handled");
        if let Event::ChannelOpenFailed { reason, .. } = e {
            break reason;
        }
    };
    assert!(failed.contains("rejected"), "{failed}");
    assert!(phone.list_channels().await.is_empty());
    assert_eq!(
        phone
            .list_balances()
            .await
            .expect("balances")
            .locked
            .to_sat(),
        0
    );
    assert!(
        lsp.accept_channel(phone.node_id(), temporary_channel_id)
            .await
            .is_err(),
        "already answered"
    );

    // Accepted.
    phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(200_000))
                .push_msat(0)
                .announce(false),
        )
        .await
        .expect("open");
    let request = wait_for(&lsp, "request", |e| {
        matches!(e, Event::OpenChannelRequest { .. })
    })
    .await;
    let Event::OpenChannelRequest {
        temporary_channel_id,
        ..
    } = request
    else {
        unreachable!()
    };
    lsp.accept_channel(phone.node_id(), temporary_channel_id)
        .await
        .expect("accept");
    wait_both(&[&phone, &lsp], "ChannelPending", |e| {
        matches!(e, Event::ChannelPending { .. })
    })
    .await;
    phone.stop().await;
    lsp.stop().await;
}

#[tokio::test]
async fn a_public_channel_builds_its_announcement_after_six_confirmations() {
    let devnet = Devnet::start().await.expect("devnet");
    let lsp = node(&devnet, &dir("pub-lsp"), 50, true).await;
    lsp.sync(None).await.expect("sync");
    let phone = node(&devnet, &dir("pub-phone"), 51, false).await;
    fund(&devnet, &phone, 1_000_000).await;
    let addr = lsp.listen_addr().expect("listening").to_string();
    phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(200_000))
                .push_msat(0)
                .announce(true),
        )
        .await
        .expect("open");
    wait_for(&phone, "ChannelPending", |e| {
        matches!(e, Event::ChannelPending { .. })
    })
    .await;
    mine_until(&devnet, &[&phone, &lsp], 3).await;
    wait_for(&phone, "ChannelReady", |e| {
        matches!(e, Event::ChannelReady { .. })
    })
    .await;
    assert!(
        !phone.list_channels().await[0].announcement_ready,
        "not before 6 confirmations"
    );
    mine_until(&devnet, &[&phone, &lsp], 3).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(phone.list_channels().await[0].announcement_ready
        && lsp.list_channels().await[0].announcement_ready)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            phone.list_channels().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(phone.list_channels().await[0].is_announced);
    phone.stop().await;
    lsp.stop().await;
}

#[tokio::test]
async fn opening_to_an_unreachable_peer_fails_cleanly() {
    let devnet = Devnet::start().await.expect("devnet");
    let phone = Builder::new(Network::Regtest, dir("unreachable"), &devnet.base_url())
        .seed([60; 32])
        .connect_timeout(Duration::from_millis(500))
        .start()
        .await
        .expect("phone");
    // Funded: open_channel checks the funds before it dials, and this test is about the dial.
    fund(&devnet, &phone, 200_000).await;
    let nobody = bitcoin::secp256k1::PublicKey::from_secret_key(
        &bitcoin::secp256k1::Secp256k1::new(),
        &bitcoin::secp256k1::SecretKey::from_slice(&[61; 32]).expect("key"),
    );
    // Port 1 on loopback: nothing listens there.
    let err = phone
        .open_channel(
            OpenChannelParams::new(nobody, "127.0.0.1:1", Amount::from_sat(100_000))
                .push_msat(0)
                .announce(false),
        )
        .await;
    assert!(
        matches!(err, Err(tern_core::node::NodeError::PeerUnreachable { node_id, .. }) if node_id == nobody),
        "{err:?}"
    );
    let err = phone
        .open_channel(
            OpenChannelParams::new(nobody, "127.0.0.1:1", Amount::from_sat(0))
                .push_msat(0)
                .announce(false),
        )
        .await;
    assert!(
        matches!(
            err,
            Err(tern_core::node::NodeError::InvalidInput {
                field: "channel_value",
                ..
            })
        ),
        "{err:?}"
    );
    let err = phone
        .open_channel(
            OpenChannelParams::new(nobody, "127.0.0.1:1", Amount::from_sat(1_000))
                .push_msat(2_000_000)
                .announce(false),
        )
        .await;
    assert!(
        matches!(
            err,
            Err(tern_core::node::NodeError::InvalidInput {
                field: "push_msat",
                ..
            })
        ),
        "{err:?}"
    );
    assert!(phone.list_channels().await.is_empty());
    phone.stop().await;
    assert!(matches!(
        phone.sync(None).await,
        Err(tern_core::node::NodeError::Stopped)
    ));
}

#[tokio::test]
async fn two_nodes_open_channels_both_ways() {
    let devnet = Devnet::start().await.expect("devnet");
    let a = node(&devnet, &dir("both-a"), 70, true).await;
    let b = node(&devnet, &dir("both-b"), 71, true).await;
    for n in [&a, &b] {
        let address = n.new_address().await.expect("address");
        devnet
            .faucet(&address, Amount::from_sat(600_000))
            .expect("faucet");
    }
    devnet.mine(1);
    for n in [&a, &b] {
        n.sync(None).await.expect("sync");
    }
    let a_addr = a.listen_addr().expect("listening").to_string();
    let b_addr = b.listen_addr().expect("listening").to_string();
    a.open_channel(
        OpenChannelParams::new(b.node_id(), b_addr.clone(), Amount::from_sat(200_000))
            .push_msat(0)
            .announce(false),
    )
    .await
    .expect("a opens");
    b.open_channel(
        OpenChannelParams::new(a.node_id(), a_addr.clone(), Amount::from_sat(300_000))
            .push_msat(0)
            .announce(false),
    )
    .await
    .expect("b opens");
    for n in [&a, &b] {
        for _ in 0..2 {
            wait_for(n, "ChannelPending", |e| {
                matches!(e, Event::ChannelPending { .. })
            })
            .await;
        }
    }
    mine_until(&devnet, &[&a, &b], 3).await;
    for n in [&a, &b] {
        for _ in 0..2 {
            wait_for(n, "ChannelReady", |e| {
                matches!(e, Event::ChannelReady { .. })
            })
            .await;
        }
    }
    let mut sizes: Vec<(u64, bool)> = a
        .list_channels()
        .await
        .iter()
        .map(|c| (c.channel_value.to_sat(), c.is_outbound))
        .collect();
    sizes.sort();
    assert_eq!(sizes, vec![(200_000, true), (300_000, false)]);
    assert!(b.list_channels().await.iter().all(|c| c.status == "ready"));
    a.stop().await;
    b.stop().await;
}
