package io.github.ternln.demo

import io.github.ternln.tern.ChannelDetails
import io.github.ternln.tern.ChannelState
import io.github.ternln.tern.FeeBump
import io.github.ternln.tern.WakeOutcome
import java.io.File
import java.nio.file.Files
import java.time.Duration
import java.time.Instant
import javax.crypto.AEADBadTagException
import javax.crypto.KeyGenerator
import kotlin.test.Test
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue

/** The pure parts: scheduling, outcome mapping, the report log and its lines, the seed file. */
class PolicyAndLogTest {
    private fun tmp(name: String): File = Files.createTempDirectory("tern-demo-$name").toFile()

    @Test
    fun theInitialDelayFollowsNextWakeAfterButNeverUnderFifteenMinutes() {
        assertEquals(Duration.ofMinutes(15), WakePolicy.initialDelay(null as Long?))
        assertEquals(Duration.ofMinutes(15), WakePolicy.initialDelay(report(nextSecs = 600)))
        assertEquals(Duration.ofMinutes(15), WakePolicy.initialDelay(report(nextSecs = 0)))
        assertEquals(Duration.ofMinutes(20), WakePolicy.initialDelay(report(nextSecs = 1200)))
        assertEquals(Duration.ofHours(6), WakePolicy.initialDelay(report(nextSecs = 6 * 3600)))
        assertEquals(Duration.ofHours(24), WakePolicy.initialDelay(24L * 3600))
        val huge = report().copy(nextWakeAfterSecs = ULong.MAX_VALUE)
        assertTrue(WakePolicy.initialDelay(huge) > Duration.ofDays(365), "no overflow to a negative delay")
    }

    @Test
    fun theScheduleIsRewrittenOnlyWhenTheReportAsksForSomethingOtherThanTheHour() {
        assertNull(WakePolicy.reschedule(report(nextSecs = 3600)))
        assertNull(WakePolicy.reschedule(report(nextSecs = 50 * 60)))
        assertEquals(Duration.ofMinutes(15), WakePolicy.reschedule(report(nextSecs = 600)))
        assertEquals(Duration.ofHours(6), WakePolicy.reschedule(report(nextSecs = 6 * 3600)))
        assertEquals(Duration.ofHours(1), WakePolicy.PERIOD)
        assertEquals(Duration.ofMinutes(15), WakePolicy.FLEX)
        assertEquals(Duration.ofSeconds(25), WakePolicy.DEADLINE)
    }

    @Test
    fun outcomesMapToWorkResults() {
        assertEquals(WorkResult.SUCCESS, WakePolicy.workResult(WakeOutcome.Completed, 0))
        assertEquals(WorkResult.SUCCESS, WakePolicy.workResult(WakeOutcome.DeadlineReached, 0))
        assertEquals(WorkResult.SUCCESS, WakePolicy.workResult(WakeOutcome.Cancelled, 0))
        assertEquals(WorkResult.SUCCESS, WakePolicy.workResult(WakeOutcome.Busy, 0))
        val failed = WakeOutcome.Failed("esplora: connection refused")
        assertEquals(WorkResult.RETRY, WakePolicy.workResult(failed, 0))
        assertEquals(WorkResult.RETRY, WakePolicy.workResult(failed, 1))
        assertEquals(WorkResult.SUCCESS, WakePolicy.workResult(failed, 2), "left to the next period")
    }

    @Test
    fun aRecordSurvivesItsLineAndReadsWell() {
        val at = Instant.parse("2026-12-01T23:40:00Z")
        val r = WakeRecord.of(
            report(WakeOutcome.Failed("bad\tthing\nhere \\ done"), nextSecs = 5400, pending = listOf("ab", "cd"),
                costs = costs(requests = 3, fsyncs = 4, dials = 1, totalMs = 2300)),
            at,
        )
        assertEquals(r, WakeRecord.decode(r.encode()))
        assertFalse(r.encode().contains('\n'))
        assertEquals(
            "2026-12-01 23:40Z wake Failed (bad\tthing\nhere \\ done) tip 812 · 3 req · 1 dial 4 fsyncs" +
                " · 2 pending · 2300 ms · next in 1 h 30 min",
            r.display(),
        )
        val quiet = WakeRecord.of(report(nextSecs = 6 * 3600), at)
        assertEquals("2026-12-01 23:40Z wake Completed tip 812 · 1 req · 0 dials 0 fsyncs · 120 ms · next in 6 h", quiet.display())
        assertEquals("2026-12-01 23:40Z skipped Skipped (why)", WakeRecord(at, Via.SKIPPED, "Skipped", "why").display())
        assertNull(WakeRecord.decode("v0\t1"))
        assertNull(WakeRecord.decode(r.encode().dropLast(3).substringBeforeLast('\t')), "a torn line")
        assertEquals("45 s", span(45)); assertEquals("15 min", span(900)); assertEquals("24 h", span(86_400))
    }

