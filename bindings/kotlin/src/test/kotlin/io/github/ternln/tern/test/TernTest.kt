package io.github.ternln.tern.test

import io.github.ternln.tern.*
import java.io.File
import java.time.Duration
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import org.junit.AfterClass

/** Tern's Kotlin bindings against real nodes on the devnet: every call suspends (coroutines);
 * events come as a Flow acknowledged after the collector handled each. */
class TernTest {
    companion object {
        val devnet by lazy { Devnet() }

        @AfterClass
        @JvmStatic
        fun stopDevnet() = devnet.close()
    }

    private fun config(dir: File, listen: String? = null) =
        defaultConfig(Network.REGTEST, dir.path, devnet.url).copy(listen = listen, runtimeThreads = 1u)

    private suspend fun start(dir: File, seed: Int, listen: String? = null) =
        Node.start(config(dir, listen), ByteArray(32) { seed.toByte() })

    private suspend fun syncAll(vararg nodes: Node) = nodes.forEach { it.sync(null) }

    /** Handles events until one of type [T] (acknowledging each), mining between waits. */
    private suspend inline fun <reified T : Event> until(node: Node, vararg others: Node): T {
        val seen = mutableListOf<Event>()
        repeat(80) {
            val p = node.waitNextEventTimeout(Duration.ofMillis(200))
            if (p == null) {
                devnet.mine(1)
                syncAll(node, *others)
            } else {
                seen += p.event
                node.eventHandled(p.seq)
                if (p.event is T) return p.event as T
            }
        }
        error("no ${T::class.simpleName} in $seen")
    }

    @Test
    fun version() = assertEquals("0.1.0", ternVersion())

    @Test
    fun errorKinds() = runBlocking {
        val dir = tempDir("errors")
        assertFailsWith<TernException.InvalidInput> { Node.start(config(dir), ByteArray(31)) }
        val node = start(dir, 1)
        assertFailsWith<TernException.AlreadyRunning> { start(dir, 1) }
        assertFailsWith<TernException.InvalidInput> { node.connect("not-a-key", "127.0.0.1:1") }
        assertFailsWith<TernException.UnknownChannel> { node.forceCloseChannel("00".repeat(32)) }
        assertFailsWith<TernException.InvalidInput> { node.closeChannel("00".repeat(32), "bc1qnope") }
        node.stop()
        assertTrue(node.isStopped())
        assertFailsWith<TernException.Stopped> { node.newAddress() }
        node.close()
    }

    @Test
    fun stopWakesAWaiterWithStopped() = runBlocking {
        val node = start(tempDir("wake"), 2)
        val waiter = async(Dispatchers.Default) { runCatching { node.waitNextEvent() } }
        delay(50)
        assertTrue(waiter.isActive)
        node.stop()
        val woke = withTimeout(5_000) { waiter.await() }
        assertTrue(woke.exceptionOrNull() is TernException.Stopped, "$woke")
        node.close()
    }

    @Test
    fun aTimedWaitReturnsNullAndACancelledWaitLeavesTheNodeUsable() = runBlocking {
        val node = start(tempDir("cancel"), 3)
        assertNull(node.waitNextEventTimeout(Duration.ofMillis(30)))
        assertFailsWith<TimeoutCancellationException> { withTimeout(100) { node.waitNextEvent() } }
        val job = launch(Dispatchers.Default) { node.waitNextEvent() }
        delay(30)
        job.cancel()
        job.join()
        assertTrue(job.isCancelled)
        assertTrue(node.newAddress().startsWith("bcrt1q"))
        node.stop()
        node.close()
    }

    @Test
    fun theSameSeedIsTheSameNodeAndWordsGiveTheStandardWallet() = runBlocking {
        val dir = tempDir("seed")
        val a = start(dir, 4)
        val id = a.nodeId()
        a.stop(); a.close()
        val b = start(dir, 4)
        assertEquals(id, b.nodeId())
        b.stop(); b.close()
        val words = "abandon ".repeat(11) + "about"
        val m = Node.startWithMnemonic(config(tempDir("words")), words, null)
        // BIP84's testnet vector tb1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl, in regtest's hrp.
        assertEquals("bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk", m.newAddress())
        m.stop(); m.close()
    }

    @Test
    fun syncAndPeers() = runBlocking {
        val lsp = start(tempDir("lsp-p"), 5, "127.0.0.1:0")
        val phone = start(tempDir("phone-p"), 6)
        val summary = phone.sync(Duration.ofSeconds(10))
        assertTrue((summary.tipHeight ?: 0u) >= 100u)
        assertEquals(summary.tipHeight, phone.syncedHeight())
        phone.connect(lsp.nodeId(), lsp.listenAddr()!!)
        repeat(100) { if (phone.listPeers() != listOf(lsp.nodeId())) delay(20) }
        assertEquals(listOf(lsp.nodeId()), phone.listPeers())
        phone.stop(); lsp.stop(); phone.close(); lsp.close()
    }

