//! Disconnect injection on every message of an open (Core Lightning's `dev-disconnect`), on the
//! funder's connection and on the fundee's, against the devnet with two Tern nodes. Each case ends either with the
//! channel ready on both sides, or — before the funder's durable point — with the open
//! forgotten by the funder, `ChannelOpenFailed` emitted and its coins unlocked.
//!
//! Needs the `dev-disconnect` feature (`scripts/test.sh` enables it).
#![cfg(feature = "dev-disconnect")]

use bitcoin::{Amount, Network};
use tern_core::net::faults::FaultPlan;
use tern_core::node::{Builder, OpenChannelParams};
use tern_core::proto::channel::ChannelState;
use tern_devnet::Devnet;

mod common;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ready,
    FunderFails,
}

/// Whose connection the rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Funder,
    Fundee,
}

/// How long a transient open waits for a silent peer in these tests.
const OPEN_TIMEOUT_SECS: u64 = 4;
/// The fundee waits longer: where both sides wait for each other (e.g. its `accept_channel`
/// dropped: the funder waits for it, the fundee for `funding_created`), the funder's clock
/// started a network hop earlier and fires first by only milliseconds — under load the fundee's
/// could win and the test would not know which side reports the timeout. With 2 s between them
/// the funder's fires first, always; the fundee then drops its half on the funder's `error`.
const FUNDEE_OPEN_TIMEOUT_SECS: u64 = OPEN_TIMEOUT_SECS + 2;

async fn run(side: Side, rule: &str, expected: Outcome) {
    run_with(side, rule, expected, None).await
}