    @Test
    fun theLogKeepsTheNewestRecordsNewestFirstAndSkipsATornLine() {
        val file = File(tmp("log"), "wakes.log")
        val log = WakeLog(file, keep = 3)
        val t0 = Instant.parse("2026-12-01T00:00:00Z")
        repeat(10) { i -> log.append(WakeRecord.of(report(nextSecs = 100L + i), t0.plusSeconds(i * 60L))) }
        val recent = log.recent()
        assertEquals(listOf(109L, 108L, 107L), recent.map { it.nextWakeAfterSecs })
        assertTrue(file.readLines().size <= 6, "compacted: ${file.readLines().size} lines")
        file.appendText("v1\t123\tWAKE\tComp") // killed mid-append
        assertEquals(recent, log.recent())
        log.append(WakeRecord(t0, Via.APP_NODE, "Synced"))
        assertEquals(Via.APP_NODE, log.recent().first().via)
        assertEquals(109L, log.lastWake()?.nextWakeAfterSecs)
    }

    @Test
    fun theSeedFileIsSealedAndReadBackOnlyWithItsKey() {
        val key = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
        val other = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
        val file = File(tmp("seed"), "seed.bin")
        val vault = SeedVault(file) { key }
        assertFalse(vault.exists())
        val seed = vault.loadOrCreate()
        assertEquals(32, seed.size)
        assertContentEquals(seed, SeedVault(file) { key }.loadOrCreate(), "created once")
        val raw = file.readBytes()
        assertFalse(raw.toList().windowed(32).any { it == seed.toList() }, "not in the clear")
        assertFailsWith<AEADBadTagException> { SeedVault(file) { other }.load() }
        raw[raw.size - 1] = (raw[raw.size - 1] + 1).toByte()
        file.writeBytes(raw)
        assertFailsWith<AEADBadTagException> { vault.load() }
        assertFalse(File(file.path + ".tmp").exists())
    }

    private fun channel(state: ChannelState, updatePending: Boolean = false) = ChannelDetails(
        channelId = "11".repeat(32), temporaryChannelId = "22".repeat(32), counterpartyNodeId = "02" + "33".repeat(32),
        state = state, status = state.name, isOutbound = true, channelValueSat = 100_000u, balanceMsat = 99_000_000u,
        fundingTxo = null, confirmations = 0u, confirmationsRequired = 3u, isAnnounced = false,
        announcementReady = false, anchors = true, commitmentNumber = 0u, commitmentFeeratePerKw = 253u,
        updatePending = updatePending, closing = null, claimable = emptyList(), feeBump = FeeBump.Bumpable,
        feeBumpWords = "bumpable",
    )

    @Test
    fun leavingTheAppAsksForAnExpeditedWakeOnlyWithAChannelOnItsWay() {
        assertFalse(WakePolicy.expediteOnBackground(emptyList()))
        assertFalse(WakePolicy.expediteOnBackground(listOf(channel(ChannelState.READY), channel(ChannelState.CLOSED))))
        assertTrue(WakePolicy.expediteOnBackground(listOf(channel(ChannelState.READY), channel(ChannelState.AWAITING_CONFIRMATIONS))))
        assertTrue(WakePolicy.expediteOnBackground(listOf(channel(ChannelState.AWAITING_CHANNEL_READY))))
        assertTrue(WakePolicy.expediteOnBackground(listOf(channel(ChannelState.NEGOTIATING))))
        assertTrue(WakePolicy.expediteOnBackground(listOf(channel(ChannelState.READY, updatePending = true))))
    }
}
