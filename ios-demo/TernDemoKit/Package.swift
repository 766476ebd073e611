// swift-tools-version:5.9
// TernDemoKit: the iOS demo's logic (scheduling, the wake/app coordination, the report log, the
// data directory) with no UIKit or BackgroundTasks type, so it builds and its tests run on Linux
// too. The app target (ios-demo/TernDemo) links it; the BGTask/UIKit glue lives there.
//
// `ternPackage` is the Tern Swift package: on a Mac the local release package that
// ios-demo/make-tern-package.sh assembles from the XCFramework; in Tern's CI,
// scripts/test-bindings.sh copies this package next to the Linux flavour of bindings/swift and
// rewrites the path.
import PackageDescription

let ternPackage = "../../target/ios-demo/Tern"

let package = Package(
    name: "TernDemoKit",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [.library(name: "TernDemoKit", targets: ["TernDemoKit"])],
    dependencies: [.package(path: ternPackage)],
    targets: [
        .target(name: "TernDemoKit", dependencies: [.product(name: "Tern", package: "Tern")]),
        .testTarget(name: "TernDemoKitTests", dependencies: ["TernDemoKit"]),
    ]
)
