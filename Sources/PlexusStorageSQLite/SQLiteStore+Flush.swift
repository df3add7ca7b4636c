import Foundation
import GRDB
import Logging
import Metrics
import PlexusChunks
import PlexusModel
import PlexusStorage
import PlexusWAL
import Synchronization

extension SQLiteStore {
    /// What one flush wrote.
    struct Written {
        /// Series ids created, to cache after the commit.
        var created: [SeriesKey: Int64] = [:]
        /// Points not stored because their series already held them (``PointIdentity``).
        var duplicates = 0
    }

    /// Writes one head snapshot.
    func write(_ snap: HeadSnapshot, _ db: Database) throws -> Written {
        let now = config.now()
        let upsertSource = try db.makeStatement(
            sql: """
                INSERT INTO sources (org_id, source_id, first_seen, last_seen) VALUES (?, ?, ?, ?)
                ON CONFLICT (org_id, source_id) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)
                """)
        for (ref, s) in snap.sources {
            try upsertSource.execute(arguments: [ref.orgID, ref.sourceID, s.firstSeen, s.lastSeen])
        }
        let newSession = try db.makeStatement(
            sql: """
                INSERT INTO sessions (org_id, session_id, name, source_id, status, tags, metadata, started_at, started_explicit,
                                      created_at, created_by_data)
                VALUES (?, ?, ?, ?, 'active', '{}', '{}', ?, 0, ?, 1) ON CONFLICT DO NOTHING
                """)
        for (ref, first) in snap.sessions {
            try newSession.execute(arguments: [ref.orgID, ref.sessionID, ref.sessionID, ref.sourceID, first, now])
        }
        var created: [SeriesKey: Int64] = [:]
        // Prepared per flush, not taken from the connection's statement cache: after a
        // statement fails, SQLite's next reset of it reports that failure again, and a
        // cached statement would carry it into the next series or the next flush.
        var statements = try SeriesStatements(db)
        var setAside: [(SeriesKey, SeriesBuffer, String)] = []
        var duplicates = 0
        for (key, buffer) in snap.series {
            // Each series in its own savepoint: data one series cannot store (a value the
            // database refuses) is set aside instead of failing the flush for everyone.
            // Errors of the database itself (disk full, I/O) still fail the whole flush,
            // which keeps everything in the WAL and retries.
            do {
                try db.inSavepoint {
                    duplicates += try self.writeSeries(key, buffer, db, created: &created, statements)
                    return .commit
                }
            } catch let e as DatabaseError where Self.isDataError(e) {
                created[key] = nil
                setAside.append((key, buffer, "\(e.resultCode): \(e.message ?? "")"))
                statements = try SeriesStatements(db)
            } catch is ChunkCodec.DecodeError {
                // A stored chunk or rollup block of this series cannot be read (damaged on
                // disk): its new points cannot be checked or added against it.
                created[key] = nil
                setAside.append((key, buffer, "a stored chunk or rollup block of the series cannot be decoded"))
                statements = try SeriesStatements(db)
            }
        }
        if !setAside.isEmpty { try self.setAside(setAside) }
        try db.execute(
            sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('wal_segment', ?), ('wal_offset', ?)",
            arguments: [Int64(snap.walPosition.segment), snap.walPosition.offset])
        return Written(created: created, duplicates: duplicates)
    }

    /// The statements a flush writes series with.
    struct SeriesStatements {
        var findSeries: Statement
        var insertSeries: Statement
        var insertChunk: Statement
        var overlapping: Statement
        var newestChunk: Statement
        var chunkData: Statement
        var updateChunk: Statement
        var setLast: Statement
        var minutes: RollupStatements
        var hours: RollupStatements

