import Crypto
import PlexusCore
public import PlexusStorage

/// Creating and checking `plx_` keys. Keys are 32 base62 characters from the system
/// CSPRNG; only their SHA-256 is stored.
public enum APIKeys {
    static let alphabet = RandomText.alphabet

    public static func randomBase62(_ n: Int) -> String { RandomText.base62(n) }

    public static func generate() -> String { "plx_" + randomBase62(32) }

    /// `plx_` followed by exactly 32 base62 characters.
    public static func isWellFormed(_ key: String) -> Bool {
        let u = Array(key.utf8)
        guard u.count == 36, u.starts(with: Array("plx_".utf8)) else { return false }
        return u[4...].allSatisfy { alphabet.contains($0) }
    }

    public static func hash(_ key: String) -> [UInt8] { Array(SHA256.hash(data: Array(key.utf8))) }

    /// Makes the record for a new key (not yet stored).
    public static func record(
        key: String, orgID: Int64, name: String, scopes: Set<Scope>, now: Int64,
        expiresAt: Int64? = nil
    ) -> APIKeyRecord {
        APIKeyRecord(
            id: "key_" + randomBase62(16), orgID: orgID, name: name, hash: hash(key),
            prefix: String(key.prefix(8)), scopes: scopes, createdAt: now, expiresAt: expiresAt)
    }

    /// Constant-time comparison of two digests.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
