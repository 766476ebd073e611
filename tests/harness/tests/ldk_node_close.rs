//! Closes with ldk-node 0.7 on the in-process devnet (issue 14).
//!
//! Cooperative, each ending with ldk-node's `ChannelClosed` (a cooperative reason), the agreed
//! transaction confirmed (never a commitment), its outputs exact — the fundee paid exactly
//! its balance, the funder its balance less the fee, an output at or below 354 sat removed —
//! and both wallets holding exactly what it paid them:
//! - Tern-funded, closed by Tern or by ldk-node; to a P2TR address, Tern-funded and
//!   ldk-funded (started by Tern); Tern killed right after its `shutdown` left and restarted
//!   (it dials: ldk-node stops redialling once its last channel closes); after its
//!   `closing_signed` left; ldk-funded, Tern killed after its `shutdown` and restarted on the
//!   same port (ldk-node redials it);
//! - the fundee's balance at 0/353/354/355/545/546/547 sat, seven channels to one ldk-node
//!   (two batches, LDK takes at most four unconfirmed inbound channels from one peer; each
//!   confirmed in one block), all closed at once by Tern, Tern-funded and ldk-funded.
//!
//! Unilateral: ldk-node force-closes and Tern sweeps its `to_remote`; Tern force-closes and
//! ldk-node lists its balance as claimable, sweeps it and holds it less exactly the sweep fee.
//! The negotiations finish well within LDK's two timer ticks (60 s each).

use std::collections::BTreeSet;
use std::time::Duration;

use bitcoin::{Address, OutPoint, Transaction};
use ldk_node::lightning::events::ClosureReason;
use ldk_node::{Event as LdkEvent, LightningBalance, PendingSweepBalance};
use tern_core::node::{CloseKind, Event, Node};
use tern_core::proto::channel::ChannelState;
use tern_devnet::{Devnet, TxState};
use tern_harness::demo::tx_fee;
use tern_harness::procs::is_commitment;

mod common;

use common::drive::{
    drive_ready, ldk_opens_to_tern_with, setup, tern_opens, tern_opens_with, Seen, CHANNEL_SAT,
    TIMEOUT,
};
use common::{
    finish, free_port, fund_tern, ldk_addr, start_ldk, start_tern, sync_ldk, Dirs, LdkNode,
    TernOpts,
};

/// LDK removes a closing output at or below 354 sat (its dust limit); Tern's default dust
/// limit, 355, removes exactly the same ones.
const LDK_DUST_SAT: u64 = 354;

async fn wallet_sat(tern: &Node) -> u64 {
    let b = tern.list_balances().await.expect("balances");
    (b.confirmed + b.unconfirmed).to_sat()
}

