#!/usr/bin/env bash
# build-xcframework.sh: TernFFI.xcframework (static libraries for iOS devices and the
# simulator) with the generated Swift sources and a zip + checksum for SwiftPM's binaryTarget.
# Needs macOS with Xcode (xcodebuild, lipo); Tern's CI machines have neither, so this script is
# linted there, not run. It says exactly what is missing.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
missing=()
[ "$(uname -s)" = Darwin ] || missing+=("macOS (this is $(uname -s))")
command -v xcodebuild >/dev/null 2>&1 || missing+=("Xcode's xcodebuild")
command -v lipo >/dev/null 2>&1 || missing+=("lipo (Xcode command line tools)")
if [ "${#missing[@]}" -gt 0 ]; then
  echo "build-xcframework.sh cannot build the XCFramework here; missing:"
  printf '  - %s\n' "${missing[@]}"
  exit 1
fi
export IPHONEOS_DEPLOYMENT_TARGET=15.0
out=target/xcframework
rm -rf "$out" && mkdir -p "$out/include" "$out/ios-sim"
for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios; do
  rustup target add "$t"
  cargo rustc --locked -p tern-ffi --profile release-mobile --target "$t" --crate-type staticlib \
    --features lowmemory
done
lipo -create target/aarch64-apple-ios-sim/release-mobile/libtern_ffi.a \
  target/x86_64-apple-ios/release-mobile/libtern_ffi.a -output "$out/ios-sim/libtern_ffi.a"
cargo build --locked --manifest-path ffi/bindgen/Cargo.toml
lib=target/aarch64-apple-ios/release-mobile/libtern_ffi.a
target/debug/uniffi-bindgen generate --library "$lib" --language swift --out-dir "$out/swift"
mv "$out/swift/TernFFI.h" "$out/include/"
cp bindings/swift/Sources/TernFFI/module.modulemap "$out/include/module.modulemap"
xcodebuild -create-xcframework \
  -library "$lib" -headers "$out/include" \
  -library "$out/ios-sim/libtern_ffi.a" -headers "$out/include" \
  -output "$out/TernFFI.xcframework"
cp bindings/swift/Sources/Tern/*.swift "$out/swift/"
(cd "$out" && ditto -c -k --sequesterRsrc --keepParent TernFFI.xcframework TernFFI.xcframework.zip \
  && swift package compute-checksum TernFFI.xcframework.zip | tee TernFFI.xcframework.checksum)
