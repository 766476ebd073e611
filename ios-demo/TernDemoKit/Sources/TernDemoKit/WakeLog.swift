import Foundation
import Tern

/// How a background run got its work done.
public enum Via: String, Codable, Sendable {
    case wake, appNode, skipped, error
}

/// One background run as the app shows it.
public struct WakeRecord: Codable, Equatable, Sendable {
    public var at: Date
    public var via: Via
    public var outcome: String
    public var reason: String = ""
    public var tipHeight: UInt32?
    public var events: Int = 0
    public var pending: Int = 0
    public var requests: UInt64 = 0
    public var fsyncs: UInt64 = 0
    public var dials: UInt64 = 0
    public var totalMs: UInt64 = 0
    public var peakRssBytes: UInt64?
    public var nextWakeAfterSecs: UInt64?

    public init(at: Date, via: Via, outcome: String, reason: String = "") {
        self.at = at
        self.via = via
        self.outcome = outcome
        self.reason = reason
    }

    public init(report: WakeReport, at: Date) {
        self.init(at: at, via: .wake, outcome: WakePolicy.name(report.outcome))
        if case .failed(let reason) = report.outcome { self.reason = reason }
        tipHeight = report.tipHeight
        events = report.events.count
        pending = report.pending.count
        requests = report.costs.httpRequests
        fsyncs = report.costs.fsyncs
        dials = report.costs.dials
        totalMs = report.costs.totalMs
        peakRssBytes = report.costs.peakRssBytes
        nextWakeAfterSecs = report.nextWakeAfterSecs
    }

    public init(appSync summary: SyncSummary, at: Date, tookMs: UInt64) {
        self.init(at: at, via: .appNode, outcome: "Synced")
        tipHeight = summary.tipHeight
        events = Int(summary.events)
        requests = summary.requests
        totalMs = tookMs
    }

    /// The line the screen shows, e.g.
    /// `2026-12-01 23:40Z wake Completed tip 812 · 1 req · 0 dials 0 fsyncs · 180 ms · next in 6 h`.
    public var display: String {
        var s = WakeRecord.time(at) + " "
        switch via {
        case .wake: s += "wake"
        case .appNode: s += "app node"
        case .skipped: s += "skipped"
        case .error: s += "error"
        }
        s += " " + outcome
        if !reason.isEmpty { s += " (\(reason))" }
        if via == .skipped || via == .error { return s }
        if let tip = tipHeight { s += " tip \(tip)" }
        s += " · \(requests) req"
        if via == .wake {
            s += " · \(dials) \(dials == 1 ? "dial" : "dials") \(fsyncs) fsyncs"
        }
        if events > 0 { s += " · \(events) \(events == 1 ? "event" : "events")" }
        if pending > 0 { s += " · \(pending) pending" }
        s += " · \(totalMs) ms"
        if let rss = peakRssBytes { s += " · \(rss / (1024 * 1024)) MiB peak" }
        if let next = nextWakeAfterSecs { s += " · next in \(span(next))" }
        return s
    }

    static func time(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: date)
        func two(_ n: Int?) -> String { String(format: "%02d", n ?? 0) }
        return "\(c.year ?? 0)-\(two(c.month))-\(two(c.day)) \(two(c.hour)):\(two(c.minute))Z"
    }
}

/// 45 s, 15 min, 6 h, 1 h 30 min.
func span(_ secs: UInt64) -> String {
    if secs < 60 { return "\(secs) s" }
    if secs < 3600 { return "\(secs / 60) min" }
    if secs % 3600 == 0 { return "\(secs / 3600) h" }
    return "\(secs / 3600) h \((secs % 3600) / 60) min"
}

/// The last `keep` background runs, one JSON object a line, newest last in the file. A torn
/// last line (the process killed mid-write) is skipped when read; the file is rewritten
/// (atomically) once it holds twice `keep` lines.
public final class WakeLog: @unchecked Sendable {
    private let url: URL
    private let keep: Int
    private let lock = NSLock()

    public init(url: URL, keep: Int = 20) {
        self.url = url
        self.keep = keep
    }

    private static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .millisecondsSince1970
        e.outputFormatting = [.sortedKeys]
        return e
    }()
    private static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .millisecondsSince1970
        return d
    }()

    private func lines() -> [Substring] {
        guard let data = try? Data(contentsOf: url) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n")
    }

    public func append(_ record: WakeRecord) throws {
        try lock.withLock {
            var line = try WakeLog.encoder.encode(record)
            line.append(UInt8(ascii: "\n"))
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            if let handle = try? FileHandle(forUpdating: url) {
                defer { try? handle.close() }
                let end = try handle.seekToEnd()
                if end > 0 {
                    // After a torn last line (a kill mid-append) start a new line, or this
                    // record is lost too.
                    try handle.seek(toOffset: end - 1)
                    if handle.readData(ofLength: 1) != Data([UInt8(ascii: "\n")]) { line.insert(UInt8(ascii: "\n"), at: 0) }
                    try handle.seekToEnd()
                }
                try handle.write(contentsOf: line)
            } else {
                try line.write(to: url)
            }
            let all = lines()
            if all.count > 2 * keep {
                let kept = all.suffix(keep).joined(separator: "\n") + "\n"
                try Data(kept.utf8).write(to: url, options: .atomic)
            }
        }
    }

    /// The newest `keep` records, newest first.
    public func recent() -> [WakeRecord] {
        lock.withLock {
            lines().compactMap { try? WakeLog.decoder.decode(WakeRecord.self, from: Data($0.utf8)) }
                .suffix(keep).reversed()
        }
    }

    /// The newest record that came from a wake (its next_wake_after plans the next request).
    public func lastWake() -> WakeRecord? { recent().first { $0.via == .wake } }
}
