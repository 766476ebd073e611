import SwiftUI
import TernDemoKit

#if canImport(UIKit)
    import UIKit

    /// App lifecycle glue: registers the refresh task before launch ends (BGTaskScheduler's
    /// rule). Entering the background is seen by ContentView's scenePhase (the SwiftUI
    /// lifecycle does not call the delegate's applicationDidEnterBackground).
    final class AppDelegate: NSObject, UIApplicationDelegate {
        func application(
            _ application: UIApplication, didFinishLaunchingWithOptions _: [UIApplication.LaunchOptionsKey: Any]? = nil
        ) -> Bool {
            BackgroundGlue.register(model: AppModel.shared)
            return true
        }
    }
#endif

@main
struct TernDemoApp: App {
    #if canImport(UIKit)
        @UIApplicationDelegateAdaptor(AppDelegate.self) var delegate
    #endif
    @StateObject private var model = AppModel.shared

    var body: some Scene {
        WindowGroup {
            ContentView(model: model)
        }
    }
}
