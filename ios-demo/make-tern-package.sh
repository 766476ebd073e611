#!/usr/bin/env bash
# make-tern-package.sh: the local Tern Swift package the demo links on a Mac, at
# target/ios-demo/Tern: the XCFramework from scripts/build-xcframework.sh as a binary target (by
# path, not by release URL), the generated Tern.swift and the idioms of bindings/swift.
# Run scripts/build-xcframework.sh first (macOS with Xcode).
set -euo pipefail
cd "$(dirname "$0")/.."
xc=target/xcframework
[ -d "$xc/TernFFI.xcframework" ] || { echo "run scripts/build-xcframework.sh first" >&2; exit 1; }
pkg=target/ios-demo/Tern
rm -rf "$pkg" && mkdir -p "$pkg/Sources/Tern"
cp -R "$xc/TernFFI.xcframework" "$pkg/"
cp "$xc"/swift/*.swift "$pkg/Sources/Tern/"
cat >"$pkg/Package.swift" <<'SWIFT'
// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "Tern",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [.library(name: "Tern", targets: ["Tern"])],
    targets: [
        .binaryTarget(name: "TernFFI", path: "TernFFI.xcframework"),
        .target(name: "Tern", dependencies: ["TernFFI"], path: "Sources/Tern"),
    ]
)
SWIFT
echo "wrote $pkg"
