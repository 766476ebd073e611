package io.github.ternln.demo

import io.github.ternln.tern.SyncSummary
import io.github.ternln.tern.TernException
import io.github.ternln.tern.WakeReport
import java.time.Duration
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.delay
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.coroutines.withContext

/** Asks a running wake to finish early; the wake's own cancel handle listens to it. */
class YieldSignal {
    private var requested = false
    private val listeners = mutableListOf<() -> Unit>()

    @Synchronized
    fun request() {
        if (requested) return
        requested = true
        listeners.forEach { it() }
    }

    /** Runs [action] now if a yield was already asked for, else when it is. */
    @Synchronized
    fun onRequest(action: () -> Unit) {
        if (requested) action() else listeners += action
    }

    val isRequested: Boolean @Synchronized get() = requested
}

/** What the holder needs from Tern; [FfiNodeOps] is the real one, tests also use fakes. */
interface NodeOps<N> {
    /** `Node.start`; throws [TernException.AlreadyRunning] while another holder has the lock. */
    suspend fun start(): N
    suspend fun stop(node: N)
    suspend fun sync(node: N, deadline: Duration): SyncSummary
    /** One whole wake, stopping early (outcome Cancelled) once [yieldSignal] is requested. */
    suspend fun wake(deadline: Duration, yieldSignal: YieldSignal): WakeReport
}

/** What a background run did. */
sealed class BackgroundRun {
    data class Woke(val report: WakeReport) : BackgroundRun()
    /** The app's node was running: the run synced through it instead of waking. */
    data class SyncedThroughApp(val summary: SyncSummary, val tookMs: Long) : BackgroundRun()
    /** Nothing done: another background run is in progress, or the app's node was stopping. */
    data class Skipped(val why: String) : BackgroundRun()
}

/**
 * The one owner of the data dir inside the process: either the app's foreground node runs or
 * a background wake does, never both. (Across processes the core's data-dir lock decides: a
 * second owner gets `AlreadyRunning` from `start`, `Busy` from `wake`.)
 *
 * - [background] (the Worker): with the app's node running, syncs through it; with another
 *   wake running, skips; otherwise runs a wake, during which the app cannot start its node.
 * - [foreground] (the app coming to the front): asks a running wake to yield, waits for it to
 *   stop (its lock released), then starts the node; retries `AlreadyRunning` for up to
 *   [startPatience] (another process's wake ends by its deadline).
 * - [pause] (the app going to the background): stops the node, so that a wake can run.
 */
class NodeHolder<N>(
    private val ops: NodeOps<N>,
    private val startPatience: Duration = Duration.ofSeconds(30),
    private val startRetry: Duration = Duration.ofMillis(250),
) {
    private sealed class State<out N> {
        object Idle : State<Nothing>()
        data class App<N>(val node: N) : State<N>()
        class Waking(val yieldSignal: YieldSignal, val done: CompletableDeferred<Unit>) : State<Nothing>()
    }

    private val mutex = Mutex()
    private var state: State<N> = State.Idle

    /** The app's node if it runs now. */
    suspend fun appNode(): N? = mutex.withLock { (state as? State.App<N>)?.node }

    suspend fun isWaking(): Boolean = mutex.withLock { state is State.Waking }

    suspend fun background(deadline: Duration): BackgroundRun {
        val (before, waking) = mutex.withLock {
            val current = state
            if (current is State.Idle) {
                val mine = State.Waking(YieldSignal(), CompletableDeferred())
                state = mine
                current to mine
            } else {
                current to null
            }
        }
        when (before) {
            is State.App -> {
                val started = System.nanoTime()
                return try {
                    BackgroundRun.SyncedThroughApp(ops.sync(before.node, deadline), (System.nanoTime() - started) / 1_000_000)
                } catch (e: TernException.Stopped) {
                    BackgroundRun.Skipped("the app's node stopped during the sync")
                }
            }
            is State.Waking -> return BackgroundRun.Skipped("another background run is in progress")
            is State.Idle -> {}
        }
        checkNotNull(waking)
        try {
            return BackgroundRun.Woke(ops.wake(deadline, waking.yieldSignal))
        } finally {
            withContext(NonCancellable) {
                mutex.withLock { state = State.Idle }
                waking.done.complete(Unit)
            }
        }
    }

    suspend fun foreground(): N {
        val deadline = System.nanoTime() + startPatience.toNanos()
        while (true) {
            val waitFor = mutex.withLock {
                when (val s = state) {
                    is State.App -> return s.node
                    is State.Waking -> {
                        s.yieldSignal.request()
                        s.done
                    }
                    is State.Idle -> {
                        try {
                            val node = ops.start()
                            state = State.App(node)
                            return node
                        } catch (e: TernException.AlreadyRunning) {
                            if (System.nanoTime() > deadline) throw e
                        }
                        null
                    }
                }
            }
            if (waitFor != null) waitFor.await() else delay(startRetry.toMillis())
        }
    }

    suspend fun pause() {
        mutex.withLock {
            val s = state
            if (s is State.App) {
                state = State.Idle
                withContext(NonCancellable) { ops.stop(s.node) }
            }
        }
    }
}
