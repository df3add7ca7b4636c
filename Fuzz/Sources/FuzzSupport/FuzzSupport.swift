import CFuzzerDriver
import PlexusModel
import PlexusWAL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs libFuzzer with `test` as the target and the process's arguments (a corpus
/// directory to fuzz, or input files to run once; `-help=1` lists the options).
public func runFuzzer(_ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, test))
}

/// Writes a line to standard error.
public func printError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// A property every fuzz target checks: on failure it prints what broke and traps, so
/// libFuzzer keeps the input as a crash file.
public func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    guard condition else {
        printError("property violated: " + message())
        fatalError("property violated")
    }
}

/// Known findings that another change fixes (docs/fuzzing.md, "Known findings"). They are
/// counted and reported once instead of stopping the run, unless `PLEXUS_FUZZ_STRICT=1`,
/// which makes them fatal like any other property. Remove an entry once its fix is in.
public enum Known {
    nonisolated(unsafe) private static var reported: Set<String> = []
    private static let strict = getenv("PLEXUS_FUZZ_STRICT").map { String(cString: $0) == "1" } ?? false

    /// `NaN`/`Infinity` tokens that JSONCursor accepts inside objects and arrays (and as
    /// raw frame fields), so they reach stored values and echoed frames.
    public static let nonFiniteTokens = "nonFiniteTokens"

    public static func finding(_ name: String, _ detail: @autoclosure () -> String) {
        if strict { require(false, name + ": " + detail()) }
        if reported.insert(name).inserted {
            printError("known finding (set PLEXUS_FUZZ_STRICT=1 to stop on it): \(name): \(detail())")
        }
    }
}

/// Reads structured choices from the fuzzer's bytes (like LLVM's FuzzedDataProvider):
/// numbers from the front, and zero once the input is used up.
public struct FuzzInput {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var offset = 0

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    public var remaining: Int { bytes.count - offset }
    public var isEmpty: Bool { remaining <= 0 }

    public mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func bool() -> Bool { byte() & 1 == 1 }

    public mutating func uint16() -> UInt16 { UInt16(byte()) | UInt16(byte()) << 8 }

    public mutating func uint64() -> UInt64 {
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(byte()) << (8 * UInt64(k)) }
        return v
    }

    /// The next `n` bytes (fewer at the end).
    public mutating func take(_ n: Int) -> [UInt8] {
        let n = max(0, min(n, remaining))
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }

    /// A string of at most `max` bytes (invalid UTF-8 repaired, as Swift does).
    public mutating func string(max: Int = 64) -> String {
        String(decoding: take(Int(byte()) % (max + 1)), as: UTF8.self)
    }

    public mutating func rest() -> [UInt8] { take(remaining) }
}

/// An independent, strict RFC 8259 validator: UTF-8 checked, no `NaN`/`Infinity`
/// (unless `allowNonFinite`), no control characters in strings, escapes and surrogate
/// pairs checked, one value and nothing after it. Written separately from JSONCursor so
/// the two can be compared.
public struct StrictJSON {
    public enum Failure: Error, Equatable { case syntax, nonFinite }

    let b: [UInt8]
    var i = 0
    let allowNonFinite: Bool
    var sawNonFinite = false

    /// nil when `bytes` is one strict JSON value; else why not. `.nonFinite` means the
    /// text is JSON except for `NaN`/`Infinity` tokens.
    public static func check(_ bytes: some Collection<UInt8>) -> Failure? {
        var p = StrictJSON(b: Array(bytes), allowNonFinite: true)
        do {
            p.ws()
            try p.value(depth: 0)
            p.ws()
            guard p.i == p.b.count else { return .syntax }
        } catch {
            return .syntax
        }
        return p.sawNonFinite ? .nonFinite : nil
    }

    public static func check(_ s: String) -> Failure? { check(Array(s.utf8)) }

    mutating func ws() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    mutating func lit(_ s: String) throws(Failure) {
        for c in s.utf8 {
            guard i < b.count, b[i] == c else { throw .syntax }
            i += 1
        }
    }

