import Foundation

#if canImport(Security)
    import Security

    /// The wallet's 32-byte seed in the keychain, readable after the first unlock (a background
    /// refresh may run with the screen locked) and never leaving this device (no iCloud keychain,
    /// no backup).
    enum SeedKeychain {
        private static let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: "org.tern.demo",
            kSecAttrAccount as String: "seed",
        ]

        static func loadOrCreate() throws -> Data {
            var q = query
            q[kSecReturnData as String] = true
            var out: CFTypeRef?
            let status = SecItemCopyMatching(q as CFDictionary, &out)
            if status == errSecSuccess, let data = out as? Data { return data }
            guard status == errSecItemNotFound else { throw KeychainError(status: status) }
            var seed = Data(count: 32)
            let ok = seed.withUnsafeMutableBytes { SecRandomCopyBytes(kSecRandomDefault, 32, $0.baseAddress!) }
            guard ok == errSecSuccess else { throw KeychainError(status: ok) }
            var add = query
            add[kSecValueData as String] = seed
            add[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
            let added = SecItemAdd(add as CFDictionary, nil)
            guard added == errSecSuccess else { throw KeychainError(status: added) }
            return seed
        }
    }

    struct KeychainError: Error { let status: OSStatus }
#endif
