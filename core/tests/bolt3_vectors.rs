//! BOLT 3 Appendix B (funding tx), C (commitment and HTLC txs) and F (anchors) vectors,
//! byte-for-byte including signatures, loaded from `tests/vectors/*.json`.

mod common;

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    absolute::LockTime, transaction::Version, Amount, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Txid, Witness,
};
use common::*;
use serde_json::Value;
use std::str::FromStr;
use tern_core::proto::bolt3::{
    build_commitment_tx, commitment_fee, funding_script_pubkey, funding_witness_script,
    obscure_factor, p2wpkh_script_pubkey, ChannelType, CommitmentKeys, CommitmentParams,
    CommitmentTx, FundingInput, Htlc, HtlcDirection, HtlcSigner, HtlcTxKind, OutputKind,
};
use tern_core::proto::keys::{derive_private_key, per_commitment_point, ChannelPublicKeys};

#[test]
fn funding_tx() {
    let secp = Secp256k1::new();
    let v = load_vectors("bolt03-funding-tx.json");
    let local = pubkey(str_field(&v, "local_funding_pubkey"));
    let remote = pubkey(str_field(&v, "remote_funding_pubkey"));
    let comments = v["comments"].as_array().expect("comments");
    let wscript_comment = format!(
        "# funding witness script = {}",
        to_hex(funding_witness_script(&local, &remote).as_bytes())
    );
    assert!(comments
        .iter()
        .any(|c| c.as_str() == Some(&wscript_comment)));
    // Order of arguments does not matter.
    assert_eq!(
        funding_witness_script(&local, &remote),
        funding_witness_script(&remote, &local)
    );

    // Rebuild the whole funding transaction: the coinbase output (P2PKH) is spent with the
    // given key, paying the 2-of-2 funding output and P2WPKH change to the same key.
    let coinbase: Transaction = bitcoin::consensus::encode::deserialize(&bytes(str_field(
        &v,
        "Block_1_coinbase_transaction",
    )))
    .expect("coinbase");
    let key = secret(str_field(&v, "Block_1_coinbase_privkey"));
    let key_pub = PublicKey::from_secret_key(&secp, &key);
    let prev_spk = coinbase.output[0].script_pubkey.clone();
    let input_txid = Txid::from_str(str_field(&v, "input_txid")).expect("txid");
    assert_eq!(coinbase.compute_txid(), input_txid);
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: input_txid,
                vout: u64_field(&v, "input_index") as u32,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![
            TxOut {
                value: Amount::from_sat(u64_field(&v, "funding_satoshis")),
                script_pubkey: funding_script_pubkey(&local, &remote),
            },
            TxOut {
                value: Amount::from_sat(u64_field(&v, "change_satoshis")),
                script_pubkey: p2wpkh_script_pubkey(&key_pub),
            },
        ],
    };
    let sighash = SighashCache::new(&tx)
        .legacy_signature_hash(0, &prev_spk, EcdsaSighashType::All.to_u32())
        .expect("sighash");
    let sig = secp.sign_ecdsa(&bitcoin::secp256k1::Message::from(sighash), &key);
    let sig = bitcoin::ecdsa::Signature::sighash_all(sig);
    tx.input[0].script_sig = bitcoin::script::Builder::new()
        .push_slice(sig.serialize())
        .push_key(&bitcoin::PublicKey::new(key_pub))
        .into_script();
    assert_eq!(u64_field(&v, "funding_output"), 0);
    assert_eq!(serialize_hex(&tx), str_field(&v, "funding_tx"));
    let txid_comment = format!("# txid: {}", tx.compute_txid());
    assert!(comments.iter().any(|c| c.as_str() == Some(&txid_comment)));
}

/// Appendix C's fixed parameters and keys, derived from the spec's internal secrets.
struct Fixture {
    secp: Secp256k1<All>,
    funding: FundingInput,
    keys: CommitmentKeys,
    obscure: u64,
    local_funding_key: SecretKey,
    remote_funding_key: SecretKey,
    local_htlc_key: SecretKey,
    remote_htlc_key: SecretKey,
    htlcs: Vec<(Htlc, [u8; 32])>,
    commitment_number: u64,
    to_self_delay: u16,
    dust_limit: Amount,
}

