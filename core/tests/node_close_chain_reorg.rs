//! Reorgs of a close on the devnet's validating chain (issue 14, "Devnet"; BOLT 5 "re-resolve
//! after reorgs"), two Tern nodes on the in-memory network, paused clock:
//! - the cooperative closing tx reorged out after 2 confirmations (no event: the channels
//!   were not closed yet) and mined again; then, once both are `Closed`, reorged out again
//!   and dropped from the mempool: both rebroadcast it, and `resolve.rs`'s rule holds — the
//!   reopen emits `ChannelClosing` again and, 6 deep again, a second `ChannelClosed`;
//! - the closing tx of a closed channel reorged out and replaced by the LSP's commitment: the
//!   channels re-resolve to the new kind (RemoteForce / LocalForce) and sweep (the wallets'
//!   check of this case is ignored: they keep the reorged-out close, see that test);
//! - a force-close commitment reorged out and dropped: the phone rebroadcasts it; its
//!   `to_local` sweep, once closed 6 deep, reorged out and dropped: the sweep is built and
//!   broadcast again, `ChannelClosing` again, a second `ChannelClosed`;
//! - that sweep reorged out and dropped while the phone is stopped (2 deep, not closed): the
//!   spend the watcher forgot at start to report it again is reported gone, the sweep is
//!   built again and the channel closes on it (the `report_spend_again` race).
//!
//! Each ends with both wallets grown by exactly what the last `ChannelClosed` names.
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

/// Reorgs out the blocks from the one holding `tx` to the tip, replaced by one more empty
/// block than that (their transactions back in the mempool); with `drop`, `tx` then leaves
/// the mempool too (with its descendants), as if the new branch had never seen it. Returns
/// the depth `tx` had.
fn reorg_out(p: &Pair, tx: &Transaction, drop: bool) -> u32 {
    let txid = tx.compute_txid();
    let TxState::Confirmed { height, .. } = p.chain.tx_state(&txid) else {
        panic!("{txid} is not confirmed")
    };
    let depth = p.chain.tip().0 - height + 1;
    let outcome = p.chain.reorg(depth, depth + 1).expect("reorg");
    assert!(
        outcome.returned_to_mempool.contains(&txid),
        "{txid} was in the reorged blocks: {outcome:?}"
    );
    if drop {
        p.chain.drop_mempool_tx(&txid).expect("dropped");
        assert_eq!(p.chain.tx_state(&txid), TxState::Unknown);
    }
    depth
}

