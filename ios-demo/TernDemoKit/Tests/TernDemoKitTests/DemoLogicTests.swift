import Foundation
import XCTest

@testable import Tern
@testable import TernDemoKit

/// The pure parts and the coordination, against fake node operations and a fake BGTask.
final class DemoLogicTests: XCTestCase {
    func testTheDeadlineFitsTheBudgetAndTheNextBeginFollowsTheReport() {
        XCTAssertEqual(WakePolicy.deadline(), 25)
        XCTAssertEqual(WakePolicy.deadline(budget: 10), 5)
        XCTAssertEqual(WakePolicy.deadline(budget: 2), 1)
        let now = Date(timeIntervalSince1970: 1_000_000)
        XCTAssertEqual(WakePolicy.earliestBegin(after: nil, now: now), now.addingTimeInterval(900))
        XCTAssertEqual(WakePolicy.earliestBegin(after: report(nextSecs: 600), now: now), now.addingTimeInterval(900))
        XCTAssertEqual(WakePolicy.earliestBegin(after: report(nextSecs: 6 * 3600), now: now), now.addingTimeInterval(21_600))
        XCTAssertEqual(
            WakePolicy.earliestBegin(after: report(nextSecs: .max), now: now), now.addingTimeInterval(365 * 24 * 3600),
            "no overflow")
    }

    func testOutcomesMapToTaskSuccess() {
        XCTAssertTrue(WakePolicy.success(.completed))
        XCTAssertTrue(WakePolicy.success(.deadlineReached))
        XCTAssertTrue(WakePolicy.success(.busy))
        XCTAssertFalse(WakePolicy.success(.cancelled))
        XCTAssertFalse(WakePolicy.success(.failed(reason: "esplora")))
    }

