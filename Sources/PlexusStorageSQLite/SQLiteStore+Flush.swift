import Foundation
import GRDB
import PlexusModel
import PlexusStorage
import PlexusWAL
import Synchronization

extension SQLiteStore {
    /// Writes one head snapshot. Returns series ids created, to cache after the commit.
    func write(_ snap: HeadSnapshot, _ db: Database) throws -> [SeriesKey: Int64] {
        let now = Self.nowMicros()
        let upsertSource = try db.cachedStatement(sql: """
            INSERT INTO sources (org_id, source_id, first_seen, last_seen) VALUES (?, ?, ?, ?)
            ON CONFLICT (org_id, source_id) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)
            """)
        for (ref, s) in snap.sources {
            try upsertSource.execute(arguments: [ref.orgID, ref.sourceID, s.firstSeen, s.lastSeen])
        }
        let newSession = try db.cachedStatement(sql: """
            INSERT INTO sessions (org_id, session_id, name, source_id, status, tags, metadata, started_at, started_explicit,
                                  created_at, created_by_data)
            VALUES (?, ?, ?, ?, 'active', '{}', '{}', ?, 0, ?, 1) ON CONFLICT DO NOTHING
            """)
        for (ref, first) in snap.sessions {
            try newSession.execute(arguments: [ref.orgID, ref.sessionID, ref.sessionID, ref.sourceID, first, now])
        }
        var created: [SeriesKey: Int64] = [:]
        let insertChunk = try db.cachedStatement(sql:
            "INSERT INTO chunks (series_id, min_ts, max_ts, count, data) VALUES (?, ?, ?, ?, ?)")
        let setLast = try db.cachedStatement(sql:
            "UPDATE series SET last_ts = ?, last_value = ? WHERE id = ? AND (last_ts IS NULL OR last_ts <= ?)")
        let roll1m = try db.cachedStatement(sql: Self.rollupUpsert("rollup_1m"))
        let roll1h = try db.cachedStatement(sql: Self.rollupUpsert("rollup_1h"))
        for (key, buffer) in snap.series {
            let id = try seriesID(key, db, created: &created)
            var ts = buffer.timestamps
            var nums = buffer.numbers
            var others = buffer.others
            if !Self.isSorted(ts) {
                let order = ts.indices.sorted { ts[$0] < ts[$1] }
                ts = order.map { ts[$0] }
                if key.numeric { nums = order.map { nums[$0] } } else { others = order.map { others[$0] } }
            }
            var lo = 0
            while lo < ts.count {
                let hi = min(ts.count, lo + config.maxChunkPoints)
                let data = key.numeric
                    ? ChunkCodec.encodeNumeric(timestamps: Array(ts[lo..<hi]), values: Array(nums[lo..<hi]))
                    : ChunkCodec.encodeOther(timestamps: Array(ts[lo..<hi]), values: Array(others[lo..<hi]))
                try insertChunk.execute(arguments: [id, ts[lo], ts[hi - 1], hi - lo, Data(data)])
                lo = hi
            }
            let lastValue: PlexusValue = key.numeric ? .number(nums[nums.count - 1]) : others[others.count - 1]
            try setLast.execute(arguments: [ts[ts.count - 1], lastValue.jsonText, id, ts[ts.count - 1]])
            if key.numeric {
                try Self.rollup(ts, nums, width: Resolution.minute.micros, id: id, statement: roll1m)
                try Self.rollup(ts, nums, width: Resolution.hour.micros, id: id, statement: roll1h)
            }
        }
        try db.execute(
            sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('wal_segment', ?), ('wal_offset', ?)",
            arguments: [Int64(snap.walPosition.segment), snap.walPosition.offset])
        return created
    }

    static func rollupUpsert(_ table: String) -> String {
        """
        INSERT INTO \(table) (series_id, bucket, min, max, sum, count) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (series_id, bucket) DO UPDATE SET
            min = min(min, excluded.min), max = max(max, excluded.max),
            sum = sum + excluded.sum, count = count + excluded.count
        """
    }

    static func isSorted(_ ts: [Int64]) -> Bool {
        var i = 1
        while i < ts.count {
            if ts[i] < ts[i - 1] { return false }
            i += 1
        }
        return true
    }

    /// Floor division, so buckets before 1970 are aligned too.
    static func bucketStart(_ t: Int64, _ width: Int64) -> Int64 {
        let q = t / width
        return (t % width != 0 && t < 0 ? q - 1 : q) * width
    }

    /// Aggregates sorted points into buckets and upserts them.
    static func rollup(_ ts: [Int64], _ values: [Double], width: Int64, id: Int64, statement: Statement) throws {
        var i = 0
        while i < ts.count {
            let b = bucketStart(ts[i], width)
            var lo = values[i], hi = values[i], sum = 0.0
            var n: Int64 = 0
            while i < ts.count && bucketStart(ts[i], width) == b {
                let v = values[i]
                lo = min(lo, v)
                hi = max(hi, v)
                sum += v
                n += 1
                i += 1
            }
            try statement.execute(arguments: [id, b, lo, hi, sum, n])
        }
    }

    func seriesID(_ key: SeriesKey, _ db: Database, created: inout [SeriesKey: Int64]) throws -> Int64 {
        if let id = seriesIDs.withLock({ $0[key] }) ?? created[key] { return id }
        let tags = Tag.canonicalJSON(key.tags)
        let args: StatementArguments = [key.orgID, key.sourceID, key.metric, key.numeric ? 1 : 0, tags, key.sessionID,
                                        key.derived ? 1 : 0]
        if let id = try Int64.fetchOne(db.cachedStatement(sql: """
            SELECT id FROM series WHERE org_id = ? AND source_id = ? AND metric = ? AND numeric = ? AND tags = ? AND session_id = ?
            AND derived = ?
            """), arguments: args) {
            created[key] = id
            return id
        }
        try db.cachedStatement(sql: """
            INSERT INTO series (org_id, source_id, metric, numeric, tags, session_id, derived) VALUES (?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: args)
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
