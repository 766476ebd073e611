//! Tern's fuzz targets (issue 17 §3): the bodies are plain functions over bytes, so that the
//! cargo-fuzz binaries (`fuzz_targets/`) and the stable replay and property tests
//! (`core/tests/decoder_fuzz_smoke.rs`, which compiles these same files) check the same thing.

#[cfg(feature = "core")]
pub mod core_targets;
pub mod proto_targets;
pub mod seeds;

/// Writes `target`'s seeds into the directory named by `TERN_FUZZ_SEEDS` (if set), before
/// libFuzzer reads its corpus: scripts/fuzz.sh points it at the target's corpus directory, so
/// every run starts from the repository's current fixtures and vectors.
pub fn write_seeds_from_env(target: &str) {
    let Some(dir) = std::env::var_os("TERN_FUZZ_SEEDS") else {
        return;
    };
    let seeds = match seeds::for_target(target) {
        Some(s) => s,
        #[cfg(feature = "core")]
        None if target == "store_db" => core_targets::store_db_seeds(),
        None => panic!("no seeds for {target}"),
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("create the seed directory");
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:04}")), seed).expect("write a seed");
    }
}
