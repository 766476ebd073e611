import Foundation

/// Where the demo keeps the node's data: the app's own container (Application Support), never
/// the App Group — iOS kills a suspended process that holds a file or SQLite lock in a shared
/// container (0xdead10cc), and the core holds D/tern.lock and SQLite for as long as a node or a
/// wake runs. The protection class is completeUntilFirstUserAuthentication: a background wake
/// can open the files once the phone was unlocked once after boot (`complete` would lock them
/// whenever the screen is locked). Excluded from backups: a restored copy of channel state is
/// an old state, and broadcasting an old state loses the channel's funds.
public enum DataDirectory {
    public static func appContainer(_ fm: FileManager = .default) throws -> URL {
        let base = try fm.url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
        return try prepare(base.appendingPathComponent("tern", isDirectory: true), fm)
    }

    /// Creates `dir` with the protection class and the backup exclusion (both iOS-only; on
    /// Linux the directory is only created).
    public static func prepare(_ dir: URL, _ fm: FileManager = .default) throws -> URL {
        #if os(iOS)
            try fm.createDirectory(
                at: dir, withIntermediateDirectories: true,
                attributes: [.protectionKey: FileProtectionType.completeUntilFirstUserAuthentication])
            try fm.setAttributes(
                [.protectionKey: FileProtectionType.completeUntilFirstUserAuthentication], ofItemAtPath: dir.path)
            var values = URLResourceValues()
            values.isExcludedFromBackup = true
            var url = dir
            try url.setResourceValues(values)
        #else
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        #endif
        return dir
    }
}
