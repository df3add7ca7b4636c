/// A decoded, validated ingest request (`POST /ingest` body or a WebSocket `telemetry` frame).
public struct IngestBatch: Sendable {
    /// The request's top-level `source_id`, if any.
    public var sourceID: String?
    /// Top-level `session_id` (applies to points without their own).
    public var sessionID: String?
    /// Every point with its source resolved (per-point `source_id` over top-level).
    public var points: [Point]
    /// The WebSocket frame's `seq`, when present.
    public var seq: Int64?

    public init(sourceID: String? = nil, sessionID: String? = nil, points: [Point], seq: Int64? = nil) {
        self.sourceID = sourceID
        self.sessionID = sessionID
        self.points = points
        self.seq = seq
    }

    /// A recording the server runs for this source takes the points that name no session
    /// (the rule ``IngestDecoder/Options/recordingSessionID`` applies while decoding).
    public mutating func joinRecording(_ sessionID: String) {
        for i in points.indices where points[i].sessionID == nil { points[i].sessionID = sessionID }
    }

    /// The single source of all points, when there is exactly one (echoed in the reply).
    public var singleSourceID: String? {
        guard let first = points.first?.sourceID else { return sourceID }
        for p in points where p.sourceID != first { return nil }
        return first
    }
}

/// Decodes ingest JSON straight from bytes and applies every Plexus validation rule.
/// One bad point rejects the whole batch; the error names it.
public enum IngestDecoder {
    public struct Options: Sendable {
        /// When set, every point gets this source (the WebSocket connection's name) and
        /// per-point `source_id` is ignored.
        public var forcedSourceID: String?
        /// A recording the server started for this source: points that name no session
        /// (neither their own `session_id` nor the frame's) belong to it.
        public var recordingSessionID: String?
        public init(forcedSourceID: String? = nil, recordingSessionID: String? = nil) {
            self.forcedSourceID = forcedSourceID
            self.recordingSessionID = recordingSessionID
        }
    }

    static let invalidJSON = IngestError(.invalidJSON, "invalid JSON body")

    /// Decodes a full ingest body `{"source_id"?, "session_id"?, "points": [...]}`.
    /// Also accepts a WebSocket telemetry frame (extra keys such as `type` and `seq`).
    public static func decode(_ bytes: UnsafeRawBufferPointer, options: Options = .init()) throws(IngestError) -> IngestBatch {
        var c = JSONCursor(bytes)
        var sourceID: String?
        var sessionID: String?
        var seq: Int64?
        var points: [Point]?
        var pointCount = 0
        var repeated = RepeatedText(base: c.base)
        do {
            try c.expect(UInt8(ascii: "{"))
            if !c.consume(UInt8(ascii: "}")) {
                repeat {
                    let key = try c.readString()
                    try c.expect(UInt8(ascii: ":"))
                    switch key {
                    case "source_id":
                        if c.peekKind() == .null {
                            try c.readNull()
                            break
                        }
                        guard c.peekKind() == .string else { throw invalidJSON }
                        sourceID = try c.readString()
                    case "session_id":
                        if c.peekKind() == .null {
                            try c.readNull()
                            break
                        }
                        guard c.peekKind() == .string else { throw invalidJSON }
                        sessionID = try c.readString()
                    case "seq":
                        if c.peekKind() == .null {
                            try c.readNull()
                            break
                        }
                        guard c.peekKind() == .number else { throw invalidJSON }
                        let d = try c.readNumber()
                        guard d.isFinite, d == d.rounded(), abs(d) < 9e15 else { throw invalidJSON }
                        seq = Int64(d)
                    case "points":
                        if c.peekKind() == .null {
                            try c.readNull()
                            points = nil
                            break
                        }
                        guard c.peekKind() == .array else { throw invalidJSON }
                        var list: [Point] = []
                        c.skipWhitespace()
                        c.i += 1
                        if !c.consume(UInt8(ascii: "]")) {
                            repeat {
                                if pointCount >= Limits.maxPointsPerRequest {
                                    try c.skipValue()
                                } else {
                                    list.append(
                                        try decodePoint(
                                            &c, index: pointCount, sourceIgnored: options.forcedSourceID != nil,
                                            repeated: &repeated))
                                    repeated.remembering = true
                                }
                                pointCount += 1
                            } while try !c.nextOrEnd(UInt8(ascii: "]"))
                        }
                        points = list
                    default:
                        try c.skipValue()
                    }
                } while try !c.nextOrEnd(UInt8(ascii: "}"))
            }
            guard c.isAtEndIgnoringWhitespace() else { throw invalidJSON }
        } catch let e as IngestError {
            throw e
        } catch {
            throw invalidJSON
        }
        guard var points else { throw IngestError(.invalidJSON, "'points' array is required") }
        if pointCount > Limits.maxPointsPerRequest {
            throw IngestError(.tooManyPoints, "too many points: \(pointCount) (max \(Limits.maxPointsPerRequest))")
        }
        // Resolve sources: forced (WebSocket) > per point > top level.
        if let top = sourceID, options.forcedSourceID == nil, !top.isEmpty, let refusal = sourceRefusal(top) {
            throw IngestError(.invalidPoint, refusal)
        }
        if let s = sessionID { try checkSession(s, prefix: "session_id") }
        for i in points.indices {
            if let forced = options.forcedSourceID {
                points[i].sourceID = forced
            } else if points[i].sourceID == nil || points[i].sourceID!.isEmpty {
                guard let top = sourceID, !top.isEmpty else {
                    throw IngestError.point(i, " missing source_id (set top-level source_id or per-point source_id)")
                }
                points[i].sourceID = top
            }
            if points[i].sessionID == nil { points[i].sessionID = sessionID }
        }
        var batch = IngestBatch(sourceID: options.forcedSourceID ?? sourceID, sessionID: sessionID, points: points, seq: seq)
        if let recording = options.recordingSessionID { batch.joinRecording(recording) }
        return batch
    }