    /// After a member: `,` (false: another follows) or `close` (true), else a syntax error.
    mutating func closes(_ close: UInt8) throws(Failure) -> Bool {
        ws()
        guard i < b.count, b[i] == UInt8(ascii: ",") || b[i] == close else { throw .syntax }
        i += 1
        return b[i - 1] == close
    }

    mutating func value(depth: Int) throws(Failure) {
        guard depth < 512, i < b.count else { throw .syntax }
        switch b[i] {
        case UInt8(ascii: "{"):
            i += 1
            ws()
            if i < b.count, b[i] == UInt8(ascii: "}") {
                i += 1
                return
            }
            while true {
                ws()
                try string()
                ws()
                try lit(":")
                ws()
                try value(depth: depth + 1)
                if try closes(UInt8(ascii: "}")) { return }
            }
        case UInt8(ascii: "["):
            i += 1
            ws()
            if i < b.count, b[i] == UInt8(ascii: "]") {
                i += 1
                return
            }
            while true {
                ws()
                try value(depth: depth + 1)
                if try closes(UInt8(ascii: "]")) { return }
            }
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "t"): try lit("true")
        case UInt8(ascii: "f"): try lit("false")
        case UInt8(ascii: "n"): try lit("null")
        case UInt8(ascii: "N"):
            guard allowNonFinite else { throw .syntax }
            try lit("NaN")
            sawNonFinite = true
        default: try number()
        }
    }

    func isDigit(_ k: Int) -> Bool { k < b.count && b[k] >= 0x30 && b[k] <= 0x39 }

    mutating func number() throws(Failure) {
        if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
        if i < b.count, b[i] == UInt8(ascii: "I"), allowNonFinite {
            try lit("Infinity")
            sawNonFinite = true
            return
        }
        guard isDigit(i) else { throw .syntax }
        if b[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while isDigit(i) { i += 1 }
        }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            guard isDigit(i) else { throw .syntax }
            while isDigit(i) { i += 1 }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard isDigit(i) else { throw .syntax }
            while isDigit(i) { i += 1 }
        }
    }

    mutating func hex4() throws(Failure) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard i < b.count else { throw .syntax }
            let c = b[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw .syntax
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    mutating func string() throws(Failure) {
        guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw .syntax }
        i += 1
        while true {
            guard i < b.count else { throw .syntax }
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                return
            }
            if c < 0x20 { throw .syntax }
            if c == UInt8(ascii: "\\") {
                i += 1
                guard i < b.count else { throw .syntax }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    continue
                case UInt8(ascii: "u"):
                    let u = try hex4()
                    if u >= 0xDC00 && u < 0xE000 { throw .syntax }  // a lone low surrogate
                    if u >= 0xD800 && u < 0xDC00 {
                        try lit("\\u")
                        let low = try hex4()
                        guard low >= 0xDC00 && low < 0xE000 else { throw .syntax }
                    }
                    continue
                default: throw .syntax
                }
            }
            if c < 0x80 {
                i += 1
                continue
            }
            // One UTF-8 sequence, shortest form, no surrogates, at most U+10FFFF.
            let n: Int
            var scalar: UInt32
            switch c {
            case 0xC2...0xDF:
                n = 1
                scalar = UInt32(c & 0x1F)
            case 0xE0...0xEF:
                n = 2
                scalar = UInt32(c & 0x0F)
            case 0xF0...0xF4:
                n = 3
                scalar = UInt32(c & 0x07)
            default: throw .syntax
            }
            guard i + n < b.count else { throw .syntax }
            for k in 1...n {
                let cc = b[i + k]
                guard cc & 0xC0 == 0x80 else { throw .syntax }
                scalar = scalar << 6 | UInt32(cc & 0x3F)
            }
            let minimum: UInt32 = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000
            guard scalar >= minimum, scalar <= 0x10FFFF, !(scalar >= 0xD800 && scalar < 0xE000) else { throw .syntax }
            i += n + 1
        }
    }
}

