//! The funding spent while a cooperative close is still negotiating (issue 14, "Devnet"), on
//! the devnet's validating chain in process and the in-memory network, paused clock: two Tern
//! nodes, the phone funding, the negotiation held by a `dev-disconnect` rule (`$closing_signed`
//! drops a `closing_signed` and keeps the connection). The spend is
//! - the peer's commitment (the LSP stopped mid-negotiation; its stored commitment reaches the
//!   chain): the phone closes RemoteForce and sweeps its `to_remote`;
//! - our own commitment (the phone's `force_close_channel` during the negotiation): the phone
//!   closes LocalForce and sweeps its `to_local` after the delay, the LSP its `to_remote`
//!   (after trying its own commitment on the phone's `error`, refused by the chain);
//! - the agreed closing tx (the fundee agreed and broadcast it, every `closing_signed` it sends
//!   is dropped): the funder learns its close from the chain.
//!
//! Each ends with both channels `Closed`, the `ChannelClosing` kinds each node told its app
//! (the cooperative one at the shutdown, then the one of the spend, each once), one
//! `ChannelClosed` each naming what came back, and both wallets grown by exactly that.
//!
//! Needs the `dev-disconnect` feature.
#![cfg(feature = "dev-disconnect")]

use bitcoin::Sequence;
use tern_core::net::faults::FaultPlan;
use tern_core::node::CloseKind;
use tern_core::proto::channel::ChannelState;

mod close_chain;
mod common;

use close_chain::*;
use common::memory::settle;

