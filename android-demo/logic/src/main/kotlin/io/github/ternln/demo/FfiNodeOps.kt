package io.github.ternln.demo

import io.github.ternln.tern.Node
import io.github.ternln.tern.NodeConfig
import io.github.ternln.tern.SyncSummary
import io.github.ternln.tern.WakeCancel
import io.github.ternln.tern.WakeReport
import io.github.ternln.tern.wake
import java.time.Duration

/** [NodeOps] over the Tern bindings: the same calls on a phone and in the JVM tests. */
class FfiNodeOps(private val config: NodeConfig, private val seed: () -> ByteArray) : NodeOps<Node> {
    override suspend fun start(): Node = Node.start(config, seed())

    override suspend fun stop(node: Node) {
        node.stop()
        node.close()
    }

    override suspend fun sync(node: Node, deadline: Duration): SyncSummary = node.sync(deadline)

    /** The wrapper's graceful wake (a cancelled coroutine stops it and releases the lock
     * before returning), with the app's yield request cancelling the same handle. */
    override suspend fun wake(deadline: Duration, yieldSignal: YieldSignal): WakeReport =
        WakeCancel().use { cancel ->
            // A yield that comes after the handle was closed has nothing left to stop.
            yieldSignal.onRequest { runCatching { cancel.cancel() } }
            wake(config, seed(), deadline, cancel)
        }
}
