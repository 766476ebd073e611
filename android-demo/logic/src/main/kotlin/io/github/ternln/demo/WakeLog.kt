package io.github.ternln.demo

import io.github.ternln.tern.SyncSummary
import io.github.ternln.tern.WakeOutcome
import io.github.ternln.tern.WakeReport
import java.io.File
import java.io.RandomAccessFile
import java.time.Instant
import java.time.ZoneOffset
import java.time.format.DateTimeFormatter

/** How a background run got its work done. */
enum class Via { WAKE, APP_NODE, SKIPPED, ERROR }

/** One background run as the app shows it: a flat record, one line in the log file. */
data class WakeRecord(
    val at: Instant,
    val via: Via,
    /** The outcome's name (`Completed`, `Busy`, ...), or what happened for APP_NODE/SKIPPED/ERROR. */
    val outcome: String,
    val reason: String = "",
    val tipHeight: Long? = null,
    val events: Int = 0,
    val pending: Int = 0,
    val requests: Long = 0,
    val commits: Long = 0,
    val fsyncs: Long = 0,
    val dials: Long = 0,
    val totalMs: Long = 0,
    val peakRssBytes: Long? = null,
    val nextWakeAfterSecs: Long? = null,
) {
    companion object {
        fun of(report: WakeReport, at: Instant): WakeRecord {
            val c = report.costs
            return WakeRecord(
                at = at,
                via = Via.WAKE,
                outcome = outcomeName(report.outcome),
                reason = (report.outcome as? WakeOutcome.Failed)?.reason ?: "",
                tipHeight = report.tipHeight?.toLong(),
                events = report.events.size,
                pending = report.pending.size,
                requests = c.httpRequests.toLong(),
                commits = c.commits.toLong(),
                fsyncs = c.fsyncs.toLong(),
                dials = c.dials.toLong(),
                totalMs = c.totalMs.toLong(),
                peakRssBytes = c.peakRssBytes?.toLong(),
                nextWakeAfterSecs = report.nextWakeAfterSecs.toLong(),
            )
        }

        fun ofAppSync(summary: SyncSummary, at: Instant, tookMs: Long) = WakeRecord(
            at = at, via = Via.APP_NODE, outcome = "Synced", tipHeight = summary.tipHeight?.toLong(),
            events = summary.events.toInt(), requests = summary.requests.toLong(), totalMs = tookMs,
        )

        fun outcomeName(o: WakeOutcome): String = when (o) {
            is WakeOutcome.Completed -> "Completed"
            is WakeOutcome.DeadlineReached -> "DeadlineReached"
            is WakeOutcome.Cancelled -> "Cancelled"
            is WakeOutcome.Busy -> "Busy"
            is WakeOutcome.Failed -> "Failed"
        }

        private val FIELDS = 14

        /** Parses a line written by [encode]; null for a line of another version or a torn one. */
        fun decode(line: String): WakeRecord? {
            val f = line.split('\t')
            if (f.size != FIELDS + 1 || f[0] != "v1") return null
            return runCatching {
                WakeRecord(
                    at = Instant.ofEpochMilli(f[1].toLong()),
                    via = Via.valueOf(f[2]),
                    outcome = unescape(f[3]),
                    reason = unescape(f[4]),
                    tipHeight = f[5].toLongOrNull(),
                    events = f[6].toInt(),
                    pending = f[7].toInt(),
                    requests = f[8].toLong(),
                    commits = f[9].toLong(),
                    fsyncs = f[10].toLong(),
                    dials = f[11].toLong(),
                    totalMs = f[12].toLong(),
                    peakRssBytes = f[13].toLongOrNull(),
                    nextWakeAfterSecs = f[14].toLongOrNull(),
                )
            }.getOrNull()
        }

        private fun escape(s: String) = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        private fun unescape(s: String): String {
            val out = StringBuilder()
            var i = 0
            while (i < s.length) {
                val ch = s[i]
                if (ch == '\\' && i + 1 < s.length) {
                    out.append(when (s[i + 1]) { 't' -> '\t'; 'n' -> '\n'; else -> s[i + 1] })
                    i += 2
                } else {
                    out.append(ch); i += 1
                }
            }
            return out.toString()
        }
    }

    /** One line, tab-separated, versioned; no tab or newline inside a field. */
    fun encode(): String = listOf(
        "v1", at.toEpochMilli().toString(), via.name, escape(outcome), escape(reason),
        tipHeight?.toString() ?: "", events.toString(), pending.toString(), requests.toString(),
        commits.toString(), fsyncs.toString(), dials.toString(), totalMs.toString(),
        peakRssBytes?.toString() ?: "", nextWakeAfterSecs?.toString() ?: "",
    ).joinToString("\t")

    /** The line the screen shows, e.g.
     * `2026-12-01 23:40Z wake Completed tip 812 · 1 req · 0 dials 0 fsyncs · 180 ms · next in 6 h`. */
    fun display(): String = buildString {
        append(TIME.format(at)).append(' ')
        append(when (via) { Via.WAKE -> "wake"; Via.APP_NODE -> "app node"; Via.SKIPPED -> "skipped"; Via.ERROR -> "error" })
        append(' ').append(outcome)
        if (reason.isNotEmpty()) append(" (").append(reason).append(')')
        if (via == Via.SKIPPED || via == Via.ERROR) return@buildString
        tipHeight?.let { append(" tip ").append(it) }
        append(" · ").append(requests).append(" req")
        if (via == Via.WAKE) {
            append(" · ").append(dials).append(if (dials == 1L) " dial " else " dials ")
            append(fsyncs).append(" fsyncs")
        }
        if (events > 0) append(" · ").append(events).append(if (events == 1) " event" else " events")
        if (pending > 0) append(" · ").append(pending).append(" pending")
        append(" · ").append(totalMs).append(" ms")
        peakRssBytes?.let { append(" · ").append(it / (1024 * 1024)).append(" MiB peak") }
        nextWakeAfterSecs?.let { append(" · next in ").append(span(it)) }
    }
}