        init(_ db: Database) throws {
            findSeries = try db.makeStatement(
                sql: """
                    SELECT id FROM series WHERE org_id = ? AND source_id = ? AND metric = ? AND numeric = ? AND tags = ? AND session_id = ?
                    AND derived = ?
                    """)
            insertSeries = try db.makeStatement(
                sql: """
                    INSERT INTO series (org_id, source_id, metric, numeric, tags, session_id, derived) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """)
            insertChunk = try db.makeStatement(sql: "INSERT INTO chunks (series_id, min_ts, max_ts, count, data) VALUES (?, ?, ?, ?, ?)")
            overlapping = try db.makeStatement(
                sql: "SELECT id, min_ts, max_ts FROM chunks WHERE series_id = ? AND max_ts >= ? AND min_ts <= ?")
            newestChunk = try db.makeStatement(
                sql: "SELECT id, min_ts, max_ts, count, length(data) FROM chunks WHERE series_id = ? ORDER BY max_ts DESC, id DESC LIMIT 1")
            chunkData = try db.makeStatement(sql: "SELECT data FROM chunks WHERE id = ?")
            updateChunk = try db.makeStatement(sql: "UPDATE chunks SET min_ts = ?, max_ts = ?, count = ?, data = ? WHERE id = ?")
            setLast = try db.makeStatement(
                sql:
                    "UPDATE series SET last_ts = ?, last_value = ? WHERE id = ? AND (last_ts IS NULL OR last_ts <= ?)")
            minutes = try RollupStatements(db, .minute)
            hours = try RollupStatements(db, .hour)
        }
    }

    /// Errors that come from the data of one series, not from the database's health.
    static func isDataError(_ e: DatabaseError) -> Bool {
        switch e.resultCode {
        case .SQLITE_CONSTRAINT, .SQLITE_TOOBIG, .SQLITE_MISMATCH, .SQLITE_RANGE: true
        default: false
        }
    }

    /// Stores the points of one series that it does not hold yet; returns how many it
    /// already held (duplicates, not stored).
    func writeSeries(
        _ key: SeriesKey, _ buffer: SeriesBuffer, _ db: Database, created: inout [SeriesKey: Int64],
        _ st: SeriesStatements
    ) throws -> Int {
        let id = try seriesID(key, db, created: &created, st)
        var ts = buffer.timestamps
        var nums = buffer.numbers
        var others = buffer.others
        let keep =
            key.numeric
            ? PointIdentity.toStore(
                timestamps: ts, key: { nums[$0].bitPattern },
                stored: try storedIdentities(id, timestamps: ts, st) { v in
                    if case .number(let d) = v { d.bitPattern } else { nil }
                })
            : PointIdentity.toStore(
                timestamps: ts, key: { PointIdentity.Value(others[$0]) },
                stored: try storedIdentities(id, timestamps: ts, st) { PointIdentity.Value($0) })
        if let keep {
            ts = keep.map { ts[$0] }
            if key.numeric { nums = keep.map { nums[$0] } } else { others = keep.map { others[$0] } }
        }
        let duplicates = buffer.count - ts.count
        guard !ts.isEmpty else { return duplicates }
        try writeChunks(id, numeric: key.numeric, ts, nums, others, st)
        let lastValue: PlexusValue = key.numeric ? .number(nums[nums.count - 1]) : others[others.count - 1]
        try st.setLast.execute(arguments: [ts[ts.count - 1], lastValue.jsonText, id, ts[ts.count - 1]])
        if key.numeric {
            try Self.rollup(ts, nums, width: .minute, id: id, st.minutes)
            try Self.rollup(ts, nums, width: .hour, id: id, st.hours)
        }
        return duplicates
    }

