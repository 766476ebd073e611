//! Closing channels through the node API (issue 14), on the in-memory chain and network
//! (`common::memory`): every refusal of `close_channel` / `force_close_channel` happens before
//! anything is stored or sent.
//!
//! Needs the `dev-disconnect` feature (the in-memory network, the clock hold and the node's
//! self-audit are dev seams; `scripts/test.sh` enables it).
#![cfg(feature = "dev-disconnect")]

use bitcoin::hashes::Hash;
use bitcoin::{Address, Amount, Network, PubkeyHash, WitnessProgram, WitnessVersion};
use tern_core::net::MemoryNet;
use tern_core::node::{InboundPolicy, Node, NodeError, OpenChannelParams};
use tern_core::proto::channel::ChannelState;
use tern_core::proto::wire::ChannelId;
use tern_core::store::Store;
use tern_devnet::DevChain;

mod common;

use common::memory::*;
use common::node::{check_durability, fund};

fn program(version: WitnessVersion, len: usize, network: Network) -> Address {
    let program = WitnessProgram::new(version, &vec![0x42; len]).expect("program");
    Address::from_witness_program(program, network)
}

/// A mainnet P2WPKH address.
fn mainnet_p2wpkh() -> Address {
    program(WitnessVersion::V0, 20, Network::Bitcoin)
}

/// A regtest P2TR address.
fn regtest_p2tr() -> Address {
    program(WitnessVersion::V1, 32, Network::Regtest)
}

/// A regtest P2PKH address (not segwit: no closing transaction may pay it).
fn regtest_p2pkh() -> Address {
    Address::p2pkh(PubkeyHash::from_byte_array([0x42; 20]), Network::Regtest)
}

/// What the node's store holds of its channels and of the close destination: a refusal
/// changes neither.
fn stored(dir: &std::path::Path) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
    let store = Store::open(dir.join("tern.sqlite")).expect("store");
    let records = store
        .list_channels()
        .expect("channels")
        .into_iter()
        .map(|r| r.record)
        .collect();
    (records, store.get_meta("close_destination").expect("meta"))
}

async fn expect_cannot_close(node: &Node, id: ChannelId, force: bool, why: &str) {
    let got = if force {
        node.force_close_channel(id).await
    } else {
        node.close_channel(id, None).await
    };
    match got {
        Err(NodeError::CannotClose { channel_id, reason }) => {
            assert_eq!(channel_id, id);
            assert!(reason.contains(why), "{reason}");
        }
        other => panic!("expected CannotClose ({why}): {other:?}"),
    }
}

/// Every refusal of the close API, on a ready channel and on an open the peer has not
/// accepted yet: an unknown id, a channel that is not durable, an address of another network,
/// a script no closing transaction may pay, a taproot address while the peer is not connected
/// to say it supports `option_shutdown_anysegwit`. None stores anything (the channel records
/// and the close destination are as they were, no action was performed) or reaches the peer.
#[tokio::test(start_paused = true)]
async fn every_refusal_comes_before_anything_is_stored_or_sent() {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir("close-refusals-lsp"), dir("close-refusals-phone"));
    let lsp = node(&chain, &net, &dl, 11, true).await;
    let phone = node(&chain, &net, &dp, 12, false).await;
    open_to_ready(&chain, &phone, &lsp).await;
    let id = phone.list_channels().await[0].channel_id;

    let unknown = ChannelId([0xee; 32]);
    for force in [false, true] {
        let got = if force {
            phone.force_close_channel(unknown).await
        } else {
            phone.close_channel(unknown, None).await
        };
        assert!(
            matches!(got, Err(NodeError::UnknownChannel(c)) if c == unknown),
            "{got:?}"
        );
    }
    let audited = phone.dev_audited_actions();
    let refused = [
        (mainnet_p2wpkh(), "network"),
        (regtest_p2pkh(), "only segwit"),
    ];
    for (addr, why) in refused {
        match phone.close_channel(id, Some(addr.clone())).await {
            Err(NodeError::InvalidInput { field, reason }) => {
                assert_eq!(field, "address");
                assert!(reason.contains(why), "{addr}: {reason}");
            }
            other => panic!("{addr}: expected InvalidInput: {other:?}"),
        }
    }
    // The LSP goes away: the phone cannot know whether it takes a taproot script.
    lsp.stop().await;
    settle("the phone sees the LSP gone", || async {
        phone.list_peers().await.expect("peers").is_empty()
    })
    .await;
    match phone.close_channel(id, Some(regtest_p2tr())).await {
        Err(NodeError::InvalidInput { field, reason }) => {
            assert_eq!(field, "address");
            assert!(reason.contains("option_shutdown_anysegwit"), "{reason}");
        }
        other => panic!("P2TR while disconnected: expected InvalidInput: {other:?}"),
    }
    assert_eq!(
        phone.dev_audited_actions(),
        audited,
        "a refused close performs no action"
    );
    assert_eq!(phone.list_channels().await[0].state, ChannelState::Ready);
    check_durability(&phone, "phone");
    phone.stop().await;
    let (records, destination) = stored(&dp);
    assert_eq!(records.len(), 1);
    assert_eq!(destination, None, "no close destination handed out");
    let before = records;

    // The same refusals after a restart change nothing on disk either.
    let phone = node(&chain, &net, &dp, 12, false).await;
    for addr in [mainnet_p2wpkh(), regtest_p2pkh(), regtest_p2tr()] {
        assert!(phone.close_channel(id, Some(addr)).await.is_err());
    }
    phone.stop().await;
    assert_eq!(stored(&dp), (before, None));
}

/// An open the peer has not answered is not durable: neither close takes it, and nothing is
/// stored.
#[tokio::test(start_paused = true)]
async fn an_open_that_is_not_durable_cannot_close() {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let (dl, dp) = (dir("close-transient-lsp"), dir("close-transient-phone"));
    // The LSP asks its app about each open, and the app never answers.
    let lsp = node_with(&chain, &net, &dl, 13, true, |b| {
        b.inbound_policy(InboundPolicy::Manual)
    })
    .await;
    let phone = node(&chain, &net, &dp, 14, false).await;
    lsp.sync(None).await.expect("sync");
    fund(&chain, &phone, 500_000).await;
    let temp = phone
        .open_channel(OpenChannelParams::new(
            lsp.node_id(),
            LSP_ADDR,
            Amount::from_sat(100_000),
        ))
        .await
        .expect("open");
    wait_for(&lsp, "the open request", |e| {
        matches!(e, tern_core::node::Event::OpenChannelRequest { .. })
    })
    .await;
    let c = &phone.list_channels().await[0];
    assert_eq!(c.state, ChannelState::OutboundAwaitingAccept);
    let audited = phone.dev_audited_actions();
    for force in [false, true] {
        expect_cannot_close(&phone, temp, force, "not durable").await;
    }
    assert_eq!(phone.dev_audited_actions(), audited);
    phone.stop().await;
    lsp.stop().await;
    assert_eq!(stored(&dp), (Vec::new(), None));
}
