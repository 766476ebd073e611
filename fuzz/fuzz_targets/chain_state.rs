//! See [`tern_fuzz::core_targets::chain_state`].
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: tern_fuzz::write_seeds_from_env("chain_state"),
    |data: &[u8]| tern_fuzz::core_targets::chain_state(data)
);
