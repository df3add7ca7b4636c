import PlexusStorage
import Testing

@testable import PlexusServer

/// The authenticator's key cache: monotonic time only, and bounded.
@Suite("API key cache")
struct KeyCacheTests {
    static func record(_ id: String) -> APIKeyRecord {
        APIKeyRecord(id: id, orgID: 1, name: id, hash: [1], prefix: "plx_", scopes: [.read], createdAt: 0)
    }

    static func hash(_ n: Int) -> [UInt8] { [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF)] }

    @Test("an entry lives for the TTL of monotonic time, found or not found")
    func ttl() {
        var c = KeyCache(capacity: 10, ttl: .seconds(1))
        c.insert(Self.hash(1), Self.record("a"), at: .seconds(100))
        c.insert(Self.hash(2), nil, at: .seconds(100))
        #expect(c.lookup(Self.hash(1), at: .seconds(100) + .milliseconds(999))??.id == "a")
        #expect(c.lookup(Self.hash(2), at: .seconds(100) + .milliseconds(999)) == .some(nil))
        #expect(c.lookup(Self.hash(1), at: .seconds(101)) == nil)
        #expect(c.lookup(Self.hash(2), at: .seconds(101)) == nil)
        // A time before the fetch (impossible for a monotonic clock) never counts as fresh.
        #expect(c.lookup(Self.hash(1), at: .seconds(99)) == nil)
    }

    @Test("a flood of keys never grows the cache past its capacity; expired entries go first, then the oldest")
    func bounded() {
        var c = KeyCache(capacity: 100, ttl: .seconds(1))
        for i in 0..<10_000 { c.insert(Self.hash(i), nil, at: .milliseconds(i / 50)) }
        #expect(c.count <= 100)
        // The newest stay.
        #expect(c.lookup(Self.hash(9_999), at: .milliseconds(199)) == .some(nil))
        #expect(c.lookup(Self.hash(0), at: .milliseconds(199)) == nil)
        // After the TTL, one insert clears every expired entry.
        c.insert(Self.hash(1), Self.record("a"), at: .seconds(10))
        #expect(c.count == 1)
        c.removeAll()
        #expect(c.count == 0 && c.lookup(Self.hash(1), at: .seconds(10)) == nil)
    }

    @Test("re-inserting a key keeps one entry and the newer time")
    func replace() {
        var c = KeyCache(capacity: 2, ttl: .seconds(1))
        c.insert(Self.hash(1), nil, at: .seconds(0))
        c.insert(Self.hash(1), Self.record("a"), at: .milliseconds(500))
        c.insert(Self.hash(2), nil, at: .milliseconds(600))
        #expect(c.count == 2)
        #expect(c.lookup(Self.hash(1), at: .milliseconds(1_400))??.id == "a")
    }
}