    func testARecordReadsWellAndTheLogKeepsTheNewest() throws {
        let at = Date(timeIntervalSince1970: 1_796_168_400)  // 2026-12-01 23:40Z
        let r = WakeRecord(
            report: report(.failed(reason: "no route"), nextSecs: 5400, pending: ["ab", "cd"],
                           costs: costs(requests: 3, fsyncs: 4, dials: 1, totalMs: 2300)), at: at)
        XCTAssertEqual(
            r.display,
            "2026-12-01 23:40Z wake Failed (no route) tip 812 · 3 req · 1 dial 4 fsyncs · 2 pending · 2300 ms · next in 1 h 30 min")
        XCTAssertEqual(
            WakeRecord(report: report(), at: at).display,
            "2026-12-01 23:40Z wake Completed tip 812 · 1 req · 0 dials 0 fsyncs · 120 ms · next in 6 h")
        XCTAssertEqual(WakeRecord(at: at, via: .skipped, outcome: "Skipped", reason: "why").display, "2026-12-01 23:40Z skipped Skipped (why)")

        let url = tempURL("log").appendingPathComponent("wakes.jsonl")
        let log = WakeLog(url: url, keep: 3)
        for i in 0..<10 { try log.append(WakeRecord(report: report(nextSecs: 100 + UInt64(i)), at: at)) }
        XCTAssertEqual(log.recent().map(\.nextWakeAfterSecs), [109, 108, 107])
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").count
        XCTAssertLessThanOrEqual(lines, 6, "compacted")
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"at\":12,\"via\":\"wa".utf8))  // killed mid-append
        try handle.close()
        XCTAssertEqual(log.recent().map(\.nextWakeAfterSecs), [109, 108, 107], "the torn line is skipped")
        try log.append(WakeRecord(at: at, via: .appNode, outcome: "Synced"))
        XCTAssertEqual(log.recent().first?.via, .appNode)
        XCTAssertEqual(log.lastWake()?.nextWakeAfterSecs, 109)
    }

    func testABackgroundRunWakesWhenTheAppIsAwayAndSyncsThroughTheAppNodeOtherwise() async throws {
        let ops = FakeOps(wakeRuns: 0.01)
        let c = NodeCoordinator(ops: ops)
        guard case .woke = try await c.background(deadline: 25) else { return XCTFail("woke") }
        let node = try await c.foreground()
        let again = try await c.foreground()
        XCTAssertEqual(node, again, "one node")
        guard case .syncedThroughApp = try await c.background(deadline: 25) else { return XCTFail("through the app") }
        XCTAssertEqual(ops.wakes, 1)
        XCTAssertEqual(ops.syncs, 1)
        try await c.pause()
        let none = await c.appNode
        XCTAssertNil(none)
        guard case .woke = try await c.background(deadline: 25) else { return XCTFail("woke again") }
        XCTAssertEqual(ops.overlaps, 0)
    }

    func testTheAppComingBackMakesARunningWakeYieldThenStartsItsNode() async throws {
        let ops = FakeOps(wakeRuns: 20)
        let c = NodeCoordinator(ops: ops)
        let run = Task { try await c.background(deadline: 25) }
        await ops.wakeStarted.wait()
        let started = Date()
        let node = try await c.foreground()
        XCTAssertLessThan(Date().timeIntervalSince(started), 2, "did not wait for the wake's deadline")
        guard case .woke(let r) = try await run.value else { return XCTFail("woke") }
        XCTAssertEqual(r.outcome, .cancelled)
        let current = await c.appNode
        XCTAssertEqual(current, node)
        XCTAssertEqual(ops.overlaps, 0, "the node started after the wake let go")
    }

    func testTheAppRetriesWhileAnotherProcessHoldsTheLockThenGivesUp() async throws {
        let ops = FakeOps()
        ops.foreignHolds = 3
        let c = NodeCoordinator(ops: ops, startPatience: 5, startRetry: 0.01)
        let node = try await c.foreground()
        XCTAssertEqual(node, "node#1")
        try await c.pause()
        ops.foreignHolds = 1000
        let impatient = NodeCoordinator(ops: ops, startPatience: 0.1, startRetry: 0.01)
        do {
            _ = try await impatient.foreground()
            XCTFail("gave up")
        } catch TernError.AlreadyRunning {}
    }

    func testAnExpiredRefreshTaskCancelsTheWakeAndCompletesOnceAfterTheLockIsFree() async throws {
        let ops = FakeOps(wakeRuns: 20)
        let c = NodeCoordinator(ops: ops)
        let log = WakeLog(url: tempURL("expire").appendingPathComponent("wakes.jsonl"))
        let task = FakeRefreshTask()
        let scheduled = ScheduledDates()
        let work = BackgroundRefresh.handle(task, coordinator: c, log: log) { scheduled.add($0) }
        await ops.wakeStarted.wait()
        task.expire()
        let result = await work.value
        XCTAssertFalse(result.success)
        XCTAssertEqual(task.completions, [false], "completed once, as a failure")
        XCTAssertNil(ops.currentHolder, "the lock is free when the task completes")
        XCTAssertEqual(log.recent().first?.outcome, "Cancelled")
        XCTAssertEqual(scheduled.dates.count, 1, "the next request is submitted")
        let waking = await c.isWaking
        XCTAssertFalse(waking)
    }

    func testARefreshTaskSchedulesTheNextFromTheReport() async throws {
        let ops = FakeOps(wakeRuns: 0.01)
        let c = NodeCoordinator(ops: ops)
        let log = WakeLog(url: tempURL("refresh").appendingPathComponent("wakes.jsonl"))
        let task = FakeRefreshTask()
        let scheduled = ScheduledDates()
        let before = Date()
        let result = await BackgroundRefresh.handle(task, coordinator: c, log: log) { scheduled.add($0) }.value
        XCTAssertTrue(result.success)
        XCTAssertEqual(task.completions, [true])
        let next = try XCTUnwrap(scheduled.dates.first)
        XCTAssertGreaterThanOrEqual(next.timeIntervalSince(before), 6 * 3600 - 1, "the report's 6 h")
        XCTAssertEqual(log.recent().first?.via, .wake)
    }

    func testTheDataDirectoryIsCreated() throws {
        let dir = try DataDirectory.prepare(tempURL("data").appendingPathComponent("tern"))
        var isDir: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir))
        XCTAssertTrue(isDir.boolValue)
    }
}

final class ScheduledDates: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Date] = []
    func add(_ d: Date) { lock.withLock { list.append(d) } }
    var dates: [Date] { lock.withLock { list } }
}
