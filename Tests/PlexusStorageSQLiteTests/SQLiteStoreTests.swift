import Foundation
import GRDB
import Logging
import PlexusModel
import PlexusStorage
import PlexusStorageTesting
import PlexusWAL
import ServiceLifecycle
import Testing

@testable import PlexusStorageSQLite

/// Runs `body` with a fresh SQLite store on disk (``SQLiteStore/withTemporary``).
func withTemporarySQLiteStore(
    directory: String? = nil, configuration: SQLiteStore.Configuration = .init(),
    _ body: (SQLiteStore) async throws -> Void
) async throws {
    try await SQLiteStore.withTemporary(directory: directory, configuration: configuration, body)
}

func temporaryDirectory() -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plexus-test-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite("SQLite store")
struct SQLiteStoreTests {
    @Test("conformance", arguments: StoreConformance.checks)
    func conformance(_ check: StoreConformance.Check) async throws {
        try await withTemporarySQLiteStore { try await check.run($0) }
    }

    @Test("conformance with a flush after every write", arguments: StoreConformance.checks)
    func conformanceTinyFlushes(_ check: StoreConformance.Check) async throws {
        var config = SQLiteStore.Configuration()
        config.flushMaxPoints = 1
        config.maxChunkPoints = 3
        try await withTemporarySQLiteStore(configuration: config) { try await check.run($0) }
    }