    /// The identities (``PointIdentity``) series `id` already holds at the times in
    /// `timestamps`. One indexed probe finds no chunk for data newer than what is stored,
    /// the common case; otherwise only the chunks whose span holds one of the batch's times
    /// are decoded (a batch with a point from 1970 and one from today reads the spans of
    /// the history between, not its points).
    func storedIdentities<K: Hashable>(
        _ id: Int64, timestamps: [Int64], _ st: SeriesStatements, key: (PlexusValue) -> K?
    ) throws -> [Int64: Set<K>] {
        guard let lo = timestamps.min(), let hi = timestamps.max() else { return [:] }
        let rows = try Row.fetchCursor(st.overlapping, arguments: [id, lo, hi])
        var times: Set<Int64> = []
        var sorted: [Int64] = []
        var stored: [Int64: Set<K>] = [:]
        while let row = try rows.next() {
            if times.isEmpty {
                times = Set(timestamps)
                sorted = times.sorted()
            }
            let (chunk, minTs, maxTs): (Int64, Int64, Int64) = (row[0], row[1], row[2])
            // The first batch time at or after the chunk's first point: inside its span?
            var a = 0
            var b = sorted.count
            while a < b {
                let m = (a + b) / 2
                if sorted[m] < minTs { a = m + 1 } else { b = m }
            }
            guard a < sorted.count, sorted[a] <= maxTs, let data = try Data.fetchOne(st.chunkData, arguments: [chunk]) else {
                continue
            }
            try data.withUnsafeBytes { raw in
                try ChunkCodec.decode(raw) { t, v in
                    if times.contains(t), let k = key(v) { stored[t, default: []].insert(k) }
                }
            }
        }
        return stored
    }

    /// Stores new points of series `id` (sorted) as chunks. They join the series' newest
    /// chunk while it is open: it ends at or before the first of them and has room for the
    /// first in points, span and (non-numeric) bytes; what does not fit starts new chunks. That chunk keeps its row id (points of one
    /// time keep their arrival order across chunks), so a steady stream ends in full chunks
    /// however often flushes run; points older than the newest chunk start chunks of their own.
    func writeChunks(
        _ id: Int64, numeric: Bool, _ newTimes: [Int64], _ newNumbers: [Double], _ newOthers: [PlexusValue],
        _ st: SeriesStatements
    ) throws {
        var ts = newTimes
        var nums = newNumbers
        var others = newOthers
        var reuse: Int64?
        if let open = try Row.fetchOne(st.newestChunk, arguments: [id]) {
            let (chunkID, minTs, maxTs, count, bytes): (Int64, Int64, Int64, Int, Int) = (open[0], open[1], open[2], open[3], open[4])
            // Room for at least the first new point; the cut below ends the chunk where it is full.
            let fits =
                maxTs <= ts[0] && count < config.maxChunkPoints && ts[0] - minTs <= config.maxChunkSpan
                && (numeric ? bytes < config.maxNumericChunkBytes - 16 : bytes <= config.maxChunkBytes / 4)
            if fits, let data = try Data.fetchOne(st.chunkData, arguments: [chunkID]) {
                var oldTs: [Int64] = []
                var oldNums: [Double] = []
                var oldOthers: [PlexusValue] = []
                try data.withUnsafeBytes { raw in
                    try ChunkCodec.decode(raw) { t, v in
                        oldTs.append(t)
                        if numeric, case .number(let d) = v { oldNums.append(d) } else { oldOthers.append(v) }
                    }
                }
                if oldTs.count == count && (numeric ? oldNums.count : oldOthers.count) == count {
                    ts = oldTs + ts
                    nums = oldNums + nums
                    others = oldOthers + others
                    reuse = chunkID
                }
            }
        }
        var lo = 0
        while lo < ts.count {
            var hi = Self.chunkEnd(
                ts, numeric ? nil : others, from: lo, maxPoints: config.maxChunkPoints,
                maxSpan: config.maxChunkSpan, maxBytes: config.maxChunkBytes)
            var data: [UInt8]
            if numeric {
                data = ChunkCodec.encodeNumeric(timestamps: Array(ts[lo..<hi]), values: Array(nums[lo..<hi]))
                // Past a page: end it where the bytes a point so far say it fits (a chunk's
                // bytes grow about evenly with its points), again if still too large.
                while data.count > config.maxNumericChunkBytes && hi - lo > 1 {
                    hi = lo + max(1, min(hi - lo - 1, (hi - lo) * config.maxNumericChunkBytes / data.count * 63 / 64))
                    data = ChunkCodec.encodeNumeric(timestamps: Array(ts[lo..<hi]), values: Array(nums[lo..<hi]))
                }
            } else {
                data = ChunkCodec.encodeOther(timestamps: Array(ts[lo..<hi]), values: Array(others[lo..<hi]))
            }
            if let chunkID = reuse {
                try st.updateChunk.execute(arguments: [ts[lo], ts[hi - 1], hi - lo, Data(data), chunkID])
                reuse = nil
            } else {
                try st.insertChunk.execute(arguments: [id, ts[lo], ts[hi - 1], hi - lo, Data(data)])
            }
            lo = hi
        }
    }

