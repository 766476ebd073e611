#!/usr/bin/env bash
# The language bindings' tests (issue 15), run by scripts/test.sh: builds libtern_ffi.so and the
# tern-devnet binary, generates the bindings with ffi/bindgen (a crate outside the workspace),
# and runs each language's suite against real nodes on the devnet, then the demo apps' logic
# (android-demo/logic on the JVM, ios-demo/TernDemoKit with Swift on Linux). Each suite prints
# "<suite>: N passed, N failed"; the last line sums them as "N passed, N failed".
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
# JUnit from Maven Central), then installed in the local repository for the Android demo's logic. Where Maven cannot be had, the recipe proven without Central is the
# fallback: kotlinc from npm, JNA / JUnit 4 / hamcrest from Debian.
echo "== kotlin bindings"
KOTLIN_VERSION=2.4.20
khome="$CARGO_TARGET_DIR/tools/kotlin-compiler-$KOTLIN_VERSION"
klog="$(mktemp)"
surefire_count() { # LANG DIR: "<LANG>: N passed, N failed" from Maven's surefire reports
  python3 - "$1" "$2" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
tests = bad = 0
for f in glob.glob(sys.argv[2] + "/TEST-*.xml"):
    s = ET.parse(f).getroot()
    tests += int(s.get("tests", 0))
    bad += sum(int(s.get(k, 0)) for k in ("failures", "errors", "skipped"))
if tests:
    print(f"{sys.argv[1]}: {tests - bad} passed, {bad} failed")
PY
}
kotlin_maven() {
  local kt="$1" mlog="$1/maven.log"
  (cd bindings/kotlin && mvn -B -q -Dstyle.color=never -Dtern.generated="$kt/src" \
    -Dtern.lib.dir="$(dirname "$lib")" install 2>&1) | tee "$mlog"
  local status=${PIPESTATUS[0]}
  echo
  surefire_count kotlin bindings/kotlin/target/surefire-reports
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

# --- The Android demo's logic (JVM) -----------------------------------------------------------
# android-demo/logic: the demo's scheduling, coordination, wake log and seed file in plain Kotlin
# (the app compiles the same files), tested against tern-jvm and real nodes on the devnet.
echo "== android demo logic"
kdlog="$(mktemp)"
kotlin_demo_suite() {
  local kt="$out/kotlin" logic=android-demo/logic
  rm -rf "$logic/target"
  if [ -f bindings/kotlin/target/tern-jvm-0.1.0.jar ]; then
    (cd "$logic" && mvn -B -q -Dstyle.color=never -Dtern.lib.dir="$(dirname "$lib")" verify 2>&1)
    local status=$?
    echo
    surefire_count kotlindemo "$logic/target/surefire-reports"
    return "$status"
  fi
  [ -f "$kt/tern.jar" ] || { echo "kotlindemo: the bindings did not build"; return 1; }
  local jars=/usr/share/java klib="$khome/lib"
  local cp="$kt/tern.jar:$jars/jna.jar:$klib/kotlinx-coroutines-core-jvm.jar"
  "$khome/bin/kotlinc-jvm" -nowarn -cp "$cp" "$logic/src/main/kotlin" -d "$kt/demo.jar" || return 1
  local tcp="$kt/demo.jar:$cp:$klib/kotlin-test.jar:$klib/kotlin-test-junit.jar:$jars/junit4.jar"
  "$khome/bin/kotlinc-jvm" -cp "$tcp" "$logic/src/test/kotlin" -d "$kt/demo-tests.jar" || return 1
  java -Djna.library.path="$(dirname "$lib")" \
    -cp "$kt/demo-tests.jar:$tcp:$klib/kotlin-stdlib.jar:$jars/hamcrest.jar" \
    io.github.ternln.demo.RunDemoTestsKt
}
kotlin_demo_suite 2>&1 | tee "$kdlog"
grep -qE '^kotlindemo: [0-9]+ passed' "$kdlog" || echo "kotlindemo: 0 passed, 1 failed" >>"$kdlog"
count "$kdlog"
rm -f "$kdlog"

# --- Swift (Linux) ----------------------------------------------------------------------------
# Swift 6.0.3 from Debian trixie in a cached chroot (scripts/swift-linux.sh; needs root). The
# package is assembled under target/ from bindings/swift and the generated sources.
echo "== swift bindings"
slog="$(mktemp)"
swift_package() { # DIR: the Linux flavour of the Tern package (bindings/swift + generated code)
  local pkg="$1"
  rm -rf "$pkg" && mkdir -p "$pkg" && cp -r bindings/swift/. "$pkg/"
  "$bindgen" generate --library "$lib" --language swift --no-format --out-dir "$pkg/gen" || return 1
  mv "$pkg/gen/Tern.swift" "$pkg/Sources/Tern/" && mv "$pkg/gen/TernFFI.h" "$pkg/Sources/TernFFI/"
  rm -rf "$pkg/gen"
  sed -i "s|\"../../debug\"|\"$(dirname "$lib")\"|" "$pkg/Package.swift"
}
swift_counts() { # LANG LOG: "<LANG>: N passed, N failed" from XCTest's summary
  local line; line="$(grep -E 'Executed [0-9]+ tests?, with [0-9]+ failures?' "$2" | tail -n 1)"
  local n f; n=$(sed -nE 's/.*Executed ([0-9]+) tests?.*/\1/p' <<<"$line")
  f=$(sed -nE 's/.*with ([0-9]+) failures?.*/\1/p' <<<"$line")
  if [ -n "$n" ]; then echo "$1: $((n - f)) passed, $f failed"; fi
}
swift_suite() {
  [ "$(id -u)" = 0 ] || { echo "swift: needs root for its chroot (scripts/swift-linux.sh)"; return 1; }
  local pkg="$out/swift"
  swift_package "$pkg" || return 1
  local libdir; libdir="$(dirname "$lib")"
  # The chroot starts with an empty environment: the devnet's path is compiled in.
  printf 'let devnetBinary = "%s"\n' "$TERN_DEVNET_BIN" >"$pkg/Tests/TernTests/Paths.swift"
  SWIFT_BIND_PATHS="$libdir" bash scripts/swift-linux.sh test "$pkg" 2>&1 | tee "$pkg.log"
  local status=${PIPESTATUS[0]}
  swift_counts swift "$pkg.log"
  return "$status"
}
swift_suite 2>&1 | tee "$slog"
grep -qE '^swift: [0-9]+ passed' "$slog" || echo "swift: 0 passed, 1 failed" >>"$slog"
count "$slog"
rm -f "$slog"

# --- The iOS demo's logic (Swift on Linux) ----------------------------------------------------
# ios-demo/TernDemoKit: the demo's scheduling, coordination, BGTask handler and wake log, with no
# UIKit/BackgroundTasks type; assembled next to a Linux Tern package and tested with XCTest.
echo "== ios demo logic"
sdlog="$(mktemp)"
swift_demo_suite() {
  [ "$(id -u)" = 0 ] || { echo "swiftdemo: needs root for its chroot (scripts/swift-linux.sh)"; return 1; }
  local dir="$out/swift-demo"
  rm -rf "$dir" && mkdir -p "$dir"
  swift_package "$dir/Tern" || return 1
  rm -rf "$dir/Tern/Tests"
  sed -i '/testTarget/d' "$dir/Tern/Package.swift"
  cp -r ios-demo/TernDemoKit "$dir/TernDemoKit"
  sed -i 's|^let ternPackage = .*|let ternPackage = "../Tern"|' "$dir/TernDemoKit/Package.swift"
  printf 'let devnetBinary = "%s"\n' "$TERN_DEVNET_BIN" >"$dir/TernDemoKit/Tests/TernDemoKitTests/Paths.swift"
  SWIFT_BIND_PATHS="$(dirname "$lib") $dir" bash scripts/swift-linux.sh test "$dir/TernDemoKit" 2>&1 | tee "$dir.log"
  local status=${PIPESTATUS[0]}
  swift_counts swiftdemo "$dir.log"
  return "$status"
}
swift_demo_suite 2>&1 | tee "$sdlog"
grep -qE '^swiftdemo: [0-9]+ passed' "$sdlog" || echo "swiftdemo: 0 passed, 1 failed" >>"$sdlog"
count "$sdlog"
rm -f "$sdlog"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
