//! See [`tern_fuzz::proto_targets::tlv_stream`].
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: tern_fuzz::write_seeds_from_env("tlv_stream"),
    |data: &[u8]| tern_fuzz::proto_targets::tlv_stream(data)
);
