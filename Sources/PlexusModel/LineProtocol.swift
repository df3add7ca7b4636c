/// InfluxDB line protocol, as Telegraf's `outputs.influxdb` and `outputs.influxdb_v2` and the
/// InfluxDB client libraries send it, decoded into Plexus points (docs/line-protocol.md).
///
/// ```text
/// measurement[,tag=value…] field=value[,field=value…] [timestamp]
/// ```
///
/// Each field becomes one point: metric `measurement.field` (or `field`, see
/// ``MetricNames``), the line's tags as tags, its source from the first tag named in
/// ``Mapping/sourceTags`` (made a source id by ``Identifier/sourceID(fromLabel:)``: lowercased,
/// other characters `-`; that tag is not kept as a tag), else
/// ``Options/defaultSource``. A `session_id` tag puts the points in that session, as the
/// JSON API does. Integers (`1i`), unsigned integers (`1u`) and floats become numbers,
/// quoted strings strings, `t`/`true`/`F`/`false`… booleans.
///
/// A line is stored whole or not at all: a line with any bad part is rejected (with its
/// number and the reason) and the other lines are kept: InfluxDB 1.x's partial write.
public enum LineProtocol {
    /// The unit of the timestamps in a request (`precision=`).
    public enum Precision: String, Sendable, CaseIterable {
        case nanoseconds = "ns"
        case microseconds = "us"
        case milliseconds = "ms"
        case seconds = "s"
        /// InfluxDB 1.x only.
        case minutes = "m"
        /// InfluxDB 1.x only.
        case hours = "h"

        /// InfluxDB 1.x's `/write?precision=`: `n`/`ns`, `u`/`us`/`µ`/`µs`, `ms`, `s`, `m`, `h`.
        public init?(v1 text: String) {
            switch text {
            case "n", "ns": self = .nanoseconds
            case "u", "us", "µ", "µs": self = .microseconds
            case "ms": self = .milliseconds
            case "s": self = .seconds
            case "m": self = .minutes
            case "h": self = .hours
            default: return nil
            }
        }

        /// InfluxDB 2.x's `/api/v2/write?precision=`: `ns`, `us`, `ms`, `s`.
        public init?(v2 text: String) {
            switch text {
            case "ns": self = .nanoseconds
            case "us": self = .microseconds
            case "ms": self = .milliseconds
            case "s": self = .seconds
            default: return nil
            }
        }

        /// A timestamp in this unit as Unix microseconds (nanoseconds truncated), or nil on
        /// overflow.
        func micros(_ t: Int64) -> Int64? {
            let scale: Int64
            switch self {
            // Rounded down, so that a time before 1970 stays before it.
            case .nanoseconds:
                let (q, r) = t.quotientAndRemainder(dividingBy: 1_000)
                return r < 0 ? q - 1 : q
            case .microseconds: return t
            case .milliseconds: scale = 1_000
            case .seconds: scale = 1_000_000
            case .minutes: scale = 60_000_000
            case .hours: scale = 3_600_000_000
            }
            let (us, overflow) = t.multipliedReportingOverflow(by: scale)
            return overflow ? nil : us
        }
    }

    /// How a field becomes a metric name.
    public enum MetricNames: String, Sendable, CaseIterable {
        /// `cpu usage_idle=1` is the metric `cpu.usage_idle` (the default).
        case measurementField = "measurement.field"
        /// `cpu usage_idle=1` is the metric `usage_idle`: the measurement is dropped.
        case field
    }

    /// The server's mapping from line protocol to Plexus (flags of `plexus-server`).
    public struct Mapping: Sendable, Equatable {
        /// The tags that name a point's source, in order of preference.
        public var sourceTags: [String]
        public var metricNames: MetricNames

        public init(sourceTags: [String] = ["host", "source_id"], metricNames: MetricNames = .measurementField) {
            self.sourceTags = sourceTags
            self.metricNames = metricNames
        }
    }

    /// How one request is read.
    public struct Options: Sendable {
        public var precision: Precision
        public var mapping: Mapping
        /// The source of a line that has none of ``Mapping/sourceTags``; without one such
        /// a line is rejected.
        public var defaultSource: String?

