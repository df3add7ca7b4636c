public import PlexusModel

/// The encoding of a chunk: up to a few thousand points of one series in one BLOB (see
/// docs/storage.md, *Chunks*). No I/O: the embedded store writes chunks into SQLite, and
/// any other engine is to share this module.
///
/// Numbers are written in version 2. Version 1 chunks (every chunk written before) stay
/// readable; chunks of other values are still version 1.
///
/// ```
/// chunk v2   := 2:u8 0:u8 count:uvarint timestamps values
/// timestamps := first:zigzag-varint, then (count ≥ 2)
///               0:u8 delta:zigzag-varint                        every delta the same
///             | 1:u8 delta1:zigzag-varint dod*:zigzag-varint     delta-of-delta       (µs)
/// values     := 0:u8 exponent:u8 first:zigzag-varint delta*:zigzag-varint
///                   each value is mantissa / 10^exponent, bit for bit (decimal numbers)
///             | 1:u8 xor-values                                    any other numbers
///             | 2:u8 exponent:u8 count:uvarint (gap:uvarint bits:u64le)* first delta*
///                   decimal numbers but for a few (−0.0, 0.1 + 0.2): those are at the
///                   listed positions (each gap counts the positions skipped since the
///                   last one), as raw bits, their mantissa slot repeating the last
///                   mantissa (a zero delta); at most one value in 16
///             | 3:u8 exponent:u8 count:uvarint (gap:uvarint bits:u64le)* k:u8 rice*
///                   as 2 (count may be 0), each mantissa delta (the first from 0)
///                   zigzagged and Rice-coded with parameter k (``Rice``), when that is
///                   smaller than the varints
///
/// chunk v1   := 1:u8 kind:u8 count:uvarint first:zigzag-varint delta1 dod*   values-v1
/// values-v1 (kind 0, numbers) := xor-values
/// values-v1 (kind 1, other)   := per value: type:u8 (PlexusValue.Kind) len:uvarint bytes
/// xor-values := first:8 bytes LE, then per value a header byte
///           0x00 = same bits as previous, else 0x80 | lead<<3 | trail followed by the
///           8-lead-trail middle bytes of (bits XOR previous bits)
/// ```
public enum ChunkCodec {
    enum Kind: UInt8 {
        case numeric = 0
        case other = 1
    }

    enum Times: UInt8 {
        case constant = 0
        case deltaOfDelta = 1
    }

    enum Values: UInt8 {
        case decimal = 0
        case xor = 1
        case decimalWithExceptions = 2
        case decimalRice = 3
    }

    public struct DecodeError: Error {}

    // MARK: Encoding

