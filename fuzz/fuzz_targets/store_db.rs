//! See [`tern_fuzz::core_targets::store_db`].
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: tern_fuzz::write_seeds_from_env("store_db"),
    |data: &[u8]| tern_fuzz::core_targets::store_db(data)
);
