//! Cooperative closes against LDK's `ChannelManager`, in memory: started by either side, Tern
//! funder or fundee, with the fundee's balance on every side of both dust rules (LDK removes
//! outputs at or below 354 sat, BOLT 3 has each signer remove those below its own dust limit),
//! a cut link and a Tern restart mid-negotiation. LDK must end with a cooperative
//! `ChannelClosed` and broadcast exactly the transaction Tern agreed.

use lightning::events::{ClosureReason, Event};

use super::ldk_update::Link;
use crate::channel::{ChannelState, Input};

/// Runs the exchange to the end and checks both sides closed cooperatively on one tx.
fn assert_closed(link: &mut Link) -> bitcoin::Transaction {
    link.exchange();
    let tern = link.tern.channel();
    let agreed = tern
        .agreed_closing_tx()
        .unwrap_or_else(|| panic!("Tern agreed: {:?} {:?}", tern.state(), tern.shutdown()))
        .clone();
    assert_eq!(tern.state(), ChannelState::Negotiating);
    let closed: Vec<ClosureReason> = link
        .ldk
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::ChannelClosed { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(
        matches!(
            closed.as_slice(),
            [ClosureReason::LocallyInitiatedCooperativeClosure
                | ClosureReason::CounterpartyInitiatedCooperativeClosure]
        ),
        "LDK closed cooperatively: {closed:?}"
    );
    let ldk_txs = link.ldk.broadcasts.0.lock().expect("lock").clone();
    assert!(
        ldk_txs
            .iter()
            .any(|t| t.compute_txid() == agreed.compute_txid()),
        "LDK broadcast the agreed close {} (it broadcast {:?})",
        agreed.compute_txid(),
        ldk_txs.iter().map(|t| t.compute_txid()).collect::<Vec<_>>()
    );
    assert!(link.ldk.manager.list_channels().is_empty());
    agreed
}

fn ldk_close(link: &mut Link) {
    let details = link.ldk.manager.list_channels();
    link.ldk
        .manager
        .close_channel(&details[0].channel_id, &link.tern.node_id)
        .expect("LDK closes");
}

#[test]
fn tern_closes_ldk_channels_in_both_roles() {
    for tern_funds in [true, false] {
        let mut link = Link::open(tern_funds);
        link.tern.input(Input::Close { script: None });
        let tx = assert_closed(&mut link);
        let ours = tx
            .output
            .iter()
            .find(|o| o.script_pubkey == link.tern.destination);
        assert!(ours.is_some(), "pays our destination");
    }
}

#[test]
fn ldk_closes_and_tern_agrees_in_both_roles() {
    for tern_funds in [true, false] {
        let mut link = Link::open(tern_funds);
        ldk_close(&mut link);
        assert_closed(&mut link);
    }
}

#[test]
fn a_cut_link_or_a_tern_restart_mid_negotiation_still_closes() {
    for tern_funds in [true, false] {
        for cut_after in 1..4 {
            for restart in [false, true] {
                let mut link = Link::open(tern_funds);
                link.tern.input(Input::Close { script: None });
                // Deliver `cut_after` rounds, then lose the link (and maybe restart Tern).
                for _ in 0..cut_after {
                    let to_ldk = super::ldk::flush(&mut link.tern, &link.ldk);
                    let to_tern = link.ldk.outbox();
                    for m in &to_tern {
                        link.tern.input(Input::Message(m.clone()));
                    }
                    if to_ldk.is_empty() && to_tern.is_empty() {
                        break;
                    }
                }
                if link.tern.channel().agreed_closing_tx().is_some() {
                    continue;
                }
                if restart {
                    link.tern.restart();
                }
                link.reconnect();
                assert_closed(&mut link);
            }
        }
    }
}

#[test]
fn fundee_balances_around_both_dust_rules_close_without_a_force_close() {
    for tern_funds in [true, false] {
        for fundee_sat in [0u64, 353, 354, 355, 545, 546, 547] {
            let mut link = Link::open_with(tern_funds, false, Some(fundee_sat * 1000));
            link.tern.input(Input::Close { script: None });
            let tx = assert_closed(&mut link);
            let fundee_out = if tern_funds {
                tx.output
                    .iter()
                    .find(|o| o.script_pubkey != link.tern.destination)
            } else {
                tx.output
                    .iter()
                    .find(|o| o.script_pubkey == link.tern.destination)
            };
            // LDK drops outputs at or below 354 sat; above, the fundee is paid exactly.
            match fundee_out {
                Some(o) => assert_eq!(o.value.to_sat(), fundee_sat, "{tern_funds} {fundee_sat}"),
                None => assert!(
                    fundee_sat <= 545,
                    "{tern_funds} {fundee_sat}: output dropped"
                ),
            }
        }
    }
}

/// A taproot destination: Tern offers `option_shutdown_anysegwit` (27) in `init`, so LDK takes
/// a v1 `shutdown` script; the close pays it.
#[test]
fn a_taproot_destination_is_accepted_by_ldk_in_both_roles() {
    for tern_funds in [true, false] {
        let mut link = Link::open(tern_funds);
        let p2tr = bitcoin::ScriptBuf::from_bytes([&[0x51, 32][..], &[0x5a; 32]].concat());
        let ldk_features = super::ldk::anchors::ldk_features(&link.ldk);
        assert_eq!(
            link.tern
                .channel()
                .close_refusal(Some(&p2tr), Some(&ldk_features)),
            None,
            "LDK offers anysegwit too"
        );
        link.tern.input(Input::Close {
            script: Some(p2tr.clone()),
        });
        let tx = assert_closed(&mut link);
        assert!(
            tx.output.iter().any(|o| o.script_pubkey == p2tr),
            "pays the taproot script"
        );
    }
}