    /// Where a chunk that starts at `lo` ends: at `maxPoints` points, at the first point
    /// more than `maxSpan` after its first, or (non-numeric `values`) once it holds
    /// `maxBytes` of value text, whichever comes first (at least one point), so a run of
    /// large objects never makes a BLOB past what SQLite stores.
    static func chunkEnd(
        _ ts: [Int64], _ values: [PlexusValue]?, from lo: Int, maxPoints: Int, maxSpan: Int64, maxBytes: Int
    ) -> Int {
        var bytes = 0
        var i = lo
        let limit = min(ts.count, lo + maxPoints)
        while i < limit {
            if i > lo && ts[i] - ts[lo] > maxSpan { break }
            if let values {
                bytes += values[i].storedSize
                if bytes > maxBytes && i > lo { break }
            }
            i += 1
        }
        return i
    }

    /// Writes points that could not be stored to `<data>/rejected/flush-….jsonl` (synced
    /// before the flush commits, so they are never lost without a trace) and logs them.
    func setAside(_ series: [(SeriesKey, SeriesBuffer, String)]) throws {
        var w = JSONWriter()
        var points = 0
        for (key, buffer, error) in series {
            for k in 0..<buffer.count {
                w.raw("{\"org_id\":")
                w.int(key.orgID)
                w.raw(",\"source_id\":")
                w.string(key.sourceID)
                w.raw(",\"metric\":")
                w.string(key.metric)
                w.raw(",\"tags\":")
                w.rawText(Tag.canonicalJSON(key.tags))
                w.raw(",\"session_id\":")
                w.string(key.sessionID)
                w.raw(",\"timestamp_us\":")
                w.int(buffer.timestamps[k])
                w.raw(",\"value\":")
                w.write(key.numeric ? .number(buffer.numbers[k]) : buffer.others[k])
                w.raw(",\"error\":")
                w.string(error)
                w.raw("}\n")
                points += 1
            }
        }
        let dir = directory + "/rejected"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/flush-\(config.now())-\(UInt32.random(in: 0...UInt32.max)).jsonl"
        try DurableFile.save(w.bytes, to: path)
        Metrics.Counter(label: "plexus_points_set_aside_total").increment(by: points)
        logger.error(
            "points the database refused were set aside, not stored",
            metadata: [
                "file": "\(path)", "points": "\(points)", "series": "\(series.count)",
                "error": "\(series[0].2)",
            ])
    }

    static func isSorted(_ ts: [Int64]) -> Bool {
        var i = 1
        while i < ts.count {
            if ts[i] < ts[i - 1] { return false }
            i += 1
        }
        return true
    }

    func seriesID(_ key: SeriesKey, _ db: Database, created: inout [SeriesKey: Int64], _ st: SeriesStatements) throws -> Int64 {
        if let id = seriesIDs.withLock({ $0[key] }) ?? created[key] { return id }
        let tags = Tag.canonicalJSON(key.tags)
        let args: StatementArguments = [
            key.orgID, key.sourceID, key.metric, key.numeric ? 1 : 0, tags, key.sessionID,
            key.derived ? 1 : 0,
        ]
        if let id = try Int64.fetchOne(st.findSeries, arguments: args) {
            created[key] = id
            return id
        }
        try st.insertSeries.execute(arguments: args)
        let id = db.lastInsertedRowID
        created[key] = id
        return id
    }

    func forgetSeries(orgID: Int64, sessionID: String) {
        seriesIDs.withLock { cache in
            cache = cache.filter { !($0.key.orgID == orgID && $0.key.sessionID == sessionID) }
        }
    }
}