    @Test("data survives a restart, and a second server cannot open the same directory")
    func restart() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await withTemporarySQLiteStore(directory: dir) { store in
            try await StoreConformance.append(store, #"{"source_id":"r","points":[{"metric":"m","value":42,"timestamp":1700000000}]}"#)
            #expect(throws: StoreError.self) { _ = try SQLiteStore(directory: dir, logger: Logger(label: "second")) }
        }
        try await withTemporarySQLiteStore(directory: dir) { store in
            let r = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "r"), range: TimeRange(start: 0, end: .max / 4), limit: 10)
            #expect(r.series.first?.values == [.number(42)])
        }
        // A graceful stop leaves no log behind.
        let wal = try FileManager.default.contentsOfDirectory(atPath: dir + "/wal")
        let sizes = try wal.map { try FileManager.default.attributesOfItem(atPath: dir + "/wal/" + $0)[.size] as? Int ?? -1 }
        #expect(sizes.allSatisfy { $0 == 0 })
    }

    @Test("the catalog (the admin commands' handle) works beside a running server; a second server is refused")
    func adminBesideServer() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await withTemporarySQLiteStore(directory: dir) { server in
            let admin = try SQLiteCatalog(directory: dir)
            _ = try await admin.createOrganization(name: "tenant-b", at: StoreConformance.t0)
            #expect(try await server.organization(named: "tenant-b") != nil)
            _ = try await server.createOrganization(name: "tenant-c", at: StoreConformance.t0)
            #expect(try await admin.organizations().map(\.name).contains("tenant-c"))
            #expect(throws: StoreError.self) { _ = try SQLiteStore(directory: dir, logger: Logger(label: "second")) }
        }
    }

    @Test("a bucket's edge merges across flushes: two points at its start in two writes, then one inside")
    func edgesMergeAcrossFlushes() async throws {
        try await withTemporarySQLiteStore { store in
            let t0 = StoreConformance.t0
            let sel = SeriesSelector(orgID: 1, sourceID: "dup")
            for (t, v) in [(t0, 2), (t0, -5), (t0 + 1_000_000, 7)] {
                try await StoreConformance.append(
                    store, #"{"source_id":"dup","points":[{"metric":"m","value":\#(v),"timestamp":\#(Double(t) / 1_000_000)}]}"#)
                _ = try await store.querySeriesRollups([sel], range: TimeRange(start: 0, end: .max / 4), width: .minute, limit: 10)
            }
            for width in RollupWidth.allCases {
                let r = try await store.querySeriesRollups([sel], range: TimeRange(start: 0, end: .max / 4), width: width, limit: 10)
                let start = t0 - t0 % width.micros
                #expect(r.series.first?.buckets == [Bucket(start: start, min: -5, max: 7, sum: 4, count: 3)])
                #expect(r.series.first?.edges == (width == .minute ? [Bucket(start: t0, min: -5, max: 2, sum: -3, count: 2)] : []))
            }
        }
    }

    @Test("rollup rows of a schema-v6 database become blocks: every bucket kept, edges not known stay so and do not taint newer ones")
    func rollupRowsBecomeBlocks() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t0 = StoreConformance.t0  // a minute's start
        let hour = RollupWidth.hour.micros
        // As schema v6 left them: a row per bucket, edges NULL where written before v5.
        do {
            let queue = try DatabaseQueue(path: dir + "/plexus.sqlite")
            try Schema.migrator().migrate(queue, upTo: "v6_retention")
            try await queue.write { db in
                try db.execute(
                    sql:
                        "INSERT INTO series (id, org_id, source_id, metric, numeric, tags, session_id, derived) VALUES (1, 1, 'old', 'm', 1, '{}', '', 0)"
                )
                for (table, bucket, row) in [
                    ("rollup_1m", t0, "1, 5, 6, 2, NULL, NULL, NULL, NULL"),
                    ("rollup_1m", t0 + 60_000_000, "0.1, 0.2, 0.30000000000000004, 2, 1, 0.1, 0.1, 0.1"),
                    ("rollup_1m", t0 + 2 * hour, "7, 7, 7, 1, 0, NULL, NULL, NULL"),
                    ("rollup_1h", Bucket.start(of: t0, width: hour), "0.1, 5, 6.300000000000001, 4, NULL, NULL, NULL, NULL"),
                ] {
                    try db.execute(sql: "INSERT INTO \(table) VALUES (1, ?, \(row))", arguments: [bucket])
                }
            }
        }
        try await withTemporarySQLiteStore(directory: dir) { store in
            let tables = try await store.pool.read { db in
                try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            #expect(!tables.contains("rollup_1m") && tables.contains("minute_rollups") && tables.contains("hour_rollups"))
            let sel = SeriesSelector(orgID: 1, sourceID: "old")
            let all = TimeRange(start: 0, end: .max / 4)
            let minutes = try await store.querySeriesRollups([sel], range: all, width: .minute, limit: 10)
            #expect(!minutes.edgesKnown)
            #expect(
                minutes.series.first?.buckets == [
                    Bucket(start: t0, min: 1, max: 5, sum: 6, count: 2),
                    Bucket(start: t0 + 60_000_000, min: 0.1, max: 0.2, sum: 0.1 + 0.2, count: 2),
                    Bucket(start: t0 + 2 * hour, min: 7, max: 7, sum: 7, count: 1),
                ])
            #expect(minutes.series.first?.edges == [Bucket(start: t0 + 60_000_000, min: 0.1, max: 0.1, sum: 0.1, count: 1)])
            let hours = try await store.querySeriesRollups([sel], range: all, width: .hour, limit: 10)
            #expect(hours.series.first?.buckets.first?.sum == 6.300000000000001)
            // A point joining a bucket of unknown edges: counted, its edges still unknown.
            try await StoreConformance.append(
                store, #"{"source_id":"old","points":[{"metric":"m","value":2,"timestamp":\#(Double(t0 + 1_000_000) / 1_000_000)}]}"#)
            let merged = try await store.querySeriesRollups(
                [sel], range: TimeRange(start: t0, end: t0 + 60_000_000), width: .minute, limit: 10)
            #expect(!merged.edgesKnown)
            #expect(merged.series.first?.buckets == [Bucket(start: t0, min: 1, max: 5, sum: 8, count: 3)])
            let later = try await store.querySeriesRollups(
                [sel], range: TimeRange(start: t0 + 60_000_000, end: .max / 4), width: .minute, limit: 10)
            #expect(later.edgesKnown)
        }
    }

    @Test("retention gives the space back: the database file shrinks, with no free pages left in it")
    func retentionShrinksTheFile() async throws {
        try await withTemporarySQLiteStore { store in
            let t0 = StoreConformance.t0
            func pages(_ pragma: String) async throws -> Int {
                try await store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA \(pragma)") ?? -1 }
            }
            #expect(try await pages("auto_vacuum") == 2)  // incremental, chosen when the database was made
            // 20 series of 5,000 points with noisy values, a day old, then one recent point.
            var seed: UInt64 = 7
            for k in 0..<20 {
                let points = (0..<5_000).map { i -> String in
                    seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    let v = Double(seed >> 11) / 1e9
                    return #"{"metric":"m\#(k)","value":\#(v),"timestamp":\#(Double(t0 + Int64(i) * 1_000_000) / 1_000_000)}"#
                }
                try await StoreConformance.append(store, #"{"source_id":"big","points":[\#(points.joined(separator: ","))]}"#)
                await store.flushOnce()
            }
            try await StoreConformance.append(
                store, #"{"source_id":"big","points":[{"metric":"m0","value":1,"timestamp":\#(Double(t0) / 1_000_000 + 86_400)}]}"#)
            await store.flushOnce()
            let before = try await pages("page_count")
            let hour: Int64 = 3_600_000_000
            let sweep = try await store.applyRetention(
                RetentionPolicy(raw: .micros(hour), rollups: .micros(hour)), at: t0 + 25 * hour)
            #expect(sweep.points == 100_000)
            let after = try await pages("page_count")
            #expect(after * 4 < before, "pages: \(before) before, \(after) after")
            #expect(try await pages("freelist_count") == 0)
            let r = try await store.queryRaw(
                SeriesSelector(orgID: 1, sourceID: "big"), range: TimeRange(start: 0, end: .max / 4), limit: 10)
            #expect(r.series.map(\.values) == [[.number(1)]])
        }
    }
}

@Suite("Write-ahead log")
struct WriteAheadLogTests {
    @Test("replay returns intact records and cuts a torn tail")
    func tornTail() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try WriteAheadLog(directory: dir)
        try log.openForAppend(after: .zero)
        _ = try log.appendDurably([[1, 2, 3], [4, 5]])
        let end = try log.appendDurably([[6]])
        // Simulate a crash in the middle of a write: half a record at the end.
        let path = log.segmentPath(end.segment)
        let h = try #require(FileHandle(forWritingAtPath: path))
        h.seekToEndOfFile()
        h.write(Data([9, 0, 0, 0, 1, 2]))
        h.closeFile()
        var seen: [[UInt8]] = []
        let again = try WriteAheadLog(directory: dir)
        let last = try again.replay(after: .zero) { p, _ in seen.append(Array(p)) }
        #expect(seen == [[1, 2, 3], [4, 5], [6]])
        #expect(last == end)
        // The tail was cut, so records written after recovery follow good ones.
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
        #expect(size == Int(end.offset))
        // Replay after a checkpoint skips what is already in SQLite.
        var after: [[UInt8]] = []
        let first = WriteAheadLog.Position(segment: end.segment, offset: 8 + 3 + 8 + 2)
        _ = try again.replay(after: first) { p, _ in after.append(Array(p)) }
        #expect(after == [[6]])
    }

    @Test("a corrupted record stops replay there")
    func corruption() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try WriteAheadLog(directory: dir)
        try log.openForAppend(after: .zero)
        let end = try log.appendDurably([[1, 1, 1, 1], [2, 2, 2, 2]])
        let path = log.segmentPath(end.segment)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        var seen: [[UInt8]] = []
        _ = try WriteAheadLog(directory: dir).replay(after: .zero) { p, _ in seen.append(Array(p)) }
        #expect(seen == [[1, 1, 1, 1]])
    }

    @Test("CRC-32C matches the standard check value")
    func crc() {
        let v = Array("123456789".utf8).withUnsafeBytes { CRC32C.checksum($0) }
        #expect(v == 0xE306_9283)
    }
}

