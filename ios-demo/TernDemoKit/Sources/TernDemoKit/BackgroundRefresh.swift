import Foundation
import Tern

/// The two members of `BGTask` a refresh handler uses (the app's glue conforms
/// `BGAppRefreshTask` to it; the tests use a fake).
public protocol RefreshTask: AnyObject {
    var expirationHandler: (() -> Void)? { get set }
    func setTaskCompleted(success: Bool)
}

/// What one refresh did: its record (already logged) and when the next may begin.
public struct RefreshResult: Sendable {
    public var success: Bool
    public var record: WakeRecord
    public var earliestBegin: Date
}

/// The BGAppRefreshTask handler, free of BackgroundTasks: it runs one background run through
/// the coordinator with a deadline inside the task's budget, cancels it from the expiration
/// handler (the wake stops gracefully and releases the lock), logs it, schedules the next
/// request from the report's `next_wake_after`, and completes the task exactly once.
public enum BackgroundRefresh {
    /// One run, without a task: what the handler does between its first and last line.
    public static func run<Ops: NodeOps>(
        _ coordinator: NodeCoordinator<Ops>, log: WakeLog, budget: TimeInterval = WakePolicy.refreshBudget,
        now: @Sendable () -> Date = { Date() }
    ) async -> RefreshResult {
        let at = now()
        let last = log.lastWake()?.nextWakeAfterSecs
        let result: RefreshResult
        do {
            switch try await coordinator.background(deadline: WakePolicy.deadline(budget: budget)) {
            case .woke(let report):
                result = RefreshResult(
                    success: WakePolicy.success(report.outcome), record: WakeRecord(report: report, at: at),
                    earliestBegin: WakePolicy.earliestBegin(after: report, now: now()))
            case .syncedThroughApp(let summary, let ms):
                result = RefreshResult(
                    success: true, record: WakeRecord(appSync: summary, at: at, tookMs: ms),
                    earliestBegin: WakePolicy.earliestBegin(nextWakeAfterSecs: last, now: now()))
            case .skipped(let why):
                result = RefreshResult(
                    success: true, record: WakeRecord(at: at, via: .skipped, outcome: "Skipped", reason: why),
                    earliestBegin: WakePolicy.earliestBegin(nextWakeAfterSecs: last, now: now()))
            }
        } catch {
            result = RefreshResult(
                success: false, record: WakeRecord(at: at, via: .error, outcome: "Error", reason: "\(error)"),
                earliestBegin: WakePolicy.earliestBegin(nextWakeAfterSecs: nil, now: now()))
        }
        try? log.append(result.record)
        return result
    }

    /// The whole handler: `schedule` submits the next `BGAppRefreshTaskRequest` (before the task
    /// completes, as Apple's sample does). Returns the Task doing the work.
    @discardableResult
    public static func handle<Ops: NodeOps>(
        _ task: RefreshTask, coordinator: NodeCoordinator<Ops>, log: WakeLog,
        budget: TimeInterval = WakePolicy.refreshBudget,
        schedule: @escaping @Sendable (Date) -> Void
    ) -> Task<RefreshResult, Never> {
        let box = TaskBox(task)
        let work = Task { () -> RefreshResult in
            let result = await run(coordinator, log: log, budget: budget)
            schedule(result.earliestBegin)
            box.complete(success: result.success)
            return result
        }
        task.expirationHandler = { work.cancel() }
        return work
    }
}

/// Completes the wrapped task once, from whichever thread gets there first.
final class TaskBox: @unchecked Sendable {
    private let lock = NSLock()
    private var task: RefreshTask?

    init(_ task: RefreshTask) { self.task = task }

    func complete(success: Bool) {
        let t: RefreshTask? = lock.withLock {
            defer { task = nil }
            return task
        }
        t?.setTaskCompleted(success: success)
    }
}