    @Test
    fun anEventIsDeliveredAgainUntilItsHandlerReturnsAlsoAfterARestart() = runBlocking {
        val lsp = start(tempDir("lsp-e"), 7, "127.0.0.1:0")
        val dir = tempDir("phone-e")
        var phone = start(dir, 8)
        phone.connect(lsp.nodeId(), lsp.listenAddr()!!)
        // first() takes the event and cancels the flow from inside emit: not acknowledged.
        val first = withTimeout(10_000) { phone.events().first() }
        assertTrue(first is Event.PeerConnected, "$first")
        assertEquals(first, withTimeout(10_000) { phone.events().first() }, "delivered again")
        phone.stop(); phone.close()
        phone = start(dir, 8)
        val pending = phone.nextEvent()
        assertEquals(first, pending?.event, "and again after a restart")
        phone.eventHandled(pending!!.seq)
        assertTrue(phone.pendingEvents(10u).none { it.seq == pending.seq }, "handled: gone")
        phone.stop(); lsp.stop(); phone.close(); lsp.close()
    }

    @Test
    fun aChannelOpensResumesAfterARestartAndClosesCooperatively() = runBlocking {
        val lsp = start(tempDir("lsp-c"), 9, "127.0.0.1:0")
        val dir = tempDir("phone-c")
        var phone = start(dir, 10)
        devnet.faucet(phone.newAddress(), 500_000)
        devnet.mine(1)
        syncAll(phone, lsp)
        assertEquals(500_000uL, phone.listBalances().confirmedSat)
        val temp = phone.openChannel(lsp.nodeId(), lsp.listenAddr()!!, 200_000uL, 0uL, false)
        assertEquals(64, temp.length)
        val pending = until<Event.ChannelPending>(phone, lsp)
        assertEquals(lsp.nodeId(), pending.counterpartyNodeId)
        // Killed mid-open (funding broadcast, unconfirmed): a new process resumes it.
        phone.stop(); phone.close()
        phone = start(dir, 10)
        phone.connect(lsp.nodeId(), lsp.listenAddr()!!)
        val ready = until<Event.ChannelReady>(phone, lsp)
        assertEquals(pending.channelId, ready.channelId)
        until<Event.ChannelReady>(lsp, phone)
        val details = phone.listChannels().single()
        assertEquals(ChannelState.READY, details.state)
        assertEquals(200_000uL, details.channelValueSat)
        assertTrue(details.isOutbound)
        val before = phone.listBalances().let { it.confirmedSat + it.unconfirmedSat }

        phone.closeChannel(details.channelId, null)
        val closing = until<Event.ChannelClosing>(phone, lsp)
        assertEquals(CloseKind.COOPERATIVE_LOCAL, closing.kind)
        val closed = until<Event.ChannelClosed>(phone, lsp)
        assertTrue(closed.claimedSat in 190_000uL until 200_000uL, "${closed.claimedSat}")
        val after = phone.listBalances().let { it.confirmedSat + it.unconfirmedSat }
        assertEquals(before + closed.claimedSat, after, "the books, to the satoshi")
        assertEquals(emptyList(), phone.claimableBalances())
        phone.stop(); lsp.stop(); phone.close(); lsp.close()
    }

    @Test
    fun aManualInboundPolicyAsksTheApp() = runBlocking {
        val lsp = Node.start(
            config(tempDir("lsp-m"), "127.0.0.1:0").copy(inboundPolicy = InboundPolicy.MANUAL),
            ByteArray(32) { 11 },
        )
        val phone = start(tempDir("phone-m"), 12)
        devnet.faucet(phone.newAddress(), 300_000)
        devnet.mine(1)
        syncAll(phone, lsp)
        val opening = async { phone.openChannel(lsp.nodeId(), lsp.listenAddr()!!, 100_000uL, 0uL, false) }
        val request = until<Event.OpenChannelRequest>(lsp)
        assertEquals(phone.nodeId(), request.counterpartyNodeId)
        assertEquals(100_000uL, request.channelValueSat)
        lsp.rejectChannel(phone.nodeId(), request.temporaryChannelId)
        val temp = opening.await()
        val failed = until<Event.ChannelOpenFailed>(phone)
        assertEquals(temp, failed.temporaryChannelId)
        assertEquals(0uL, phone.listBalances().lockedSat)
        phone.stop(); lsp.stop(); phone.close(); lsp.close()
    }

    @Test
    fun readsAnswerWhileASlowSyncIsInFlight() = runBlocking {
        val node = start(tempDir("slow"), 14)
        devnet.latency("/blocks/tip/hash", 1_500, 1)
        val sync = async(Dispatchers.Default) { node.sync(Duration.ofSeconds(10)) }
        delay(100)
        assertTrue(sync.isActive, "the sync waits for the slow server")
        val started = System.nanoTime()
        node.listChannels()
        node.listBalances()
        node.claimableBalances()
        val tookMs = (System.nanoTime() - started) / 1_000_000
        assertTrue(sync.isActive, "the reads did not wait for the sync")
        assertTrue(tookMs < 1_000, "reads took $tookMs ms behind a 1.5 s sync")
        sync.await()
        node.stop(); node.close()
    }

