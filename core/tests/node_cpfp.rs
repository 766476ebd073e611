//! Our anchor commitment on chain, whole nodes on the devnet's own chain in process (as
//! `node_memory.rs`: `common::chain::DevnetSource`, the in-memory network, a paused clock):
//! a force close whose commitment pays less than the (raised) estimate is CPFP'd through our
//! anchor from a wallet coin — the child broadcast after its parent, both mined in one block,
//! the wallet's books exact to the satoshi; a rise of the estimate while the commitment is
//! still unconfirmed replaces the child (RBF) and the replacement is the one mined.
//!
//! Needs the `dev-disconnect` feature (the in-memory network and the clock hold are dev seams).
#![cfg(feature = "dev-disconnect")]

use std::time::Duration;

use bitcoin::{Amount, OutPoint, Transaction};
use tern_core::net::MemoryNet;
use tern_core::node::{Node, NodeError};
use tern_devnet::{DevChain, TxState};

mod common;

use common::memory::*;
use common::node::check_durability;

/// The phone's funded anchor channel to the LSP, ready, at 2 500 sat/kw; then the LSP is
/// stopped (so the phone, the funder, cannot move its commitment's feerate with `update_fee`)
/// and the estimates rise to `two_blocks` sat/vB, which the phone fetches.
async fn anchor_channel_then_fees_rise(
    tag: &str,
    two_blocks: f64,
) -> (DevChain, Node, Node, bitcoin::secp256k1::PublicKey) {
    anchor_channel_then_fees_rise_capped(tag, two_blocks, None).await
}

/// [`anchor_channel_then_fees_rise`], the phone's CPFP fee capped at `max_cpfp_fee` if given.
async fn anchor_channel_then_fees_rise_capped(
    tag: &str,
    two_blocks: f64,
    max_cpfp_fee: Option<Amount>,
) -> (DevChain, Node, Node, bitcoin::secp256k1::PublicKey) {
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let lsp = node(&chain, &net, &dir(&format!("{tag}-lsp")), 21, true).await;
    let phone = node_with(
        &chain,
        &net,
        &dir(&format!("{tag}-phone")),
        22,
        false,
        |b| {
            let b = b.fee_max_age(Duration::ZERO);
            match max_cpfp_fee {
                Some(max) => b.max_cpfp_fee(max),
                None => b,
            }
        },
    )
    .await;
    chain.set_fee_estimates(estimates(10.0));
    open_to_ready(&chain, &phone, &lsp).await;
    let c = &phone.list_channels().await[0];
    assert!(c.anchors, "{c:?}");
    assert_eq!(c.commitment_feerate_per_kw, 2_500);
    let lsp_id = lsp.node_id();
    lsp.stop().await;
    chain.set_fee_estimates(estimates(two_blocks));
    // A block: the phone fetches the new estimates (its cache never ages) and hands them on.
    mine_until(&chain, &[&phone], 1).await;
    (chain, phone, lsp, lsp_id)
}

/// The commitment spending `funding` and the child spending one of its anchors, once both
/// are in the mempool.
async fn commitment_and_child(chain: &DevChain, funding: OutPoint) -> (Transaction, Transaction) {
    let commitment = commitment_in_mempool(chain, funding).await;
    let anchors: Vec<OutPoint> = commitment
        .output
        .iter()
        .enumerate()
        .filter(|(_, o)| o.value.to_sat() == 330)
        .map(|(vout, _)| OutPoint {
            txid: commitment.compute_txid(),
            vout: vout as u32,
        })
        .collect();
    assert_eq!(anchors.len(), 2, "both anchors on the commitment");
    let spent_anchor = || anchors.iter().find_map(|a| chain.outspend(a));
    settle("the CPFP child in the mempool", || async {
        spent_anchor().is_some()
    })
    .await;
    let child = chain
        .transaction(&spent_anchor().expect("child").txid)
        .expect("child");
    (commitment, child)
}

