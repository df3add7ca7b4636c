/// Unsigned LEB128 varints: seven bits a byte, low bits first, the high bit set on every
/// byte but the last (protocol buffers, snappy's length header).
package enum UVarint {
    package static func append(_ v: UInt64, to out: inout [UInt8]) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    /// The varint at `i`, moving `i` past it; nil when it is cut off or runs past 64 bits.
    package static func read(_ b: UnsafeRawBufferPointer, at i: inout Int) -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while i < b.count, shift < 64 {
            let byte = b[i]
            i += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        return nil
    }
}

/// Zigzag: signed integers as unsigned ones with small magnitudes small (0, -1, 1, -2 …
/// become 0, 1, 2, 3 …), for varints and Rice codes of differences.
package enum ZigZag {
    @inlinable
    package static func encode(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }

    @inlinable
    package static func decode(_ u: UInt64) -> Int64 { Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1))) }
}