        public init(precision: Precision = .nanoseconds, mapping: Mapping = .init(), defaultSource: String? = nil) {
            self.precision = precision
            self.mapping = mapping
            self.defaultSource = defaultSource
        }
    }

    /// What a request holds.
    public struct Decoded: Sendable {
        /// The points of every accepted line, in order.
        public var points: [Point]
        /// The rejected lines (1-based), with the reason for each; a reason never repeats
        /// the line's values.
        public var rejected: Rejections
    }

    /// Decodes a request body. Throws only when the whole request is refused: more than
    /// ``Limits/maxPointsPerRequest`` points (fields) in its accepted lines.
    public static func decode(_ bytes: UnsafeRawBufferPointer, options: Options) throws(IngestError) -> Decoded {
        var parser = LineParser(bytes: bytes, options: options)
        var decoded = Decoded(points: [], rejected: Rejections())
        while !parser.atEnd {
            let line = parser.lineNumber
            do {
                try parser.parseLine(into: &decoded.points)
            } catch {
                decoded.rejected.add(Rejections.Item(unit: "line", position: line, reason: error.reason))
                parser.skipLine()
            }
            if decoded.points.count > Limits.maxPointsPerRequest {
                throw IngestError(
                    .tooManyPoints,
                    "too many points: more than \(Limits.maxPointsPerRequest) fields in one request; send fewer lines per request")
            }
        }
        return decoded
    }
}

/// Why a line was rejected.
struct LineError: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

/// A cursor over a line protocol body. Every method stops at the end of the current line
/// (a newline outside a quoted string value).
struct LineParser {
    let base: UnsafeRawBufferPointer
    let options: LineProtocol.Options
    var i = 0
    /// The line `i` is on (1-based).
    var lineNumber = 1
    /// The last tag section decoded, as bytes, and what it resolved to (``tagSet()``).
    var lastTagSet: (bytes: [UInt8], resolved: (String, String?, [Tag]))?

    init(bytes: UnsafeRawBufferPointer, options: LineProtocol.Options) {
        base = bytes
        self.options = options
    }

    static let newline = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let comma = UInt8(ascii: ",")
    static let equals = UInt8(ascii: "=")
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    /// Where a measurement ends, and what it escapes.
    static let measurementStops: [UInt8] = [comma, space]
    /// Where a tag key or field key ends; also what tags and field keys escape.
    static let keyStops: [UInt8] = [comma, space, equals]
    /// Where a tag value ends.
    static let valueStops: [UInt8] = [comma, space]

    var atEnd: Bool { i >= base.count }

    private func peek() -> UInt8? { i < base.count ? base[i] : nil }

    /// Moves past the rest of the current line and its newline.
    mutating func skipLine() {
        while i < base.count && base[i] != Self.newline { i += 1 }
        if i < base.count {
            i += 1
            lineNumber += 1
        }
    }

    /// Whether only blanks (space, tab, carriage return) remain on the line.
    private mutating func skipBlanksToEndOfLine() -> Bool {
        while let c = peek(), c == Self.space || c == 0x09 || c == 0x0D { i += 1 }
        return peek() == nil || peek() == Self.newline
    }

    // MARK: Lines

