#!/usr/bin/env bash
# build-android.sh: the Android AAR (bindings/kotlin/android). Needs the Android NDK (r28+,
# ANDROID_NDK_HOME), cargo-ndk, and the Android SDK with Gradle's Android plugin (Google Maven);
# none is available on Tern's CI machines, so this script is linted there, not run. It says
# exactly what is missing.
#   1. libtern_ffi.so for arm64-v8a, armeabi-v7a and x86_64 (profile release-mobile, 16 KB
#      pages: .cargo/config.toml), checked by scripts/check-elf-align.sh;
#   2. the Android-flavoured Kotlin bindings (uniffi's android cleaner) into the module;
#   3. gradle assembleRelease -> bindings/kotlin/android/build/outputs/aar/.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
missing=()
command -v cargo-ndk >/dev/null 2>&1 || missing+=("cargo-ndk (cargo install cargo-ndk)")
[ -n "${ANDROID_NDK_HOME:-}" ] && [ -d "${ANDROID_NDK_HOME:-/nonexistent}" ] \
  || missing+=("the Android NDK r28+ (set ANDROID_NDK_HOME)")
[ -n "${ANDROID_HOME:-}" ] || missing+=("the Android SDK with platform 35 (set ANDROID_HOME)")
command -v gradle >/dev/null 2>&1 || missing+=("Gradle 8.9+ on PATH (with Google Maven for the Android plugin)")
if [ "${#missing[@]}" -gt 0 ]; then
  echo "build-android.sh cannot build the AAR here; missing:"
  printf '  - %s\n' "${missing[@]}"
  exit 1
fi
module=bindings/kotlin/android
for t in aarch64-linux-android armv7-linux-androideabi x86_64-linux-android; do
  rustup target add "$t"
done
# --features lowmemory: libsecp256k1's small tables (ffi/Cargo.toml).
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 --platform 24 \
  -o "$module/src/main/jniLibs" build --locked -p tern-ffi --profile release-mobile \
  --features lowmemory
bash scripts/check-elf-align.sh "$module"/src/main/jniLibs/arm64-v8a/*.so \
  "$module"/src/main/jniLibs/x86_64/*.so
cargo build --locked --manifest-path ffi/bindgen/Cargo.toml
target/debug/uniffi-bindgen generate \
  --library "$module/src/main/jniLibs/arm64-v8a/libtern_ffi.so" --language kotlin \
  --config ffi/uniffi-android.toml --out-dir "$module/src/main/kotlin"
cp bindings/kotlin/src/main/kotlin/io/github/ternln/tern/*.kt \
  "$module/src/main/kotlin/io/github/ternln/tern/"
(cd "$module" && gradle --no-daemon assembleRelease)
ls -l "$module"/build/outputs/aar/