/// Drives both nodes until ldk-node reports the channel closed and Tern's `ChannelClosing`
/// names `kind`; returns ldk-node's reason.
async fn wait_closed(tern: &Node, ldk: &LdkNode, kind: CloseKind) -> ClosureReason {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let (mut tern_closing, mut reason, mut kinds) = (false, None, Vec::new());
    loop {
        while let Some((seq, e)) = tern.next_event().await.expect("tern events") {
            tern.event_handled(seq).await.expect("handled");
            match e {
                Event::ChannelClosing { kind: k, .. } => {
                    kinds.push(k);
                    assert_eq!(kinds, [kind], "tern's close kinds");
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

/// A cooperative close with ldk-node.
#[derive(Clone, Copy)]
struct Case<'a> {
    test: &'a str,
    tern_funds: bool,
    tern_closes: bool,
    /// The fundee's balance (pushed at the open).
    push_sat: u64,
    /// Tern's share goes to a P2TR address (not its wallet).
    taproot: bool,
    /// Tern (the funder) is killed right after this action of the close, then restarted on
    /// its data dir; it dials ldk-node again.
    halt_after: Option<&'a str>,
}

impl Case<'_> {
    const fn new(test: &str) -> Case<'_> {
        Case {
            test,
            tern_funds: true,
            tern_closes: true,
            push_sat: 0,
            taproot: false,
            halt_after: None,
        }
    }
}

/// A taproot address nobody in the test owns.
fn p2tr_address() -> Address {
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let key = bitcoin::secp256k1::SecretKey::from_slice(&[0x5a; 32]).expect("key");
    let (xonly, _) = key.x_only_public_key(&secp);
    Address::p2tr(&secp, xonly, None, bitcoin::Network::Regtest)
}

fn ldk_onchain_sat(ldk: &LdkNode) -> u64 {
    sync_ldk(ldk);
    ldk.list_balances().total_onchain_balance_sats
}

/// Waits until the devnet knows a spend of `funding`; returns that transaction.
async fn funding_spender(devnet: &Devnet, funding: &OutPoint) -> Transaction {
    let chain = devnet.chain();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(s) = chain.outspend(funding) {
            return chain.transaction(&s.txid).expect("spender");
        }
        assert!(tokio::time::Instant::now() < deadline, "no close broadcast");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A ready channel (funded by Tern or by ldk-node, the fundee holding `push_sat`), closed
/// cooperatively by Tern or by ldk-node: ldk-node's reason is the cooperative one, the funding
/// is spent by a closing transaction (nobody force-closed) paying the fundee exactly its
/// balance and the funder its balance less the fee (each output at or below LDK's 354-sat
/// limit removed), into the wallets or to the P2TR address given.
async fn close_with_ldk(case: Case<'_>) {
    let dirs = Dirs::new(case.test);
    let push_msat = case.push_sat * 1000;
    let (devnet, ldk, mut tern) = if case.tern_funds {
        let opts = TernOpts {
            halt_after: case.halt_after,
            ..TernOpts::default()
        };
        let (devnet, ldk, port, tern): (Devnet, LdkNode, u16, Node) = setup(&dirs, opts).await;
        tern_opens_with(&tern, &ldk, port, CHANNEL_SAT, push_msat)
            .await
            .expect("open");
        let mut seen = Seen::default();
        drive_ready(&devnet, &tern, &ldk, &mut seen).await;
        (devnet, ldk, tern)
    } else {
        // Tern listens on a fixed port (reused by a restart: ldk-node, which dialled it,
        // dials the same address again).
        let opts = TernOpts {
            halt_after: case.halt_after,
            ..TernOpts::default()
        };
        let (devnet, ldk, tern, _) =
            ldk_opens_to_tern_with(&dirs, false, Some(push_msat), opts).await;
        (devnet, ldk, tern)
    };
    let listen_port = tern.listen_addr().map(|a| a.port());
    let ch = tern.list_channels().await[0].clone();
    let funding = ch.funding_txo.expect("funding");
    let tern_balance = if case.tern_funds {
        CHANNEL_SAT - case.push_sat
    } else {
        case.push_sat
    };
    assert_eq!(ch.balance_msat, tern_balance * 1000);
    let ldk_balance = CHANNEL_SAT - tern_balance;
    let (tern_before, ldk_before) = (wallet_sat(&tern).await, ldk_onchain_sat(&ldk));
    let destination = case.taproot.then(p2tr_address);
    let started = std::time::Instant::now();
    let kind = if case.tern_closes {
        let closed = tern.close_channel(ch.channel_id, destination.clone()).await;
        if case.halt_after.is_none() {
            closed.expect("close");
        }
        CloseKind::CooperativeLocal
    } else {
        let c = &ldk.list_channels()[0];
        ldk.close_channel(&c.user_channel_id, tern.node_id())
            .expect("ldk-node close");
        CloseKind::CooperativeRemote
    };
    if let Some(action) = case.halt_after {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while !tern.is_stopped() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "tern never reached {action}: {:?}",
                tern.list_channels().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(tern);
        eprintln!(
            "killed after {action}: funding spent: {:?}; ldk-node {:?}",
            devnet.chain().outspend(&funding).map(|s| s.txid),
            ldk.list_channels()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Tern-funded: it dials ldk-node. ldk-funded: it listens where it did, and ldk-node
        // redials it (every 60 s, ldk-node's PEER_RECONNECTION_INTERVAL).
        let opts = TernOpts {
            listen: listen_port.is_some(),
            listen_port,
            ..TernOpts::default()
        };
        tern = start_tern(&devnet, &dirs.tern(), opts).await;
        assert_eq!(tern.listen_addr().map(|a| a.port()), listen_port);
    }
    let reason = wait_closed(&tern, &ldk, kind).await;
    let cooperative = if case.tern_closes {
        matches!(
            reason,
            ClosureReason::CounterpartyInitiatedCooperativeClosure
        )
    } else {
        matches!(reason, ClosureReason::LocallyInitiatedCooperativeClosure)
    };
    assert!(cooperative, "ldk-node's reason: {reason:?}");
    eprintln!("negotiated in {:?}", started.elapsed());
    let close = funding_spender(&devnet, &funding).await;
    assert!(
        !is_commitment(&close),
        "a commitment spent the funding: {close:?}"
    );
    let fee = CHANNEL_SAT - close.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
    assert!(fee > 0 && fee < 10_000, "closing fee {fee}");
    // The funder pays the fee (and whatever dust was removed).
    let fundee = if case.tern_funds {
        ldk_balance
    } else {
        tern_balance
    };
    let (tern_out, ldk_out) = if fundee <= LDK_DUST_SAT {
        let funder_out = CHANNEL_SAT - fee;
        if case.tern_funds {
            (funder_out, 0)
        } else {
            (0, funder_out)
        }
    } else if case.tern_funds {
        (tern_balance - fee, ldk_balance)
    } else {
        (tern_balance, ldk_balance - fee)
    };
    let mut values: Vec<u64> = close.output.iter().map(|o| o.value.to_sat()).collect();
    values.sort_unstable();
    let mut want: Vec<u64> = [tern_out, ldk_out].into_iter().filter(|v| *v > 0).collect();
    want.sort_unstable();
    assert_eq!(values, want, "closing outputs (fee {fee}): {close:?}");
    if let Some(address) = &destination {
        let paid: Vec<u64> = close
            .output
            .iter()
            .filter(|o| o.script_pubkey == address.script_pubkey())
            .map(|o| o.value.to_sat())
            .collect();
        assert_eq!(paid, [tern_out], "the P2TR output: {close:?}");
    }
    devnet.mine(1);
    let want = tern_before + if destination.is_some() { 0 } else { tern_out };
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        tern.sync(None).await.expect("sync");
        if wallet_sat(&tern).await == want {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tern's wallet: {} sat, expected {want} ({tern_before} + {tern_out}, fee {fee})",
            wallet_sat(&tern).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ldk_onchain_sat(&ldk),
        ldk_before + ldk_out,
        "ldk-node's wallet ({ldk_before} before)"
    );
    assert!(ldk.list_channels().is_empty(), "{:?}", ldk.list_channels());
    finish(tern, ldk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_closes_cooperatively_with_ldk_node() {
    close_with_ldk(Case::new("close-tern")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ldk_node_closes_cooperatively_with_tern() {
    close_with_ldk(Case {
        tern_closes: false,
        ..Case::new("close-ldk")
    })
    .await;
}

/// Tern closes to a taproot address (ldk-node accepts it: Tern advertises
/// `option_shutdown_anysegwit`), as the funder: the P2TR output holds Tern's balance less the
/// fee, ldk-node's its pushed balance exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_funder_closes_to_a_taproot_address() {
    close_with_ldk(Case {
        push_sat: 50_000,
        taproot: true,
        ..Case::new("close-p2tr-tern")
    })
    .await;
}

/// Tern closes to a taproot address as the fundee of ldk-node's channel: the P2TR output holds
/// exactly what ldk-node pushed to Tern (the funder pays the fee).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_fundee_closes_to_a_taproot_address() {
    close_with_ldk(Case {
        tern_funds: false,
        push_sat: 50_000,
        taproot: true,
        ..Case::new("close-p2tr-ldk")
    })
    .await;
}

/// Tern, the funder, is killed right after its `shutdown` left (ldk-node answers a dead
/// peer); restarted, it dials ldk-node, retransmits `shutdown` after `channel_reestablish`
/// and the close ends cooperatively.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_killed_after_sending_shutdown_then_closes_cooperatively() {
    close_with_ldk(Case {
        push_sat: 50_000,
        halt_after: Some("send:shutdown"),
        ..Case::new("close-kill-shutdown")
    })
    .await;
}

/// Tern, the funder, is killed right after its `closing_signed` left: ldk-node accepts the
/// fee, broadcasts the closing transaction and forgets the channel; restarted, Tern dials,
/// gets LDK's placeholder reestablish and `error` for the forgotten channel, and must see its
/// own agreed close on the funding instead of broadcasting its commitment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_killed_after_sending_closing_signed_then_closes_cooperatively() {
    close_with_ldk(Case {
        push_sat: 50_000,
        halt_after: Some("send:closing_signed"),
        ..Case::new("close-kill-closing-signed")
    })
    .await;
}

/// ldk-node funds; Tern, the fundee, closes and is killed right after its `shutdown` left.
/// Restarted, it listens on the same port (the harness keeps one port per Tern), ldk-node
/// dials it again (within its 60 s reconnection interval: this case takes about a minute),
/// Tern retransmits `shutdown` after `channel_reestablish`, ldk-node (the funder) proposes
/// the fee and the close ends cooperatively, both wallets exact. (Restarted on another port,
/// ldk-node never finds it: the close times out.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_fundee_killed_after_sending_shutdown_then_closes_cooperatively() {
    close_with_ldk(Case {
        tern_funds: false,
        push_sat: 50_000,
        halt_after: Some("send:shutdown"),
        ..Case::new("close-kill-shutdown-ldk")
    })
    .await;
}

/// ldk-node force-closes a Tern-funded channel: its commitment spends the funding, Tern
/// (told by LDK's `error`, which makes it check the funding at once) classifies it as the
/// peer's commitment and sweeps its `to_remote` into the wallet; once the sweep is 6 deep
/// Tern's `ChannelClosed` names what came back, and the wallet grew by exactly that.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ldk_node_force_closes_and_tern_sweeps_its_to_remote() {
    let dirs = Dirs::new("close-ldk-force");
    let (devnet, ldk, port, tern): (Devnet, LdkNode, u16, Node) =
        setup(&dirs, TernOpts::default()).await;
    tern_opens(&tern, &ldk, port).await.expect("open");
    let mut seen = Seen::default();
    drive_ready(&devnet, &tern, &ldk, &mut seen).await;
    let funding = tern.list_channels().await[0].funding_txo.expect("funding");
    let before = wallet_sat(&tern).await;
    let c = &ldk.list_channels()[0];
    ldk.force_close_channel(&c.user_channel_id, tern.node_id(), None)
        .expect("ldk-node force close");
    let chain = devnet.chain();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let (mut closing, mut claimed) = (None, None);
    while claimed.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not closed after {TIMEOUT:?}: {:?}",
            tern.list_channels().await
        );
        if chain.outspend(&funding).is_some() {
            devnet.mine(1);
        }
        tern.sync(None).await.expect("sync");
        while let Some((seq, e)) = tern.next_event().await.expect("events") {
            tern.event_handled(seq).await.expect("handled");
            match e {
                Event::ChannelClosing { kind, .. } => closing = Some(kind),
                Event::ChannelClosed { claimed: c, .. } => claimed = Some(c.to_sat()),
                _ => {}
            }
        }
        while ldk.next_event().is_some() {
            ldk.event_handled().expect("ldk-node event handled");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(closing, Some(CloseKind::RemoteForce));
    let claimed = claimed.expect("claimed");
    let commitment = chain
        .transaction(&chain.outspend(&funding).expect("spent").txid)
        .expect("ldk-node's commitment");
    assert!(
        claimed > 0 && claimed < CHANNEL_SAT,
        "claimed {claimed} of {CHANNEL_SAT}; commitment {commitment:?}"
    );
    let want = before + claimed;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while wallet_sat(&tern).await != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "tern's wallet: {} sat, expected {want} ({before} + {claimed})",
            wallet_sat(&tern).await
        );
        tern.sync(None).await.expect("sync");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ch = &tern.list_channels().await[0];
    assert!(ch.status.starts_with("closed"), "{}", ch.status);
    sync_ldk(&ldk);
    finish(tern, ldk).await;
}

/// What ldk-node's `list_balances` said about a closed channel, in order, without repeats.
#[derive(Debug, Default)]
struct LdkClaims {
    /// (kind, amount, confirmation height) of `lightning_balances`.
    lightning: Vec<(&'static str, u64, Option<u32>)>,
    /// (kind, amount, spending txid) of `pending_balances_from_channel_closures`.
    pending: Vec<(&'static str, u64, Option<bitcoin::Txid>)>,
}

impl LdkClaims {
    fn record(&mut self, ldk: &LdkNode) {
        let b = ldk.list_balances();
        for l in b.lightning_balances {
            let seen = match l {
                LightningBalance::ClaimableOnChannelClose {
                    amount_satoshis, ..
                } => ("ClaimableOnChannelClose", amount_satoshis, None),
                LightningBalance::ClaimableAwaitingConfirmations {
                    amount_satoshis,
                    confirmation_height,
                    ..
                } => (
                    "ClaimableAwaitingConfirmations",
                    amount_satoshis,
                    Some(confirmation_height),
                ),
                other => panic!("ldk-node: an unexpected balance {other:?}"),
            };
            if self.lightning.last() != Some(&seen) {
                self.lightning.push(seen);
            }
        }
        for p in b.pending_balances_from_channel_closures {
            let seen = match p {
                PendingSweepBalance::PendingBroadcast {
                    amount_satoshis, ..
                } => ("PendingBroadcast", amount_satoshis, None),
                PendingSweepBalance::BroadcastAwaitingConfirmation {
                    amount_satoshis,
                    latest_spending_txid,
                    ..
                } => (
                    "BroadcastAwaitingConfirmation",
                    amount_satoshis,
                    Some(latest_spending_txid),
                ),
                PendingSweepBalance::AwaitingThresholdConfirmations {
                    amount_satoshis,
                    latest_spending_txid,
                    ..
                } => (
                    "AwaitingThresholdConfirmations",
                    amount_satoshis,
                    Some(latest_spending_txid),
                ),
            };
            if self.pending.last() != Some(&seen) {
                self.pending.push(seen);
            }
        }
    }
}

/// Tern force-closes a Tern-funded channel that gave ldk-node 50,000 sat: its commitment pays
/// ldk-node's `to_remote` exactly that (P2WPKH, static_remote_key; Tern pays the fee), and
/// ldk-node — told by Tern's `error` — lists it as claimable (`ClaimableOnChannelClose`, then
/// `ClaimableAwaitingConfirmations` until 6 deep), then sweeps it (`pending_balances_from_
/// channel_closures`: broadcast, awaiting confirmation, awaiting threshold confirmations) and
/// holds it on chain less exactly its sweep's fee. Tern's own `to_local` waits for ldk-node's
/// `to_self_delay` (its claimable balance says until when).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tern_force_closes_and_ldk_node_claims_its_balance() {
    const PUSH_SAT: u64 = 50_000;
    let dirs = Dirs::new("close-tern-force");
    let (devnet, ldk, port, tern): (Devnet, LdkNode, u16, Node) =
        setup(&dirs, TernOpts::default()).await;
    tern_opens_with(&tern, &ldk, port, CHANNEL_SAT, PUSH_SAT * 1000)
        .await
        .expect("open");
    let mut seen = Seen::default();
    drive_ready(&devnet, &tern, &ldk, &mut seen).await;
    let ch = tern.list_channels().await[0].clone();
    let funding = ch.funding_txo.expect("funding");
    assert_eq!(ldk_onchain_sat(&ldk), 0);
    let mut claims = LdkClaims::default();
    claims.record(&ldk);
    assert_eq!(
        claims.lightning,
        [("ClaimableOnChannelClose", PUSH_SAT, None)],
        "ldk-node before the close"
    );
    tern.force_close_channel(ch.channel_id)
        .await
        .expect("force close");
    let commitment = funding_spender(&devnet, &funding).await;
    assert!(is_commitment(&commitment), "{commitment:?}");
    let commitment_txid = commitment.compute_txid();
    let to_remote: Vec<OutPoint> = commitment
        .output
        .iter()
        .enumerate()
        .filter(|(_, o)| o.script_pubkey.is_p2wpkh())
        .map(|(i, o)| {
            assert_eq!(o.value.to_sat(), PUSH_SAT, "ldk-node's to_remote");
            OutPoint::new(commitment_txid, i as u32)
        })
        .collect();
    let [to_remote] = to_remote.as_slice() else {
        panic!("one to_remote: {commitment:?}")
    };
    let to_local = CHANNEL_SAT - PUSH_SAT - tx_fee(&devnet, &commitment_txid).expect("fee");
    let chain = devnet.chain();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let (mut reason, mut closing, mut confirmed_at) = (None, None, None);
    let sweep = loop {
        while let Some(e) = ldk.next_event() {
            ldk.event_handled().expect("ldk-node event handled");
            if let LdkEvent::ChannelClosed { reason: r, .. } = e {
                reason = r;
            }
        }
        while let Some((seq, e)) = tern.next_event().await.expect("tern events") {
            tern.event_handled(seq).await.expect("handled");
            if let Event::ChannelClosing { kind, .. } = e {
                closing = Some(kind);
            }
        }
        claims.record(&ldk);
        if confirmed_at.is_none() {
            if let TxState::Confirmed { height, .. } = devnet.tx_state(&commitment_txid) {
                confirmed_at = Some(height);
            }
        }
        if let Some(s) = chain.outspend(to_remote) {
            let got = ldk_onchain_sat(&ldk);
            let fee = tx_fee(&devnet, &s.txid).expect("the sweep's fee");
            if s.confirmed.is_some()
                && got == PUSH_SAT - fee
                && claims
                    .pending
                    .last()
                    .is_some_and(|p| p.0 == "AwaitingThresholdConfirmations")
            {
                break (s.txid, fee);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ldk-node never got its balance: {claims:?}; on chain {} sat",
            ldk_onchain_sat(&ldk)
        );
        // One block at a time once ldk-node knows of the close.
        if reason.is_some() {
            devnet.mine(1);
        }
        tern.sync(None).await.expect("tern sync");
        sync_ldk(&ldk);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("ldk-node's balances: {claims:?}; sweep {sweep:?}");
    assert!(
        matches!(reason, Some(ClosureReason::CounterpartyForceClosed { .. })),
        "ldk-node's reason: {reason:?}"
    );
    assert_eq!(closing, Some(CloseKind::LocalForce));
    // Claimable on close, then awaiting 6 confirmations of Tern's commitment.
    let h = confirmed_at.expect("the commitment confirmed");
    assert_eq!(
        claims.lightning.last(),
        Some(&("ClaimableAwaitingConfirmations", PUSH_SAT, Some(h + 5))),
        "{claims:?}"
    );
    assert_eq!(
        claims.lightning[0],
        ("ClaimableOnChannelClose", PUSH_SAT, None)
    );
    // Then swept: every state names the whole output, and the sweep on chain.
    let kinds: Vec<&str> = claims.pending.iter().map(|p| p.0).collect();
    assert!(
        kinds.ends_with(&[
            "BroadcastAwaitingConfirmation",
            "AwaitingThresholdConfirmations"
        ]),
        "{claims:?}"
    );
    for p in &claims.pending {
        assert_eq!(p.1, PUSH_SAT, "{claims:?}");
    }
    assert_eq!(claims.pending.last().and_then(|p| p.2), Some(sweep.0));
    // Tern's to_local: timelocked for ldk-node's to_self_delay.
    let claimable = tern.claimable_balances();
    assert_eq!(
        claimable
            .iter()
            .map(|c| c.amount.to_sat())
            .collect::<Vec<_>>(),
        [to_local],
        "{claimable:?}"
    );
    finish(tern, ldk).await;
}

/// The fundee's balances around LDK's dust rule.
const DUST_CASES: [u64; 7] = [0, 353, 354, 355, 545, 546, 547];
const DUST_CHANNEL_SAT: u64 = 100_000;

/// Seven channels between Tern and one ldk-node, the fundee holding each balance of
/// [`DUST_CASES`], all closed cooperatively by Tern at once: each closing transaction pays
/// the fundee exactly its balance, or nothing at or below 354 sat (both sides remove the same
/// outputs: nobody force-closes), and the funder its balance less one fee for all two-output
/// closes and one for all one-output closes (plus the removed dust).
async fn dust_closes(test: &str, tern_funds: bool) {
    let dirs = Dirs::new(test);
    let devnet = Devnet::start().await.expect("devnet");
    let port = free_port();
    let ldk = start_ldk(&devnet, &dirs.ldk(), port);
    let tern = start_tern(
        &devnet,
        &dirs.tern(),
        TernOpts {
            listen: !tern_funds,
            ..TernOpts::default()
        },
    )
    .await;
    if tern_funds {
        fund_tern(&devnet, &tern).await;
        sync_ldk(&ldk);
    } else {
        // A coin per funding: ldk-node builds each from confirmed coins.
        let address = ldk.onchain_payment().new_address().expect("ldk address");
        for _ in DUST_CASES {
            devnet
                .faucet(&address, bitcoin::Amount::from_sat(150_000))
                .expect("faucet");
        }
        devnet.mine(1);
        sync_ldk(&ldk);
        tern.sync(None).await.expect("tern sync");
    }
    // LDK takes at most 4 unconfirmed inbound channels from one peer: two batches, each
    // confirmed in one block.
    let mut ready = 0;
    for batch in DUST_CASES.chunks(4) {
        for x in batch {
            if tern_funds {
                tern_opens_with(&tern, &ldk, port, DUST_CHANNEL_SAT, x * 1000)
                    .await
                    .expect("open");
            } else {
                let addr = tern.listen_addr().expect("tern listens");
                let before = ldk_fundings_in_mempool(&devnet, &ldk);
                ldk.open_channel(
                    tern.node_id(),
                    ldk_addr(addr.port()),
                    DUST_CHANNEL_SAT,
                    Some(x * 1000),
                    None,
                )
                .expect("ldk-node opens");
                // One at a time: ldk-node building fundings concurrently may pick one coin twice.
                let deadline = tokio::time::Instant::now() + TIMEOUT;
                while ldk_fundings_in_mempool(&devnet, &ldk) == before {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "ldk-node never broadcast the funding of {x} sat: {:?}",
                        ldk.list_channels()
                    );
                    while ldk.next_event().is_some() {
                        ldk.event_handled().expect("ldk-node event handled");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                // Its wallet learns the coin is spent.
                sync_ldk(&ldk);
            }
        }
        ready += batch.len();
        drive_many_ready(&devnet, &tern, &ldk, ready).await;
    }
    let channels = tern.list_channels().await;
    assert_eq!(channels.len(), DUST_CASES.len());
    let fundee_of = |c: &tern_core::node::ChannelDetails| {
        let ours = c.balance_msat / 1000;
        if tern_funds {
            DUST_CHANNEL_SAT - ours
        } else {
            ours
        }
    };
    let mut fundees: Vec<u64> = channels.iter().map(fundee_of).collect();
    fundees.sort_unstable();
    assert_eq!(fundees, DUST_CASES);
    let (tern_before, ldk_before) = (wallet_sat(&tern).await, ldk_onchain_sat(&ldk));
    for c in &channels {
        tern.close_channel(c.channel_id, None).await.expect("close");
    }
    // Every close cooperative on both sides.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let (mut tern_closing, mut ldk_reasons) = (Vec::new(), Vec::new());
    while tern_closing.len() < channels.len() || ldk_reasons.len() < channels.len() {
        while let Some((seq, e)) = tern.next_event().await.expect("tern events") {
            tern.event_handled(seq).await.expect("handled");
            match e {
                Event::ChannelClosing { kind, .. } => tern_closing.push(kind),
                Event::ChannelFailed { reason, .. } => panic!("tern: channel failed: {reason}"),
                _ => {}
            }
        }
        while let Some(e) = ldk.next_event() {
            ldk.event_handled().expect("ldk-node event handled");
            if let LdkEvent::ChannelClosed { reason, .. } = e {
                ldk_reasons.push(reason);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all closed: tern {tern_closing:?}, ldk-node {ldk_reasons:?}; {:?}",
            tern.list_channels().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        tern_closing
            .iter()
            .all(|k| *k == CloseKind::CooperativeLocal),
        "{tern_closing:?}"
    );
    assert!(
        ldk_reasons.iter().all(|r| matches!(
            r,
            Some(ClosureReason::CounterpartyInitiatedCooperativeClosure)
        )),
        "{ldk_reasons:?}"
    );
    // Each closing transaction, by the fundee's balance.
    let (mut one_output_fees, mut two_output_fees) = (BTreeSet::new(), BTreeSet::new());
    let mut by_case = Vec::new();
    let (mut tern_gets, mut ldk_gets) = (0, 0);
    for c in &channels {
        let x = fundee_of(c);
        let close = funding_spender(&devnet, &c.funding_txo.expect("funding")).await;
        assert!(!is_commitment(&close), "{x} sat: a commitment {close:?}");
        let fee = DUST_CHANNEL_SAT - close.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
        let values: Vec<u64> = close.output.iter().map(|o| o.value.to_sat()).collect();
        let funder_out = DUST_CHANNEL_SAT - x - if x <= LDK_DUST_SAT { fee - x } else { fee };
        if x <= LDK_DUST_SAT {
            assert_eq!(values, [funder_out], "{x} sat: the fundee's output removed");
            one_output_fees.insert(fee - x);
        } else {
            let mut sorted = values.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [x, funder_out], "{x} sat: both outputs exact");
            two_output_fees.insert(fee);
        }
        by_case.push((x, fee, c.commitment_feerate_per_kw));
        let fundee_out = if x <= LDK_DUST_SAT { 0 } else { x };
        if tern_funds {
            tern_gets += funder_out;
            ldk_gets += fundee_out;
        } else {
            tern_gets += fundee_out;
            ldk_gets += funder_out;
        }
    }
    if tern_funds {
        // Tern weighs its proposal with both outputs present (as LDK does): at a given
        // feerate, one fee whatever was removed; its target is the channel's commitment
        // feerate (above the devnet's 144-block estimate).
        let per_kw: BTreeSet<u64> = by_case
            .iter()
            .map(|(x, fee, feerate)| {
                let base = if *x <= LDK_DUST_SAT { fee - x } else { *fee };
                base * 1000 / u64::from(*feerate)
            })
            .collect();
        assert_eq!(
            per_kw.len(),
            1,
            "one closing weight for all (balance, fee, commitment feerate): {by_case:?}"
        );
    } else {
        // ldk-node proposes its minimum, weighed with both outputs present too: one fee for
        // all.
        let all: BTreeSet<u64> = one_output_fees.union(&two_output_fees).copied().collect();
        assert_eq!(
            all.len(),
            1,
            "one fee for all (balance, fee, commitment feerate): {by_case:?}"
        );
    }
    eprintln!("closing fees: one output {one_output_fees:?}, two outputs {two_output_fees:?}");
    devnet.mine(1);
    let want = tern_before + tern_gets;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        tern.sync(None).await.expect("sync");
        if wallet_sat(&tern).await == want {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tern's wallet: {} sat, expected {want} ({tern_before} + {tern_gets})",
            wallet_sat(&tern).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ldk_onchain_sat(&ldk),
        ldk_before + ldk_gets,
        "ldk-node's wallet"
    );
    if tern_funds {
        assert_eq!(ldk_gets, 355 + 545 + 546 + 547);
    } else {
        assert_eq!(tern_gets, 355 + 545 + 546 + 547);
    }
    assert!(ldk.list_channels().is_empty(), "{:?}", ldk.list_channels());
    finish(tern, ldk).await;
}

/// How many of ldk-node's channels have their funding in the devnet's mempool.
fn ldk_fundings_in_mempool(devnet: &Devnet, ldk: &LdkNode) -> usize {
    ldk.list_channels()
        .iter()
        .filter_map(|c| c.funding_txo)
        .filter(|o| devnet.tx_state(&o.txid) == TxState::Mempool)
        .count()
}

/// Handles both nodes' events until `n` channels are ready on both sides: one block once all
/// are pending on both (it confirms every funding), then one every third round of 150 ms.
async fn drive_many_ready(devnet: &Devnet, tern: &Node, ldk: &LdkNode, n: usize) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let (mut round, mut mined) = (0u32, false);
    loop {
        let ours = tern.list_channels().await;
        let theirs = ldk.list_channels();
        let pending = ours.iter().filter(|c| c.funding_txo.is_some()).count() == n
            && theirs.iter().filter(|c| c.funding_txo.is_some()).count() == n;
        let ready = ours
            .iter()
            .filter(|c| c.state == ChannelState::Ready)
            .count()
            == n
            && theirs.iter().filter(|c| c.is_channel_ready).count() == n;
        if ready {
            return;
        }
        while let Some((seq, e)) = tern.next_event().await.expect("tern events") {
            tern.event_handled(seq).await.expect("handled");
            if let Event::ChannelOpenFailed { reason, .. } | Event::ChannelFailed { reason, .. } = e
            {
                panic!("tern: {reason}");
            }
        }
        while let Some(e) = ldk.next_event() {
            ldk.event_handled().expect("ldk-node event handled");
            if let LdkEvent::ChannelClosed { reason, .. } = e {
                panic!("ldk-node closed a channel: {reason:?}");
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not {n} ready: tern {ours:?} / ldk-node {theirs:?}"
        );
        // Once every new funding is in the mempool, one block confirms them all.
        let unconfirmed: Vec<_> = ours
            .iter()
            .filter(|c| c.confirmations == 0)
            .filter_map(|c| c.funding_txo)
            .collect();
        let all_in_mempool = !unconfirmed.is_empty()
            && unconfirmed
                .iter()
                .all(|o| devnet.tx_state(&o.txid) == TxState::Mempool);
        if pending && ((!mined && all_in_mempool) || (mined && round.is_multiple_of(3))) {
            if !mined {
                devnet.mine(1);
                for o in &unconfirmed {
                    assert!(
                        matches!(devnet.tx_state(&o.txid), TxState::Confirmed { .. }),
                        "{o} confirmed with the others"
                    );
                }
            }
            mined = true;
            devnet.mine(1);
            tern.sync(None).await.expect("tern sync");
            sync_ldk(ldk);
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dust_balances_of_ldk_node_as_fundee() {
    dust_closes("close-dust-tern", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dust_balances_of_tern_as_fundee() {
    dust_closes("close-dust-ldk", false).await;
}
