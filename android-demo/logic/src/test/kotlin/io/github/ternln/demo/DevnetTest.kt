package io.github.ternln.demo

import io.github.ternln.tern.Network
import io.github.ternln.tern.Node
import io.github.ternln.tern.NodeConfig
import io.github.ternln.tern.TernException
import io.github.ternln.tern.WakeOutcome
import io.github.ternln.tern.defaultConfig
import java.io.File
import java.net.HttpURLConnection
import java.net.ServerSocket
import java.net.URI
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
import org.junit.AfterClass

/** The tern-devnet binary (TERN_DEVNET_BIN) on a free port: a regtest chain serving Esplora. */
class Devnet : AutoCloseable {
    private val port: Int = ServerSocket(0).use { it.localPort }
    val url = "http://127.0.0.1:$port"
    private val process: Process

    init {
        val bin = System.getenv("TERN_DEVNET_BIN") ?: error("TERN_DEVNET_BIN is not set")
        process = ProcessBuilder(bin, "--port", port.toString())
            .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start()
        val deadline = System.currentTimeMillis() + 30_000
        while (true) {
            try {
                request("GET", "/blocks/tip/height", null)
                break
            } catch (e: java.io.IOException) {
                if (System.currentTimeMillis() > deadline) error("tern-devnet did not start")
                Thread.sleep(50)
            }
        }
    }

    private fun request(method: String, path: String, body: String?): String {
        val c = URI(url + path).toURL().openConnection() as HttpURLConnection
        c.requestMethod = method
        if (body != null) {
            c.doOutput = true
            c.setRequestProperty("content-type", "application/json")
            c.outputStream.use { it.write(body.toByteArray()) }
        }
        return c.inputStream.use { String(it.readAllBytes()) }
    }

    /** Delays the answers of `path` by `ms` for the next `count` requests. */
    fun latency(path: String, ms: Int, count: Int) =
        request("POST", "/devnet/faults", """{"path": "$path", "kind": {"latency_ms": $ms}, "count": $count}""")

    override fun close() {
        process.destroyForcibly().waitFor()
    }
}

/** The demo's logic over the real bindings: wakes of real nodes on the devnet. */
class DevnetTest {
    companion object {
        val devnet by lazy { Devnet() }

        @AfterClass
        @JvmStatic
        fun stopDevnet() = devnet.close()
    }

    private fun config(name: String): NodeConfig {
        val dir = Files.createTempDirectory("tern-demo-$name").toFile()
        return defaultConfig(Network.REGTEST, File(dir, "node").path, devnet.url).copy(runtimeThreads = 1u)
    }

    private fun seed(n: Int) = { ByteArray(32) { n.toByte() } }

    private fun log(name: String) = WakeLog(File(Files.createTempDirectory("tern-demo-log-$name").toFile(), "wakes.log"))

    @Test
    fun aWorkerRunWakesThenSyncsThroughTheAppNodeThenWakesAgain() = runBlocking<Unit> {
        val holder = NodeHolder(FfiNodeOps(config("run"), seed(21)))
        val log = log("run")
        val sync = BackgroundSync(holder, log)
        val first = sync.run(0)
        System.err.println("first wake: ${first.record.display()}")
        assertEquals(WorkResult.SUCCESS, first.result)
        assertEquals(Via.WAKE, first.record.via)
        assertEquals("Completed", first.record.outcome, first.record.display())
        assertTrue((first.record.tipHeight ?: 0) >= 100, first.record.display())
        assertTrue(first.record.requests >= 1, first.record.display())
        assertEquals(0L, first.record.dials, "nothing pending: nobody dialled")
        val node = holder.foreground()
        assertTrue(node.newAddress().startsWith("bcrt1"))
        val viaApp = sync.run(0)
        assertEquals(Via.APP_NODE, viaApp.record.via, viaApp.record.display())
        holder.pause()
        assertNull(holder.appNode())
        assertEquals(Via.WAKE, sync.run(0).record.via, "the lock was released by the pause")
        assertEquals(3, log.recent().size)
    }

    @Test
    fun aNodeOutsideTheHolderMakesTheWakeBusyAndTheWorkerSucceeds() = runBlocking<Unit> {
        val config = config("busy")
        val other = Node.start(config, seed(22)()) // as another process would hold the dir
        val out = BackgroundSync(NodeHolder(FfiNodeOps(config, seed(22))), log("busy")).run(0)
        assertEquals("Busy", out.record.outcome, out.record.display())
        assertEquals(WorkResult.SUCCESS, out.result)
        val impatient = NodeHolder(FfiNodeOps(config, seed(22)), startPatience = Duration.ofMillis(200), startRetry = Duration.ofMillis(20))
        assertFailsWith<TernException.AlreadyRunning> { impatient.foreground() }
        other.stop()
        other.close()
    }

    @Test
    fun aFakeWorkerStoppedDuringASlowWakeReturnsWithTheLockFree() = runBlocking<Unit> {
        val config = config("stop")
        val log = log("stop")
        val sync = object {
            val holder = NodeHolder(FfiNodeOps(config, seed(23)))
            val inner = BackgroundSync(holder, log)
            suspend fun run(attempt: Int) = inner.run(attempt)
        }
        devnet.latency("/blocks/tip/hash", 3_000, 1)
        val holder = sync.holder
        val worker = FakeWorker { sync.run(0).result }
        val work = worker.startWork()
        while (!holder.isWaking() && work.isActive) kotlinx.coroutines.yield()
        worker.onStopped()
        val stopped = assertFailsWith<CancellationException> { withTimeout(20_000) { work.await() } }
        assertFalse(stopped is TimeoutCancellationException, "doWork ended, not the test's patience")
        // No retry loop: the cancelled doWork returned, so the dir is free now.
        val node = Node.start(config, seed(23)())
        node.stop()
        node.close()
        assertEquals("Stopped", log.recent().first().outcome)
    }

    @Test
    fun theAppComingToTheFrontDuringASlowWakeMakesItYield() = runBlocking<Unit> {
        val config = config("yield")
        val holder = NodeHolder(FfiNodeOps(config, seed(24)))
        devnet.latency("/blocks/tip/hash", 3_000, 1)
        val run = async(Dispatchers.Default) { holder.background(WakePolicy.DEADLINE) }
        while (!holder.isWaking() && run.isActive) kotlinx.coroutines.yield()
        val node = withTimeout(20_000) { holder.foreground() }
        val woke = assertIs<BackgroundRun.Woke>(run.await())
        assertIs<WakeOutcome.Cancelled>(woke.report.outcome, "${woke.report}")
        assertTrue(node.newAddress().startsWith("bcrt1"))
        holder.pause()
    }
}
