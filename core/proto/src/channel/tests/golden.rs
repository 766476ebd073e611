//! Golden version-1 channel records: bytes written once by the code of their time, kept in
//! `core/tests/fixtures/records/channel_*.hex` (see the README there). Every fixture must decode
//! forever to the field values asserted here, and today's encoder must still produce its exact
//! bytes. A format change bumps [`RECORD_VERSION`] and adds a migration test from every earlier
//! version; the fixtures are never regenerated.

use std::path::PathBuf;

use bitcoin::hex::{DisplayHex, FromHex};

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;

use super::harness::{outbound_params, Pair};
use crate::channel::commitments::RemoteNext;
use crate::channel::fields::Fields;
use crate::channel::resolve::OutputState;
use crate::channel::{Channel, ChannelRecord, ChannelState, Input, SideParams, RECORD_VERSION};
use crate::wire::{ErrorMessage, Message};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/records")
}

/// The bytes each fixture was generated from: one snapshot per state the record encodes
/// distinctly, each the last record its side persisted.
fn snapshots() -> Vec<(&'static str, Vec<u8>)> {
    let stored = |bytes: &Option<Vec<u8>>| bytes.clone().expect("persisted");
    let mut out = Vec::new();

    let mut pair = Pair::open_to_pending();
    out.push(("fundee_after_funding_signed", stored(&pair.b.stored)));
    out.push(("funder_awaiting_confirmations", stored(&pair.a.stored)));
    pair.confirm_funding();
    let depth = pair.b.config.our_minimum_depth;
    pair.mine(depth - 1);
    out.push(("funder_awaiting_channel_ready", stored(&pair.a.stored)));
    pair.run();
    out.push(("funder_ready", stored(&pair.a.stored)));
    out.push(("fundee_ready", stored(&pair.b.stored)));

    // The funder's channel_ready reaches the fundee before the fundee saw the funding.
    let mut pair = Pair::open_to_pending();
    let tx = pair.funding();
    let conf = crate::channel::Confirmation {
        block_height: 101,
        block_hash: bitcoin::BlockHash::from_byte_array([101; 32]),
        tx_index: 1,
    };
    pair.a.input(Input::FundingConfirmed {
        tx,
        confirmation: conf,
        tip_height: 103,
    });
    assert_eq!(pair.deliver(true), Some("channel_ready"));
    out.push(("fundee_early_channel_ready", stored(&pair.b.stored)));

    // A public channel with its announcement built.
    let mut pair = Pair::new();
    let mut params = outbound_params(pair.b.node_id);
    params.announce = true;
    pair.start(params);
    pair.run();
    pair.confirm_funding();
    pair.mine(2);
    pair.run();
    pair.mine(3);
    pair.run();
    assert!(pair.a.channel().channel_announcement().is_some());
    out.push(("funder_public_announced", stored(&pair.a.stored)));

    // A failed channel with its reason.
    let mut pair = Pair::open_to_pending();
    pair.a.input(Input::FundingDoubleSpent {
        spending_txid: bitcoin::Txid::from_byte_array([0xd5; 32]),
    });
    out.push(("funder_failed_double_spent", stored(&pair.a.stored)));

    // A fundee whose funder dropped the open before funding_signed reached it (record field
    // 55, added in version 1 as an odd field).
    let mut pair = Pair::new();
    pair.drop.push("funding_signed");
    pair.start(outbound_params(pair.b.node_id));
    pair.run();
    let id = pair.b.channel().channel_id().expect("id");
    pair.b
        .input(Input::Message(Message::Error(ErrorMessage::new(
            id,
            "unknown channel",
        ))));
    assert_eq!(pair.b.state(), ChannelState::FailedUnfunded);
    out.push(("fundee_failed_unfunded", stored(&pair.b.stored)));

    // Closing channels (state 11, fields 70-76) and a closed one (state 12). The funder
    // force-closes (LocalForce) and sweeps its to_local to a wallet script once due; the
    // fundee sees that commitment (RemoteForce) and sweeps its to_remote at once; a revoked
    // commitment of the fundee is punished by the funder.
    let wallet = bitcoin::ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0x77; 20]));
    let mut pair = Pair::open_to_ready();
    pair.a.destination = wallet.clone();
    pair.b.destination = wallet.clone();
    pair.a.input(Input::ForceClose);
    out.push(("funder_closing_local_force", stored(&pair.a.stored)));
    let commitment = pair.a.broadcasts.last().cloned().expect("commitment");
    let h = pair.height + 1;
    pair.mine(1);
    for n in [&mut pair.a, &mut pair.b] {
        n.input(Input::FundingSpent {
            spending_tx: commitment.clone(),
            confirmation_height: Some(h),
        });
    }
    out.push(("fundee_closing_remote_force", stored(&pair.b.stored)));
    let csv = u32::from(
        pair.a
            .channel()
            .their_params()
            .expect("theirs")
            .to_self_delay,
    );
    pair.mine(csv - 1);
    let sweep = pair.a.broadcasts.last().cloned().expect("sweep");
    out.push(("funder_closing_sweep_broadcast", stored(&pair.a.stored)));
    let h2 = pair.height + 1;
    pair.mine(1);
    pair.a.input(Input::OutputSpent {
        outpoint: sweep.input[0].previous_output,
        spending_tx: sweep,
        confirmation_height: Some(h2),
    });
    pair.mine(5);
    assert_eq!(pair.a.state(), ChannelState::Closed);
    out.push(("funder_closed", stored(&pair.a.stored)));

    let mut pair = Pair::open_to_ready();
    let old = pair
        .b
        .channel()
        .signed_our_commitment(&pair.b.ctx())
        .expect("commitment 0");
    pair.a.input(Input::SetFeerate {
        feerate_per_kw: 5_000,
    });
    pair.run();
    pair.a.destination = wallet;
    pair.a.input(Input::FundingSpent {
        spending_tx: old,
        confirmation_height: None,
    });
    assert_eq!(pair.a.state(), ChannelState::Closing);
    out.push(("funder_closing_revoked", stored(&pair.a.stored)));

    // An anchor channel (`option_anchors`, the even record field 58), ready.
    let pair = Pair::open_anchors_to_ready();
    assert_eq!(pair.a.state(), ChannelState::Ready);
    assert!(pair.a.channel().channel_type().anchors);
    out.push(("funder_anchors_ready", stored(&pair.a.stored)));

    // A cooperative close (the even field 62): the funder's shutdown stored, not yet
    // answered; the fundee's agreed close.
    let mut pair = Pair::open_to_ready();
    pair.a.input(Input::Close { script: None });
    out.push(("funder_shutting_down", stored(&pair.a.stored)));
    pair.run();
    assert!(pair.b.channel().agreed_closing_tx().is_some());
    out.push(("fundee_negotiating_agreed", stored(&pair.b.stored)));

    // A force close that overtook a negotiation: a Closing record (state 11) that keeps the
    // Shutdown with the closing tx we signed (the even field 62 in a closing record).
    let mut pair = Pair::open_to_ready();
    pair.a.input(Input::Close { script: None });
    assert_eq!(pair.deliver(true), Some("shutdown"));
    assert_eq!(pair.deliver(false), Some("shutdown"));
    assert_eq!(pair.deliver(true), Some("closing_signed"));
    pair.a.input(Input::ForceClose);
    assert_eq!(pair.a.state(), ChannelState::Closing);
    assert_eq!(pair.a.channel().signed_closing_txids().len(), 1);
    out.push((
        "funder_closing_local_force_after_shutdown",
        stored(&pair.a.stored),
    ));

    // An anchor force close below the estimate, its CPFP child stored (field 78).
    let mut pair = Pair::open_anchors_to_ready();
    pair.a.estimates.commitment_per_kw = 10_000;
    let request = pair
        .a
        .input(Input::ForceClose)
        .into_iter()
        .find_map(|a| match a {
            crate::channel::Action::BumpCommitment(r) => Some(r),
            _ => None,
        })
        .expect("a CPFP request");
    let coin = |previous_output| bitcoin::TxIn {
        previous_output,
        script_sig: bitcoin::ScriptBuf::new(),
        sequence: bitcoin::Sequence::ENABLE_RBF_NO_LOCKTIME,
        witness: bitcoin::Witness::from_slice(&[[0x78; 72].as_slice()]),
    };
    let child = bitcoin::Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![
            coin(request.anchor.outpoint),
            coin(bitcoin::OutPoint {
                txid: bitcoin::Txid::from_byte_array([0x78; 32]),
                vout: 0,
            }),
        ],
        output: vec![bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(90_000),
            script_pubkey: wallet_script_78(),
        }],
    };
    pair.a.input(Input::CpfpBuilt {
        child: child.clone(),
        feerate_per_kw: request.feerate_per_kw,
        height: request.height,
    });
    assert_eq!(pair.a.channel().anchor_cpfp_child(), Some(&child));
    out.push(("funder_closing_anchor_cpfp", stored(&pair.a.stored)));
    out
}