/// `timeout_in`: the open must fail by timing out while waiting for one of these messages.
async fn run_with(side: Side, rule: &str, expected: Outcome, timeout_in: Option<&[&str]>) {
    // One dir per rule (`-x` and `+x` must not share one when tests share a process).
    let tag = format!(
        "{side:?}{}",
        rule.replace('-', "_close_")
            .replace('+', "_after_")
            .replace('<', "_recv_")
            .replace('$', "_drop_")
            .replace('*', "_any_")
    );
    let plan = |s: Side| {
        if s == side {
            FaultPlan::parse([rule]).expect("rule")
        } else {
            FaultPlan::default()
        }
    };
    let dir = std::env::temp_dir().join(format!("tern-faults-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let devnet = Devnet::start().await.expect("devnet");
    let lsp = Builder::new(Network::Regtest, dir.join("lsp"), &devnet.base_url())
        .seed([1; 32])
        .listen("127.0.0.1:0")
        .channel_config(|c| c.open_timeout_secs = FUNDEE_OPEN_TIMEOUT_SECS)
        .dev_faults(plan(Side::Fundee))
        .start()
        .await
        .expect("lsp");
    let phone = Builder::new(Network::Regtest, dir.join("phone"), &devnet.base_url())
        .seed([2; 32])
        .channel_config(|c| c.open_timeout_secs = OPEN_TIMEOUT_SECS)
        .dev_faults(plan(Side::Funder))
        .start()
        .await
        .expect("phone");
    let address = phone.new_address().await.expect("address");
    devnet
        .faucet(&address, Amount::from_sat(1_000_000))
        .expect("faucet");
    devnet.mine(1);
    phone.sync(None).await.expect("sync");
    lsp.sync(None).await.expect("sync");
    let addr = lsp.listen_addr().expect("listening").to_string();
    phone
        .open_channel(
            OpenChannelParams::new(lsp.node_id(), addr.clone(), Amount::from_sat(200_000))
                .push_msat(0)
                .announce(false),
        )
        .await
        .expect("open");

    let end = common::node::drive_open(&devnet, &phone, &lsp, 120).await;
    let (phone_ready, lsp_ready, failed) = (end.funder_ready, end.fundee_ready, end.failed);
    match expected {
        Outcome::Ready => {
            assert!(failed.is_none(), "{rule}: open failed: {failed:?}");
            assert!(
                phone_ready && lsp_ready,
                "{rule}: not ready: {:?} / {:?}",
                phone.list_channels().await,
                lsp.list_channels().await
            );
        }
        Outcome::FunderFails => {
            assert!(
                failed.is_some(),
                "{rule}: no ChannelOpenFailed; {:?}",
                phone.list_channels().await
            );
            assert!(
                phone.list_channels().await.is_empty(),
                "{rule}: the transient channel is forgotten"
            );
            let b = phone.list_balances().await.expect("balances");
            assert_eq!(
                (b.locked.to_sat(), b.confirmed.to_sat()),
                (0, 1_000_000),
                "{rule}: coins are back"
            );
            // The fundee keeps no transient channel. A channel it persisted before sending
            // funding_signed is failed if the funder said so in an `error` — with nothing to
            // broadcast, its funding never seen —; if the funder vanished without a word it waits
            // for a funding that will never come, and says so.
            // (The funder's error or disconnect reaches the fundee a moment after the funder
            // failed: give it up to 5 s to drop its transient half.)
            for _ in 0..50 {
                if lsp
                    .list_channels()
                    .await
                    .iter()
                    .all(|c| c.state.is_durable())
                {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            for c in lsp.list_channels().await {
                match c.state {
                    ChannelState::FailedUnfunded => assert!(
                        c.status.contains("nothing was committed"),
                        "{rule}: {}",
                        c.status
                    ),
                    ChannelState::AwaitingConfirmations => assert!(
                        c.status.contains("forgotten at block"),
                        "{rule}: {}",
                        c.status
                    ),
                    other => panic!("{rule}: fundee channel left {other:?}: {c:?}"),
                }
            }
            if let Some(reason) = timeout_in {
                let failed = failed.unwrap_or_default();
                assert!(
                    failed.contains("timed out") && reason.iter().any(|r| failed.contains(r)),
                    "{rule}: the open timed out waiting for one of {reason:?}: {failed}"
                );
            }
        }
    }
    phone.stop().await;
    lsp.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

macro_rules! cases {
    ($($name:ident: $side:ident $rule:expr => $outcome:expr,)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                run(Side::$side, $rule, $outcome).await;
            }
        )*
    };
}

cases! {
    close_before_open_channel: Funder "-open_channel" => Outcome::FunderFails,
    close_after_open_channel: Funder "+open_channel" => Outcome::FunderFails,
    close_after_receiving_accept_channel: Funder "<accept_channel" => Outcome::FunderFails,
    close_before_funding_created: Funder "-funding_created" => Outcome::FunderFails,
    close_after_funding_created: Funder "+funding_created" => Outcome::FunderFails,
    close_after_receiving_funding_signed: Funder "<funding_signed" => Outcome::Ready,
    close_before_channel_ready: Funder "-channel_ready" => Outcome::Ready,
    close_after_channel_ready: Funder "+channel_ready" => Outcome::Ready,
    close_after_receiving_channel_ready: Funder "<channel_ready" => Outcome::Ready,
    drop_channel_ready_silently: Funder "$channel_ready" => Outcome::Ready,
    fundee_close_after_receiving_open_channel: Fundee "<open_channel" => Outcome::FunderFails,
    fundee_close_before_accept_channel: Fundee "-accept_channel" => Outcome::FunderFails,
    fundee_close_after_accept_channel: Fundee "+accept_channel" => Outcome::FunderFails,
    fundee_close_before_funding_signed: Fundee "-funding_signed" => Outcome::FunderFails,
    fundee_close_after_funding_signed: Fundee "+funding_signed" => Outcome::Ready,
    fundee_close_before_channel_ready: Fundee "-channel_ready" => Outcome::Ready,
    fundee_close_after_channel_ready: Fundee "+channel_ready" => Outcome::Ready,
    fundee_close_after_receiving_channel_ready: Fundee "<channel_ready" => Outcome::Ready,
    fundee_drops_channel_ready_silently: Fundee "$channel_ready" => Outcome::Ready,
}

// A peer that stays connected but never answers (its message dropped silently): the transient
// open times out after `open_timeout_secs` on the funder (and on the fundee, which forgets its
// half), the funder's coins come back.
#[tokio::test]
async fn silent_fundee_never_gets_open_channel() {
    run_with(
        Side::Funder,
        "$open_channel",
        Outcome::FunderFails,
        Some(&["accept_channel"]),
    )
    .await;
}

#[tokio::test]
async fn silent_fundee_accept_channel_dropped() {
    run_with(
        Side::Fundee,
        "$accept_channel",
        Outcome::FunderFails,
        Some(&["accept_channel"]),
    )
    .await;
}

#[tokio::test]
async fn silent_funder_funding_created_dropped() {
    // Both sides wait: whichever clock fires first fails the open (the funder waiting for
    // funding_signed, or the fundee for funding_created, which tells the funder in an error).
    let waited: &[&str] = &["funding_signed", "funding_created"];
    run_with(
        Side::Funder,
        "$funding_created",
        Outcome::FunderFails,
        Some(waited),
    )
    .await;
}

#[tokio::test]
async fn silent_fundee_funding_signed_dropped() {
    // The fundee persisted (and keeps, explained) its channel; the funder times out.
    run_with(
        Side::Fundee,
        "$funding_signed",
        Outcome::FunderFails,
        Some(&["funding_signed"]),
    )
    .await;
}
