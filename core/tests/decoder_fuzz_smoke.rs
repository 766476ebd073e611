//! The `fuzz/` targets on stable, in every test run: this file compiles the fuzz crate's own
//! target bodies and seed makers (`fuzz/src/*.rs`), so that
//!
//! - every target replays its seeds (made from the golden records and BOLT vectors) and every
//!   crasher the fuzzer ever found (`fuzz/regressions/<target>/*.hex`, kept after the fix);
//! - the wire seeds reach every message decoder (listed: a new message type must be added);
//! - the same properties run as proptest properties (`*_property`, random bytes and mutated
//!   seeds): the fallback where `cargo fuzz` (nightly) cannot be had.
//!
//! `FUZZ_PROPTEST_FACTOR` multiplies each property's number of cases (default 1; scripts/fuzz.sh's
//! stable fallback sets it to FUZZ_SECONDS).

#[path = "../../fuzz/src/core_targets.rs"]
mod core_targets;
#[path = "../../fuzz/src/proto_targets.rs"]
mod proto_targets;
#[path = "../../fuzz/src/seeds.rs"]
mod seeds;

// This binary's TRACE log file, for the log-secret check (see common/trace.rs).
#[path = "common/trace.rs"]
mod trace;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use tern_proto::wire::Message;

type Target = fn(&[u8]);

/// Every fuzz target, by its cargo-fuzz name.
const TARGETS: &[(&str, Target)] = &[
    ("wire_message", proto_targets::wire_message),
    ("tlv_stream", proto_targets::tlv_stream),
    ("bigsize", proto_targets::bigsize),
    ("handshake", proto_targets::handshake),
    ("frames", proto_targets::frames),
    ("channel_record", proto_targets::channel_record),
    ("event_record", core_targets::event_record),
    ("chain_state", core_targets::chain_state),
    ("fee_cache", core_targets::fee_cache),
    ("store_db", core_targets::store_db),
];

fn seeds_of(target: &str) -> Vec<Vec<u8>> {
    match seeds::for_target(target) {
        Some(s) => s,
        None if target == "store_db" => core_targets::store_db_seeds(),
        None => panic!("no seeds for {target}"),
    }
}

fn target(name: &str) -> Target {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no target {name}"))
}

#[test]
fn every_fuzz_binary_is_replayed_here() {
    let manifest = std::fs::read_to_string(seeds::repo_root().join("fuzz/Cargo.toml"))
        .expect("fuzz/Cargo.toml");
    let mut bins: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|b| b.lines().find_map(|l| l.strip_prefix("name = ")))
        .map(|n| n.trim_matches('"'))
        .collect();
    bins.sort_unstable();
    let mut ours: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    ours.sort_unstable();
    assert_eq!(bins, ours);
}

#[test]
fn every_target_replays_its_seeds_and_kept_crashers() {
    for (name, run) in TARGETS {
        let seeds = seeds_of(name);
        assert!(seeds.len() >= 2, "{name} has {} seeds", seeds.len());
        for seed in &seeds {
            run(seed);
        }
        for (file, input) in seeds::regressions(name) {
            eprintln!("replaying fuzz/regressions/{name}/{file}");
            run(&input);
        }
    }
}

/// The wire seeds reach every message decoder: each known type has a seed that decodes to
/// it. The list is the decoder's, found by trying every type number; adding a message type
/// fails here until it is added below (and then its seed is grown automatically).
#[test]
fn wire_seeds_reach_every_message_decoder() {
    let known = seeds::known_message_types();
    assert_eq!(
        known,
        [
            1, 16, 17, 18, 19, 32, 33, 34, 35, 36, 38, 39, 74, 128, 130, 131, 132, 133, 134, 135,
            136, 256, 258, 259
        ]
        .to_vec(),
        "the message types the decoder knows"
    );
    let decoded: Vec<u16> = seeds::wire_messages()
        .iter()
        .filter_map(|s| Message::decode(s).ok())
        .map(|m| m.msg_type())
        .collect();
    for t in &known {
        assert!(decoded.contains(t), "no seed decodes as message type {t}");
    }
    // The update and close messages by name, as the issue lists them.
    for name in [
        "update_fee",
        "commitment_signed",
        "revoke_and_ack",
        "shutdown",
        "closing_signed",
        "update_add_htlc",
        "channel_reestablish",
        "open_channel",
        "accept_channel",
        "funding_created",
        "funding_signed",
        "channel_ready",
    ] {
        let t = Message::type_for_name(name).expect("a known name");
        assert!(decoded.contains(&t), "no seed for {name}");
    }
}

/// A seed with some bytes replaced, then cut or extended: most mutations keep enough structure
/// to reach past the first checks.
fn mutated(target: &str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds_of(target);
    (
        any::<Index>(),
        vec((any::<Index>(), any::<u8>()), 0..4),
        any::<Index>(),
        vec(any::<u8>(), 0..8),
    )
        .prop_map(move |(which, flips, cut, tail)| {
            let mut s = which.get(&seeds).clone();
            if !s.is_empty() {
                for (at, b) in flips {
                    let i = at.index(s.len());
                    s[i] = b;
                }
            }
            let n = cut.index(s.len() + 1).max(s.len() * 3 / 4);
            s.truncate(n);
            s.extend(tail);
            s
        })
}

fn input(target: &str) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![mutated(target), vec(any::<u8>(), 0..300)]
}

fn config(cases: u32) -> ProptestConfig {
    let factor: u32 = std::env::var("FUZZ_PROPTEST_FACTOR")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    ProptestConfig::with_cases(cases.saturating_mul(factor.max(1)))
}

macro_rules! properties {
    ($($test:ident: $target:literal, $cases:expr;)*) => {
        $(
            proptest! {
                #![proptest_config(config($cases))]
                #[test]
                fn $test(data in input($target)) {
                    target($target)(&data);
                }
            }
        )*
    };
}

properties! {
    wire_message_property: "wire_message", 2000;
    tlv_stream_property: "tlv_stream", 1000;
    bigsize_property: "bigsize", 1000;
    handshake_property: "handshake", 500;
    frames_property: "frames", 64;
    channel_record_property: "channel_record", 1000;
    event_record_property: "event_record", 1000;
    chain_state_property: "chain_state", 500;
    fee_cache_property: "fee_cache", 500;
    store_db_property: "store_db", 64;
}

/// Known message types first, so most inputs reach a payload decoder.
fn message_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(seeds::known_message_types()),
        vec(any::<u8>(), 0..400),
    )
        .prop_map(|(t, payload)| [t.to_be_bytes().as_slice(), payload.as_slice()].concat())
}

proptest! {
    #![proptest_config(config(2000))]

    /// Random payloads of known types (as before the fuzz crate grew seeds).
    #[test]
    fn wire_message_target(data in prop_oneof![message_bytes(), vec(any::<u8>(), 0..64)]) {
        proto_targets::wire_message(&data);
    }

    /// Random acts in both roles and random ciphertext, as before.
    #[test]
    fn transport_target(selector in any::<u8>(), data in vec(any::<u8>(), 0..300)) {
        let input = [&[selector][..], &data].concat();
        proto_targets::handshake(&input);
        proto_targets::frames(&input);
    }
}
