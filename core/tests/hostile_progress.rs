//! Other peers' channels keep progressing under a flood (issue 17 §1): a node with a ready
//! channel to a phone is flooded with 600 inbound connections — half send a garbage act one,
//! half stay silent in the handshake, holding every connection slot past the limit — and the
//! phone's cooperative close still runs to the end (shutdown, closing_signed, the closing
//! transaction, both `ChannelClosed`), with nothing but that close stored.

use std::time::Duration;

use tern_core::net::MemoryNet;
use tern_core::node::Event;
use tern_devnet::DevChain;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

use common::memory::*;
use common::node::check_durability;

#[tokio::test(start_paused = true)]
async fn a_flooded_node_still_closes_a_channel_with_another_peer() {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir("flood-lsp"), dir("flood-phone"));
    let lsp = node(&chain, &net, &dl, 31, true).await;
    let phone = node(&chain, &net, &dp, 32, false).await;
    open_to_ready(&chain, &phone, &lsp).await;
    let id = phone.list_channels().await[0].channel_id;

    let mut flood = Vec::new();
    for i in 0..600 {
        let (mut pipe, _) = net.connect(LSP_ADDR).expect("the flood dials");
        if i % 2 == 0 {
            // Not a BOLT 8 act one: closed at once by the node.
            let _ = pipe.write_all(&[0xff; 50]).await;
        }
        flood.push(pipe);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    phone.close_channel(id, None).await.expect("close");
    wait_both(&[&phone, &lsp], "ChannelClosing", |e| {
        matches!(e, Event::ChannelClosing { .. })
    })
    .await;
    // Confirmed, then six deep: Closed on both sides.
    mine_until(&chain, &[&phone, &lsp], 7).await;
    wait_both(&[&phone, &lsp], "ChannelClosed", |e| {
        matches!(e, Event::ChannelClosed { .. })
    })
    .await;
    for (who, n) in [("phone", &phone), ("lsp", &lsp)] {
        let channels = n.list_channels().await;
        assert_eq!(channels.len(), 1, "{who}: {channels:?}");
        check_durability(n, who);
    }
    // The flood opened no channel and left no pending open; every one of its connections was
    // closed by the node (garbage at once, the silent ones at the connection limit or the
    // handshake timeout).
    assert_eq!(lsp.pending_inbound_opens(), 0);
    // Past the handshake timeout (connect_timeout, 10 s) on the paused clock.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let mut closed = 0;
    for pipe in &mut flood {
        let mut buf = [0u8; 64];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(10), pipe.read(&mut buf)).await
        {
            closed += 1;
        }
    }
    assert_eq!(closed, flood.len(), "flood connections the node closed");
    drop(flood);
    phone.stop().await;
    lsp.stop().await;
}