    @Test
    fun closingANodeFromAnyThreadWithCallsInFlightNeverAborts() = runBlocking {
        val dir = tempDir("close")
        repeat(20) { round ->
            val node = start(dir, 13)
            val waiter = launch(Dispatchers.Default) {
                try { node.waitNextEvent() } catch (e: CancellationException) { throw e } catch (e: TernException) {}
            }
            delay(5)
            when (round % 3) {
                0 -> node.close()
                1 -> withContext(Dispatchers.IO) { node.close() }
                else -> Thread { node.close() }.apply { start(); join() }
            }
            // The waiter's call keeps the native node alive; cancelling it lets it go.
            waiter.cancel()
            waiter.join()
            // The dropped node stops on its own and frees the data dir.
            var reopened: Node? = null
            repeat(300) {
                if (reopened == null) {
                    reopened = try { start(dir, 13) } catch (e: TernException.AlreadyRunning) { delay(10); null }
                }
            }
            val again = reopened ?: error("round $round: the data dir was never released")
            again.stop()
            again.close()
        }
    }

    @Test
    fun aWakeCancelledWithItsCoroutineStopsGracefullyAndFreesTheDataDir() = runBlocking {
        val config = config(tempDir("wake-cancel"))
        val seed = ByteArray(32) { 15 }
        val quiet = wake(config, seed, Duration.ofSeconds(25))
        assertTrue(quiet.outcome is WakeOutcome.Completed, "$quiet")
        assertEquals(0uL, quiet.costs.dials, "nothing pending: nobody dialled")
        devnet.latency("/blocks/tip/hash", 3_000, 1)
        val call = async(Dispatchers.Default, start = CoroutineStart.UNDISPATCHED) {
            wake(config, seed, Duration.ofSeconds(25))
        }
        call.cancel()
        call.join() // the wrapper's body, including its wait for the stopped wake, has ended
        assertTrue(call.isCancelled)
        // No retry loop: the lock was released before the coroutine ended.
        val node = Node.start(config, seed)
        node.stop()
        node.close()
        // A handle the caller owns stops the wake too (an app coming to the foreground).
        WakeCancel().use { cancel ->
            cancel.cancel()
            val stopped = wake(config, seed, Duration.ofSeconds(25), cancel)
            assertTrue(stopped.outcome is WakeOutcome.Cancelled, "$stopped")
        }
    }

    @Test
    fun aWakeBesideARunningNodeIsBusyAndAStalledWakeEndsWithinItsDeadline() = runBlocking {
        val dir = tempDir("wake-busy")
        val seed = ByteArray(32) { 16 }
        val node = Node.start(config(dir), seed)
        val busy = wake(config(dir), seed, Duration.ofSeconds(25))
        assertTrue(busy.outcome is WakeOutcome.Busy, "$busy")
        assertEquals(0uL, busy.costs.httpRequests, "a busy wake asks the server nothing")
        node.stop(); node.close()
        // The server answers the tip after 6 s: a 3 s wake gives up its sync and stops in time.
        devnet.latency("/blocks/tip/hash", 6_000, 1)
        val late = wake(config(dir), seed, Duration.ofSeconds(3))
        assertTrue(late.outcome is WakeOutcome.DeadlineReached, "$late")
        assertTrue(late.costs.totalMs < 3_000uL, "the wake ended within its deadline: $late")
        // And left the data dir free.
        val again = Node.start(config(dir), seed)
        again.stop(); again.close()
    }

    @Test
    fun aProcessKilledMidWakeLeavesTheDataDirFreeAtOnce() = runBlocking {
        val dir = tempDir("wake-kill")
        val seed = ByteArray(32) { 26 }
        // A server that accepts and never answers: the child's wake waits in its sync.
        java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress()).use { silent ->
            val url = "http://127.0.0.1:${silent.localPort}"
            val java = ProcessHandle.current().info().command().orElse("java")
            val child = ProcessBuilder(
                java, "-cp", System.getProperty("java.class.path"),
                "-Djna.library.path=${System.getProperty("jna.library.path") ?: ""}",
                "io.github.ternln.tern.test.WakeChildKt", dir.path, url,
            ).inheritIO().start()
            try {
                // The child's sync reached the server: it is inside its wake, holding the dir.
                silent.soTimeout = 30_000
                val asked = silent.accept()
                val busy = wake(config(dir), seed, Duration.ofSeconds(25))
                assertTrue(busy.outcome is WakeOutcome.Busy, "$busy")
                child.destroyForcibly() // SIGKILL
                child.waitFor()
                asked.close()
            } finally {
                if (child.isAlive) child.destroyForcibly()
            }
        }
        // At once, with no retry: the kernel released the lock with the process.
        val node = Node.start(config(dir), seed)
        node.stop(); node.close()
        val next = wake(config(dir), seed, Duration.ofSeconds(25))
        assertTrue(next.outcome is WakeOutcome.Completed, "$next")
    }
}