    static func checkSession(_ s: String, prefix: String) throws(IngestError) {
        if let refusal = sessionRefusal(s, prefix: prefix) { throw IngestError(.invalidPoint, refusal) }
    }

    /// Why a session id is refused, or nil; `prefix` names the field.
    static func sessionRefusal(_ s: String, prefix: String) -> String? {
        if s.isEmpty || s.utf8.count > Limits.maxSessionIDBytes { return "\(prefix) must be 1-\(Limits.maxSessionIDBytes) bytes" }
        if Identifier.hasControlCharacters(s) { return "\(prefix) must not contain control characters" }
        return nil
    }

    /// The keys of a point object the decoder knows, matched on their bytes.
    enum PointField {
        case metric, value, timestamp, sourceID, tags, sessionID, other
    }

    /// Reads a point object's key (and its `:`) without making a `String` of it, unless it
    /// has escapes.
    static func pointField(_ c: inout JSONCursor) throws(JSONCursor.SyntaxError) -> PointField {
        let (s, e, escaped) = try c.scanString()
        try c.expect(UInt8(ascii: ":"))
        if escaped {
            var key = try c.string(s, e, escaped: true)
            return key.withUTF8 { b in b.isEmpty ? .other : field(b.baseAddress!, b.count, readable: b.count) ?? .other }
        }
        // The closing quote and the `:` follow the key, so two more bytes may be read.
        if let known = field(c.base + s, e - s, readable: min(e - s + 2, c.count - s)) { return known }
        // Another key is ignored, but it must still be text (valid UTF-8).
        _ = try c.string(s, e, escaped: false)
        return .other
    }

    /// The known key whose bytes are the `n` at `p`, or nil. `readable`: the bytes from `p`
    /// on that may be read.
    @inline(__always)
    static func field(_ p: UnsafePointer<UInt8>, _ n: Int, readable: Int) -> PointField? {
        // The key's first (up to) eight bytes as one integer, and the rest for the longer ones.
        let head = RepeatedText.word(p, min(n, 8), readable: readable)
        switch n {
        case 4 where head == Keys.tags: return .tags
        case 5 where head == Keys.value: return .value
        case 6 where head == Keys.metric: return .metric
        case 9 where head == Keys.timestam && p[8] == UInt8(ascii: "p"): return .timestamp
        case 9 where head == Keys.sourceI && p[8] == UInt8(ascii: "d"): return .sourceID
        case 10 where head == Keys.session && p[8] == UInt8(ascii: "i") && p[9] == UInt8(ascii: "d"): return .sessionID
        default: return nil
        }
    }