/// The commitment spending `funding`, once in the mempool.
async fn commitment_in_mempool(chain: &DevChain, funding: OutPoint) -> Transaction {
    settle("the commitment in the mempool", || async {
        chain.outspend(&funding).is_some()
    })
    .await;
    chain
        .transaction(&chain.outspend(&funding).expect("spent").txid)
        .expect("commitment")
}

/// What `tx` pays in fees (its inputs' values from the chain, less its outputs).
fn fee_of(chain: &DevChain, tx: &Transaction) -> Amount {
    let inputs: Amount = tx
        .input
        .iter()
        .map(|i| {
            chain
                .transaction(&i.previous_output.txid)
                .expect("parent")
                .output[i.previous_output.vout as usize]
                .value
        })
        .sum();
    inputs - tx.output.iter().map(|o| o.value).sum::<Amount>()
}

/// The package feerate of parent + child, in sat per 1000 weight units (rounded down).
fn package_feerate(chain: &DevChain, parent: &Transaction, child: &Transaction) -> u64 {
    let fee = fee_of(chain, parent) + fee_of(chain, child);
    fee.to_sat() * 1000 / (parent.weight().to_wu() + child.weight().to_wu())
}

#[tokio::test(start_paused = true)]
async fn an_anchor_force_close_below_the_raised_estimate_is_cpfp_d_and_mined_with_its_child() {
    // 40 sat/vB: 10 000 sat/kw for the commitment's target, four times what it pays.
    let (chain, phone, _lsp, _) = anchor_channel_then_fees_rise("cpfp", 40.0).await;
    let c = phone.list_channels().await.remove(0);
    let funding = c.funding_txo.expect("funding");
    let before = phone.list_balances().await.expect("balances");
    assert_eq!(before.unconfirmed.to_sat(), 0, "{before:?}");
    phone
        .force_close_channel(c.channel_id)
        .await
        .expect("force close");
    let (commitment, child) = commitment_and_child(&chain, funding).await;
    assert_eq!(chain.tx_state(&commitment.compute_txid()), TxState::Mempool);
    assert_eq!(chain.tx_state(&child.compute_txid()), TxState::Mempool);
    // The child: our anchor and one wallet coin, its change back to the wallet.
    assert_eq!(child.input.len(), 2, "{child:?}");
    assert_eq!(child.output.len(), 1, "{child:?}");
    // The package pays the target: at least 10 000 sat/kw, the parent alone 2 500.
    let package = package_feerate(&chain, &commitment, &child);
    assert!(
        (10_000..10_100).contains(&package),
        "package {package} sat/kw"
    );
    let parent_alone = fee_of(&chain, &commitment).to_sat() * 1000 / commitment.weight().to_wu();
    assert!(parent_alone < 2_600, "parent {parent_alone} sat/kw");
    // The wallet knows the child at once: its coin is spent, its change unconfirmed, and no
    // coin stays locked.
    let during = phone.list_balances().await.expect("balances");
    assert_eq!(during.locked.to_sat(), 0, "{during:?}");
    let coin_value = fee_of(&chain, &child) + child.output[0].value - Amount::from_sat(330);
    assert_eq!(
        during.confirmed,
        before.confirmed - coin_value,
        "{during:?}"
    );
    assert_eq!(during.unconfirmed, child.output[0].value, "{during:?}");

    // One block holds both.
    chain.mine(1);
    let (height, _) = chain.tip();
    for tx in [&commitment, &child] {
        assert!(
            matches!(chain.tx_state(&tx.compute_txid()), TxState::Confirmed { height: h, .. } if h == height),
            "mined together"
        );
    }
    phone.sync(None).await.expect("sync");
    // The books, to the satoshi: the wallet gained the anchor's 330 sat and paid the child's
    // fee; nothing else moved.
    let after = phone.list_balances().await.expect("balances");
    let child_fee = fee_of(&chain, &child);
    assert_eq!(
        after.confirmed,
        before.confirmed + Amount::from_sat(330) - child_fee,
        "{after:?}"
    );
    assert_eq!(after.unconfirmed.to_sat(), 0, "{after:?}");
    // Another block: no second child, no bump once the commitment is mined.
    chain.set_fee_estimates(estimates(80.0));
    chain.mine(1);
    phone.sync(None).await.expect("sync");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let last = phone.list_balances().await.expect("balances");
    assert_eq!(last.confirmed, after.confirmed, "{last:?}");
    assert_eq!(last.unconfirmed.to_sat(), 0, "{last:?}");
    // A second force close: nothing new is decided (CannotClose), the commitment was
    // rebroadcast.
    assert!(matches!(
        phone.force_close_channel(c.channel_id).await,
        Err(NodeError::CannotClose { .. })
    ));
    check_durability(&phone, "phone");
    phone.stop().await;
}

