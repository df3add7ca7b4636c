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
            w.raw(",\"summary\":{\"metrics\":")
            w.strings(summary.metrics)
            w.raw(",\"point_count\":")
            w.int(summary.pointCount)
            w.raw(",\"first_timestamp_ms\":")
            if let t = summary.firstTimestamp { w.millis(t) } else { w.raw("null") }
            w.raw(",\"last_timestamp_ms\":")
            if let t = summary.lastTimestamp { w.millis(t) } else { w.raw("null") }
            w.raw("}")
        }
        w.raw("}")
    }

    /// Reads a session body (`POST` and `PATCH`) into checked fields.
    static func fields(_ body: [String: Any]) throws -> SessionFields {
        var f = SessionFields()
        func present(_ k: String) -> Any? { body[k].flatMap { $0 is NSNull ? nil : $0 } }
        if let n = present("name") {
            guard let name = n as? String, !name.isEmpty, name.utf8.count <= 200 else {
                throw APIError.badRequest("name must be a string of 1-200 bytes")
            }
            f.name = name
        }
        if let v = present("source_id") {
            guard let src = v as? String, Identifier.isValidSourceID(src) else {
                throw APIError.badRequest("source_id must match ^[a-z0-9][a-z0-9._-]*$ (at most 256 bytes)")
            }
            f.sourceID = src
        }
        if let v = present("status") {
            guard let raw = v as? String, let st = SessionStatus(rawValue: raw) else {
                throw APIError.badRequest("status must be one of active, completed, aborted")
            }
            f.status = st
        }
        if let v = present("session_id") {
            f.sessionID = try Recorder.validSessionID(v as? String)
        }
        do {
            if let v = present("tags") { f.tags = try JSONBody.canonical(v) }
            if let v = present("metadata") { f.metadata = try JSONBody.canonical(v) }
        } catch {
            throw APIError.badRequest("tags and metadata must be objects")
        }
        f.startedAt = try Self.time(present("started_at"), "started_at")
        f.endedAt = try Self.time(present("ended_at"), "ended_at")
        return f
    }

    /// ISO-8601 text or a Unix number (seconds, or ms when >= 1e12).
    static func time(_ v: Any?, _ field: String) throws -> Int64? {
        guard let v else { return nil }
        let t: Int64?
        switch v {
        case let s as String: t = Times.parse(s)
        case let n as NSNumber where !(v is Bool): t = Timestamp.micros(fromWire: n.doubleValue)
        default: t = nil
        }
        guard let t else { throw APIError.badRequest("\(field) must be ISO-8601 or a Unix time, " + Timestamp.rangeMessage) }
        return t
    }

    func create(_ request: Request, _ p: Principal) async throws -> Response {
        let f = try Self.fields(try await JSONBody.object(request))
        let (session, created) = try await state.recorder.create(orgID: p.orgID, f, at: state.config.now())
        return Reply.json(status: created ? .created : .ok) { w in Self.write(session, to: &w) }
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
        return Reply.json { w in
            w.raw("{\"sessions\":[")
            w.list(list) { w, s in Self.write(s, to: &w) }
            w.raw("]}")
        }
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
        return Reply.json { w in Self.write(s, summary: summary, to: &w) }
    }

    func update(_ request: Request, _ p: Principal, _ id: String) async throws -> Response {
        let f = try Self.fields(try await JSONBody.object(request))
        let session = try await state.recorder.update(orgID: p.orgID, sessionID: id, f, at: state.config.now())
        return Reply.json { w in Self.write(session, to: &w) }
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
