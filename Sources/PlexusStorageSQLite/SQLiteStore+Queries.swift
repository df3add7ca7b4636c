import Foundation
import GRDB
import PlexusChunks
import PlexusModel
public import PlexusStorage

struct SeriesRow {
    var id: Int64
    var sourceID: String
    var metric: String
    var numeric: Bool
    var tags: [Tag]
    var sessionID: String

    var identity: SeriesIdentity {
        SeriesIdentity(sourceID: sourceID, metric: metric, tags: tags, sessionID: sessionID.isEmpty ? nil : sessionID, numeric: numeric)
    }
}

extension SQLiteStore {
    func matchingSeries(_ sel: SeriesSelector, numeric: Bool?, _ db: Database) throws -> [SeriesRow] {
        var sql = "SELECT id, metric, numeric, tags, session_id, source_id FROM series WHERE org_id = ? AND source_id = ?"
        var args: StatementArguments = [sel.orgID, sel.sourceID]
        if let numeric {
            sql += " AND numeric = ?"
            _ = args.append(contentsOf: [numeric ? 1 : 0])
        }
        if let s = sel.sessionID {
            sql += " AND session_id = ?"
            _ = args.append(contentsOf: [s])
        }
        if let metrics = sel.metrics {
            if metrics.isEmpty { return [] }
            // One statement for any number of metrics (a JSON array), so it is prepared once
            // per connection and kept: preparing is most of a small query's time.
            sql += " AND metric IN (SELECT value FROM json_each(?))"
            var list = JSONWriter()
            list.strings(metrics)
            _ = args.append(contentsOf: [list.string])
        }
        sql += " ORDER BY metric, id"
        return try Row.fetchAll(db.cachedStatement(sql: sql), arguments: args).compactMap { row in
            let tags = Tag.parse(json: row[3]) ?? []
            for want in sel.tags where !tags.contains(want) { return nil }
            return SeriesRow(
                id: row[0], sourceID: row[5], metric: row[1], numeric: (row[2] as Int64) != 0, tags: tags,
                sessionID: row[4])
        }
    }

    /// Decodes every point of `series` in [start, end), sorted by time.
    func points(of series: [SeriesRow], range: TimeRange, _ db: Database) throws -> [(Int64, PlexusValue)] {
        var out: [(Int64, PlexusValue)] = []
        for s in series {
            let rows = try Row.fetchCursor(
                db.cachedStatement(
                    sql:
                        "SELECT data FROM chunks WHERE series_id = ? AND max_ts >= ? AND min_ts < ? ORDER BY id"),
                arguments: [s.id, range.start, range.end])
            while let row = try rows.next() {
                let data: Data = row[0]
                try data.withUnsafeBytes { raw in
                    try ChunkCodec.decode(raw) { t, v in
                        if t >= range.start && t < range.end { out.append((t, v)) }
                    }
                }
            }
        }
        if !Self.isSorted(out.map(\.0)) { out.sort { $0.0 < $1.0 } }
        return out
    }

