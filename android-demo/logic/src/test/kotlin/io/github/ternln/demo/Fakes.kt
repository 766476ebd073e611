package io.github.ternln.demo

import io.github.ternln.tern.DialReason
import io.github.ternln.tern.PendingChannel
import io.github.ternln.tern.SyncSummary
import io.github.ternln.tern.TernException
import io.github.ternln.tern.WakeCosts
import io.github.ternln.tern.WakeOutcome
import io.github.ternln.tern.WakeReport
import java.time.Duration
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Deferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.async
import kotlinx.coroutines.cancel
import kotlinx.coroutines.withTimeoutOrNull

fun costs(requests: Long = 1, fsyncs: Long = 0, dials: Int = 0, totalMs: Long = 120) = WakeCosts(
    lockMs = 0u, openMs = 10u, syncMs = 50u, talkMs = 0u, stopMs = 5u, totalMs = totalMs.toULong(),
    httpRequests = requests.toULong(), commits = 0u, fsyncs = fsyncs.toULong(),
    dials = dials.toULong(), httpBytes = 64u, peakRssBytes = null,
)

fun report(
    outcome: WakeOutcome = WakeOutcome.Completed,
    nextSecs: Long = 6 * 3600,
    pending: List<String> = emptyList(),
    costs: WakeCosts = costs(),
) = WakeReport(outcome, 812u, emptyList(), pending.map { PendingChannel(it, DialReason.ChannelReady) }, nextSecs.toULong(), costs)

/**
 * The data dir as the core's lock sees it, with a check that the app's node and a wake never
 * hold it at once. A fake wake runs until its deadline or a yield.
 */
class FakeOps(@Volatile var wakeRuns: Duration = Duration.ofSeconds(5)) : NodeOps<String> {
    @Volatile var holder: String? = null
    val overlaps = AtomicInteger()
    val starts = AtomicInteger()
    val stops = AtomicInteger()
    val syncs = AtomicInteger()
    val wakes = AtomicInteger()
    /** Completed when a wake holds the lock (a test waits on it before acting). */
    var wakeStarted = CompletableDeferred<Unit>()
    /** Another process holds the lock this many more start attempts. */
    val foreignHolds = AtomicInteger()

    private fun take(who: String) {
        if (holder != null) overlaps.incrementAndGet()
        holder = who
    }

    override suspend fun start(): String {
        if (foreignHolds.getAndDecrement() > 0) throw TernException.AlreadyRunning("held by another process")
        foreignHolds.set(0)
        take("app")
        return "node#${starts.incrementAndGet()}"
    }

    override suspend fun stop(node: String) {
        check(holder == "app") { "stop of $node while $holder holds the dir" }
        holder = null
        stops.incrementAndGet()
    }

    override suspend fun sync(node: String, deadline: Duration): SyncSummary {
        check(holder == "app")
        syncs.incrementAndGet()
        return SyncSummary(812u, 1u, 0u)
    }

    override suspend fun wake(deadline: Duration, yieldSignal: YieldSignal): WakeReport {
        take("wake")
        wakes.incrementAndGet()
        val yielded = CompletableDeferred<Unit>()
        yieldSignal.onRequest { yielded.complete(Unit) }
        wakeStarted.complete(Unit)
        try {
            val limit = minOf(deadline, wakeRuns)
            val outcome = if (withTimeoutOrNull(limit.toMillis()) { yielded.await() } != null) {
                WakeOutcome.Cancelled
            } else if (limit == deadline) {
                WakeOutcome.DeadlineReached
            } else {
                WakeOutcome.Completed
            }
            return report(outcome)
        } finally {
            holder = null
        }
    }
}

/**
 * What WorkManager does with a `CoroutineWorker`: `startWork` runs `doWork` in a coroutine of
 * the worker's own; `onStopped` (final in CoroutineWorker) cancels that coroutine. A simulation
 * of the contract TernSyncWorker relies on, not WorkManager.
 */
class FakeWorker(private val doWork: suspend () -> WorkResult) {
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)

    fun startWork(): Deferred<WorkResult> = scope.async { doWork() }

    fun onStopped() = scope.cancel()
}
