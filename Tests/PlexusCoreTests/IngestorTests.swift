import PlexusCore
import PlexusModel
import PlexusStorage
import PlexusStorageSQLite
import Synchronization
import Testing

/// The Ingestor on the real embedded store, with a live fan-out that writes down what it
/// was shown (the hub's own rules are tested in the server's tests).
@Suite("Ingestor: one order of rules for every transport")
struct IngestorTests {
    final class Shown: LiveFanout {
        let published = Mutex<[(Int64, IngestBatch)]>([])
        let recordings = Mutex<[String: String]>([:])
        func publish(orgID: Int64, batch: IngestBatch, receivedAt: Int64) { published.withLock { $0.append((orgID, batch)) } }
        func recording(orgID: Int64, sourceID: String) -> String? { recordings.withLock { $0["\(orgID)/\(sourceID)"] } }
        func setRecording(orgID: Int64, sourceID: String, sessionID: String?) {
            recordings.withLock { $0["\(orgID)/\(sourceID)"] = sessionID }
        }
        var batches: [IngestBatch] { published.withLock { $0.map(\.1) } }
    }

    static let t0: Int64 = 1_699_999_980_000_000
    static let all = TimeRange(start: 0, end: Int64.max / 4)

    static func submission(_ json: String, org: Int64 = 1, forced: String? = nil, pacing: Ingestor.Pacing = .perRequest)
        throws -> Ingestor.Submission
    {
        let bytes = Array(json.utf8)
        let options = IngestDecoder.Options(forcedSourceID: forced)
        let batch = try bytes.withUnsafeBytes { try IngestDecoder.decode($0, options: options) }
        return Ingestor.Submission(
            orgID: org, batch: batch, receivedAt: t0, transport: .http,
            pacing: pacing)
    }

    static func withIngestor(
        limiter: RateLimiter = RateLimiter(perSecond: 0, burst: 0), quotas: Quotas = Quotas(),
        retention: RetentionPolicy? = nil, now: @escaping @Sendable () -> Int64 = { t0 },
        _ body: (Ingestor, Shown, SQLiteStore) async throws -> Void
    ) async throws {
        try await SQLiteStore.withTemporary { store in
            let shown = Shown()
            let ingestor = Ingestor(
                store: store, live: shown, limiter: limiter,
                cardinality: CardinalityGuard(store: store, quotas: quotas),
                retention: retention.map { RetentionGuard(store: store, defaults: $0, now: now) })
            try await body(ingestor, shown, store)
        }
    }

