import Hummingbird
import NIOCore
import PlexusCore
import PlexusModel
import PlexusStorage

/// The read API under `/v1` (read scope), in the shapes of the original platform's API.
struct QueryRoutes {
    let state: ServerState
    static let maxRows = 10_000

    func register(_ router: Router<PlexusRequestContext>) {
        let g = router.group("v1/sources", requiring: .read, state.auth)
        g.get { request, context in try await sources(request, context.caller) }
        g.get(":id") { _, context in try await source(context.caller, context.parameters.require("id")) }
        g.get(":id/metrics") { _, context in try await metrics(context.caller, context.parameters.require("id")) }
        g.get(":id/metrics/latest") { request, context in try await latest(request, context.caller, context.parameters.require("id")) }
        g.get(":id/metrics/query") { request, context in
            var sel = SeriesSelector(orgID: try context.caller.orgID, sourceID: try context.parameters.require("id"))
            return try await metricsQuery(request, selector: &sel, defaultRange: nil)
        }
        g.get(":id/logs") { request, context in try await logs(request, context.caller, context.parameters.require("id")) }
    }

    func sources(_ request: Request, _ p: Principal) async throws -> Response {
        let filter = QueryString(request).get("status")
        guard filter == nil || filter == "online" || filter == "offline" else {
            throw APIError.badRequest("status must be online or offline")
        }
        let online = Dictionary(uniqueKeysWithValues: state.hub.online(orgID: p.orgID).map { ($0.sourceID, $0) })
        var known = try await state.store.sources(orgID: p.orgID).map { ($0.sourceID, $0.lastSeen as Int64?) }
        // A connected device that has not sent data yet is still a source.
        for s in online.keys where !known.contains(where: { $0.0 == s }) { known.append((s, nil)) }
        known.sort { $0.0 < $1.0 }
        let devices = known.compactMap { (id, last) -> SourceBody? in
            let live = online[id]
            if filter == "online" && live == nil || filter == "offline" && live != nil { return nil }
            return Self.body(id, live: live, lastSeen: last)
        }
        return try Reply.json(SourceList(devices: devices))
    }

    /// A source; for a connected device also what it reported (platform, sensors, …).
    static func body(_ id: String, live: DeviceInfo?, lastSeen: Int64?) -> SourceBody {
        let last = max(lastSeen ?? Int64.min, live?.lastSeen ?? Int64.min)
        return SourceBody(
            sourceID: id, online: live != nil, lastSeenMs: last == Int64.min ? nil : last / 1_000, platform: live?.platform,
            agentVersion: live?.agentVersion, sensors: live.map { $0.sensorsValue }, connectedAtMs: live.map { $0.connectedAt / 1_000 })
    }

    func source(_ p: Principal, _ id: String) async throws -> Response {
        let info = try await state.store.source(orgID: p.orgID, sourceID: id)
        let live = state.hub.info(orgID: p.orgID, sourceID: id)
        guard info != nil || live != nil else { throw APIError.notFound("device not found") }
        return try Reply.json(Self.body(id, live: live, lastSeen: info?.lastSeen))
    }

    func metrics(_ p: Principal, _ id: String) async throws -> Response {
        let names = try await state.store.metrics(orgID: p.orgID, sourceID: id)
        return Reply.json { w in
            w.strings(names)
        }
    }

    func latest(_ request: Request, _ p: Principal, _ id: String) async throws -> Response {
        let since = state.config.now() - 3_600_000_000
        let values = try await state.store.latest(orgID: p.orgID, sourceID: id, since: since)
        return Reply.json { w in
            w.raw("{\"metrics\":{")
            w.list(values) { w, v in
                w.string(v.metric)
                w.raw(":")
                w.write(v.value)
            }
            w.raw("},\"timestamps_ms\":{")
            w.list(values) { w, v in
                w.string(v.metric)
                w.raw(":")
                w.millis(v.timestamp)
            }
            w.raw("}}")
        }
    }

    /// Reads `last` or `start`+`end` (default: the last hour, or `defaultRange`). Every
    /// bound lies within `Timestamp.validMicros`, so spans cannot overflow.
    func timeRange(_ q: QueryString, defaultRange: TimeRange?) throws -> TimeRange {
        let now = min(max(state.config.now(), Timestamp.validMicros.lowerBound), Timestamp.validMicros.upperBound - 2)
        if let last = q.nonEmpty("last") {
            guard let us = Times.parseLast(last) else { throw APIError.badRequest("invalid last — use e.g. 1h, 30m, 7d") }
            return TimeRange(start: max(Timestamp.validMicros.lowerBound, now - us), end: now + 1)
        }
        let start = q.nonEmpty("start")
        let end = q.nonEmpty("end")
        switch (start, end) {
        case (nil, nil):
            return defaultRange ?? TimeRange(start: max(0, now - 3_600_000_000), end: now + 1)
        case (let s?, let e?):
            guard let a = Times.parse(s) else {
                throw APIError.badRequest("start must be ISO-8601 or a Unix time, " + Timestamp.rangeMessage)
            }
            guard let b = Times.parse(e) else {
                throw APIError.badRequest("end must be ISO-8601 or a Unix time, " + Timestamp.rangeMessage)
            }
            guard b > a else { throw APIError.badRequest("end must be after start") }
            return TimeRange(start: a, end: b)
        default:
            throw APIError.badRequest("start and end must be provided together")
        }
    }

    /// The automatic interval for a window, as the original platform chooses it.
    static func autoInterval(_ r: TimeRange) -> Resolution? {
        let (span, overflow) = r.end.subtractingReportingOverflow(r.start)
        if overflow { return .day }
        if span < 600_000_000 { return nil }
        if span < 36_000_000_000 { return .minute }
        if span < 259_200_000_000 { return .tenMinutes }
        if span < 1_296_000_000_000 { return .hour }
        return .day
    }

