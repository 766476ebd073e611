package io.github.ternln.tern

import java.time.Duration
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.GlobalScope
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.async
import kotlinx.coroutines.withContext

/**
 * One background wake (see the generated [wake]) that stops *gracefully* when the coroutine is
 * cancelled: the cancellation calls [WakeCancel.cancel], then waits for the wake to stop, close
 * the store and release the data-dir lock, and only then rethrows the [CancellationException].
 * So when a cancelled `doWork` returns, the next wake or `Node.start` does not find the lock held.
 * (Cancelling the generated suspend fun itself drops the Rust future: the hard stop.)
 *
 * Pass [cancel] to also stop the wake from elsewhere (an app coming to the foreground); the
 * caller then owns it.
 */
@OptIn(kotlinx.coroutines.DelicateCoroutinesApi::class)
suspend fun wake(
    config: NodeConfig,
    seed: ByteArray,
    deadline: Duration,
    cancel: WakeCancel? = null,
): WakeReport {
    val handle = cancel ?: WakeCancel()
    // Not a child of the caller: cancelling the caller must not drop the Rust future.
    val call = GlobalScope.async(start = CoroutineStart.UNDISPATCHED) {
        wake(config, seed, WakeOptions(deadline.toMillis().toULong(), handle))
    }
    try {
        return call.await()
    } catch (e: CancellationException) {
        handle.cancel()
        withContext(NonCancellable) { runCatching { call.await() } }
        throw e
    } finally {
        if (cancel == null) handle.close()
    }
}
