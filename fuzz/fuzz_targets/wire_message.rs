//! See [`tern_fuzz::proto_targets::wire_message`].
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: tern_fuzz::write_seeds_from_env("wire_message"),
    |data: &[u8]| tern_fuzz::proto_targets::wire_message(data)
);