fn wallet_script_78() -> bitcoin::ScriptBuf {
    bitcoin::ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0x78; 20]))
}

/// Every field of a channel as text, in record order: the values the fixtures are checked
/// against. The destructuring is exhaustive, so a new field must be added here (and to the
/// expectations) before this compiles.
fn fields(c: &Channel) -> Vec<(String, String)> {
    let Fields {
        role,
        state,
        counterparty_node_id,
        chain_hash,
        temporary_channel_id,
        keys_index,
        funding_sat,
        push_msat,
        announce,
        commitment_feerate_per_kw,
        funding_feerate_per_kw,
        created_height,
        minimum_depth,
        ours,
        theirs,
        funding_outpoint,
        funding_tx,
        their_commitment_sig,
        confirmation,
        channel_ready_sent,
        their_second_point,
        announcement_sigs_sent,
        their_announcement_sigs,
        announcement,
        announcement_answered,
        failure_reason,
        funding_spend,
        waiting_since,
        commitments,
        // Stored with `state` as Failed; `state` above already says FailedUnfunded.
        failed_unfunded: _,
        channel_type,
        shutdown,
        close_kind,
        closing_tx,
        closing_height,
        tracked,
        cpfp,
    } = &Fields::of(c);
    let pk = |k: &PublicKey| k.serialize().to_lower_hex_string();
    let sig = |s: &Signature| s.serialize_compact().to_lower_hex_string();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| out.push((k.to_string(), v));
    put("role", format!("{role:?}"));
    put("state", format!("{state:?}"));
    put("counterparty_node_id", pk(counterparty_node_id));
    put("chain_hash", chain_hash.to_string());
    put("temporary_channel_id", temporary_channel_id.to_string());
    put("keys_index", keys_index.to_string());
    put("funding_sat", funding_sat.to_string());
    put("push_msat", push_msat.to_string());
    put("announce", announce.to_string());
    put(
        "commitment_feerate_per_kw",
        commitment_feerate_per_kw.to_string(),
    );
    put("funding_feerate_per_kw", funding_feerate_per_kw.to_string());
    put("created_height", created_height.to_string());
    put("minimum_depth", format!("{minimum_depth:?}"));
    for (side, p) in [("ours", Some(ours)), ("theirs", theirs.as_ref())] {
        let Some(p) = p else {
            put(side, "None".into());
            continue;
        };
        let SideParams {
            dust_limit_sat,
            max_htlc_value_in_flight_msat,
            channel_reserve_sat,
            htlc_minimum_msat,
            to_self_delay,
            max_accepted_htlcs,
            keys,
            upfront_shutdown_script,
        } = p;
        put(
            &format!("{side}.dust_limit_sat"),
            dust_limit_sat.to_string(),
        );
        put(
            &format!("{side}.max_htlc_value_in_flight_msat"),
            max_htlc_value_in_flight_msat.to_string(),
        );
        put(
            &format!("{side}.channel_reserve_sat"),
            channel_reserve_sat.to_string(),
        );
        put(
            &format!("{side}.htlc_minimum_msat"),
            htlc_minimum_msat.to_string(),
        );
        put(&format!("{side}.to_self_delay"), to_self_delay.to_string());
        put(
            &format!("{side}.max_accepted_htlcs"),
            max_accepted_htlcs.to_string(),
        );
        put(&format!("{side}.funding_pubkey"), pk(&keys.funding_pubkey));
        put(
            &format!("{side}.revocation_basepoint"),
            pk(&keys.revocation_basepoint),
        );
        put(
            &format!("{side}.payment_basepoint"),
            pk(&keys.payment_basepoint),
        );
        put(
            &format!("{side}.delayed_payment_basepoint"),
            pk(&keys.delayed_payment_basepoint),
        );
        put(&format!("{side}.htlc_basepoint"), pk(&keys.htlc_basepoint));
        put(
            &format!("{side}.first_per_commitment_point"),
            pk(&keys.first_per_commitment_point),
        );
        put(
            &format!("{side}.upfront_shutdown_script"),
            format!(
                "{:?}",
                upfront_shutdown_script
                    .as_ref()
                    .map(|s| s.to_lower_hex_string())
            ),
        );
    }
    match funding_outpoint {
        None => put("funding", "None".into()),
        Some(outpoint) => {
            let tx = funding_tx;
            put("funding.outpoint", outpoint.to_string());
            put(
                "funding.tx",
                tx.as_ref().map_or("None".into(), |tx| {
                    format!("txid {} wtxid {}", tx.compute_txid(), tx.compute_wtxid())
                }),
            );
        }
    }
    put(
        "their_commitment_sig",
        their_commitment_sig.as_ref().map_or("None".into(), sig),
    );
    put(
        "confirmation",
        confirmation.map_or("None".into(), |c| {
            format!("{} {} {}", c.block_height, c.block_hash, c.tx_index)
        }),
    );
    put("channel_ready_sent", channel_ready_sent.to_string());
    put(
        "their_second_point",
        their_second_point.as_ref().map_or("None".into(), pk),
    );
    put(
        "announcement_sigs_sent",
        announcement_sigs_sent.unwrap_or(false).to_string(),
    );
    put(
        "their_announcement_sigs",
        their_announcement_sigs
            .as_ref()
            .map_or("None".into(), |(n, b)| format!("{} {}", sig(n), sig(b))),
    );
    match announcement {
        None => {
            for k in [
                "short_channel_id",
                "chain_hash",
                "features",
                "node_ids",
                "bitcoin_keys",
                "node_signatures",
                "bitcoin_signatures",
                "excess_data",
            ] {
                put(&format!("announcement.{k}"), "None".into());
            }
        }
        Some(a) => {
            put(
                "announcement.short_channel_id",
                a.short_channel_id.to_string(),
            );
            put("announcement.chain_hash", a.chain_hash.to_string());
            put("announcement.features", a.features.to_lower_hex_string());
            put(
                "announcement.node_ids",
                format!("{} {}", pk(&a.node_id_1), pk(&a.node_id_2)),
            );
            put(
                "announcement.bitcoin_keys",
                format!("{} {}", pk(&a.bitcoin_key_1), pk(&a.bitcoin_key_2)),
            );
            put(
                "announcement.node_signatures",
                format!("{} {}", sig(&a.node_signature_1), sig(&a.node_signature_2)),
            );
            put(
                "announcement.bitcoin_signatures",
                format!(
                    "{} {}",
                    sig(&a.bitcoin_signature_1),
                    sig(&a.bitcoin_signature_2)
                ),
            );
            put(
                "announcement.excess_data",
                a.excess_data.to_lower_hex_string(),
            );
        }
    }
    put(
        "announcement_answered",
        announcement_answered.unwrap_or(false).to_string(),
    );
    put("failure_reason", format!("{failure_reason:?}"));
    put(
        "funding_spend",
        funding_spend.as_ref().map_or("None".into(), |tx| {
            format!("txid {} wtxid {}", tx.compute_txid(), tx.compute_wtxid())
        }),
    );
    put("waiting_since", format!("{waiting_since:?}"));
    put("channel_type", format!("{channel_type:?}"));
    put(
        "commitments",
        commitments.as_ref().map_or("None".into(), |c| {
            let next = match c.next {
                RemoteNext::Point(p) => format!("point {}", pk(&p)),
                RemoteNext::Signed(s) => format!(
                    "signed {} at {} sat/kw after local {} sig {}",
                    s.commit.number,
                    s.commit.spec.feerate_per_kw,
                    s.sent_after_local,
                    sig(&s.our_sig)
                ),
            };
            format!(
                "local {} at {} sat/kw ({}/{} msat) sig {}; remote {} at {} sat/kw point {}; next {}; \
                 ours {:?}/{:?}/{:?}; theirs {:?}/{:?}/{:?}; secrets from {:?}",
                c.local.number,
                c.local.spec.feerate_per_kw,
                c.local.spec.our_msat,
                c.local.spec.their_msat,
                sig(&c.local.their_sig),
                c.remote.number,
                c.remote.spec.feerate_per_kw,
                pk(&c.remote.point),
                next,
                c.ours.proposed,
                c.ours.signed,
                c.ours.acked,
                c.theirs.proposed,
                c.theirs.acked,
                c.theirs.signed,
                c.their_secrets.lowest_index(),
            )
        }),
    );
    put(
        "shutdown",
        shutdown.as_ref().map_or("None".into(), |s| {
            let sh = &s.shutdown;
            format!(
                "lock {:?} initiator {:?} ours {:?} theirs {:?} signed {:?} agreed {:?}",
                s.lock,
                sh.initiator,
                sh.ours().map(|s| s.to_hex_string()),
                sh.theirs().map(|s| s.to_hex_string()),
                sh.signed
                    .iter()
                    .map(|c| format!("{} {}", c.fee_sat, c.txid))
                    .collect::<Vec<_>>(),
                sh.agreed.as_ref().map(|t| t.compute_txid().to_string()),
            )
        }),
    );
    put("close_kind", format!("{close_kind:?}"));
    // Field 78 is newer than most fixtures (only `funder_closing_anchor_cpfp` holds it):
    // listed only when present.
    if let Some(b) = cpfp {
        put(
            "cpfp",
            format!(
                "child txid {} wtxid {} ({} in, {} sat out) at {} sat/kw height {}",
                b.child.compute_txid(),
                b.child.compute_wtxid(),
                b.child.input.len(),
                b.child.output.iter().map(|o| o.value.to_sat()).sum::<u64>(),
                b.feerate_per_kw,
                b.height
            ),
        );
    }
    put(
        "closing_tx",
        closing_tx.as_ref().map_or("None".into(), |tx| {
            format!("txid {} wtxid {}", tx.compute_txid(), tx.compute_wtxid())
        }),
    );
    put("closing_height", format!("{closing_height:?}"));
    put(
        "tracked",
        tracked.as_ref().map_or("None".into(), |outputs| {
            outputs
                .iter()
                .map(|o| {
                    let state = match &o.state {
                        OutputState::Broadcast {
                            tx,
                            feerate_per_kw,
                            height,
                        } => format!(
                            "sweep {} ({} sat) at {feerate_per_kw} sat/kw height {height}",
                            tx.compute_txid(),
                            tx.output.first().map_or(0, |o| o.value.to_sat())
                        ),
                        other => format!("{other:?}"),
                    };
                    format!("{} {} sat {:?} {state}", o.outpoint, o.amount_sat, o.claim)
                })
                .collect::<Vec<_>>()
                .join("; ")
        }),
    );
    out
}

