import Foundation
import Logging
import PlexusModel
import PlexusStorage
import PlexusStorageTesting
import Testing

@testable import PlexusStorageSQLite

#if canImport(Glibc)
    import Glibc
#endif

/// Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN).
private let mayMountTmpfs: Bool = {
    let probe = temporaryDirectory()
    defer { rmdir(probe) }
    guard mount("tmpfs", probe, "tmpfs", 0, "size=64k") == 0 else { return false }
    umount2(probe, Int32(MNT_DETACH))
    return true
}()

@Suite("SQLite store: a full WAL disk")
struct WALFullDiskTests {
    static func body(_ i: Int) -> String {
        // About 4 KiB each, so a small disk fills after a few dozen.
        #"{"source_id":"disk","points":[{"metric":"n","value":\#(i),"timestamp":\#(1_700_000_000 + i)},"#
            + #"{"metric":"pad","value":""# + String(repeating: "x", count: 4_000) + #"","timestamp":\#(1_700_000_000 + i)}]}"#
    }

    @Test(
        "ingest gets 503 while the WAL disk is full, succeeds again without a restart once space is back, and a restart replays exactly the acknowledged points",
        .enabled(if: mayMountTmpfs, "skipped: this process may not mount a tmpfs (needs root with CAP_SYS_ADMIN)"))
    func fullDiskRecovers() async throws {
        let dir = temporaryDirectory()
        let wal = dir + "/wal"
        try FileManager.default.createDirectory(atPath: wal, withIntermediateDirectories: true)
        try #require(mount("tmpfs", wal, "tmpfs", 0, "size=256k") == 0, "mount tmpfs (errno \(errno))")
        defer {
            umount2(wal, Int32(MNT_DETACH))
            try? FileManager.default.removeItem(atPath: dir)
        }
        let ballast = wal + "/ballast"
        #expect(FileManager.default.createFile(atPath: ballast, contents: Data(count: 96 * 1024)))
        var config = SQLiteStore.Configuration()
        // No flush during the test: everything acknowledged stays in the WAL only, so the
        // copy below is what a crash would leave.
        config.flushMaxAge = .seconds(3_600)
        config.flushMaxPoints = 1_000_000
        config.walRetryInterval = .zero
        var acknowledged: [Int] = []
        let crashCopy = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: crashCopy) }
        try await withTemporarySQLiteStore(directory: dir, configuration: config) { store in
            var failures = 0
            var i = 0
            while failures < 3 {
                i += 1
                do {
                    try await StoreConformance.append(store, Self.body(i))
                    acknowledged.append(i)
                } catch let e as StoreError {
                    #expect(e.code == .unavailable)
                    failures += 1
                }
                try #require(i < 500, "the WAL disk never filled up")
            }
            try #require(acknowledged.count > 5)
            // Space is back: the next ingest succeeds, no restart.
            try FileManager.default.removeItem(atPath: ballast)
            for _ in 0..<3 {
                i += 1
                try await StoreConformance.append(store, Self.body(i))
                acknowledged.append(i)
            }
            // What a crash right now would leave: the WAL segments (nothing is in SQLite yet).
            try FileManager.default.createDirectory(atPath: crashCopy + "/wal", withIntermediateDirectories: true)
            for name in try FileManager.default.contentsOfDirectory(atPath: wal) where name.hasSuffix(".wal") {
                try FileManager.default.copyItem(atPath: wal + "/" + name, toPath: crashCopy + "/wal/" + name)
            }
        }
        // A restart from the crash copy replays exactly the acknowledged points, once each.
        try await withTemporarySQLiteStore(directory: crashCopy) { store in
            let r = try await store.queryRaw(
                SeriesSelector(orgID: 1, sourceID: "disk", metrics: ["n"]),
                range: TimeRange(start: 0, end: .max / 4), limit: 10_000)
            #expect(r.series.first?.values == acknowledged.map { .number(Double($0)) })
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: crashCopy + "/wal").filter { $0.hasPrefix("rejected-") }.isEmpty)
        // And the store that lived through the full disk stopped cleanly with the same data.
        try await withTemporarySQLiteStore(directory: dir) { store in
            let r = try await store.queryRaw(
                SeriesSelector(orgID: 1, sourceID: "disk", metrics: ["n"]),
                range: TimeRange(start: 0, end: .max / 4), limit: 10_000)
            #expect(r.series.first?.values == acknowledged.map { .number(Double($0)) })
        }
    }
}
