package io.github.ternln.demo.android

import android.content.Context
import androidx.work.CoroutineWorker
import androidx.work.WorkerParameters
import io.github.ternln.demo.BackgroundSync
import io.github.ternln.demo.WorkResult

/**
 * The periodic background wake. `doWork` runs one [BackgroundSync] (a `wake` with a 25 s
 * deadline, or a sync through the app's node if it runs). When WorkManager stops the worker
 * (constraints lost, quota, the 10 min limit), `CoroutineWorker.onStopped` — final in
 * CoroutineWorker — cancels this coroutine; the cancellation calls the wake's cancel handle, and
 * `doWork` ends only once the wake has stopped and released the data-dir lock.
 */
class TernSyncWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result {
        val app = applicationContext as TernApp
        val outcome = BackgroundSync(app.holder, app.log).run(runAttemptCount)
        outcome.next.initialDelay?.let { WakeScheduler.update(applicationContext, it) }
        return when (outcome.result) {
            WorkResult.SUCCESS -> Result.success()
            WorkResult.RETRY -> Result.retry()
            WorkResult.FAILURE -> Result.failure()
        }
    }
}
