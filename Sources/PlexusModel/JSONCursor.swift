/// A forward-only JSON reader over bytes: the ingest hot path parses straight into
/// points with it instead of building a generic tree (Foundation's parsers manage
/// ~0.25 M points/s on one core; this does several times that).
///
/// It accepts RFC 8259 JSON plus the tokens `NaN`, `Infinity` and `-Infinity` that
/// Python's `json` module writes, so such values get a precise "must be finite" error
/// rather than "invalid JSON". Text that is kept and written back verbatim is read with
/// ``readRawValue(strict:)`` and `strict: true`, which refuses them anywhere inside: what
/// the server writes must parse as JSON.
public struct JSONCursor {
    public struct SyntaxError: Error, Sendable {
        public let offset: Int
    }

    let base: UnsafePointer<UInt8>
    let count: Int
    var i: Int

    public init(_ buffer: UnsafeRawBufferPointer) {
        // An empty buffer has no base address; point at a static byte instead.
        if let b = buffer.baseAddress {
            base = b.assumingMemoryBound(to: UInt8.self)
        } else {
            base = JSONCursor.emptyByte
        }
        count = buffer.count
        i = 0
    }

    nonisolated(unsafe) private static let emptyByte: UnsafePointer<UInt8> = {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        p.initialize(to: 0)
        return UnsafePointer(p)
    }()

    public var offset: Int { i }
    public var atEnd: Bool { i >= count }

