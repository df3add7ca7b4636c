import Foundation
import GRDB
import PlexusChunks
import PlexusStorage

/// Rollups (docs/storage.md, *Rollups*): one row per series and block of time, a
/// ``RollupBlock`` of its buckets: an hour of minute buckets in `minute_rollups`, a day of
/// hour buckets in `hour_rollups`. A flush reads the block its points fall in, adds them
/// and writes it back; a read decodes the blocks that hold its range.
extension RollupWidth {
    /// The table holding the blocks of this width's buckets.
    var table: String { self == .minute ? "minute_rollups" : "hour_rollups" }

    /// The time one block covers: an hour of minutes, a day of hours.
    var blockMicros: Int64 { self == .minute ? RollupWidth.hour.micros : 24 * RollupWidth.hour.micros }

    /// The start of the block holding `t` (the earliest block for times too early to align).
    func blockStart(of t: Int64) -> Int64 {
        t <= Int64.min + blockMicros ? Int64.min : Bucket.start(of: t, width: blockMicros)
    }

    /// The bucket with `index` in the block starting at `block`.
    func bucketStart(_ block: Int64, _ index: Int) -> Int64 { block + Int64(index) * micros }
}

extension SQLiteStore {
    /// The statements a flush keeps rollups with, for one width.
    struct RollupStatements {
        var read: Statement
        var save: Statement

        init(_ db: Database, _ width: RollupWidth) throws {
            read = try db.makeStatement(sql: "SELECT data FROM \(width.table) WHERE series_id = ? AND block = ?")
            save = try db.makeStatement(sql: "INSERT OR REPLACE INTO \(width.table) (series_id, block, data) VALUES (?, ?, ?)")
        }
    }

    /// Adds new points of series `id` (sorted, finite) to its rollups of `width`: per block
    /// they fall in, one read, one merge, one write.
    static func rollup(_ ts: [Int64], _ values: [Double], width: RollupWidth, id: Int64, _ st: RollupStatements) throws {
        var i = 0
        while i < ts.count {
            let block = width.blockStart(of: ts[i])
            let end = block.addingReportingOverflow(width.blockMicros)
            var added = RollupBlock()
            while i < ts.count, end.overflow || ts[i] < end.partialValue {
                let bucket = Bucket.start(of: ts[i], width: width.micros)
                added.add(index: Int((bucket - block) / width.micros), value: values[i], atStart: ts[i] == bucket)
                i += 1
            }
            if let data = try Data.fetchOne(st.read, arguments: [id, block]) {
                var stored = try data.withUnsafeBytes { try RollupBlock(decoding: $0) }
                stored.merge(added)
                added = stored
            }
            try st.save.execute(arguments: [id, block, Data(added.encoded())])
        }
    }

    /// Calls `body` with each bucket of `width` of series `id` that starts in `[from, to)`,
    /// in time order, with the points at its start (nil: not known), until it returns false.
    func forEachRollup(
        _ db: Database, series id: Int64, width: RollupWidth, from: Int64, to: Int64,
        _ body: (Bucket, _ edge: Bucket?) throws -> Bool
    ) throws {
        guard from < to else { return }
        let rows = try Row.fetchCursor(
            db.cachedStatement(
                sql: "SELECT block, data FROM \(width.table) WHERE series_id = ? AND block >= ? AND block < ? ORDER BY block"),
            arguments: [id, width.blockStart(of: from), to])
        while let row = try rows.next() {
            let block: Int64 = row[0]
            let data: Data = row[1]
            let slots = try data.withUnsafeBytes { try RollupBlock(decoding: $0) }.slots
            for slot in slots {
                let start = width.bucketStart(block, slot.index)
                guard start >= from else { continue }
                guard start < to else { return }
                let all = Bucket(start: start, min: slot.all.min, max: slot.all.max, sum: slot.all.sum, count: slot.all.count)
                let edge = slot.edge.map { Bucket(start: start, min: $0.min, max: $0.max, sum: $0.sum, count: $0.count) }
                guard try body(all, edge) else { return }
            }
        }
    }

    /// Removes the rollups of `series` whose buckets end at or before `cutoff`: whole blocks
    /// a few thousand per transaction, then the buckets of the block the cutoff falls in.
    /// Returns how many buckets went.
    func removeRollups(series: [Int64], width: RollupWidth, before cutoff: Int64) async throws -> Int64 {
        let ids = "[" + series.map(String.init).joined(separator: ",") + "]"
        // The last whole block to remove: it ends by the cutoff.
        let lastWhole = cutoff.subtractingReportingOverflow(width.blockMicros).partialValue
        var removed: Int64 = 0
        while true {
            let (rows, buckets) = try await translate {
                try await pool.write { db -> (Int, Int64) in
                    let rows = try Row.fetchAll(
                        db,
                        sql: """
                            SELECT series_id, block, data FROM \(width.table)
                            WHERE series_id IN (SELECT value FROM json_each(?)) AND block <= ? LIMIT ?
                            """,
                        arguments: [ids, lastWhole, Self.retentionBatch])
                    var buckets: Int64 = 0
                    for row in rows {
                        let data: Data = row[2]
                        buckets += Int64((try? data.withUnsafeBytes { try RollupBlock(decoding: $0) }.count) ?? 0)
                        try db.execute(
                            sql: "DELETE FROM \(width.table) WHERE series_id = ? AND block = ?", arguments: [row[0], row[1]])
                    }
                    return (rows.count, buckets)
                }
            }
            removed += buckets
            if rows < Self.retentionBatch { break }
        }
        let block = width.blockStart(of: cutoff)
        guard block < cutoff else { return removed }
        removed += try await translate {
            try await pool.write { db -> Int64 in
                var buckets: Int64 = 0
                let rows = try Row.fetchAll(
                    db,
                    sql: "SELECT series_id, data FROM \(width.table) WHERE series_id IN (SELECT value FROM json_each(?)) AND block = ?",
                    arguments: [ids, block])
                for row in rows {
                    let data: Data = row[1]
                    // A block that cannot be read is left for a person to look at.
                    guard var rollups = try? data.withUnsafeBytes({ try RollupBlock(decoding: $0) }) else { continue }
                    let n = rollups.removeSlots { width.bucketStart(block, $0) + width.micros <= cutoff }
                    guard n > 0 else { continue }
                    buckets += Int64(n)
                    if rollups.isEmpty {
                        try db.execute(sql: "DELETE FROM \(width.table) WHERE series_id = ? AND block = ?", arguments: [row[0], block])
                    } else {
                        try db.execute(
                            sql: "UPDATE \(width.table) SET data = ? WHERE series_id = ? AND block = ?",
                            arguments: [Data(rollups.encoded()), row[0], block])
                    }
                }
                return buckets
            }
        }
        return removed
    }
}