/// Writes the fixtures. Run once, by hand, when a new record version is introduced (for its
/// new files only); it refuses to overwrite a fixture, because existing fixtures are the
/// bytes older code wrote and must never change. Ignored: generating proves nothing.
#[test]
#[ignore = "generator: writes new golden fixtures, never overwrites existing ones"]
fn generate_channel_fixtures() {
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).expect("fixture dir");
    for (name, bytes) in snapshots() {
        assert_eq!(bytes[0], RECORD_VERSION);
        let path = dir.join(format!("channel_v{RECORD_VERSION}_{name}.hex"));
        if path.exists() {
            eprintln!("kept {}", path.display());
            continue;
        }
        std::fs::write(&path, format!("{}\n", bytes.to_lower_hex_string())).expect("write");
        let c = ChannelRecord::decode(&bytes)
            .expect("decodes")
            .into_channel();
        eprintln!("wrote {}:", path.display());
        for (k, v) in fields(&c) {
            eprintln!("        (\"{k}\", \"{v}\"),");
        }
    }
}

fn load(name: &str) -> (Vec<u8>, Channel) {
    let path = fixture_dir().join(format!("channel_v1_{name}.hex"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let bytes = Vec::<u8>::from_hex(text.trim()).expect("fixture is hex");
    let channel = ChannelRecord::decode(&bytes)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .into_channel();
    // Today's encoder still writes exactly these bytes.
    assert_eq!(
        channel.to_record().encode().to_lower_hex_string(),
        bytes.to_lower_hex_string(),
        "{name}: re-encoding changed the bytes"
    );
    (bytes, channel)
}

/// Decodes fixture `name`, checks today's encoder writes its exact bytes, and compares every
/// field with `layers` (each overriding the previous) then `changes`.
fn check(name: &str, layers: &[&[(&str, &str)]], changes: &[(&str, &str)]) {
    let (bytes, channel) = load(name);
    assert_eq!(bytes[0], 1, "{name}: version byte");
    let mut expected: Vec<(String, String)> = Vec::new();
    for (k, v) in layers.iter().copied().flatten().chain(changes) {
        match expected.iter_mut().find(|(ek, _)| ek == k) {
            Some(entry) => entry.1 = v.to_string(),
            None => expected.push((k.to_string(), v.to_string())),
        }
    }
    let actual = fields(&channel);
    assert_eq!(
        actual.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        expected.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        "{name}: the set of fields"
    );
    for ((k, got), (_, want)) in actual.iter().zip(&expected) {
        assert_eq!(got, want, "{name}: field {k}");
    }
}

/// Every field of `fundee_after_funding_signed`: the base the other fixtures differ from.
const FUNDEE: &[(&str, &str)] = &[
    ("role", "Fundee"),
    ("state", "AwaitingConfirmations"),
    ("counterparty_node_id", "0355f8d2238a322d16b602bd0ceaad5b01019fb055971eaadcc9b29226a4da6c23"),
    ("chain_hash", "06226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f"),
    ("temporary_channel_id", "4242424242424242424242424242424242424242424242424242424242424242"),
    ("keys_index", "7"),
    ("funding_sat", "1000000"),
    ("push_msat", "100000000"),
    ("announce", "false"),
    ("commitment_feerate_per_kw", "2500"),
    ("funding_feerate_per_kw", "0"),
    ("created_height", "100"),
    ("minimum_depth", "Some(3)"),
    ("ours.dust_limit_sat", "546"),
    ("ours.max_htlc_value_in_flight_msat", "1000000000"),
    ("ours.channel_reserve_sat", "10000"),
    ("ours.htlc_minimum_msat", "1"),
    ("ours.to_self_delay", "144"),
    ("ours.max_accepted_htlcs", "30"),
    ("ours.funding_pubkey", "039cab57880e6c560775f568f929c52a0eb9bc380eb4a2730570c8c90e2b27042c"),
    ("ours.revocation_basepoint", "02bce9c9ad9f3e5911b8e3d25cc08836b609266fbfa9b6f6aef32a64ef363e15fe"),
    ("ours.payment_basepoint", "0289ef3909d0480b72f37bdf1f8219a700748f504d0ca74673c494f9e7a0c2fc43"),
    ("ours.delayed_payment_basepoint", "029783d45c2fcc12aded2e185d60543831369ce21239f94ce0e570b552c77c3d9e"),
    ("ours.htlc_basepoint", "03c53c5d9a10f722ca26e563e917b455c34e663e8815a95ed48678ae13a5140345"),
    ("ours.first_per_commitment_point", "03a308ea3c7ef51e5b27397bfe2d65186ab2a47aadb67228dcf59ea483e561caa0"),
    ("ours.upfront_shutdown_script", "Some(\"\")"),
    ("theirs.dust_limit_sat", "546"),
    ("theirs.max_htlc_value_in_flight_msat", "1000000000"),
    ("theirs.channel_reserve_sat", "10000"),
    ("theirs.htlc_minimum_msat", "1"),
    ("theirs.to_self_delay", "144"),
    ("theirs.max_accepted_htlcs", "30"),
    ("theirs.funding_pubkey", "028488c168a9106fda090f8ecfa261b375856ccf785d5610c1c96823d61972732b"),
    ("theirs.revocation_basepoint", "02bcc3b5a065e4152d4d3cb92f52819ac8980fd2a095a8e3db446ce416771f07dd"),
    ("theirs.payment_basepoint", "03e5df5879451961c7fd4cae6af700ff77de0bd61f28ebbf56e3a2741f3f6449a6"),
    ("theirs.delayed_payment_basepoint", "0383e1858f23f1dc8d6a383d68b328923a91b8b1f2aa4fbd2c97c201e16dc8f2ef"),
    ("theirs.htlc_basepoint", "030d11c355e195ed7064f3a4c2e7230b7dd5b61859100f203cf88f500dba280a0f"),
    ("theirs.first_per_commitment_point", "0363b8ed8bd36619cc49d9c13381dc2d28baf24708a4a9b27ed0726623d135bb3e"),
    ("theirs.upfront_shutdown_script", "Some(\"\")"),
    ("funding.outpoint", "1c261b2ba50d984c8cdb9ca6d5b9f77e0e4119bc1cc4942ad241c90a001c1662:1"),
    ("funding.tx", "None"),
    ("their_commitment_sig", "aff00af2038d9b5c8d17cddcba745802c07e06784c0c62100ce0643b81a36bd56926b1a7af24b62f365cc75d2abad947926854cb702cdd5aa917f6c6880e8526"),
    ("confirmation", "None"),
    ("channel_ready_sent", "false"),
    ("their_second_point", "None"),
    ("announcement_sigs_sent", "false"),
    ("their_announcement_sigs", "None"),
    ("announcement.short_channel_id", "None"),
    ("announcement.chain_hash", "None"),
    ("announcement.features", "None"),
    ("announcement.node_ids", "None"),
    ("announcement.bitcoin_keys", "None"),
    ("announcement.node_signatures", "None"),
    ("announcement.bitcoin_signatures", "None"),
    ("announcement.excess_data", "None"),
    ("announcement_answered", "false"),
    ("failure_reason", "None"),
    ("funding_spend", "None"),
    ("waiting_since", "None"),
    // No field 58: static_remotekey.
    ("channel_type", "None"),
    ("commitments", "None"),
    ("shutdown", "None"),
    ("close_kind", "None"),
    ("closing_tx", "None"),
    ("closing_height", "None"),
    ("tracked", "None"),
];

/// The same channel seen by its funder: keys swapped, its own funding tx, the peer's signature.
const FUNDER: &[(&str, &str)] = &[
    ("role", "Funder"),
    ("counterparty_node_id", "02888f2e3df341d21240f769afd83938fdc1878356769aae64141880d810c61dce"),
    ("funding_feerate_per_kw", "1000"),
    ("ours.funding_pubkey", "028488c168a9106fda090f8ecfa261b375856ccf785d5610c1c96823d61972732b"),
    ("ours.revocation_basepoint", "02bcc3b5a065e4152d4d3cb92f52819ac8980fd2a095a8e3db446ce416771f07dd"),
    ("ours.payment_basepoint", "03e5df5879451961c7fd4cae6af700ff77de0bd61f28ebbf56e3a2741f3f6449a6"),
    ("ours.delayed_payment_basepoint", "0383e1858f23f1dc8d6a383d68b328923a91b8b1f2aa4fbd2c97c201e16dc8f2ef"),
    ("ours.htlc_basepoint", "030d11c355e195ed7064f3a4c2e7230b7dd5b61859100f203cf88f500dba280a0f"),
    ("ours.first_per_commitment_point", "0363b8ed8bd36619cc49d9c13381dc2d28baf24708a4a9b27ed0726623d135bb3e"),
    ("theirs.funding_pubkey", "039cab57880e6c560775f568f929c52a0eb9bc380eb4a2730570c8c90e2b27042c"),
    ("theirs.revocation_basepoint", "02bce9c9ad9f3e5911b8e3d25cc08836b609266fbfa9b6f6aef32a64ef363e15fe"),
    ("theirs.payment_basepoint", "0289ef3909d0480b72f37bdf1f8219a700748f504d0ca74673c494f9e7a0c2fc43"),
    ("theirs.delayed_payment_basepoint", "029783d45c2fcc12aded2e185d60543831369ce21239f94ce0e570b552c77c3d9e"),
    ("theirs.htlc_basepoint", "03c53c5d9a10f722ca26e563e917b455c34e663e8815a95ed48678ae13a5140345"),
    ("theirs.first_per_commitment_point", "03a308ea3c7ef51e5b27397bfe2d65186ab2a47aadb67228dcf59ea483e561caa0"),
    ("funding.tx", "txid 1c261b2ba50d984c8cdb9ca6d5b9f77e0e4119bc1cc4942ad241c90a001c1662 wtxid de947e4cc3932132b070f08f72b0896c0bcfb8f51d283b10b9f028bd3fff38eb"),
    ("their_commitment_sig", "5d15e0f85cd7cd1c0f4ca4d2628ad777634b08c5d29c4af790c08df87e82142e0172fb49c4ac1d23ad69b96919191e8b68192bfd6a01861872cc050f5c1d646a"),
];

#[test]
fn channel_v1_fundee_after_funding_signed() {
    check("fundee_after_funding_signed", &[FUNDEE], &[]);
}

#[test]
fn channel_v1_funder_awaiting_confirmations() {
    check("funder_awaiting_confirmations", &[FUNDEE, FUNDER], &[]);
}

#[test]
fn channel_v1_funder_awaiting_channel_ready() {
    check(
        "funder_awaiting_channel_ready",
        &[FUNDEE, FUNDER],
        &[
            ("state", "AwaitingChannelReady"),
            (
                "confirmation",
                "101 6565656565656565656565656565656565656565656565656565656565656565 1",
            ),
            ("channel_ready_sent", "true"),
        ],
    );
}

#[test]
fn channel_v1_funder_ready() {
    check(
        "funder_ready",
        &[FUNDEE, FUNDER],
        &[
            ("state", "Ready"),
            (
                "confirmation",
                "101 6565656565656565656565656565656565656565656565656565656565656565 1",
            ),
            ("channel_ready_sent", "true"),
            (
                "their_second_point",
                "03c656c72f25575df20d583ba2b469d6384a92c5d5026f8f709f263dc8dea49c7d",
            ),
        ],
    );
}

#[test]
fn channel_v1_fundee_ready() {
    check(
        "fundee_ready",
        &[FUNDEE],
        &[
            ("state", "Ready"),
            ("funding.tx", "txid 1c261b2ba50d984c8cdb9ca6d5b9f77e0e4119bc1cc4942ad241c90a001c1662 wtxid de947e4cc3932132b070f08f72b0896c0bcfb8f51d283b10b9f028bd3fff38eb"),
            ("confirmation", "101 6565656565656565656565656565656565656565656565656565656565656565 1"),
            ("channel_ready_sent", "true"),
            ("their_second_point", "031e1d3c2d0742d47a0ad752bf647f084631994600b968c86425d8317fb7640b89"),
        ],
    );
}

#[test]
fn channel_v1_fundee_early_channel_ready() {
    check(
        "fundee_early_channel_ready",
        &[FUNDEE],
        &[(
            "their_second_point",
            "031e1d3c2d0742d47a0ad752bf647f084631994600b968c86425d8317fb7640b89",
        )],
    );
}

#[test]
fn channel_v1_funder_public_announced() {
    check(
        "funder_public_announced",
        &[FUNDEE, FUNDER],
        &[
            ("state", "Ready"),
            ("announce", "true"),
            ("confirmation", "101 6565656565656565656565656565656565656565656565656565656565656565 1"),
            ("channel_ready_sent", "true"),
            ("their_second_point", "03c656c72f25575df20d583ba2b469d6384a92c5d5026f8f709f263dc8dea49c7d"),
            ("announcement_sigs_sent", "true"),
            ("their_announcement_sigs", "6f01271c677ab4ce42f1a90a6117d292b7177ea74c54c3216b623a4bf47535066c1fe065510008596b4d157e954eaec41858023f9f99b48360e438cb91b6bf85 3c8919d2d9f8be066075de13db85a5a7fd75ca1daadb655bbc9df433194163914e8f969a5a43a811175d5c90c4f3e746af40d14c062c3dca00ee497221951eb8"),
            ("announcement.short_channel_id", "101x1x1"),
            ("announcement.chain_hash", "06226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f"),
            ("announcement.features", ""),
            ("announcement.node_ids", "02888f2e3df341d21240f769afd83938fdc1878356769aae64141880d810c61dce 0355f8d2238a322d16b602bd0ceaad5b01019fb055971eaadcc9b29226a4da6c23"),
            ("announcement.bitcoin_keys", "039cab57880e6c560775f568f929c52a0eb9bc380eb4a2730570c8c90e2b27042c 028488c168a9106fda090f8ecfa261b375856ccf785d5610c1c96823d61972732b"),
            ("announcement.node_signatures", "6f01271c677ab4ce42f1a90a6117d292b7177ea74c54c3216b623a4bf47535066c1fe065510008596b4d157e954eaec41858023f9f99b48360e438cb91b6bf85 878487255c6d16386576e9ee84e3b87e5459b9b6b158d2771ebd1de01ac99a3a5da9e68a52a93d75a88859b75a30b4ecdb96f3506b6cdb72e09a0416069217ce"),
            ("announcement.bitcoin_signatures", "3c8919d2d9f8be066075de13db85a5a7fd75ca1daadb655bbc9df433194163914e8f969a5a43a811175d5c90c4f3e746af40d14c062c3dca00ee497221951eb8 74a5400e639742486cbeeb55d3bfccd080a53c1616546e8f65f5d76650afc06e124afdd2c1c21effe30f7aa72cfcccaea0a262adc8a4a42cf9788c4263cad342"),
            ("announcement.excess_data", ""),
            ("announcement_answered", "true"),
        ],
    );
}

#[test]
fn channel_v1_funder_failed_double_spent() {
    check(
        "funder_failed_double_spent",
        &[FUNDEE, FUNDER],
        &[
            ("state", "Failed"),
            ("failure_reason", "Some(\"funding transaction double-spent by d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5\")"),
        ],
    );
}

#[test]
fn channel_v1_fundee_failed_unfunded() {
    // State byte 7 (Failed) plus the empty odd field 55 on disk.
    check(
        "fundee_failed_unfunded",
        &[FUNDEE],
        &[
            ("state", "FailedUnfunded"),
            ("failure_reason", "Some(\"the funder failed the open before its funding appeared on chain; nothing was committed (peer error: unknown channel)\")"),
        ],
    );
}

#[test]
fn channel_v1_funder_anchors_ready() {
    // The even field 58 (`3a 03 401000`: option_static_remotekey and option_anchors, bits
    // 12 and 22) ends the record; a build before anchors refuses it rather than build a
    // static_remotekey commitment.
    let (bytes, _) = load("funder_anchors_ready");
    assert!(bytes.ends_with(&[0x3a, 0x03, 0x40, 0x10, 0x00]));
    check(
        "funder_anchors_ready",
        &[FUNDEE, FUNDER],
        &[
            ("state", "Ready"),
            ("confirmation", "101 6565656565656565656565656565656565656565656565656565656565656565 1"),
            ("channel_ready_sent", "true"),
            ("their_second_point", "03c656c72f25575df20d583ba2b469d6384a92c5d5026f8f709f263dc8dea49c7d"),
            ("their_commitment_sig", "d545291e56f8ab815b95f4e83a4f74aff71f5921cfd69c22c770daaec35113d30de7eb8639de569829389a420c26eed3efa194c6a0cac00854bb7e963f0e000b"),
            ("channel_type", "Some(ChannelType { anchors: true })"),
        ],
    );
}

#[test]
fn channel_v1_funder_closing_local_force() {
    check(
        "funder_closing_local_force",
        &[FUNDEE, FUNDER],
        &[
            ("state", "Closing"),
            ("failure_reason", "Some(\"force-closed at the user's request\")"),
            ("confirmation", "101 6565656565656565656565656565656565656565656565656565656565656565 1"),
            ("channel_ready_sent", "true"),
            ("their_second_point", "03c656c72f25575df20d583ba2b469d6384a92c5d5026f8f709f263dc8dea49c7d"),
            ("close_kind", "Some(LocalForce)"),
            ("closing_tx", "txid 1edd964ed098a97311b981674e02f7ed6accd26a21307f23a957466f0217233f wtxid 5541114728192c6fc51e4d08ae6c03d19ce4ef056c64eac766c715aa5abe56df"),
            ("tracked", "1edd964ed098a97311b981674e02f7ed6accd26a21307f23a957466f0217233f:1 898190 sat ToLocal { number: 0 } Waiting"),
        ],
    );
}

#[test]
fn channel_v1_funder_shutting_down() {
    // The even field 62: our shutdown stored before it is sent (new channels: dust limit 355).
    check(
        "funder_shutting_down",
        &[],
        &[
            ("role", "Funder"),
            ("state", "ShuttingDown"),
            ("counterparty_node_id", "02888f2e3df341d21240f769afd83938fdc1878356769aae64141880d810c61dce"),
            ("chain_hash", "06226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f"),
            ("temporary_channel_id", "4242424242424242424242424242424242424242424242424242424242424242"),
            ("keys_index", "7"),
            ("funding_sat", "1000000"),
            ("push_msat", "100000000"),
            ("announce", "false"),
            ("commitment_feerate_per_kw", "2500"),
            ("funding_feerate_per_kw", "1000"),
            ("created_height", "100"),
            ("minimum_depth", "Some(3)"),
            ("ours.dust_limit_sat", "355"),
            ("ours.max_htlc_value_in_flight_msat", "1000000000"),
            ("ours.channel_reserve_sat", "10000"),
            ("ours.htlc_minimum_msat", "1"),
            ("ours.to_self_delay", "144"),
            ("ours.max_accepted_htlcs", "30"),
            ("ours.funding_pubkey", "028488c168a9106fda090f8ecfa261b375856ccf785d5610c1c96823d61972732b"),
            ("ours.revocation_basepoint", "02bcc3b5a065e4152d4d3cb92f52819ac8980fd2a095a8e3db446ce416771f07dd"),
            ("ours.payment_basepoint", "03e5df5879451961c7fd4cae6af700ff77de0bd61f28ebbf56e3a2741f3f6449a6"),
            ("ours.delayed_payment_basepoint", "0383e1858f23f1dc8d6a383d68b328923a91b8b1f2aa4fbd2c97c201e16dc8f2ef"),
            ("ours.htlc_basepoint", "030d11c355e195ed7064f3a4c2e7230b7dd5b61859100f203cf88f500dba280a0f"),
            ("ours.first_per_commitment_point", "0363b8ed8bd36619cc49d9c13381dc2d28baf24708a4a9b27ed0726623d135bb3e"),
            ("ours.upfront_shutdown_script", "Some(\"\")"),
            ("theirs.dust_limit_sat", "355"),
            ("theirs.max_htlc_value_in_flight_msat", "1000000000"),
            ("theirs.channel_reserve_sat", "10000"),
            ("theirs.htlc_minimum_msat", "1"),
            ("theirs.to_self_delay", "144"),
            ("theirs.max_accepted_htlcs", "30"),
            ("theirs.funding_pubkey", "039cab57880e6c560775f568f929c52a0eb9bc380eb4a2730570c8c90e2b27042c"),
            ("theirs.revocation_basepoint", "02bce9c9ad9f3e5911b8e3d25cc08836b609266fbfa9b6f6aef32a64ef363e15fe"),
            ("theirs.payment_basepoint", "0289ef3909d0480b72f37bdf1f8219a700748f504d0ca74673c494f9e7a0c2fc43"),
            ("theirs.delayed_payment_basepoint", "029783d45c2fcc12aded2e185d60543831369ce21239f94ce0e570b552c77c3d9e"),
            ("theirs.htlc_basepoint", "03c53c5d9a10f722ca26e563e917b455c34e663e8815a95ed48678ae13a5140345"),
            ("theirs.first_per_commitment_point", "03a308ea3c7ef51e5b27397bfe2d65186ab2a47aadb67228dcf59ea483e561caa0"),
            ("theirs.upfront_shutdown_script", "Some(\"\")"),
            ("funding.outpoint", "1c261b2ba50d984c8cdb9ca6d5b9f77e0e4119bc1cc4942ad241c90a001c1662:1"),
            ("funding.tx", "txid 1c261b2ba50d984c8cdb9ca6d5b9f77e0e4119bc1cc4942ad241c90a001c1662 wtxid de947e4cc3932132b070f08f72b0896c0bcfb8f51d283b10b9f028bd3fff38eb"),
            ("their_commitment_sig", "5d15e0f85cd7cd1c0f4ca4d2628ad777634b08c5d29c4af790c08df87e82142e0172fb49c4ac1d23ad69b96919191e8b68192bfd6a01861872cc050f5c1d646a"),
            ("confirmation", "101 6565656565656565656565656565656565656565656565656565656565656565 1"),
            ("channel_ready_sent", "true"),
            ("their_second_point", "03c656c72f25575df20d583ba2b469d6384a92c5d5026f8f709f263dc8dea49c7d"),
            ("announcement_sigs_sent", "false"),
            ("their_announcement_sigs", "None"),
            ("announcement.short_channel_id", "None"),
            ("announcement.chain_hash", "None"),
            ("announcement.features", "None"),
            ("announcement.node_ids", "None"),
            ("announcement.bitcoin_keys", "None"),
            ("announcement.node_signatures", "None"),
            ("announcement.bitcoin_signatures", "None"),
            ("announcement.excess_data", "None"),
            ("announcement_answered", "false"),
            ("failure_reason", "None"),
            ("funding_spend", "None"),
            ("waiting_since", "None"),
            ("channel_type", "None"),
            ("commitments", "None"),
            ("shutdown", "lock Ready initiator Local ours Some(\"00140101010101010101010101010101010101010101\") theirs None signed [] agreed None"),
            ("close_kind", "None"),
            ("closing_tx", "None"),
            ("closing_height", "None"),
            ("tracked", "None"),
        ],
    );
}

#[test]
fn channel_v1_fundee_closing_remote_force() {
    check(
        "fundee_closing_remote_force",
        &[FUNDEE],
        &[
            ("state", "Closing"),
            ("failure_reason", "Some(\"funding output spent by 1edd964ed098a97311b981674e02f7ed6accd26a21307f23a957466f0217233f (confirmed at height 104; the peer's commitment 0): the channel is closed on chain\")"),
            ("funding.tx", "txid 1c261b2ba50d984c8cdb9ca6d5b9f77e0e4119bc1cc4942ad241c90a001c1662 wtxid de947e4cc3932132b070f08f72b0896c0bcfb8f51d283b10b9f028bd3fff38eb"),
            ("confirmation", "101 6565656565656565656565656565656565656565656565656565656565656565 1"),
            ("channel_ready_sent", "true"),
            ("their_second_point", "031e1d3c2d0742d47a0ad752bf647f084631994600b968c86425d8317fb7640b89"),
            ("close_kind", "Some(RemoteForce)"),
            ("closing_tx", "txid 1edd964ed098a97311b981674e02f7ed6accd26a21307f23a957466f0217233f wtxid 5541114728192c6fc51e4d08ae6c03d19ce4ef056c64eac766c715aa5abe56df"),
            ("closing_height", "Some(104)"),
            ("tracked", "1edd964ed098a97311b981674e02f7ed6accd26a21307f23a957466f0217233f:0 100000 sat ToRemote sweep e75d59704cc515407cf2d51451b07ffdd9221701962098d225de25706c2bfc69 (98902 sat) at 2500 sat/kw height 104"),
        ],
    );
}

#[test]
fn channel_v1_funder_closing_sweep_broadcast() {
    check(
        "funder_closing_sweep_broadcast",
        &[FUNDEE, FUNDER],
        &[
            ("state", "Closing"),
            ("failure_reason", "Some(\"force-closed at the user's request\")"),
            ("confirmation", "101 6565656565656565656565656565656565656565656565656565656565656565 1"),
            ("channel_ready_sent", "true"),
            ("their_second_point", "03c656c72f25575df20d583ba2b469d6384a92c5d5026f8f709f263dc8dea49c7d"),
            ("close_kind", "Some(LocalForce)"),
            ("closing_tx", "txid 1edd964ed098a97311b981674e02f7ed6accd26a21307f23a957466f0217233f wtxid 5541114728192c6fc51e4d08ae6c03d19ce4ef056c64eac766c715aa5abe56df"),
            ("closing_height", "Some(104)"),
            ("tracked", "1edd964ed098a97311b981674e02f7ed6accd26a21307f23a957466f0217233f:1 898190 sat ToLocal { number: 0 } sweep 3fa83416e29c6e0b65111bc07684ad60154cab44b37609abb0d4cc4f531b9d6f (896980 sat) at 2500 sat/kw height 247"),
        ],
    );
}

#[test]
fn channel_v1_funder_closed() {
    check(
        "funder_closed",
        &[FUNDEE, FUNDER],
        &[
            ("state", "Closed"),
            ("failure_reason", "Some(\"force-closed at the user's request\")"),
            ("confirmation", "101 6565656565656565656565656565656565656565656565656565656565656565 1"),
            ("channel_ready_sent", "true"),
            ("their_second_point", "03c656c72f25575df20d583ba2b469d6384a92c5d5026f8f709f263dc8dea49c7d"),
            ("close_kind", "Some(LocalForce)"),
            ("closing_tx", "txid 1edd964ed098a97311b981674e02f7ed6accd26a21307f23a957466f0217233f wtxid 5541114728192c6fc51e4d08ae6c03d19ce4ef056c64eac766c715aa5abe56df"),
            ("closing_height", "Some(104)"),
            ("tracked", "1edd964ed098a97311b981674e02f7ed6accd26a21307f23a957466f0217233f:1 898190 sat ToLocal { number: 0 } Confirmed { txid: 3fa83416e29c6e0b65111bc07684ad60154cab44b37609abb0d4cc4f531b9d6f, height: 248, claimed_sat: 896980 }"),
        ],
    );
}

#[test]
fn channel_v1_funder_closing_revoked() {
    check(
        "funder_closing_revoked",
        &[FUNDEE, FUNDER],
        &[
            ("state", "Closing"),
            ("failure_reason", "Some(\"funding output spent by 86779e9784489b01a476075c6943d6bf03e48477a202f0bbab6b3815344acff0 (unconfirmed; the peer's REVOKED commitment 0): the channel is closed on chain\")"),
            ("confirmation", "101 6565656565656565656565656565656565656565656565656565656565656565 1"),
            ("channel_ready_sent", "true"),
            ("their_second_point", "03c656c72f25575df20d583ba2b469d6384a92c5d5026f8f709f263dc8dea49c7d"),
            ("commitments", "local 1 at 5000 sat/kw (900000000/100000000 msat) sig 5e24287b569282b60380037819104c9b3022699572df5d28457fbf78d2eb381468a3fdf3f471d4ccdcadfc6f49c31976dfbc3d1d872ccc51a60f3a9d82b8fd0f; remote 1 at 5000 sat/kw point 03c656c72f25575df20d583ba2b469d6384a92c5d5026f8f709f263dc8dea49c7d; next point 02b962cae07977c28b554f15d941ddf8c1935d480db51c613315aa29877286c59f; ours []/[]/[]; theirs []/[]/[]; secrets from Some(281474976710655)"),
            ("close_kind", "Some(Revoked)"),
            ("closing_tx", "txid 86779e9784489b01a476075c6943d6bf03e48477a202f0bbab6b3815344acff0 wtxid 793ef9179297ee52eb12cb0a2b465bc547133c22ec576b88d2b5b1f65d576510"),
            ("tracked", "86779e9784489b01a476075c6943d6bf03e48477a202f0bbab6b3815344acff0:0 100000 sat Penalty { number: 0 } sweep f8992dd0d65f3dd37e65e0577a0402fa2808c53ce15a538de7c91ebcaafb383b (97575 sat) at 5000 sat/kw height 101; 86779e9784489b01a476075c6943d6bf03e48477a202f0bbab6b3815344acff0:1 898190 sat ToRemote sweep b82e76b16184844f24e63ded2325460ddccb2f1b2feddb19b0e7f1ac2759beec (895995 sat) at 5000 sat/kw height 101"),
        ],
    );
}

#[test]
fn channel_v1_fundee_negotiating_agreed() {
    // The even field 62 with the agreed close; the per-connection fields (odd) too.
    check(
        "fundee_negotiating_agreed",
        &[],
        &[
            ("role", "Fundee"),
            ("state", "Negotiating"),
            ("counterparty_node_id", "0355f8d2238a322d16b602bd0ceaad5b01019fb055971eaadcc9b29226a4da6c23"),
            ("chain_hash", "06226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f"),
            ("temporary_channel_id", "4242424242424242424242424242424242424242424242424242424242424242"),
            ("keys_index", "7"),
            ("funding_sat", "1000000"),
            ("push_msat", "100000000"),
            ("announce", "false"),
            ("commitment_feerate_per_kw", "2500"),
            ("funding_feerate_per_kw", "0"),
            ("created_height", "100"),
            ("minimum_depth", "Some(3)"),
            ("ours.dust_limit_sat", "355"),
            ("ours.max_htlc_value_in_flight_msat", "1000000000"),
            ("ours.channel_reserve_sat", "10000"),
            ("ours.htlc_minimum_msat", "1"),
            ("ours.to_self_delay", "144"),
            ("ours.max_accepted_htlcs", "30"),
            ("ours.funding_pubkey", "039cab57880e6c560775f568f929c52a0eb9bc380eb4a2730570c8c90e2b27042c"),
            ("ours.revocation_basepoint", "02bce9c9ad9f3e5911b8e3d25cc08836b609266fbfa9b6f6aef32a64ef363e15fe"),
            ("ours.payment_basepoint", "0289ef3909d0480b72f37bdf1f8219a700748f504d0ca74673c494f9e7a0c2fc43"),
            ("ours.delayed_payment_basepoint", "029783d45c2fcc12aded2e185d60543831369ce21239f94ce0e570b552c77c3d9e"),
            ("ours.htlc_basepoint", "03c53c5d9a10f722ca26e563e917b455c34e663e8815a95ed48678ae13a5140345"),
            ("ours.first_per_commitment_point", "03a308ea3c7ef51e5b27397bfe2d65186ab2a47aadb67228dcf59ea483e561caa0"),
            ("ours.upfront_shutdown_script", "Some(\"\")"),
            ("theirs.dust_limit_sat", "355"),
            ("theirs.max_htlc_value_in_flight_msat", "1000000000"),
            ("theirs.channel_reserve_sat", "10000"),
            ("theirs.htlc_minimum_msat", "1"),
            ("theirs.to_self_delay", "144"),
            ("theirs.max_accepted_htlcs", "30"),
            ("theirs.funding_pubkey", "028488c168a9106fda090f8ecfa261b375856ccf785d5610c1c96823d61972732b"),
            ("theirs.revocation_basepoint", "02bcc3b5a065e4152d4d3cb92f52819ac8980fd2a095a8e3db446ce416771f07dd"),
            ("theirs.payment_basepoint", "03e5df5879451961c7fd4cae6af700ff77de0bd61f28ebbf56e3a2741f3f6449a6"),
            ("theirs.delayed_payment_basepoint", "0383e1858f23f1dc8d6a383d68b328923a91b8b1f2aa4fbd2c97c201e16dc8f2ef"),
            ("theirs.htlc_basepoint", "030d11c355e195ed7064f3a4c2e7230b7dd5b61859100f203cf88f500dba280a0f"),
            ("theirs.first_per_commitment_point", "0363b8ed8bd36619cc49d9c13381dc2d28baf24708a4a9b27ed0726623d135bb3e"),
            ("theirs.upfront_shutdown_script", "Some(\"\")"),
            ("funding.outpoint", "1c261b2ba50d984c8cdb9ca6d5b9f77e0e4119bc1cc4942ad241c90a001c1662:1"),
            ("funding.tx", "txid 1c261b2ba50d984c8cdb9ca6d5b9f77e0e4119bc1cc4942ad241c90a001c1662 wtxid de947e4cc3932132b070f08f72b0896c0bcfb8f51d283b10b9f028bd3fff38eb"),
            ("their_commitment_sig", "aff00af2038d9b5c8d17cddcba745802c07e06784c0c62100ce0643b81a36bd56926b1a7af24b62f365cc75d2abad947926854cb702cdd5aa917f6c6880e8526"),
            ("confirmation", "101 6565656565656565656565656565656565656565656565656565656565656565 1"),
            ("channel_ready_sent", "true"),
            ("their_second_point", "031e1d3c2d0742d47a0ad752bf647f084631994600b968c86425d8317fb7640b89"),
            ("announcement_sigs_sent", "false"),
            ("their_announcement_sigs", "None"),
            ("announcement.short_channel_id", "None"),
            ("announcement.chain_hash", "None"),
            ("announcement.features", "None"),
            ("announcement.node_ids", "None"),
            ("announcement.bitcoin_keys", "None"),
            ("announcement.node_signatures", "None"),
            ("announcement.bitcoin_signatures", "None"),
            ("announcement.excess_data", "None"),
            ("announcement_answered", "false"),
            ("failure_reason", "None"),
            ("funding_spend", "None"),
            ("waiting_since", "None"),
            ("channel_type", "None"),
            ("commitments", "None"),
            ("shutdown", "lock Ready initiator Remote ours Some(\"00140202020202020202020202020202020202020202\") theirs Some(\"00140101010101010101010101010101010101010101\") signed [\"1685 02cf2f666114693914db977a249232ea3001042beea7c30bf1e4a8e3c1586066\"] agreed Some(\"02cf2f666114693914db977a249232ea3001042beea7c30bf1e4a8e3c1586066\")"),
            ("close_kind", "None"),
            ("closing_tx", "None"),
            ("closing_height", "None"),
            ("tracked", "None"),
        ],
    );
}

/// What the fixtures written after the mobile defaults (dust limit 355, `to_self_delay` 1008)
/// share with [`FUNDER`] on top of [`FUNDEE`]: a ready funder's connection-independent fields.
const FUNDER_READY_NEW_DEFAULTS: &[(&str, &str)] = &[
    ("ours.dust_limit_sat", "355"),
    ("ours.to_self_delay", "1008"),
    ("theirs.dust_limit_sat", "355"),
    ("theirs.to_self_delay", "1008"),
    ("funding.tx", "txid 1c261b2ba50d984c8cdb9ca6d5b9f77e0e4119bc1cc4942ad241c90a001c1662 wtxid de947e4cc3932132b070f08f72b0896c0bcfb8f51d283b10b9f028bd3fff38eb"),
    ("confirmation", "101 6565656565656565656565656565656565656565656565656565656565656565 1"),
    ("channel_ready_sent", "true"),
    ("their_second_point", "03c656c72f25575df20d583ba2b469d6384a92c5d5026f8f709f263dc8dea49c7d"),
    ("state", "Closing"),
    ("failure_reason", "Some(\"force-closed at the user's request\")"),
    ("close_kind", "Some(LocalForce)"),
];

#[test]
fn channel_v1_funder_closing_local_force_after_shutdown() {
    // A Closing record (state 11) holding the even field 62: the Shutdown with the closing tx
    // we signed, kept when our force close overtook the negotiation (so the peer's broadcast
    // of that close is recognised as ours).
    check(
        "funder_closing_local_force_after_shutdown",
        &[FUNDEE, FUNDER, FUNDER_READY_NEW_DEFAULTS],
        &[
            ("their_commitment_sig", "2736f925a6b9853046a2ecfdc473f8084ba67ce99220fcb388af0a85919e8fa85edeb0762a1f7c367cc1d1267aa35a209606bdc7b0c85fcc818c304dded718d3"),
            ("shutdown", "lock Ready initiator Local ours Some(\"00140101010101010101010101010101010101010101\") theirs Some(\"00140202020202020202020202020202020202020202\") signed [\"1685 02cf2f666114693914db977a249232ea3001042beea7c30bf1e4a8e3c1586066\"] agreed None"),
            ("closing_tx", "txid fc6b19b0451c35ae3dc81cd67c95c6bae530a681d40ce4ee6d2e91b5106ac264 wtxid 140418bdd9afdbf98022c65a62e9a4e05fa07fe788d1d7e2761715c60fc84f41"),
            ("tracked", "fc6b19b0451c35ae3dc81cd67c95c6bae530a681d40ce4ee6d2e91b5106ac264:1 898190 sat ToLocal { number: 0 } Waiting"),
        ],
    );
    let (_, channel) = load("funder_closing_local_force_after_shutdown");
    let signed: bitcoin::Txid = "02cf2f666114693914db977a249232ea3001042beea7c30bf1e4a8e3c1586066"
        .parse()
        .expect("txid");
    assert_eq!(channel.signed_closing_txids(), vec![signed]);
}

#[test]
fn channel_v1_funder_closing_anchor_cpfp() {
    // An anchor force close (field 58) whose commitment's CPFP child is stored (the even
    // field 78), its anchor the commitment's output 0.
    // Field 78 is listed right after close_kind.
    let at = FUNDEE
        .iter()
        .position(|(k, _)| *k == "closing_tx")
        .expect("closing_tx");
    let cpfp: &[(&str, &str)] = &[("cpfp", "child txid b751300766ada5480ea0a5bd9d0dbe51b39beca2ef9c37c4b9fb9c7f37a10811 wtxid cc4d416e5f780438f481ba80cf2d579318082ed49718575998bbd0ee1993846f (2 in, 90000 sat out) at 10000 sat/kw height 101")];
    check(
        "funder_closing_anchor_cpfp",
        &[
            &FUNDEE[..at],
            cpfp,
            &FUNDEE[at..],
            FUNDER,
            FUNDER_READY_NEW_DEFAULTS,
        ],
        &[
            ("their_commitment_sig", "a271fd174c0852f1f905659ab954a4eb0eb6d389bc6254cdb1e315d48ed33eac2e387c1a91c44b936c6220cc04d301a45c50868583af638b2295dc813894de1b"),
            ("channel_type", "Some(ChannelType { anchors: true })"),
            ("closing_tx", "txid 34c1d8359fba45e429e32b17ea4a1b3535d0e9c50a6c6dd98ce084c1db067c98 wtxid 7f6b5b701420df8b818654d1aabbc7469e72c44cd573f731189beea9cd5e1388"),
            ("tracked", "34c1d8359fba45e429e32b17ea4a1b3535d0e9c50a6c6dd98ce084c1db067c98:3 896530 sat ToLocal { number: 0 } Waiting"),
        ],
    );
    let (_, channel) = load("funder_closing_anchor_cpfp");
    let child = channel.anchor_cpfp_child().expect("the stored child");
    assert_eq!(
        child.input[0].previous_output.to_string(),
        "34c1d8359fba45e429e32b17ea4a1b3535d0e9c50a6c6dd98ce084c1db067c98:0"
    );
    assert_eq!(channel.anchor_cpfp_feerate(), Some(10_000));
}

/// Every `channel_v1_*.hex` in the fixture directory, not only those named by a test above,
/// decodes and re-encodes to its exact bytes (a fixture added without its own test is still
/// held to the rule).
#[test]
fn every_channel_fixture_decodes_and_re_encodes_byte_for_byte() {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter_map(|n| {
            n.strip_prefix("channel_v1_")
                .and_then(|n| n.strip_suffix(".hex"))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 19, "{names:?}");
    assert!(names.contains(&"funder_closing_local_force_after_shutdown".to_string()));
    assert!(names.contains(&"funder_closing_anchor_cpfp".to_string()));
    for name in &names {
        load(name);
    }
}
