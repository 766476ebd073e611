import Foundation
import Tern

/// `NodeOps` over the Tern bindings: the same calls on a phone and in the Linux tests.
public struct FfiNodeOps: NodeOps {
    public let config: NodeConfig
    public let seed: @Sendable () throws -> Data

    public init(config: NodeConfig, seed: @escaping @Sendable () throws -> Data) {
        self.config = config
        self.seed = seed
    }

    public func start() async throws -> Node { try await Node.start(config: config, seed: try seed()) }

    public func stop(_ node: Node) async throws { try await node.stop() }

    public func sync(_ node: Node, deadline: TimeInterval) async throws -> SyncSummary {
        try await node.sync(deadline: deadline)
    }

    /// The wrapper's wake (Task cancellation calls the cancel handle), with the app's yield
    /// request calling the same handle.
    public func wake(deadline: TimeInterval, yield: YieldSignal) async throws -> WakeReport {
        let cancel = WakeCancel()
        yield.onRequest { cancel.cancel() }
        return try await Tern.wake(config: config, seed: try seed(), deadline: deadline, cancel: cancel)
    }
}