    public func sources(orgID: Int64) async throws -> [SourceInfo] {
        try await readable()
        return try await translate {
            try await pool.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT source_id, first_seen, last_seen FROM sources WHERE org_id = ? ORDER BY source_id",
                    arguments: [orgID]
                ).map { SourceInfo(sourceID: $0[0], firstSeen: $0[1], lastSeen: $0[2]) }
            }
        }
    }

    public func source(orgID: Int64, sourceID: String) async throws -> SourceInfo? {
        try await readable()
        return try await translate {
            try await pool.read { db in
                try Row.fetchOne(
                    db, sql: "SELECT source_id, first_seen, last_seen FROM sources WHERE org_id = ? AND source_id = ?",
                    arguments: [orgID, sourceID]
                ).map { SourceInfo(sourceID: $0[0], firstSeen: $0[1], lastSeen: $0[2]) }
            }
        }
    }

    public func metrics(orgID: Int64, sourceID: String) async throws -> [String] {
        try await readable()
        return try await translate {
            try await pool.read { db in
                try String.fetchAll(
                    db, sql: "SELECT DISTINCT metric FROM series WHERE org_id = ? AND source_id = ? ORDER BY metric",
                    arguments: [orgID, sourceID])
            }
        }
    }

    public func seriesIdentities(orgID: Int64) async throws -> [SeriesIdentity] {
        try await identities(
            "SELECT source_id, metric, tags, session_id, numeric FROM series WHERE org_id = ? AND derived = 0", [orgID])
    }

    /// From the chunks' bounds (every point is in a chunk once the store is readable): a
    /// series whose chunk spans the range counts even when no point of it falls inside.
    public func seriesIdentities(orgID: Int64, overlapping range: TimeRange) async throws -> [SeriesIdentity] {
        try await identities(
            """
            SELECT s.source_id, s.metric, s.tags, s.session_id, s.numeric FROM series s
            WHERE s.org_id = ? AND s.derived = 0
              AND EXISTS (SELECT 1 FROM chunks c WHERE c.series_id = s.id AND c.max_ts >= ? AND c.min_ts < ?)
            """, [orgID, range.start, range.end])
    }

    private func identities(_ sql: String, _ arguments: StatementArguments) async throws -> [SeriesIdentity] {
        try await readable()
        return try await translate {
            try await pool.read { db in
                try Row.fetchAll(db, sql: sql, arguments: arguments).map { r in
                    let session: String = r[3]
                    return SeriesIdentity(
                        sourceID: r[0], metric: r[1], tags: Tag.parse(json: r[2]) ?? [],
                        sessionID: session.isEmpty ? nil : session, numeric: (r[4] as Int64) != 0)
                }
            }
        }
    }

    public func latest(orgID: Int64, sourceID: String, since: Int64) async throws -> [LatestValue] {
        try await readable()
        return try await translate {
            try await pool.read { db in
                var best: [String: LatestValue] = [:]
                for row in try Row.fetchAll(
                    db,
                    sql: """
                        SELECT metric, last_ts, last_value FROM series
                        WHERE org_id = ? AND source_id = ? AND last_ts >= ?
                        """, arguments: [orgID, sourceID, since])
                {
                    let metric: String = row[0]
                    let ts: Int64 = row[1]
                    guard let v = PlexusValue(jsonText: row[2]) else { continue }
                    if let b = best[metric], b.timestamp > ts { continue }
                    best[metric] = LatestValue(metric: metric, timestamp: ts, value: v)
                }
                return best.values.sorted { $0.metric < $1.metric }
            }
        }
    }

    public func queryRaw(_ selector: SeriesSelector, range: TimeRange, limit: Int) async throws -> RawResult {
        try await readable()
        return try await translate {
            try await pool.read { db in
                let all = try self.matchingSeries(selector, numeric: nil, db)
                var result: [RawSeries] = []
                var total = 0
                var truncated = false
                for group in Self.runsOfOneMetric(all) {
                    let (pts, more) = try self.limitedPoints(
                        of: Array(group), range: range, limit: max(0, limit - total), newestFirst: false, db)
                    if more { truncated = true }
                    var s = RawSeries(metric: group[group.startIndex].metric)
                    s.timestamps.reserveCapacity(pts.count)
                    s.values.reserveCapacity(pts.count)
                    for p in pts {
                        s.timestamps.append(p.timestamp)
                        s.values.append(p.value)
                    }
                    total += pts.count
                    if !s.timestamps.isEmpty { result.append(s) }
                }
                return RawResult(series: result, truncated: truncated)
            }
        }
    }

    public func querySeries(_ selector: SeriesSelector, range: TimeRange, limit: Int) async throws -> SeriesPointsResult {
        try await readable()
        return try await translate {
            try await pool.read { db in
                let rows = try self.matchingSeries(selector, numeric: true, db)
                let (points, more) = try self.limitedPoints(of: rows, range: range, limit: max(0, limit), newestFirst: false, db)
                var out = rows.map { SeriesPoints(series: $0.identity) }
                for p in points {
                    guard case .number(let v) = p.value else { continue }
                    out[p.series].timestamps.append(p.timestamp)
                    out[p.series].values.append(v)
                }
                return SeriesPointsResult(series: out.filter { !$0.timestamps.isEmpty }, truncated: more)
            }
        }
    }

    /// A point read back with the index of its series in the list asked for.
    struct ReadPoint {
        var timestamp: Int64
        var value: PlexusValue
        var series: Int
        /// The chunk's row id: of two points of one series and time, the one in the chunk
        /// with the larger id arrived later (a flush appends only to the chunk that ends
        /// last, at or before its points).
        var chunk: Int64
    }

    /// The `limit` oldest (or newest) points of `series` in `range`, in time order, and
    /// whether more exist. Chunks are visited in time order and decoding stops as soon as
    /// no chunk left can hold a point that would make the cut, so `tail=1` over a year of
    /// logs decodes one chunk per series, not the year.
    func limitedPoints(
        of series: [SeriesRow], range: TimeRange, limit: Int, newestFirst: Bool,
        _ db: Database
    ) throws -> (points: [ReadPoint], more: Bool) {
        guard !series.isEmpty, range.end > range.start else { return ([], false) }
        struct Span {
            var rowid: Int64
            var series: Int
            var min: Int64
            var max: Int64
        }
        var spans: [Span] = []
        let statement = try db.cachedStatement(
            sql:
                "SELECT rowid, min_ts, max_ts FROM chunks WHERE series_id = ? AND max_ts >= ? AND min_ts < ?")
        for (k, s) in series.enumerated() {
            let rows = try Row.fetchCursor(statement, arguments: [s.id, range.start, range.end])
            while let r = try rows.next() { spans.append(Span(rowid: r[0], series: k, min: r[1], max: r[2])) }
        }
        guard limit > 0 else { return ([], !spans.isEmpty) }
        // Reading order: time, then the series' order as asked (by metric), then arrival
        // (a later chunk holds later arrivals), so points of one time come out the same
        // way however the flushes cut them.
        if newestFirst {
            spans.sort { ($0.max, $0.series, $0.rowid) > ($1.max, $1.series, $1.rowid) }
        } else {
            spans.sort { ($0.min, $0.series, $0.rowid) < ($1.min, $1.series, $1.rowid) }
        }
        let data = try db.cachedStatement(sql: "SELECT data FROM chunks WHERE rowid = ?")
        var kept: [ReadPoint] = []
        var more = false
        // Once `limit` points are kept, the cut-off is the last one kept in reading order.
        var cutoff: Int64?
        for span in spans {
            if let cutoff, newestFirst ? span.max < cutoff : span.min > cutoff {
                // Every later chunk starts beyond the cut-off; its first point is in range.
                more = true
                break
            }
            guard let blob = try Data.fetchOne(data, arguments: [span.rowid]) else { continue }
            var chunk: [ReadPoint] = []
            try blob.withUnsafeBytes { raw in
                try ChunkCodec.decode(raw) { t, v in
                    if t >= range.start && t < range.end {
                        chunk.append(ReadPoint(timestamp: t, value: v, series: span.series, chunk: span.rowid))
                    }
                }
            }
            // A chunk keeps points of one time in arrival order; newest first reads it backwards.
            kept.append(contentsOf: newestFirst ? chunk.reversed() : chunk)
            if kept.count >= limit {
                // Stable sorts: points of one time stay in reading order.
                if newestFirst { kept.sort(by: Self.later) } else { kept.sort(by: Self.earlier) }
                if kept.count > limit {
                    more = true
                    kept.removeLast(kept.count - limit)
                }
                cutoff = kept[kept.count - 1].timestamp
            }
        }
        if newestFirst {
            kept.sort(by: Self.later)
            kept.reverse()
        } else {
            kept.sort(by: Self.earlier)
        }
        return (kept, more)
    }

    /// Time, then the series' place in the list asked for, then arrival (the chunk's id).
    /// Swift's sort is stable, so points of one chunk and time keep their order in it.
    static func earlier(_ a: ReadPoint, _ b: ReadPoint) -> Bool {
        (a.timestamp, a.series, a.chunk) < (b.timestamp, b.series, b.chunk)
    }
    static func later(_ a: ReadPoint, _ b: ReadPoint) -> Bool { (a.timestamp, a.series, a.chunk) > (b.timestamp, b.series, b.chunk) }

    public func queryAggregated(_ selector: SeriesSelector, range: TimeRange, resolution: Resolution, limit: Int) async throws
        -> AggregatedResult
    {
        try await readable()
        let rollup = resolution.rollup
        let width = resolution.micros
        // The rows read hold the points from `lo` to the end of the row that holds `range.end - 1`.
        let rowWidth = resolution.rollup.micros
        let rowsEnd = Bucket.start(of: range.end - 1, width: rowWidth) + rowWidth
        return try await translate {
            try await pool.read { db in
                let all = try self.matchingSeries(selector, numeric: true, db)
                let lo = Bucket.start(of: range.start, width: width)
                var result: [AggregatedSeries] = []
                var total = 0
                var truncated = false
                for group in Self.runsOfOneMetric(all) {
                    var buckets: [Int64: Bucket] = [:]
                    for s in group {
                        try self.forEachRollup(db, series: s.id, width: rollup, from: lo, to: range.end) { r, _ in
                            let b = Bucket.start(of: r.start, width: width)
                            buckets[b, default: Bucket(start: b, min: 0, max: 0, sum: 0, count: 0)].merge(r)
                            return true
                        }
                    }
                    var sorted = buckets.values.sorted { $0.start < $1.start }
                    let take = min(sorted.count, max(0, limit - total))
                    if take < sorted.count {
                        truncated = true
                        sorted.removeLast(sorted.count - take)
                    }
                    // A sum that saturated says nothing of the mean: take it from the points
                    // the bucket's rows hold.
                    for k in sorted.indices where sorted[k].sumMayHaveSaturated {
                        let points = try self.points(
                            of: Array(group), range: TimeRange(start: sorted[k].start, end: min(sorted[k].start + width, rowsEnd)), db)
                        sorted[k].mean = Bucket.runningMean(
                            points.lazy.compactMap { if case .number(let v) = $0.1 { v } else { nil } })
                    }
                    total += take
                    if !sorted.isEmpty { result.append(AggregatedSeries(metric: group[group.startIndex].metric, buckets: sorted)) }
                }
                return AggregatedResult(series: result, truncated: truncated)
            }
        }
    }

    public func querySeriesRollups(_ selectors: [SeriesSelector], range: TimeRange, width: RollupWidth, limit: Int) async throws
        -> SeriesRollupResult
    {
        try await readable()
        return try await translate {
            try await pool.read { db in
                let rows = try selectors.flatMap { try self.matchingSeries($0, numeric: true, db) }
                var out: [SeriesRollup] = []
                var left = max(0, limit)
                var truncated = false
                var edgesKnown = true
                for s in rows {
                    var rollup = SeriesRollup(series: s.identity)
                    try self.forEachRollup(db, series: s.id, width: width, from: range.start, to: range.end) { bucket, edge in
                        guard left > 0 else {
                            truncated = true
                            return false
                        }
                        left -= 1
                        rollup.buckets.append(bucket)
                        if let edge {
                            if edge.count > 0 { rollup.edges.append(edge) }
                        } else {
                            edgesKnown = false
                        }
                        return true
                    }
                    if !rollup.buckets.isEmpty { out.append(rollup) }
                    if truncated { break }
                }
                return SeriesRollupResult(series: out, truncated: truncated, edgesKnown: edgesKnown)
            }
        }
    }

    /// The series (ordered by metric) cut into runs of one metric each.
    static func runsOfOneMetric<S: Collection>(_ all: S) -> [S.SubSequence] where S.Element == SeriesRow {
        var runs: [S.SubSequence] = []
        var start = all.startIndex
        while start < all.endIndex {
            let metric = all[start].metric
            let end = all[start...].firstIndex { $0.metric != metric } ?? all.endIndex
            runs.append(all[start..<end])
            start = end
        }
        return runs
    }

    public func logs(_ selector: SeriesSelector, range: TimeRange, limit: Int, newestFirst: Bool) async throws -> [StoredPoint] {
        try await readable()
        return try await translate {
            try await pool.read { db in
                let series = try self.matchingSeries(selector, numeric: false, db)
                return try self.limitedPoints(of: series, range: range, limit: limit, newestFirst: newestFirst, db).points.map {
                    let s = series[$0.series]
                    return StoredPoint(
                        sourceID: s.sourceID, metric: s.metric, timestamp: $0.timestamp, value: $0.value,
                        tags: s.tags, sessionID: s.sessionID.isEmpty ? nil : s.sessionID)
                }
            }
        }
    }

    public func scanSession(
        orgID: Int64, sessionID: String, batchSize: Int,
        _ body: ([StoredPoint]) async throws -> Void
    ) async throws {
        try await readable()
        // Walk the session in time windows that each hold about `batchSize * 4` points,
        // cut from the chunks' own counts and spans, so memory stays bounded however long
        // or bursty the session is (at worst one chunk's points per series beyond that).
        let (series, chunks) = try await translate {
            try await pool.read { db -> ([SeriesRow], [ChunkSpan]) in
                // Derived vector fields are not points of their own: the object is exported once.
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT id, metric, numeric, tags, session_id, source_id FROM series
                        WHERE org_id = ? AND session_id = ? AND derived = 0 ORDER BY metric, id
                        """, arguments: [orgID, sessionID])
                let series = rows.map {
                    SeriesRow(
                        id: $0[0], sourceID: $0[5], metric: $0[1], numeric: ($0[2] as Int64) != 0,
                        tags: Tag.parse(json: $0[3]) ?? [], sessionID: $0[4])
                }
                guard !series.isEmpty else { return ([], []) }
                let ids = series.map { String($0.id) }.joined(separator: ",")
                let spans = try Row.fetchAll(db, sql: "SELECT min_ts, max_ts, count FROM chunks WHERE series_id IN (\(ids))")
                    .map { ChunkSpan(min: $0[0], max: $0[1], count: $0[2]) }
                return (series, spans)
            }
        }
        for range in Self.scanWindows(chunks, target: Int64(batchSize) * 4) {
            let batch = try await pool.read { db -> [StoredPoint] in
                var out: [StoredPoint] = []
                for s in series {
                    for (t, v) in try self.points(of: [s], range: range, db) {
                        out.append(
                            StoredPoint(
                                sourceID: s.sourceID, metric: s.metric, timestamp: t, value: v, tags: s.tags,
                                sessionID: sessionID))
                    }
                }
                out.sort { ($0.timestamp, $0.sourceID, $0.metric) < ($1.timestamp, $1.sourceID, $1.metric) }
                return out
            }
            var k = 0
            while k < batch.count {
                try await body(Array(batch[k..<min(batch.count, k + batchSize)]))
                k += batchSize
            }
        }
    }

    struct ChunkSpan: Sendable, Hashable {
        var min: Int64
        var max: Int64
        var count: Int64
    }

    /// Consecutive time windows covering every chunk, each expected to hold about
    /// `target` points, taking each chunk's points as spread evenly over its span. A
    /// burst makes short windows, a quiet stretch long ones. (A window is at least 1 µs,
    /// so points sharing one microsecond stay together.)
    static func scanWindows(_ chunks: [ChunkSpan], target: Int64) -> [TimeRange] {
        guard let lo = chunks.map(\.min).min(), let top = chunks.map(\.max).max() else { return [] }
        // `hi + 1` must exist (a point at Int64.max, only in stores written before times were
        // range-checked, is left out of the windows rather than overflow).
        let hi = Swift.min(top, Int64.max - 1)
        // Density changes only at chunk edges: sweep them, accumulating expected points.
        var edges: [(at: Int64, delta: Double)] = []
        for c in chunks {
            // In Double: a store written before times were range-checked may hold chunks
            // spanning ±2^63 µs, where `max - min + 1` overflows.
            let d = Double(c.count) / (Double(c.max) - Double(c.min) + 1)
            edges.append((c.min, d))
            edges.append((Swift.min(c.max, Int64.max - 1) + 1, -d))
        }
        edges.sort { $0.at < $1.at }
        let goal = Double(max(target, 1))
        var windows: [TimeRange] = []
        var windowStart = lo
        var position = lo
        var density = 0.0
        var acc = 0.0
        var i = 0
        while position <= hi {
            while i < edges.count, edges[i].at <= position {
                density += edges[i].delta
                i += 1
            }
            let next = i < edges.count ? edges[i].at : hi + 1
            if density > 1e-12 {
                let needed = (goal - acc) / density  // µs until the window is full
                let room = Double(next) - Double(position)
                if room >= needed {
                    let step = needed.rounded(.up)
                    let sum = step >= room || step >= 9e18 ? nil : position.addingReportingOverflow(Int64(step))
                    let ahead = sum.flatMap { $0.overflow ? nil : $0.partialValue } ?? next
                    let cut = Swift.min(next, Swift.max(ahead, windowStart + 1))
                    windows.append(TimeRange(start: windowStart, end: cut))
                    windowStart = cut
                    position = cut
                    acc = 0
                    continue
                }
                acc += density * room
            }
            position = next
        }
        if windowStart <= hi { windows.append(TimeRange(start: windowStart, end: hi + 1)) }
        return windows
    }

    // MARK: Sessions

    private static let sessionColumns =
        "org_id, session_id, name, source_id, status, tags, metadata, started_at, started_explicit, ended_at, created_at, created_by_data, pinned"

    private static func session(_ r: Row) -> SessionRecord {
        SessionRecord(
            orgID: r[0], sessionID: r[1], name: r[2], sourceID: r[3],
            status: SessionStatus(rawValue: r[4]) ?? .active, tags: r[5], metadata: r[6],
            startedAt: r[7], startedAtExplicit: (r[8] as Int64) != 0, endedAt: r[9], createdAt: r[10],
            createdByData: (r[11] as Int64) != 0, pinned: (r[12] as Int64) != 0)
    }

    public func createSession(_ s: SessionRecord) async throws -> (SessionRecord, created: Bool) {
        try await readable()
        return try await translate {
            try await pool.write { db in
                if let existing = try Self.fetchSession(orgID: s.orgID, sessionID: s.sessionID, db) {
                    return (existing, false)
                }
                try Self.insert(s, db)
                return (s, true)
            }
        }
    }

    static func fetchSession(orgID: Int64, sessionID: String, _ db: Database) throws -> SessionRecord? {
        try Row.fetchOne(
            db, sql: "SELECT \(Self.sessionColumns) FROM sessions WHERE org_id = ? AND session_id = ?",
            arguments: [orgID, sessionID]
        ).map(Self.session)
    }

    static func insert(_ s: SessionRecord, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO sessions (\(Self.sessionColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                s.orgID, s.sessionID, s.name, s.sourceID, s.status.rawValue, s.tags, s.metadata,
                s.startedAt, s.startedAtExplicit ? 1 : 0, s.endedAt, s.createdAt, s.createdByData ? 1 : 0,
                s.pinned ? 1 : 0,
            ])
    }

    public func session(orgID: Int64, sessionID: String) async throws -> SessionRecord? {
        try await readable()
        return try await translate {
            try await pool.read { db in try Self.fetchSession(orgID: orgID, sessionID: sessionID, db) }
        }
    }

    public func sessions(orgID: Int64, sourceID: String?, status: SessionStatus?) async throws -> [SessionRecord] {
        try await readable()
        return try await translate {
            try await pool.read { db in
                var sql = "SELECT \(Self.sessionColumns) FROM sessions WHERE org_id = ?"
                var args: StatementArguments = [orgID]
                if let sourceID {
                    sql += " AND source_id = ?"
                    _ = args.append(contentsOf: [sourceID])
                }
                if let status {
                    sql += " AND status = ?"
                    _ = args.append(contentsOf: [status.rawValue])
                }
                sql += " ORDER BY started_at DESC, session_id"
                return try Row.fetchAll(db, sql: sql, arguments: args).map(Self.session)
            }
        }
    }

    public func updateSession(_ s: SessionRecord) async throws {
        try await translate {
            try await pool.write { db in
                try db.execute(
                    sql: """
                        UPDATE sessions SET name = ?, status = ?, tags = ?, metadata = ?, started_at = ?, started_explicit = ?,
                            ended_at = ?, created_by_data = ?, pinned = ?
                        WHERE org_id = ? AND session_id = ?
                        """,
                    arguments: [
                        s.name, s.status.rawValue, s.tags, s.metadata, s.startedAt, s.startedAtExplicit ? 1 : 0,
                        s.endedAt, s.createdByData ? 1 : 0, s.pinned ? 1 : 0, s.orgID, s.sessionID,
                    ])
                if db.changesCount == 0 { throw StoreError(.notFound, "session not found") }
            }
        }
    }

    public func deleteSession(orgID: Int64, sessionID: String) async throws -> Bool {
        try await readable()
        let deleted = try await translate {
            try await pool.write { db -> Bool in
                let ids = try Int64.fetchAll(
                    db, sql: "SELECT id FROM series WHERE org_id = ? AND session_id = ?",
                    arguments: [orgID, sessionID])
                for id in ids {
                    for table in ["chunks"] + RollupWidth.allCases.map(\.table) {
                        try db.execute(sql: "DELETE FROM \(table) WHERE series_id = ?", arguments: [id])
                    }
                    try db.execute(sql: "DELETE FROM series WHERE id = ?", arguments: [id])
                }
                try db.execute(sql: "DELETE FROM sessions WHERE org_id = ? AND session_id = ?", arguments: [orgID, sessionID])
                return db.changesCount > 0 || !ids.isEmpty
            }
        }
        forgetSeries(orgID: orgID, sessionID: sessionID)
        return deleted
    }

    public func sessionSummary(orgID: Int64, sessionID: String) async throws -> SessionSummary {
        try await readable()
        return try await translate {
            try await pool.read { db in
                let metrics = try String.fetchAll(
                    db,
                    sql:
                        "SELECT DISTINCT metric FROM series WHERE org_id = ? AND session_id = ? ORDER BY metric",
                    arguments: [orgID, sessionID])
                // Count stored points once: derived vector fields (accel.x) are not extra points.
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT min(c.min_ts), max(c.max_ts), coalesce(sum(c.count), 0) FROM chunks c JOIN series s ON s.id = c.series_id
                        WHERE s.org_id = ? AND s.session_id = ? AND s.derived = 0
                        """, arguments: [orgID, sessionID])
                return SessionSummary(metrics: metrics, pointCount: row?[2] ?? 0, firstTimestamp: row?[0], lastTimestamp: row?[1])
            }
        }
    }
}

