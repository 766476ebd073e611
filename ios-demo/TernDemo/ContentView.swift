import SwiftUI

/// One screen: the node, its balances and channels, a channel open, the last background runs.
struct ContentView: View {
    @ObservedObject var model: AppModel
    @Environment(\.scenePhase) private var phase

    var body: some View {
        NavigationView {
            List {
                Section("Node") {
                    Text(model.info).font(.system(.footnote, design: .monospaced)).textSelection(.enabled)
                    Button("Sync and refresh") { Task { await model.refresh(sync: true) } }
                }
                Section("Open a 100,000 sat channel") {
                    TextField("node_id@host:port (the LSP)", text: $model.peer)
                        .textInputAutocapitalization(.never).autocorrectionDisabled()
                    Button("Open") { Task { await model.openChannel() } }
                }
                Section("Background runs") {
                    if model.wakes.isEmpty { Text("none yet") }
                    ForEach(model.wakes, id: \.self) { Text($0).font(.caption) }
                }
            }
            .navigationTitle("Tern demo")
        }
        .onChange(of: phase) { p in
            switch p {
            case .active: Task { await model.refresh(sync: false) }
            // Stop the node inside beginBackgroundTask: the data-dir lock and SQLite are never
            // held by a suspended app (0xdead10cc).
            case .background: model.enteredBackground()
            default: break
            }
        }
        .task { await model.refresh(sync: false) }
    }
}
