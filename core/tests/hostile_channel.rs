//! Hostile messages on a *funded* channel, over the wire, from a peer that has the channel
//! (issue 17 §1): two whole Tern nodes on the in-memory chain and network (paused clock), the
//! phone (funder) and the LSP, one of which sends one update or close message corrupted by a
//! `~` fault rule (`core/src/net/faults.rs`). Each case asserts BOLT 2's outcome at the
//! receiver (`/work/shared/spec/bolts/02-peer-protocol.md`), that it stays up, and exactly the
//! durable change:
//! - a warning (and the connection closed, where BOLT allows it): the receiver's stored
//!   channel record is byte for byte what it was just before, it sends no `error`, and once
//!   the rule is spent the update or close completes on both sides with nothing failed;
//! - fail the channel (a wrong revocation secret, which BOLT requires to fail): the receiver
//!   sends an `error`, its record changes only to the failed phase (same commitment and
//!   feerate), and its latest commitment reaches the chain; the sender fails too, on the
//!   `error`.
//!
//! How the moment "just before" is caught: the sender's plan is a first rule on the message,
//! then the `~` rule. The first loses the message — `$` drops it (the sender's update or
//! close watchdog reconnects 30 s later), or, for a message another one follows in the same
//! flight (the funder's `update_fee`, the fundee's `revoke_and_ack`), `-` closes the
//! connection instead of sending it (the dialler redials after a second) — so both nodes go
//! quiet with the receiver's record final: it persists before it sends, and has received
//! everything else the sender sent (the transcripts say so) and nothing after. The test
//! snapshots it then. On the reconnection the message is retransmitted
//! (`channel_reestablish`) and the `~` rule corrupts it.
//!
//! Needs the `dev-disconnect` feature.
#![cfg(feature = "dev-disconnect")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bitcoin::{OutPoint, Sequence};
use tern_core::net::faults::FaultPlan;
use tern_core::net::MemoryNet;
use tern_core::node::{Event, Node};
use tern_core::proto::channel::{Channel, ChannelRecord, ChannelState};
use tern_core::proto::wire::Message;
use tern_core::store::Store;
use tern_devnet::DevChain;

mod common;

use common::memory::*;
use common::node::check_durability;

/// The estimates after the rise: 40 sat/vB for two blocks, 10 000 sat/kw (`node_updates.rs`).
const RISEN: f64 = 40.0;
const RISEN_PER_KW: u32 = 10_000;
/// The nodes' seeds (`[seed; 32]`).
const LSP_SEED: u8 = 61;
const PHONE_SEED: u8 = 62;

fn ty(name: &str) -> u16 {
    Message::type_for_name(name).expect("a message name")
}

/// What the receiver must do with the corrupted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Send a `warning` and close the connection; nothing stored.
    WarnAndDisconnect,
    /// Send a `warning`, keep the connection; nothing stored.
    Warn,
    /// Send an `error` and fail the channel: broadcast its latest commitment.
    Fail,
    /// The first copy of a duplicated message is applied (the receiver's record then holds
    /// this commitment number and feerate); the second is unexpected: a `warning` and the
    /// connection closed, nothing more stored.
    SecondCopyWarns { number: u64, feerate: u32 },
}

/// One hostile message.
struct Case {
    /// The `~` rule, armed on the sender.
    rule: &'static str,
    /// Whether the phone sends it (else the LSP).
    phone_sends: bool,
    /// What starts the exchange: a cooperative close by the phone (else a fee rise, which
    /// the phone as funder follows with `update_fee`).
    close: bool,
    outcome: Outcome,
}

impl Case {
    fn message(&self) -> &'static str {
        let rest = self.rule.trim_start_matches('~');
        rest.split_once(':').map_or(rest, |(m, _)| m)
    }
}

/// The only channel record in the store of the node at `dir` (read while it runs), with its
/// write time.
fn stored(dir: &Path) -> (Vec<u8>, u64) {
    let store = Store::open(dir.join("tern.sqlite")).expect("store");
    let rows = store.list_channels().expect("channels");
    assert_eq!(rows.len(), 1, "one channel");
    (rows[0].record.clone(), rows[0].updated_at)
}

/// `record` decoded: (phase, commitment number, feerate).
fn decoded(record: &[u8]) -> (ChannelState, u64, u32) {
    let c = Channel::from_record(ChannelRecord::decode(record).expect("record"));
    (
        c.state(),
        c.commitment_number(),
        c.commitment_feerate_per_kw(),
    )
}

