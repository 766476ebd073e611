//! The peer closes on chain while the phone (a Tern node) is stopped — dropped, its data dir
//! kept — on the devnet's validating chain in process and the in-memory network, paused clock
//! (issue 14, "Devnet"):
//! - the LSP force-closes and 200 blocks pass (the LSP sweeps its own `to_local` meanwhile):
//!   the phone starts, classifies the spend (RemoteForce), sweeps its `to_remote`;
//! - the LSP's *revoked* commitment (commitment 0, revoked by an `update_fee`) reaches the
//!   chain and fewer blocks than the phone's `to_self_delay` pass: the phone starts and
//!   punishes it — the penalty takes the LSP's `to_local` before its CSV could end, and the
//!   phone sweeps its `to_remote` too.
//!
//! Both end with one `ChannelClosing` and one `ChannelClosed` per node and the wallets grown
//! by exactly what the `ChannelClosed` names.
//!
//! Needs the `dev-disconnect` feature.
#![cfg(feature = "dev-disconnect")]

use bitcoin::Transaction;
use tern_core::net::faults::FaultPlan;
use tern_core::node::CloseKind;
use tern_devnet::TxState;

mod close_chain;
mod common;

use close_chain::*;
use common::memory::settle;

fn height_of(p: &Pair, tx: &Transaction) -> u32 {
    match p.chain.tx_state(&tx.compute_txid()) {
        TxState::Confirmed { height, .. } => height,
        other => panic!("not confirmed: {other:?}"),
    }
}

/// Waits until the restarted phone, not synced yet, has met the LSP's `error`: the issue's
/// guard checks the funding before anything else, finds the LSP's transaction and closes with
/// it — no commitment of ours, no LocalForce — and the funding's spend is still the LSP's.
async fn until_reconnected_and_failed(p: &Pair) {
    let spend = p.funding_spend().expect("spent");
    settle("the LSP's error reached the phone", || async {
        p.phone.state().await == tern_core::proto::channel::ChannelState::Closing
    })
    .await;
    assert!(
        !p.phone.closings().contains(&CloseKind::LocalForce),
        "{:?}: {}",
        p.phone.closings(),
        p.phone.status().await
    );
    assert_eq!(
        p.funding_spend(),
        Some(spend),
        "nothing but the LSP's transaction spends the funding"
    );
}

