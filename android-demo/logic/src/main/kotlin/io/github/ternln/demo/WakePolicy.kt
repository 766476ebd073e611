package io.github.ternln.demo

import io.github.ternln.tern.ChannelDetails
import io.github.ternln.tern.ChannelState
import io.github.ternln.tern.WakeOutcome
import io.github.ternln.tern.WakeReport
import java.time.Duration

/** What `doWork` returns, without WorkManager's types (the Worker maps it to `Result`). */
enum class WorkResult { SUCCESS, RETRY, FAILURE }

/**
 * The numbers and decisions of the background wake, free of Android: how long a wake may run,
 * the periodic request's shape, when the next run should start, and what a report means to
 * WorkManager.
 */
object WakePolicy {
    /** A Worker may run 10 min, but a wake is designed to fit iOS's ~30 s too. */
    val DEADLINE: Duration = Duration.ofSeconds(25)

    /** The unique periodic request: every hour, in the last 15 min of the hour, on a network. */
    val PERIOD: Duration = Duration.ofHours(1)
    val FLEX: Duration = Duration.ofMinutes(15)

    /** WorkManager's floor for periodic work (`PeriodicWorkRequest.MIN_PERIODIC_INTERVAL_MILLIS`). */
    val MIN_DELAY: Duration = Duration.ofMinutes(15)

    /** A Failed wake is retried (WorkManager's backoff) this many times, then left to the period. */
    const val MAX_ATTEMPTS = 3

    /** The delay before the next run that [report] asks for, clamped to WorkManager's floor. */
    fun initialDelay(report: WakeReport?): Duration =
        initialDelay(report?.nextWakeAfterSecs?.coerceAtMost(Long.MAX_VALUE.toULong())?.toLong())

    /** The same from a stored record's `next_wake_after` (null: no wake yet, run soon). */
    fun initialDelay(nextWakeAfterSecs: Long?): Duration {
        val wanted = Duration.ofSeconds(nextWakeAfterSecs ?: 0)
        return if (wanted < MIN_DELAY) MIN_DELAY else wanted
    }

    /**
     * Whether the periodic request should be enqueued again (policy UPDATE) with
     * [initialDelay]: only when the report asks for a first run that differs from the hourly
     * cadence by more than the flex, so quiet wakes do not churn the schedule.
     */
    fun reschedule(report: WakeReport): Duration? {
        val delay = initialDelay(report)
        val diff = (delay - PERIOD).abs()
        return if (diff > FLEX) delay else null
    }

    /** What a wake's outcome tells WorkManager; [attempt] counts from 0 (`runAttemptCount`). */
    fun workResult(outcome: WakeOutcome, attempt: Int): WorkResult = when (outcome) {
        is WakeOutcome.Completed -> WorkResult.SUCCESS
        // The work left is in the report's pending channels; the next run is planned from
        // next_wake_after. A retry now would only meet the same slow peer.
        is WakeOutcome.DeadlineReached -> WorkResult.SUCCESS
        // Cancelled: the app came to the foreground (it syncs itself) or the OS stopped the
        // worker (WorkManager ignores the result and reschedules on its own).
        is WakeOutcome.Cancelled -> WorkResult.SUCCESS
        // Another holder of the data dir (the app's node) does the work.
        is WakeOutcome.Busy -> WorkResult.SUCCESS
        is WakeOutcome.Failed -> if (attempt + 1 < MAX_ATTEMPTS) WorkResult.RETRY else WorkResult.SUCCESS
    }

    /**
     * Whether going to the background should also ask for an expedited one-time wake: a channel
     * is on its way to Ready or to closed and needs the chain or its peer.
     */
    fun expediteOnBackground(channels: List<ChannelDetails>): Boolean = channels.any {
        when (it.state) {
            ChannelState.AWAITING_CONFIRMATIONS, ChannelState.AWAITING_CHANNEL_READY,
            ChannelState.SHUTTING_DOWN, ChannelState.NEGOTIATING, ChannelState.CLOSING -> true
            else -> it.updatePending
        }
    }
}
