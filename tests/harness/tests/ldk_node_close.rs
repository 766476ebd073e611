//! Cooperative closes with ldk-node 0.7 on the in-process devnet (issue 14): Tern funds a
//! channel to ldk-node, then Tern closes it, or ldk-node does. Each case ends with ldk-node's
//! `ChannelClosed` (a cooperative reason), the agreed transaction confirmed, and Tern's
//! wallet holding its whole balance less the closing fee it pays as the funder, to the
//! satoshi. The negotiation must finish within LDK's two timer ticks (60 s each).

use std::time::Duration;

use ldk_node::lightning::events::ClosureReason;
use ldk_node::Event as LdkEvent;
use tern_core::node::{CloseKind, Event, Node};
use tern_devnet::Devnet;

mod common;

use common::drive::{drive_ready, setup, tern_opens, Seen, CHANNEL_SAT, TIMEOUT};
use common::{finish, sync_ldk, Dirs, LdkNode, TernOpts};

async fn wallet_sat(tern: &Node) -> u64 {
    let b = tern.list_balances().await.expect("balances");
    (b.confirmed + b.unconfirmed).to_sat()
}

/// Drives both nodes until ldk-node reports the channel closed and Tern's `ChannelClosing`
/// names `kind`; returns ldk-node's reason.
async fn wait_closed(tern: &Node, ldk: &LdkNode, kind: CloseKind) -> ClosureReason {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let (mut tern_closing, mut reason) = (false, None);
    loop {
        while let Some((seq, e)) = tern.next_event().await.expect("tern events") {
            tern.event_handled(seq).await.expect("handled");
            match e {
                Event::ChannelClosing { kind: k, .. } => {
                    assert_eq!(k, kind, "tern's close kind");
                    tern_closing = true;
                }
                Event::ChannelFailed { reason, .. } => panic!("tern: channel failed: {reason}"),
                _ => {}
            }
        }
        while let Some(e) = ldk.next_event() {
            ldk.event_handled().expect("ldk-node event handled");
            if let LdkEvent::ChannelClosed { reason: r, .. } = e {
                reason = r;
            }
        }
        if let (true, Some(r)) = (tern_closing, &reason) {
            return r.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not closed after {TIMEOUT:?}: tern {:?} / ldk-node {:?}",
            tern.list_channels().await,
            ldk.list_channels()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A ready Tern-funded channel, closed by Tern (`tern_closes`) or by ldk-node.
async fn close_with_ldk(test: &str, tern_closes: bool) {
    let dirs = Dirs::new(test);
    let (devnet, ldk, port, tern): (Devnet, LdkNode, u16, Node) =
        setup(&dirs, TernOpts::default()).await;
    tern_opens(&tern, &ldk, port).await.expect("open");
    let mut seen = Seen::default();
    drive_ready(&devnet, &tern, &ldk, &mut seen).await;
    let ch = tern.list_channels().await[0].clone();
    let funding = ch.funding_txo.expect("funding");
    let before = wallet_sat(&tern).await;
    let started = std::time::Instant::now();
    let kind = if tern_closes {
        tern.close_channel(ch.channel_id, None)
            .await
            .expect("close");
        CloseKind::CooperativeLocal
    } else {
        let c = &ldk.list_channels()[0];
        ldk.close_channel(&c.user_channel_id, tern.node_id())
            .expect("ldk-node close");
        CloseKind::CooperativeRemote
    };
    let reason = wait_closed(&tern, &ldk, kind).await;
    let cooperative = if tern_closes {
        matches!(
            reason,
            ClosureReason::CounterpartyInitiatedCooperativeClosure
        )
    } else {
        matches!(reason, ClosureReason::LocallyInitiatedCooperativeClosure)
    };
    assert!(cooperative, "ldk-node's reason: {reason:?}");
    eprintln!("negotiated in {:?}", started.elapsed());
    let chain = devnet.chain();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while chain.outspend(&funding).is_none() {
        assert!(tokio::time::Instant::now() < deadline, "no close broadcast");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let close_txid = chain.outspend(&funding).expect("spent").txid;
    let close = chain.transaction(&close_txid).expect("close tx");
    let fee = CHANNEL_SAT - close.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
    assert!(fee > 0 && fee < 10_000, "closing fee {fee}");
    devnet.mine(1);
    let want = before + CHANNEL_SAT - fee;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        tern.sync(None).await.expect("sync");
        if wallet_sat(&tern).await == want {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tern's wallet: {} sat, expected {want} ({before} + {CHANNEL_SAT} - fee {fee})",
            wallet_sat(&tern).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sync_ldk(&ldk);
    assert!(ldk.list_channels().is_empty(), "{:?}", ldk.list_channels());
    finish(tern, ldk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_closes_cooperatively_with_ldk_node() {
    close_with_ldk("close-tern", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ldk_node_closes_cooperatively_with_tern() {
    close_with_ldk("close-ldk", false).await;
}
