//! The dial decision: whether a channel needs its peer connected now. One pure function, for
//! the wake (a later issue: a phone woken in the background syncs, then asks each channel)
//! and the issues after it, which add their reasons here (HTLCs to settle, a close to sign).

use super::details::closing_status;
use crate::proto::channel::{Channel, ChannelState, ClosingStatus, FeeEstimates};
use crate::proto::wire::ChannelId;

/// Why a channel needs its peer connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialReason {
    /// A commitment update is in flight (proposed, signed or not yet revoked by one side): it
    /// finishes only over the connection, and until then the channel takes no other update.
    UpdatePending,
    /// A cooperative close is under way: our `shutdown` to send or retransmit (BOLT 2: after
    /// `channel_reestablish` on every reconnection), the peer's to receive, or the closing
    /// fee to negotiate (LDK gives a negotiation about two minutes).
    Shutdown,
    /// The open is not finished: our `channel_ready` was sent (on reconnection
    /// `channel_reestablish` retransmits it) and the peer's has not arrived.
    ChannelReady,
    /// A channel we fund needs its commitment feerate moved (the fee policy,
    /// `proto::channel::fee_policy`): an `update_fee` to send.
    Feerate {
        /// The feerate of the current commitment.
        current_per_kw: u32,
        /// The feerate the policy wants.
        wanted_per_kw: u32,
    },
}

/// Whether `channel` needs its peer connected now, and why; `None`: nothing to do with the
/// peer. `est` are the current fee estimates (`FeeCache::fee_estimates`); `tip` the synced
/// height. In order: an update in flight, a cooperative close under way, an unfinished open,
/// a feerate to move (never once a `shutdown` is out: no update follows it). A failed
/// channel, one closing on chain or closed, or an open that is not durable yet (it dies with
/// its connection), dials nobody.
///
/// A channel waiting for confirmations dials nobody either: nothing can be exchanged before
/// the funding reaches `minimum_depth` (the block that reaches it sends our `channel_ready`,
/// and from then [`DialReason::ChannelReady`] holds until the peer's arrives).
pub fn dial_reason(channel: &Channel, est: &FeeEstimates, tip: u32) -> Option<DialReason> {
    let wanted = channel.wanted_feerate(est);
    let closing = closing_status(channel, tip);
    let on_chain = matches!(
        closing,
        Some(ClosingStatus::OnChain { .. } | ClosingStatus::Closed { .. })
    );
    reason(&Facts {
        live: channel.state().is_durable() && !channel.is_failed() && !on_chain,
        shutdown: (closing.is_some() || channel.shutdown_to_send()) && !on_chain,
        ready: channel.state() == ChannelState::Ready,
        ready_sent: channel.channel_ready_sent(),
        ready_received: channel.channel_ready_received(),
        update_pending: channel.update_pending(),
        current_per_kw: channel.commitment_feerate_per_kw(),
        wanted_per_kw: wanted,
    })
}

/// What [`dial_reason`] looks at, so that every combination can be tested (an update in
/// flight needs the commitment machinery to build).
#[derive(Debug, Clone, Copy)]
struct Facts {
    /// Durable, not failed, not closing on chain.
    live: bool,
    /// A cooperative close under way (shutdown or negotiation).
    shutdown: bool,
    ready: bool,
    ready_sent: bool,
    ready_received: bool,
    update_pending: bool,
    current_per_kw: u32,
    /// What the fee policy wants ([`Channel::wanted_feerate`]), `None`: nothing.
    wanted_per_kw: Option<u32>,
}

fn reason(f: &Facts) -> Option<DialReason> {
    if !f.live {
        return None;
    }
    if f.update_pending {
        return Some(DialReason::UpdatePending);
    }
    if f.shutdown {
        return Some(DialReason::Shutdown);
    }
    if !f.ready && f.ready_sent && !f.ready_received {
        return Some(DialReason::ChannelReady);
    }
    f.wanted_per_kw.map(|wanted_per_kw| DialReason::Feerate {
        current_per_kw: f.current_per_kw,
        wanted_per_kw,
    })
}

