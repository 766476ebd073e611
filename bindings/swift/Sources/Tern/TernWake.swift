import Foundation

/// One background wake (see the generated `wake(config:seed:options:)`) that stops when the
/// calling Task is cancelled: uniffi's Swift async cannot cancel a Rust future, so the Task's
/// cancellation calls `cancel.cancel()`; the wake then stops gracefully (outcome `.cancelled`),
/// closes the store and releases the data-dir lock before it returns. A BGTask's expiration
/// handler cancels the Task (or calls `cancel.cancel()` itself).
public func wake(
    config: NodeConfig, seed: Data, deadline: TimeInterval, cancel: WakeCancel = WakeCancel()
) async throws -> WakeReport {
    let options = WakeOptions(deadlineMs: UInt64(max(0, deadline) * 1000), cancel: cancel)
    return try await withTaskCancellationHandler {
        try await wake(config: config, seed: seed, options: options)
    } onCancel: {
        cancel.cancel()
    }
}
