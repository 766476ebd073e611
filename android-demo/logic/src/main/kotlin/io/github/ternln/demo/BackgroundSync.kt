package io.github.ternln.demo

import io.github.ternln.tern.TernException
import java.time.Clock
import java.time.Duration
import kotlinx.coroutines.CancellationException

/** What the periodic request should become after a run: unchanged, or enqueued again (UPDATE)
 * with a first run after [initialDelay]. */
data class NextRun(val initialDelay: Duration?)

/**
 * The body of `TernSyncWorker.doWork`, free of Android: one background run through the
 * [holder], recorded in the [log], mapped to a [WorkResult], and the next run planned. The
 * Worker's cancellation (WorkManager's `onStopped`) cancels the coroutine calling [run]; the
 * wake then stops gracefully and the lock is free before the cancellation propagates.
 */
class BackgroundSync<N>(
    private val holder: NodeHolder<N>,
    private val log: WakeLog,
    private val clock: Clock = Clock.systemUTC(),
    private val deadline: Duration = WakePolicy.DEADLINE,
) {
    data class Outcome(val result: WorkResult, val record: WakeRecord, val next: NextRun)

    suspend fun run(attempt: Int): Outcome {
        val at = clock.instant()
        val outcome = try {
            when (val run = holder.background(deadline)) {
                is BackgroundRun.Woke -> Outcome(
                    WakePolicy.workResult(run.report.outcome, attempt),
                    WakeRecord.of(run.report, at),
                    NextRun(WakePolicy.reschedule(run.report)),
                )
                is BackgroundRun.SyncedThroughApp ->
                    Outcome(WorkResult.SUCCESS, WakeRecord.ofAppSync(run.summary, at, run.tookMs), NextRun(null))
                is BackgroundRun.Skipped ->
                    Outcome(WorkResult.SUCCESS, WakeRecord(at, Via.SKIPPED, "Skipped", run.why), NextRun(null))
            }
        } catch (e: CancellationException) {
            log.append(WakeRecord(at, Via.SKIPPED, "Stopped", "the system stopped the worker"))
            throw e
        } catch (e: TernException) {
            // wake fails only on bad input or an unreadable store: retrying will not help.
            Outcome(WorkResult.FAILURE, WakeRecord(at, Via.ERROR, e::class.simpleName ?: "TernException", e.message ?: ""), NextRun(null))
        }
        log.append(outcome.record)
        return outcome
    }
}