impl super::peer::PeerTask {
    /// [`dial_reason`] for each of the peer's channels that has one, at the synced tip, with
    /// the task's fee estimates (none yet: no feerate reason, the policy has nothing to go by).
    pub(super) fn dial_reasons(&self) -> Vec<(ChannelId, DialReason)> {
        let tip = self.shared.tip_height();
        self.channels
            .iter()
            .filter_map(|c| {
                let reason = match &self.fees {
                    Some(est) => dial_reason(c, est, tip),
                    None => dial_reason(c, &unchanging(c), tip),
                }?;
                Some((c.current_id(), reason))
            })
            .collect()
    }
}

/// Estimates under which no feerate needs to move (a channel's own feerate everywhere).
fn unchanging(c: &Channel) -> FeeEstimates {
    let own = c.commitment_feerate_per_kw();
    FeeEstimates {
        commitment_per_kw: own,
        in_144_blocks_per_kw: 0,
        in_1008_blocks_per_kw: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::channel::{ChannelRecord, Role};
    use bitcoin::hex::FromHex;

    /// A channel from a golden fixture (`core/tests/fixtures/records`, read only).
    fn fixture(hex: &str) -> Channel {
        let bytes = Vec::<u8>::from_hex(hex.trim()).expect("hex");
        Channel::from_record(ChannelRecord::decode(&bytes).expect("record"))
    }

    macro_rules! fixture {
        ($name:literal) => {
            fixture(include_str!(concat!(
                "../../tests/fixtures/records/channel_v1_",
                $name,
                ".hex"
            )))
        };
    }

    fn est(commitment: u32) -> FeeEstimates {
        FeeEstimates {
            commitment_per_kw: commitment,
            in_144_blocks_per_kw: 253,
            in_1008_blocks_per_kw: 253,
        }
    }

    #[test]
    fn a_funded_channel_whose_feerate_must_move_dials() {
        let c = fixture!("funder_ready");
        assert_eq!((c.role(), c.state()), (Role::Funder, ChannelState::Ready));
        let current = c.commitment_feerate_per_kw();
        assert_eq!(
            dial_reason(&c, &est(current + 1), 0),
            Some(DialReason::Feerate {
                current_per_kw: current,
                wanted_per_kw: current + 1
            })
        );
        assert_eq!(dial_reason(&c, &est(current), 0), None, "right already");
        assert_eq!(
            dial_reason(&c, &est(current / 2 + 1), 0),
            None,
            "not half yet"
        );
        // The fundee of a ready channel never sends update_fee.
        let fundee = fixture!("fundee_ready");
        assert_eq!(fundee.state(), ChannelState::Ready);
        assert_eq!(dial_reason(&fundee, &est(u32::MAX), 0), None);
        // Announced channels too.
        let public = fixture!("funder_public_announced");
        let current = public.commitment_feerate_per_kw();
        assert!(matches!(
            dial_reason(&public, &est(current * 3), 0),
            Some(DialReason::Feerate { .. })
        ));
    }

    #[test]
    fn an_unfinished_open_dials() {
        let c = fixture!("funder_awaiting_channel_ready");
        assert_eq!(c.state(), ChannelState::AwaitingChannelReady);
        assert!(c.channel_ready_sent() && !c.channel_ready_received());
        for e in [est(253), est(u32::MAX)] {
            assert_eq!(dial_reason(&c, &e, 0), Some(DialReason::ChannelReady));
        }
    }

    #[test]
    fn nothing_pending_dials_nobody() {
        for (name, c) in [
            ("funder_ready", fixture!("funder_ready")),
            ("fundee_ready", fixture!("fundee_ready")),
            (
                "funder_public_announced",
                fixture!("funder_public_announced"),
            ),
            // Waiting for confirmations: nothing to exchange yet, whether or not the peer's
            // channel_ready came first.
            (
                "funder_awaiting_confirmations",
                fixture!("funder_awaiting_confirmations"),
            ),
            (
                "fundee_after_funding_signed",
                fixture!("fundee_after_funding_signed"),
            ),
            (
                "fundee_early_channel_ready",
                fixture!("fundee_early_channel_ready"),
            ),
            // Failed: never.
            (
                "funder_failed_double_spent",
                fixture!("funder_failed_double_spent"),
            ),
            ("fundee_failed_unfunded", fixture!("fundee_failed_unfunded")),
        ] {
            let e = est(c.commitment_feerate_per_kw());
            assert_eq!(dial_reason(&c, &e, 0), None, "{name}");
            if c.state() != ChannelState::Ready {
                assert_eq!(
                    dial_reason(&c, &est(u32::MAX), 0),
                    None,
                    "{name}: not ready"
                );
            }
        }
    }

    #[test]
    fn a_shutdown_to_retransmit_dials() {
        let c = fixture!("funder_shutting_down");
        assert_eq!(c.state(), ChannelState::ShuttingDown);
        assert!(c.shutdown_to_send());
        for e in [est(253), est(u32::MAX)] {
            assert_eq!(dial_reason(&c, &e, 0), Some(DialReason::Shutdown));
        }
        // Agreed: the close is on chain, nothing more to say to the peer.
        let agreed = fixture!("fundee_negotiating_agreed");
        assert!(matches!(
            agreed.closing_status(0),
            Some(ClosingStatus::OnChain { .. })
        ));
        assert_eq!(dial_reason(&agreed, &est(u32::MAX), 0), None);
    }

    fn facts() -> Facts {
        Facts {
            live: true,
            shutdown: false,
            ready: true,
            ready_sent: true,
            ready_received: true,
            update_pending: false,
            current_per_kw: 1000,
            wanted_per_kw: None,
        }
    }

    #[test]
    fn an_update_in_flight_dials_first() {
        let pending = Facts {
            update_pending: true,
            ..facts()
        };
        assert_eq!(reason(&pending), Some(DialReason::UpdatePending));
        // Before the feerate and the open's channel_ready.
        let both = Facts {
            wanted_per_kw: Some(2000),
            ..pending
        };
        assert_eq!(reason(&both), Some(DialReason::UpdatePending));
        let opening = Facts {
            ready: false,
            ready_received: false,
            ..pending
        };
        assert_eq!(reason(&opening), Some(DialReason::UpdatePending));
        // Never for a failed channel.
        assert_eq!(
            reason(&Facts {
                live: false,
                ..both
            }),
            None
        );
    }

    #[test]
    fn a_shutdown_to_retransmit_dials_before_the_open_and_the_feerate() {
        let closing = Facts {
            shutdown: true,
            wanted_per_kw: Some(2000),
            ..facts()
        };
        // No update_fee after a shutdown: the close is the reason, not the feerate.
        assert_eq!(reason(&closing), Some(DialReason::Shutdown));
        let opening = Facts {
            ready: false,
            ready_received: false,
            ..closing
        };
        assert_eq!(reason(&opening), Some(DialReason::Shutdown));
        // An update in flight finishes first (the shutdown waits for it).
        assert_eq!(
            reason(&Facts {
                update_pending: true,
                ..closing
            }),
            Some(DialReason::UpdatePending)
        );
        // Closing on chain or failed: nobody.
        assert_eq!(
            reason(&Facts {
                live: false,
                ..closing
            }),
            None
        );
    }

    #[test]
    fn every_combination_of_facts() {
        let mut seen = [0usize; 5];
        for bits in 0..128u32 {
            let bit = |n: u32| bits & (1 << n) != 0;
            let f = Facts {
                live: bit(0),
                shutdown: bit(6),
                ready: bit(1),
                ready_sent: bit(2),
                ready_received: bit(3),
                update_pending: bit(4),
                current_per_kw: 1000,
                wanted_per_kw: bit(5).then_some(3000),
            };
            let expected = if !f.live {
                None
            } else if f.update_pending {
                Some(DialReason::UpdatePending)
            } else if f.shutdown {
                Some(DialReason::Shutdown)
            } else if !f.ready && f.ready_sent && !f.ready_received {
                Some(DialReason::ChannelReady)
            } else if f.wanted_per_kw.is_some() {
                Some(DialReason::Feerate {
                    current_per_kw: 1000,
                    wanted_per_kw: 3000,
                })
            } else {
                None
            };
            let got = reason(&f);
            assert_eq!(got, expected, "{f:?}");
            seen[match got {
                None => 0,
                Some(DialReason::UpdatePending) => 1,
                Some(DialReason::ChannelReady) => 2,
                Some(DialReason::Feerate { .. }) => 3,
                Some(DialReason::Shutdown) => 4,
            }] += 1;
        }
        assert!(seen.iter().all(|n| *n > 0), "{seen:?}");
    }
}
