//! BOLT 8 Appendix A test vectors, loaded from `tests/vectors/bolt08-transport.json`.

// This binary's TRACE log file, for the log-secret check (see common/trace.rs).
#[path = "common/trace.rs"]
mod trace;

use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::secp256k1::{PublicKey, SecretKey};
use serde_json::Value;
use tern_core::proto::transport::{Handshake, HandshakeError, HandshakeStep, Transport};

fn load() -> Value {
    let path = format!(
        "{}/tests/vectors/bolt08-transport.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no string {key}"))
}

fn hex(s: &str) -> Vec<u8> {
    Vec::<u8>::from_hex(s).unwrap_or_else(|e| panic!("bad hex {s}: {e}"))
}

fn key32(s: &str) -> [u8; 32] {
    hex(s).try_into().expect("32 bytes")
}

fn secret(v: &Value, key: &str) -> SecretKey {
    SecretKey::from_slice(&hex(s(v, key))).expect("valid secret")
}

fn steps(v: &Value) -> &Vec<Value> {
    v["steps"].as_array().expect("steps")
}

/// The spec's error label for a handshake error, e.g. `ACT2_BAD_VERSION 1`.
fn label(e: &HandshakeError) -> String {
    match e {
        HandshakeError::ReadFailed { act, .. } => format!("ACT{act}_READ_FAILED"),
        HandshakeError::BadVersion { act, version } if *act == 1 => {
            // The spec labels act one's bad version without the number.
            let _ = version;
            "ACT1_BAD_VERSION".to_string()
        }
        HandshakeError::BadVersion { act, version } => format!("ACT{act}_BAD_VERSION {version}"),
        HandshakeError::BadPubkey { act } => format!("ACT{act}_BAD_PUBKEY"),
        HandshakeError::BadTag { act } => format!("ACT{act}_BAD_TAG"),
        HandshakeError::BadCiphertext => "ACT3_BAD_CIPHERTEXT".to_string(),
    }
}

/// Checks the session keys by encrypting with them: `Transport::new(ck, sk, rk)` built from the
/// expected keys must produce the same ciphertext as the handshake's transport.
fn assert_keys(transport: &mut Transport, sk: &str, rk: &str, ck_hint: [u8; 32]) {
    let mut expected = Transport::new(ck_hint, key32(sk), key32(rk));
    let msg = b"key check";
    assert_eq!(
        transport.encrypt_message(msg).expect("small message"),
        expected.encrypt_message(msg).expect("small message"),
        "sending key differs"
    );
    // The receiving key: what `expected`'s peer would send must decrypt.
    let mut peer = Transport::new(ck_hint, key32(rk), key32(sk));
    let ct = peer.encrypt_message(msg).expect("small message");
    transport.decryptor.feed(&ct);
    assert_eq!(
        transport
            .decryptor
            .next_message()
            .expect("receiving key matches"),
        Some(msg.to_vec())
    );
}

#[test]
fn initiator_vectors() {
    let v = load();
    let ck = key32(s(&v["message_encryption"], "ck"));
    let cases = v["initiator"].as_array().expect("initiator cases");
    assert_eq!(cases.len(), 5);
    for case in cases {
        let name = s(case, "name");
        let rs = PublicKey::from_slice(&hex(s(case, "rs_pub"))).expect("rs");
        let (hs, act1) = Handshake::initiator(secret(case, "ls_priv"), rs, secret(case, "e_priv"));
        let st = steps(case);
        assert_eq!(
            act1.to_lower_hex_string(),
            s(&st[0], "output"),
            "{name}: act one"
        );
        let act2 = hex(s(&st[1], "input"));
        match hs.process(&act2) {
            Ok(HandshakeStep::Done {
                mut transport,
                remote_static,
                send,
            }) => {
                assert!(
                    st[1].get("output_error").is_none(),
                    "{name}: expected failure"
                );
                assert_eq!(remote_static, rs);
                assert_eq!(
                    send.to_lower_hex_string(),
                    s(&st[2], "output"),
                    "{name}: act three"
                );
                let keys = &case["final_keys"];
                assert_keys(&mut transport, s(keys, "sk"), s(keys, "rk"), ck);
            }
            Ok(HandshakeStep::Continue { .. }) => panic!("{name}: initiator finishes at act two"),
            Err(e) => assert_eq!(label(&e), s(&st[1], "output_error"), "{name}"),
        }
    }
}

