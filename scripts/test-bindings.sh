#!/usr/bin/env bash
# The language bindings' tests (issue 15), run by scripts/test.sh: builds libtern_ffi.so and the
# tern-devnet binary, generates the bindings with ffi/bindgen (a crate outside the workspace),
# and runs each language's suite against real nodes on the devnet. Each suite prints
# "<language>: N passed, N failed"; the last line sums them as "N passed, N failed".
# Installs what is missing; under CI=true a toolchain that cannot be had is a failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

have() { command -v "$1" >/dev/null 2>&1; }
SUDO=""
if [ "$(id -u)" -ne 0 ] && have sudo; then SUDO="sudo"; fi
apt_updated=""
apt_install() {
  have apt-get || { echo "test-bindings.sh: cannot install $* (no apt-get)" >&2; return 1; }
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
out="$CARGO_TARGET_DIR/bindings"
passed=0
failed=0
count() { # "<lang>: N passed, N failed" lines from a log
  local p f
  p=$(sed -nE 's/^[a-z]+: ([0-9]+) passed, ([0-9]+) failed$/\1/p' "$1" | tail -n 1)
  f=$(sed -nE 's/^[a-z]+: ([0-9]+) passed, ([0-9]+) failed$/\2/p' "$1" | tail -n 1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1}))
}

echo "== build libtern_ffi, tern-devnet and uniffi-bindgen"
if ! cargo build --locked -p tern-ffi -p tern-devnet \
  || ! cargo build --locked --manifest-path ffi/bindgen/Cargo.toml; then
  echo "bindings: 0 passed, 1 failed"; echo "0 passed, 1 failed"; exit 1
fi
lib="$CARGO_TARGET_DIR/debug/libtern_ffi.so"
bindgen="$CARGO_TARGET_DIR/debug/uniffi-bindgen"
export TERN_DEVNET_BIN="$CARGO_TARGET_DIR/debug/tern-devnet"

# --- Python ---------------------------------------------------------------------------------
echo "== python bindings"
pylog="$(mktemp)"
python_suite() {
  rm -rf "$out/python" && mkdir -p "$out/python"
  # ffi/uniffi.toml (the crate's own) names the packages and modules.
  "$bindgen" generate --library "$lib" --language python --no-format \
    --out-dir "$out/python" || return 1
  cp "$lib" "$out/python/"
  have python3 || apt_install python3 || return 1
  if ! python3 -c 'import pytest' 2>/dev/null; then
    python3 -m pip install -q pytest 2>/dev/null || apt_install python3-pytest || return 1
  fi
  PYTHONPATH="$out/python:bindings/python" python3 -m pytest -q -p no:cacheprovider bindings/python/tests \
    --junitxml="$out/python/junit.xml"
  local status=$?
  python3 - "$out/python/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("python: 0 passed, 1 failed"); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(f"python: {tests - bad - skipped} passed, {bad + skipped} failed")
PY
  return $status
}
python_suite 2>&1 | tee "$pylog"
grep -qE '^python: [0-9]+ passed' "$pylog" || echo "python: 0 passed, 1 failed" >>"$pylog"
count "$pylog"
rm -f "$pylog"

