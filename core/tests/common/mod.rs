//! Shared helpers for integration tests: vector loading and hex parsing, driving nodes, and
//! the devnet's chain as an in-process chain source.
#![allow(dead_code)]

pub mod chain;
pub mod commitment;
pub mod files;
#[cfg(feature = "dev-disconnect")]
pub mod memory;
pub mod node;
pub mod trace;

use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::secp256k1::{PublicKey, SecretKey};
use serde_json::Value;

/// Loads `core/tests/vectors/<name>`.
pub fn load_vectors(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

pub fn bytes(hex: &str) -> Vec<u8> {
    Vec::<u8>::from_hex(hex).unwrap_or_else(|e| panic!("bad hex {hex}: {e}"))
}

pub fn bytes32(hex: &str) -> [u8; 32] {
    let b = bytes(hex);
    b[..32].try_into().expect("32 bytes")
}

pub fn to_hex(b: &[u8]) -> String {
    b.to_lower_hex_string()
}

/// A secret key; accepts the spec's 33-byte form with a trailing 01 ("compressed").
pub fn secret(hex: &str) -> SecretKey {
    let b = bytes(hex);
    assert!(
        b.len() == 32 || (b.len() == 33 && b[32] == 1),
        "bad key {hex}"
    );
    SecretKey::from_slice(&b[..32]).expect("valid secret key")
}

pub fn pubkey(hex: &str) -> PublicKey {
    PublicKey::from_slice(&bytes(hex)).expect("valid pubkey")
}

pub fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string field {key}"))
}

pub fn u64_field(v: &Value, key: &str) -> u64 {
    match &v[key] {
        Value::Number(n) => n.as_u64().expect("u64"),
        Value::String(s) => s.parse().expect("numeric string"),
        _ => panic!("missing numeric field {key}"),
    }
}
