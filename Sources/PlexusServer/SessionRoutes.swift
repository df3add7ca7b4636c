import Foundation
import Hummingbird
import NIOCore
import PlexusModel
import PlexusStorage

/// `/api/sessions`: named recordings of one source's data, for analysis and playback.
struct SessionRoutes {
    let state: ServerState

    func register(_ router: Router<BasicRequestContext>) {
        let g = router.group("api/sessions")
        g.post { request, _ in try await create(request) }
        g.get { request, _ in try await list(request) }
        g.get(":id") { request, context in try await get(request, context.parameters.require("id")) }
        g.patch(":id") { request, context in try await update(request, context.parameters.require("id")) }
        g.delete(":id") { request, context in try await delete(request, context.parameters.require("id")) }
        g.get(":id/data") { request, context in try await data(request, context.parameters.require("id")) }
        g.get(":id/export") { request, context in try await export(request, context.parameters.require("id")) }
    }

    static func write(_ s: SessionRecord, summary: SessionSummary? = nil, to w: inout JSONWriter) {
        w.raw("{\"session_id\":")
        w.string(s.sessionID)
        w.raw(",\"name\":")
        w.string(s.name)
        w.raw(",\"source_id\":")
        w.string(s.sourceID)
        w.raw(",\"status\":")
        w.string(s.status.rawValue)
        w.raw(",\"tags\":")
        w.rawText(s.tags)
        w.raw(",\"metadata\":")
        w.rawText(s.metadata)
        w.raw(",\"started_at\":")
        w.string(Times.iso(s.startedAt))
        w.raw(",\"ended_at\":")
        w.optionalString(s.endedAt.map(Times.iso))
        w.raw(",\"created_at\":")
        w.string(Times.iso(s.createdAt))
        if let summary {
            w.raw(",\"summary\":{\"metrics\":[")
            for (i, m) in summary.metrics.enumerated() {
                if i > 0 { w.raw(",") }
                w.string(m)
            }
            w.raw("],\"point_count\":")
            w.int(summary.pointCount)
            w.raw(",\"first_timestamp_ms\":")
            if let t = summary.firstTimestamp { w.millis(t) } else { w.raw("null") }
            w.raw(",\"last_timestamp_ms\":")
            if let t = summary.lastTimestamp { w.millis(t) } else { w.raw("null") }
            w.raw("}")
        }
        w.raw("}")
    }

    static func generateID(now: Int64) -> String {
        "session_\(now / 1_000_000)_" + APIKeys.randomBase62(8).lowercased()
    }

    func create(_ request: Request) async throws -> Response {
        let p = try await state.auth.authenticate(request.headers, scope: .write)
        let body = try await JSONBody.object(request)
        let now = state.config.now()
        guard let name = body["name"] as? String, !name.isEmpty, name.utf8.count <= 200 else {
            throw APIError.badRequest("name is required (1-200 characters)")
        }
        guard let source = body["source_id"] as? String, Identifier.isValidSourceID(source) else {
            throw APIError.badRequest("source_id is required and must match ^[a-z0-9][a-z0-9._-]*$")
        }
        var status = SessionStatus.active
        if let s = body["status"], !(s is NSNull) {
            guard let raw = s as? String, let st = SessionStatus(rawValue: raw) else {
                throw APIError.badRequest("status must be one of active, completed, aborted")
            }
            status = st
        }
        let id: String
        if let given = body["session_id"], !(given is NSNull) {
            guard let g = given as? String, !g.isEmpty, g.utf8.count <= Limits.maxSessionIDBytes else {
                throw APIError.badRequest("session_id must be a string of 1-256 bytes")
            }
            id = g
        } else {
            id = Self.generateID(now: now)
        }
        let tags: String, metadata: String
        do {
            tags = try JSONBody.canonical(body["tags"])
            metadata = try JSONBody.canonical(body["metadata"])
        } catch {
            throw APIError.badRequest("tags and metadata must be objects")
        }
        var startedAt = now
        let explicitStart = body["started_at"] is String
        if let s = body["started_at"] as? String {
            guard let t = Times.parse(s) else { throw APIError.badRequest("started_at must be ISO-8601") }
            startedAt = t
        }
        var endedAt: Int64?
        if let s = body["ended_at"] as? String {
            guard let t = Times.parse(s) else { throw APIError.badRequest("ended_at must be ISO-8601") }
            if t < startedAt {
                guard !explicitStart else { throw APIError.badRequest("ended_at must be after started_at") }
                startedAt = t  // a retrospective session: the defaulted start moves back
            }
            endedAt = t
        } else if status != .active {
            endedAt = now
        }
        let record = SessionRecord(orgID: p.orgID, sessionID: id, name: name, sourceID: source, status: status, tags: tags,
                                   metadata: metadata, startedAt: startedAt, startedAtExplicit: explicitStart,
                                   endedAt: endedAt, createdAt: now)
        let (stored, created) = try await state.store.createSession(record)
        if !created {
            // Idempotent: the same body again is fine; anything different is a conflict.
            let same = stored.name == name && stored.sourceID == source && stored.status == status && stored.tags == tags
                && stored.metadata == metadata && (body["started_at"] == nil || stored.startedAt == startedAt)
            guard same else { throw APIError.conflict("session \(id) already exists with different fields") }
        }
        return Reply.json(status: created ? .created : .ok) { w in Self.write(stored, to: &w) }
    }