fn count(types: &[u16], name: &str) -> usize {
    types.iter().filter(|t| **t == ty(name)).count()
}

/// Handles every queued event of `node`, returning whether one was `ChannelFailed`.
async fn drain_failed(node: &Node) -> Vec<String> {
    let mut failed = Vec::new();
    while let Ok(Some((seq, e))) = node.next_event().await {
        if let Event::ChannelFailed { reason, .. } = &e {
            failed.push(reason.clone());
        }
        let _ = node.event_handled(seq).await;
    }
    failed
}

/// Waits (paused clock, a block now and then: a reconnected funder re-applies its fee policy
/// on one) until both nodes are at commitment 1 with the risen feerate and idle.
async fn until_updated(chain: &DevChain, phone: &Node, lsp: &Node, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let mut round = 0u32;
    loop {
        let updated = at(phone, lsp, RISEN_PER_KW, 1).await;
        let idle = !phone.list_channels().await[0].update_pending
            && !lsp.list_channels().await[0].update_pending;
        if updated && idle {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not updated; phone {:?} lsp {:?}",
            phone.list_channels().await,
            lsp.list_channels().await
        );
        round += 1;
        if round.is_multiple_of(100) {
            mine_until(chain, &[phone, lsp], 1).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the funding is spent by a cooperative close (never a commitment).
async fn until_closed(chain: &DevChain, phone: &Node, lsp: &Node, funding: OutPoint, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        if let Some(spend) = chain.outspend(&funding) {
            let tx = chain.transaction(&spend.txid).expect("spending tx");
            assert_eq!(
                tx.input[0].sequence,
                Sequence::MAX,
                "{what}: the funding is spent by a cooperative close, not a commitment"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not closed; phone {:?} lsp {:?}",
            phone.list_channels().await,
            lsp.list_channels().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits up to 10 s of the paused clock, in 1 ms steps, for `done`.
async fn settle_sync(what: &str, done: impl Fn() -> bool) {
    within(what, 10, done).await;
}

/// Waits up to `secs` of the paused clock, in 1 ms steps (they pass only when the nodes have
/// nothing left to run), for `done`.
async fn within(what: &str, secs: u64, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn run(case: Case) {
    let msg = case.message();
    let what = format!(
        "{} from the {}",
        case.rule,
        if case.phone_sends { "phone" } else { "LSP" }
    );
    let first = match (msg, case.phone_sends) {
        ("update_fee", true) | ("revoke_and_ack", false) => '-',
        _ => '$',
    };
    let sender_plan =
        FaultPlan::parse([format!("{first}{msg}").as_str(), case.rule]).expect("rules");
    let receiver_plan = FaultPlan::default();
    let (phone_plan, lsp_plan) = if case.phone_sends {
        (sender_plan.clone(), receiver_plan.clone())
    } else {
        (receiver_plan.clone(), sender_plan.clone())
    };
    let (chain, net) = (DevChain::new(), MemoryNet::new());
    let tag = case.rule.replace([':', '~'], "-");
    let (dl, dp) = (
        dir(&format!("hc-lsp{tag}{}", case.phone_sends)),
        dir(&format!("hc-phone{tag}{}", case.phone_sends)),
    );
    let lsp = node_with(&chain, &net, &dl, LSP_SEED, true, |b| {
        b.dev_faults(lsp_plan)
    })
    .await;
    let phone = node_with(&chain, &net, &dp, PHONE_SEED, false, |b| {
        b.fee_max_age(Duration::ZERO).dev_faults(phone_plan)
    })
    .await;
    chain.set_fee_estimates(estimates(10.0));
    open_to_ready(&chain, &phone, &lsp).await;
    let funding = phone.list_channels().await[0].funding_txo.expect("funding");
    let (receiver, receiver_dir, sender): (&Node, PathBuf, &Node) = if case.phone_sends {
        (&lsp, dl.clone(), &phone)
    } else {
        (&phone, dp.clone(), &lsp)
    };

    if case.close {
        let id = phone.list_channels().await[0].channel_id;
        phone.close_channel(id, None).await.expect("close");
    } else {
        chain.set_fee_estimates(estimates(RISEN));
        mine_until(&chain, &[&phone, &lsp], 1).await;
    }
    // The first rule lost the message; everything else the sender sent was received.
    settle_sync("the first rule fires", || {
        sender_plan.remaining() == 1
            && sender_plan.sent().len() == receiver_plan.received().len() + 1
    })
    .await;
    // One step of the paused clock: it passes only once the receiver handled all of it (a
    // store job holds the clock).
    tokio::time::sleep(Duration::from_millis(1)).await;
    let before = stored(&receiver_dir);
    let before_details = receiver.list_channels().await[0].clone();
    assert_eq!(
        sender_plan.remaining(),
        1,
        "{what}: the snapshot comes before the retransmission"
    );
    // The connection the corrupted message comes on is the receiver's next `channel_reestablish`.
    let reestablished = count(&receiver_plan.sent(), "channel_reestablish") + 1;
    let (warnings, errors) = (
        count(&receiver_plan.sent(), "warning"),
        count(&receiver_plan.sent(), "error"),
    );

    // The reconnection retransmits the message, corrupted; the receiver answers.
    let answer = if case.outcome == Outcome::Fail {
        "error"
    } else {
        "warning"
    };
    // After the watchdog's 30 s when the first rule was a `$`.
    within(&format!("{what}: the receiver's {answer}"), 60, || {
        sender_plan.remaining() == 0
            && count(&receiver_plan.sent(), answer)
                > [warnings, errors][usize::from(answer == "error")]
    })
    .await;
    // A message the decoder refuses never reaches the node (nor the transcript).
    let undecodable = case.rule.ends_with(":point");
    assert_eq!(
        count(&receiver_plan.received(), msg) > 0,
        !undecodable,
        "{what}: the corrupted {msg} decoded"
    );
    let at_answer = stored(&receiver_dir);
    assert!(!receiver.is_stopped(), "{what}: the receiver stays up");
    let details = receiver.list_channels().await[0].clone();

    match case.outcome {
        Outcome::WarnAndDisconnect | Outcome::Warn | Outcome::SecondCopyWarns { .. } => {
            let (before, before_details) = match case.outcome {
                Outcome::SecondCopyWarns { number, feerate } => {
                    // Only the first copy's change is stored: the record is what it was then.
                    let (state, n, f) = decoded(&at_answer.0);
                    assert_eq!(
                        (state, n, f),
                        (before_details.state, number, feerate),
                        "{what}: the first copy applied"
                    );
                    (at_answer.clone(), details.clone())
                }
                _ => (before, before_details),
            };
            assert!(
                at_answer == before,
                "{what}: the receiver stored nothing; record {:?} written at {} was {:?} at {}",
                decoded(&at_answer.0),
                at_answer.1,
                decoded(&before.0),
                before.1
            );
            assert_eq!(
                count(&receiver_plan.sent(), "error"),
                errors,
                "{what}: no error"
            );
            assert_eq!(
                (
                    details.state,
                    details.commitment_number,
                    details.commitment_feerate_per_kw
                ),
                (
                    before_details.state,
                    before_details.commitment_number,
                    before_details.commitment_feerate_per_kw
                ),
                "{what}"
            );
            // A new connection (another `channel_reestablish` of the receiver) follows a
            // disconnect; the reconnection may come at once, so the gap is not watched for.
            let reconnected =
                || count(&receiver_plan.sent(), "channel_reestablish") > reestablished;
            if case.outcome != Outcome::Warn {
                settle_sync("the receiver closes the connection", reconnected).await;
            } else {
                assert!(
                    !reconnected(),
                    "{what}: a warning alone keeps the connection"
                );
                assert_eq!(
                    receiver.list_peers().await.expect("peers").len(),
                    1,
                    "{what}: a warning alone keeps the connection"
                );
            }
            // The rule is spent: the exchange completes.
            if case.close {
                until_closed(&chain, &phone, &lsp, funding, &what).await;
            } else {
                until_updated(&chain, &phone, &lsp, &what).await;
            }
            for (n, who) in [(&phone, "phone"), (&lsp, "lsp")] {
                assert_eq!(drain_failed(n).await, Vec::<String>::new(), "{what}: {who}");
            }
        }
        Outcome::Fail => {
            let (state, number, feerate) = decoded(&at_answer.0);
            let was = decoded(&before.0);
            assert_eq!(
                (state, number, feerate),
                (ChannelState::Closing, was.1, was.2),
                "{what}: the only durable change is the failed phase (was {was:?})"
            );
            assert_eq!(details.state, ChannelState::Closing, "{what}");
            // The receiver's latest commitment, the one it held before, reaches the chain.
            settle_sync("the commitment broadcast", || {
                chain.outspend(&funding).is_some()
            })
            .await;
            let spend = chain.outspend(&funding).expect("spent");
            let tx = chain.transaction(&spend.txid).expect("tx");
            assert_ne!(tx.input[0].sequence, Sequence::MAX, "{what}: a commitment");
            let seed = if case.phone_sends {
                LSP_SEED
            } else {
                PHONE_SEED
            };
            assert_eq!(
                spend.txid,
                common::commitment::commitment_of_record(&before.0, seed).compute_txid(),
                "{what}: the commitment the receiver held before the message"
            );
            let failed = drain_failed(receiver).await;
            assert_eq!(
                failed.len(),
                1,
                "{what}: the receiver fails once: {failed:?}"
            );
            // The sender hears the error and fails its side too.
            settle("the sender fails on the error", || async {
                sender.list_channels().await[0].state == ChannelState::Closing
            })
            .await;
        }
    }
    check_durability(&phone, "phone");
    check_durability(&lsp, "lsp");
    phone.stop().await;
    lsp.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_commitment_signed_with_a_wrong_signature_is_a_warning() {
    run(Case {
        rule: "~commitment_signed:signature",
        phone_sends: true,
        close: false,
        outcome: Outcome::WarnAndDisconnect,
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_revoke_and_ack_with_a_wrong_secret_fails_the_channel() {
    run(Case {
        rule: "~revoke_and_ack:secret",
        phone_sends: false,
        close: false,
        outcome: Outcome::Fail,
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_revoke_and_ack_with_no_point_is_undecodable_a_warning() {
    run(Case {
        rule: "~revoke_and_ack:point",
        phone_sends: false,
        close: false,
        outcome: Outcome::WarnAndDisconnect,
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_update_fee_below_the_floor_is_a_warning() {
    run(Case {
        rule: "~update_fee:feerate_low",
        phone_sends: true,
        close: false,
        outcome: Outcome::WarnAndDisconnect,
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_absurd_update_fee_is_a_warning() {
    run(Case {
        rule: "~update_fee:feerate_high",
        phone_sends: true,
        close: false,
        outcome: Outcome::WarnAndDisconnect,
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_closing_signed_with_a_wrong_signature_is_a_warning() {
    run(Case {
        rule: "~closing_signed:signature",
        phone_sends: true,
        close: true,
        outcome: Outcome::WarnAndDisconnect,
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_to_an_invalid_script_is_a_warning() {
    run(Case {
        rule: "~shutdown:script",
        phone_sends: true,
        close: true,
        outcome: Outcome::Warn,
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_second_commitment_signed_is_a_warning() {
    run(Case {
        rule: "~commitment_signed:duplicate",
        phone_sends: true,
        close: false,
        outcome: Outcome::SecondCopyWarns {
            number: 1,
            feerate: RISEN_PER_KW,
        },
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_second_revoke_and_ack_is_a_warning() {
    run(Case {
        rule: "~revoke_and_ack:duplicate",
        phone_sends: false,
        close: false,
        outcome: Outcome::SecondCopyWarns {
            number: 0,
            feerate: 2_500,
        },
    })
    .await;
}

// The same corruptions the other way: the LSP's (the fundee's) messages to the phone.

#[tokio::test(start_paused = true)]
async fn the_fundees_commitment_signed_with_a_wrong_signature_is_a_warning() {
    run(Case {
        rule: "~commitment_signed:signature",
        phone_sends: false,
        close: false,
        outcome: Outcome::WarnAndDisconnect,
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_funders_revoke_and_ack_with_a_wrong_secret_fails_the_channel() {
    run(Case {
        rule: "~revoke_and_ack:secret",
        phone_sends: true,
        close: false,
        outcome: Outcome::Fail,
    })
    .await;
}

// Not here: the fundee's `closing_signed`. Its only one is its reply agreeing the funder's
// fee, after which it broadcasts the close itself; a corrupted copy retransmitted on the
// reconnection reaches a funder that already sees the funding spent by that close (it
// ignores the message).

#[tokio::test(start_paused = true)]
async fn the_fundees_shutdown_to_an_invalid_script_is_a_warning() {
    run(Case {
        rule: "~shutdown:script",
        phone_sends: false,
        close: true,
        outcome: Outcome::Warn,
    })
    .await;
}
