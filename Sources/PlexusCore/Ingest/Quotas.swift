public import PlexusModel
public import PlexusStorage
import Synchronization

/// Per-organisation cardinality limits. Every distinct series (source, metric, tags,
/// session, numeric or not) costs memory and an index entry forever, so a stranger with a
/// key must not be able to create them without bound.
public struct Quotas: Sendable {
    /// Distinct series an organisation may hold (0: no limit).
    public var maxSeriesPerOrg = 100_000
    /// Distinct sources an organisation may hold (0: no limit).
    public var maxSourcesPerOrg = 10_000
    /// Distinct metric names one source may have (0: no limit).
    public var maxMetricsPerSource = 1_000

    public init() {}
}

/// Admits a batch only if the series it would create keep its organisation within its
/// ``Quotas``. All or nothing: a refused batch creates no series.
///
/// What an organisation already holds is read from the store the first time the
/// organisation writes after a start, then kept in memory as hashes (about 16 bytes a
/// series), for at most `maxOrganizations` organisations at once (the least recently
/// used are dropped and read again when needed). Counting happens before the write, so a
/// write that then fails still counts until the next start: the limits are exact from the
/// store's point of view only after a restart, and never too lax.
public final class CardinalityGuard: Sendable {
    let store: any TelemetryStore
    let quotas: Quotas
    let maxOrganizations: Int

    struct OrgState: Sendable {
        var series: Set<Int> = []
        var metrics: [String: Set<String>] = [:]
        var lastUsed: UInt64 = 0
    }

    private struct State {
        var orgs: [Int64: OrgState] = [:]
        var tick: UInt64 = 0
    }

    private let state = Mutex(State())

    public init(store: any TelemetryStore, quotas: Quotas, maxOrganizations: Int = 1_000) {
        self.store = store
        self.quotas = quotas
        self.maxOrganizations = maxOrganizations
    }

    static func key(_ sourceID: String, _ metric: String, _ tags: [Tag], _ sessionID: String?, numeric: Bool) -> Int {
        var h = Hasher()
        h.combine(sourceID)
        h.combine(metric)
        h.combine(tags)
        h.combine(sessionID ?? "")
        h.combine(numeric)
        return h.finalize()
    }

    struct New {
        var key: Int
        var source: String
        var metric: String
    }

    /// Throws ``CoreError`` `CARDINALITY_LIMIT` (``CoreError/Kind/overLimit``) when the
    /// batch would pass a limit.
    public func admit(_ batch: IngestBatch, orgID: Int64) async throws {
        guard quotas.maxSeriesPerOrg > 0 || quotas.maxSourcesPerOrg > 0 || quotas.maxMetricsPerSource > 0 else { return }
        // The batch's distinct series, without the lock (a batch repeats a few series).
        var seen = Set<Int>()
        var new: [New] = []
        for p in batch.points {
            let numeric = if case .number = p.value { true } else { false }
            let k = Self.key(p.sourceID ?? "", p.metric, p.tags, p.sessionID, numeric: numeric)
            if seen.insert(k).inserted { new.append(New(key: k, source: p.sourceID ?? "", metric: p.metric)) }
        }
        if try check(new, orgID: orgID) { return }
        // First write of this organisation since the start: read what it holds.
        var loaded = OrgState()
        for s in try await store.seriesIdentities(orgID: orgID) {
            loaded.series.insert(Self.key(s.sourceID, s.metric, s.tags, s.sessionID, numeric: s.numeric))
            loaded.metrics[s.sourceID, default: []].insert(s.metric)
        }
        state.withLock { st in
            if st.orgs[orgID] == nil {
                if st.orgs.count >= maxOrganizations, let oldest = st.orgs.min(by: { $0.value.lastUsed < $1.value.lastUsed }) {
                    st.orgs[oldest.key] = nil
                }
                st.orgs[orgID] = loaded
            }
        }
        _ = try check(new, orgID: orgID)
    }

    /// Checks and records the batch's series; false when the organisation is not loaded.
    private func check(_ new: [New], orgID: Int64) throws -> Bool {
        try state.withLock { st -> Bool in
            guard var o = st.orgs[orgID] else { return false }
            st.tick += 1
            o.lastUsed = st.tick
            var added = o
            for n in new where !added.series.contains(n.key) {
                if quotas.maxSeriesPerOrg > 0 && added.series.count >= quotas.maxSeriesPerOrg {
                    throw Self.refusal("series", quotas.maxSeriesPerOrg, "this organisation")
                }
                if added.metrics[n.source] == nil {
                    if quotas.maxSourcesPerOrg > 0 && added.metrics.count >= quotas.maxSourcesPerOrg {
                        throw Self.refusal("sources", quotas.maxSourcesPerOrg, "this organisation")
                    }
                    added.metrics[n.source] = []
                }
                if !added.metrics[n.source]!.contains(n.metric) {
                    if quotas.maxMetricsPerSource > 0 && added.metrics[n.source]!.count >= quotas.maxMetricsPerSource {
                        throw Self.refusal("metrics", quotas.maxMetricsPerSource, "source \(n.source)")
                    }
                    added.metrics[n.source]!.insert(n.metric)
                }
                added.series.insert(n.key)
            }
            o = added
            st.orgs[orgID] = o
            return true
        }
    }

    static func refusal(_ what: String, _ limit: Int, _ owner: String) -> CoreError {
        CoreError(.overLimit, "CARDINALITY_LIMIT", "\(owner) has reached its limit of \(limit) \(what); ask the operator to raise it")
    }

    /// Drops what is known of an organisation (after data was deleted); read again on its
    /// next write.
    public func forget(orgID: Int64) {
        _ = state.withLock { $0.orgs.removeValue(forKey: orgID) }
    }
}