    /// Parses one line (blank lines and `#` comments give nothing) and appends its points.
    mutating func parseLine(into points: inout [Point]) throws(LineError) {
        while let c = peek(), c == Self.space || c == 0x09 { i += 1 }
        if skipBlanksToEndOfLine() {
            skipLine()
            return
        }
        if peek() == UInt8(ascii: "#") {
            skipLine()
            return
        }
        let measurement = name(stops: Self.measurementStops, escapes: Self.measurementStops)
        guard !measurement.isEmpty else { throw LineError("missing measurement") }
        let resolved = try tagSet()
        guard peek() == Self.space else { throw LineError("missing fields") }
        while peek() == Self.space { i += 1 }
        var fields: [(String, PlexusValue)] = []
        repeat {
            let key = name(stops: Self.keyStops, escapes: Self.keyStops)
            guard peek() == Self.equals else { throw LineError("field without '='") }
            guard !key.isEmpty else { throw LineError("empty field key") }
            i += 1
            let value = try fieldValue()
            // A key repeated in one line: the last one wins.
            if let k = fields.firstIndex(where: { $0.0 == key }) { fields.remove(at: k) }
            fields.append((key, value))
            guard peek() == Self.comma else { break }
            i += 1
        } while true
        var timestamp: Int64?
        if peek() == Self.space {
            while peek() == Self.space { i += 1 }
            if let c = peek(), c != Self.newline, c != 0x0D {
                timestamp = try self.timestamp()
            }
        }
        guard skipBlanksToEndOfLine() else { throw LineError("unexpected text at the end of the line") }
        let (source, session, kept) = resolved
        for (field, value) in fields {
            let metric = options.mapping.metricNames == .field ? field : measurement + "." + field
            guard metric.utf8.count <= Limits.maxMetricBytes else {
                throw LineError("metric name longer than \(Limits.maxMetricBytes) bytes")
            }
            guard !Identifier.hasControlCharacters(metric) else { throw LineError("control character in a name") }
            points.append(Point(metric: metric, value: value, timestamp: timestamp, sourceID: source, tags: kept, sessionID: session))
        }
        skipLine()
    }

    /// The line's tag section (from `i`, at the `,` after the measurement, to the space
    /// before the fields) resolved into its source, session and kept tags. Consecutive
    /// lines of one series set (the usual batch) repeat the section byte for byte: it is
    /// then taken from the line before, without decoding it again.
    private mutating func tagSet() throws(LineError) -> (String, String?, [Tag]) {
        let start = i
        var end = i
        while end < base.count, base[end] != Self.space, base[end] != Self.newline {
            end += base[end] == Self.backslash && end + 1 < base.count && base[end + 1] != Self.newline ? 2 : 1
        }
        let section = UnsafeRawBufferPointer(rebasing: base[start..<end])
        if let last = lastTagSet, section.elementsEqual(last.bytes) {
            i = end
            return last.resolved
        }
        var tags: [Tag] = []
        while peek() == Self.comma {
            i += 1
            let key = name(stops: Self.keyStops, escapes: Self.keyStops)
            guard peek() == Self.equals else { throw LineError("tag without '=' (escape ',', '=' and ' ' in tags with '\\')") }
            i += 1
            let value = name(stops: Self.valueStops, escapes: Self.keyStops)
            guard !key.isEmpty else { throw LineError("empty tag key") }
            guard !value.isEmpty else { throw LineError("empty tag value (omit the tag instead)") }
            tags.append(Tag(key, value))
        }
        guard peek() == Self.space else { throw LineError("missing fields") }
        let resolved = try resolve(tags)
        if i == end { lastTagSet = (Array(section), resolved) }
        return resolved
    }

    /// The source and session the line's tags name, and the tags kept (``LabelSet``).
    private func resolve(_ tags: [Tag]) throws(LineError) -> (String, String?, [Tag]) {
        switch LabelSet.resolve(tags, sourceLabels: options.mapping.sourceTags, defaultSource: options.defaultSource, noun: "tag") {
        case .success(let r): return (r.source, r.session, r.tags)
        case .failure(let refusal): throw LineError(refusal.reason)
        }
    }

    // MARK: Parts

