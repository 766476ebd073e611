//! The restart matrix: a node is killed (every task aborted, like a killed process) right
//! after each durable point and each message of an open, in both roles; a new `Node` starts on
//! the same data dir, blocks are mined, and the open ends ready on both sides — or, before the
//! funder's durable point, forgotten by the funder with `ChannelOpenFailed` and its coins back.
//!
//! Needs the `dev-disconnect` feature (`scripts/test.sh` enables it).
#![cfg(feature = "dev-disconnect")]

use std::time::Duration;

use bitcoin::{Amount, Network};
use tern_core::node::{Builder, Node, OpenChannelParams};
use tern_devnet::Devnet;

mod common;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ready,
    FunderFails,
    /// Either is correct (a message queued at the kill may or may not leave).
    Either,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Funder,
    Fundee,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn start(
    devnet: &Devnet,
    dir: &std::path::Path,
    seed: u8,
    listen: Option<u16>,
    halt: Option<&str>,
) -> Node {
    let mut b = Builder::new(Network::Regtest, dir, &devnet.base_url()).seed([seed; 32]);
    if let Some(port) = listen {
        b = b.listen(format!("127.0.0.1:{port}"));
    }
    if let Some(action) = halt {
        b = b.dev_halt_after(action);
    }
    b.start().await.expect("node starts")
}

async fn run(who: Who, halt: &str, expected: Outcome) {
    let tag = format!("{who:?}-{}", halt.replace(':', "_"));
    let dir = std::env::temp_dir().join(format!("tern-restart-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let devnet = Devnet::start().await.expect("devnet");
    let port = free_port();
    let (dl, dp) = (dir.join("lsp"), dir.join("phone"));
    let lsp_halt = (who == Who::Fundee).then_some(halt);
    let phone_halt = (who == Who::Funder).then_some(halt);
    let mut lsp = start(&devnet, &dl, 1, Some(port), lsp_halt).await;
    let mut phone = start(&devnet, &dp, 2, None, phone_halt).await;
    let address = phone.new_address().await.expect("address");
    devnet
        .faucet(&address, Amount::from_sat(1_000_000))
        .expect("faucet");
    devnet.mine(1);
    phone.sync(None).await.expect("sync");
    lsp.sync(None).await.expect("sync");
    let addr = format!("127.0.0.1:{port}");
    let _ = phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(200_000))
                .push_msat(0)
                .announce(false),
        )
        .await;

    // Wait for the kill, then start a new process on the same data.
    let victim = if who == Who::Funder { &phone } else { &lsp };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut round = 0;
    while !victim.is_stopped() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{tag}: the halt point was never reached"
        );
        // Points after the funding need blocks.
        if round % 5 == 4 {
            devnet.mine(1);
            for n in [&phone, &lsp] {
                let _ = n.sync(None).await;
            }
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    match who {
        Who::Funder => phone = start(&devnet, &dp, 2, None, None).await,
        Who::Fundee => lsp = start(&devnet, &dl, 1, Some(port), None).await,
    }

    let end = common::node::drive_open(&devnet, &phone, &lsp, 150).await;
    let (phone_ready, lsp_ready, failed) = (end.funder_ready, end.fundee_ready, end.failed);
    let ready = phone_ready && lsp_ready;
    let outcome = if ready {
        Outcome::Ready
    } else {
        Outcome::FunderFails
    };
    match expected {
        Outcome::Ready => assert!(
            ready && failed.is_none(),
            "{tag}: not ready ({failed:?}): {:?} / {:?}",
            phone.list_channels().await,
            lsp.list_channels().await
        ),
        Outcome::FunderFails => assert!(
            failed.is_some(),
            "{tag}: no ChannelOpenFailed: {:?}",
            phone.list_channels().await
        ),
        Outcome::Either => assert!(
            ready || failed.is_some(),
            "{tag}: neither ready nor failed: {:?}",
            phone.list_channels().await
        ),
    }
    // Funds add up in every case.
    let b = phone.list_balances().await.expect("balances");
    if outcome == Outcome::FunderFails {
        assert!(
            phone.list_channels().await.is_empty(),
            "{tag}: the transient channel is forgotten"
        );
        assert_eq!(
            (b.locked.to_sat(), b.confirmed.to_sat()),
            (0, 1_000_000),
            "{tag}: coins are back"
        );
    } else {
        assert_eq!(b.locked.to_sat(), 0, "{tag}");
        let spent = 1_000_000 - b.confirmed.to_sat() - b.unconfirmed.to_sat();
        assert!(
            (200_000..205_000).contains(&spent),
            "{tag}: channel + fee, got {spent}"
        );
    }
    phone.stop().await;
    lsp.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

macro_rules! cases {
    ($($name:ident: $who:ident $halt:expr => $outcome:ident,)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                run(Who::$who, $halt, Outcome::$outcome).await;
            }
        )*
    };
}

cases! {
    funder_after_sending_open_channel: Funder "send:open_channel" => FunderFails,
    funder_after_building_the_funding: Funder "need_funding_tx" => FunderFails,
    funder_after_sending_funding_created: Funder "send:funding_created" => FunderFails,
    funder_after_persisting: Funder "persist" => Ready,
    funder_after_broadcasting: Funder "broadcast" => Ready,
    funder_after_watching: Funder "watch" => Ready,
    funder_after_sending_channel_ready: Funder "send:channel_ready" => Ready,
    fundee_after_sending_accept_channel: Fundee "send:accept_channel" => FunderFails,
    fundee_after_persisting: Fundee "persist" => FunderFails,
    fundee_after_sending_funding_signed: Fundee "send:funding_signed" => Either,
    fundee_after_sending_channel_ready: Fundee "send:channel_ready" => Ready,
}
