import Foundation
import Hummingbird
import NIOCore
import PlexusCore
import PlexusModel
import PlexusStorage

/// `/api/sessions`: named recordings of one source's data, for analysis and playback.
struct SessionRoutes {
    let state: ServerState

    func register(_ router: Router<PlexusRequestContext>) {
        let read = router.group("api/sessions", requiring: .read, state.auth)
        let write = router.group("api/sessions", requiring: .write, state.auth)
        let admin = router.group("api/sessions", requiring: .admin, state.auth)
        write.post { request, context in try await create(request, context.caller) }
        read.get { request, context in try await list(request, context.caller) }
        read.get(":id") { request, context in try await get(context.caller, context.parameters.require("id")) }
        write.patch(":id") { request, context in try await update(request, context.caller, context.parameters.require("id")) }
        admin.delete(":id") { _, context in try await delete(context.caller, context.parameters.require("id")) }
        read.get(":id/data") { request, context in try await data(request, context.caller, context.parameters.require("id")) }
        read.get(":id/export") { request, context in try await export(request, context.caller, context.parameters.require("id")) }
    }

    static func body(_ s: SessionRecord, summary: SessionSummary? = nil) -> SessionBody {
        SessionBody(
            sessionID: s.sessionID, name: s.name, sourceID: s.sourceID, status: s.status.rawValue,
            tags: Self.object(s.tags), metadata: Self.object(s.metadata), startedAt: Times.iso(s.startedAt),
            endedAt: s.endedAt.map(Times.iso), createdAt: Times.iso(s.createdAt), pinned: s.pinned,
            summary: summary.map {
                .init(
                    metrics: $0.metrics, pointCount: $0.pointCount, firstTimestampMs: $0.firstTimestamp.map(Timestamp.millis),
                    lastTimestampMs: $0.lastTimestamp.map(Timestamp.millis))
            })
    }

    /// A stored object's JSON text as a value (`{}` if a damaged row holds anything else).
    static func object(_ text: String) -> JSONValue {
        (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) ?? .object([:])
    }

    /// Checks a session body (`POST` and `PATCH`) field by field.
    static func fields(_ body: SessionRequest) throws -> SessionFields {
        var f = SessionFields()
        if let name = body.name {
            guard !name.isEmpty, name.utf8.count <= 200 else { throw APIError.badRequest("name must be a string of 1-200 bytes") }
            f.name = name
        }
        if let src = body.sourceID {
            guard Identifier.isValidSourceID(src) else {
                throw APIError.badRequest("source_id must match ^[a-z0-9][a-z0-9._-]*$ (at most 256 bytes)")
            }
            f.sourceID = src
        }
        if let raw = body.status {
            guard let st = SessionStatus(rawValue: raw) else {
                throw APIError.badRequest("status must be one of active, completed, aborted")
            }
            f.status = st
        }
        if let id = body.sessionID { f.sessionID = try Recorder.validSessionID(id) }
        for value in [body.tags, body.metadata] where value.map({ $0.objectValue == nil }) ?? false {
            throw APIError.badRequest("tags and metadata must be objects")
        }
        f.tags = try body.tags.map(JSONText.canonical)
        f.metadata = try body.metadata.map(JSONText.canonical)
        f.startedAt = try Self.time(body.startedAt, "started_at")
        f.endedAt = try Self.time(body.endedAt, "ended_at")
        f.pinned = body.pinned
        return f
    }

    /// ISO-8601 text or a Unix number (seconds, or ms when >= 1e12).
    static func time(_ v: WireTime?, _ field: String) throws -> Int64? {
        guard let v else { return nil }
        let t: Int64? =
            switch v {
            case .text(let s): Times.parse(s)
            case .number(let n): Timestamp.micros(fromWire: n)
            }
        guard let t else { throw APIError.badRequest("\(field) must be ISO-8601 or a Unix time, " + Timestamp.rangeMessage) }
        return t
    }