/// The rules every decoded point obeys (IngestDecoder's contract).
public enum PointRules {
    /// `forced`/`recording`: the decoder options used. A forced source and a recording session
    /// (the server's own, or a WAL record's) are applied as they are; any other must be valid.
    public static func check(_ p: Point, forced: String?, recording: String?) {
        require(!p.metric.isEmpty && p.metric.utf8.count <= Limits.maxMetricBytes, "metric length \(p.metric.utf8.count)")
        let source = p.sourceID ?? ""
        if let forced {
            require(source == forced, "forced source not applied")
        } else {
            require(Identifier.isValidSourceID(source), "source id \(source.debugDescription) is invalid")
        }
        if let s = p.sessionID {
            if s != recording {
                require(!s.isEmpty && s.utf8.count <= Limits.maxSessionIDBytes, "session id length \(s.utf8.count)")
            }
        } else {
            require(recording == nil, "recording session not applied to a point without one")
        }
        if let t = p.timestamp { require(Timestamp.isValid(t), "timestamp \(t) outside Timestamp.validMicros") }
        require(p.tags.count <= Limits.maxTags, "\(p.tags.count) tags")
        for (k, t) in p.tags.enumerated() {
            require(
                !t.key.isEmpty && t.key.utf8.count <= Limits.maxTagBytes && t.value.utf8.count <= Limits.maxTagBytes,
                "tag sizes")
            require(t.key != "session_id", "session_id left among the tags")
            if k > 0 { require(p.tags[k - 1].key < t.key, "tags not sorted and unique") }
        }
        switch p.value {
        case .number(let d): require(d.isFinite, "non-finite number accepted")
        case .string(let s): require(s.utf8.count <= Limits.maxStringValueBytes, "string value too long")
        case .bool: break
        case .object(let t), .array(let t):
            require(t.text.utf8.count <= Limits.maxStructuredValueBytes, "structured value too long")
            require(t.text.utf8.first == (p.value.kind == .object ? UInt8(ascii: "{") : UInt8(ascii: "[")), "kind mismatch")
            switch StrictJSON.check(t.text) {
            case nil: break
            case .nonFinite: require(false, "stored value holds NaN/Infinity: \(t.text.prefix(200).debugDescription)")
            case .syntax: require(false, "stored value is not JSON: \(t.text.prefix(200).debugDescription)")
            }
        }
    }
}

/// `back` holds exactly `points`, numbers bit for bit (−0.0 stays −0.0).
public func requireSamePoints(_ back: [Point], _ points: [Point], _ what: String) {
    require(back.count == points.count, "\(what): \(back.count) of \(points.count) points")
    for (a, b) in zip(points, back) {
        var same = a == b
        if case .number(let x) = a.value, case .number(let y) = b.value { same = same && x.bitPattern == y.bitPattern }
        require(same, "\(what) changed a point: \(a) became \(b)")
    }
}

/// The write-ahead log's round trip for points a decoder produced (line protocol, remote
/// write): the version-2 record (`WALPoints`) decodes to exactly the same points, bit for
/// bit, as a replay would; and what `IngestEncoder.body` writes (the JSON a set-aside
/// batch is kept as) is strict JSON that `IngestDecoder` reads back into the same points.
public func checkWALRoundTrip(_ points: [Point]) {
    guard !points.isEmpty else { return }
    let receivedAt: Int64 = 1_700_000_000_000_000
    let record = WALPointsRecord(orgID: 1, receivedAt: receivedAt).encode(points)
    record.withUnsafeBytes { raw in
        guard let (r, b) = try? WALPointsRecord.decode(raw), let back = try? WALPoints.decode(b, receivedAt: r.receivedAt) else {
            require(false, "the WAL record of accepted points is refused")
            return
        }
        requireSamePoints(back, points, "a replay of the WAL record")
    }
    let body = IngestEncoder.body(points)
    require(
        StrictJSON.check(body) == nil,
        "IngestEncoder wrote no strict JSON: \(String(decoding: body.prefix(300), as: UTF8.self).debugDescription)")
    let again: IngestBatch
    do {
        again = try body.withUnsafeBytes { try IngestDecoder.decode($0) }
    } catch {
        require(false, "IngestDecoder refuses what IngestEncoder wrote (\(error))")
        return
    }
    require(again.points == points, "a replay would change the points")
}
