#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder of bytes from outside (issue 17 §3): the cargo-fuzz
# targets of fuzz/ (wire messages, TLV streams, BigSize, BOLT 8 handshake acts and frames, the
# channel record, events, chain state, fee cache, a whole SQLite store), each run for a bounded
# time. Installs what it needs (a minimal nightly toolchain, cargo-fuzz) and, only where that
# fails, runs the same targets as proptest properties on stable instead, and says so.
#
#   FUZZ_SECONDS=10 scripts/fuzz.sh            # CI: 10 s per target (the default)
#   FUZZ_SECONDS=600 scripts/fuzz.sh           # a long run
#   FUZZ_TARGETS="wire_message frames" scripts/fuzz.sh   # only these (tern-proto's alone
#                                                       # build in a third of the time)
#
# Each corpus starts from seeds the targets write from the repo's fixtures and BOLT vectors
# (TERN_FUZZ_SEEDS), in fuzz/corpus/<target> (kept between runs, ignored by git). A crash
# fails the run and prints the input as hex: fix the decoder, then keep the input as
# fuzz/regressions/<target>/<name>.hex (core/tests/decoder_fuzz_smoke.rs replays it on stable).
# Ends with a table: target, executions, corpus size, outcome; exit status non-zero on a crash.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

# shellcheck source=/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_INCREMENTAL=0
seconds="${FUZZ_SECONDS:-10}"
all_targets="wire_message tlv_stream bigsize handshake frames channel_record event_record chain_state fee_cache store_db"
targets="${FUZZ_TARGETS:-$all_targets}"

stable_fallback() {
  echo "== fuzz: $1; running the targets as proptest properties on stable instead (not coverage-guided)"
  FUZZ_PROPTEST_FACTOR="$seconds" cargo nextest run -p tern-core --test decoder_fuzz_smoke --locked \
    -E 'test(/_property$/) | test(every_target_replays_its_seeds_and_kept_crashers)'
}

t0=$SECONDS
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "== fuzz: installing a minimal nightly toolchain"
  rustup toolchain install nightly --profile minimal || { stable_fallback "no nightly toolchain"; exit; }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked || { stable_fallback "cargo-fuzz cannot be installed"; exit; }
fi
t_tools=$((SECONDS - t0))

# One build of every target: no sanitizer (the decoders are safe Rust; libFuzzer's coverage and
# Rust's own panics are what finds the bugs), debug assertions on (an overflow is a crash).
# The record targets of tern-core need its whole tree (BDK, rusqlite, tokio: ~3x the build);
# when none is asked for, only tern-proto's is built.
features=()
case " $targets " in
  *" event_record "* | *" chain_state "* | *" fee_cache "* | *" store_db "*) ;;
  *) features=(--no-default-features) ;;
esac
echo "== fuzz: building the targets (cargo +nightly fuzz build -s none -a ${features[*]})"
(cd fuzz && CARGO_TARGET_DIR=target cargo +nightly fuzz build -s none -a "${features[@]}") ||
  { stable_fallback "the fuzz build failed"; exit; }
t_build=$((SECONDS - t0 - t_tools))
host="$(rustup run nightly rustc -vV | sed -n 's/^host: //p')"
bin_dir="fuzz/target/$host/release"

failed=()
rows=()
for t in $targets; do
  corpus="fuzz/corpus/$t"
  rm -rf "fuzz/artifacts/$t"
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  log="$(mktemp)"
  echo "== fuzz $t (${seconds} s)"
  TERN_FUZZ_SEEDS="$corpus" "$bin_dir/$t" "$corpus" -max_total_time="$seconds" \
    -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1
  status=$?
  execs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)"
  size="$(find "$corpus" -type f | wc -l)"
  if [ "$status" -eq 0 ]; then
    rows+=("$t ${execs:-?} $size ok")
  else
    failed+=("$t")
    rows+=("$t ${execs:-?} $size CRASH")
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -n 20
    for a in "fuzz/artifacts/$t"/*; do
      [ -f "$a" ] && echo "crasher $a: $(od -An -v -tx1 "$a" | tr -d ' \n')"
    done
  fi
  rm -f "$log"
done

echo "== fuzz summary (${seconds} s per target; tools ${t_tools} s, build ${t_build} s, total $((SECONDS - t0)) s)"
printf '%-16s %12s %8s %s\n' target executions corpus outcome
for r in "${rows[@]}"; do
  # shellcheck disable=SC2086
  printf '%-16s %12s %8s %s\n' $r
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}"
  exit 1
fi
