/// One telemetry point after decoding and validation.
public struct Point: Sendable, Hashable {
    public var metric: String
    public var value: PlexusValue
    /// Unix time in microseconds, or nil when the sender omitted it (the receiver fills
    /// in its own clock).
    public var timestamp: Int64?
    public var sourceID: String?
    /// Tags sorted by key, at most ``Limits/maxTags``.
    public var tags: [Tag]
    public var sessionID: String?

    public init(
        metric: String, value: PlexusValue, timestamp: Int64? = nil, sourceID: String? = nil,
        tags: [Tag] = [], sessionID: String? = nil
    ) {
        self.metric = metric
        self.value = value
        self.timestamp = timestamp
        self.sourceID = sourceID
        self.tags = tags
        self.sessionID = sessionID
    }
}

public struct Tag: Sendable, Hashable, Comparable {
    public var key: String
    public var value: String
    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
    public static func < (a: Tag, b: Tag) -> Bool { a.key < b.key || (a.key == b.key && a.value < b.value) }
}

/// The limits every Plexus ingest path enforces (HTTP and WebSocket alike).
public enum Limits {
    /// Largest HTTP body, compressed or decompressed (5 MiB).
    public static let maxBodyBytes = 5 * 1024 * 1024
    /// Largest WebSocket frame (1 MiB).
    public static let maxFrameBytes = 1024 * 1024
    public static let maxPointsPerRequest = 10_000
    public static let maxSourceIDBytes = 256
    public static let maxMetricBytes = 256
    public static let maxTags = 16
    public static let maxTagBytes = 256
    public static let maxSessionIDBytes = 256
    /// String values; longer than the original platform's 256 bytes so log lines fit.
    public static let maxStringValueBytes = 64 * 1024
    /// Object and array values (JSON text); a 10,000-sample float waveform fits.
    public static let maxStructuredValueBytes = 1024 * 1024
}

extension Limits {
    /// Why a metric name is refused, or nil: 1...``maxMetricBytes`` bytes without control characters.
    public static func refusal(metric m: String) -> String? {
        m.isEmpty || m.utf8.count > maxMetricBytes || Identifier.hasControlCharacters(m) ? ".metric invalid" : nil
    }

    /// Why a value is refused, or nil: numbers finite, strings and JSON text within their sizes.
    public static func refusal(value: PlexusValue) -> String? {
        switch value {
        case .number(let d): d.isFinite ? nil : ".value must be finite"
        case .string(let s): s.utf8.count > maxStringValueBytes ? ".value string exceeds max length (\(maxStringValueBytes))" : nil
        case .object(let t), .array(let t):
            t.text.utf8.count > maxStructuredValueBytes ? ".value exceeds max bytes (\(maxStructuredValueBytes))" : nil
        case .bool: nil
        }
    }

    /// Why a tag is refused, or nil.
    public static func refusal(tagKey k: String, value v: String) -> String? {
        if k.isEmpty { return ".tags key must not be empty" }
        if Identifier.hasControlCharacters(k) || Identifier.hasControlCharacters(v) {
            return ".tags keys and values must not contain control characters"
        }
        if k.utf8.count > maxTagBytes { return ".tags key too long" }
        if k == "session_id" && v.isEmpty { return ".tags[\"session_id\"] must not be empty" }
        if v.utf8.count > maxTagBytes { return ".tags[\"\(k)\"] value too long" }
        return nil
    }

    /// Why a point's tags are refused, or nil: each tag's rules, and at most ``maxTags``
    /// besides a `session_id` (which ingest lifts out of the tags).
    public static func refusal(tags: [Tag]) -> String? {
        for t in tags { if let r = refusal(tagKey: t.key, value: t.value) { return r } }
        let counted = tags.count - (tags.contains { $0.key == "session_id" } ? 1 : 0)
        return counted > maxTags ? ".tags exceeds max entries (\(maxTags))" : nil
    }

    /// Why the server would refuse a point, or nil: the rules every ingest path applies,
    /// for senders (the SDK) to check a point before it joins a batch it could sink.
    public static func refusal(_ p: Point) -> String? {
        if let r = refusal(metric: p.metric) ?? refusal(value: p.value) ?? refusal(tags: p.tags) { return r }
        if let session = p.sessionID, !Identifier.isValidSessionID(session) { return ".session_id invalid" }
        return nil
    }
}

/// Timestamp rules shared by every path: seconds (fractions kept), or milliseconds when
/// the number is at least 1e12; stored as microseconds.
public enum Timestamp {
    public static let millisecondThreshold = 1e12

    /// Every time the server accepts, in Unix microseconds: 1970-01-01T00:00:00Z up to
    /// (not including) 10000-01-01T00:00:00Z. Anything outside is refused at the edge
    /// (ingest, frames, query parameters, session bodies), so span and bucket arithmetic
    /// on stored times can never overflow.
    public static let validMicros: Range<Int64> = 0..<253_402_300_800_000_000

    /// Whether `us` lies in ``validMicros``.
    public static func isValid(_ us: Int64) -> Bool { validMicros.contains(us) }

    /// The refusal every path gives for a time outside ``validMicros``.
    public static let rangeMessage = "out of range (1970-01-01 to 9999-12-31)"