fn fixture(v: &Value) -> Fixture {
    let secp = Secp256k1::new();
    let p = &v["params"];
    let internal = &v["internal_derivation_values_from_html_comment"];
    let pk = |k: &str| pubkey(str_field(p, k));
    let sk = |k: &str| secret(str_field(internal, k));

    let local_funding_key = secret(str_field(p, "local_funding_privkey"));
    let remote_funding_key = sk("remote_funding_privkey");
    let local_payment_secret = sk("local_payment_basepoint_secret");
    let remote_payment_secret = sk("remote_payment_basepoint_secret");
    let remote_revocation_secret = sk("remote_revocation_basepoint_secret");
    let local_delayed_secret = sk("local_delayed_payment_basepoint_secret");
    let pcs = bytes32(str_field(internal, "x_local_per_commitment_secret"));
    let point = per_commitment_point(&secp, &pcs).expect("point");
    let pub_of = |s: &SecretKey| PublicKey::from_secret_key(&secp, s);

    assert_eq!(pub_of(&local_funding_key), pk("local_funding_pubkey"));
    assert_eq!(pub_of(&remote_funding_key), pk("remote_funding_pubkey"));
    assert_eq!(pub_of(&local_payment_secret), pk("local_payment_basepoint"));
    assert_eq!(
        pub_of(&remote_payment_secret),
        pk("remote_payment_basepoint")
    );
    assert_eq!(
        point,
        pubkey(str_field(internal, "local_per_commitment_point"))
    );
    assert_eq!(
        pub_of(&remote_revocation_secret),
        pubkey(str_field(internal, "remote_revocation_basepoint"))
    );
    assert_eq!(
        pub_of(&local_delayed_secret),
        pubkey(str_field(internal, "local_delayed_payment_basepoint"))
    );

    // The vectors use the payment basepoints as HTLC basepoints.
    assert_eq!(pk("local_htlc_basepoint"), pk("local_payment_basepoint"));
    assert_eq!(pk("remote_htlc_basepoint"), pk("remote_payment_basepoint"));
    let local = ChannelPublicKeys {
        funding_pubkey: pub_of(&local_funding_key),
        // Local's revocation basepoint does not appear in local's own commitment.
        revocation_basepoint: pub_of(&local_payment_secret),
        payment_basepoint: pk("local_payment_basepoint"),
        delayed_payment_basepoint: pub_of(&local_delayed_secret),
        htlc_basepoint: pk("local_htlc_basepoint"),
    };
    let remote = ChannelPublicKeys {
        funding_pubkey: pub_of(&remote_funding_key),
        revocation_basepoint: pub_of(&remote_revocation_secret),
        payment_basepoint: pk("remote_payment_basepoint"),
        delayed_payment_basepoint: pub_of(&remote_payment_secret),
        htlc_basepoint: pk("remote_htlc_basepoint"),
    };
    let keys = CommitmentKeys::derive(&secp, &point, &local, &remote).expect("keys");
    assert_eq!(keys.local_htlc_pubkey, pk("local_htlcpubkey"));
    assert_eq!(keys.remote_htlc_pubkey, pk("remote_htlcpubkey"));
    assert_eq!(keys.local_delayed_pubkey, pk("local_delayedpubkey"));
    assert_eq!(keys.revocation_pubkey, pk("local_revocation_pubkey"));
    assert_eq!(keys.remote_pubkey, pk("remote_payment_basepoint"));

    let local_htlc_key = derive_private_key(&secp, &local_payment_secret, &point).expect("key");
    assert_eq!(local_htlc_key, secret(str_field(p, "local_privkey")));
    let remote_htlc_key = derive_private_key(&secp, &remote_payment_secret, &point).expect("key");
    assert_eq!(remote_htlc_key, sk("remote_privkey"));
    assert_eq!(
        derive_private_key(&secp, &local_delayed_secret, &point).expect("key"),
        sk("local_delayed_privkey")
    );

    let funding = FundingInput {
        outpoint: OutPoint {
            txid: Txid::from_str(str_field(p, "funding_tx_id")).expect("txid"),
            vout: u64_field(p, "funding_output_index") as u32,
        },
        amount: Amount::from_sat(u64_field(p, "funding_amount_satoshi")),
        local_funding_pubkey: pub_of(&local_funding_key),
        remote_funding_pubkey: pub_of(&remote_funding_key),
    };
    let funding_comment = format!(
        "# funding wscript = {}",
        to_hex(funding.witness_script().as_bytes())
    );
    assert!(p["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .any(|c| c.as_str() == Some(&funding_comment)));
    let obscure = obscure_factor(
        &pk("local_payment_basepoint"),
        &pk("remote_payment_basepoint"),
    );
    assert_eq!(obscure, 0x2bb038521914);

    let htlcs = v["htlcs"]
        .as_array()
        .expect("htlcs")
        .iter()
        .enumerate()
        .map(|(i, h)| {
            assert_eq!(u64_field(h, "id"), i as u64);
            let preimage = bytes32(str_field(h, "payment_preimage"));
            let direction = match str_field(h, "direction") {
                "remote->local" => HtlcDirection::Received,
                "local->remote" => HtlcDirection::Offered,
                other => panic!("direction {other}"),
            };
            (
                Htlc {
                    direction,
                    amount_msat: u64_field(h, "amount_msat"),
                    payment_hash: sha256::Hash::hash(&preimage),
                    cltv_expiry: u64_field(h, "expiry") as u32,
                },
                preimage,
            )
        })
        .collect();

    Fixture {
        funding,
        keys,
        obscure,
        local_funding_key,
        remote_funding_key,
        local_htlc_key,
        remote_htlc_key,
        htlcs,
        commitment_number: u64_field(p, "commitment_number"),
        to_self_delay: u64_field(p, "local_delay") as u16,
        dust_limit: Amount::from_sat(u64_field(p, "local_dust_limit_satoshi")),
        secp,
    }
}

/// Which Appendix C HTLCs a test uses (the spec says so in prose).
fn htlc_ids(name: &str, use_htlcs: bool) -> Vec<usize> {
    if !use_htlcs {
        vec![]
    } else if name.contains("same amount and preimage") {
        vec![1, 5, 6]
    } else {
        vec![0, 1, 2, 3, 4]
    }
}

fn der(sig: &bitcoin::secp256k1::ecdsa::Signature) -> String {
    to_hex(&sig.serialize_der())
}

struct Case<'a> {
    name: &'a str,
    to_local_msat: u64,
    to_remote_msat: u64,
    feerate: u32,
    dust_limit: Amount,
    htlc_ids: Vec<usize>,
    channel_type: ChannelType,
}

fn build(f: &Fixture, case: &Case<'_>) -> (CommitmentTx, Vec<Htlc>) {
    let htlcs: Vec<Htlc> = case.htlc_ids.iter().map(|&i| f.htlcs[i].0).collect();
    let commitment = build_commitment_tx(&CommitmentParams {
        funding: f.funding,
        commitment_number: f.commitment_number,
        obscure_factor: f.obscure,
        to_self_delay: f.to_self_delay,
        dust_limit: case.dust_limit,
        feerate_per_kw: case.feerate,
        local_is_funder: true,
        to_local_msat: case.to_local_msat,
        to_remote_msat: case.to_remote_msat,
        htlcs: &htlcs,
        keys: &f.keys,
        channel_type: case.channel_type,
    })
    .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    (commitment, htlcs)
}

fn preimage_of(f: &Fixture, case: &Case<'_>, htlc_index: usize) -> [u8; 32] {
    f.htlcs[case.htlc_ids[htlc_index]].1
}

#[test]
fn commitment_and_htlc_txs() {
    let v = load_vectors("bolt03-commitment-tx.json");
    let f = fixture(&v);
    let secp = &f.secp;
    let tests = v["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), 16);
    let mut htlc_txs_checked = 0;
    for t in tests {
        let name = str_field(t, "name");
        let case = Case {
            name,
            to_local_msat: u64_field(t, "to_local_msat"),
            to_remote_msat: u64_field(t, "to_remote_msat"),
            feerate: u64_field(t, "local_feerate_per_kw") as u32,
            dust_limit: f.dust_limit,
            htlc_ids: htlc_ids(name, !name.contains("no HTLCs")),
            channel_type: ChannelType::STATIC_REMOTE_KEY,
        };
        let (commitment, _) = build(&f, &case);
        let htlc_outputs: Vec<usize> = commitment
            .outputs
            .iter()
            .filter_map(|o| match o.kind {
                OutputKind::Htlc(i) => Some(i),
                _ => None,
            })
            .collect();
        assert_eq!(
            htlc_outputs.len() as u64,
            u64_field(t, "num_htlcs"),
            "{name}"
        );
        if t.get("base_fee_sat").is_some() {
            assert_eq!(
                commitment_fee(case.feerate, htlc_outputs.len(), case.channel_type).to_sat(),
                u64_field(t, "base_fee_sat"),
                "{name}"
            );
            assert_eq!(
                commitment.fee.to_sat(),
                u64_field(t, "actual_fee_sat"),
                "{name}"
            );
        }
        for c in t["htlc_outputs_comments"].as_array().expect("comments") {
            let id = u64_field(c, "htlc") as usize;
            let pos = case.htlc_ids.iter().position(|&i| i == id).expect("htlc");
            let vout = commitment
                .output_index(OutputKind::Htlc(pos))
                .unwrap_or_else(|| panic!("{name}: htlc {id} missing"));
            let out = &commitment.outputs[vout as usize];
            assert_eq!(
                to_hex(out.witness_script.as_ref().expect("ws").as_bytes()),
                str_field(c, "wscript"),
                "{name}: htlc {id}"
            );
            assert_eq!(
                commitment.tx.output[vout as usize].value.to_sat(),
                u64_field(c, "amount_sat")
            );
        }
        if let Some(o) = t.get("to_local_output") {
            let vout = commitment
                .output_index(OutputKind::ToLocal)
                .expect("to_local") as usize;
            assert_eq!(
                commitment.tx.output[vout].value.to_sat(),
                u64_field(o, "amount_sat")
            );
            assert_eq!(
                to_hex(
                    commitment.outputs[vout]
                        .witness_script
                        .as_ref()
                        .expect("ws")
                        .as_bytes()
                ),
                str_field(o, "wscript")
            );
        }
        if let Some(o) = t.get("to_remote_output") {
            let vout = commitment
                .output_index(OutputKind::ToRemote)
                .expect("to_remote") as usize;
            assert_eq!(
                commitment.tx.output[vout].value.to_sat(),
                u64_field(o, "amount_sat")
            );
            assert_eq!(
                commitment.tx.output[vout].script_pubkey,
                p2wpkh_script_pubkey(&pubkey(str_field(o, "p2wpkh_pubkey")))
            );
        }

        let local_sig = commitment.sign(secp, &f.local_funding_key).expect("sign");
        let remote_sig = commitment.sign(secp, &f.remote_funding_key).expect("sign");
        assert_eq!(der(&local_sig), str_field(t, "local_signature"), "{name}");
        assert_eq!(der(&remote_sig), str_field(t, "remote_signature"), "{name}");
        commitment
            .verify(secp, &remote_sig, &f.funding.remote_funding_pubkey)
            .expect("verify");
        assert!(commitment
            .verify(secp, &local_sig, &f.funding.remote_funding_pubkey)
            .is_err());
        let signed = commitment.finalize(&local_sig, &remote_sig);
        assert_eq!(serialize_hex(&signed), str_field(t, "commit_tx"), "{name}");

        let expected = t["htlc_txs"].as_array().expect("htlc_txs");
        let htlc_txs = commitment.htlc_txs();
        assert_eq!(htlc_txs.len(), expected.len(), "{name}");
        for (htx, e) in htlc_txs.iter().zip(expected) {
            let vout = htx.tx.input[0].previous_output.vout;
            assert_eq!(
                u64::from(vout),
                u64_field(e, "commit_output_index"),
                "{name}"
            );
            let OutputKind::Htlc(pos) = commitment.outputs[vout as usize].kind else {
                panic!("{name}: not an htlc output");
            };
            assert_eq!(case.htlc_ids[pos] as u64, u64_field(e, "htlc"), "{name}");
            let kind = match str_field(e, "type") {
                "htlc-success" => HtlcTxKind::Success,
                "htlc-timeout" => HtlcTxKind::Timeout,
                other => panic!("type {other}"),
            };
            assert_eq!(htx.kind, kind);
            let remote = htx
                .sign(secp, HtlcSigner::Remote, &f.remote_htlc_key)
                .expect("sign");
            let local = htx
                .sign(secp, HtlcSigner::Local, &f.local_htlc_key)
                .expect("sign");
            assert_eq!(
                der(&remote),
                str_field(e, "remote_htlc_signature"),
                "{name}"
            );
            assert_eq!(der(&local), str_field(e, "local_htlc_signature"), "{name}");
            htx.verify(
                secp,
                HtlcSigner::Remote,
                &remote,
                &f.keys.remote_htlc_pubkey,
            )
            .expect("verify");
            assert!(htx
                .verify(secp, HtlcSigner::Remote, &local, &f.keys.remote_htlc_pubkey)
                .is_err());
            let preimage = preimage_of(&f, &case, pos);
            let tx = htx
                .finalize(&local, &remote, Some(&preimage))
                .expect("finalize");
            assert_eq!(serialize_hex(&tx), str_field(e, "tx"), "{name}");
            htlc_txs_checked += 1;
        }
    }
    assert_eq!(htlc_txs_checked, 33);
}

#[test]
fn anchors_commitment_and_htlc_txs() {
    let base = load_vectors("bolt03-commitment-tx.json");
    let f = fixture(&base);
    let secp = &f.secp;
    let v = load_vectors("bolt03-commitment-tx-anchors.json");
    let tests = v["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), 9);
    let mut htlc_txs_checked = 0;
    for t in tests {
        let name = str_field(t, "Name");
        let case = Case {
            name,
            to_local_msat: u64_field(t, "LocalBalance"),
            to_remote_msat: u64_field(t, "RemoteBalance"),
            feerate: u64_field(t, "FeePerKw") as u32,
            dust_limit: Amount::from_sat(u64_field(t, "DustLimitSatoshis")),
            htlc_ids: htlc_ids(name, t["UseTestHtlcs"].as_bool().expect("bool")),
            channel_type: ChannelType::ANCHORS,
        };
        let (commitment, _) = build(&f, &case);
        let local_sig = commitment.sign(secp, &f.local_funding_key).expect("sign");
        let remote_sig = commitment.sign(secp, &f.remote_funding_key).expect("sign");
        assert_eq!(der(&remote_sig), str_field(t, "RemoteSigHex"), "{name}");
        let signed = commitment.finalize(&local_sig, &remote_sig);
        assert_eq!(
            serialize_hex(&signed),
            str_field(t, "ExpectedCommitmentTxHex"),
            "{name}"
        );

        let expected = t["HtlcDescs"].as_array().cloned().unwrap_or_default();
        let htlc_txs = commitment.htlc_txs();
        assert_eq!(htlc_txs.len(), expected.len(), "{name}");
        for (htx, e) in htlc_txs.iter().zip(&expected) {
            let vout = htx.tx.input[0].previous_output.vout;
            let OutputKind::Htlc(pos) = commitment.outputs[vout as usize].kind else {
                panic!("{name}: not an htlc output");
            };
            let remote = htx
                .sign(secp, HtlcSigner::Remote, &f.remote_htlc_key)
                .expect("sign");
            let local = htx
                .sign(secp, HtlcSigner::Local, &f.local_htlc_key)
                .expect("sign");
            assert_eq!(der(&remote), str_field(e, "RemoteSigHex"), "{name}");
            let preimage = preimage_of(&f, &case, pos);
            let tx = htx
                .finalize(&local, &remote, Some(&preimage))
                .expect("finalize");
            assert_eq!(
                serialize_hex(&tx),
                str_field(e, "ResolutionTxHex"),
                "{name}"
            );
            htlc_txs_checked += 1;
        }
    }
    assert_eq!(htlc_txs_checked, 15);
}