/// Waits until the phone's first `closing_signed` was dropped and both sides negotiate.
async fn held(p: &Pair, armed: &FaultPlan) {
    settle("the negotiation is held", || async {
        armed.remaining() == 0
            && p.phone.state().await == ChannelState::Negotiating
            && p.lsp.state().await == ChannelState::Negotiating
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_peers_commitment_spends_the_funding_during_the_negotiation() {
    let plan = FaultPlan::parse(["$closing_signed"]).expect("rule");
    let armed = plan.clone();
    let mut p = Pair::ready("cc-theirs", (51, 52), plan, FaultPlan::default()).await;
    p.phone.node.close_channel(p.id, None).await.expect("close");
    held(&p, &armed).await;
    // The LSP goes away mid-negotiation; its commitment reaches the chain.
    p.lsp.stop().await;
    assert_eq!(stored_state(&p.lsp.dir), ChannelState::Negotiating);
    let theirs = stored_commitment(&p.lsp.dir, p.lsp.seed);
    p.chain
        .broadcast(&theirs)
        .expect("the LSP's commitment is valid");
    let commitment_fee = 250_000 - outputs_sat(&theirs);
    let (their_to_local, our_to_remote) = (paying(&theirs, 10_000), largest(&theirs));
    assert_eq!(
        p.chain.transaction(&theirs.compute_txid()),
        Some(theirs.clone())
    );
    // The phone classifies it, sweeps its to_remote at once, and closes 6 deep.
    p.mine_while(60, "the phone closed", |p| !p.phone.closed().is_empty())
        .await;
    let sweep = p.spender(&our_to_remote).expect("the phone's sweep");
    assert!(p.confirmed(&sweep.compute_txid()));
    assert_eq!(
        theirs.output[our_to_remote.vout as usize].value.to_sat(),
        240_000 - commitment_fee - ANCHORS_SAT,
        "the funder paid the commitment fee and the anchors"
    );
    assert_eq!(
        p.phone.closings(),
        [CloseKind::CooperativeLocal, CloseKind::RemoteForce]
    );
    let [(kind, phone_claimed, txid)] = p.phone.closed()[..] else {
        panic!("one ChannelClosed: {:?}", p.phone.closed())
    };
    assert_eq!(
        (kind, txid),
        (CloseKind::RemoteForce, theirs.compute_txid())
    );
    assert_eq!(phone_claimed, outputs_sat(&sweep));
    assert!(
        p.phone.status().await.starts_with("closed"),
        "{}",
        p.phone.status().await
    );

    // The LSP comes back: its own commitment closed the channel (LocalForce); its to_local
    // is swept after the phone's delay.
    p.lsp.restart(&p.chain, &p.net, FaultPlan::default()).await;
    p.mine_while(u32::from(DELAY) + 60, "the LSP closed", |p| {
        !p.lsp.closed().is_empty()
    })
    .await;
    let lsp_sweep = p.spender(&their_to_local).expect("the LSP's sweep");
    assert_eq!(
        theirs.output[their_to_local.vout as usize].value.to_sat(),
        10_000
    );
    assert_eq!(lsp_sweep.input[0].sequence, Sequence(u32::from(DELAY)));
    assert_eq!(
        p.lsp.closings(),
        [CloseKind::CooperativeRemote, CloseKind::LocalForce]
    );
    let [(kind, lsp_claimed, txid)] = p.lsp.closed()[..] else {
        panic!("one ChannelClosed: {:?}", p.lsp.closed())
    };
    assert_eq!((kind, txid), (CloseKind::LocalForce, theirs.compute_txid()));
    assert_eq!(lsp_claimed, outputs_sat(&lsp_sweep));
    // Nothing more, ever: a few more blocks repeat no event.
    p.mine(3).await;
    assert_eq!(p.phone.closings().len() + p.lsp.closings().len(), 4);
    assert_eq!(p.phone.closed().len() + p.lsp.closed().len(), 2);
    p.wallets_hold(phone_claimed, lsp_claimed).await;
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn our_force_close_during_the_negotiation_spends_the_funding() {
    let plan = FaultPlan::parse(["$closing_signed"]).expect("rule");
    let armed = plan.clone();
    let mut p = Pair::ready("cc-ours", (53, 54), plan, FaultPlan::default()).await;
    p.phone.node.close_channel(p.id, None).await.expect("close");
    held(&p, &armed).await;
    let ours = p.force_close(true).await;
    let commitment_fee = 250_000 - outputs_sat(&ours);
    let (our_to_local, their_to_remote) = (largest(&ours), paying(&ours, 10_000));
    assert_eq!(ours.input[0].sequence.0 >> 24, 0x80, "a commitment");
    p.mine_while(u32::from(DELAY) + 60, "both closed", |p| {
        !p.phone.closed().is_empty() && !p.lsp.closed().is_empty()
    })
    .await;
    let (sweep, lsp_sweep) = (
        p.spender(&our_to_local).expect("the phone's sweep"),
        p.spender(&their_to_remote).expect("the LSP's sweep"),
    );
    assert_eq!(
        ours.output[our_to_local.vout as usize].value.to_sat(),
        240_000 - commitment_fee - ANCHORS_SAT
    );
    assert_eq!(
        ours.output[their_to_remote.vout as usize].value.to_sat(),
        10_000
    );
    assert_eq!(
        p.phone.closings(),
        [CloseKind::CooperativeLocal, CloseKind::LocalForce]
    );
    // The LSP's last word is the phone's commitment (RemoteForce). The phone's `error`, sent
    // after its commitment's broadcast, made the LSP check the funding first (the issue's
    // guard): the phone's commitment, and no LocalForce of its own.
    assert_eq!(
        p.lsp.closings(),
        [CloseKind::CooperativeRemote, CloseKind::RemoteForce]
    );
    let [(kind, phone_claimed, txid)] = p.phone.closed()[..] else {
        panic!("one ChannelClosed: {:?}", p.phone.closed())
    };
    assert_eq!((kind, txid), (CloseKind::LocalForce, ours.compute_txid()));
    assert_eq!(phone_claimed, outputs_sat(&sweep));
    let [(kind, lsp_claimed, txid)] = p.lsp.closed()[..] else {
        panic!("one ChannelClosed: {:?}", p.lsp.closed())
    };
    assert_eq!((kind, txid), (CloseKind::RemoteForce, ours.compute_txid()));
    assert_eq!(lsp_claimed, outputs_sat(&lsp_sweep));
    p.mine(3).await;
    assert_eq!(p.phone.closed().len() + p.lsp.closed().len(), 2);
    p.wallets_hold(phone_claimed, lsp_claimed).await;
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_agreed_close_reaches_the_chain_while_the_funder_still_negotiates() {
    // Every closing_signed the LSP sends is dropped (its echo, and any retransmission after
    // a reconnection): the phone can only learn its close from the chain.
    let rules = vec!["$closing_signed"; 50];
    let lsp_plan = FaultPlan::parse(rules).expect("rules");
    let armed = lsp_plan.clone();
    let mut p = Pair::ready("cc-agreed", (55, 56), FaultPlan::default(), lsp_plan).await;
    p.phone.node.close_channel(p.id, None).await.expect("close");
    let close = {
        let p = &p;
        settle("the agreed close in the mempool", || async {
            p.funding_spend().is_some()
        })
        .await;
        p.funding_spend().expect("spent")
    };
    assert_eq!(
        close.input[0].sequence,
        Sequence::MAX,
        "a cooperative close"
    );
    assert!(armed.remaining() < 50, "the LSP's echo was dropped");
    assert_eq!(p.phone.state().await, ChannelState::Negotiating);
    p.mine_while(60, "both closed", |p| {
        !p.phone.closed().is_empty() && !p.lsp.closed().is_empty()
    })
    .await;
    assert!(
        armed.remaining() > 0,
        "no closing_signed of the LSP ever reached the phone"
    );
    let fee = 250_000 - outputs_sat(&close);
    assert!(fee > 0);
    assert_eq!(p.phone.closings(), [CloseKind::CooperativeLocal]);
    assert_eq!(p.lsp.closings(), [CloseKind::CooperativeRemote]);
    assert_eq!(p.phone.failures() + p.lsp.failures(), 0);
    for (side, kind, share) in [
        (&p.phone, CloseKind::CooperativeLocal, 240_000 - fee),
        (&p.lsp, CloseKind::CooperativeRemote, 10_000),
    ] {
        assert_eq!(side.closed(), [(kind, share, close.compute_txid())]);
    }
    p.mine(3).await;
    assert_eq!(p.phone.closed().len() + p.lsp.closed().len(), 2);
    p.wallets_hold(240_000 - fee, 10_000).await;
    p.stop().await;
}
