//! Commitment types between two Tern nodes on the devnet: both offer `option_anchors` in
//! `init` and prefer it, so their channel is an anchor channel, and its commitment (with both
//! 330-sat anchors) is accepted by the devnet's mempool (libbitcoinconsensus script checks,
//! dust and fee rules). With `prefer_anchors` off on either side the channel is
//! static_remotekey: the funder does not propose anchors, and a fundee with it off does not
//! offer them in `init`, so the funder does not either.

use bitcoin::{Amount, Network};
use tern_core::node::{Builder, Node, OpenChannelParams};
use tern_core::proto::channel::ChannelState;
use tern_devnet::{Devnet, TxState};

mod common;

const LSP_SEED: u8 = 1;
const PHONE_SEED: u8 = 2;

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-anchors-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn node(
    devnet: &Devnet,
    dir: &std::path::Path,
    seed: u8,
    listen: bool,
    prefer_anchors: bool,
) -> Node {
    let mut b = Builder::new(Network::Regtest, dir, &devnet.base_url())
        .seed([seed; 32])
        .channel_config(|c| c.prefer_anchors = prefer_anchors);
    if listen {
        b = b.listen("127.0.0.1:0");
    }
    b.start().await.expect("node starts")
}

/// The phone (funder) opens a 200,000 sat channel (50,000 pushed) to the LSP and both reach
/// ready; returns whether each side's channel is an anchor channel.
async fn open_ready(
    devnet: &Devnet,
    dir: &std::path::Path,
    phone_anchors: bool,
    lsp_anchors: bool,
) -> (Node, Node, bool, bool) {
    let lsp = node(devnet, &dir.join("lsp"), LSP_SEED, true, lsp_anchors).await;
    let phone = node(devnet, &dir.join("phone"), PHONE_SEED, false, phone_anchors).await;
    common::node::fund(devnet, &phone, 1_000_000).await;
    let addr = lsp.listen_addr().expect("listening").to_string();
    phone
        .open_channel(
            // A push, so that both sides have an output, hence both anchors (BOLT 3).
            OpenChannelParams::new(lsp.node_id(), addr, Amount::from_sat(200_000))
                .push_msat(50_000_000)
                .announce(false),
        )
        .await
        .expect("open");
    let end = common::node::drive_open(devnet, &phone, &lsp, 200).await;
    assert!(end.ready(), "{end:?}");
    let p = phone.list_channels().await;
    let l = lsp.list_channels().await;
    assert_eq!((p.len(), l.len()), (1, 1), "{p:?} {l:?}");
    assert_eq!(p[0].state, ChannelState::Ready);
    assert_eq!(l[0].state, ChannelState::Ready);
    let (pa, la) = (p[0].anchors, l[0].anchors);
    (phone, lsp, pa, la)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_terns_open_an_anchor_channel_whose_commitment_the_devnet_accepts() {
    let devnet = Devnet::start().await.expect("devnet");
    let dir = temp_dir("default");
    let (phone, lsp, phone_anchors, lsp_anchors) = open_ready(&devnet, &dir, true, true).await;
    assert!(phone_anchors && lsp_anchors);
    phone.stop().await;
    lsp.stop().await;
    // Both commitments carry the two anchors; the funder's is broadcast and accepted.
    let lsp_commitment = common::commitment::stored_ready_commitment(&dir.join("lsp"), LSP_SEED);
    let commitment = common::commitment::stored_ready_commitment(&dir.join("phone"), PHONE_SEED);
    for tx in [&commitment, &lsp_commitment] {
        assert_eq!(tx.output.len(), 4, "{tx:?}");
        assert_eq!(
            tx.output
                .iter()
                .filter(|o| o.value == Amount::from_sat(330))
                .count(),
            2
        );
    }
    devnet
        .broadcast(&commitment)
        .expect("the anchor commitment is valid");
    devnet.mine(1);
    assert!(
        matches!(
            devnet.tx_state(&commitment.compute_txid()),
            TxState::Confirmed { .. }
        ),
        "mined"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_anchors_off_on_either_side_gives_static_remote_key() {
    for (phone_anchors, lsp_anchors) in [(false, true), (true, false)] {
        let devnet = Devnet::start().await.expect("devnet");
        let dir = temp_dir(&format!("off-{phone_anchors}-{lsp_anchors}"));
        let (phone, lsp, p, l) = open_ready(&devnet, &dir, phone_anchors, lsp_anchors).await;
        assert!(!p && !l, "phone {phone_anchors}, lsp {lsp_anchors}");
        phone.stop().await;
        lsp.stop().await;
        let commitment =
            common::commitment::stored_ready_commitment(&dir.join("phone"), PHONE_SEED);
        assert_eq!(commitment.output.len(), 2, "no anchors: {commitment:?}");
        devnet
            .broadcast(&commitment)
            .expect("the static_remotekey commitment is valid");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
