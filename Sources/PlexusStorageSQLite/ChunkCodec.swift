import PlexusModel

/// The on-disk encoding of a chunk: up to a few thousand points of one series in one
/// SQLite BLOB (see docs/storage.md).
///
/// ```
/// chunk   := version:u8 kind:u8 count:uvarint timestamps values
/// timestamps := first:zigzag-varint delta1:zigzag-varint dod*:zigzag-varint   (µs)
/// values (kind 0, numbers) := first:8 bytes LE, then per value a header byte
///           0x00 = same bits as previous, else 0x80 | lead<<3 | trail followed by the
///           8-lead-trail middle bytes of (bits XOR previous bits)
/// values (kind 1, other)   := per value: type:u8 (PlexusValue.Kind) len:uvarint bytes
/// ```
enum ChunkCodec {
    static let version: UInt8 = 1
    enum Kind: UInt8 {
        case numeric = 0
        case other = 1
    }

    struct DecodeError: Error {}

    static func encodeNumeric(timestamps: [Int64], values: [Double]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 + timestamps.count * 6)
        out.append(version)
        out.append(Kind.numeric.rawValue)
        putUVarint(&out, UInt64(timestamps.count))
        encodeTimestamps(&out, timestamps)
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
        return out
    }

    static func encodeOther(timestamps: [Int64], values: [PlexusValue]) -> [UInt8] {
        var out: [UInt8] = []
        out.append(version)
        out.append(Kind.other.rawValue)
        putUVarint(&out, UInt64(timestamps.count))
        encodeTimestamps(&out, timestamps)
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

    private static func encodeTimestamps(_ out: inout [UInt8], _ ts: [Int64]) {
        var prev: Int64 = 0
        var prevDelta: Int64 = 0
        for (i, t) in ts.enumerated() {
            switch i {
            case 0: putVarint(&out, t)
            case 1:
                prevDelta = t &- prev
                putVarint(&out, prevDelta)
            default:
                let d = t &- prev
                putVarint(&out, d &- prevDelta)
                prevDelta = d
            }
            prev = t
        }
    }

    /// Decodes a chunk, calling `body` for each point.
    static func decode(_ data: UnsafeRawBufferPointer, _ body: (Int64, PlexusValue) throws -> Void) throws {
        var r = Reader(data)
        guard try r.byte() == version else { throw DecodeError() }
        let kind = try r.byte()
        guard let n = Int(exactly: try r.uvarint()), n <= 1 << 24 else { throw DecodeError() }
        var ts = [Int64](repeating: 0, count: n)
        var prev: Int64 = 0
        var prevDelta: Int64 = 0
        for i in 0..<n {
            let v = try r.varint()
            switch i {
            case 0: ts[0] = v
            case 1:
                prevDelta = v
                ts[1] = prev &+ v
            default:
                prevDelta = prevDelta &+ v
                ts[i] = prev &+ prevDelta
            }
            prev = ts[i]
        }
        if kind == Kind.numeric.rawValue {
            var bits: UInt64 = 0
            for i in 0..<n {
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
        } else if kind == Kind.other.rawValue {
            for i in 0..<n {
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
                try body(ts[i], value)
            }
        } else {
            throw DecodeError()
        }
    }

    static func putUVarint(_ out: inout [UInt8], _ v: UInt64) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func putVarint(_ out: inout [UInt8], _ v: Int64) {
        putUVarint(&out, UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }

    struct Reader {
        let data: UnsafeRawBufferPointer
        var i = 0
        init(_ data: UnsafeRawBufferPointer) { self.data = data }
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
            return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
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
    var storedSize: Int {
        switch self {
        case .number, .bool: 9
        case .string(let s): s.utf8.count + 5
        case .object(let t), .array(let t): t.text.utf8.count + 5
        }
    }
}