    func list(_ request: Request) async throws -> Response {
        let p = try await state.auth.authenticate(request.headers, scope: .read)
        let q = request.uri.queryParameters
        var status: SessionStatus?
        if let s = q.get("status"), !s.isEmpty {
            guard let st = SessionStatus(rawValue: s) else { throw APIError.badRequest("status must be one of active, completed, aborted") }
            status = st
        }
        let source = q.get("source_id").flatMap { $0.isEmpty ? nil : $0 }
        let list = try await state.store.sessions(orgID: p.orgID, sourceID: source, status: status)
        return Reply.json { w in
            w.raw("{\"sessions\":[")
            for (i, s) in list.enumerated() {
                if i > 0 { w.raw(",") }
                Self.write(s, to: &w)
            }
            w.raw("]}")
        }
    }

    func find(_ orgID: Int64, _ id: String) async throws -> SessionRecord {
        guard let s = try await state.store.session(orgID: orgID, sessionID: id) else {
            throw APIError.notFound("session not found")
        }
        return s
    }

    func get(_ request: Request, _ id: String) async throws -> Response {
        let p = try await state.auth.authenticate(request.headers, scope: .read)
        let s = try await find(p.orgID, id)
        let summary = try await state.store.sessionSummary(orgID: p.orgID, sessionID: id)
        return Reply.json { w in Self.write(s, summary: summary, to: &w) }
    }

    func update(_ request: Request, _ id: String) async throws -> Response {
        let p = try await state.auth.authenticate(request.headers, scope: .write)
        let body = try await JSONBody.object(request)
        var s = try await find(p.orgID, id)
        let now = state.config.now()
        if let n = body["name"], !(n is NSNull) {
            guard let name = n as? String, !name.isEmpty, name.utf8.count <= 200 else {
                throw APIError.badRequest("name must be 1-200 characters")
            }
            s.name = name
        }
        var newStatus: SessionStatus?
        if let st = body["status"], !(st is NSNull) {
            guard let raw = st as? String, let v = SessionStatus(rawValue: raw) else {
                throw APIError.badRequest("status must be one of active, completed, aborted")
            }
            newStatus = v
        }
        if let e = body["ended_at"], !(e is NSNull) {
            guard let str = e as? String, let t = Times.parse(str) else { throw APIError.badRequest("ended_at must be ISO-8601") }
            try await checkEnd(t, &s)
            s.endedAt = t
            if newStatus == nil && s.status == .active { newStatus = .completed }
        }
        if let newStatus {
            s.status = newStatus
            if newStatus == .active {
                s.endedAt = nil
            } else if s.endedAt == nil {
                guard now >= s.startedAt else { throw APIError.badRequest("ended_at must be after started_at") }
                s.endedAt = now
            }
        }
        try await state.store.updateSession(s)
        return Reply.json { w in Self.write(s, to: &w) }
    }

