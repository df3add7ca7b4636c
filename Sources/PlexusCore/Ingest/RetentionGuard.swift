public import PlexusStorage
import Synchronization

/// Refuses points older than their organisation's raw retention, as InfluxDB refuses
/// points beyond its retention policy: such a point would be removed by the next
/// retention run, and a resent one would be counted again in the rollups that outlive
/// the points. An organisation's own setting (``Organization/retention``) is read from
/// the store at most once a ``refresh`` per organisation (`plexus-server orgs retention`
/// runs in another process), by the caller's clock.
public final class RetentionGuard: Sendable {
    let store: any TenantStore
    let defaults: RetentionPolicy
    /// Unix µs.
    let now: @Sendable () -> Int64
    let refresh: Int64

    private struct Known {
        var raw: RetentionPeriod
        var readAt: Int64
    }

    private let known = Mutex([Int64: Known]())

    public init(
        store: any TenantStore, defaults: RetentionPolicy, now: @escaping @Sendable () -> Int64, refresh: Int64 = 1_000_000
    ) {
        self.store = store
        self.defaults = defaults
        self.now = now
        self.refresh = refresh
    }

    /// Throws `INVALID_POINT` naming the first point of `points` (times in Unix µs, nil:
    /// the receive time) older than the organisation's raw retention at `now`.
    func check(orgID: Int64, times: some Sequence<Int64?>) async throws {
        let at = now()
        let raw = try await period(orgID: orgID, at: at)
        guard let cutoff = raw.cutoff(at: at) else { return }
        for (i, t) in times.enumerated() where (t ?? at) < cutoff {
            throw CoreError(
                .invalid, "INVALID_POINT",
                "points[\(i)].timestamp is older than the organisation's retention (\(raw)): such points are not kept")
        }
    }

    /// The organisation's raw retention: its own over the default, read again after `refresh`.
    func period(orgID: Int64, at: Int64) async throws -> RetentionPeriod {
        if let k = known.withLock({ $0[orgID] }), at - k.readAt < refresh, at >= k.readAt { return k.raw }
        let own = try await store.organization(id: orgID)?.retention ?? RetentionOverride()
        let raw = defaults.overridden(by: own).raw
        known.withLock { cache in
            // Bounded: organisations come and go; a full cache starts again.
            if cache.count >= 10_000 { cache.removeAll() }
            cache[orgID] = Known(raw: raw, readAt: at)
        }
        return raw
    }
}