    public static func encodeNumeric(timestamps: [Int64], values: [Double]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16 + timestamps.count * 2)
        out.append(2)
        out.append(Kind.numeric.rawValue)
        putUVarint(&out, UInt64(timestamps.count))
        encodeTimestamps(&out, timestamps)
        if let (exponent, mantissas, exceptions) = decimal(values) {
            var zigzags: [UInt64] = []
            zigzags.reserveCapacity(mantissas.count)
            var previous: Int64 = 0
            var varintBytes = 0
            for m in mantissas {
                let d = m &- previous
                let z = ZigZag.encode(d)
                zigzags.append(z)
                varintBytes += (64 - (z | 1).leadingZeroBitCount + 6) / 7
                previous = m
            }
            let rice = Rice.best(zigzags)
            let useRice = (rice.bits + 7) / 8 + 1 < varintBytes
            out.append(
                useRice ? Values.decimalRice.rawValue : exceptions.isEmpty ? Values.decimal.rawValue : Values.decimalWithExceptions.rawValue
            )
            out.append(UInt8(exponent))
            if !exceptions.isEmpty || useRice {
                putUVarint(&out, UInt64(exceptions.count))
                var next = 0
                for i in exceptions {
                    putUVarint(&out, UInt64(i - next))
                    withUnsafeBytes(of: values[i].bitPattern.littleEndian) { out.append(contentsOf: $0) }
                    next = i + 1
                }
            }
            if useRice {
                out.append(UInt8(rice.k))
                var w = Rice.Writer(out: out)
                for z in zigzags { w.put(z, k: rice.k) }
                out = w.finish()
            } else {
                for z in zigzags { putUVarint(&out, z) }
            }
        } else {
            out.append(Values.xor.rawValue)
            encodeXOR(&out, values)
        }
        return out
    }

    /// The smallest exponent `e` and the integers `m` with `Double(m) / 10^e` equal to every
    /// value bit for bit, if there is one up to ``DecimalForm/maxExponent``, but for the positions in
    /// `exceptions`: values with no such form at any exponent (−0.0, `0.1 + 0.2`), at most
    /// one in 16 (each costs 9 bytes or more), whose mantissa slot repeats the last one.
    /// Nil when there are more, or when a larger exponent pushes a mantissa past 2^53.
    static func decimal(_ values: [Double]) -> (Int, [Int64], exceptions: [Int])? {
        var e = 0
        var mantissas: [Int64] = []
        var exceptions: [Int] = []
        mantissas.reserveCapacity(values.count)
        for (i, v) in values.enumerated() {
            if let m = DecimalForm.mantissa(v, e) {
                mantissas.append(m)
                continue
            }
            // More digits than so far, or none at all: the exponent this value needs.
            var needed = e
            repeat { needed += 1 } while needed <= DecimalForm.maxExponent && DecimalForm.mantissa(v, needed) == nil
            guard needed <= DecimalForm.maxExponent else {
                exceptions.append(i)
                // Past one in 16, or (giving up early on numbers that are not decimals at
                // all, each of which costs 15 tries) more than 8 making a quarter so far.
                let n = exceptions.count
                guard n <= values.count / 16, n <= 8 || n * 4 <= i + 1 else { return nil }
                mantissas.append(mantissas.last ?? 0)
                continue
            }
            // Every value up to this one again at that exponent (the exponent only grows,
            // at most 15 times a chunk).
            e = needed
            mantissas.removeAll(keepingCapacity: true)
            var k = 0
            for (j, w) in values[...i].enumerated() {
                if k < exceptions.count && exceptions[k] == j {
                    mantissas.append(mantissas.last ?? 0)
                    k += 1
                    continue
                }
                guard let m = DecimalForm.mantissa(w, e) else { return nil }
                mantissas.append(m)
            }
        }
        return (e, mantissas, exceptions)
    }

    static func encodeXOR(_ out: inout [UInt8], _ values: [Double]) {
        var prev: UInt64 = 0
        for (i, v) in values.enumerated() {
            let bits = v.bitPattern
            if i == 0 {
                withUnsafeBytes(of: bits.littleEndian) { out.append(contentsOf: $0) }
            } else {
                let x = bits ^ prev
                if x == 0 {
                    out.append(0)
                } else {
                    let lead = min(x.leadingZeroBitCount / 8, 7)
                    let trail = min(x.trailingZeroBitCount / 8, 7)
                    out.append(0x80 | UInt8(lead << 3) | UInt8(trail))
                    let n = 8 - lead - trail
                    var middle = x >> (trail * 8)
                    for _ in 0..<n {
                        out.append(UInt8(truncatingIfNeeded: middle))
                        middle >>= 8
                    }
                }
            }
            prev = bits
        }
    }

    /// Timestamps as a first value and one delta when they are evenly spaced, else
    /// delta-of-delta.
    static func encodeTimestamps(_ out: inout [UInt8], _ ts: [Int64]) {
        guard let first = ts.first else { return }
        putVarint(&out, first)
        guard ts.count >= 2 else { return }
        let delta = ts[1] &- ts[0]
        if zip(ts, ts.dropFirst()).allSatisfy({ $1 &- $0 == delta }) {
            out.append(Times.constant.rawValue)
            putVarint(&out, delta)
            return
        }
        out.append(Times.deltaOfDelta.rawValue)
        putDeltaOfDelta(&out, ts)
    }

    /// Every timestamp after the first: the first delta, then each change of delta.
    static func putDeltaOfDelta(_ out: inout [UInt8], _ ts: [Int64]) {
        var prevDelta: Int64 = 0
        for i in 1..<ts.count {
            let d = ts[i] &- ts[i - 1]
            putVarint(&out, i == 1 ? d : d &- prevDelta)
            prevDelta = d
        }
    }

    /// Chunks of strings, booleans, objects and arrays (version 1).
    public static func encodeOther(timestamps: [Int64], values: [PlexusValue]) -> [UInt8] {
        var out: [UInt8] = []
        out.append(1)
        out.append(Kind.other.rawValue)
        putUVarint(&out, UInt64(timestamps.count))
        if let first = timestamps.first {
            putVarint(&out, first)
            if timestamps.count >= 2 { putDeltaOfDelta(&out, timestamps) }
        }
        for v in values {
            out.append(v.kind.rawValue)
            switch v {
            case .number(let d):
                putUVarint(&out, 8)
                withUnsafeBytes(of: d.bitPattern.littleEndian) { out.append(contentsOf: $0) }
            case .bool(let b):
                putUVarint(&out, 1)
                out.append(b ? 1 : 0)
            case .string(let s):
                putBytes(&out, s)
            case .object(let t), .array(let t):
                putBytes(&out, t.text)
            }
        }
        return out
    }

    private static func putBytes(_ out: inout [UInt8], _ s: String) {
        var s = s
        s.withUTF8 { b in
            putUVarint(&out, UInt64(b.count))
            out.append(contentsOf: b)
        }
    }

    // MARK: Decoding

    /// Decodes a chunk of either version, calling `body` for each point in order.
    public static func decode(_ data: UnsafeRawBufferPointer, _ body: (Int64, PlexusValue) throws -> Void) throws {
        var r = Reader(data)
        let version = try r.byte()
        guard version == 1 || version == 2 else { throw DecodeError() }
        let kind = try r.byte()
        guard let n = Int(exactly: try r.uvarint()), n <= 1 << 24 else { throw DecodeError() }
        // Every value takes at least a bit (a Rice code): a count past that is damage, not
        // a reason to allocate.
        guard n <= data.count * 8 else { throw DecodeError() }
        let ts = try decodeTimestamps(&r, count: n, version: version)
        switch (version, kind) {
        case (_, Kind.numeric.rawValue):
            let values = version == 1 ? Values.xor.rawValue : try r.byte()
            switch Values(rawValue: values) {
            case .decimal, .decimalWithExceptions, .decimalRice:
                let e = Int(try r.byte())
                guard e <= DecimalForm.maxExponent else { throw DecodeError() }
                let rice = values == Values.decimalRice.rawValue
                let exceptions =
                    values == Values.decimal.rawValue ? [] : try decodeExceptions(&r, count: n, noneAllowed: rice)
                var bits: Rice.Reader? = nil
                var riceK = 0
                if rice {
                    riceK = Int(try r.byte())
                    guard riceK <= Rice.maxK else { throw DecodeError() }
                    bits = Rice.Reader(UnsafeRawBufferPointer(rebasing: data[r.i...]))
                }
                var k = 0
                var m: Int64 = 0
                for i in 0..<n {
                    if bits != nil {
                        let z = try bits!.get(k: riceK)
                        m = m &+ ZigZag.decode(z)
                    } else {
                        m = m &+ (try r.varint())
                    }
                    if k < exceptions.count && exceptions[k].index == i {
                        try body(ts[i], .number(Double(bitPattern: exceptions[k].bits)))
                        k += 1
                    } else {
                        try body(ts[i], .number(Double(m) / DecimalForm.powersOfTen[e]))
                    }
                }
            case .xor:
                try decodeXOR(&r, ts, body)
            case nil:
                throw DecodeError()
            }
        case (1, Kind.other.rawValue):
            try decodeOther(&r, ts, body)
        default:
            throw DecodeError()
        }
    }

    /// The positions (increasing, below `n`) and raw bits of a decimal chunk's exceptions.
    static func decodeExceptions(_ r: inout Reader, count n: Int, noneAllowed: Bool = false) throws -> [(index: Int, bits: UInt64)] {
        guard let k = Int(exactly: try r.uvarint()), k >= (noneAllowed ? 0 : 1), k <= n else { throw DecodeError() }
        var out: [(index: Int, bits: UInt64)] = []
        out.reserveCapacity(k)
        var next = 0
        for _ in 0..<k {
            guard let gap = Int(exactly: try r.uvarint()), gap < n - next else { throw DecodeError() }
            let index = next + gap
            out.append((index, try r.uint64LE()))
            next = index + 1
        }
        return out
    }

    static func decodeTimestamps(_ r: inout Reader, count n: Int, version: UInt8) throws -> [Int64] {
        guard n > 0 else { return [] }
        let first = try r.varint()
        let mode = n >= 2 && version == 2 ? try r.byte() : Times.deltaOfDelta.rawValue
        if mode == Times.constant.rawValue {
            let delta = try r.varint()
            var t = first
            return (0..<n).map { i in
                if i > 0 { t = t &+ delta }
                return t
            }
        }
        guard mode == Times.deltaOfDelta.rawValue else { throw DecodeError() }
        var ts = [Int64](repeating: 0, count: n)
        ts[0] = first
        var delta: Int64 = 0
        for i in 1..<max(1, n) {
            let v = try r.varint()
            delta = i == 1 ? v : delta &+ v
            ts[i] = ts[i - 1] &+ delta
        }
        return ts
    }

    static func decodeXOR(_ r: inout Reader, _ ts: [Int64], _ body: (Int64, PlexusValue) throws -> Void) throws {
        var bits: UInt64 = 0
        for i in ts.indices {
            if i == 0 {
                bits = try r.uint64LE()
            } else {
                let h = try r.byte()
                if h != 0 {
                    guard h & 0x80 != 0 else { throw DecodeError() }
                    let lead = Int((h >> 3) & 7)
                    let trail = Int(h & 7)
                    let count = 8 - lead - trail
                    guard count > 0 else { throw DecodeError() }
                    var x: UInt64 = 0
                    for k in 0..<count { x |= UInt64(try r.byte()) << (8 * k) }
                    bits ^= x << (trail * 8)
                }
            }
            try body(ts[i], .number(Double(bitPattern: bits)))
        }
    }

    static func decodeOther(_ r: inout Reader, _ ts: [Int64], _ body: (Int64, PlexusValue) throws -> Void) throws {
        for t in ts {
            let type = try r.byte()
            guard let len = Int(exactly: try r.uvarint()) else { throw DecodeError() }
            let bytes = try r.bytes(len)
            let value: PlexusValue
            switch PlexusValue.Kind(rawValue: type) {
            case .number:
                guard len == 8 else { throw DecodeError() }
                var u: UInt64 = 0
                for k in 0..<8 { u |= UInt64(bytes[k]) << (8 * k) }
                value = .number(Double(bitPattern: u))
            case .bool: value = .bool(bytes.first == 1)
            case .string: value = .string(String(decoding: bytes, as: UTF8.self))
            case .object: value = .object(JSONText(unchecked: String(decoding: bytes, as: UTF8.self)))
            case .array: value = .array(JSONText(unchecked: String(decoding: bytes, as: UTF8.self)))
            case nil: throw DecodeError()
            }
            try body(t, value)
        }
    }

    // MARK: Varints

    static func putUVarint(_ out: inout [UInt8], _ v: UInt64) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func putVarint(_ out: inout [UInt8], _ v: Int64) {
        putUVarint(&out, ZigZag.encode(v))
    }

    struct Reader {
        let data: UnsafeRawBufferPointer
        var i = 0
        init(_ data: UnsafeRawBufferPointer) { self.data = data }
        var remaining: Int { data.count - i }
        mutating func byte() throws -> UInt8 {
            guard i < data.count else { throw DecodeError() }
            defer { i += 1 }
            return data[i]
        }
        mutating func uvarint() throws -> UInt64 {
            var shift: UInt64 = 0
            var v: UInt64 = 0
            while true {
                let b = try byte()
                v |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return v }
                shift += 7
                guard shift < 64 else { throw DecodeError() }
            }
        }
        mutating func varint() throws -> Int64 {
            let u = try uvarint()
            return ZigZag.decode(u)
        }
        mutating func uint64LE() throws -> UInt64 {
            var u: UInt64 = 0
            for k in 0..<8 { u |= UInt64(try byte()) << (8 * k) }
            return u
        }
        mutating func bytes(_ n: Int) throws -> UnsafeRawBufferPointer {
            guard n >= 0, n <= data.count - i else { throw DecodeError() }
            defer { i += n }
            return UnsafeRawBufferPointer(rebasing: data[i..<(i + n)])
        }
    }
}

extension PlexusValue {
    /// About how many bytes the value takes in a chunk (for cutting chunks by size).
    public var storedSize: Int {
        switch self {
        case .number, .bool: 9
        case .string(let s): s.utf8.count + 5
        case .object(let t), .array(let t): t.text.utf8.count + 5
        }
    }
}