async fn until_in_mempool(p: &Pair, tx: &Transaction, what: &str) {
    let txid = tx.compute_txid();
    // The nodes sync the new tip and rebroadcast.
    for n in [&p.phone.node, &p.lsp.node] {
        n.sync(None).await.expect("sync");
    }
    settle(what, || async {
        p.chain.tx_state(&txid) == TxState::Mempool
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_cooperative_close_reorged_out_is_mined_again_and_closes_again() {
    let mut p = Pair::ready(
        "ccr-coop",
        (61, 62),
        FaultPlan::default(),
        FaultPlan::default(),
    )
    .await;
    p.phone.node.close_channel(p.id, None).await.expect("close");
    let close = {
        let p = &p;
        settle("the close in the mempool", || async {
            p.funding_spend().is_some()
        })
        .await;
        p.funding_spend().expect("spent")
    };
    let txid = close.compute_txid();
    let fee = 250_000 - outputs_sat(&close);
    let shares = (240_000 - fee, 10_000);
    // Two confirmations, then a reorg of both blocks: back in the mempool (the nodes see it
    // unconfirmed), mined again in the next block.
    p.mine(2).await;
    assert_eq!(reorg_out(&p, &close, false), 2);
    assert_eq!(p.chain.tx_state(&txid), TxState::Mempool);
    p.mine(1).await;
    assert!(p.confirmed(&txid));
    p.mine_while(10, "both closed", |p| {
        !p.phone.closed().is_empty() && !p.lsp.closed().is_empty()
    })
    .await;
    // The channels were still closing: no event came of the reorg.
    assert_eq!(p.phone.closings(), [CloseKind::CooperativeLocal]);
    assert_eq!(p.lsp.closings(), [CloseKind::CooperativeRemote]);
    assert_eq!(
        p.phone.closed(),
        [(CloseKind::CooperativeLocal, shares.0, txid)]
    );
    assert_eq!(
        p.lsp.closed(),
        [(CloseKind::CooperativeRemote, shares.1, txid)]
    );

    // Closed, 6 deep: reorged out and forgotten by the new branch. Both reopen (ChannelClosing
    // again, same kind) and rebroadcast their agreed close.
    assert_eq!(reorg_out(&p, &close, true), 6);
    until_in_mempool(&p, &close, "the close rebroadcast").await;
    p.pump().await;
    assert_eq!(
        p.phone.closings(),
        [CloseKind::CooperativeLocal, CloseKind::CooperativeLocal]
    );
    assert_eq!(
        p.lsp.closings(),
        [CloseKind::CooperativeRemote, CloseKind::CooperativeRemote]
    );
    assert!(!p.phone.status().await.starts_with("closed"));
    p.mine_while(10, "both closed again", |p| {
        p.phone.closed().len() == 2 && p.lsp.closed().len() == 2
    })
    .await;
    assert_eq!(
        p.phone.closed()[1],
        (CloseKind::CooperativeLocal, shares.0, txid)
    );
    assert_eq!(
        p.lsp.closed()[1],
        (CloseKind::CooperativeRemote, shares.1, txid)
    );
    p.mine(3).await;
    assert_eq!(p.phone.closings().len() + p.lsp.closings().len(), 4);
    assert_eq!(p.phone.closed().len() + p.lsp.closed().len(), 4);
    p.wallets_hold(shares.0, shares.1).await;
    p.stop().await;
}

/// The cooperative close of a closed channel reorged out, the LSP's commitment in its place:
/// both re-resolve, sweep, and close again; with `wallets`, the wallets are checked too.
async fn replaced_by_a_commitment(tag: &str, seeds: (u8, u8), wallets: bool) {
    let mut p = Pair::ready(tag, seeds, FaultPlan::default(), FaultPlan::default()).await;
    // The LSP's commitment, kept for the branch where the close never happened.
    p.lsp.stop().await;
    let theirs = stored_commitment(&p.lsp.dir, p.lsp.seed);
    p.lsp.restart(&p.chain, &p.net, FaultPlan::default()).await;
    {
        let p = &p;
        settle("the phone reconnected", || async {
            !p.phone.node.list_peers().await.expect("peers").is_empty()
        })
        .await;
    }
    p.phone.node.close_channel(p.id, None).await.expect("close");
    {
        let p = &p;
        settle("the close in the mempool", || async {
            p.funding_spend().is_some()
        })
        .await;
    }
    let close = p.funding_spend().expect("spent");
    p.mine_while(10, "both closed", |p| {
        !p.phone.closed().is_empty() && !p.lsp.closed().is_empty()
    })
    .await;
    // The branch without the close has the LSP's commitment instead.
    assert_eq!(reorg_out(&p, &close, true), 6);
    p.chain
        .broadcast(&theirs)
        .expect("the commitment spends the funding again");
    let (to_remote, to_local) = (largest(&theirs), paying(&theirs, 10_000));
    p.mine_while(u32::from(DELAY) + 60, "both closed again", |p| {
        p.phone.closed().len() == 2 && p.lsp.closed().len() == 2
    })
    .await;
    assert_eq!(
        p.phone.closings(),
        [CloseKind::CooperativeLocal, CloseKind::RemoteForce]
    );
    assert_eq!(
        p.lsp.closings(),
        [CloseKind::CooperativeRemote, CloseKind::LocalForce]
    );
    let (sweep, lsp_sweep) = (
        p.spender(&to_remote).expect("the phone's sweep"),
        p.spender(&to_local).expect("the LSP's sweep"),
    );
    let want = (outputs_sat(&sweep), outputs_sat(&lsp_sweep));
    assert_eq!(
        p.phone.closed()[1],
        (CloseKind::RemoteForce, want.0, theirs.compute_txid())
    );
    assert_eq!(
        p.lsp.closed()[1],
        (CloseKind::LocalForce, want.1, theirs.compute_txid())
    );
    if wallets {
        p.wallets_hold(want.0, want.1).await;
    }
    p.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_closed_cooperative_close_replaced_by_a_commitment_is_resolved_again() {
    replaced_by_a_commitment("ccr-repl", (63, 64), false).await;
}

/// The same, with the wallets: each holds its sweep and not the reorged-out close's output
/// (the light wallet update cannot unwind a reorg: a sync that reports one resyncs the
/// wallet, `Node::resync_wallet`).
#[tokio::test(start_paused = true)]
async fn after_the_replacement_the_wallets_hold_the_sweeps_not_the_reorged_close() {
    replaced_by_a_commitment("ccr-replw", (67, 68), true).await;
}

#[tokio::test(start_paused = true)]
async fn a_reorged_commitment_and_a_reorged_sweep_are_broadcast_again() {
    let mut p = Pair::ready(
        "ccr-force",
        (65, 66),
        FaultPlan::default(),
        FaultPlan::default(),
    )
    .await;
    let ours = p.force_close(true).await;
    let to_local = largest(&ours);
    // Two confirmations, then gone from the new branch (the LSP's to_remote sweep with it):
    // the phone rebroadcasts its commitment.
    p.mine(2).await;
    assert_eq!(reorg_out(&p, &ours, true), 2);
    until_in_mempool(&p, &ours, "the commitment rebroadcast").await;
    // Its to_local is swept after the delay counted from the new confirmation; closed 6 deep.
    p.mine_while(u32::from(DELAY) + 20, "the phone closed", |p| {
        !p.phone.closed().is_empty() && !p.lsp.closed().is_empty()
    })
    .await;
    let first = p.spender(&to_local).expect("the sweep");
    assert_eq!(p.phone.closed()[0].1, outputs_sat(&first));
    assert_eq!(p.phone.closings(), [CloseKind::LocalForce]);
    // The sweep reorged out with its 6 blocks and forgotten: closing again, the sweep built
    // and broadcast again at the next block, closed again 6 deep.
    assert_eq!(reorg_out(&p, &first, true), 6);
    p.mine_while(3, "the sweep broadcast again", |p| {
        p.spender(&to_local).is_some()
    })
    .await;
    p.pump().await;
    assert_eq!(
        p.phone.closings(),
        [CloseKind::LocalForce, CloseKind::LocalForce]
    );
    p.mine_while(10, "the phone closed again", |p| {
        p.phone.closed().len() == 2
    })
    .await;
    let again = p.spender(&to_local).expect("the sweep");
    let [(_, _, c1), (kind, claimed, c2)] = p.phone.closed()[..] else {
        panic!("two ChannelClosed: {:?}", p.phone.closed())
    };
    assert_eq!(
        (kind, c1, c2),
        (
            CloseKind::LocalForce,
            ours.compute_txid(),
            ours.compute_txid()
        )
    );
    assert_eq!(claimed, outputs_sat(&again));
    // The LSP's side of it: its to_remote sweep, unaffected by the last reorg. The phone's
    // `error` (sent after its commitment's broadcast) made it check the funding first: the
    // phone's commitment, RemoteForce, and nothing of its own. When that commitment left the
    // chain and the mempool, the LSP found its funding unspent and broadcast its own
    // commitment (a vanished peer commitment must not leave the channel stuck: LocalForce);
    // the phone's rebroadcast commitment was mined instead: RemoteForce again.
    assert_eq!(
        p.lsp.closings(),
        [
            CloseKind::RemoteForce,
            CloseKind::LocalForce,
            CloseKind::RemoteForce
        ]
    );
    let [(kind, lsp_claimed, _)] = p.lsp.closed()[..] else {
        panic!("one ChannelClosed: {:?}", p.lsp.closed())
    };
    assert_eq!(kind, CloseKind::RemoteForce);
    p.mine(3).await;
    assert_eq!(p.phone.closed().len() + p.lsp.closed().len(), 3);
    // A commitment that pays less than the estimate is CPFP'd through our anchor from a wallet
    // coin (the anchor issue's bump): that child's cost comes out of the phone's wallet.
    let child_cost: u64 = (0..ours.output.len() as u32)
        .filter(|&vout| ours.output[vout as usize].value.to_sat() == 330)
        .filter_map(|vout| {
            p.spender(&bitcoin::OutPoint {
                txid: ours.compute_txid(),
                vout,
            })
        })
        .filter(|child| child.input.len() > 1)
        .map(|child| {
            let coins: u64 = child
                .input
                .iter()
                .filter(|i| i.previous_output.txid != ours.compute_txid())
                .map(|i| {
                    let parent = p.chain.transaction(&i.previous_output.txid).expect("coin");
                    parent.output[i.previous_output.vout as usize]
                        .value
                        .to_sat()
                })
                .sum();
            coins - child.output.iter().map(|o| o.value.to_sat()).sum::<u64>()
        })
        .sum();
    eprintln!("the phone's CPFP child cost its wallet {child_cost} sat");
    p.phone.before -= child_cost;
    p.wallets_hold(claimed, lsp_claimed).await;
    p.stop().await;
}

/// The phone's confirmed `to_local` sweep reorged out and forgotten by the chain while the
/// phone is stopped: at start the phone asks the watcher to report its output spends again
/// (`report_spend_again`: a kill may have lost one), and the re-check finds the output
/// unspent. The watcher reports it so (the spend it forgot is gone): the sweep is built and
/// broadcast again, and the channel closes on the new sweep. Before, the forgotten spend was
/// never reported gone: the channel kept the vanished sweep as confirmed and would close
/// counting coins that are not on chain.
#[tokio::test(start_paused = true)]
async fn a_sweep_reorged_out_while_the_phone_is_stopped_is_broadcast_again_at_start() {
    let mut p = Pair::ready(
        "ccr-stopped",
        (67, 68),
        FaultPlan::default(),
        FaultPlan::default(),
    )
    .await;
    let ours = p.force_close(true).await;
    let to_local = largest(&ours);
    p.mine_while(u32::from(DELAY) + 20, "the sweep confirmed", |p| {
        p.spender(&to_local)
            .is_some_and(|s| p.confirmed(&s.compute_txid()))
    })
    .await;
    // One more block: the phone has seen its sweep confirmed (2 deep, not closed yet).
    p.mine(1).await;
    let first = p.spender(&to_local).expect("the sweep");
    assert!(p.phone.closed().is_empty());
    p.phone.stop().await;
    assert_eq!(reorg_out(&p, &first, true), 2);
    assert_eq!(p.spender(&to_local), None);
    p.phone
        .restart(&p.chain, &p.net, FaultPlan::default())
        .await;
    p.mine_while(3, "the sweep broadcast again", |p| {
        p.spender(&to_local).is_some()
    })
    .await;
    p.mine_while(10, "the phone closed", |p| !p.phone.closed().is_empty())
        .await;
    let again = p.spender(&to_local).expect("the sweep");
    assert!(p.confirmed(&again.compute_txid()));
    assert_eq!(
        p.phone.closed(),
        [(
            CloseKind::LocalForce,
            outputs_sat(&again),
            ours.compute_txid()
        )]
    );
    assert_eq!(p.phone.closings(), [CloseKind::LocalForce]);
    p.stop().await;
}
