// swift-tools-version:6.0
// Swift 6 language mode (strict concurrency): the tests build with no warning.
// The Linux test flavour of the Swift package (scripts/test-bindings.sh assembles it under
// target/bindings/swift with the generated Tern.swift and TernFFI.h: generated code is a build
// output, never committed). The iOS release links TernFFI.xcframework instead
// (scripts/build-xcframework.sh).
import Foundation
import PackageDescription

let libDir = ProcessInfo.processInfo.environment["TERN_LIB_DIR"] ?? "../../debug"

let package = Package(
    name: "Tern",
    products: [.library(name: "Tern", targets: ["Tern"])],
    targets: [
        .systemLibrary(name: "TernFFI", path: "Sources/TernFFI"),
        .target(
            name: "Tern",
            dependencies: ["TernFFI"],
            path: "Sources/Tern",
            linkerSettings: [
                .unsafeFlags(["-L", libDir, "-Xlinker", "-rpath", "-Xlinker", libDir])
            ]
        ),
        .testTarget(name: "TernTests", dependencies: ["Tern"], path: "Tests/TernTests"),
    ]
)
