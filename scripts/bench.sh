#!/usr/bin/env bash
# Tern beside ldk-node 0.7.1 on one devnet, in one run (issue 16): builds tern-bench in release
# (ldk-node included: minutes on 2 cores), runs it, and writes docs/BENCHMARKS.md. Not part of CI;
# the counts it relies on (requests, fsyncs, dials per wake) are asserted by ordinary tests that
# are (core/tests/node_wake*.rs, tests/harness/tests/wake.rs).
# Needs strace for the fsync column (installed here if missing; "n/a" where ptrace is refused).
# BENCH_SIZE=1 also builds both stripped cdylibs with the same size profile (Tern's
# release-mobile: opt-level z, fat LTO, one codegen unit, panic=abort) and adds their sizes:
# ldk-node's in a scratch crate outside the workspace (its uniffi 0.28 feature is not in
# Tern's lock file); tens of minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
have() { command -v "$1" >/dev/null 2>&1; }
if ! have strace && have apt-get; then
  SUDO=""; if [ "$(id -u)" -ne 0 ] && have sudo; then SUDO="sudo"; fi
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq strace; }; then
    echo "bench.sh: no strace: the fsync column will say n/a" >&2
  fi
fi
cargo build --locked --release -p tern-bench
"${CARGO_TARGET_DIR:-target}/release/tern-bench" run docs/BENCHMARKS.md

if [ "${BENCH_SIZE:-0}" = 1 ]; then
  target="${CARGO_TARGET_DIR:-$PWD/target}"
  # Tern as scripts/size.sh builds what ships (libsecp256k1's small tables, RELR relocations).
  relr="-C link-arg=-Wl,-z,pack-relative-relocs"
  # shellcheck disable=SC2086
  cargo rustc --locked -p tern-ffi --lib --profile release-mobile --features lowmemory -- $relr
  mkdir -p "$target/size"
  strip -o "$target/size/libtern_ffi-bench.so" "$target/release-mobile/libtern_ffi.so"
  scratch="$target/bench-ldk-size"
  mkdir -p "$scratch/src"
  cat >"$scratch/Cargo.toml" <<'TOML'
# Its own workspace: the scratch dir is under Tern's (target/), which would claim it.
[workspace]
[package]
name = "ldk-size"
version = "0.0.0"
edition = "2021"
[lib]
crate-type = ["cdylib"]
path = "src/lib.rs"
[dependencies]
ldk-node = { version = "=0.7.1", features = ["uniffi"] }
[profile.release-mobile]
inherits = "release"
opt-level = "z"
lto = "fat"
codegen-units = 1
panic = "abort"
TOML
  # The whole of ldk-node's exported API in the library (its own uniffi scaffolding).
  echo 'pub use ldk_node::*;' >"$scratch/src/lib.rs"
  # ldk-node with the same profile and link flags (its own secp256k1 features).
  # shellcheck disable=SC2086
  (cd "$scratch" && CARGO_TARGET_DIR="$scratch/target" cargo rustc --lib --profile release-mobile -- $relr)
  strip -o "$scratch/libldk_size.so" "$scratch/target/release-mobile/libldk_size.so"
  t=$(stat -c %s "$target/size/libtern_ffi-bench.so"); l=$(stat -c %s "$scratch/libldk_size.so")
  printf '\n## Stripped cdylib, same size profile (x86_64)\n\n| Tern (tern-ffi) | ldk-node (uniffi) | ratio |\n|---|---|---|\n| %s bytes | %s bytes | %s |\n' \
    "$t" "$l" "$(awk "BEGIN{printf \"%.2f×\", $l/$t}")" >>docs/BENCHMARKS.md
fi
