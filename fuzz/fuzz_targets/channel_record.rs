//! See [`tern_fuzz::proto_targets::channel_record`].
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: tern_fuzz::write_seeds_from_env("channel_record"),
    |data: &[u8]| tern_fuzz::proto_targets::channel_record(data)
);
