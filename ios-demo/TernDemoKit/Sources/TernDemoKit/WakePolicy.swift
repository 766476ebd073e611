import Foundation
import Tern

/// The numbers and decisions of the background wake, free of BackgroundTasks: the wake's
/// deadline inside the task's budget, the next request's earliest begin date, and what an
/// outcome means for `setTaskCompleted(success:)`.
public enum WakePolicy {
    /// A BGAppRefreshTask gets about 30 s (not a documented number: WWDC19 707).
    public static let refreshBudget: TimeInterval = 30
    /// What the wake leaves to the handler after its deadline: reporting, scheduling, and the
    /// wake's own stop (it reserves part of its deadline for that already).
    public static let handlerReserve: TimeInterval = 5
    /// Never ask for an earlier begin date than this (iOS treats it as a lower bound anyway).
    public static let minimumInterval: TimeInterval = 15 * 60

    /// The wake's deadline for a task with `budget` seconds: the budget less the reserve,
    /// at least 1 s.
    public static func deadline(budget: TimeInterval = refreshBudget) -> TimeInterval {
        max(1, budget - handlerReserve)
    }

    /// When the next refresh may begin, from the report's `nextWakeAfterSecs` (none yet: soon).
    public static func earliestBegin(after report: WakeReport?, now: Date) -> Date {
        earliestBegin(nextWakeAfterSecs: report.map { $0.nextWakeAfterSecs }, now: now)
    }

    public static func earliestBegin(nextWakeAfterSecs: UInt64?, now: Date) -> Date {
        let wanted = TimeInterval(min(nextWakeAfterSecs ?? 0, UInt64(365 * 24 * 3600)))
        return now.addingTimeInterval(max(minimumInterval, wanted))
    }

    /// `setTaskCompleted(success:)`: false only when the work was cut short or failed, so the
    /// system's scheduler learns which runs were useful.
    public static func success(_ outcome: WakeOutcome) -> Bool {
        switch outcome {
        case .completed, .deadlineReached, .busy: return true
        case .cancelled, .failed: return false
        }
    }

    /// The outcome's name, as the log and the screen show it.
    public static func name(_ outcome: WakeOutcome) -> String {
        switch outcome {
        case .completed: return "Completed"
        case .deadlineReached: return "DeadlineReached"
        case .cancelled: return "Cancelled"
        case .busy: return "Busy"
        case .failed: return "Failed"
        }
    }
}
