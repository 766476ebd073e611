import Foundation
import Tern

/// Asks a running wake to finish early; the wake's cancel handle listens to it.
public final class YieldSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var requested = false
    private var listeners: [@Sendable () -> Void] = []

    public init() {}

    public func request() {
        let toRun: [@Sendable () -> Void] = lock.withLock {
            if requested { return [] }
            requested = true
            defer { listeners = [] }
            return listeners
        }
        toRun.forEach { $0() }
    }

    /// Runs `action` now if a yield was already asked for, else when it is.
    public func onRequest(_ action: @escaping @Sendable () -> Void) {
        let now: Bool = lock.withLock {
            if requested { return true }
            listeners.append(action)
            return false
        }
        if now { action() }
    }

    public var isRequested: Bool { lock.withLock { requested } }
}

/// What the coordinator needs from Tern; `FfiNodeOps` is the real one, the tests use fakes too.
public protocol NodeOps: Sendable {
    associatedtype AppNode: Sendable
    /// `Node.start`; throws `TernError.AlreadyRunning` while another holder has the lock.
    func start() async throws -> AppNode
    func stop(_ node: AppNode) async throws
    func sync(_ node: AppNode, deadline: TimeInterval) async throws -> SyncSummary
    /// One whole wake, stopping early (outcome `.cancelled`) when `yield` is requested or the
    /// calling Task is cancelled.
    func wake(deadline: TimeInterval, yield: YieldSignal) async throws -> WakeReport
}

/// What a background run did.
public enum BackgroundRun: Sendable {
    case woke(WakeReport)
    /// The app's node was running: the run synced through it instead of waking.
    case syncedThroughApp(SyncSummary, tookMs: UInt64)
    /// Nothing done: another background run is in progress, or the app's node was stopping.
    case skipped(String)
}

/// The one owner of the data dir inside the process: the app's foreground node or a background
/// wake, never both (across processes, the core's data-dir lock decides: a second owner gets
/// `AlreadyRunning` from `start`, `.busy` from `wake`).
///
/// iOS: the app calls `pause()` in `didEnterBackground` inside `beginBackgroundTask`, so the lock
/// is never held by a suspended app (0xdead10cc); a BGTask calls `background(deadline:)`; the
/// app coming back calls `foreground()`, which makes a running wake yield first.
public actor NodeCoordinator<Ops: NodeOps> {
    private enum State {
        case idle
        /// `foreground()` is awaiting `start`: a background run skips meanwhile.
        case starting
        case app(Ops.AppNode)
        case waking(YieldSignal)
    }

    private let ops: Ops
    private let startPatience: TimeInterval
    private let startRetry: TimeInterval
    private var state: State = .idle
    /// `pause()` came while the node was starting: stop it as soon as it has started.
    private var pauseAfterStart = false
    /// Completed when the running wake ends (a waiter awaits its task).
    private var wakeDone: [CheckedContinuation<Void, Never>] = []

    public init(ops: Ops, startPatience: TimeInterval = 30, startRetry: TimeInterval = 0.25) {
        self.ops = ops
        self.startPatience = startPatience
        self.startRetry = startRetry
    }

    public var appNode: Ops.AppNode? {
        if case .app(let node) = state { return node }
        return nil
    }

    public var isWaking: Bool {
        if case .waking = state { return true }
        return false
    }

    public func background(deadline: TimeInterval) async throws -> BackgroundRun {
        switch state {
        case .app(let node):
            let started = DispatchTime.now().uptimeNanoseconds
            do {
                let summary = try await ops.sync(node, deadline: deadline)
                return .syncedThroughApp(summary, tookMs: (DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)
            } catch TernError.Stopped {
                return .skipped("the app's node stopped during the sync")
            }
        case .waking:
            return .skipped("another background run is in progress")
        case .starting:
            return .skipped("the app is starting its node")
        case .idle:
            let signal = YieldSignal()
            let ops = self.ops
            // The wake runs in its own Task so that the caller's cancellation reaches it only
            // through the cancel handle (a graceful stop), and `foreground()` can wait for it.
            let work = Task { try await ops.wake(deadline: deadline, yield: signal) }
            state = .waking(signal)
            defer {
                state = .idle
                wakeDone.forEach { $0.resume() }
                wakeDone = []
            }
            let report = try await withTaskCancellationHandler {
                try await work.value
            } onCancel: {
                signal.request()
            }
            return .woke(report)
        }
    }

    public func foreground() async throws -> Ops.AppNode {
        let giveUp = Date().addingTimeInterval(startPatience)
        while true {
            switch state {
            case .app(let node):
                return node
            case .starting:
                // Another foreground() is starting the node: wait for it.
                try await Task.sleep(nanoseconds: UInt64(startRetry * 1e9))
            case .waking(let signal):
                signal.request()
                await withCheckedContinuation { wakeDone.append($0) }
            case .idle:
                state = .starting
                do {
                    let node = try await ops.start()
                    if pauseAfterStart {
                        pauseAfterStart = false
                        state = .idle
                        try await ops.stop(node)
                        throw CancellationError()
                    }
                    state = .app(node)
                    return node
                } catch TernError.AlreadyRunning(let holder) {
                    state = .idle
                    if pauseAfterStart {
                        pauseAfterStart = false
                        throw CancellationError()
                    }
                    if Date() > giveUp { throw TernError.AlreadyRunning(message: holder) }
                    try await Task.sleep(nanoseconds: UInt64(startRetry * 1e9))
                } catch {
                    if case .starting = state { state = .idle }
                    throw error
                }
            }
        }
    }

    /// Stops the app's node (the app going to the background).
    public func pause() async throws {
        switch state {
        case .app(let node):
            state = .idle
            try await ops.stop(node)
        case .starting:
            pauseAfterStart = true
        case .idle, .waking:
            break
        }
    }
}
