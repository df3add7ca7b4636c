import Synchronization

/// Per-(organisation, source) request ceiling for HTTP ingest. Over it the sender gets
/// 429 with Retry-After: it is told, nothing is dropped silently.
final class RateLimiter: Sendable {
    struct Key: Hashable, Sendable {
        var orgID: Int64
        var sourceID: String
    }

    let perSecond: Double
    let burst: Double
    private let buckets = Mutex([Key: TokenBucket]())
    private let epoch = ContinuousClock.now

    /// `perSecond` 0 disables the limit.
    init(perSecond: Double, burst: Double) {
        self.perSecond = perSecond
        self.burst = burst
    }

    /// nil when allowed, else the seconds to wait.
    func check(orgID: Int64, sources: some Sequence<String>) -> Int? {
        guard perSecond > 0 else { return nil }
        let now = epoch.duration(to: .now)
        return buckets.withLock { b -> Int? in
            if b.count > 100_000 { b.removeAll() }  // idle sources are forgotten wholesale
            for s in sources {
                let key = Key(orgID: orgID, sourceID: s)
                var bucket = b[key] ?? TokenBucket(capacity: burst, refillPerSecond: perSecond)
                let ok = bucket.take(at: now)
                b[key] = bucket
                if !ok { return max(1, Int(bucket.secondsUntilNext.rounded(.up))) }
            }
            return nil
        }
    }
}