    @Test("past the raw retention: refused whole, nothing shown or stored; an organisation's own setting counts within a second")
    func retention() async throws {
        final class Clock: Sendable { let now = Mutex(IngestorTests.t0) }
        let clock = Clock()
        let hour: Int64 = 3_600_000_000
        let now: @Sendable () -> Int64 = { clock.now.withLock { $0 } }
        try await Self.withIngestor(retention: RetentionPolicy(raw: .micros(hour)), now: now) { ingestor, shown, store in
            func body(_ ageSeconds: Int64?, _ v: Int) -> String {
                let ts = ageSeconds.map { #","timestamp":\#(Double(Self.t0 - $0 * 1_000_000) / 1_000_000)"# } ?? ""
                return #"{"source_id":"r","points":[{"metric":"m","value":\#(v)\#(ts)},{"metric":"m","value":0}]}"#
            }
            await #expect(
                throws: CoreError(
                    .invalid, "INVALID_POINT",
                    "points[0].timestamp is older than the organisation's retention (1h): such points are not kept")
            ) { try await ingestor.ingest(Self.submission(body(7_200, 1))) }
            #expect(shown.batches.isEmpty)
            // Exactly at the limit, within it, and without a timestamp (the receive time): kept.
            try await ingestor.ingest(Self.submission(body(3_600, 2)))
            try await ingestor.ingest(Self.submission(body(60, 3)))
            try await ingestor.ingest(Self.submission(body(nil, 4)))
            // Another organisation keeps its points forever: read again once a second has passed.
            #expect(try await store.setRetention(orgID: 1, RetentionOverride(raw: .forever)))
            await #expect(throws: CoreError.self) { try await ingestor.ingest(Self.submission(body(7_200, 5))) }
            clock.now.withLock { $0 += 1_000_000 }
            try await ingestor.ingest(Self.submission(body(7_200, 6)))
            let r = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "r"), range: Self.all, limit: 100)
            let values = r.series.first?.values.compactMap { v -> Double? in if case .number(let d) = v { d } else { nil } }
            #expect(Set(values ?? []) == [0, 2, 3, 4, 6])
        }
    }

    @Test("a source being recorded: its untagged points join the session, live and on disk; tagged points keep theirs")
    func recording() async throws {
        try await Self.withIngestor { ingestor, shown, store in
            shown.recordings.withLock { $0["1/rig"] = "rec-1" }
            let stored = try await ingestor.ingest(
                Self.submission(
                    #"{"points":[{"metric":"a","value":1,"timestamp":1699999980},{"metric":"b","value":2,"session_id":"mine","timestamp":1699999980}]}"#,
                    forced: "rig"))
            #expect(stored.points.map(\.sessionID) == ["rec-1", "mine"])
            #expect(shown.batches.first?.points.map(\.sessionID) == ["rec-1", "mine"])
            let inSession = try await store.queryRaw(
                SeriesSelector(orgID: 1, sourceID: "rig", sessionID: "rec-1"), range: Self.all,
                limit: 10)
            #expect(inSession.series.map(\.metric) == ["a"])
            // Another organisation's source of the same name is not being recorded.
            let other = try await ingestor.ingest(Self.submission(#"{"points":[{"metric":"a","value":1}]}"#, org: 2, forced: "rig"))
            #expect(other.points.map(\.sessionID) == [nil])
        }
    }

    @Test("over the request rate: refused with a retry time, nothing shown or stored; a paced connection is not counted")
    func rate() async throws {
        try await Self.withIngestor(limiter: RateLimiter(perSecond: 1, burst: 1)) { ingestor, shown, store in
            // Each body another value: the same point sent again would be stored once.
            func body(_ v: Int) -> String { #"{"source_id":"s","points":[{"metric":"m","value":\#(v),"timestamp":1699999980}]}"# }
            try await ingestor.ingest(Self.submission(body(0)))
            await #expect(throws: CoreError.rateLimited(retryAfterSeconds: 1)) { try await ingestor.ingest(Self.submission(body(9))) }
            #expect(shown.batches.count == 1)
            for v in 1...5 { try await ingestor.ingest(Self.submission(body(v), pacing: .pacedByConnection)) }
            #expect(shown.batches.count == 6)
            let r = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "s"), range: Self.all, limit: 100)
            #expect(r.series.first?.values == (0...5).map { .number(Double($0)) })
        }
    }

    @Test("over a cardinality quota: refused whole, for that organisation only; nothing shown or stored")
    func cardinality() async throws {
        var quotas = Quotas()
        quotas.maxSeriesPerOrg = 2
        try await Self.withIngestor(quotas: quotas) { ingestor, shown, store in
            try await ingestor.ingest(Self.submission(#"{"source_id":"s","points":[{"metric":"a","value":1},{"metric":"b","value":1}]}"#))
            let third = try Self.submission(#"{"source_id":"s","points":[{"metric":"a","value":2},{"metric":"c","value":1}]}"#)
            do {
                try await ingestor.ingest(third)
                Issue.record("a third series was admitted")
            } catch let e as CoreError {
                #expect(e.kind == .overLimit && e.code == "CARDINALITY_LIMIT")
            }
            #expect(shown.batches.count == 1)
            #expect(try await store.metrics(orgID: 1, sourceID: "s") == ["a", "b"])
            let a = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "s", metrics: ["a"]), range: Self.all, limit: 10)
            #expect(a.series.first?.values == [.number(1)])  // nothing of the refused batch
            try await ingestor.ingest(Self.submission(#"{"source_id":"s","points":[{"metric":"c","value":1}]}"#, org: 2))
        }
    }

    @Test("an empty batch is accepted and touches nothing; admit then store is the same as ingest")
    func emptyAndSplit() async throws {
        try await Self.withIngestor { ingestor, shown, store in
            let empty = try await ingestor.admit(Self.submission(#"{"points":[]}"#))
            #expect(empty.entry == nil && shown.batches.isEmpty)
            let admitted = try await ingestor.admit(Self.submission(#"{"source_id":"d","points":[{"metric":"m","value":1}]}"#))
            // Shown before it is durable (a live view never waits for the disk) …
            #expect(shown.batches.count == 1)
            #expect(try await store.sources(orgID: 1).isEmpty)
            // … and stored by the second step.
            try await ingestor.store([try #require(admitted.entry)], transport: .ws)
            #expect(try await store.sources(orgID: 1).map(\.sourceID) == ["d"])
        }
    }
}