    func create(_ request: Request, _ p: Principal) async throws -> Response {
        let f = try Self.fields(try await JSONBody.decode(SessionRequest.self, from: request))
        let (session, created) = try await state.recorder.create(orgID: p.orgID, f, at: state.config.now())
        return try Reply.json(Self.body(session), status: created ? .created : .ok)
    }

    func list(_ request: Request, _ p: Principal) async throws -> Response {
        let q = request.uri.queryParameters
        var status: SessionStatus?
        if let s = q.get("status"), !s.isEmpty {
            guard let st = SessionStatus(rawValue: s) else { throw APIError.badRequest("status must be one of active, completed, aborted") }
            status = st
        }
        let source = q.get("source_id").flatMap { $0.isEmpty ? nil : $0 }
        let list = try await state.store.sessions(orgID: p.orgID, sourceID: source, status: status)
        return try Reply.json(SessionList(sessions: list.map { Self.body($0) }))
    }

    func find(_ orgID: Int64, _ id: String) async throws -> SessionRecord {
        guard let s = try await state.store.session(orgID: orgID, sessionID: id) else {
            throw APIError.notFound("session not found")
        }
        return s
    }

    func get(_ p: Principal, _ id: String) async throws -> Response {
        let s = try await find(p.orgID, id)
        let summary = try await state.store.sessionSummary(orgID: p.orgID, sessionID: id)
        return try Reply.json(Self.body(s, summary: summary))
    }

    func update(_ request: Request, _ p: Principal, _ id: String) async throws -> Response {
        let f = try Self.fields(try await JSONBody.decode(SessionRequest.self, from: request))
        let session = try await state.recorder.update(orgID: p.orgID, sessionID: id, f, at: state.config.now())
        return try Reply.json(Self.body(session))
    }

    func delete(_ p: Principal, _ id: String) async throws -> Response {
        guard try await state.store.deleteSession(orgID: p.orgID, sessionID: id) else {
            throw APIError.notFound("session not found")
        }
        state.cardinality.forget(orgID: p.orgID)
        return Response(status: .noContent)
    }

    func data(_ request: Request, _ p: Principal, _ id: String) async throws -> Response {
        let s = try await find(p.orgID, id)
        let summary = try await state.store.sessionSummary(orgID: p.orgID, sessionID: id)
        // Default window: the whole session (its data, or its start/end when it has none).
        // Clamped to the valid range: a store written before times were range-checked may
        // hold points anywhere, and `+ 1` must not overflow.
        let valid = Timestamp.validMicros
        func clamp(_ t: Int64) -> Int64 { min(max(t, valid.lowerBound), valid.upperBound - 1) }
        let lo = clamp(min(summary.firstTimestamp ?? s.startedAt, s.startedAt))
        let hi = max(clamp(summary.lastTimestamp ?? s.endedAt ?? state.config.now()), clamp(s.endedAt ?? 0)) + 1
        var selector = SeriesSelector(orgID: p.orgID, sourceID: s.sourceID, sessionID: id)
        return try await QueryRoutes(state: state).metricsQuery(
            request, selector: &selector, defaultRange: TimeRange(start: lo, end: max(hi, lo + 1)))
    }

    func export(_ request: Request, _ p: Principal, _ id: String) async throws -> Response {
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
        let filename = String(
            s.sessionID.unicodeScalars.filter {
                $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_-.".unicodeScalars.contains($0))
            }.map(Character.init))
        return Response(
            status: .ok,
            headers: [
                .contentType: type, .contentDisposition: "attachment; filename=\"\(filename).\(format)\"",
            ], body: body)
    }

    /// One CSV field (RFC 4180 quoting). Text a spreadsheet would run as a formula (it
    /// starts with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, as
    /// OWASP advises against CSV injection; numbers are written as numbers.
    static func csvField(_ s: String, _ out: inout JSONWriter, number: Bool = false) {
        var s = s
        if !number, let first = s.utf8.first,
            [
                UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "@"),
                0x09, 0x0D,
            ].contains(first)
        {
            s = "'" + s
        }
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
        case .number: csvField(p.value.jsonText, &out, number: true)
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
