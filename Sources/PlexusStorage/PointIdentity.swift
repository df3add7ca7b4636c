public import PlexusModel

/// What makes two points the same point, for every engine.
///
/// A series holds each (time, value) pair at most once. Sending a point again (an SDK
/// resending the frame whose acknowledgement was lost, a Prometheus or Telegraf retry, a
/// replay of the write-ahead log) stores nothing new and changes no rollup. Points of one
/// series at one time with *different* values are all kept, in arrival order: the official
/// SDKs stamp points to the millisecond, so a device calling `send()` in a loop makes
/// several readings in one millisecond, and keeping only the last would drop readings
/// that were acknowledged. Numbers are the same when their bits are (`-0.0` is not `0.0`);
/// other values when their bytes are (``Value``: strings and JSON text verbatim).
public enum PointIdentity {
    /// The points of one series to store, as positions in `timestamps`, in time order
    /// (a stable sort: points of one time keep their arrival order): every point unless
    /// an earlier one in the batch, or one already stored, has the same time and value.
    /// `nil` means every point, in the order given (sorted, no time twice, nothing stored
    /// at the batch's times), without allocating.
    ///
    /// - Parameters:
    ///   - key: the value's identity at position `i` (its bits for a number).
    ///   - stored: the identities the series already holds, by time; only the batch's
    ///     times need to be present.
    ///
    /// Linear in the batch (hash sets per time), so many points at one time cost no more
    /// than many points at many times.
    public static func toStore<K: Hashable>(
        timestamps ts: [Int64], key: (Int) -> K, stored: [Int64: Set<K>]
    ) -> [Int]? {
        var sorted = true
        var timesDistinct = true
        var i = 1
        while i < ts.count {
            if ts[i] < ts[i - 1] {
                sorted = false
                break
            }
            if ts[i] == ts[i - 1] { timesDistinct = false }
            i += 1
        }
        if sorted && timesDistinct && stored.isEmpty { return nil }
        let order = sorted ? Array(ts.indices) : ts.indices.sorted { ts[$0] < ts[$1] }
        var keep: [Int] = []
        keep.reserveCapacity(order.count)
        var k = 0
        while k < order.count {
            let t = ts[order[k]]
            var end = k + 1
            while end < order.count && ts[order[end]] == t { end += 1 }
            let have = stored[t]
            if end == k + 1 && have == nil {
                keep.append(order[k])
            } else {
                var seen = have ?? []
                for j in k..<end where seen.insert(key(order[j])).inserted { keep.append(order[j]) }
            }
            k = end
        }
        return keep
    }
}

extension PointIdentity {
    /// A value as ``toStore(timestamps:key:stored:)`` compares it: numbers by their bits,
    /// strings and JSON text by their UTF-8 bytes (not by Unicode equivalence, which
    /// Swift's `==` on strings uses: `"é"` precomposed and decomposed are two values).
    public struct Value: Hashable, Sendable {
        let kind: PlexusValue.Kind
        let bits: UInt64
        let bytes: [UInt8]

        public init(_ v: PlexusValue) {
            kind = v.kind
            switch v {
            case .number(let d): (bits, bytes) = (d.bitPattern, [])
            case .bool(let b): (bits, bytes) = (b ? 1 : 0, [])
            case .string(let s): (bits, bytes) = (0, Array(s.utf8))
            case .object(let j), .array(let j): (bits, bytes) = (0, Array(j.text.utf8))
            }
        }
    }
}
