//! Chain reactions: confirmations, early channel_ready, the watchdog, reorgs, double-spends,
//! rebroadcasts and the fundee's funding timeout.

use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Txid};

use super::harness::{kinds, Pair};
use crate::channel::{
    Action, ChannelEvent, ChannelState, Confirmation, Input, FUNDEE_FUNDING_TIMEOUT_BLOCKS,
};

#[test]
fn early_channel_ready_from_the_peer_is_remembered() {
    let mut pair = Pair::open_to_pending();
    pair.confirm_funding();
    // The fundee reaches depth first in our virtual world: give the funder a larger depth.
    pair.b.input(Input::NewBlock {
        height: pair.height + 2,
    });
    assert_eq!(pair.b.sent_names(), ["channel_ready"]);
    pair.deliver(false);
    let step = pair.a.history.last().cloned().expect("acted");
    assert_eq!(kinds(&step), ["Persist"], "mark persisted, not ready yet");
    assert_eq!(pair.a.state(), ChannelState::AwaitingConfirmations);
    assert!(pair.a.channel().channel_ready_received());
    // A redundant copy is ignored.
    let ready = pair
        .b
        .channel()
        .channel_ready_message(&pair.b.ctx())
        .expect("ready");
    assert!(pair
        .a
        .input(Input::Message(crate::wire::Message::ChannelReady(ready)))
        .is_empty());
    // At depth, the funder sends its own and is ready at once.
    pair.mine(2);
    let step = pair.a.history.last().cloned().expect("acted");
    assert_eq!(
        kinds(&step),
        ["Persist", "Emit(ChannelReady)", "Send(channel_ready)"]
    );
    assert_eq!(pair.a.state(), ChannelState::Ready);
}

#[test]
fn watchdog_reconnects_when_channel_ready_is_withheld() {
    let mut pair = Pair::open_to_pending();
    pair.drop.push("channel_ready"); // `$channel_ready` on the fundee.
    pair.confirm_funding();
    pair.mine(2); // depth 3 = minimum_depth: both send channel_ready
    pair.run();
    assert_eq!(pair.a.state(), ChannelState::AwaitingChannelReady);
    // Up to minimum_depth + 6 confirmations: patience.
    for _ in 0..6 {
        pair.mine(1);
        let step = pair.a.history.last().cloned().expect("acted");
        assert!(
            step.is_empty(),
            "no watchdog at depth {}",
            pair.a.channel().confirmations(pair.height)
        );
    }
    assert_eq!(pair.a.channel().confirmations(pair.height), 9);
    // One more: reconnect, and again on every further block.
    for depth in 10..13 {
        pair.mine(1);
        let step = pair.a.history.last().cloned().expect("acted");
        assert_eq!(kinds(&step), ["ReconnectPeer"], "depth {depth}");
        let Action::ReconnectPeer {
            counterparty_node_id,
            reason,
        } = &step[0]
        else {
            panic!("reconnect");
        };
        assert_eq!(*counterparty_node_id, pair.b.node_id);
        assert!(reason.contains("channel_ready"), "{reason}");
    }
    // The reconnect's reestablish delivers channel_ready; the watchdog goes quiet.
    pair.drop.clear();
    super::reestablish::reconnect(&mut pair);
    assert_eq!(pair.a.state(), ChannelState::Ready);
    pair.mine(1);
    assert!(pair.a.history.last().expect("acted").is_empty());
}

#[test]
fn reorg_before_ready_goes_back_to_awaiting_confirmations() {
    let mut pair = Pair::open_to_pending();
    pair.confirm_funding();
    pair.mine(2);
    assert_eq!(pair.a.state(), ChannelState::AwaitingChannelReady);
    let a = pair.a.input(Input::FundingReorged);
    assert_eq!(kinds(&a), ["Persist", "BroadcastFunding", "WatchFunding"]);
    let b = pair.b.input(Input::FundingReorged);
    assert_eq!(kinds(&b), ["Persist", "WatchFunding"]);
    for node in [&pair.a, &pair.b] {
        assert_eq!(node.state(), ChannelState::AwaitingConfirmations);
        assert!(node.channel().confirmation().is_none());
        assert!(node.channel().channel_ready_sent(), "the mark stays");
    }
    // Unconfirmed again: the funder rebroadcasts on each block.
    pair.height += 1;
    let a = pair.a.input(Input::NewBlock {
        height: pair.height,
    });
    assert_eq!(kinds(&a), ["BroadcastFunding"]);
    // Mined again in another block: channel_ready is not sent twice, and the exchange
    // (delivered late) completes.
    pair.confirm_funding();
    pair.mine(2);
    let resent: usize = pair
        .a
        .history
        .iter()
        .flatten()
        .filter(|a| matches!(a, Action::Send(crate::wire::Message::ChannelReady(_))))
        .count();
    assert_eq!(resent, 1);
    pair.run();
    assert_eq!(pair.a.state(), ChannelState::Ready);
    assert_eq!(pair.b.state(), ChannelState::Ready);
}

#[test]
fn reorg_of_a_ready_channel_only_clears_the_confirmation() {
    let mut pair = Pair::open_to_ready();
    let actions = pair.a.input(Input::FundingReorged);
    assert_eq!(kinds(&actions), ["Persist"]);
    assert_eq!(pair.a.state(), ChannelState::Ready);
    assert!(pair.a.input(Input::FundingReorged).is_empty());
}