#[test]
fn responder_vectors() {
    let v = load();
    let ck = key32(s(&v["message_encryption"], "ck"));
    let cases = v["responder"].as_array().expect("responder cases");
    assert_eq!(cases.len(), 10);
    let initiator_pub = PublicKey::from_slice(&hex(s(&v["initiator"][0], "ls_pub"))).expect("pub");
    for case in cases {
        let name = s(case, "name");
        let st = steps(case);
        let hs = Handshake::responder(secret(case, "ls_priv"), secret(case, "e_priv"));
        let act1 = hex(s(&st[0], "input"));
        let next = match hs.process(&act1) {
            Ok(HandshakeStep::Continue { next, send }) => {
                assert_eq!(
                    send.to_lower_hex_string(),
                    s(&st[1], "output"),
                    "{name}: act two"
                );
                next
            }
            Ok(HandshakeStep::Done { .. }) => panic!("{name}: responder continues after act one"),
            Err(e) => {
                assert_eq!(label(&e), s(&st[0], "output_error"), "{name}");
                continue;
            }
        };
        assert!(
            st[0].get("output_error").is_none(),
            "{name}: act one should fail"
        );
        let act3 = hex(s(&st[2], "input"));
        match next.process(&act3) {
            Ok(HandshakeStep::Done {
                mut transport,
                remote_static,
                send,
            }) => {
                assert!(
                    st[2].get("output_error").is_none(),
                    "{name}: expected failure"
                );
                assert!(send.is_empty());
                assert_eq!(remote_static, initiator_pub, "{name}: initiator's node id");
                let keys = &case["final_keys"];
                assert_keys(&mut transport, s(keys, "sk"), s(keys, "rk"), ck);
            }
            Ok(HandshakeStep::Continue { .. }) => panic!("{name}: responder finishes at act three"),
            Err(e) => assert_eq!(label(&e), s(&st[2], "output_error"), "{name}"),
        }
    }
}

#[test]
fn message_encryption_vectors() {
    let v = load();
    let m = &v["message_encryption"];
    let mut t = Transport::new(key32(s(m, "ck")), key32(s(m, "sk")), key32(s(m, "rk")));
    let plaintext = hex(s(m, "plaintext_hex"));
    let outputs = m["outputs"].as_array().expect("outputs");
    assert_eq!(outputs.len(), 6);
    let last = outputs
        .iter()
        .map(|o| o["index"].as_u64().expect("index"))
        .max()
        .expect("non-empty");
    let mut checked = 0;
    // The receiver, keyed the other way round, must decrypt every message.
    let mut receiver = Transport::new(key32(s(m, "ck")), key32(s(m, "rk")), key32(s(m, "sk")));
    for i in 0..=last {
        let ct = t.encrypt_message(&plaintext).expect("small message");
        if let Some(o) = outputs.iter().find(|o| o["index"].as_u64() == Some(i)) {
            assert_eq!(ct.to_lower_hex_string(), s(o, "ciphertext"), "message {i}");
            checked += 1;
        }
        receiver.decryptor.feed(&ct);
        assert_eq!(
            receiver.decryptor.next_message().expect("authentic"),
            Some(plaintext.clone()),
            "message {i}"
        );
    }
    assert_eq!(checked, 6);
}

#[test]
fn handshake_between_two_state_machines() {
    let a = SecretKey::from_slice(&[0x11; 32]).expect("key");
    let b = SecretKey::from_slice(&[0x21; 32]).expect("key");
    let secp = bitcoin::secp256k1::Secp256k1::signing_only();
    let (a_pub, b_pub) = (
        PublicKey::from_secret_key(&secp, &a),
        PublicKey::from_secret_key(&secp, &b),
    );
    let (init, act1) =
        Handshake::initiator(a, b_pub, SecretKey::from_slice(&[0x12; 32]).expect("key"));
    let resp = Handshake::responder(b, SecretKey::from_slice(&[0x22; 32]).expect("key"));
    assert_eq!(resp.expected_len(), act1.len());
    let HandshakeStep::Continue { next, send: act2 } = resp.process(&act1).expect("act one") else {
        panic!("responder continues")
    };
    assert_eq!(init.expected_len(), act2.len());
    let HandshakeStep::Done {
        transport: mut ta,
        remote_static: rb,
        send: act3,
    } = init.process(&act2).expect("act two")
    else {
        panic!("initiator done")
    };
    assert_eq!(next.expected_len(), act3.len());
    let HandshakeStep::Done {
        transport: mut tb,
        remote_static: ra,
        ..
    } = next.process(&act3).expect("act three")
    else {
        panic!("responder done")
    };
    assert_eq!((ra, rb), (a_pub, b_pub));
    let ct = ta.encrypt_message(b"ping").expect("small");
    tb.decryptor.feed(&ct);
    assert_eq!(tb.decryptor.next_message(), Ok(Some(b"ping".to_vec())));
}
