import Foundation
import TernDemoKit

#if canImport(BackgroundTasks)
    import BackgroundTasks

    extension BGAppRefreshTask: RefreshTask {}

    /// BGTaskScheduler glue: the handler itself is TernDemoKit's BackgroundRefresh (tested on
    /// Linux with a fake task); this only registers it and submits requests.
    enum BackgroundGlue {
        static let refreshId = "org.tern.demo.refresh"

        @MainActor
        static func register(model: AppModel) {
            let coordinator = model.coordinator
            let log = model.log
            BGTaskScheduler.shared.register(forTaskWithIdentifier: refreshId, using: nil) { task in
                guard let task = task as? BGAppRefreshTask else { return task.setTaskCompleted(success: false) }
                BackgroundRefresh.handle(task, coordinator: coordinator, log: log) { schedule(earliest: $0) }
            }
        }

        static func schedule(earliest: Date) {
            let request = BGAppRefreshTaskRequest(identifier: refreshId)
            request.earliestBeginDate = earliest
            do {
                try BGTaskScheduler.shared.submit(request)
            } catch {
                // Simulator (unsupported), or too many pending requests: the next launch retries.
                NSLog("tern demo: BGTaskScheduler.submit: \(error)")
            }
        }
    }
#else
    enum BackgroundGlue {
        @MainActor static func register(model _: AppModel) {}
        static func schedule(earliest _: Date) {}
    }
#endif