extension SQLiteStore {
    public func startRecording(_ s: SessionRecord) async throws -> RecordingStart {
        try await readable()
        return try await translate {
            try await pool.write { db -> RecordingStart in
                var created = false
                var stored = s
                if let existing = try Self.fetchSession(orgID: s.orgID, sessionID: s.sessionID, db) {
                    guard existing.sourceID == s.sourceID, existing.status == .active else {
                        throw StoreError(.conflict, "session \(s.sessionID) already exists")
                    }
                    stored = existing
                } else {
                    try Self.insert(s, db)
                    created = true
                }
                let previous = try String.fetchOne(
                    db, sql: "SELECT session_id FROM recordings WHERE org_id = ? AND source_id = ?",
                    arguments: [s.orgID, s.sourceID])
                try db.execute(
                    sql: "INSERT OR REPLACE INTO recordings (org_id, source_id, session_id) VALUES (?, ?, ?)",
                    arguments: [s.orgID, s.sourceID, s.sessionID])
                var completedPrevious = false
                if let previous, previous != s.sessionID {
                    completedPrevious = try Self.complete(orgID: s.orgID, sessionID: previous, sourceID: nil, at: s.startedAt, db)
                }
                return RecordingStart(
                    session: stored, created: created, previous: previous == s.sessionID ? nil : previous,
                    completedPrevious: completedPrevious)
            }
        }
    }