private val TIME: DateTimeFormatter = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm'Z'").withZone(ZoneOffset.UTC)

/** 45 s, 15 min, 6 h, 1 h 30 min. */
fun span(secs: Long): String = when {
    secs < 60 -> "$secs s"
    secs < 3600 -> "${secs / 60} min"
    secs % 3600 == 0L -> "${secs / 3600} h"
    else -> "${secs / 3600} h ${(secs % 3600) / 60} min"
}

/**
 * The last [keep] background runs in a small text file, newest last. Appends are one short
 * line each; the file is rewritten (to a temp file, then renamed) only when it grows past
 * twice [keep]. A torn last line (the process killed mid-write) is skipped when read.
 */
class WakeLog(private val file: File, private val keep: Int = 20) {
    @Synchronized
    fun append(record: WakeRecord) {
        file.parentFile?.mkdirs()
        // After a torn last line (a kill mid-append) start a new line, or this record is lost too.
        val torn = file.length() > 0 && RandomAccessFile(file, "r").use { it.seek(it.length() - 1); it.read() } != '\n'.code
        file.appendText((if (torn) "\n" else "") + record.encode() + "\n")
        val lines = file.readLines()
        if (lines.size > 2 * keep) {
            val tmp = File(file.path + ".tmp")
            tmp.writeText(lines.takeLast(keep).joinToString("\n", postfix = "\n"))
            if (!tmp.renameTo(file)) tmp.delete()
        }
    }

    /** The newest [keep] records, newest first. */
    @Synchronized
    fun recent(): List<WakeRecord> {
        if (!file.exists()) return emptyList()
        return file.readLines().mapNotNull { WakeRecord.decode(it) }.takeLast(keep).reversed()
    }

    /** The newest record that came from a wake (its next_wake_after plans the next run). */
    fun lastWake(): WakeRecord? = recent().firstOrNull { it.via == Via.WAKE }
}