    /// `ended_at` may not precede an explicit start or the session's first point. A start
    /// nobody gave (the creation time) is provisional: it moves back to the first point, or
    /// to `ended_at` for a session that has no data yet (the spec's own example ends a
    /// just-created session at a date in the past).
    func checkEnd(_ end: Int64, _ s: inout SessionRecord) async throws {
        if s.startedAtExplicit {
            guard end >= s.startedAt else { throw APIError.badRequest("ended_at must be after started_at") }
            return
        }
        let summary = try await state.store.sessionSummary(orgID: s.orgID, sessionID: s.sessionID)
        if let first = summary.firstTimestamp {
            guard end >= first else { throw APIError.badRequest("ended_at must be after started_at (the session's first point)") }
            s.startedAt = min(s.startedAt, first)
        } else {
            s.startedAt = min(s.startedAt, end)
        }
    }

    func delete(_ request: Request, _ id: String) async throws -> Response {
        let p = try await state.auth.authenticate(request.headers, scope: .admin)
        guard try await state.store.deleteSession(orgID: p.orgID, sessionID: id) else {
            throw APIError.notFound("session not found")
        }
        return Response(status: .noContent)
    }

    func data(_ request: Request, _ id: String) async throws -> Response {
        let p = try await state.auth.authenticate(request.headers, scope: .read)
        let s = try await find(p.orgID, id)
        let summary = try await state.store.sessionSummary(orgID: p.orgID, sessionID: id)
        // Default window: the whole session (its data, or its start/end when it has none).
        let lo = min(summary.firstTimestamp ?? s.startedAt, s.startedAt)
        let hi = max((summary.lastTimestamp ?? s.endedAt ?? state.config.now()) + 1, (s.endedAt ?? 0) + 1)
        var selector = SeriesSelector(orgID: p.orgID, sourceID: s.sourceID, sessionID: id)
        return try await QueryRoutes(state: state).metricsQuery(
            request, selector: &selector, defaultRange: TimeRange(start: lo, end: max(hi, lo + 1)))
    }

    func export(_ request: Request, _ id: String) async throws -> Response {
        let p = try await state.auth.authenticate(request.headers, scope: .read)
        let s = try await find(p.orgID, id)
        let format = request.uri.queryParameters.get("format") ?? "csv"
        guard format == "csv" || format == "jsonl" else { throw APIError.badRequest("format must be csv or jsonl") }
        let store = state.store
        let body = ResponseBody { writer in
            if format == "csv" { try await writer.write(ByteBuffer(string: "timestamp,timestamp_ms,source_id,metric,value,tags\n")) }
            try await store.scanSession(orgID: p.orgID, sessionID: id, batchSize: 4096) { points in
                var out = JSONWriter(capacity: points.count * 64)
                for pt in points {
                    if format == "csv" { Self.csvLine(pt, &out) } else { Self.jsonLine(pt, &out) }
                }
                try await writer.write(ByteBuffer(bytes: out.bytes))
            }
            try await writer.finish(nil)
        }
        let type = format == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson"
        let filename = s.sessionID.filter { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }
        return Response(status: .ok, headers: [
            .contentType: type, .contentDisposition: "attachment; filename=\"\(filename).\(format)\"",
        ], body: body)
    }

    static func csvField(_ s: String, _ out: inout JSONWriter) {
        if s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            out.raw("\"")
            out.rawText(s.replacingOccurrences(of: "\"", with: "\"\""))
            out.raw("\"")
        } else {
            out.rawText(s)
        }
    }

    static func csvLine(_ p: StoredPoint, _ out: inout JSONWriter) {
        out.rawText(Times.iso(p.timestamp))
        out.raw(",")
        out.millis(p.timestamp)
        out.raw(",")
        csvField(p.sourceID, &out)
        out.raw(",")
        csvField(p.metric, &out)
        out.raw(",")
        switch p.value {
        case .string(let s): csvField(s, &out)
        default: csvField(p.value.jsonText, &out)
        }
        out.raw(",")
        csvField(p.tags.isEmpty ? "" : Tag.canonicalJSON(p.tags), &out)
        out.raw("\n")
    }

    static func jsonLine(_ p: StoredPoint, _ out: inout JSONWriter) {
        out.raw("{\"timestamp_ms\":")
        out.millis(p.timestamp)
        out.raw(",\"source_id\":")
        out.string(p.sourceID)
        out.raw(",\"metric\":")
        out.string(p.metric)
        out.raw(",\"value\":")
        out.write(p.value)
        out.raw(",\"tags\":")
        out.rawText(Tag.canonicalJSON(p.tags))
        out.raw("}\n")
    }
}