    /// A measurement, tag key, tag value or field key: up to the first unescaped byte of
    /// `stops` (or the end of the line). A backslash before a byte of `escapes` or
    /// before another backslash escapes it; before anything else it is itself.
    private mutating func name(stops: [UInt8], escapes: [UInt8]) -> String {
        let start = i
        var escaped = false
        while let c = peek(), c != Self.newline {
            if c == Self.backslash, i + 1 < base.count, base[i + 1] == Self.backslash || escapes.contains(base[i + 1]) {
                escaped = true
                i += 2
                continue
            }
            if stops.contains(c) { break }
            i += 1
        }
        let raw = UnsafeRawBufferPointer(rebasing: base[start..<i])
        guard escaped else { return String(decoding: raw, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var k = 0
        while k < raw.count {
            if raw[k] == Self.backslash, k + 1 < raw.count, raw[k + 1] == Self.backslash || escapes.contains(raw[k + 1]) {
                k += 1
            }
            out.append(raw[k])
            k += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func fieldValue() throws(LineError) -> PlexusValue {
        if peek() == Self.quote { return .string(try quotedString()) }
        let start = i
        while let c = peek(), c != Self.comma, c != Self.space, c != Self.newline, c != 0x0D { i += 1 }
        let token = UnsafeRawBufferPointer(rebasing: base[start..<i])
        guard let last = token.last else { throw LineError("empty field value") }
        switch last {
        case UInt8(ascii: "i"):
            guard let n = Self.integer(token.dropLast()) else { throw LineError("integer field out of range or malformed") }
            return .number(Double(n))
        case UInt8(ascii: "u"):
            guard let n = Self.unsigned(token.dropLast()) else { throw LineError("unsigned field out of range or malformed") }
            return .number(Double(n))
        default:
            break
        }
        switch String(decoding: token, as: UTF8.self) {
        case "t", "T", "true", "True", "TRUE": return .bool(true)
        case "f", "F", "false", "False", "FALSE": return .bool(false)
        case let text:
            // Digits, sign, point and exponent only: Swift would also read "nan", "inf" and hex.
            let allowed = token.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2B || $0 == 0x2D || $0 == 0x2E || $0 | 0x20 == 0x65 }
            guard allowed, let d = Double(text) else { throw LineError("field value is not a number, string or boolean") }
            guard d.isFinite else { throw LineError("float field out of range") }
            return .number(d)
        }
    }

    /// A double-quoted string value; `\"` and `\\` are escapes, any other backslash is kept.
    /// It may span lines.
    private mutating func quotedString() throws(LineError) -> String {
        i += 1
        var out: [UInt8] = []
        while let c = peek() {
            if c == Self.quote {
                i += 1
                guard out.count <= Limits.maxStringValueBytes else {
                    throw LineError("string field longer than \(Limits.maxStringValueBytes) bytes")
                }
                return String(decoding: out, as: UTF8.self)
            }
            if c == Self.backslash, i + 1 < base.count, base[i + 1] == Self.quote || base[i + 1] == Self.backslash {
                out.append(base[i + 1])
                i += 2
                continue
            }
            if c == Self.newline { lineNumber += 1 }
            out.append(c)
            i += 1
        }
        throw LineError("unterminated string field")
    }

    private mutating func timestamp() throws(LineError) -> Int64 {
        let start = i
        while let c = peek(), c != Self.space, c != Self.newline, c != 0x0D { i += 1 }
        guard let t = Self.integer(UnsafeRawBufferPointer(rebasing: base[start..<i])) else {
            throw LineError("timestamp is not an integer")
        }
        guard let us = options.precision.micros(t), Timestamp.isValid(us) else {
            throw LineError("timestamp " + Timestamp.rangeMessage)
        }
        return Timestamp.representableOnTheWire(us)
    }

    // MARK: Numbers

    /// `-?[0-9]+` as an Int64, nil when malformed or out of range.
    static func integer(_ b: UnsafeRawBufferPointer.SubSequence) -> Int64? {
        integer(UnsafeRawBufferPointer(rebasing: b))
    }

    static func integer(_ b: UnsafeRawBufferPointer) -> Int64? {
        var k = 0
        let negative = b.first == UInt8(ascii: "-")
        if negative || b.first == UInt8(ascii: "+") { k = 1 }
        guard let magnitude = unsigned(UnsafeRawBufferPointer(rebasing: b[k...])) else { return nil }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    static func unsigned(_ b: UnsafeRawBufferPointer.SubSequence) -> UInt64? {
        unsigned(UnsafeRawBufferPointer(rebasing: b))
    }

    /// `[0-9]+` as a UInt64, nil when malformed or out of range.
    static func unsigned(_ b: UnsafeRawBufferPointer) -> UInt64? {
        guard !b.isEmpty else { return nil }
        var n: UInt64 = 0
        for c in b {
            let d = c &- UInt8(ascii: "0")
            guard d < 10 else { return nil }
            let (m, o1) = n.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(d))
            guard !o1, !o2 else { return nil }
            n = s
        }
        return n
    }
}