    /// Converts a wire timestamp to Unix microseconds, or nil if it is not finite or lies
    /// outside ``validMicros``.
    public static func micros(fromWire t: Double) -> Int64? {
        guard let us = unboundedMicros(fromWire: t), isValid(us) else { return nil }
        return us
    }

    static func unboundedMicros(fromWire t: Double) -> Int64? {
        guard t.isFinite else { return nil }
        let isMillis = t >= millisecondThreshold || t <= -millisecondThreshold
        // Whole numbers scale exactly in integer arithmetic (a Double product past 2^53 rounds).
        if t == t.rounded(.towardZero), abs(t) < 9.0e15 {
            let (us, overflow) = Int64(t).multipliedReportingOverflow(by: isMillis ? 1_000 : 1_000_000)
            return overflow ? nil : us
        }
        let us = isMillis ? t * 1_000 : t * 1_000_000
        guard abs(us) < 9.2e18 else { return nil }
        return Int64(us.rounded())
    }

    /// The time a JSON ingest body can carry exactly (``JSONWriter/exactTimestamp(_:)``):
    /// `us` itself up to 2^33 seconds (the year 2242), whole milliseconds after that (a
    /// wire number is read through a Double, which then no longer holds every microsecond).
    /// Transports that are stored as JSON (line protocol) use it, so a replay of the
    /// write-ahead log rebuilds the very points that were acknowledged.
    public static func representableOnTheWire(_ us: Int64) -> Int64 {
        guard us >= exactMicrosecondLimit, us % 1_000 != 0 else { return us }
        return us / 1_000 * 1_000
    }

    /// 2^33 seconds in microseconds: below it a seconds value with six decimals parses back exactly.
    static let exactMicrosecondLimit: Int64 = 8_589_934_592_000_000

    /// A duration written `90s`, `30m`, `12h` or `7d`, in microseconds; nil otherwise.
    public static func duration(_ s: String) -> Int64? {
        guard let unit = s.last, let n = Int64(s.dropLast()), n > 0 else { return nil }
        let scale: Int64
        switch unit {
        case "s": scale = 1_000_000
        case "m": scale = 60_000_000
        case "h": scale = 3_600_000_000
        case "d": scale = 86_400_000_000
        default: return nil
        }
        // At most the whole valid time range: longer spans mean nothing and could overflow.
        let (us, overflow) = n.multipliedReportingOverflow(by: scale)
        guard !overflow, us <= validMicros.upperBound else { return nil }
        return us
    }

    /// Microseconds to Unix milliseconds as a Double (sub-millisecond kept as a fraction).

    public static func millis(_ us: Int64) -> Double { Double(us) / 1_000 }
}

/// Checks for identifiers.
public enum Identifier {
    /// Whether a name holds a C0 control character or DEL. Names (metrics, tag keys and
    /// values, session ids) refuse them: SQLite cuts text at a NUL, so `a\u{0}b` and `a`
    /// would name one series, and control characters have no place in a label.
    public static func hasControlCharacters(_ s: String) -> Bool {
        s.utf8.contains { $0 < 0x20 || $0 == 0x7F }
    }

    /// A session id: 1...``Limits/maxSessionIDBytes`` bytes without control characters.
    public static func isValidSessionID(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= Limits.maxSessionIDBytes && !hasControlCharacters(s)
    }

    /// A source id made from a host name or a label value (line protocol's `host` tag,
    /// Prometheus' `instance` label): ASCII letters lowercased, every other byte outside
    /// `[a-z0-9._-]` replaced by `-`, leading `.`, `_` and `-` dropped, at most 256 bytes.
    /// `Drone-01` is `drone-01`, `127.0.0.1:9100` is `127.0.0.1-9100`; nil when nothing
    /// is left. Different names can map to one source (`a:1`, `a-1`): documented.
    public static func sourceID(fromLabel name: String) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(min(name.utf8.count, Limits.maxSourceIDBytes))
        var lastWasMultibyte = false
        for c in name.utf8 {
            guard out.count < Limits.maxSourceIDBytes else { break }
            if c >= 0x80 {
                // One `-` for each non-ASCII character, not for each of its bytes.
                if c & 0xC0 == 0x80 && lastWasMultibyte { continue }
                lastWasMultibyte = true
            } else {
                lastWasMultibyte = false
            }
            let lower = c >= 0x41 && c <= 0x5A ? c + 0x20 : c
            let alnum = (lower >= 0x61 && lower <= 0x7A) || (lower >= 0x30 && lower <= 0x39)
            let mark = lower == UInt8(ascii: ".") || lower == UInt8(ascii: "_") || lower == UInt8(ascii: "-")
            if out.isEmpty && !alnum { continue }
            out.append(alnum || mark ? lower : UInt8(ascii: "-"))
        }
        return out.isEmpty ? nil : String(decoding: out, as: UTF8.self)
    }

    /// `^[a-z0-9][a-z0-9._-]*$`, 1...256 bytes.
    public static func isValidSourceID(_ s: String) -> Bool {
        var s = s
        return s.withUTF8 { isValidSourceID($0) }
    }

    public static func isValidSourceID(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !b.isEmpty, b.count <= Limits.maxSourceIDBytes else { return false }
        for (i, c) in b.enumerated() {
            let alnum = (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39)
            if alnum { continue }
            if i > 0 && (c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")) { continue }
            return false
        }
        return true
    }
}