    public mutating func skipWhitespace() {
        while i < count {
            let c = base[i]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 } else { return }
        }
    }

    /// The next non-whitespace byte, or 0 at the end.

    public mutating func peek() -> UInt8 {
        skipWhitespace()
        return i < count ? base[i] : 0
    }

    public mutating func consume(_ c: UInt8) -> Bool {
        if peek() == c {
            i += 1
            return true
        }
        return false
    }

    public mutating func expect(_ c: UInt8) throws(SyntaxError) {
        guard consume(c) else { throw SyntaxError(offset: i) }
    }

    /// Reads a whole object: `each` gets every key, with the cursor at its value, and must
    /// read or skip that value.
    public mutating func readObject(_ each: (String, inout JSONCursor) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        if consume(UInt8(ascii: "}")) { return }
        repeat {
            let key = try readString()
            try expect(UInt8(ascii: ":"))
            try each(key, &self)
        } while try !nextOrEnd(UInt8(ascii: "}"))
    }

    /// Reads `,` or the closing byte of a container; returns true when the container ended.

    public mutating func nextOrEnd(_ close: UInt8) throws(SyntaxError) -> Bool {
        let c = peek()
        if c == UInt8(ascii: ",") {
            i += 1
            return false
        }
        if c == close {
            i += 1
            return true
        }
        throw SyntaxError(offset: i)
    }

    public enum ValueKind { case object, array, string, number, trueLiteral, falseLiteral, null, invalid }

    public mutating func peekKind() -> ValueKind {
        switch peek() {
        case UInt8(ascii: "{"): .object
        case UInt8(ascii: "["): .array
        case UInt8(ascii: "\""): .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "N"), UInt8(ascii: "I"): .number
        case UInt8(ascii: "t"): .trueLiteral
        case UInt8(ascii: "f"): .falseLiteral
        case UInt8(ascii: "n"): .null
        default: .invalid
        }
    }

    mutating func literal(_ s: StaticString) throws(SyntaxError) {
        let n = s.utf8CodeUnitCount
        guard i + n <= count else { throw SyntaxError(offset: i) }
        let p = s.utf8Start
        for k in 0..<n where base[i + k] != p[k] { throw SyntaxError(offset: i) }
        i += n
    }

    public mutating func readBool() throws(SyntaxError) -> Bool {
        if peek() == UInt8(ascii: "t") {
            try literal("true")
            return true
        }
        try literal("false")
        return false
    }

    public mutating func readNull() throws(SyntaxError) {
        skipWhitespace()
        try literal("null")
    }

    /// Reads a string and returns its bytes as a `String` (escapes decoded, UTF-8 validated).
    public mutating func readString() throws(SyntaxError) -> String {
        let (start, end, escaped) = try scanString()
        return try string(start, end, escaped: escaped)
    }

    /// The string whose content ``scanString()`` found at `start..<end`.
    func string(_ start: Int, _ end: Int, escaped: Bool) throws(SyntaxError) -> String {
        if !escaped {
            guard let s = String(utf8: UnsafeRawBufferPointer(start: base + start, count: end - start))
            else { throw SyntaxError(offset: start) }
            return s
        }
        return try decodeEscaped(start, end)
    }

    /// Scans the string; returns (start, end, hasEscapes) of its content.
    mutating func scanString() throws(SyntaxError) -> (Int, Int, Bool) {
        guard peek() == UInt8(ascii: "\"") else { throw SyntaxError(offset: i) }
        i += 1
        let start = i
        var escaped = false
        while i < count {
            // Eight bytes at a time while none of them is a quote, a backslash or a control
            // character (a byte below 0x20); the loop below looks at the one that is.
            while i + 8 <= count {
                let w = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
                let special = Self.specialBytes(w)
                if special != 0 {
                    // The lowest flagged byte is a special one (a borrow can only flag bytes
                    // above a real one).
                    i += special.trailingZeroBitCount >> 3
                    break
                }
                i += 8
            }
            if i >= count { break }
            let c = base[i]
            if c == UInt8(ascii: "\"") {
                let end = i
                i += 1
                return (start, end, escaped)
            }
            if c == UInt8(ascii: "\\") {
                escaped = true
                i += 2
                continue
            }
            if c < 0x20 { throw SyntaxError(offset: i) }
            i += 1
        }
        throw SyntaxError(offset: i)
    }

    /// The high bit of each byte of `w` (first byte lowest) that is `"`, `\\` or below 0x20,
    /// and possibly of bytes above such a byte; zero when there is none. Bytes from 0x80 up
    /// are never flagged by themselves.
    @inline(__always)
    static func specialBytes(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        let quote = w ^ (ones &* 0x22)
        let backslash = w ^ (ones &* 0x5C)
        let zeroQuote = (quote &- ones) & ~quote
        let zeroBackslash = (backslash &- ones) & ~backslash
        let control = (w &- ones &* 0x20) & ~w
        return (zeroQuote | zeroBackslash | control) & high
    }

    private func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(c - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    private func hex4(_ at: Int, _ end: Int) throws(SyntaxError) -> UInt32 {
        guard at + 4 <= end else { throw SyntaxError(offset: at) }
        var v: UInt32 = 0
        for k in 0..<4 {
            guard let h = hexValue(base[at + k]) else { throw SyntaxError(offset: at + k) }
            v = v << 4 | h
        }
        return v
    }

    private func decodeEscaped(_ start: Int, _ end: Int) throws(SyntaxError) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(end - start)
        var j = start
        while j < end {
            let c = base[j]
            if c != UInt8(ascii: "\\") {
                out.append(c)
                j += 1
                continue
            }
            guard j + 1 < end else { throw SyntaxError(offset: j) }
            let e = base[j + 1]
            j += 2
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(j, end)
                j += 4
                if scalar >= 0xD800 && scalar < 0xDC00 {
                    guard j + 6 <= end, base[j] == UInt8(ascii: "\\"), base[j + 1] == UInt8(ascii: "u") else {
                        throw SyntaxError(offset: j)
                    }
                    let low = try hex4(j + 2, end)
                    guard low >= 0xDC00 && low < 0xE000 else { throw SyntaxError(offset: j) }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    j += 6
                }
                guard let u = Unicode.Scalar(scalar) else { throw SyntaxError(offset: j) }
                out.append(contentsOf: UTF8.encode(u)!)
            default:
                throw SyntaxError(offset: j)
            }
        }
        guard let s = out.withUnsafeBytes({ String(utf8: $0) }) else { throw SyntaxError(offset: start) }
        return s
    }

    static let powersOf10: [Double] = (0...22).map { e in
        var v = 1.0
        for _ in 0..<e { v *= 10 }
        return v
    }

    /// Reads a number. `NaN` and `±Infinity` come back as such for the caller to refuse.
    public mutating func readNumber() throws(SyntaxError) -> Double {
        skipWhitespace()
        let start = i
        var negative = false
        if i < count && base[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        guard i < count else { throw SyntaxError(offset: i) }
        if base[i] == UInt8(ascii: "I") {
            try literal("Infinity")
            return negative ? -.infinity : .infinity
        }
        if base[i] == UInt8(ascii: "N") && !negative {
            try literal("NaN")
            return .nan
        }
        var mantissa: UInt64 = 0
        var digits = 0
        var exponent = 0
        let intStart = i
        while i < count, base[i] &- UInt8(ascii: "0") < 10 {
            if digits < 19 {
                mantissa = mantissa &* 10 &+ UInt64(base[i] &- UInt8(ascii: "0"))
                if mantissa != 0 { digits += 1 }
            } else {
                exponent += 1
                digits += 1
            }
            i += 1
        }
        let intLen = i - intStart
        guard intLen > 0, !(intLen > 1 && base[intStart] == UInt8(ascii: "0")) else { throw SyntaxError(offset: intStart) }
        if i < count && base[i] == UInt8(ascii: ".") {
            i += 1
            let fracStart = i
            while i < count, base[i] &- UInt8(ascii: "0") < 10 {
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(base[i] &- UInt8(ascii: "0"))
                    if mantissa != 0 { digits += 1 }
                    exponent -= 1
                } else {
                    digits += 1
                }
                i += 1
            }
            guard i > fracStart else { throw SyntaxError(offset: i) }
        }
        if i < count && (base[i] | 0x20) == UInt8(ascii: "e") {
            i += 1
            var expNegative = false
            if i < count && (base[i] == UInt8(ascii: "+") || base[i] == UInt8(ascii: "-")) {
                expNegative = base[i] == UInt8(ascii: "-")
                i += 1
            }
            let expStart = i
            var e = 0
            while i < count, base[i] &- UInt8(ascii: "0") < 10 {
                if e < 100_000 { e = e * 10 + Int(base[i] &- UInt8(ascii: "0")) }
                i += 1
            }
            guard i > expStart else { throw SyntaxError(offset: i) }
            exponent += expNegative ? -e : e
        }
        // Clinger's fast path: exact when the mantissa fits in 53 bits and 10^|e| is exact.
        if digits <= 19 && mantissa <= (1 << 53) && exponent >= -22 && exponent <= 22 {
            var v = Double(mantissa)
            if exponent < 0 { v /= Self.powersOf10[-exponent] } else { v *= Self.powersOf10[exponent] }
            return negative ? -v : v
        }
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: i - start), as: UTF8.self)
        guard let v = Double(text) else { throw SyntaxError(offset: start) }
        return v
    }

    /// Skips one value of any type, validating it. `strict` refuses the `NaN`/`Infinity`
    /// tokens anywhere inside (they are not JSON).
    public mutating func skipValue(depth: Int = 0, strict: Bool = false) throws(SyntaxError) {
        guard depth < 64 else { throw SyntaxError(offset: i) }
        switch peekKind() {
        case .object:
            i += 1
            if consume(UInt8(ascii: "}")) { return }
            repeat {
                try skipString()
                try expect(UInt8(ascii: ":"))
                try skipValue(depth: depth + 1, strict: strict)
            } while try !nextOrEnd(UInt8(ascii: "}"))
        case .array:
            i += 1
            if consume(UInt8(ascii: "]")) { return }
            repeat {
                try skipValue(depth: depth + 1, strict: strict)
            } while try !nextOrEnd(UInt8(ascii: "]"))
        case .string:
            try skipString()
        case .number:
            let start = i
            let d = try readNumber()
            guard !strict || d.isFinite else { throw SyntaxError(offset: start) }
        case .trueLiteral: try literal("true")
        case .falseLiteral: try literal("false")
        case .null: try literal("null")
        case .invalid: throw SyntaxError(offset: i)
        }
    }

    /// Skips a string, validating it like ``readString()`` does (escapes, UTF-8): object
    /// keys inside skipped values must be as valid as string values, since a skipped object
    /// can be kept as raw text.
    mutating func skipString() throws(SyntaxError) {
        let (s, e, escaped) = try scanString()
        if escaped {
            _ = try decodeEscaped(s, e)
        } else if String(utf8: UnsafeRawBufferPointer(start: base + s, count: e - s)) == nil {
            throw SyntaxError(offset: s)
        }
    }

    /// Skips one value and returns its exact text. With `strict` (for text that is kept
    /// and written back verbatim) the text is RFC 8259 JSON: no `NaN`/`Infinity` inside.
    public mutating func readRawValue(strict: Bool = false) throws(SyntaxError) -> String {
        let start = (skipWhitespace(), i).1
        try skipValue(strict: strict)
        return String(decoding: UnsafeBufferPointer(start: base + start, count: i - start), as: UTF8.self)
    }

    /// True when only whitespace remains.
    public mutating func isAtEndIgnoringWhitespace() -> Bool {
        skipWhitespace()
        return i >= count
    }
}
