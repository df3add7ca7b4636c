package import PlexusModel
import PlexusStorage

/// The body of a version-2 WAL record: a batch's points as they are stored, in a compact
/// binary form (docs/storage.md, *WAL record, version 2*). Every text a batch repeats
/// (metric names, sources, sessions, tag keys and values) is written once in a table, every
/// tag set once; a point then names them by index and carries its time as a difference from
/// the one before, and its value.
///
/// ```
/// body     := nstrings:uvarint { len:uvarint utf8 }          the record's texts, each once
///             nsets:uvarint { ntags:uvarint { key:uvarint value:uvarint } }   tag sets
///             npoints:uvarint { point }
/// point    := kind:u8 metric:uvarint source:uvarint session:uvarint tags:uvarint
///             [time:zigzag-varint]                             when kind has 0x80
///             value
/// kind     := 0 number (value: f64le) | 1 string (value: len:uvarint utf8)
///             | 2 false | 3 true (no value bytes)
///             | 4 object | 5 array (value: len:uvarint JSON text); | 0x80 when timed
/// ```
/// `metric` and the table's indexes count from 0; `source`, `session` and `tags` are 0 for
/// none, else index + 1. `time` is the difference in microseconds from the point before
/// (the first: from the record's `receivedAt`), zigzag-encoded.
///
/// Decoding checks every rule a decoded ingest batch obeys (limits, a valid source, finite
/// numbers, sorted tags, strict JSON text, times inside ``Timestamp/validMicros``): a replay
/// stores nothing that ingest would have refused.
package enum WALPoints {
    /// A record body that cannot be read, or that holds a point ingest would refuse.
    package struct Invalid: Error, Sendable, CustomStringConvertible {
        package var description: String
        /// The points, when the body could be read and a rule refused one of them.
        package var points: [Point]?
    }

    package static func encode(_ points: [Point], receivedAt: Int64, into out: inout [UInt8]) {
        var strings: [String] = []
        var stringIndex: [String: Int] = [:]
        var sets: [[Tag]] = []
        var setIndex: [[Tag]: Int] = [:]
        func index(_ s: String) -> Int {
            if let i = stringIndex[s] { return i }
            strings.append(s)
            stringIndex[s] = strings.count - 1
            return strings.count - 1
        }
        /// 0 for none, else index + 1; `last` is the text before it in this role.
        func optionalIndex(_ s: String?, last: inout (String, Int)?) -> Int {
            guard let s else { return 0 }
            if let l = last, l.0 == s { return l.1 }
            let i = index(s) + 1
            last = (s, i)
            return i
        }
        // Sources, sessions and tag sets repeat from point to point: the one before is
        // checked first (an equal String or Array that shares storage compares at once).
        var lastSource: (String, Int)?
        var lastSession: (String, Int)?
        var lastTags: ([Tag], Int)?
        var body: [UInt8] = []
        body.reserveCapacity(points.count * 16)
        var previous = receivedAt
        for p in points {
            var kind: UInt8
            switch p.value {
            case .number: kind = 0
            case .string: kind = 1
            case .bool(let b): kind = b ? 3 : 2
            case .object: kind = 4
            case .array: kind = 5
            }
            if p.timestamp != nil { kind |= 0x80 }
            // The fixed part (at most 59 bytes) is put together on the stack and appended at
            // once: an Array append per byte cost more than the rest of the encoding.
            var head = Scratch()
            head.byte(kind)
            head.varint(UInt64(index(p.metric)))
            head.varint(UInt64(optionalIndex(p.sourceID, last: &lastSource)))
            head.varint(UInt64(optionalIndex(p.sessionID, last: &lastSession)))
            var tags = 0
            if !p.tags.isEmpty {
                if let last = lastTags, last.0 == p.tags {
                    tags = last.1
                } else if let i = setIndex[p.tags] {
                    tags = i + 1
                    lastTags = (p.tags, tags)
                } else {
                    for t in p.tags {
                        _ = index(t.key)
                        _ = index(t.value)
                    }
                    sets.append(p.tags)
                    setIndex[p.tags] = sets.count - 1
                    tags = sets.count
                    lastTags = (p.tags, tags)
                }
            }
            head.varint(UInt64(tags))
            if let t = p.timestamp {
                // Times inside Timestamp.validMicros and a receivedAt near now: no overflow.
                let d = t &- previous
                head.varint(ZigZag.encode(d))
                previous = t
            }
            if case .number(let d) = p.value { head.word(d.bitPattern) }
            head.append(to: &body)
            switch p.value {
            case .number:
                break  // in the fixed part
            case .string(let s):
                appendText(s, to: &body)
            case .bool:
                break
            case .object(let t), .array(let t):
                appendText(t.text, to: &body)
            }
        }
        UVarint.append(UInt64(strings.count), to: &out)
        for s in strings { appendText(s, to: &out) }
        UVarint.append(UInt64(sets.count), to: &out)
        for set in sets {
            UVarint.append(UInt64(set.count), to: &out)
            for t in set {
                UVarint.append(UInt64(stringIndex[t.key]!), to: &out)
                UVarint.append(UInt64(stringIndex[t.value]!), to: &out)
            }
        }
        UVarint.append(UInt64(points.count), to: &out)
        out.append(contentsOf: body)
    }

    /// One point's fixed part: a kind byte, five varints and a double fit in 64 bytes.
    struct Scratch {
        private var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        private var count = 0

        mutating func byte(_ b: UInt8) {
            let at = count
            withUnsafeMutableBytes(of: &storage) { $0[at] = b }
            count += 1
        }

        mutating func varint(_ v: UInt64) {
            var v = v
            while v >= 0x80 {
                byte(UInt8(truncatingIfNeeded: v) | 0x80)
                v >>= 7
            }
            byte(UInt8(v))
        }

        /// Eight bytes, little-endian.
        mutating func word(_ w: UInt64) {
            let at = count
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: w.littleEndian, toByteOffset: at, as: UInt64.self) }
            count += 8
        }

        func append(to out: inout [UInt8]) {
            var copy = storage
            let n = count
            withUnsafeBytes(of: &copy) { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[..<n])) }
        }
    }

    private static func appendText(_ s: String, to out: inout [UInt8]) {
        UVarint.append(UInt64(s.utf8.count), to: &out)
        out.append(contentsOf: s.utf8)
    }

    /// The points of a body written by ``encode(_:receivedAt:into:)``, each checked.
    package static func decode(_ b: UnsafeRawBufferPointer, receivedAt: Int64) throws(Invalid) -> [Point] {
        var r = Reader(bytes: b)
        let nStrings = try r.count()
        var strings: [String] = []
        strings.reserveCapacity(nStrings)
        for _ in 0..<nStrings { strings.append(try r.text()) }
        let nSets = try r.count()
        var sets: [[Tag]] = []
        sets.reserveCapacity(nSets)
        for _ in 0..<nSets {
            let n = try r.count()
            guard n <= Limits.maxTags else { throw Invalid(description: "a tag set of \(n) tags") }
            var set: [Tag] = []
            for _ in 0..<n {
                let key = strings[try r.index(below: strings.count)]
                let value = strings[try r.index(below: strings.count)]
                if let last = set.last, !(last.key < key) { throw Invalid(description: "tags not sorted and unique") }
                set.append(Tag(key, value))
            }
            sets.append(set)
        }
        // Which texts and tag sets were checked in the role a point gives them: each rule
        // runs once per distinct text, not once per point.
        var asMetric = [Bool?](repeating: nil, count: strings.count)
        var asSource = [Bool?](repeating: nil, count: strings.count + 1)
        var asSession = [Bool?](repeating: nil, count: strings.count + 1)
        var setValid = [Bool?](repeating: nil, count: sets.count + 1)
        var refused: String?
        let nPoints = try r.count()
        var points: [Point] = []
        points.reserveCapacity(nPoints)
        var previous = receivedAt
        for k in 0..<nPoints {
            let kind = try r.byte()
            let metricIndex = try r.index(below: strings.count)
            let metric = strings[metricIndex]
            let source = try r.index(below: strings.count + 1)
            let session = try r.index(below: strings.count + 1)
            let tags = try r.index(below: sets.count + 1)
            if refused == nil {
                let ok = asMetric[metricIndex] ?? (Limits.refusal(metric: metric) == nil)
                asMetric[metricIndex] = ok
                let sourceOK = asSource[source] ?? (source > 0 && Identifier.isValidSourceID(strings[source - 1]))
                asSource[source] = sourceOK
                let sessionOK = asSession[session] ?? (session == 0 || Identifier.isValidSessionID(strings[session - 1]))
                asSession[session] = sessionOK
                let tagsOK = setValid[tags] ?? (tags == 0 || Self.validTags(sets[tags - 1]))
                setValid[tags] = tagsOK
                if !ok {
                    refused = "point \(k): .metric invalid"
                } else if !sourceOK {
                    refused = "point \(k): source_id invalid"
                } else if !sessionOK {
                    refused = "point \(k): .session_id invalid"
                } else if !tagsOK {
                    refused = "point \(k): tags invalid"
                }
            }
            var timestamp: Int64?
            if kind & 0x80 != 0 {
                let d = ZigZag.decode(try r.varint())
                let (t, overflow) = previous.addingReportingOverflow(d)
                guard !overflow else { throw Invalid(description: "a time out of range") }
                timestamp = t
                previous = t
            }
            let value: PlexusValue
            switch kind & 0x7F {
            case 0: value = .number(Double(bitPattern: UInt64(littleEndian: try r.word())))
            case 1: value = .string(try r.text())
            case 2: value = .bool(false)
            case 3: value = .bool(true)
            case 4, 5:
                let text = try r.text()
                guard let v = PlexusValue(jsonText: text), v.kind == (kind & 0x7F == 4 ? .object : .array) else {
                    throw Invalid(description: "a structured value that is not strict JSON of its kind")
                }
                value = v
            default: throw Invalid(description: "unknown value kind \(kind)")
            }
            if refused == nil {
                if let r = Limits.refusal(value: value) {
                    refused = "point \(k): \(r)"
                } else if let t = timestamp, !Timestamp.isValid(t) {
                    refused = "point \(k): .timestamp " + Timestamp.rangeMessage
                }
            }
            points.append(
                Point(
                    metric: metric, value: value, timestamp: timestamp, sourceID: source == 0 ? nil : strings[source - 1],
                    tags: tags == 0 ? [] : sets[tags - 1], sessionID: session == 0 ? nil : strings[session - 1]))
        }
        guard r.i == b.count else { throw Invalid(description: "bytes after the last point") }
        if let refused { throw Invalid(description: refused, points: points) }
        return points
    }

    /// A stored tag set: what ingest accepts, with no `session_id` left among the tags (the
    /// decoder lifts it out).
    static func validTags(_ tags: [Tag]) -> Bool {
        Limits.refusal(tags: tags) == nil && !tags.contains { $0.key == "session_id" }
    }

    /// Reads a body, refusing anything cut off or out of range.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var i = 0

        mutating func byte() throws(Invalid) -> UInt8 {
            guard i < bytes.count else { throw Invalid(description: "cut off") }
            defer { i += 1 }
            return bytes[i]
        }

        mutating func varint() throws(Invalid) -> UInt64 {
            guard let v = UVarint.read(bytes, at: &i) else { throw Invalid(description: "a cut-off or oversized varint") }
            return v
        }

        /// A count of items that each take at least one byte: never more than are left.
        mutating func count() throws(Invalid) -> Int {
            let n = try varint()
            guard n <= UInt64(bytes.count - i) else { throw Invalid(description: "a count of \(n) with \(bytes.count - i) bytes left") }
            return Int(n)
        }

        mutating func index(below limit: Int) throws(Invalid) -> Int {
            let n = try varint()
            guard n < UInt64(limit) else { throw Invalid(description: "an index of \(n), \(limit) known") }
            return Int(n)
        }

        mutating func word() throws(Invalid) -> UInt64 {
            guard bytes.count - i >= 8 else { throw Invalid(description: "cut off") }
            defer { i += 8 }
            return bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        }

        mutating func text() throws(Invalid) -> String {
            let n = try count()
            guard let s = String(utf8: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + n)])) else {
                throw Invalid(description: "text that is not UTF-8")
            }
            i += n
            return s
        }
    }
}
