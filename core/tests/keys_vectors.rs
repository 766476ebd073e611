//! BOLT 3 Appendix D (per-commitment secrets) and Appendix E (key derivation) vectors, loaded
//! from `tests/vectors/*.json`.

mod common;

use bitcoin::secp256k1::{PublicKey, Secp256k1};
use common::*;
use tern_core::proto::keys::{
    build_commitment_secret, derive_private_key, derive_public_key, derive_revocation_private_key,
    derive_revocation_public_key, per_commitment_point, CounterpartyCommitmentSecrets,
    ShachainError,
};

#[test]
fn per_commitment_secret_generation() {
    let v = load_vectors("bolt03-per-commitment-secrets.json");
    let cases = v["generation"].as_array().expect("generation");
    assert_eq!(cases.len(), 5);
    for case in cases {
        let seed = bytes32(str_field(case, "seed"));
        let index = u64_field(case, "I");
        assert_eq!(
            to_hex(&build_commitment_secret(&seed, index)),
            str_field(case, "output"),
            "{}",
            str_field(case, "name")
        );
    }
}

#[test]
fn per_commitment_secret_storage() {
    let v = load_vectors("bolt03-per-commitment-secrets.json");
    let cases = v["storage"].as_array().expect("storage");
    assert_eq!(cases.len(), 9);
    let mut steps_run = 0;
    for case in cases {
        let name = str_field(case, "name");
        let mut store = CounterpartyCommitmentSecrets::new();
        let mut accepted: Vec<(u64, [u8; 32])> = Vec::new();
        for step in case["steps"].as_array().expect("steps") {
            steps_run += 1;
            let index = u64_field(step, "I");
            let secret = bytes32(str_field(step, "secret"));
            let result = store.provide_secret(index, secret);
            match str_field(step, "output") {
                "OK" => {
                    result.unwrap_or_else(|e| panic!("{name}: index {index} rejected: {e}"));
                    accepted.push((index, secret));
                    for (i, s) in &accepted {
                        assert_eq!(store.get_secret(*i), Some(*s), "{name}: rederive {i}");
                    }
                }
                "ERROR" => {
                    let err = result.expect_err(name);
                    assert!(
                        matches!(err, ShachainError::InconsistentSecret { index: i, .. } if i == index),
                        "{name}: {err:?}"
                    );
                }
                other => panic!("unknown output {other}"),
            }
        }
    }
    assert_eq!(steps_run, 56);
}

#[test]
fn key_derivation() {
    let secp = Secp256k1::new();
    let v = load_vectors("bolt03-key-derivation.json");
    let inputs = &v["inputs"];
    let base_secret = secret(str_field(inputs, "base_secret"));
    let pcs = secret(str_field(inputs, "per_commitment_secret"));
    let base_point = pubkey(str_field(inputs, "base_point"));
    let pcp = pubkey(str_field(inputs, "per_commitment_point"));
    // The inputs are consistent with each other.
    assert_eq!(PublicKey::from_secret_key(&secp, &base_secret), base_point);
    assert_eq!(
        per_commitment_point(&secp, &pcs.secret_bytes()).expect("point"),
        pcp
    );
    let cases = v["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 4);
    for case in cases {
        let expected = str_field(case, "expected");
        let got = match str_field(case, "output_field") {
            "localpubkey" => to_hex(
                &derive_public_key(&secp, &base_point, &pcp)
                    .expect("derive")
                    .serialize(),
            ),
            "localprivkey" => to_hex(
                &derive_private_key(&secp, &base_secret, &pcp)
                    .expect("derive")
                    .secret_bytes(),
            ),
            "revocationpubkey" => to_hex(
                &derive_revocation_public_key(&secp, &base_point, &pcp)
                    .expect("derive")
                    .serialize(),
            ),
            "revocationprivkey" => to_hex(
                &derive_revocation_private_key(&secp, &base_secret, &pcs)
                    .expect("derive")
                    .secret_bytes(),
            ),
            other => panic!("unknown case {other}"),
        };
        assert_eq!(got, expected, "{}", str_field(case, "name"));
    }
}
