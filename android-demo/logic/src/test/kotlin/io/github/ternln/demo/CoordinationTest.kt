package io.github.ternln.demo

import io.github.ternln.tern.TernException
import java.io.File
import java.nio.file.Files
import java.time.Duration
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout

/** The holder, the worker's body and a FakeWorker, against fake node operations. */
class CoordinationTest {
    private fun log() = WakeLog(File(Files.createTempDirectory("tern-demo-co").toFile(), "wakes.log"))

    @Test
    fun aBackgroundRunWakesWhenTheAppIsAwayAndSyncsThroughTheAppNodeOtherwise() = runBlocking<Unit> {
        val ops = FakeOps(wakeRuns = Duration.ofMillis(10))
        val holder = NodeHolder(ops)
        assertIs<BackgroundRun.Woke>(holder.background(Duration.ofSeconds(25)))
        assertEquals(1, ops.wakes.get())
        val node = holder.foreground()
        assertEquals(node, holder.foreground(), "one node")
        val run = holder.background(Duration.ofSeconds(25))
        assertIs<BackgroundRun.SyncedThroughApp>(run)
        assertEquals(1, ops.wakes.get(), "no wake while the app's node runs")
        assertEquals(1, ops.syncs.get())
        holder.pause()
        assertNull(holder.appNode())
        assertEquals(1, ops.stops.get())
        assertIs<BackgroundRun.Woke>(holder.background(Duration.ofSeconds(25)))
        assertEquals(0, ops.overlaps.get())
    }

    @Test
    fun theAppComingToTheFrontMakesARunningWakeYieldThenStartsItsNode() = runBlocking<Unit> {
        val ops = FakeOps(wakeRuns = Duration.ofSeconds(20))
        val holder = NodeHolder(ops)
        val run = async(Dispatchers.Default) { holder.background(Duration.ofSeconds(25)) }
        withTimeout(5_000) { ops.wakeStarted.await() }
        assertTrue(holder.isWaking())
        val started = System.nanoTime()
        val node = withTimeout(5_000) { holder.foreground() }
        assertTrue((System.nanoTime() - started) / 1_000_000 < 2_000, "did not wait for the wake's deadline")
        val woke = assertIs<BackgroundRun.Woke>(run.await())
        assertEquals("Cancelled", WakeRecord.outcomeName(woke.report.outcome))
        assertEquals(node, holder.appNode())
        assertEquals(0, ops.overlaps.get(), "the node started after the wake let go")
    }

    @Test
    fun aSecondBackgroundRunSkipsWhileOneWakes() = runBlocking<Unit> {
        val ops = FakeOps(wakeRuns = Duration.ofMillis(300))
        val holder = NodeHolder(ops)
        val first = async(Dispatchers.Default) { holder.background(Duration.ofSeconds(25)) }
        withTimeout(5_000) { ops.wakeStarted.await() }
        assertIs<BackgroundRun.Skipped>(holder.background(Duration.ofSeconds(25)))
        assertIs<BackgroundRun.Woke>(first.await())
        assertEquals(1, ops.wakes.get())
    }

    @Test
    fun theAppRetriesWhileAnotherProcessHoldsTheLockThenGivesUp() = runBlocking<Unit> {
        val ops = FakeOps()
        ops.foreignHolds.set(3)
        val holder = NodeHolder(ops, startPatience = Duration.ofSeconds(5), startRetry = Duration.ofMillis(10))
        assertEquals("node#1", holder.foreground())
        holder.pause()
        ops.foreignHolds.set(1_000)
        val impatient = NodeHolder(ops, startPatience = Duration.ofMillis(100), startRetry = Duration.ofMillis(10))
        assertFailsWith<TernException.AlreadyRunning> { impatient.foreground() }
    }

    @Test
    fun aFakeWorkerStoppedMidWakeReturnsOnlyAfterTheWakeLetGo() = runBlocking<Unit> {
        val ops = FakeOps(wakeRuns = Duration.ofSeconds(20))
        val holder = NodeHolder(ops)
        val log = log()
        val sync = BackgroundSync(holder, log)
        val worker = FakeWorker { sync.run(attempt = 0).result }
        val work = worker.startWork()
        withTimeout(5_000) { ops.wakeStarted.await() }
        worker.onStopped()
        val stopped = assertFailsWith<CancellationException> { withTimeout(5_000) { work.await() } }
        assertFalse(stopped is TimeoutCancellationException, "doWork ended, not the test's patience")
        assertNull(ops.holder, "the lock is free when the cancelled doWork is done")
        assertTrue(!holder.isWaking())
        assertEquals("Stopped", log.recent().first().outcome)
        // The next run is not Skipped: the holder is idle again.
        ops.wakeRuns = Duration.ofMillis(10)
        val next = sync.run(attempt = 0)
        assertEquals(Via.WAKE, next.record.via)
    }

    @Test
    fun aFakeWorkerRecordsEachRunAndPlansTheNext() = runBlocking<Unit> {
        val ops = FakeOps(wakeRuns = Duration.ofMillis(10))
        val holder = NodeHolder(ops)
        val log = log()
        val sync = BackgroundSync(holder, log)
        val out = FakeWorker { sync.run(attempt = 0).result }.startWork().await()
        assertEquals(WorkResult.SUCCESS, out)
        val first = log.recent().single()
        assertEquals(Via.WAKE, first.via)
        assertEquals("Completed", first.outcome)
        assertEquals(Duration.ofHours(6), sync.run(0).next.initialDelay, "6 h asked: rescheduled")
        holder.foreground()
        val viaApp = sync.run(0)
        assertEquals(Via.APP_NODE, viaApp.record.via)
        assertEquals(null, viaApp.next.initialDelay)
        assertEquals(3, log.recent().size)
    }

    @Test
    fun aWakeThatThrowsIsAFailureNotARetry() = runBlocking<Unit> {
        val holder = NodeHolder(object : NodeOps<String> by FakeOps() {
            override suspend fun wake(deadline: Duration, yieldSignal: YieldSignal) =
                throw TernException.Storage("database disk image is malformed")
        })
        val log = log()
        val out = BackgroundSync(holder, log).run(0)
        assertEquals(WorkResult.FAILURE, out.result)
        assertEquals(Via.ERROR, log.recent().single().via)
        assertTrue(!holder.isWaking(), "the holder is idle again after the throw")
    }
}