#[test]
fn double_spent_funding_fails_the_channel_and_returns_the_coins() {
    let mut pair = Pair::open_to_pending();
    let spender = Txid::from_byte_array([7; 32]);
    let a = pair.a.input(Input::FundingDoubleSpent {
        spending_txid: spender,
    });
    assert_eq!(
        kinds(&a),
        [
            "Persist",
            "Emit(ChannelOpenFailed)",
            "AbandonFunding",
            "Send(error)"
        ]
    );
    let funding_txid = pair.funding().compute_txid();
    assert!(matches!(
        &a[0],
        Action::Commit(crate::channel::Commit {
            release: Some(crate::channel::Release::AbandonFunding { txid }),
            ..
        }) if *txid == funding_txid
    ));
    assert_eq!(pair.a.state(), ChannelState::Failed);
    assert!(pair
        .a
        .channel()
        .failure_reason()
        .is_some_and(|r| r.contains(&spender.to_string())));
    // The fundee has no coins in it: no AbandonFunding.
    let b = pair.b.input(Input::FundingDoubleSpent {
        spending_txid: spender,
    });
    assert_eq!(
        kinds(&b),
        ["Persist", "Emit(ChannelOpenFailed)", "Send(error)"]
    );
    // Failed is terminal: no more rebroadcasts, no restart actions.
    pair.height += 1;
    assert!(pair
        .a
        .input(Input::NewBlock {
            height: pair.height
        })
        .is_empty());
    assert!(pair.a.restart().is_empty());
    assert!(pair
        .a
        .input(Input::FundingDoubleSpent {
            spending_txid: spender
        })
        .is_empty());
}

#[test]
fn funder_rebroadcasts_until_confirmed_fundee_does_not() {
    let mut pair = Pair::open_to_pending();
    pair.height += 1;
    let h = pair.height;
    assert_eq!(
        kinds(&pair.a.input(Input::NewBlock { height: h })),
        ["BroadcastFunding"]
    );
    assert!(pair.b.input(Input::NewBlock { height: h }).is_empty());
    pair.confirm_funding();
    let h = pair.height + 1;
    assert!(pair.a.input(Input::NewBlock { height: h }).is_empty());
}

#[test]
fn fundee_forgets_a_funding_that_never_confirms() {
    let mut pair = Pair::open_to_pending();
    let created = 100;
    let last_patient = created + FUNDEE_FUNDING_TIMEOUT_BLOCKS - 1;
    assert!(pair
        .b
        .input(Input::NewBlock {
            height: last_patient
        })
        .is_empty());
    let actions = pair.b.input(Input::NewBlock {
        height: last_patient + 1,
    });
    assert_eq!(
        kinds(&actions),
        ["Persist", "Emit(ChannelOpenFailed)", "Send(error)"]
    );
    assert_eq!(pair.b.state(), ChannelState::Failed);
    // The funder never gives up on its own funding (it rebroadcasts instead).
    assert_eq!(
        kinds(&pair.a.input(Input::NewBlock {
            height: last_patient + 1
        })),
        ["BroadcastFunding"]
    );
}

#[test]
fn mined_transaction_must_pay_the_funding_output() {
    let mut pair = Pair::open_to_pending();
    let tx = pair.funding();
    let conf = Confirmation {
        block_height: 101,
        block_hash: BlockHash::from_byte_array([1; 32]),
        tx_index: 4,
    };
    // Another transaction: ignored.
    let mut other = tx.clone();
    other.lock_time = bitcoin::absolute::LockTime::from_consensus(5);
    assert!(pair
        .b
        .input(Input::FundingConfirmed {
            tx: other,
            confirmation: conf,
            tip_height: 101
        })
        .is_empty());
    // The outpoint the funder named pays something else: the channel fails (simulated by
    // corrupting the value while keeping the txid the fundee expects is impossible, so corrupt
    // the fundee's view of the amount instead).
    pair.b.channel.as_mut().expect("channel").params.funding_sat += 1;
    let actions = pair.b.input(Input::FundingConfirmed {
        tx: tx.clone(),
        confirmation: conf,
        tip_height: 101,
    });
    assert_eq!(
        kinds(&actions),
        ["Persist", "Emit(ChannelOpenFailed)", "Send(error)"]
    );
    assert_eq!(pair.b.state(), ChannelState::Failed);
    // The funder's correct view accepts it, once (a repeated report persists nothing new).
    let a = pair.a.input(Input::FundingConfirmed {
        tx: tx.clone(),
        confirmation: conf,
        tip_height: 101,
    });
    assert_eq!(kinds(&a), ["Persist"]);
    let a = pair.a.input(Input::FundingConfirmed {
        tx: tx.clone(),
        confirmation: conf,
        tip_height: 101,
    });
    assert!(a.is_empty());
    assert_eq!(
        pair.a.channel().short_channel_id().map(|s| s.block()),
        Some(101)
    );
}

#[test]
fn confirmation_reported_at_depth_sends_channel_ready_at_once() {
    let mut pair = Pair::open_to_pending();
    let tx = pair.funding();
    let conf = Confirmation {
        block_height: 101,
        block_hash: BlockHash::from_byte_array([1; 32]),
        tx_index: 2,
    };
    // A node that was asleep learns of the confirmation three blocks later.
    let actions = pair.a.input(Input::FundingConfirmed {
        tx,
        confirmation: conf,
        tip_height: 103,
    });
    assert_eq!(kinds(&actions), ["Persist", "Send(channel_ready)"]);
    assert!(matches!(
        pair.a.events.last(),
        Some(ChannelEvent::ChannelPending { .. })
    ));
}
