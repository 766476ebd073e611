//! What each commit states beyond the record: the funder's open progress and the coins it
//! gives back — the driver writes exactly that and infers nothing from the state.

use super::harness::Pair;
use crate::channel::{Action, ChannelState, Commit, Input, OpenProgress, Release};

fn commits(history: &[Vec<Action>]) -> Vec<&Commit> {
    history
        .iter()
        .flatten()
        .filter_map(|a| match a {
            Action::Commit(c) => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn the_funders_commits_state_the_open_progress_and_release_at_ready() {
    let mut pair = Pair::open_to_ready();
    let funder = commits(&pair.a.history);
    let stated: Vec<_> = funder
        .iter()
        .map(|c| (c.record.state(), c.open, c.release))
        .collect();
    assert_eq!(
        stated.first(),
        Some(&(
            ChannelState::AwaitingConfirmations,
            Some(OpenProgress::Pending),
            None
        ))
    );
    // Exactly one commit finishes the open, the one that makes the channel ready.
    let done: Vec<_> = stated
        .iter()
        .filter(|(_, open, _)| *open == Some(OpenProgress::Ready))
        .collect();
    assert_eq!(
        done,
        [&(
            ChannelState::Ready,
            Some(OpenProgress::Ready),
            Some(Release::OpenLocks)
        )]
    );
    for (state, open, release) in &stated {
        if *state != ChannelState::Ready {
            assert_eq!((*open, *release), (Some(OpenProgress::Pending), None));
        }
    }
    // The fundee has no open intent and no coins in the channel.
    for c in commits(&pair.b.history) {
        assert_eq!((c.open, c.release), (None, None));
    }
    // After the open is done, later commits (a reorg of the ready channel) state nothing.
    let before = pair.a.history.len();
    pair.a.input(Input::FundingReorged);
    let later = commits(&pair.a.history[before..]);
    assert_eq!(later.len(), 1);
    assert_eq!((later[0].open, later[0].release), (None, None));
}

#[test]
fn a_double_spent_funding_is_abandoned_in_the_failing_commit() {
    let mut pair = Pair::open_to_pending();
    let txid = pair.funding().compute_txid();
    let actions = pair.a.input(Input::FundingDoubleSpent {
        spending_txid: bitcoin::Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros()),
    });
    let [Action::Commit(c), ..] = actions.as_slice() else {
        panic!("commit first: {actions:?}");
    };
    assert_eq!(c.record.state(), ChannelState::Failed);
    assert_eq!(c.open, Some(OpenProgress::Pending));
    assert_eq!(c.release, Some(Release::AbandonFunding { txid }));
    assert_eq!(c.events.len(), 1);
}
