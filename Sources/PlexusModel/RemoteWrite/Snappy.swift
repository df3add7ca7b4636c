/// Snappy's block format, decoding only: what Prometheus remote write compresses its
/// bodies with (`Content-Encoding: snappy`, the block format, not the framing format).
///
/// ```text
/// block   := uncompressed_length:uvarint element*
/// element := tag:u8 …   tag & 3 = 0 literal: length (tag>>2)+1, or for tag>>2 = 60…63 a
///                                  1…4-byte little-endian length-1 after the tag; the bytes
///                       1 copy: length 4+((tag>>2)&7), offset ((tag>>5)<<8) | u8
///                       2 copy: length (tag>>2)+1, offset u16le
///                       3 copy: length (tag>>2)+1, offset u32le
/// ```
///
/// A copy reads from what was already written, `offset` bytes back (it may overlap
/// itself, repeating a pattern). Every length and offset is checked: bad input is an
/// error, never a read outside the buffers.
public enum Snappy {
    public struct CorruptInput: Error, Sendable, Equatable {
        public var reason: String
        /// The input is well formed but declares more than the allowed length (a 413, not a 400).
        public var tooLarge = false
    }

    /// Decompresses `input`; refuses (``CorruptInput``) a body that would decompress to
    /// more than `maxLength` bytes before allocating it.
    public static func decompress(_ input: UnsafeRawBufferPointer, maxLength: Int) throws(CorruptInput) -> [UInt8] {
        var i = 0
        guard let length = UVarint.read(input, at: &i) else { throw CorruptInput(reason: "bad length header") }
        guard length <= UInt64(maxLength) else {
            throw CorruptInput(reason: "decompresses to more than \(maxLength) bytes", tooLarge: true)
        }
        let total = Int(length)
        var out: [UInt8] = []
        out.reserveCapacity(total)
        while i < input.count {
            let tag = input[i]
            i += 1
            var len: Int
            var offset = 0
            switch tag & 3 {
            case 0:
                len = Int(tag >> 2) + 1
                if len > 60 {
                    let extra = len - 60
                    guard i + extra <= input.count else { throw CorruptInput(reason: "truncated literal length") }
                    len = 0
                    for k in 0..<extra { len |= Int(input[i + k]) << (8 * k) }
                    len += 1
                    i += extra
                }
                guard len <= input.count - i else { throw CorruptInput(reason: "truncated literal") }
                guard len <= total - out.count else { throw CorruptInput(reason: "longer than its header says") }
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[i..<(i + len)]))
                i += len
                continue
            case 1:
                guard i < input.count else { throw CorruptInput(reason: "truncated copy") }
                len = 4 + Int((tag >> 2) & 7)
                offset = Int(tag >> 5) << 8 | Int(input[i])
                i += 1
            case 2:
                guard i + 2 <= input.count else { throw CorruptInput(reason: "truncated copy") }
                len = Int(tag >> 2) + 1
                offset = Int(input[i]) | Int(input[i + 1]) << 8
                i += 2
            default:
                guard i + 4 <= input.count else { throw CorruptInput(reason: "truncated copy") }
                len = Int(tag >> 2) + 1
                offset = Int(input[i]) | Int(input[i + 1]) << 8 | Int(input[i + 2]) << 16 | Int(input[i + 3]) << 24
                i += 4
            }
            guard offset > 0, offset <= out.count else { throw CorruptInput(reason: "copy from before the start") }
            guard len <= total - out.count else { throw CorruptInput(reason: "longer than its header says") }
            let from = out.count - offset
            for k in 0..<len { out.append(out[from + k]) }
        }
        guard out.count == total else { throw CorruptInput(reason: "shorter than its header says") }
        return out
    }
}

extension Snappy {
    /// `bytes` as a valid snappy block of literals only (no compression): what tests,
    /// fuzzers and benchmarks send; ``decompress(_:maxLength:)`` reads it back.
    public static func literalBlock(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        UVarint.append(UInt64(bytes.count), to: &out)
        var i = 0
        while i < bytes.count {
            let len = min(65_536, bytes.count - i)
            if len <= 60 {
                out.append(UInt8(len - 1) << 2)
            } else {
                // Tag 61: the length - 1 in the next two bytes.
                out.append(61 << 2)
                out.append(UInt8((len - 1) & 0xFF))
                out.append(UInt8((len - 1) >> 8))
            }
            out.append(contentsOf: bytes[i..<(i + len)])
            i += len
        }
        return out
    }
}
