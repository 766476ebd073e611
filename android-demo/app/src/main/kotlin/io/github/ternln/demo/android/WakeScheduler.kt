package io.github.ternln.demo.android

import android.content.Context
import android.os.Build
import androidx.work.Constraints
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ExistingWorkPolicy
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.OutOfQuotaPolicy
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import io.github.ternln.demo.WakePolicy
import java.time.Duration

/** The WorkManager requests, shaped by [WakePolicy]: one unique periodic wake (1 h, 15 min
 * flex, on a network) and an expedited one-time wake when the app leaves with work pending. */
object WakeScheduler {
    private const val PERIODIC = "tern-wake"
    private const val EXPEDITED = "tern-wake-now"

    private val network = Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build()

    private fun periodic(initialDelay: Duration) =
        PeriodicWorkRequestBuilder<TernSyncWorker>(WakePolicy.PERIOD, WakePolicy.FLEX)
            .setConstraints(network)
            .setInitialDelay(initialDelay)
            .build()

    /** At app start and boot: enqueue the periodic wake unless it exists. */
    fun ensure(context: Context, initialDelay: Duration) {
        WorkManager.getInstance(context)
            .enqueueUniquePeriodicWork(PERIODIC, ExistingPeriodicWorkPolicy.KEEP, periodic(initialDelay))
    }

    /** After a wake whose report asks for another first run (see WakePolicy.reschedule). */
    fun update(context: Context, initialDelay: Duration) {
        WorkManager.getInstance(context)
            .enqueueUniquePeriodicWork(PERIODIC, ExistingPeriodicWorkPolicy.UPDATE, periodic(initialDelay))
    }

    /** Android 12+ only: below it, expedited work runs as a foreground service and needs
     * `getForegroundInfo` (a notification), which this demo does not have. */
    fun expedite(context: Context) {
        if (Build.VERSION.SDK_INT < Build.VERSION_CODES.S) return
        val request = OneTimeWorkRequestBuilder<TernSyncWorker>()
            .setConstraints(network)
            .setExpedited(OutOfQuotaPolicy.RUN_AS_NON_EXPEDITED_WORK_REQUEST)
            .build()
        WorkManager.getInstance(context).enqueueUniqueWork(EXPEDITED, ExistingWorkPolicy.KEEP, request)
    }
}
