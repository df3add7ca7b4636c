/// A small, allocation-friendly JSON text builder used for every JSON the project emits
/// on a hot path (query responses, WAL records, SDK frames).
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var string: String { String(decoding: bytes, as: UTF8.self) }

    public mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    public mutating func rawText(_ s: String) {
        var s = s
        s.withUTF8 { bytes.append(contentsOf: $0) }
    }

    public mutating func rawBytes(_ b: some Sequence<UInt8>) { bytes.append(contentsOf: b) }

    /// Writes a JSON string literal with the escapes RFC 8259 requires.
    public mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            bytes.append(UInt8(ascii: "\""))
            var start = 0
            for i in 0..<utf8.count {
                let c = utf8[i]
                if c >= 0x20 && c != UInt8(ascii: "\"") && c != UInt8(ascii: "\\") { continue }
                if start < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<i])) }
                start = i + 1
                switch c {
                case UInt8(ascii: "\""): raw("\\\"")
                case UInt8(ascii: "\\"): raw("\\\\")
                case 0x0A: raw("\\n")
                case 0x0D: raw("\\r")
                case 0x09: raw("\\t")
                case 0x08: raw("\\b")
                case 0x0C: raw("\\f")
                default:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    raw("\\u00")
                    bytes.append(hex[Int(c >> 4)])
                    bytes.append(hex[Int(c & 0xF)])
                }
            }
            if start < utf8.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...])) }
            bytes.append(UInt8(ascii: "\""))
        }
    }

    /// Writes a finite number in its shortest round-trip form; integers without a fraction.
    public mutating func number(_ d: Double) {
        guard d.isFinite else {
            raw("null")
            return
        }
        if d == d.rounded(.towardZero) && abs(d) < 1e15 {
            int(Int64(d))
            if d == 0 && d.sign == .minus {
                bytes.removeLast()
                raw("-0")
            }
            return
        }
        if decimal(d) { return }
        rawText(d.description)
    }

    /// Writes `d` as `description` would, without making a String, when it is a short
    /// decimal in fixed notation (1e-4 ≤ |d| < 1e15, at most 15 digits after the point):
    /// the fewest digits after the point that give `d` back (its ``DecimalForm``, the
    /// integer below 2^51, where it is the only one that does), which is the
    /// shortest form `description` prints. False, writing nothing, otherwise.
    mutating func decimal(_ d: Double) -> Bool {
        let a = abs(d)
        guard a >= 1e-4 && a < 1e15 else { return false }
        for e in 1...DecimalForm.maxExponent {
            guard let integer = DecimalForm.mantissa(a, e) else { continue }
            guard integer < 2_251_799_813_685_248 else { return false }  // 2^51
            var m = UInt64(integer)
            if d < 0 { bytes.append(UInt8(ascii: "-")) }
            // The digits from the last, at least e + 1 of them (0.05 is "0.05"): at most 16
            // below 2^51, the point, and the zeros 15 digits after it need.
            var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)
            withUnsafeMutableBytes(of: &tmp) { buf in
                var i = buf.count
                var n = 0
                while m > 0 || n <= e {
                    if n == e {
                        i -= 1
                        buf[i] = UInt8(ascii: ".")
                    }
                    i -= 1
                    buf[i] = UInt8(ascii: "0") + UInt8(m % 10)
                    m /= 10
                    n += 1
                }
                bytes.append(contentsOf: UnsafeRawBufferPointer(start: buf.baseAddress! + i, count: buf.count - i))
            }
            return true
        }
        return false
    }

    public mutating func int(_ v: Int64) {
        if v == 0 {
            bytes.append(UInt8(ascii: "0"))
            return
        }
        var n = v.magnitude
        var tmp:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var len = 0
        withUnsafeMutableBytes(of: &tmp) { buf in
            while n > 0 {
                buf[19 - len] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
                len += 1
            }
            if v < 0 { bytes.append(UInt8(ascii: "-")) }
            bytes.append(contentsOf: buf[(20 - len)...])
        }
    }

    public mutating func int(_ v: Int) { int(Int64(v)) }

    public mutating func bool(_ b: Bool) {
        if b { raw("true") } else { raw("false") }
    }

    public mutating func write(_ value: PlexusValue) {
        switch value {
        case .number(let d): number(d)
        case .string(let s): string(s)
        case .bool(let b): bool(b)
        case .object(let t), .array(let t): rawText(t.text)
        }
    }

    /// Items separated by commas, each written by `each` (brackets are the caller's).
    @inlinable
    public mutating func list<S: Sequence>(_ items: S, _ each: (inout JSONWriter, S.Element) -> Void) {
        var first = true
        for x in items {
            if !first { raw(",") }
            first = false
            each(&self, x)
        }
    }

    /// `,"key":"value"` when `value` is not nil: an optional member after the first.
    public mutating func field(_ key: StaticString, _ value: String?) {
        guard let value else { return }
        member(key)
        string(value)
    }

    /// `,"key":value` when `value` is not nil: an optional member after the first.
    public mutating func field(_ key: StaticString, _ value: Int64?) {
        guard let value else { return }
        member(key)
        int(value)
    }

    private mutating func member(_ key: StaticString) {
        raw(",\"")
        raw(key)
        raw("\":")
    }

    /// `["a","b"]`
    @inlinable
    public mutating func strings(_ items: some Sequence<String>) {
        raw("[")
        list(items) { w, s in w.string(s) }
        raw("]")
    }

    /// `,"points":[a,b,…]}`: closes a batch object whose members so far were written,
    /// with already-encoded point objects (the SDK's HTTP bodies and telemetry frames).
    public mutating func pointsAndClose(_ points: [[UInt8]]) {
        raw(",\"points\":[")
        list(points) { w, p in w.rawBytes(p) }
        raw("]}")
    }

    /// Milliseconds from microseconds, with sub-millisecond precision kept as a fraction
    /// (`1699900000123.456`); whole milliseconds as an integer.
    public mutating func millis(_ us: Int64) {
        if us % 1_000 == 0 { int(us / 1_000) } else { number(Double(us) / 1_000) }
    }

    /// A timestamp in a form ``IngestDecoder`` reads back to the same microsecond (for
    /// times that ``Timestamp/representableOnTheWire(_:)`` leaves unchanged): whole
    /// milliseconds from 2001 on, whole seconds, or seconds with six decimals.
    public mutating func exactTimestamp(_ us: Int64) {
        if us % 1_000 == 0 && us >= 1_000_000_000_000_000 {
            int(us / 1_000)
        } else if us % 1_000_000 == 0 {
            int(us / 1_000_000)
        } else {
            int(us / 1_000_000)
            raw(".")
            var fraction = us % 1_000_000
            var digits: [UInt8] = Array(repeating: UInt8(ascii: "0"), count: 6)
            for k in (0..<6).reversed() {
                digits[k] = UInt8(ascii: "0") + UInt8(fraction % 10)
                fraction /= 10
            }
            bytes.append(contentsOf: digits)
        }
    }

    /// A point as devices send it and dashboards receive it:
    /// `{"metric","value","timestamp" (ms),"tags"?,"session_id"?}`.
    public mutating func point(_ p: Point, timestamp us: Int64) {
        raw("{\"metric\":")
        string(p.metric)
        raw(",\"value\":")
        write(p.value)
        raw(",\"timestamp\":")
        millis(us)
        if !p.tags.isEmpty {
            raw(",\"tags\":")
            rawText(Tag.canonicalJSON(p.tags))
        }
        if let s = p.sessionID {
            raw(",\"session_id\":")
            string(s)
        }
        raw("}")
    }

}
