#!/usr/bin/env bash
# The hostile-peer tests (issue 17 §1), run by scripts/test.sh: a peer that is not Tern's code —
# pyln-proto, Core Lightning's Python BOLT 8 — and raw TCP sockets, driven by pytest from
# tests/hostile against a `tern daemon` on the devnet. Installs what is missing (a venv under
# $CARGO_TARGET_DIR with pyln-proto and pytest from PyPI), builds the `tern` and `tern-devnet`
# binaries, and ends with "N passed, N failed". The floods' daemon RSS figures are printed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

have() { command -v "$1" >/dev/null 2>&1; }
SUDO=""
if [ "$(id -u)" -ne 0 ] && have sudo; then SUDO="sudo"; fi
apt_install() {
  have apt-get || { echo "test-hostile.sh: cannot install $* (no apt-get)" >&2; return 1; }
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}
fail() { echo "hostile: $1"; echo "0 passed, 1 failed"; exit 1; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
out="$CARGO_TARGET_DIR/hostile"
venv="$CARGO_TARGET_DIR/hostile-venv"
mkdir -p "$out" && rm -f "$out/rss.txt" "$out/junit.xml"

echo "== build tern and tern-devnet"
cargo build --locked -p tern-harness -p tern-devnet --bins || fail "the binaries did not build"
export TERN_BIN="$CARGO_TARGET_DIR/debug/tern" TERN_DEVNET_BIN="$CARGO_TARGET_DIR/debug/tern-devnet"

echo "== python venv with pyln-proto and pytest"
have python3 || apt_install python3 || fail "no python3"
if ! [ -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pyln.proto.wire, pytest' 2>/dev/null; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    apt_install python3-venv || fail "no python3-venv"
    python3 -m venv "$venv" || fail "cannot create $venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check pyln-proto pytest \
    || fail "pip install pyln-proto pytest failed"
fi

echo "== pytest tests/hostile"
TERN_HOSTILE_OUT="$out" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/hostile \
  --junitxml="$out/junit.xml"
status=$?
[ -f "$out/rss.txt" ] && cat "$out/rss.txt"
"$venv/bin/python" - "$out/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 passed, 1 failed"); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get(k, 0)) for s in suites for k in ("failures", "errors", "skipped"))
print(f"{tests - bad} passed, {bad} failed")
PY
exit "$status"
