//! What libsecp256k1's `lowmemory` build (tern-ffi's `lowmemory` feature, on in the mobile
//! builds) costs in speed: the operations the node does per channel update, timed with the
//! default tables and with the small ones. Compare the two runs' lines:
//!
//! ```text
//! cargo run --release -p tern-proto --example secp_cost
//! cargo run --release -p tern-proto --example secp_cost --features bitcoin/secp-lowmemory
//! ```
//!
//! An example, not the library: it reads the clock, which tern-proto itself never does.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::Instant;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{ecdh::SharedSecret, Message, PublicKey, Scalar, Secp256k1, SecretKey};

const ROUNDS: u32 = 2_000;

fn time(name: &str, mut op: impl FnMut(u32)) {
    for i in 0..ROUNDS / 10 {
        op(i);
    }
    let start = Instant::now();
    for i in 0..ROUNDS {
        op(i);
    }
    let per_op = start.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
    println!("{name:<28} {per_op:8.1} µs");
}

fn key(i: u32) -> SecretKey {
    let digest = sha256::Hash::hash(&i.to_be_bytes());
    SecretKey::from_slice(digest.as_byte_array()).expect("a hash is a valid key")
}

fn main() {
    let secp = Secp256k1::new();
    let keys: Vec<SecretKey> = (0..64).map(key).collect();
    let points: Vec<PublicKey> = keys.iter().map(|k| k.public_key(&secp)).collect();
    let msg = |i: u32| Message::from_digest(sha256::Hash::hash(&i.to_le_bytes()).to_byte_array());
    let sigs: Vec<_> = (0..64u32)
        .map(|i| secp.sign_ecdsa(&msg(i), &keys[i as usize]))
        .collect();
    let tweak = Scalar::from_be_bytes(key(99).secret_bytes()).expect("a key is a scalar");
    let at = |i: u32| (i % 64) as usize;

    time("ecdsa sign", |i| {
        black_box(secp.sign_ecdsa(&msg(i), &keys[at(i)]));
    });
    time("ecdsa verify", |i| {
        let j = at(i) as u32;
        let ok = secp.verify_ecdsa(&msg(j), &sigs[at(i)], &points[at(i)]);
        assert!(ok.is_ok());
    });
    time("pubkey from secret", |i| {
        black_box(PublicKey::from_secret_key(&secp, &keys[at(i)]));
    });
    time("pubkey tweak add (BOLT 3)", |i| {
        black_box(points[at(i)].add_exp_tweak(&secp, &tweak).expect("tweak"));
    });
    time("ecdh (BOLT 8)", |i| {
        black_box(SharedSecret::new(&points[at(i)], &keys[at(i + 1)]));
    });
}