    /// `tag.<key>=<value>` filters (keys and values percent-decoded, so any tag ingest
    /// accepts can be named).
    static func tagFilters(_ q: QueryString) -> [Tag] {
        q.pairs.compactMap { p -> Tag? in
            guard p.key.hasPrefix("tag.") else { return nil }
            return Tag(String(p.key.dropFirst(4)), p.value)
        }.sorted()
    }

    /// The metrics asked for: `metrics=a,b` (the API's comma list), or `metrics=` repeated,
    /// or `metric=` (repeatable), each value then taken whole so a name with a comma can be
    /// selected. Nil when none is given.
    static func metricNames(_ q: QueryString) -> [String]? {
        let listed = q.all("metrics").filter { !$0.isEmpty }
        var names: [String]
        if listed.count == 1 {
            names = listed[0].split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
        } else {
            names = listed
        }
        names += q.all("metric").filter { !$0.isEmpty }
        return names.isEmpty ? nil : names
    }

    /// `GET …/metrics/query` and `GET /api/sessions/{id}/data`.
    func metricsQuery(_ request: Request, selector: inout SeriesSelector, defaultRange: TimeRange?) async throws -> Response {
        let q = QueryString(request)
        if let names = Self.metricNames(q) {
            guard names.count <= 1_000 else { throw APIError.badRequest("at most 1000 metrics per query") }
            selector.metrics = names
        }
        if let s = q.nonEmpty("session_id") {
            if let forced = selector.sessionID, forced != s { throw APIError.badRequest("session_id does not match") }
            selector.sessionID = s
        }
        selector.tags = Self.tagFilters(q)
        let range = try timeRange(q, defaultRange: defaultRange)
        var resolution: Resolution?
        var auto = false
        switch q.get("interval") {
        case nil, "", "auto":
            resolution = Self.autoInterval(range)
            auto = resolution != nil
        case "raw":
            resolution = nil
        case let i?:
            guard let r = Resolution(rawValue: i) else {
                throw APIError.badRequest("interval must be one of ['raw','1m','10m','1h','1d']")
            }
            resolution = r
        }
        let start = ContinuousClock.now
        defer { ServerMetrics.storeLatency("query", start.duration(to: .now)) }
        if let resolution {
            let r = try await state.store.queryAggregated(selector, range: range, resolution: resolution, limit: Self.maxRows)
            return Reply.json { w in
                w.raw("{\"interval\":")
                w.string(resolution.rawValue)
                w.raw(",\"auto_downsampled\":")
                w.bool(auto)
                w.raw(",\"truncated\":")
                w.bool(r.truncated)
                w.raw(",\"series\":{")
                w.list(r.series) { w, s in
                    w.string(s.metric)
                    w.raw(":{\"timestamp_ms\":[")
                    w.list(s.buckets) { w, x in w.int(x.start / 1_000) }
                    w.raw("],\"min\":[")
                    w.list(s.buckets) { w, x in w.number(x.min) }
                    w.raw("],\"max\":[")
                    w.list(s.buckets) { w, x in w.number(x.max) }
                    w.raw("],\"avg\":[")
                    w.list(s.buckets) { w, x in w.number(x.average) }
                    w.raw("],\"count\":[")
                    w.list(s.buckets) { w, x in w.int(x.count) }
                    w.raw("]}")
                }
                w.raw("}}")
            }
        }
        let r = try await state.store.queryRaw(selector, range: range, limit: Self.maxRows)
        return Reply.json { w in
            w.raw("{\"interval\":\"raw\",\"auto_downsampled\":false,\"truncated\":")
            w.bool(r.truncated)
            w.raw(",\"series\":{")
            w.list(r.series) { w, s in
                w.string(s.metric)
                w.raw(":{\"timestamp_ms\":[")
                w.list(s.timestamps) { w, x in w.millis(x) }
                w.raw("],\"value\":[")
                w.list(s.values) { w, x in w.write(x) }
                w.raw("]}")
            }
            w.raw("}}")
        }
    }

    func logs(_ request: Request, _ p: Principal, _ id: String) async throws -> Response {
        let q = QueryString(request)
        var sel = SeriesSelector(orgID: p.orgID, sourceID: id, tags: Self.tagFilters(q))
        if let n = q.nonEmpty("name") { sel.metrics = [n] }
        var limit = 1_000
        var newest = false
        var range: TimeRange
        if let t = q.get("tail"), !t.isEmpty {
            guard let n = Int(t), n > 0, n <= Self.maxRows else { throw APIError.badRequest("tail must be 1-10000") }
            limit = n
            newest = true
            range = TimeRange(start: Timestamp.validMicros.lowerBound, end: Timestamp.validMicros.upperBound)
        } else {
            range = try timeRange(q, defaultRange: nil)
            if let l = q.get("limit"), !l.isEmpty {
                guard let n = Int(l), n > 0, n <= Self.maxRows else { throw APIError.badRequest("limit must be 1-10000") }
                limit = n
            }
        }
        let points = try await state.store.logs(sel, range: range, limit: limit, newestFirst: newest)
        return Reply.json { w in
            w.raw("[")
            w.list(points) { w, pt in
                w.raw("{\"timestamp_ms\":")
                w.millis(pt.timestamp)
                w.raw(",\"metric\":")
                w.string(pt.metric)
                w.raw(",\"value\":")
                w.write(pt.value)
                w.raw(",\"tags\":")
                w.rawText(Tag.canonicalJSON(pt.tags))
                w.raw("}")
            }
            w.raw("]")
        }
    }
}
