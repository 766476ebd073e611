import Foundation
import XCTest

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@testable import Tern
@testable import TernDemoKit

/// The tern-devnet binary on a port of its own (TERN_DEVNET_BIN, else the path
/// scripts/test-bindings.sh wrote into Paths.swift).
final class Devnet: @unchecked Sendable {
    let url: String
    private let process = Process()

    init() throws {
        let port = 20000 + Int.random(in: 0..<20000)
        url = "http://127.0.0.1:\(port)"
        process.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.environment["TERN_DEVNET_BIN"] ?? devnetBinary)
        process.arguments = ["--port", String(port)]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<600 {
            if (try? request("GET", "/blocks/tip/height", nil)) != nil { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw NSError(domain: "tern-devnet did not start", code: 2)
    }

    deinit { process.terminate() }

    @discardableResult
    func request(_ method: String, _ path: String, _ body: String?) throws -> Int {
        var req = URLRequest(url: URL(string: url + path)!)
        req.httpMethod = method
        if let body {
            req.httpBody = Data(body.utf8)
            req.setValue("application/json", forHTTPHeaderField: "content-type")
        }
        let done = DispatchSemaphore(value: 0)
        let status = StatusBox()
        URLSession.shared.dataTask(with: req) { _, response, _ in
            status.set((response as? HTTPURLResponse)?.statusCode ?? 0)
            done.signal()
        }.resume()
        done.wait()
        guard status.get() == 200 else { throw NSError(domain: "HTTP \(status.get())", code: 4) }
        return 200
    }

    /// Delays the answers of `path` by `ms` for the next `count` requests.
    func latency(_ path: String, ms: Int, count: Int) throws {
        try request("POST", "/devnet/faults", "{\"path\": \"\(path)\", \"kind\": {\"latency_ms\": \(ms)}, \"count\": \(count)}")
    }
}

final class StatusBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func set(_ v: Int) { lock.withLock { value = v } }
    func get() -> Int { lock.withLock { value } }
}

/// The demo's logic over the real bindings: wakes of real nodes on the devnet.
final class DevnetTests: XCTestCase {
    nonisolated(unsafe) static var shared: Devnet?
    var devnet: Devnet { DevnetTests.shared! }

    override class func setUp() { shared = try? Devnet() }
    override class func tearDown() { shared = nil }

    func ops(_ name: String, _ seed: UInt8) -> FfiNodeOps {
        var c = defaultConfig(network: .regtest, dataDir: tempURL(name).appendingPathComponent("node").path, esploraUrl: devnet.url)
        c.runtimeThreads = 1
        return FfiNodeOps(config: c, seed: { Data(repeating: seed, count: 32) })
    }

    func testARefreshWakesThenSyncsThroughTheAppNodeThenWakesAgain() async throws {
        XCTAssertNotNil(DevnetTests.shared, "the devnet started")
        let c = NodeCoordinator(ops: ops("run", 31))
        let log = WakeLog(url: tempURL("run-log").appendingPathComponent("wakes.jsonl"))
        let first = await BackgroundRefresh.run(c, log: log)
        XCTAssertTrue(first.success, first.record.display)
        XCTAssertEqual(first.record.outcome, "Completed", first.record.display)
        XCTAssertGreaterThanOrEqual(first.record.tipHeight ?? 0, 100)
        XCTAssertGreaterThanOrEqual(first.record.requests, 1)
        XCTAssertEqual(first.record.dials, 0, "nothing pending: nobody dialled")
        let node = try await c.foreground()
        let address = try await node.newAddress()
        XCTAssertTrue(address.hasPrefix("bcrt1"))
        let viaApp = await BackgroundRefresh.run(c, log: log)
        XCTAssertEqual(viaApp.record.via, .appNode, viaApp.record.display)
        try await c.pause()
        XCTAssertTrue(node.isStopped())
        let again = await BackgroundRefresh.run(c, log: log)
        XCTAssertEqual(again.record.via, .wake, "the lock was released by the pause")
        XCTAssertEqual(log.recent().count, 3)
    }

    func testAnExpiredRefreshTaskDuringASlowWakeCompletesWithTheLockFree() async throws {
        let o = ops("expire", 32)
        let c = NodeCoordinator(ops: o)
        let log = WakeLog(url: tempURL("expire-log").appendingPathComponent("wakes.jsonl"))
        try devnet.latency("/blocks/tip/hash", ms: 3000, count: 1)
        let task = FakeRefreshTask()
        let work = BackgroundRefresh.handle(task, coordinator: c, log: log) { _ in }
        task.expire()
        let result = await work.value
        XCTAssertEqual(task.completions, [false], "completed once, as a failure")
        XCTAssertEqual(result.record.outcome, "Cancelled", result.record.display)
        // No retry loop: the task completed, so the dir is free now.
        let node = try await o.start()
        try await node.stop()
    }

    func testANodeOutsideTheCoordinatorMakesTheWakeBusy() async throws {
        let o = ops("busy", 33)
        let other = try await o.start()  // as another process would hold the dir
        let c = NodeCoordinator(ops: o)
        let log = WakeLog(url: tempURL("busy-log").appendingPathComponent("wakes.jsonl"))
        let r = await BackgroundRefresh.run(c, log: log)
        XCTAssertEqual(r.record.outcome, "Busy", r.record.display)
        XCTAssertTrue(r.success)
        try await other.stop()
    }
}