# --- Kotlin (JVM) -----------------------------------------------------------------------------
# Built and tested with Maven (bindings/kotlin/pom.xml: kotlin-maven-plugin, JNA, coroutines and
# JUnit from Maven Central). Where Maven cannot be had, the recipe proven without Central is the
# fallback: kotlinc from npm, JNA / JUnit 4 / hamcrest from Debian.
echo "== kotlin bindings"
KOTLIN_VERSION=2.4.20
khome="$CARGO_TARGET_DIR/tools/kotlin-compiler-$KOTLIN_VERSION"
klog="$(mktemp)"
kotlin_maven() {
  local kt="$1" mlog="$1/maven.log"
  (cd bindings/kotlin && mvn -B -q -Dstyle.color=never -Dtern.generated="$kt/src" \
    -Dtern.lib.dir="$(dirname "$lib")" verify 2>&1) | tee "$mlog"
  local status=${PIPESTATUS[0]}
  echo
  local reports="bindings/kotlin/target/surefire-reports"
  python3 - "$reports" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
tests = bad = 0
for f in glob.glob(sys.argv[1] + "/TEST-*.xml"):
    s = ET.parse(f).getroot()
    tests += int(s.get("tests", 0))
    bad += sum(int(s.get(k, 0)) for k in ("failures", "errors", "skipped"))
if tests:
    print(f"kotlin: {tests - bad} passed, {bad} failed")
PY
  return "$status"
}
kotlin_kotlinc() {
  local kt="$1" jars=/usr/share/java
  if ! [ -f $jars/jna.jar ] || ! [ -f $jars/junit4.jar ] || ! [ -f $jars/hamcrest.jar ]; then
    apt_install libjna-java junit4 libhamcrest-java || return 1
  fi
  if ! [ -x "$khome/bin/kotlinc-jvm" ]; then
    have npm || apt_install npm || return 1
    local dl; dl="$(mktemp -d)"
    (cd "$dl" && npm pack --silent "kotlin-compiler@$KOTLIN_VERSION" >/dev/null) || return 1
    mkdir -p "$khome" && tar xzf "$dl/kotlin-compiler-$KOTLIN_VERSION.tgz" -C "$khome" --strip-components=1
    rm -rf "$dl"
  fi
  local klib="$khome/lib"
  local cp="$jars/jna.jar:$klib/kotlinx-coroutines-core-jvm.jar"
  "$khome/bin/kotlinc-jvm" -nowarn -cp "$cp" "$kt/src" bindings/kotlin/src/main/kotlin \
    -d "$kt/tern.jar" || return 1
  local tcp="$kt/tern.jar:$cp:$klib/kotlin-test.jar:$klib/kotlin-test-junit.jar:$jars/junit4.jar"
  "$khome/bin/kotlinc-jvm" -cp "$tcp" bindings/kotlin/src/test/kotlin -d "$kt/tests.jar" || return 1
  java -Djna.library.path="$(dirname "$lib")" \
    -cp "$kt/tests.jar:$tcp:$klib/kotlin-stdlib.jar:$jars/hamcrest.jar" \
    io.github.ternln.tern.test.RunTestsKt
}
kotlin_suite() {
  local kt="$out/kotlin"
  rm -rf "$kt" bindings/kotlin/target && mkdir -p "$kt"
  "$bindgen" generate --library "$lib" --language kotlin --no-format --out-dir "$kt/src" || return 1
  have java || apt_install openjdk-17-jdk-headless || return 1
  have mvn || apt_install maven || true
  if have mvn && [ -z "${TERN_KOTLIN_NO_MAVEN:-}" ]; then
    kotlin_maven "$kt"
  else
    echo "kotlin: Maven unavailable, the kotlinc recipe instead"
    kotlin_kotlinc "$kt"
  fi
}
kotlin_suite 2>&1 | tee "$klog"
grep -qE '^kotlin: [0-9]+ passed' "$klog" || echo "kotlin: 0 passed, 1 failed" >>"$klog"
count "$klog"
rm -f "$klog"

# --- Swift (Linux) ----------------------------------------------------------------------------
# Swift 6.0.3 from Debian trixie in a cached chroot (scripts/swift-linux.sh; needs root). The
# package is assembled under target/ from bindings/swift and the generated sources.
echo "== swift bindings"
slog="$(mktemp)"
swift_suite() {
  [ "$(id -u)" = 0 ] || { echo "swift: needs root for its chroot (scripts/swift-linux.sh)"; return 1; }
  local pkg="$out/swift"
  rm -rf "$pkg" && mkdir -p "$pkg" && cp -r bindings/swift/. "$pkg/"
  "$bindgen" generate --library "$lib" --language swift --no-format --out-dir "$pkg/gen" || return 1
  mv "$pkg/gen/Tern.swift" "$pkg/Sources/Tern/" && mv "$pkg/gen/TernFFI.h" "$pkg/Sources/TernFFI/"
  rm -rf "$pkg/gen"
  local libdir; libdir="$(dirname "$lib")"
  sed -i "s|\"../../debug\"|\"$libdir\"|" "$pkg/Package.swift"
  # The chroot starts with an empty environment: the devnet's path is compiled in.
  printf 'let devnetBinary = "%s"\n' "$TERN_DEVNET_BIN" >"$pkg/Tests/TernTests/Paths.swift"
  SWIFT_BIND_PATHS="$libdir" bash scripts/swift-linux.sh test "$pkg" 2>&1 | tee "$pkg.log"
  local status=${PIPESTATUS[0]}
  local line; line="$(grep -E 'Executed [0-9]+ tests?, with [0-9]+ failures?' "$pkg.log" | tail -n 1)"
  local n f; n=$(sed -nE 's/.*Executed ([0-9]+) tests?.*/\1/p' <<<"$line")
  f=$(sed -nE 's/.*with ([0-9]+) failures?.*/\1/p' <<<"$line")
  if [ -n "$n" ]; then echo "swift: $((n - f)) passed, $f failed"; fi
  return "$status"
}
swift_suite 2>&1 | tee "$slog"
grep -qE '^swift: [0-9]+ passed' "$slog" || echo "swift: 0 passed, 1 failed" >>"$slog"
count "$slog"
rm -f "$slog"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