#[tokio::test(start_paused = true)]
async fn the_peer_force_closes_while_the_phone_is_stopped_for_200_blocks() {
    let mut p = Pair::ready(
        "cco-force",
        (71, 72),
        FaultPlan::default(),
        FaultPlan::default(),
    )
    .await;
    p.phone.stop().await;
    let theirs = p.force_close(false).await;
    let start = p.chain.tip().0;
    // 200 blocks with the phone away: the LSP sweeps its to_local after the phone's delay and
    // closes.
    p.mine(200).await;
    assert!(p.lsp.closed().len() == 1, "{:?}", p.lsp.events);
    let spent_at = height_of(&p, &theirs);
    assert_eq!(spent_at, start + 1);
    let to_remote = largest(&theirs);
    assert_eq!(
        p.spender(&to_remote),
        None,
        "nobody touched the phone's output"
    );
    // The phone comes back. It reconnects first: the LSP answers its channel_reestablish
    // with an `error` (the channel is closed on its side), and the phone, a ready channel
    // that has not synced yet, checks the funding before anything else (the guard):
    // the LSP's commitment, so no commitment of its own.
    p.phone
        .restart(&p.chain, &p.net, FaultPlan::default())
        .await;
    until_reconnected_and_failed(&p).await;
    // Its first sync finds the spend, the sweep follows at once.
    let mined = p
        .mine_while(40, "the phone's sweep", |p| p.spender(&to_remote).is_some())
        .await;
    eprintln!("the phone swept {mined} blocks after it started");
    assert!(mined <= 1, "swept at its first sync: {mined} blocks");
    p.mine_while(10, "the phone closed", |p| !p.phone.closed().is_empty())
        .await;
    let sweep = p.spender(&to_remote).expect("sweep");
    assert_eq!(p.phone.closings(), [CloseKind::RemoteForce]);
    assert_eq!(
        p.phone.closed(),
        [(
            CloseKind::RemoteForce,
            outputs_sat(&sweep),
            theirs.compute_txid()
        )]
    );
    assert_eq!(p.lsp.closings(), [CloseKind::LocalForce]);
    let lsp_sweep = p
        .spender(&paying(&theirs, 10_000))
        .expect("the LSP's sweep");
    assert_eq!(
        p.lsp.closed(),
        [(
            CloseKind::LocalForce,
            outputs_sat(&lsp_sweep),
            theirs.compute_txid()
        )]
    );
    p.wallets_hold(outputs_sat(&sweep), outputs_sat(&lsp_sweep))
        .await;
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_revoked_commitment_broadcast_while_the_phone_is_stopped_is_punished_at_start() {
    let mut p = Pair::ready_with(
        "cco-revoked",
        (73, 74),
        FaultPlan::default(),
        FaultPlan::default(),
        true,
    )
    .await;
    // The LSP's commitment 0, kept, then revoked by an update_fee.
    p.lsp.stop().await;
    let old = stored_commitment(&p.lsp.dir, p.lsp.seed);
    p.lsp.restart(&p.chain, &p.net, FaultPlan::default()).await;
    p.chain.set_fee_estimates(common::memory::estimates(40.0));
    {
        let p = &p;
        settle("the phone reconnected", || async {
            !p.phone.node.list_peers().await.expect("peers").is_empty()
        })
        .await;
    }
    p.mine(1).await;
    {
        let p = &p;
        settle("commitment 1 on both sides", || async {
            common::memory::at(&p.phone.node, &p.lsp.node, 10_000, 1).await
                && !p.phone.node.list_channels().await[0].update_pending
                && !p.lsp.node.list_channels().await[0].update_pending
        })
        .await;
    }
    // The phone goes away; the LSP's revoked commitment reaches the chain.
    p.phone.stop().await;
    p.chain
        .broadcast(&old)
        .expect("the old commitment is still valid");
    let their_to_local = paying(&old, 10_000);
    let to_remote = largest(&old);
    assert_eq!(
        old.output[their_to_local.vout as usize].value.to_sat(),
        10_000
    );
    p.mine(100).await;
    let spent_at = height_of(&p, &old);
    assert!(p.chain.tip().0 < spent_at + u32::from(DELAY) - 1);
    assert_eq!(
        p.spender(&their_to_local),
        None,
        "the LSP cannot take it yet"
    );
    // The phone starts (reconnecting first: at the LSP's `error` the guard checks the
    // funding and finds the revoked commitment): the penalty and its to_remote sweep at once.
    p.phone
        .restart(&p.chain, &p.net, FaultPlan::default())
        .await;
    until_reconnected_and_failed(&p).await;
    p.mine_while(3, "the penalty", |p| {
        p.spender(&their_to_local).is_some() && p.spender(&to_remote).is_some()
    })
    .await;
    let (penalty, sweep) = (
        p.spender(&their_to_local).expect("penalty"),
        p.spender(&to_remote).expect("sweep"),
    );
    // `<sig> 1 <script>`: the revocation branch.
    assert_eq!(penalty.input[0].witness.nth(1), Some(&[1u8][..]));
    p.mine_while(10, "the phone closed", |p| !p.phone.closed().is_empty())
        .await;
    assert!(height_of(&p, &penalty) < spent_at + u32::from(DELAY) - 1);
    assert_eq!(p.phone.closings(), [CloseKind::Revoked]);
    let claimed = outputs_sat(&penalty) + outputs_sat(&sweep);
    assert_eq!(
        p.phone.closed(),
        [(CloseKind::Revoked, claimed, old.compute_txid())]
    );
    // The LSP gets nothing back.
    p.mine_while(20, "the LSP closed", |p| !p.lsp.closed().is_empty())
        .await;
    eprintln!("the LSP: {:?}", p.lsp.events);
    let [(_, lsp_claimed, txid)] = p.lsp.closed()[..] else {
        panic!("one ChannelClosed: {:?}", p.lsp.closed())
    };
    assert_eq!((lsp_claimed, txid), (0, old.compute_txid()));
    p.wallets_hold(claimed, 0).await;
    p.stop().await;
}

/// The LSP force-closes and the phone learns the commitment at the LSP's `error` (from the
/// chain source, unconfirmed); the phone is stopped, the commitment confirms, and the phone's
/// watcher already holds that confirmed spend (as when a sync persisted it and the process
/// was killed before the channel took it — the close kill test's run that stayed
/// "unconfirmed"). Restarted, the phone must still learn the confirmation: the watcher's spend
/// is reported again, the phone sweeps its `to_remote` and closes. Before, the start-up check
/// found nothing new (the watcher's spend was unchanged) and the channel stayed "closing
/// transaction unconfirmed" forever.
#[tokio::test(start_paused = true)]
async fn a_confirmation_the_watcher_kept_but_the_channel_missed_is_reported_again_at_start() {
    use tern_core::chain::{ChainSource, ChainState, CHAIN_STATE_KEY};
    let mut p = Pair::ready(
        "cco-missed",
        (75, 76),
        FaultPlan::default(),
        FaultPlan::default(),
    )
    .await;
    let theirs = p.force_close(false).await;
    settle("the phone classified the LSP's commitment", || async {
        p.phone.state().await == tern_core::proto::channel::ChannelState::Closing
    })
    .await;
    p.phone.stop().await;
    assert_eq!(p.phone.closings(), [CloseKind::RemoteForce]);
    p.chain.mine(1);
    let funding = p.funding;
    let spend = common::chain::DevnetSource::new(p.chain.clone())
        .outspend(funding)
        .await
        .expect("outspend")
        .expect("spent");
    assert_eq!(spend.txid, theirs.compute_txid());
    assert!(spend.confirmed.is_some());
    // What a sync killed right after its persist leaves: the watch holds the confirmed spend.
    {
        let mut store =
            tern_core::store::Store::open(p.phone.dir.join("tern.sqlite")).expect("store");
        let bytes = store
            .get_meta(CHAIN_STATE_KEY)
            .expect("meta")
            .expect("state");
        let mut state = ChainState::decode(&bytes).expect("decodes");
        let w = state
            .outpoints
            .get_mut(&funding)
            .expect("the funding watch");
        w.spend = Some(spend);
        w.check_now = false;
        store
            .put_meta(CHAIN_STATE_KEY, &state.encode())
            .expect("put");
    }
    p.phone
        .restart(&p.chain, &p.net, FaultPlan::default())
        .await;
    let to_remote = largest(&theirs);
    p.mine_while(10, "the phone's sweep", |p| p.spender(&to_remote).is_some())
        .await;
    p.mine_while(10, "the phone closed", |p| !p.phone.closed().is_empty())
        .await;
    let sweep = p.spender(&to_remote).expect("sweep");
    assert_eq!(
        p.phone.closed(),
        [(
            CloseKind::RemoteForce,
            outputs_sat(&sweep),
            theirs.compute_txid()
        )]
    );
    p.stop().await;
}
