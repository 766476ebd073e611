import Foundation
import Tern
import TernDemoKit

#if canImport(UIKit)
    import UIKit
#endif

/// The screen's state and the process-wide coordinator (one per process: the app's node and a
/// BGTask's wake go through it, never both at once).
@MainActor
final class AppModel: ObservableObject {
    static let shared = AppModel()

    @Published var info = "starting…"
    @Published var wakes: [String] = []
    @Published var peer = ""

    let coordinator: NodeCoordinator<FfiNodeOps>
    let log: WakeLog

    private init() {
        let dir = (try? DataDirectory.appContainer()) ?? FileManager.default.temporaryDirectory
        let plist = Bundle.main.infoDictionary ?? [:]
        let network: Network = (plist["TernNetwork"] as? String) == "signet" ? .signet : .regtest
        var config = defaultConfig(
            network: network, dataDir: dir.appendingPathComponent("node").path,
            esploraUrl: plist["TernEsploraURL"] as? String ?? "http://127.0.0.1:3002")
        config.runtimeThreads = 1
        coordinator = NodeCoordinator(ops: FfiNodeOps(config: config, seed: { try SeedKeychain.loadOrCreate() }))
        log = WakeLog(url: dir.appendingPathComponent("wakes.jsonl"))
    }

    func refresh(sync: Bool) async {
        do {
            let node = try await coordinator.foreground()
            if sync { _ = try await node.sync(deadline: 10) }
            let b = try await node.listBalances()
            var s = "node \(node.nodeId())\naddress \(try await node.newAddress())\n"
            s += "balance \(b.confirmedSat) sat (+\(b.unconfirmedSat) unconfirmed, \(b.lockedSat) locked)\n"
            s += "tip \(node.syncedHeight().map(String.init) ?? "-")\n"
            let channels = try await node.listChannels()
            if channels.isEmpty { s += "no channel\n" }
            for c in channels {
                s += "channel \(c.channelId.prefix(12))… \(c.status), \(c.channelValueSat) sat, \(c.confirmations) conf\n"
            }
            info = s
        } catch {
            info = "error: \(error)"
        }
        wakes = log.recent().map(\.display)
    }

    func openChannel() async {
        let parts = peer.split(separator: "@", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { info = "expected node_id@host:port"; return }
        do {
            let node = try await coordinator.foreground()
            _ = try await node.openChannel(
                nodeId: parts[0], address: parts[1], channelValueSat: 100_000, pushMsat: 0, announce: false)
        } catch {
            info = "error: \(error)"
        }
        await refresh(sync: false)
    }

    /// Entering the background: stop the node inside OS-granted time (beginBackgroundTask), then
    /// submit the next refresh request.
    func enteredBackground() {
        #if canImport(UIKit)
            var id = UIBackgroundTaskIdentifier.invalid
            id = UIApplication.shared.beginBackgroundTask(withName: "tern-stop") {
                UIApplication.shared.endBackgroundTask(id)
            }
            Task {
                try? await coordinator.pause()
                BackgroundGlue.schedule(
                    earliest: WakePolicy.earliestBegin(nextWakeAfterSecs: log.lastWake()?.nextWakeAfterSecs, now: Date()))
                UIApplication.shared.endBackgroundTask(id)
            }
        #endif
    }
}
