import Foundation
import XCTest

@testable import Tern
@testable import TernDemoKit

func costs(requests: UInt64 = 1, fsyncs: UInt64 = 0, dials: UInt64 = 0, totalMs: UInt64 = 120) -> WakeCosts {
    WakeCosts(
        lockMs: 0, openMs: 10, syncMs: 50, talkMs: 0, stopMs: 5, totalMs: totalMs, httpRequests: requests,
        commits: 0, fsyncs: fsyncs, dials: dials, httpBytes: 64, peakRssBytes: nil)
}

func report(
    _ outcome: WakeOutcome = .completed, nextSecs: UInt64 = 6 * 3600, pending: [String] = [],
    costs c: WakeCosts = costs()
) -> WakeReport {
    WakeReport(outcome: outcome, tipHeight: 812, events: [], pending: pending.map { PendingChannel(channelId: $0, reason: .channelReady) }, nextWakeAfterSecs: nextSecs, costs: c)
}

/// A flag a test can wait on without sleeping in a loop.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var set = false

    func raise() {
        let w: [CheckedContinuation<Void, Never>] = lock.withLock {
            set = true
            defer { waiters = [] }
            return waiters
        }
        w.forEach { $0.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now: Bool = lock.withLock {
                if set { return true }
                waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }
}

/// The data dir as the core's lock sees it, with a count of any moment the app's node and a
/// wake held it at once. A fake wake runs `wakeRuns` seconds, or until a yield.
final class FakeOps: NodeOps, @unchecked Sendable {
    private let lock = NSLock()
    private var holder: String?
    private(set) var overlaps = 0
    private(set) var starts = 0
    private(set) var stops = 0
    private(set) var syncs = 0
    private(set) var wakes = 0
    var foreignHolds = 0
    let wakeRuns: TimeInterval
    let wakeStarted = Flag()

    init(wakeRuns: TimeInterval = 5) { self.wakeRuns = wakeRuns }

    var currentHolder: String? { lock.withLock { holder } }

    private func take(_ who: String) {
        lock.withLock {
            if holder != nil { overlaps += 1 }
            holder = who
        }
    }

    func start() async throws -> String {
        let foreign: Bool = lock.withLock {
            if foreignHolds > 0 { foreignHolds -= 1; return true }
            return false
        }
        if foreign { throw TernError.AlreadyRunning(message: "held by another process") }
        take("app")
        return lock.withLock { starts += 1; return "node#\(starts)" }
    }

    func stop(_ node: String) async throws {
        lock.withLock {
            precondition(holder == "app")
            holder = nil
            stops += 1
        }
    }

    func sync(_ node: String, deadline: TimeInterval) async throws -> SyncSummary {
        lock.withLock { syncs += 1 }
        return SyncSummary(tipHeight: 812, requests: 1, events: 0)
    }

    func wake(deadline: TimeInterval, yield: YieldSignal) async throws -> WakeReport {
        take("wake")
        lock.withLock { wakes += 1 }
        defer { lock.withLock { holder = nil } }
        let yielded = Flag()
        yield.onRequest { yielded.raise() }
        wakeStarted.raise()
        let limit = min(deadline, wakeRuns)
        let timer = Task {
            try? await Task.sleep(nanoseconds: UInt64(limit * 1e9))
        }
        let waiter = Task {
            await yielded.wait()
            timer.cancel()
        }
        await timer.value
        let wasYielded = yield.isRequested
        waiter.cancel()
        yielded.raise()
        if wasYielded { return report(.cancelled) }
        return report(limit == deadline ? .deadlineReached : .completed)
    }
}

/// BGAppRefreshTask's two members as the handler uses them.
final class FakeRefreshTask: RefreshTask, @unchecked Sendable {
    private let lock = NSLock()
    var expirationHandler: (() -> Void)?
    private(set) var completions: [Bool] = []
    let completed = Flag()

    func setTaskCompleted(success: Bool) {
        lock.withLock { completions.append(success) }
        completed.raise()
    }

    /// What iOS does when the budget runs out.
    func expire() { expirationHandler?() }
}

func tempURL(_ name: String) -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tern-demo-\(name)-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}
