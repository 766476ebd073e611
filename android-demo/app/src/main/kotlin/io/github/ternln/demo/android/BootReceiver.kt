package io.github.ternln.demo.android

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import io.github.ternln.demo.WakePolicy

/** WorkManager keeps its work across reboots by itself; this only makes sure the periodic wake
 * exists after a boot or an app update (KEEP: an existing request is left alone). Creating the
 * Application already does it; the receiver makes the process start at boot. */
class BootReceiver : BroadcastReceiver() {
    override fun onReceive(context: Context, intent: Intent) {
        val app = context.applicationContext as TernApp
        WakeScheduler.ensure(context, WakePolicy.initialDelay(app.log.lastWake()?.nextWakeAfterSecs))
    }
}
