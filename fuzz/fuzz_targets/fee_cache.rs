//! See [`tern_fuzz::core_targets::fee_cache`].
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: tern_fuzz::write_seeds_from_env("fee_cache"),
    |data: &[u8]| tern_fuzz::core_targets::fee_cache(data)
);
