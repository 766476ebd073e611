//! See [`tern_fuzz::proto_targets::bigsize`].
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: tern_fuzz::write_seeds_from_env("bigsize"),
    |data: &[u8]| tern_fuzz::proto_targets::bigsize(data)
);