    /// The point keys' first eight bytes, as ``RepeatedText/word(_:_:readable:)`` reads them
    /// (first byte lowest; a test checks them against the text).
    enum Keys {
        static let tags: UInt64 = 0x0000_0000_7367_6174  // "tags"
        static let value: UInt64 = 0x0000_0065_756C_6176  // "value"
        static let metric: UInt64 = 0x0000_6369_7274_656D  // "metric"
        static let timestam: UInt64 = 0x6D61_7473_656D_6974  // "timestam"
        static let sourceI: UInt64 = 0x695F_6563_7275_6F73  // "source_i"
        static let session: UInt64 = 0x5F6E_6F69_7373_6573  // "session_"
    }

    /// A string the body may repeat in every point, valid in `role` (`check` says why not):
    /// decoded and checked at its first copy, shared from then on. Returns the string, or
    /// nil and the refusal.
    static func repeatedString(
        _ c: inout JSONCursor, role: RepeatedText.Role, repeated: inout RepeatedText, check: (String) -> String?
    ) throws(JSONCursor.SyntaxError) -> (String?, refusal: String?) {
        let (s, e, escaped) = try c.scanString()
        if !escaped, let hit = repeated.string(at: s, count: e - s, role: role) { return (hit, nil) }
        let text = try c.string(s, e, escaped: escaped)
        if let refusal = check(text) { return (nil, refusal) }
        if !escaped { repeated.remember(text, at: s, count: e - s, role: role) }
        return (text, nil)
    }

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    /// `sourceIgnored`: the connection names the source (WebSocket), so a point's own
    /// `source_id` is neither used nor validated. `repeated`: the names and tag sets of the
    /// body's earlier points.
    static func decodePoint(
        _ c: inout JSONCursor, index i: Int, sourceIgnored: Bool = false, repeated: inout RepeatedText
    ) throws -> Point {
        switch c.peekKind() {
        case .null:
            throw IngestError.point(i, " is null")
        case .object:
            break
        default:
            throw IngestError.point(i, " must be an object")
        }
        c.i += 1
        var metric: String?
        var metricBad = false
        var value: PlexusValue?
        var valueState = 0  // 0 missing, 1 present, 2 null
        var valueError: String?
        var timestamp: Int64?
        var timestampError: String?
        var sourceID: String?
        var sourceError: String?
        var tags: [Tag] = []
        var tagError: String?
        var sessionID: String?
        var sessionError: String?
        if !c.consume(UInt8(ascii: "}")) {
            repeat {
                switch try pointField(&c) {
                case .metric:
                    if c.peekKind() == .string {
                        let (m, refusal) = try repeatedString(&c, role: .metric, repeated: &repeated, check: Limits.refusal(metric:))
                        if refusal != nil { metricBad = true } else { metric = m }
                    } else {
                        try c.skipValue()
                        metricBad = true
                    }
                case .value:
                    let structured = c.peekKind() == .object || c.peekKind() == .array
                    do {
                        (value, valueState, valueError) = try decodeValue(&c)
                    } catch let e as JSONCursor.SyntaxError where structured {
                        _ = e
                        throw IngestError.point(i, ".value is not valid JSON (NaN, Infinity and invalid escapes are refused)")
                    }
                case .timestamp:
                    switch c.peekKind() {
                    case .null:
                        try c.readNull()
                    case .number:
                        let t = try c.readNumber()
                        if !t.isFinite {
                            timestampError = ".timestamp must be finite"
                        } else if let us = Timestamp.micros(fromWire: t) {
                            timestamp = us
                        } else {
                            timestampError = ".timestamp " + Timestamp.rangeMessage
                        }
                    default:
                        try c.skipValue()
                        timestampError = ".timestamp must be a number"
                    }
                case .sourceID where sourceIgnored:
                    try c.skipValue()
                case .sourceID:
                    if c.peekKind() == .string {
                        let (s, refusal) = try repeatedString(&c, role: .source, repeated: &repeated) { s in
                            s.isEmpty ? nil : sourceRefusal(s).map { " " + $0 }
                        }
                        if let refusal { sourceError = refusal } else if let s, !s.isEmpty { sourceID = s }
                    } else if c.peekKind() == .null {
                        try c.readNull()
                    } else {
                        try c.skipValue()
                        sourceError = " source_id must be a string"
                    }
                case .tags:
                    c.skipWhitespace()
                    let start = c.i
                    if let (cached, length) = repeated.tags(at: start, available: c.count - start) {
                        tags = cached
                        tagError = nil
                        c.i = start + length
                    } else {
                        (tags, tagError) = try decodeTags(&c)
                        if tagError == nil, c.base[start] == UInt8(ascii: "{") {
                            repeated.remember(tags, at: start, count: c.i - start)
                        }
                    }
                case .sessionID:
                    switch c.peekKind() {
                    case .null: try c.readNull()
                    case .string:
                        let s = try c.readString()
                        sessionError = sessionRefusal(s, prefix: ".session_id")
                        if sessionError == nil { sessionID = s }
                    default:
                        try c.skipValue()
                        sessionError = ".session_id must be a string"
                    }
                case .other:
                    try c.skipValue()
                }
            } while try !c.nextOrEnd(UInt8(ascii: "}"))
        }
        if let sourceError { throw IngestError.point(i, sourceError) }
        guard let metric, !metricBad else { throw IngestError.point(i, ".metric invalid") }
        switch valueState {
        case 0: throw IngestError.point(i, ".value is required")
        case 2: throw IngestError.point(i, ".value cannot be null")
        default: break
        }
        if let valueError { throw IngestError.point(i, valueError) }
        if let timestampError { throw IngestError.point(i, timestampError) }
        if let error = tagError ?? sessionError { throw IngestError.point(i, error) }
        // The spec's WebSocket example carries the session inside tags as well.
        if let k = tags.firstIndex(where: { $0.key == "session_id" }) {
            if sessionID == nil { sessionID = tags[k].value }
            tags.remove(at: k)
        }
        return Point(metric: metric, value: value!, timestamp: timestamp, sourceID: sourceID, tags: tags, sessionID: sessionID)
    }

