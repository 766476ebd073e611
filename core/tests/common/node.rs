//! Driving an open between two nodes to its end, for the fault and restart matrices.

use std::time::Duration;

use bitcoin::Amount;
use tern_core::node::{Event, Node};
use tern_devnet::DevChain;

/// How an open ended.
#[derive(Debug, Clone, Default)]
pub struct OpenEnd {
    /// The funder saw `ChannelReady`.
    pub funder_ready: bool,
    /// The fundee saw `ChannelReady`.
    pub fundee_ready: bool,
    /// The funder saw `ChannelOpenFailed`, with this reason.
    pub failed: Option<String>,
}

impl OpenEnd {
    /// Ready on both sides.
    pub fn ready(&self) -> bool {
        self.funder_ready && self.fundee_ready
    }
}

/// Handles both nodes' events, mining a block and syncing both every third round (reconnect
/// backoff starts at 1 s), until the open is ready on both sides or failed on the funder, or
/// `rounds` rounds of 150 ms passed.
pub async fn drive_open(devnet: &DevChain, funder: &Node, fundee: &Node, rounds: u32) -> OpenEnd {
    let mut end = OpenEnd::default();
    for round in 0..rounds {
        check_durability(funder, "funder");
        check_durability(fundee, "fundee");
        for (node, is_funder) in [(funder, true), (fundee, false)] {
            while let Some((seq, e)) = node.next_event().await.expect("events") {
                node.event_handled(seq).await.expect("handled");
                match e {
                    Event::ChannelReady { .. } if is_funder => end.funder_ready = true,
                    Event::ChannelReady { .. } => end.fundee_ready = true,
                    Event::ChannelOpenFailed { reason, .. } if is_funder => {
                        end.failed = Some(reason)
                    }
                    _ => {}
                }
            }
        }
        if end.ready() || end.failed.is_some() {
            break;
        }
        if round % 3 == 0 {
            devnet.mine(1);
            funder.sync(None).await.expect("sync");
            fundee.sync(None).await.expect("sync");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    check_durability(funder, "funder");
    check_durability(fundee, "fundee");
    end
}

/// Fails the test if the node performed any action before the state it depends on was
/// durable in its database (the node audits itself in `dev-disconnect` builds; without the
/// feature there is nothing to read).
pub fn check_durability(node: &Node, who: &str) {
    #[cfg(feature = "dev-disconnect")]
    {
        let violations = node.dev_durability_violations();
        assert!(
            violations.is_empty(),
            "{who} broke persist-before-act: {violations:#?}"
        );
        // Nothing that fsyncs ran on a tokio worker or a caller's thread.
        assert_eq!(
            tern_core::store::dev_commits_on_async_threads(),
            0,
            "{who}: an SQLite commit ran on an async thread"
        );
    }
    #[cfg(not(feature = "dev-disconnect"))]
    let _ = (node, who);
}

/// Pays `sat` to a fresh address of `node` in one coin, mines it and syncs: the node then holds
/// exactly that much more, confirmed.
pub async fn fund(devnet: &DevChain, node: &Node, sat: u64) {
    let before = node.list_balances().await.expect("balances").confirmed;
    let address = node.new_address().await.expect("address");
    devnet
        .faucet(&address, Amount::from_sat(sat))
        .expect("faucet");
    devnet.mine(1);
    node.sync(None).await.expect("sync");
    let after = node.list_balances().await.expect("balances").confirmed;
    assert_eq!(after, before + Amount::from_sat(sat), "funded");
}
