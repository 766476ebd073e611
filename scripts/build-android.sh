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
# cargo-ndk 4+ (it has --link-builtins, used below).
{ cargo ndk --help 2>/dev/null || true; } | grep -q -- --link-builtins \
  || missing+=("cargo-ndk 4+ (cargo install cargo-ndk)")
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
# --link-builtins: clang's libclang_rt.builtins on the link line (cargo-ndk adds -L to the NDK's
# clang runtime dir and -lclang_rt.builtins-<arch>-android). On x86_64 Android long double is
# IEEE binary128 (80-bit on x86_64 Linux), so SQLite's long double code calls the f128 helpers
# (__extenddftf2, __trunctfdf2, ...) libgcc provided; NDK r23+ ships no libgcc and rustc links
# no replacement (rust-lang/rust#109717): without it the x86_64 (emulator) library fails at
# dlopen, 'cannot locate symbol "__extenddftf2"'. The archive's symbols are hidden and pulled in
# only where referenced (the arm64 build already gets these from Rust's compiler_builtins). --features lowmemory:
# libsecp256k1's small tables (ffi/Cargo.toml). Packed relocations, 16 KB pages: .cargo/config.toml.
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 --platform 24 --link-builtins \
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