    /// Why a `source_id` is refused, or nil.
    static func sourceRefusal(_ s: String) -> String? {
        if s.utf8.count > Limits.maxSourceIDBytes { return "source_id exceeds max length (\(Limits.maxSourceIDBytes))" }
        if !Identifier.isValidSourceID(s) { return "source_id must match ^[a-z0-9][a-z0-9._-]*$" }
        return nil
    }

    static func decodeValue(_ c: inout JSONCursor) throws -> (PlexusValue?, Int, String?) {
        switch c.peekKind() {
        case .null:
            try c.readNull()
            return (nil, 2, nil)
        case .number:
            let v = PlexusValue.number(try c.readNumber())
            return (v, 1, Limits.refusal(value: v))
        case .string:
            let v = PlexusValue.string(try c.readString())
            return (v, 1, Limits.refusal(value: v))
        case .trueLiteral, .falseLiteral:
            return (.bool(try c.readBool()), 1, nil)
        case .object, .array:
            let isObject = c.peekKind() == .object
            let raw = try c.readRawValue(strict: true)
            let text = JSONText(unchecked: raw)
            let v: PlexusValue = isObject ? .object(text) : .array(text)
            return (v, 1, Limits.refusal(value: v))
        case .invalid:
            throw JSONCursor.SyntaxError(offset: c.offset)
        }
    }

