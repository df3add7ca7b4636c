import Foundation
import PlexusCore
import PlexusModel
import Testing

@testable import PlexusServer

/// The limiters decide without I/O and take time as an input.
@Suite("Limiters")
struct LimiterTests {
    @Test("rotating source ids buys nothing past the organisation's own bucket")
    func orgBucket() {
        let l = RateLimiter(perSecond: 10, burst: 10, orgPerSecond: 50)
        var allowed = 0
        for i in 0..<1_000 where l.check(orgID: 1, sources: ["s\(i)"], at: .seconds(1)) == nil { allowed += 1 }
        #expect(allowed == 100)  // the org's burst (2 x 50), whatever the ids
        // Another organisation is not touched.
        #expect(l.check(orgID: 2, sources: ["s0"], at: .seconds(1)) == nil)
        // The org refills with time.
        #expect(l.check(orgID: 1, sources: ["new"], at: .seconds(3)) == nil)
    }

    @Test("many sources of one organisation never reset another's buckets")
    func noGlobalReset() {
        let l = RateLimiter(perSecond: 1, burst: 1, orgPerSecond: 0, maxSourcesPerOrg: 100)
        // Org 2's source spends its only token.
        #expect(l.check(orgID: 2, sources: ["victim"], at: .seconds(1)) == nil)
        #expect(l.check(orgID: 2, sources: ["victim"], at: .seconds(1)) != nil)
        // Org 1 churns through thousands of ids (each a busy bucket for a moment).
        for i in 0..<5_000 { _ = l.check(orgID: 1, sources: ["id\(i)"], at: .seconds(1)) }
        // Org 2's bucket is still empty: no wholesale reset handed it a fresh one.
        #expect(l.check(orgID: 2, sources: ["victim"], at: .seconds(1)) != nil)
    }

    @Test("an organisation with too many busy sources is refused new ones until some go quiet")
    func boundedPerOrg() {
        let l = RateLimiter(perSecond: 1, burst: 1, orgPerSecond: 0, maxSourcesPerOrg: 3)
        for s in ["a", "b", "c"] { #expect(l.check(orgID: 1, sources: [s], at: .seconds(1)) == nil) }
        #expect(l.check(orgID: 1, sources: ["d"], at: .seconds(1)) != nil)
        // A second later every bucket is full again, so they are forgotten and "d" fits.
        #expect(l.check(orgID: 1, sources: ["d"], at: .seconds(3)) == nil)
    }

    @Test("failed sign-ins lock a (client, email) pair and a client, never the email for everyone")
    func loginThrottle() {
        let t = LoginThrottle(perEmailAndClient: 3, perClient: 5, window: 60_000_000)
        for _ in 0..<3 { t.failed("ada@example.com", client: "10.0.0.9", now: 0) }
        #expect(t.retryAfter("ada@example.com", client: "10.0.0.9", now: 1) != nil)
        // Ada, from her own address, is not locked out by the stranger.
        #expect(t.retryAfter("ada@example.com", client: "192.168.1.2", now: 1) == nil)
        // The stranger spraying other emails hits the per-client cap.
        t.failed("bob@example.com", client: "10.0.0.9", now: 2)
        t.failed("cy@example.com", client: "10.0.0.9", now: 2)
        #expect(t.retryAfter("dan@example.com", client: "10.0.0.9", now: 3) != nil)
        #expect(t.retryAfter("dan@example.com", client: "10.0.0.10", now: 3) == nil)
        // The window passes.
        #expect(t.retryAfter("ada@example.com", client: "10.0.0.9", now: 60_000_001) == nil)
    }

    @Test("the throttle's memory is bounded")
    func throttleBounded() {
        let t = LoginThrottle(perEmailAndClient: 3, perClient: 5, window: 60_000_000, capacity: 1_000)
        for i in 0..<10_000 { t.failed("e\(i)@example.com", client: "c\(i)", now: Int64(i)) }
        // The newest failures are still counted.
        for _ in 0..<2 { t.failed("e9999@example.com", client: "c9999", now: 10_000) }
        #expect(t.retryAfter("e9999@example.com", client: "c9999", now: 10_001) != nil)
    }

    @Test("query strings decode + and %XX in keys and values, and keep repeats")
    func queryString() {
        let q = QueryString("metrics=a%2Cb&metrics=c+d&tag.my+key%3D=v%20w&bad=%zz&empty&=x")
        #expect(q.all("metrics") == ["a,b", "c d"])
        #expect(q.get("tag.my key=") == "v w")
        #expect(q.get("bad") == "%zz")
        #expect(q.get("empty") == "")
        #expect(QueryRoutes.metricNames(QueryString("metrics=a,b")) == ["a", "b"])
        #expect(QueryRoutes.metricNames(QueryString("metrics=a,b&metrics=c")) == ["a,b", "c"])
        #expect(QueryRoutes.metricNames(QueryString("metric=a,b")) == ["a,b"])
        #expect(QueryRoutes.metricNames(QueryString("x=1")) == nil)
    }

    @Test("durations never overflow and stay within the valid time range")
    func durations() {
        #expect(Timestamp.duration("1h") == 3_600_000_000)
        #expect(Timestamp.duration("9223372036854775807d") == nil)
        #expect(Timestamp.duration("106751992d") == nil)  // past 2^63 µs
        #expect(Timestamp.duration("3000000d") == nil)  // past the year 9999
        #expect(Timestamp.duration("2932896d") != nil)  // ~8,030 years: inside the range
        #expect(Timestamp.duration("-1h") == nil)
        #expect(Timestamp.micros(fromWire: -1) == nil)
        #expect(Timestamp.micros(fromWire: 253_402_300_799.999) != nil)
        #expect(Timestamp.micros(fromWire: 253_402_300_800) == nil)
    }
}
