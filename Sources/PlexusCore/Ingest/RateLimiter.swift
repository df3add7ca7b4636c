import Synchronization

/// Request ceilings for HTTP ingest: one token bucket per (organisation, source) and one
/// per organisation, so rotating source ids buys no more than the organisation's share.
/// Over either the sender gets 429 with Retry-After: it is told, nothing is dropped
/// silently.
///
/// Memory stays bounded without resetting anyone: buckets are kept per organisation, and
/// when one organisation holds many, only its full buckets (the same as new ones) are
/// forgotten. An organisation that keeps more than `maxSourcesPerOrg` sources busy at once
/// is refused for new ones until some go quiet; other organisations never notice.
public final class RateLimiter: Sendable {
    public let perSecond: Double
    public let burst: Double
    public let orgPerSecond: Double
    public let maxSourcesPerOrg: Int
    fileprivate struct OrgBuckets {
        var org: TokenBucket
        var sources: [String: TokenBucket] = [:]
    }
    private let orgs = Mutex([Int64: OrgBuckets]())
    private let epoch = ContinuousClock.now

    /// `perSecond` 0 disables the per-source limit, `orgPerSecond` 0 the organisation's.
    public init(perSecond: Double, burst: Double, orgPerSecond: Double = 0, maxSourcesPerOrg: Int = 20_000) {
        self.perSecond = perSecond
        self.burst = burst
        self.orgPerSecond = orgPerSecond
        self.maxSourcesPerOrg = maxSourcesPerOrg
    }

    /// nil when allowed, else the seconds to wait.
    public func check(orgID: Int64, sources: some Sequence<String>) -> Int? {
        check(orgID: orgID, sources: sources, at: epoch.duration(to: .now))
    }

    /// The same at a given monotonic time (tests).
    public func check(orgID: Int64, sources: some Sequence<String>, at now: Duration) -> Int? {
        guard perSecond > 0 || orgPerSecond > 0 else { return nil }
        return orgs.withLock { all -> Int? in
            if all.count > 10_000 { all = all.filter { !$0.value.isIdle(at: now) } }
            var o = all[orgID] ?? OrgBuckets(org: TokenBucket(capacity: max(orgPerSecond * 2, 1), refillPerSecond: orgPerSecond))
            defer { all[orgID] = o }
            if orgPerSecond > 0 {
                guard o.org.take(at: now) else { return max(1, Int(o.org.secondsUntilNext.rounded(.up))) }
            }
            guard perSecond > 0 else { return nil }
            for s in sources {
                var bucket: TokenBucket
                if let b = o.sources[s] {
                    bucket = b
                } else {
                    if o.sources.count >= maxSourcesPerOrg {
                        o.sources = o.sources.filter { !$0.value.isFull(at: now) }
                        if o.sources.count >= maxSourcesPerOrg { return 1 }
                    }
                    bucket = TokenBucket(capacity: burst, refillPerSecond: perSecond)
                }
                let ok = bucket.take(at: now)
                o.sources[s] = bucket
                if !ok { return max(1, Int(bucket.secondsUntilNext.rounded(.up))) }
            }
            return nil
        }
    }
}

extension RateLimiter.OrgBuckets {
    func isIdle(at now: Duration) -> Bool { org.isFull(at: now) && sources.values.allSatisfy { $0.isFull(at: now) } }
}
