import GRDB
import PlexusModel
public import PlexusStorage

/// Retention (docs/storage.md, "Retention"): whole chunks and rollup buckets are
/// deleted, a few thousand per transaction so flushes go on between them, and the freed
/// pages are given back to the file system.
extension SQLiteStore {
    /// Chunks deleted per write transaction.
    static let retentionBatch = 2_000
    /// Series whose rollups are removed together (their blocks a few thousand per write
    /// transaction, so a first run over years of rollups never holds the writer for long).
    static let rollupSeriesBatch = 50

    public func applyRetention(_ defaults: RetentionPolicy, at now: Int64) async throws -> RetentionSweep {
        var sweep = RetentionSweep()
        for org in try await organizations() {
            let policy = defaults.overridden(by: org.retention)
            if let cutoff = policy.raw.cutoff(at: now) {
                try await removeChunks(orgID: org.id, before: cutoff, &sweep)
            }
            if let cutoff = policy.rollups.cutoff(at: now) {
                try await removeRollups(orgID: org.id, before: cutoff, &sweep)
            }
        }
        if sweep.blocks > 0 || sweep.rollupBuckets > 0 { try await giveSpaceBack() }
        return sweep
    }

    /// The organisation's series whose points retention may remove: all but those
    /// recorded in a pinned session. `?1` is the organisation.
    static let unpinnedSeries = """
        SELECT id FROM series WHERE org_id = ?1
        AND (session_id = '' OR session_id NOT IN (SELECT session_id FROM sessions WHERE org_id = ?1 AND pinned = 1))
        """

    /// Deletes the organisation's chunks whose newest point is older than `cutoff`.
    func removeChunks(orgID: Int64, before cutoff: Int64, _ sweep: inout RetentionSweep) async throws {
        while true {
            let (chunks, points) = try await translate {
                try await pool.write { db -> (Int, Int64) in
                    let rows = try Row.fetchAll(
                        db,
                        sql: """
                            SELECT id, count FROM chunks WHERE series_id IN (\(Self.unpinnedSeries)) AND max_ts < ?2 LIMIT ?3
                            """,
                        arguments: [orgID, cutoff, Self.retentionBatch])
                    guard !rows.isEmpty else { return (0, 0) }
                    let ids = rows.map { $0[0] as Int64 }
                    try db.execute(
                        sql: "DELETE FROM chunks WHERE id IN (SELECT value FROM json_each(?))",
                        arguments: ["[" + ids.map(String.init).joined(separator: ",") + "]"])
                    return (rows.count, rows.reduce(0) { $0 + ($1[1] as Int64) })
                }
            }
            sweep.blocks += Int64(chunks)
            sweep.points += points
            if chunks < Self.retentionBatch { return }
        }
    }

    /// Deletes the organisation's rollup buckets that end at or before `cutoff`.
    func removeRollups(orgID: Int64, before cutoff: Int64, _ sweep: inout RetentionSweep) async throws {
        let series = try await translate {
            try await pool.read { db in try Int64.fetchAll(db, sql: Self.unpinnedSeries, arguments: [orgID]) }
        }
        var lo = 0
        while lo < series.count {
            let part = Array(series[lo..<min(series.count, lo + Self.rollupSeriesBatch)])
            lo += Self.rollupSeriesBatch
            for width in RollupWidth.allCases {
                sweep.rollupBuckets += try await removeRollups(series: part, width: width, before: cutoff)
            }
        }
    }

    /// Returns freed pages to the file system (databases created with incremental
    /// auto-vacuum, every one since retention exists) and truncates SQLite's own journal.
    func giveSpaceBack() async throws {
        try await translate {
            try await pool.writeWithoutTransaction { db in
                if try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") == 2 {
                    try db.execute(sql: "PRAGMA incremental_vacuum")
                }
                // Readers may hold the journal for now; the next checkpoint truncates it.
                _ = try? db.checkpoint(.truncate)
            }
        }
    }
}
