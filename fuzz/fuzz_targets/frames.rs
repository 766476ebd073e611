//! See [`tern_fuzz::proto_targets::frames`].
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: tern_fuzz::write_seeds_from_env("frames"),
    |data: &[u8]| tern_fuzz::proto_targets::frames(data)
);
