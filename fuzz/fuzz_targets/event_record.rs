//! See [`tern_fuzz::core_targets::event_record`].
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: tern_fuzz::write_seeds_from_env("event_record"),
    |data: &[u8]| tern_fuzz::core_targets::event_record(data)
);
