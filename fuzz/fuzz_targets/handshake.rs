//! See [`tern_fuzz::proto_targets::handshake`].
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: tern_fuzz::write_seeds_from_env("handshake"),
    |data: &[u8]| tern_fuzz::proto_targets::handshake(data)
);