    public func undoRecordingStart(_ start: RecordingStart, at: Int64) async throws {
        let s = start.session
        try await translate {
            try await pool.write { db in
                if start.created {
                    try db.execute(
                        sql: """
                            UPDATE sessions SET status = 'aborted', ended_at = MAX(?, started_at)
                            WHERE org_id = ? AND session_id = ? AND status = 'active'
                            """, arguments: [at, s.orgID, s.sessionID])
                }
                if let previous = start.previous {
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO recordings (org_id, source_id, session_id) VALUES (?, ?, ?)",
                        arguments: [s.orgID, s.sourceID, previous])
                    if start.completedPrevious {
                        try db.execute(
                            sql: "UPDATE sessions SET status = 'active', ended_at = NULL WHERE org_id = ? AND session_id = ?",
                            arguments: [s.orgID, previous])
                    }
                } else {
                    try db.execute(
                        sql: "DELETE FROM recordings WHERE org_id = ? AND source_id = ? AND session_id = ?",
                        arguments: [s.orgID, s.sourceID, s.sessionID])
                }
            }
        }
    }

    public func stopRecording(orgID: Int64, sourceID: String, alsoSessionID: String?, at: Int64) async throws -> RecordingStop {
        try await readable()
        return try await translate {
            try await pool.write { db -> RecordingStop in
                let stopped = try String.fetchOne(
                    db, sql: "SELECT session_id FROM recordings WHERE org_id = ? AND source_id = ?",
                    arguments: [orgID, sourceID])
                try db.execute(sql: "DELETE FROM recordings WHERE org_id = ? AND source_id = ?", arguments: [orgID, sourceID])
                var completed: [String] = []
                for id in Set([stopped, alsoSessionID].compactMap { $0 }).sorted()
                where try Self.complete(orgID: orgID, sessionID: id, sourceID: sourceID, at: at, db) {
                    completed.append(id)
                }
                return RecordingStop(stopped: stopped, completed: completed)
            }
        }
    }

    /// Completes an active session at `at` (never before its start); true if it did.
    private static func complete(orgID: Int64, sessionID: String, sourceID: String?, at: Int64, _ db: Database) throws -> Bool {
        var sql =
            "UPDATE sessions SET status = 'completed', ended_at = MAX(?, started_at) WHERE org_id = ? AND session_id = ? AND status = 'active'"
        var args: StatementArguments = [at, orgID, sessionID]
        if let sourceID {
            sql += " AND source_id = ?"
            _ = args.append(contentsOf: [sourceID])
        }
        try db.execute(sql: sql, arguments: args)
        return db.changesCount > 0
    }

    public func recordings() async throws -> [(orgID: Int64, sourceID: String, sessionID: String)] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT org_id, source_id, session_id FROM recordings ORDER BY org_id, source_id")
                .map { (orgID: $0[0], sourceID: $0[1], sessionID: $0[2]) }
        }
    }
}
