import Foundation
import GRDB
import PlexusModel
import PlexusStorage
import PlexusStorageTesting
import Testing

@testable import PlexusStorageSQLite

/// A flush must never stop for everyone because of one series, one value or one failed
/// housekeeping step (hardening review, items 2 and 3).
@Suite("SQLite store: flush isolation", .timeLimit(.minutes(2)))
struct FlushIsolationTests {
    static let all = TimeRange(start: 0, end: Timestamp.validMicros.upperBound)

    func count(_ store: SQLiteStore, org: Int64 = 1, _ source: String, _ metric: String) async throws -> Int {
        let r = try await store.queryRaw(SeriesSelector(orgID: org, sourceID: source, metrics: [metric]), range: Self.all, limit: 10_000)
        return r.series.first?.timestamps.count ?? 0
    }

    @Test("sums that overflow saturate: ±1.7e308 in one minute keep every flush and query working")
    func overflowingRollups() async throws {
        try await withTemporarySQLiteStore { store in
            // Three separate flushes into the same 1-minute and 1-hour buckets: the SQL
            // upsert adds +1.7e308 + 1.7e308 (inf) and then -1.7e308 (inf + -inf = NaN).
            // Each at its own second: the same point twice would be stored once.
            for (k, v) in ["1.7e308", "1.7e308", "-1.7e308", "-1.7e308", "-1.7e308"].enumerated() {
                try await StoreConformance.append(
                    store, #"{"source_id":"big","points":[{"metric":"x","value":\#(v),"timestamp":\#(1_700_000_000 + k)}]}"#)
                await store.flushOnce()
            }
            for resolution in [Resolution.minute, .hour] {
                let r = try await store.queryAggregated(
                    SeriesSelector(orgID: 1, sourceID: "big", metrics: ["x"]), range: Self.all,
                    resolution: resolution, limit: 100)
                let b = try #require(r.series.first?.buckets.first)
                #expect(b.count == 5)
                #expect(b.sum.isFinite && b.average.isFinite && b.min == -1.7e308 && b.max == 1.7e308)
            }
            // The store still takes and serves data, for this source and every other.
            try await StoreConformance.append(
                store, org: 2, #"{"source_id":"other","points":[{"metric":"y","value":1,"timestamp":1700000001}]}"#)
            #expect(try await count(store, org: 2, "other", "y") == 1)
            #expect(try await count(store, "big", "x") == 5)
        }
    }

    @Test("a series the database refuses is set aside in rejected/; the rest of the flush commits and later flushes go on")
    func poisonedSeriesIsSetAside() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await withTemporarySQLiteStore(directory: dir) { store in
            // The database refuses every chunk of metric "bad" (as it would a value past its limits).
            try await store.pool.write { db in
                try db.execute(
                    sql: """
                        CREATE TRIGGER poison BEFORE INSERT ON chunks
                        WHEN (SELECT metric FROM series WHERE id = NEW.series_id) = 'bad'
                        BEGIN SELECT RAISE(ABORT, 'poisoned for the test'); END
                        """)
            }
            // Twenty good series beside the bad ones, so some are written after a refusal
            // whatever order the flush takes them in.
            let good = (0..<20).map { #"{"metric":"good\#($0)","value":\#($0),"timestamp":1700000000}"# }
            try await StoreConformance.append(
                store,
                """
                {"source_id":"dev","points":[{"metric":"good","value":1,"timestamp":1700000000},\(good.joined(separator: ",")),
                {"metric":"bad","value":2,"timestamp":1700000000},{"metric":"bad","value":"text","timestamp":1700000001}]}
                """)
            #expect(try await count(store, "dev", "good") == 1)
            for n in 0..<20 { #expect(try await count(store, "dev", "good\(n)") == 1) }
            #expect(try await count(store, "dev", "bad") == 0)
            let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/rejected")
            #expect(files.count == 1 && files[0].hasPrefix("flush-") && files[0].hasSuffix(".jsonl"))
            let lines = try String(contentsOfFile: dir + "/rejected/" + files[0], encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 2)
            for line in lines {
                let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                #expect(o["metric"] as? String == "bad" && o["source_id"] as? String == "dev")
                #expect((o["error"] as? String)?.contains("poisoned") == true)
            }
            // Later data, good and bad, keeps flowing; nothing waits on the poisoned series.
            try await StoreConformance.append(
                store,
                """
                {"source_id":"dev","points":[{"metric":"good","value":3,"timestamp":1700000002},{"metric":"bad","value":4,"timestamp":1700000002}]}
                """)
            #expect(try await count(store, "dev", "good") == 2)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/rejected").count == 2)
        }
        // The WAL checkpoint moved past the set-aside data: a restart does not replay it.
        try await withTemporarySQLiteStore(directory: dir) { (store: SQLiteStore) async throws in
            #expect(try await count(store, "dev", "good") == 2)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/rejected").count == 2)
        }
    }

    @Test("a WAL checkpoint that fails after the commit never puts flushed points back (no duplicates)")
    func checkpointFailureAfterCommit() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await withTemporarySQLiteStore(directory: dir) { store in
            try await StoreConformance.append(store, #"{"source_id":"d","points":[{"metric":"m","value":1,"timestamp":1700000000}]}"#)
            // Dropping old segments needs the WAL directory: take it away so that step fails.
            try FileManager.default.moveItem(atPath: dir + "/wal", toPath: dir + "/wal-away")
            await store.flushOnce()
            #expect(try await count(store, "d", "m") == 1)
            // Another flush (nothing new) must not store the point a second time.
            await store.flushOnce()
            #expect(try await count(store, "d", "m") == 1)
            let r = try await store.queryAggregated(
                SeriesSelector(orgID: 1, sourceID: "d", metrics: ["m"]), range: Self.all,
                resolution: .minute, limit: 10)
            #expect(r.series.first?.buckets.first?.count == 1)
            try FileManager.default.moveItem(atPath: dir + "/wal-away", toPath: dir + "/wal")
        }
    }

    @Test("chunks of large values are cut by bytes, not only by count")
    func chunksCutByBytes() {
        let big = PlexusValue.string(String(repeating: "x", count: 600_000))
        let values = Array(repeating: big, count: 20)
        let ts = (0..<20).map { Int64($0) }
        var cuts: [Int] = []
        var lo = 0
        while lo < values.count {
            let hi = SQLiteStore.chunkEnd(ts, values, from: lo, maxPoints: 8192, maxSpan: .max, maxBytes: 4 << 20)
            #expect(hi > lo)
            cuts.append(hi - lo)
            lo = hi
        }
        #expect(cuts.allSatisfy { $0 <= 7 })
        #expect(cuts.reduce(0, +) == 20)
        // One value larger than the cap still makes progress (a chunk of one).
        #expect(
            SQLiteStore.chunkEnd(
                [0], [.string(String(repeating: "y", count: 5 << 20))], from: 0, maxPoints: 10, maxSpan: .max, maxBytes: 4 << 20) == 1)
    }

    @Test("points of one time come back in arrival order when a late chunk starts before the one that holds the first of them")
    func arrivalOrderAcrossChunks() async throws {
        try await withTemporarySQLiteStore { store in
            let t0 = StoreConformance.t0
            func write(_ points: [(Int64, String)]) async throws {
                let list = points.map { #"{"metric":"log","value":"\#($0.1)","timestamp":\#(Double(t0 + $0.0 * 1_000_000) / 1_000_000)}"# }
                try await StoreConformance.append(store, #"{"source_id":"o","points":[\#(list.joined(separator: ","))]}"#)
                await store.flushOnce()
            }
            try await write([(100, "x"), (200, "a")])
            try await write([(50, "y"), (200, "b")])  // late: a chunk of its own, starting first
            try await write([(200, "c"), (300, "z")])  // joins the newest chunk
            let sel = SeriesSelector(orgID: 1, sourceID: "o")
            let oldest = try await store.logs(sel, range: Self.all, limit: 10, newestFirst: false)
            #expect(oldest.map(\.value) == ["y", "x", "a", "b", "c", "z"].map { PlexusValue.string($0) })
            let newest = try await store.logs(sel, range: Self.all, limit: 4, newestFirst: true)
            #expect(newest.map(\.value) == ["a", "b", "c", "z"].map { PlexusValue.string($0) })
        }
    }

    @Test("chunks are cut at the span cap: the first point more than maxSpan after the chunk's first starts the next")
    func chunksCutBySpan() {
        let ts: [Int64] = [0, 10, 60, 61, 200, 200, 400]
        var cuts: [[Int64]] = []
        var lo = 0
        while lo < ts.count {
            let hi = SQLiteStore.chunkEnd(ts, nil, from: lo, maxPoints: 3, maxSpan: 60, maxBytes: 0)
            cuts.append(Array(ts[lo..<hi]))
            lo = hi
        }
        #expect(cuts == [[0, 10, 60], [61], [200, 200], [400]])
    }

    @Test("a numeric chunk ends at a page's bytes: every closed chunk nearly fills one, none passes it")
    func chunksCutAtAPage() async throws {
        try await withTemporarySQLiteStore { store in
            let t0 = StoreConformance.t0
            // Numbers of no decimal form (about 7 bytes a point), then noisy 2-decimal readings.
            var state: UInt64 = 3
            for (metric, scale) in [("xor", 3.0), ("noise", 1.0)] {
                var v = 2_000.0
                for flush in 0..<5 {
                    let points = (0..<1_000).map { i -> String in
                        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                        v += Double(Int64(state >> 33) % 101 - 50)
                        let t = Double(t0 + Int64(flush * 1_000 + i) * 100_000) / 1_000_000
                        return #"{"metric":"\#(metric)","value":\#((v / 100 / scale)),"timestamp":\#(t)}"#
                    }
                    try await StoreConformance.append(store, #"{"source_id":"s","points":[\#(points.joined(separator: ","))]}"#)
                    await store.flushOnce()
                }
                let sizes = try await store.pool.read { db in
                    try Int.fetchAll(
                        db,
                        sql: "SELECT length(c.data) FROM chunks c JOIN series s ON s.id = c.series_id WHERE s.metric = ? ORDER BY c.id",
                        arguments: [metric])
                }
                #expect(sizes.count > 1 && sizes.allSatisfy { $0 <= 4_000 }, "\(metric): \(sizes)")
                #expect(sizes.dropLast().allSatisfy { $0 >= 3_600 }, "\(metric): \(sizes)")
                let r = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "s", metrics: [metric]), range: Self.all, limit: 10_000)
                #expect(r.series.first?.timestamps.count == 5_000)
            }
        }
    }

    @Test("a steady stream flushed often ends in full chunks: flushes append to the series' open chunk")
    func chunksGrowAcrossFlushes() async throws {
        var config = SQLiteStore.Configuration()
        config.maxChunkPoints = 250
        config.maxChunkSpan = 3_600_000_000
        try await withTemporarySQLiteStore(configuration: config) { store in
            let t0 = StoreConformance.t0
            func write(_ from: Int, _ count: Int, at base: Int64 = t0, metric: String = "m", text: Bool = false) async throws {
                let points = (from..<from + count).map { i in
                    let value = text ? "\"line \(i)\"" : "\(Double(i) / 4)"
                    return #"{"metric":"\#(metric)","value":\#(value),"timestamp":\#(Double(base + Int64(i) * 1_000_000) / 1_000_000)}"#
                }
                try await StoreConformance.append(store, #"{"source_id":"s","points":[\#(points.joined(separator: ","))]}"#)
                await store.flushOnce()
            }
            func chunks(_ metric: String) async throws -> [Int] {
                try await store.pool.read { db in
                    try Int.fetchAll(
                        db, sql: "SELECT c.count FROM chunks c JOIN series s ON s.id = c.series_id WHERE s.metric = ? ORDER BY c.id",
                        arguments: [metric])
                }
            }
            // 40 flushes of 20 points: 800 points in chunks of 250, not 40 chunks of 20.
            for k in 0..<40 { try await write(k * 20, 20) }
            #expect(try await chunks("m") == [250, 250, 250, 50])
            for k in 0..<10 { try await write(k * 20, 20, metric: "log", text: true) }
            #expect(try await chunks("log") == [200])
            // Late points (before the open chunk's end) start a chunk of their own; the open one is untouched.
            try await write(10_000, 5, at: t0 - 20_000_000_000)
            #expect(try await chunks("m") == [250, 250, 250, 50, 5])
            // Past the span cap (here an hour after the open chunk's first point): a new chunk.
            try await write(4_400, 5)
            #expect(try await chunks("m") == [250, 250, 250, 50, 5, 5])
            // Then points after it join that one, now the open chunk.
            try await write(4_405, 5)
            #expect(try await chunks("m") == [250, 250, 250, 50, 5, 10])
            let sel = SeriesSelector(orgID: 1, sourceID: "s", metrics: ["m"])
            let r = try await store.queryRaw(sel, range: Self.all, limit: 10_000)
            #expect(r.series.first?.timestamps.count == 815)
            let logs = try await store.logs(
                SeriesSelector(orgID: 1, sourceID: "s", metrics: ["log"]), range: Self.all, limit: 500, newestFirst: false)
            #expect(logs.map(\.value) == (0..<200).map { .string("line \($0)") })
            // Every value, in time order, once.
            let values = r.series.first?.values.compactMap { v -> Double? in if case .number(let d) = v { d } else { nil } } ?? []
            let expected = [10_000..<10_005, 0..<800, 4_400..<4_410].flatMap { $0.map { Double($0) / 4 } }
            #expect(values == expected)
        }
    }

    @Test("limited reads (tail, limit) return the right oldest or newest points across many chunks, and say when more exist")
    func limitedReadsStopEarly() async throws {
        var config = SQLiteStore.Configuration()
        config.maxChunkPoints = 100
        try await withTemporarySQLiteStore(configuration: config) { store in
            var points: [String] = []
            for i in 0..<2_000 { points.append(#"{"metric":"log","value":"line \#(i)","timestamp":\#(1_700_000_000 + i)}"#) }
            try await StoreConformance.append(store, #"{"source_id":"l","points":["# + points.joined(separator: ",") + "]}")
            let sel = SeriesSelector(orgID: 1, sourceID: "l", metrics: ["log"])
            let newest = try await store.logs(sel, range: Self.all, limit: 1, newestFirst: true)
            #expect(newest.map(\.value) == [.string("line 1999")])
            let oldest = try await store.logs(sel, range: Self.all, limit: 3, newestFirst: false)
            #expect(oldest.map(\.value) == [.string("line 0"), .string("line 1"), .string("line 2")])
            let raw = try await store.queryRaw(sel, range: Self.all, limit: 150)
            #expect(raw.truncated && raw.series.first?.timestamps.count == 150)
            #expect(raw.series.first?.timestamps.first == 1_700_000_000_000_000)
            let exact = try await store.queryRaw(sel, range: TimeRange(start: 1_700_000_000_000_000, end: 1_700_000_010_000_000), limit: 10)
            #expect(!exact.truncated && exact.series.first?.timestamps.count == 10)
            // The same answers through the decoding itself: only the chunks needed are read.
            let (pts, more) = try await store.pool.read { db in
                try store.limitedPoints(
                    of: try store.matchingSeries(sel, numeric: nil, db), range: Self.all, limit: 1,
                    newestFirst: true, db)
            }
            #expect(pts.count == 1 && more)
        }
    }
}
