#!/usr/bin/env bash
# The log-secret check (issue 17 §4), run by scripts/test.sh after the nextest run: every test
# binary logged at TRACE to target/test-logs/ (core/tests/common/trace.rs; spawned daemons too),
# and no line there may hold a test seed, its BIP39 words, a derived secret key or a
# per-commitment secret (core/tests/log_secrets.rs says what is searched). On success the logs
# are removed (the next run starts empty); on failure they stay for inspection.
#
# To see it fail: TERN_LOG_CANARY=1 cargo nextest run -p tern-core --test log_secrets, then this
# script (the canary test logged a seed on purpose).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
logs="$target/test-logs"
echo "test logs: $(find "$logs" -name '*.log' 2>/dev/null | wc -l) files, $(du -sh "$logs" 2>/dev/null | cut -f1)"
TERN_CHECK_LOGS=1 cargo nextest run --locked -p tern-core --features tern-core/dev-disconnect \
  --test log_secrets --no-capture -E 'test(=no_test_log_holds_a_secret)'
rm -rf "$logs"