@Suite("Write-ahead log: damage and housekeeping")
struct WriteAheadLogDamageTests {
    @Test("damage before the newest segment refuses to start instead of dropping acknowledged data")
    func damageInOlderSegment() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try WriteAheadLog(directory: dir)
        try log.openForAppend(after: .zero)
        let first = try log.appendDurably([[1, 2, 3, 4]])
        try log.openForAppend(after: first)  // a restart: a newer segment
        _ = try log.appendDurably([[5, 6, 7, 8]])
        let path = log.segmentPath(first.segment)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(throws: StoreError.self) { _ = try WriteAheadLog(directory: dir).replay(after: .zero) { _, _ in } }
    }

    @Test("restarts without writes do not leave empty segments behind")
    func emptySegments() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for _ in 0..<4 {
            let log = try WriteAheadLog(directory: dir)
            try log.openForAppend(after: try log.replay(after: .zero) { _, _ in })
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).count == 1)
    }
}

@Suite("Write-ahead log: replay")
struct ReplayTests {
    @Test("logged batches are stored on start; one that no longer validates is set aside, the rest still land")
    func replayAndSetAside() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Write the log by hand, as a crashed server would have left it.
        do {
            let log = try WriteAheadLog(directory: dir + "/wal")
            try log.openForAppend(after: .zero)
            let good = WALRecord(orgID: 1, receivedAt: StoreConformance.t0, forcedSource: nil, recordingSession: nil)
            _ = try log.appendDurably([
                good.encode(json: Array(#"{"source_id":"w","points":[{"metric":"m","value":1}]}"#.utf8)),
                good.encode(json: Array(#"{"source_id":"w","points":[{"metric":"m","value":NaN}]}"#.utf8)),
                good.encode(json: Array(#"{"source_id":"w","points":[{"metric":"m","value":3}]}"#.utf8)),
            ])
        }
        try await withTemporarySQLiteStore(directory: dir) { store in
            let r = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "w"), range: TimeRange(start: 0, end: .max / 4), limit: 10)
            #expect(r.series.first?.values == [.number(1), .number(3)])
            #expect(r.series.first?.timestamps == [StoreConformance.t0, StoreConformance.t0])
        }
        let aside = try FileManager.default.contentsOfDirectory(atPath: dir + "/wal").filter { $0.hasPrefix("rejected-") }
        #expect(aside.count == 1)
        let text = try String(contentsOfFile: dir + "/wal/" + aside[0], encoding: .utf8)
        #expect(text.contains("NaN"))
    }

    @Test("a log of version-1 (JSON) and version-2 (points) records replays in order; an invalid version-2 batch is set aside as JSON")
    func replayBothVersions() async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t0 = StoreConformance.t0
        func point(_ v: Double, _ source: String = "w") -> Point {
            Point(metric: "m", value: .number(v), timestamp: t0 + Int64(v), sourceID: source, tags: [Tag("k", "v")], sessionID: nil)
        }
        do {
            let log = try WriteAheadLog(directory: dir + "/wal")
            try log.openForAppend(after: .zero)
            let old = WALRecord(orgID: 1, receivedAt: t0, forcedSource: "w", recordingSession: nil)
            let new = WALPointsRecord(orgID: 1, receivedAt: t0)
            _ = try log.appendDurably([
                old.encode(
                    json: Array(#"{"points":[{"metric":"m","value":1,"timestamp":\#(Double(t0 + 1) / 1e6),"tags":{"k":"v"}}]}"#.utf8)),
                new.encode([point(2), point(3)]),
                new.encode([point(4), point(5, "Bad Source")]),
                new.encode([point(6)]),
            ])
        }
        try await withTemporarySQLiteStore(directory: dir) { store in
            let r = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "w"), range: TimeRange(start: 0, end: .max / 4), limit: 10)
            #expect(r.series.first?.values == [.number(1), .number(2), .number(3), .number(6)])
        }
        let aside = try FileManager.default.contentsOfDirectory(atPath: dir + "/wal").filter { $0.hasPrefix("rejected-") }
        #expect(aside.count == 1)
        #expect(aside.first?.hasSuffix(".json") == true)
        // The set-aside batch is an ingest body (JSON) an operator can fix and send again.
        let text = try String(contentsOfFile: dir + "/wal/" + (aside.first ?? ""), encoding: .utf8)
        let body = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        #expect((body?["points"] as? [Any])?.count == 2)
        #expect(text.contains("Bad Source"))
    }
}
