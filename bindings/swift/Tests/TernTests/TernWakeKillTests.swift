#if os(Linux)
    import Foundation
    import Glibc
    import XCTest

    @testable import Tern

    private let childDir = "TERN_WAKE_CHILD_DIR"
    private let childURL = "TERN_WAKE_CHILD_URL"

    /// A wake in a process SIGKILLed mid-sync: the test binary runs itself as the child (this
    /// same test, told so by the environment), the parent kills it and starts a node at once.
    final class TernWakeKillTests: XCTestCase {
        nonisolated(unsafe) static var shared: Devnet?

        override class func setUp() {
            // The child needs no devnet (it would be orphaned by the kill).
            if ProcessInfo.processInfo.environment[childDir] == nil { shared = try? Devnet() }
        }

        override class func tearDown() { shared = nil }

        /// A loopback listener that accepts and never answers, and its port.
        private func silentListener() -> (Int32, UInt16) {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let size = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) }
            }
            listen(fd, 16)
            var bound = sockaddr_in()
            var len = size
            _ = withUnsafeMutablePointer(to: &bound) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
            }
            return (fd, UInt16(bigEndian: bound.sin_port))
        }

        func testAProcessKilledMidWakeLeavesTheDataDirFreeAtOnce() async throws {
            let env = ProcessInfo.processInfo.environment
            let seed = Data(repeating: 26, count: 32)
            if let dir = env[childDir], let url = env[childURL] {
                var c = defaultConfig(network: .regtest, dataDir: dir, esploraUrl: url)
                c.runtimeThreads = 1
                _ = try await wake(config: c, seed: seed, deadline: 60)
                return
            }
            let devnet = try XCTUnwrap(TernWakeKillTests.shared)
            let dir = tempDir("wake-kill")
            var c = defaultConfig(network: .regtest, dataDir: dir, esploraUrl: devnet.url)
            c.runtimeThreads = 1
            let (fd, port) = silentListener()
            defer { close(fd) }
            let child = Process()
            child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
            child.arguments = ["TernTests.TernWakeKillTests/testAProcessKilledMidWakeLeavesTheDataDirFreeAtOnce"]
            child.environment = env.merging(
                [childDir: dir, childURL: "http://127.0.0.1:\(port)"]) { _, new in new }
            try child.run()
            // The child's sync reached the server: it is inside its wake, holding the dir.
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 30_000)
            if ready != 1 { kill(child.processIdentifier, SIGKILL) }
            XCTAssertEqual(ready, 1, "the child's wake never asked the server")
            let asked = accept(fd, nil, nil)
            defer { close(asked) }
            let busy = try await wake(config: c, seed: seed, deadline: 25)
            XCTAssertEqual(busy.outcome, .busy)
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            XCTAssertEqual(child.terminationReason, .uncaughtSignal)
            // At once, with no retry: the kernel released the lock with the process.
            let node = try await Node.start(config: c, seed: seed)
            try await node.stop()
            let next = try await wake(config: c, seed: seed, deadline: 25)
            XCTAssertEqual(next.outcome, .completed)
        }
    }
#endif
