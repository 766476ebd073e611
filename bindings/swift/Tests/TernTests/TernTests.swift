import Foundation
import XCTest

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@testable import Tern

/// One HTTP answer, handed from URLSession's queue to the waiting test.
final class Answer: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<String, Error> = .failure(NSError(domain: "no answer", code: 3))

    func set(_ r: Result<String, Error>) { lock.withLock { result = r } }
    func get() throws -> String { try lock.withLock { result }.get() }
}

/// The tern-devnet binary on a port of its own.
final class Devnet: @unchecked Sendable {
    let url: String
    private let process = Process()

    init() throws {
        let port = 20000 + Int.random(in: 0..<20000)
        url = "http://127.0.0.1:\(port)"
        // TERN_DEVNET_BIN, else the path scripts/test-bindings.sh wrote into Paths.swift.
        let bin = ProcessInfo.processInfo.environment["TERN_DEVNET_BIN"] ?? devnetBinary
        process.executableURL = URL(fileURLWithPath: bin)
        process.arguments = ["--port", String(port)]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<600 {
            if (try? get("/blocks/tip/height")) != nil { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw NSError(domain: "tern-devnet did not start", code: 2)
    }

    deinit { process.terminate() }

    private func request(_ method: String, _ path: String, _ body: String?) throws -> String {
        var req = URLRequest(url: URL(string: url + path)!)
        req.httpMethod = method
        if let body {
            req.httpBody = body.data(using: .utf8)
            req.setValue("application/json", forHTTPHeaderField: "content-type")
        }
        let done = DispatchSemaphore(value: 0)
        let answer = Answer()
        URLSession.shared.dataTask(with: req) { data, response, error in
            if let error {
                answer.set(.failure(error))
            } else if let http = response as? HTTPURLResponse, http.statusCode == 200 {
                answer.set(.success(String(decoding: data ?? Data(), as: UTF8.self)))
            } else {
                answer.set(.failure(NSError(domain: "HTTP error", code: 4)))
            }
            done.signal()
        }.resume()
        done.wait()
        return try answer.get()
    }

    func get(_ path: String) throws -> String { try request("GET", path, nil) }
    /// Delays the answers of `path` by `ms` for the next `count` requests.
    func latency(_ path: String, ms: Int, count: Int) throws {
        _ = try request(
            "POST", "/devnet/faults", "{\"path\": \"\(path)\", \"kind\": {\"latency_ms\": \(ms)}, \"count\": \(count)}")
    }
    func mine(_ blocks: Int = 1) throws { _ = try request("POST", "/devnet/mine", "{\"blocks\": \(blocks)}") }
    func faucet(_ address: String, _ sat: UInt64) throws {
        _ = try request("POST", "/devnet/faucet", "{\"address\": \"\(address)\", \"amount_sat\": \(sat)}")
    }
}

func tempDir(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("tern-swift-\(name)-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.path
}

/// Tern's Swift bindings against real nodes on the devnet.
final class TernTests: XCTestCase {
    nonisolated(unsafe) static var shared: Devnet?
    var devnet: Devnet { TernTests.shared! }

    override class func setUp() {
        shared = try? Devnet()
    }

    override class func tearDown() {
        shared = nil
    }

    func config(_ dir: String, listen: String? = nil) -> NodeConfig {
        var c = defaultConfig(network: .regtest, dataDir: dir, esploraUrl: devnet.url)
        c.listen = listen
        c.runtimeThreads = 1
        return c
    }

    func start(_ dir: String, _ seed: UInt8, listen: String? = nil) async throws -> Node {
        try await Node.start(config: config(dir, listen: listen), seed: Data(repeating: seed, count: 32))
    }

    /// Handles events until `want` matches one (acknowledging each), mining between waits.
    func until(_ node: Node, _ others: [Node] = [], _ want: (Event) -> Bool) async throws -> Event {
        var seen: [Event] = []
        for _ in 0..<80 {
            guard let p = try await node.waitNextEventTimeout(timeout: 0.2) else {
                try devnet.mine()
                for n in [node] + others { _ = try await n.sync(deadline: nil) }
                continue
            }
            seen.append(p.event)
            try await node.eventHandled(seq: p.seq)
            if want(p.event) { return p.event }
        }
        XCTFail("not found in \(seen)")
        throw NSError(domain: "event not found", code: 5)
    }

    func testVersion() {
        XCTAssertEqual(ternVersion(), "0.1.0")
    }

    func testErrorKinds() async throws {
        XCTAssertNotNil(TernTests.shared, "the devnet started")
        let dir = tempDir("errors")
        do {
            _ = try await Node.start(config: config(dir), seed: Data(count: 31))
            XCTFail("a 31-byte seed")
        } catch TernError.InvalidInput(let message) {
            XCTAssertTrue(message.contains("31"), message)
        }
        let node = try await start(dir, 1)
        do {
            _ = try await start(dir, 1)
            XCTFail("a second node on the dir")
        } catch TernError.AlreadyRunning {}
        do {
            try await node.forceCloseChannel(channelId: String(repeating: "00", count: 32))
            XCTFail("unknown channel")
        } catch TernError.UnknownChannel {}
        do {
            try await node.closeChannel(channelId: String(repeating: "00", count: 32), address: "bc1qnope")
            XCTFail("bad address")
        } catch TernError.InvalidInput {}
        try await node.stop()
        XCTAssertTrue(node.isStopped())
        do {
            _ = try await node.newAddress()
            XCTFail("stopped")
        } catch TernError.Stopped {}
    }

    func testStopWakesAWaiterAndATimedWaitReturnsNil() async throws {
        let node = try await start(tempDir("wake"), 2)
        let nothing = try await node.waitNextEventTimeout(timeout: 0.05)
        XCTAssertNil(nothing)
        let waiter = Task { () -> Bool in
            do {
                _ = try await node.waitNextEvent()
                return false
            } catch TernError.Stopped {
                return true
            }
        }
        try await Task.sleep(nanoseconds: 50_000_000)
        try await node.stop()
        let woke = try await waiter.value
        XCTAssertTrue(woke, "the waiter woke with Stopped")
    }

    func testACancelledEventLoopEnds() async throws {
        let node = try await start(tempDir("cancel"), 3)
        let loop = Task { () -> Int in
            var n = 0
            for try await _ in node.events(slice: 0.05) { n += 1 }
            return n
        }
        try await Task.sleep(nanoseconds: 100_000_000)
        loop.cancel()
        let n = try await loop.value
        XCTAssertEqual(n, 0)
        try await node.stop()
    }

    func testTheSameSeedIsTheSameNodeAndWordsGiveTheStandardWallet() async throws {
        let dir = tempDir("seed")
        var a = try await start(dir, 4)
        let id = a.nodeId()
        try await a.stop()
        a = try await start(dir, 4)
        XCTAssertEqual(a.nodeId(), id)
        try await a.stop()
        let words = String(repeating: "abandon ", count: 11) + "about"
        let m = try await Node.startWithMnemonic(config: config(tempDir("words")), words: words, passphrase: nil)
        // BIP84's testnet vector tb1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl, in regtest's hrp.
        let address = try await m.newAddress()
        XCTAssertEqual(address, "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk")
        try await m.stop()
    }

    func testAnUnhandledEventIsDeliveredAgain() async throws {
        let lsp = try await start(tempDir("lsp-e"), 5, listen: "127.0.0.1:0")
        let dir = tempDir("phone-e")
        var phone = try await start(dir, 6)
        try await phone.connect(nodeId: lsp.nodeId(), address: lsp.listenAddr()!)
        var first: Event?
        for try await e in phone.events(slice: 0.2) {
            first = e
            break // the loop ends before the next() that would acknowledge it
        }
        guard case .peerConnected(let peer) = first else {
            return XCTFail("\(String(describing: first))")
        }
        XCTAssertEqual(peer, lsp.nodeId())
        try await phone.stop()
        phone = try await start(dir, 6)
        let again = try await phone.nextEvent()
        XCTAssertEqual(again?.event, first, "delivered again after a restart")
        try await phone.stop()
        try await lsp.stop()
    }

    func testAChannelOpensAndClosesThroughTheBindings() async throws {
        let lsp = try await start(tempDir("lsp-c"), 7, listen: "127.0.0.1:0")
        let phone = try await start(tempDir("phone-c"), 8)
        try devnet.faucet(try await phone.newAddress(), 500_000)
        try devnet.mine()
        for n in [phone, lsp] { _ = try await n.sync(deadline: nil) }
        let balance = try await phone.listBalances()
        XCTAssertEqual(balance.confirmedSat, 500_000)
        _ = try await phone.openChannel(
            nodeId: lsp.nodeId(), address: lsp.listenAddr()!, channelValueSat: 200_000, pushMsat: 0,
            announce: false)
        _ = try await until(phone, [lsp]) { if case .channelReady = $0 { return true }; return false }
        _ = try await until(lsp, [phone]) { if case .channelReady = $0 { return true }; return false }
        let channels = try await phone.listChannels()
        XCTAssertEqual(channels.count, 1)
        XCTAssertEqual(channels[0].state, .ready)
        let before = try await phone.listBalances()
        try await phone.closeChannel(channelId: channels[0].channelId, address: nil)
        let closed = try await until(phone, [lsp]) { if case .channelClosed = $0 { return true }; return false }
        guard case .channelClosed(_, _, let kind, let claimed, _) = closed else { return XCTFail() }
        XCTAssertEqual(kind, .cooperativeLocal)
        let after = try await phone.listBalances()
        XCTAssertEqual(
            after.confirmedSat + after.unconfirmedSat, before.confirmedSat + before.unconfirmedSat + claimed,
            "the books, to the satoshi")
        try await phone.stop()
        try await lsp.stop()
    }

    func testACancelledTaskStopsTheWakeGracefullyAndFreesTheDataDir() async throws {
        let c = config(tempDir("wake-cancel"))
        let seed = Data(repeating: 15, count: 32)
        let quiet = try await wake(config: c, seed: seed, deadline: 25)
        XCTAssertEqual(quiet.outcome, .completed)
        XCTAssertEqual(quiet.costs.dials, 0, "nothing pending: nobody dialled")
        try devnet.latency("/blocks/tip/hash", ms: 3000, count: 1)
        let task = Task { try await wake(config: c, seed: seed, deadline: 25) }
        task.cancel()
        let stopped = try await task.value
        XCTAssertEqual(stopped.outcome, .cancelled, "the Task's cancellation reached the wake")
        // No retry loop: the wake released the lock before it returned.
        let node = try await Node.start(config: c, seed: seed)
        try await node.stop()
    }

    func testAWakeBesideARunningNodeIsBusyAndAStalledWakeEndsWithinItsDeadline() async throws {
        let c = config(tempDir("wake-busy"))
        let seed = Data(repeating: 16, count: 32)
        let node = try await Node.start(config: c, seed: seed)
        let busy = try await wake(config: c, seed: seed, deadline: 25)
        XCTAssertEqual(busy.outcome, .busy)
        XCTAssertEqual(busy.costs.httpRequests, 0, "a busy wake asks the server nothing")
        try await node.stop()
        // The server answers the tip after 6 s: a 3 s wake gives up its sync and stops in time.
        try devnet.latency("/blocks/tip/hash", ms: 6000, count: 1)
        let late = try await wake(config: c, seed: seed, deadline: 3)
        XCTAssertEqual(late.outcome, .deadlineReached)
        XCTAssertLessThan(late.costs.totalMs, 3000, "the wake ended within its deadline")
        // And left the data dir free.
        let again = try await Node.start(config: c, seed: seed)
        try await again.stop()
    }
}