/// A bump whose child would pay more than `max_cpfp_fee` (here 2 000 sat, the child needs
/// about 15 000 at 40 sat/vB) is not built: the commitment goes out alone at its own fee,
/// nothing spends our anchor, no coin is locked or spent, and `list_channels` says the bump
/// was refused while the commitment is unconfirmed.
#[tokio::test(start_paused = true)]
async fn a_cpfp_child_above_max_cpfp_fee_is_not_built_and_the_details_say_so() {
    let max = Amount::from_sat(2_000);
    let (chain, phone, _lsp, _) =
        anchor_channel_then_fees_rise_capped("cpfp-cap", 40.0, Some(max)).await;
    let c = phone.list_channels().await.remove(0);
    let funding = c.funding_txo.expect("funding");
    let before = phone.list_balances().await.expect("balances");
    phone
        .force_close_channel(c.channel_id)
        .await
        .expect("force close");
    let commitment = commitment_in_mempool(&chain, funding).await;
    let refused = || async {
        phone.list_channels().await[0]
            .fee_bump_words
            .starts_with("fee bump refused: the CPFP child would pay ")
    };
    settle("the refused bump in the details", refused).await;
    let words = phone.list_channels().await[0].fee_bump_words.clone();
    assert!(
        words.contains("more than max_cpfp_fee (2000 sat)"),
        "{words}"
    );
    let anchors_spent = |chain: &DevChain| {
        (0..commitment.output.len() as u32)
            .filter(|&vout| commitment.output[vout as usize].value.to_sat() == 330)
            .filter_map(|vout| {
                chain.outspend(&OutPoint {
                    txid: commitment.compute_txid(),
                    vout,
                })
            })
            .count()
    };
    assert_eq!(anchors_spent(&chain), 0);
    // The devnet mines the commitment alone at its own fee: no child ever spent our anchor,
    // and once it is confirmed the refusal is no longer what the details say.
    mine_until(&chain, &[&phone], 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(matches!(
        chain.tx_state(&commitment.compute_txid()),
        TxState::Confirmed { .. }
    ));
    assert_eq!(anchors_spent(&chain), 0);
    assert!(!refused().await);
    let after = phone.list_balances().await.expect("balances");
    assert_eq!(after.locked.to_sat(), 0, "{after:?}");
    assert_eq!(after.confirmed, before.confirmed, "{after:?}");
    assert_eq!(after.unconfirmed.to_sat(), 0, "{after:?}");
    check_durability(&phone, "phone");
    phone.stop().await;
}

/// The estimate rises again while the commitment and its child are still unconfirmed (the
/// devnet drops them from its mempool for one block, as a full mempool would): at the next
/// block the phone rebroadcasts both, then replaces the child (RBF: same anchor, same coin,
/// a higher fee), and the replacement is the one mined with the commitment.
#[tokio::test(start_paused = true)]
async fn a_rising_estimate_replaces_the_child_and_the_replacement_is_mined() {
    let (chain, phone, _lsp, _) = anchor_channel_then_fees_rise("cpfp-rbf", 40.0).await;
    let c = phone.list_channels().await.remove(0);
    let funding = c.funding_txo.expect("funding");
    let before = phone.list_balances().await.expect("balances");
    phone
        .force_close_channel(c.channel_id)
        .await
        .expect("force close");
    let (commitment, first) = commitment_and_child(&chain, funding).await;
    // Out of the mempool for one (empty) block, while fees double.
    chain
        .drop_mempool_tx(&commitment.compute_txid())
        .expect("dropped");
    assert_eq!(chain.tx_state(&first.compute_txid()), TxState::Unknown);
    chain.set_fee_estimates(estimates(80.0));
    chain.mine(1);
    phone.sync(None).await.expect("sync");
    let (again, second) = commitment_and_child(&chain, funding).await;
    assert_eq!(again, commitment);
    assert_ne!(second.compute_txid(), first.compute_txid(), "a new child");
    // The same anchor and the same wallet coin: a replacement.
    assert_eq!(second.input.len(), 2);
    for input in &first.input {
        assert!(
            second
                .input
                .iter()
                .any(|i| i.previous_output == input.previous_output),
            "{:?} reused",
            input.previous_output
        );
    }
    let package = package_feerate(&chain, &commitment, &second);
    assert!(
        (20_000..20_100).contains(&package),
        "package {package} sat/kw"
    );
    assert!(fee_of(&chain, &second) > fee_of(&chain, &first));
    chain.mine(1);
    for tx in [&commitment, &second] {
        assert!(matches!(
            chain.tx_state(&tx.compute_txid()),
            TxState::Confirmed { .. }
        ));
    }
    phone.sync(None).await.expect("sync");
    let after = phone.list_balances().await.expect("balances");
    assert_eq!(
        after.confirmed,
        before.confirmed + Amount::from_sat(330) - fee_of(&chain, &second),
        "{after:?}"
    );
    assert_eq!(
        after.unconfirmed.to_sat(),
        0,
        "the first child is gone: {after:?}"
    );
    assert_eq!(after.locked.to_sat(), 0, "{after:?}");
    check_durability(&phone, "phone");
    phone.stop().await;
}

/// `list_channels` says whether our commitment's fee can be bumped: an anchor channel with a
/// wallet coin can (the phone), one without any coin cannot (the LSP's empty wallet), and a
/// channel without anchors has its fee fixed.
#[tokio::test(start_paused = true)]
async fn list_channels_says_whether_the_commitment_fee_can_be_bumped() {
    use tern_core::node::FeeBump;
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let lsp = node(&chain, &net, &dir("words-lsp"), 23, true).await;
    let phone = node(&chain, &net, &dir("words-phone"), 24, false).await;
    chain.set_fee_estimates(estimates(10.0));
    open_to_ready(&chain, &phone, &lsp).await;
    let p = &phone.list_channels().await[0];
    assert!(p.anchors);
    assert_eq!(p.fee_bump, FeeBump::Bumpable, "{p:?}");
    assert!(
        p.fee_bump_words.starts_with("fee can be bumped"),
        "{}",
        p.fee_bump_words
    );
    let l = &lsp.list_channels().await[0];
    assert_eq!(l.fee_bump, FeeBump::NoCoin, "{l:?}");
    assert_eq!(
        l.fee_bump_words,
        "fee cannot be bumped: no on-chain coin to CPFP our anchor with"
    );
    // The LSP receives a coin: bumpable from its next sync on.
    common::node::fund(&chain, &lsp, 30_000).await;
    assert_eq!(lsp.list_channels().await[0].fee_bump, FeeBump::Bumpable);
    phone.stop().await;
    lsp.stop().await;

    // Without anchors (the phone does not prefer them): the fee both signed, in words.
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let lsp = node(&chain, &net, &dir("words-lsp2"), 25, true).await;
    let phone = node_with(&chain, &net, &dir("words-phone2"), 26, false, |b| {
        b.channel_config(|c| c.prefer_anchors = false)
    })
    .await;
    chain.set_fee_estimates(estimates(10.0));
    open_to_ready(&chain, &phone, &lsp).await;
    for n in [&phone, &lsp] {
        let c = &n.list_channels().await[0];
        assert!(!c.anchors);
        assert_eq!(
            c.fee_bump,
            FeeBump::Fixed {
                feerate_per_kw: 2_500
            },
            "{c:?}"
        );
        assert_eq!(
            c.fee_bump_words,
            "fee fixed at 2500 sat/kw: no anchors, a force close cannot raise it"
        );
    }
    phone.stop().await;
    lsp.stop().await;
}

/// The anchor reserve (25 000 sat per anchor channel by default, ldk-node's): an open that
/// would leave less on chain is refused at once with `AnchorReserve` and nothing stored or
/// sent; `list_balances` shows the reserve of the channels we have; a reserve of 0 allows
/// the same open; an inbound anchor open is refused by a node enforcing the reserve inbound
/// with an empty wallet (the funder hears why).
#[tokio::test(start_paused = true)]
async fn the_anchor_reserve_refuses_an_open_that_would_leave_too_little() {
    use tern_core::node::{Event, OpenChannelParams};
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let lsp = node(&chain, &net, &dir("reserve-lsp"), 27, true).await;
    let phone = node(&chain, &net, &dir("reserve-phone"), 28, false).await;
    chain.set_fee_estimates(estimates(10.0));
    lsp.sync(None).await.expect("sync");
    common::node::fund(&chain, &phone, 300_000).await;
    let open = |sat| {
        OpenChannelParams::new(lsp.node_id(), LSP_ADDR, Amount::from_sat(sat))
            .push_msat(0)
            .announce(false)
    };
    let b = phone.list_balances().await.expect("balances");
    assert_eq!(b.anchor_reserve, Amount::ZERO, "no anchor channel yet");
    // 290 000 of 300 000: about 9 000 sat would be left, below one channel's 25 000.
    match phone.open_channel(open(290_000)).await {
        Err(NodeError::AnchorReserve {
            left,
            required,
            anchor_channels,
            per_channel,
        }) => {
            assert_eq!(required, Amount::from_sat(25_000));
            assert_eq!((anchor_channels, per_channel.to_sat()), (1, 25_000));
            assert!((8_000..10_000).contains(&left.to_sat()), "{left}");
        }
        other => panic!("expected AnchorReserve: {other:?}"),
    }
    assert!(phone.list_channels().await.is_empty());
    assert!(lsp.list_channels().await.is_empty());
    // 250 000 leaves about 49 000: allowed; the channel's reserve then shows apart.
    phone.open_channel(open(250_000)).await.expect("open");
    wait_for(&phone, "ChannelPending", |e| {
        matches!(e, Event::ChannelPending { .. })
    })
    .await;
    mine_until(&chain, &[&phone, &lsp], 3).await;
    wait_for(&phone, "ChannelReady", |e| {
        matches!(e, Event::ChannelReady { .. })
    })
    .await;
    let b = phone.list_balances().await.expect("balances");
    assert_eq!(b.anchor_reserve, Amount::from_sat(25_000), "{b:?}");
    assert_eq!(
        b.spendable_after_reserve(),
        b.confirmed - Amount::from_sat(25_000)
    );
    // A second anchor channel needs 50 000 left: 10 000 of the ~49 000 is refused.
    assert!(matches!(
        phone.open_channel(open(10_000)).await,
        Err(NodeError::AnchorReserve {
            anchor_channels: 2,
            ..
        })
    ));
    assert_eq!(phone.list_channels().await.len(), 1);
    phone.stop().await;
    lsp.stop().await;

    // Reserve 0: the 290 000 open goes through.
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let lsp = node_with(&chain, &net, &dir("reserve-lsp2"), 29, true, |b| {
        b.anchor_reserve_inbound(true)
    })
    .await;
    let phone = node_with(&chain, &net, &dir("reserve-phone2"), 30, false, |b| {
        b.anchor_reserve_per_channel(Amount::ZERO)
    })
    .await;
    lsp.sync(None).await.expect("sync");
    common::node::fund(&chain, &phone, 300_000).await;
    let open = OpenChannelParams::new(lsp.node_id(), LSP_ADDR, Amount::from_sat(290_000))
        .push_msat(0)
        .announce(false);
    phone.open_channel(open).await.expect("reserve 0: allowed");
    // The LSP enforces the reserve inbound and has nothing: it refuses, saying why.
    let failed = wait_for(&phone, "ChannelOpenFailed", |e| {
        matches!(e, Event::ChannelOpenFailed { .. })
    })
    .await;
    let Event::ChannelOpenFailed { reason, .. } = failed else {
        unreachable!()
    };
    assert!(
        reason.contains("anchor channels need 25000 sat on chain"),
        "{reason}"
    );
    assert!(lsp.list_channels().await.is_empty());
    phone.stop().await;
    lsp.stop().await;
}

/// The peer's commitment, seen in the mempool (RemoteForce), vanishes from it (the devnet drops
/// it; the peer is gone): the phone's channel cannot be used again and nothing spends its
/// funding, so the phone stores then broadcasts its own latest commitment (`ChannelClosing`
/// with LocalForce), which is mined.
#[tokio::test(start_paused = true)]
async fn the_peers_commitment_vanishing_from_the_mempool_makes_us_broadcast_ours() {
    use tern_core::node::{CloseKind, Event};
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let lsp = node(&chain, &net, &dir("vanish-lsp"), 31, true).await;
    let phone = node(&chain, &net, &dir("vanish-phone"), 32, false).await;
    chain.set_fee_estimates(estimates(10.0));
    open_to_ready(&chain, &phone, &lsp).await;
    let c = phone.list_channels().await.remove(0);
    let funding = c.funding_txo.expect("funding");
    lsp.force_close_channel(c.channel_id)
        .await
        .expect("lsp force close");
    settle("the lsp's commitment in the mempool", || async {
        chain.outspend(&funding).is_some()
    })
    .await;
    let theirs = chain.outspend(&funding).expect("spent").txid;
    lsp.stop().await;
    phone.sync(None).await.expect("sync");
    wait_for(&phone, "RemoteForce", |e| {
        matches!(
            e,
            Event::ChannelClosing {
                kind: CloseKind::RemoteForce,
                ..
            }
        )
    })
    .await;
    // One more sync first: a forced re-check (`report_spend_again`, asked when the phone's
    // own force close raced the LSP's) must have seen the spend again before it vanishes —
    // else the watcher never reports its disappearance (see the report: a watcher race).
    phone.sync(None).await.expect("sync");
    tokio::time::sleep(Duration::from_millis(10)).await;
    phone.sync(None).await.expect("sync");
    chain.drop_mempool_tx(&theirs).expect("dropped");
    // The funding outpoint is checked on its staggered schedule (at most every 36 blocks,
    // `chain::state::MAX_OUTPOINT_INTERVAL`):
    // empty blocks until the phone notices.
    for _ in 0..=36 {
        mine_until(&chain, &[&phone], 1).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        let c = &phone.list_channels().await[0];
        if matches!(
            c.closing,
            Some(tern_core::proto::channel::ClosingStatus::OnChain {
                kind: tern_core::proto::channel::CloseKind::LocalForce,
                ..
            })
        ) {
            break;
        }
    }
    wait_for(&phone, "LocalForce", |e| {
        matches!(
            e,
            Event::ChannelClosing {
                kind: CloseKind::LocalForce,
                ..
            }
        )
    })
    .await;
    settle("our commitment in the mempool", || async {
        chain.outspend(&funding).is_some_and(|s| s.txid != theirs)
    })
    .await;
    let ours = chain.outspend(&funding).expect("spent").txid;
    assert_eq!(chain.tx_state(&theirs), TxState::Unknown);
    chain.mine(1);
    assert!(matches!(chain.tx_state(&ours), TxState::Confirmed { .. }));
    phone.sync(None).await.expect("sync");
    let c = phone.list_channels().await.remove(0);
    assert!(c.status.contains("force-closed by us"), "{}", c.status);
    check_durability(&phone, "phone");
    phone.stop().await;
}