    static func decodeTags(_ c: inout JSONCursor) throws -> ([Tag], String?) {
        switch c.peekKind() {
        case .null:
            try c.readNull()
            return ([], nil)
        case .object:
            break
        default:
            try c.skipValue()
            return ([], ".tags must be an object")
        }
        c.i += 1
        var tags: [Tag] = []
        var err: String?
        if !c.consume(UInt8(ascii: "}")) {
            repeat {
                let k = try c.readString()
                try c.expect(UInt8(ascii: ":"))
                if c.peekKind() != .string {
                    try c.skipValue()
                    err = err ?? ".tags[\"\(k.prefix(64))\"] must be a string"
                    continue
                }
                let v = try c.readString()
                err = err ?? Limits.refusal(tagKey: k, value: v)
                tags.append(Tag(k, v))
            } while try !c.nextOrEnd(UInt8(ascii: "}"))
        }
        if tags.count > 1 {
            tags.sort()
            // Duplicate keys: the last one wins, as in every JSON object reader.
            var dedup: [Tag] = []
            for t in tags {
                if let last = dedup.last, last.key == t.key { dedup[dedup.count - 1] = t } else { dedup.append(t) }
            }
            tags = dedup
        }
        // session_id is lifted out of the tags by the caller, so it does not count.
        let counted = tags.count - (tags.contains { $0.key == "session_id" } ? 1 : 0)
        if err == nil && counted > Limits.maxTags { err = ".tags exceeds max entries (\(Limits.maxTags))" }
        return (tags, err)
    }
}

extension PlexusValue {
    /// For an object whose fields are all numbers (a vector such as `{"x":1,"y":2}`), its
    /// fields in order; otherwise nil. The store exposes these as `metric.field` series.
    public var numericFields: [(String, Double)]? {
        guard case .object(let text) = self else { return nil }
        var s = text.text
        return s.withUTF8 { buf -> [(String, Double)]? in
            var c = JSONCursor(UnsafeRawBufferPointer(buf))
            var out: [(String, Double)] = []
            do {
                try c.expect(UInt8(ascii: "{"))
                if c.consume(UInt8(ascii: "}")) { return nil }
                repeat {
                    let k = try c.readString()
                    try c.expect(UInt8(ascii: ":"))
                    guard c.peekKind() == .number, !k.isEmpty else { return nil }
                    let d = try c.readNumber()
                    guard d.isFinite else { return nil }
                    out.append((k, d))
                } while try !c.nextOrEnd(UInt8(ascii: "}"))
            } catch {
                return nil
            }
            return out.count <= Limits.maxTags * 4 ? out : nil
        }
    }
}

extension PlexusValue {
    /// Parses one JSON value (as written by ``jsonText``); nil for null, invalid text, and
    /// the NaN and Infinity that JSON does not have (also inside objects and arrays).
    public init?(jsonText: String) {
        var s = jsonText
        let v: PlexusValue? = s.withUTF8 { buf in
            var c = JSONCursor(UnsafeRawBufferPointer(buf))
            do {
                let v: PlexusValue?
                switch c.peekKind() {
                case .number:
                    // JSON has no NaN or Infinity (the cursor reads them for the Python SDK's bodies).
                    let d = try c.readNumber()
                    v = d.isFinite ? .number(d) : nil
                case .string: v = .string(try c.readString())
                case .trueLiteral, .falseLiteral: v = .bool(try c.readBool())
                case .object: v = .object(JSONText(unchecked: try c.readRawValue(strict: true)))
                case .array: v = .array(JSONText(unchecked: try c.readRawValue(strict: true)))
                case .null, .invalid: v = nil
                }
                return c.isAtEndIgnoringWhitespace() ? v : nil
            } catch {
                return nil
            }
        }
        guard let v else { return nil }
        self = v
    }
}

extension Tag {
    /// Canonical JSON object text of sorted tags: `{"k":"v"}` (`{}` when empty).
    public static func canonicalJSON(_ tags: [Tag]) -> String {
        if tags.isEmpty { return "{}" }
        var w = JSONWriter()
        w.raw("{")
        w.list(tags) { w, t in
            w.string(t.key)
            w.raw(":")
            w.string(t.value)
        }
        w.raw("}")
        return w.string
    }

    /// Parses a JSON object of string values into sorted tags; nil if it is not one.
    public static func parse(json: String) -> [Tag]? {
        var s = json
        return s.withUTF8 { buf -> [Tag]? in
            var c = JSONCursor(UnsafeRawBufferPointer(buf))
            guard let (tags, err) = try? IngestDecoder.decodeTags(&c), err == nil else { return nil }
            return tags
        }
    }
}
