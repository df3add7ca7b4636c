/// Rice codes for the zigzagged mantissa deltas of a decimal chunk (values mode 3, see
/// ``ChunkCodec``): sensor noise makes deltas that a byte-aligned varint spends 8 bits on
/// where about 6.7 carry information; a Rice code with the chunk's best `k` spends about 6.8.
///
/// ```
/// code(z) := q one-bits, a zero-bit, then z's low k bits      q = z >> k, when q < 32
///          | 32 one-bits, then z in 64 bits                    otherwise (an outlier)
/// ```
/// Bits are written most significant first; the last byte is padded with zeros.
enum Rice {
    static let maxK = 30
    static let escape = 32

    /// Bits `z` takes with parameter `k`.
    @inline(__always)
    static func cost(_ z: UInt64, k: Int) -> Int {
        let q = z >> UInt64(k)
        return q < UInt64(escape) ? Int(q) + 1 + k : escape + 64
    }

    /// The `k` that codes `zs` in the fewest bits (tried around the one the mean suggests),
    /// and that many bits.
    static func best(_ zs: [UInt64]) -> (k: Int, bits: Int) {
        guard !zs.isEmpty else { return (0, 0) }
        // The mean of all but outliers (a jump escapes at a fixed cost whatever k is).
        var total: Double = 0
        var n = 0
        for z in zs where z < 1 << 24 {
            total += Double(z)
            n += 1
        }
        let mean = n == 0 ? 0 : total / Double(n)
        // About log2(mean · ln 2) for geometric-like values.
        let guess = mean < 2 ? 0 : Swift.min(maxK, Int((mean * 0.69).exponent))
        var best = (k: 0, bits: Int.max)
        for k in Swift.max(0, guess - 1)...Swift.min(maxK, guess + 1) {
            var bits = 0
            for z in zs { bits += cost(z, k: k) }
            if bits < best.bits { best = (k, bits) }
        }
        return best
    }

    struct Writer {
        var out: [UInt8]
        var acc: UInt64 = 0
        var pending = 0

        /// Appends the low `bits` (at most 32) of `value`.
        @inline(__always)
        mutating func write(_ value: UInt64, bits: Int) {
            guard bits > 0 else { return }
            acc = acc << UInt64(bits) | (value & ((1 << UInt64(bits)) - 1))
            pending += bits
            while pending >= 8 {
                pending -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt64(pending)))
            }
        }

        mutating func put(_ z: UInt64, k: Int) {
            let q = z >> UInt64(k)
            if q < UInt64(escape) {
                write(((1 << q) - 1) << 1, bits: Int(q) + 1)
                write(z, bits: k)
            } else {
                write(0xFFFF_FFFF, bits: 32)
                write(z >> 32, bits: 32)
                write(z, bits: 32)
            }
        }

        mutating func finish() -> [UInt8] {
            if pending > 0 { out.append(UInt8(truncatingIfNeeded: acc << UInt64(8 - pending))) }
            pending = 0
            return out
        }
    }

    struct Reader {
        let data: UnsafeRawBufferPointer
        var pos = 0
        /// Bits not yet read, most significant first; `count` of them are real.
        var acc: UInt64 = 0
        var count = 0

        init(_ data: UnsafeRawBufferPointer) { self.data = data }

        @inline(__always)
        mutating func refill() {
            while count <= 56 && pos < data.count {
                acc |= UInt64(data[pos]) << UInt64(56 - count)
                count += 8
                pos += 1
            }
        }

        /// The next `bits` (at most 32).
        @inline(__always)
        mutating func read(_ bits: Int) throws -> UInt64 {
            guard bits > 0 else { return 0 }
            refill()
            guard count >= bits else { throw ChunkCodec.DecodeError() }
            let v = acc >> UInt64(64 - bits)
            acc <<= UInt64(bits)
            count -= bits
            return v
        }

        mutating func get(k: Int) throws -> UInt64 {
            refill()
            // Bits past `count` are zeros, so the run of ones stops there at the latest.
            let ones = Swift.min((~acc).leadingZeroBitCount, escape)
            if ones == escape {
                _ = try read(32)
                return try read(32) << 32 | read(32)
            }
            guard count > ones else { throw ChunkCodec.DecodeError() }
            acc <<= UInt64(ones + 1)
            count -= ones + 1
            return UInt64(ones) << UInt64(k) | (try read(k))
        }
    }
}
