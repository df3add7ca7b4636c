import PlexusModel

/// The rollups of one series over one block of time (an hour of minute buckets, a day of hour
/// buckets) in one BLOB (see docs/storage.md, *Rollups*). No I/O, like ``ChunkCodec``.
///
/// A block is **decimal** while every point it aggregates has a decimal form at one exponent
/// (``ChunkCodec``'s rule: `Double(m) / 10^e` bit for bit, `m` below 2^53): its minimums,
/// maximums and sums are then integers `m` at that exponent, and a sum is exact, the
/// decimal sum rounded once, whatever order the points came in. A point with no such form,
/// or a sum past 2^53, turns the block **raw** for good: doubles, sums added in order and
/// saturating at ±`Double.greatestFiniteMagnitude` (so they stay finite).
///
/// ```
/// block   := 1:u8 mode:u8 [exponent:u8, when mode = 0] count:uvarint slot*
///            mode 0 = decimal (integers at the exponent), 1 = raw (doubles)
/// slot    := gap:uvarint                    bucket index − previous index − 1 (previous −1)
///            stats
///            edge:uvarint                   0 = not known, else 1 + (stats header) of the
///            [stats-body, when edge ≥ 2]    points exactly at the bucket's start, based on
///                                           this slot's minimum rather than the last slot's
/// stats   := n:uvarint stats-body           n = count << 1 | single
/// stats-body (decimal) := min:zigzag-varint               min − base (the previous slot's
///                                                         minimum, 0 at the first)
///                         [max − min:uvarint, sum − count·min:uvarint
///                                                         (wrapping), unless single]
/// stats-body (raw)     := min:u64le [max:u64le sum:u64le, unless single]
/// ```
/// `single` means max and sum equal min (one point, the usual edge), so they are not written.
public struct RollupBlock: Sendable, Equatable {
    /// One bucket's aggregates, as doubles.
    public struct Aggregate: Sendable, Equatable {
        public var count: Int64
        public var min: Double
        public var max: Double
        public var sum: Double
        public init(count: Int64, min: Double, max: Double, sum: Double) {
            self.count = count
            self.min = min
            self.max = max
            self.sum = sum
        }
    }

    /// One bucket of the block.
    public struct Slot: Sendable, Equatable {
        /// The bucket's place in the block (its start is the block's plus index × width).
        public var index: Int
        public var all: Aggregate
        /// The points exactly at the bucket's start (count 0: none); nil when not known
        /// (rollups written before edges were kept).
        public var edge: Aggregate?
        public init(index: Int, all: Aggregate, edge: Aggregate?) {
            self.index = index
            self.all = all
            self.edge = edge
        }
    }

    /// Aggregates as integers: decimal mantissas, or the bits of doubles in a raw block.
    struct Stats: Equatable {
        var count: Int64
        var min: Int64
        var max: Int64
        var sum: Int64
        static let none = Stats(count: 0, min: 0, max: 0, sum: 0)
        var single: Bool { count == 1 && max == min && sum == min }
    }

    struct Entry: Equatable {
        var index: Int
        var all: Stats
        var edge: Stats?
    }

    /// Decimal: the exponent every integer is at; nil: raw.
    private(set) var exponent: Int? = 0
    private(set) var entries: [Entry] = []

    /// The most buckets a block holds (a day of minutes, with room to spare).
    public static let maxIndex = 1 << 16
    /// The most points one bucket counts.
    static let maxCount: Int64 = 1 << 52
    static let decimalLimit: Int64 = 9_007_199_254_740_992  // 2^53

    public init() {}

    public var isEmpty: Bool { entries.isEmpty }
    /// Buckets with points.
    public var count: Int { entries.count }
    /// Whether the block holds integers at one exponent (false once any point had no such form).
    public var isDecimal: Bool { exponent != nil }

    public var slots: [Slot] {
        entries.map { e in Slot(index: e.index, all: aggregate(e.all), edge: e.edge.map(aggregate)) }
    }

    func aggregate(_ s: Stats) -> Aggregate {
        Aggregate(count: s.count, min: double(s.min), max: double(s.max), sum: double(s.sum))
    }

    func double(_ x: Int64) -> Double {
        if let e = exponent { Double(x) / DecimalForm.powersOfTen[e] } else { Double(bitPattern: UInt64(bitPattern: x)) }
    }

    static func bits(_ v: Double) -> Int64 { Int64(bitPattern: v.bitPattern) }

    // MARK: Adding

    /// Adds one point to bucket `index`; `atStart` when it lies exactly at the bucket's
    /// start. Points come in any order; in order (the usual case) costs no search.
    public mutating func add(index: Int, value: Double, atStart: Bool) {
        precondition(index >= 0 && index <= Self.maxIndex)
        // Stores refuse non-finite values at the door; a rollup never holds one.
        guard value.isFinite else { return }
        func entry(_ x: Int64) -> Entry {
            let one = Stats(count: 1, min: x, max: x, sum: x)
            return Entry(index: index, all: one, edge: atStart ? one : .none)
        }
        let point = entry(integer(for: value))
        if let last = entries.last, last.index == index {
            var merged = last
            if !Self.combine(&merged, point, decimal: exponent != nil) {
                // A decimal sum past 2^53: raw from here on.
                goRaw()
                merged = entries[entries.count - 1]
                _ = Self.combine(&merged, entry(Self.bits(value)), decimal: false)
            }
            entries[entries.count - 1] = merged
        } else if entries.last.map({ $0.index < index }) ?? true {
            entries.append(point)
        } else if let merged = Self.merged(entries, [point], decimal: exponent != nil) {
            entries = merged
        } else {
            goRaw()
            entries = Self.merged(entries, [entry(Self.bits(value))], decimal: false)!
        }
    }

    /// Adds a bucket's aggregates given as doubles (`edge` nil when not known). A sum
    /// stored as ±inf by a release before sums saturated becomes the largest double.
    public mutating func add(index: Int, all: Aggregate, edge: Aggregate?) {
        precondition(index >= 0 && index <= Self.maxIndex)
        guard all.count > 0 else { return }
        func finite(_ a: Aggregate) -> Aggregate {
            func f(_ v: Double) -> Double { v.isNaN ? 0 : Swift.max(-.greatestFiniteMagnitude, Swift.min(.greatestFiniteMagnitude, v)) }
            return Aggregate(count: a.count, min: f(a.min), max: f(a.max), sum: f(a.sum))
        }
        let all = finite(all)
        let edge = edge.map(finite)
        let values = [all.min, all.max, all.sum] + (edge.map { $0.count > 0 ? [$0.min, $0.max, $0.sum] : [] } ?? [])
        // Decimal when every value has the form at one exponent, else raw.
        var exponent = ChunkCodec.decimal(values).flatMap { $0.exceptions.isEmpty ? $0.0 : nil }
        if let e = exponent, values.contains(where: { Self.canonical($0, e) == nil }) { exponent = nil }
        func integer(_ v: Double) -> Int64 { exponent.flatMap { Self.canonical(v, $0) } ?? Self.bits(v) }
        func stats(_ a: Aggregate) -> Stats {
            guard a.count > 0 else { return .none }
            return Stats(count: Swift.min(a.count, Self.maxCount), min: integer(a.min), max: integer(a.max), sum: integer(a.sum))
        }
        var one = RollupBlock()
        one.exponent = exponent
        one.entries = [Entry(index: index, all: stats(all), edge: edge.map(stats))]
        merge(one)
    }

    /// `v` as this block's integer: at its exponent, raised if `v` needs more digits, or as
    /// bits once the block is (or, for `v`, turns) raw.
    mutating func integer(for v: Double) -> Int64 {
        guard let e = exponent else { return Self.bits(v) }
        if let m = DecimalForm.mantissa(v, e) {
            if m < Self.uniqueLimit && m > -Self.uniqueLimit { return m }
            if let c = Self.canonical(v, e) { return c }
        }
        var needed = e + 1
        while needed <= DecimalForm.maxExponent {
            if let m = DecimalForm.mantissa(v, needed), rescale(to: needed) { return m }
            needed += 1
        }
        goRaw()
        return Self.bits(v)
    }

    /// Below 2^51 a value has one integer at an exponent: `10^-e` is wider than the
    /// spacing of doubles there. Above, two neighbours can both give the value back.
    static let uniqueLimit: Int64 = 2_251_799_813_685_248

    /// The integer of `v` at exponent `e` that does not depend on the order points came
    /// in: the one at the fewest digits `v` needs, scaled up (what a block that saw `v`
    /// first and its exponent rise later holds). Nil when that passes 2^53.
    static func canonical(_ v: Double, _ e: Int) -> Int64? {
        for fewer in 0...e {
            guard let m = DecimalForm.mantissa(v, fewer) else { continue }
            var x = m
            for _ in fewer..<e {
                let (r, overflow) = x.multipliedReportingOverflow(by: 10)
                guard !overflow else { return nil }
                x = r
            }
            return x < decimalLimit && x > -decimalLimit ? x : nil
        }
        return nil
    }

    /// Every integer at exponent `target` (more digits); false, changing nothing, when one
    /// would pass 2^53.
    mutating func rescale(to target: Int) -> Bool {
        guard let e = exponent, target > e else { return exponent == target }
        var factor: Int64 = 1
        for _ in e..<target { factor *= 10 }
        func scaled(_ x: Int64) -> Int64? {
            let (r, overflow) = x.multipliedReportingOverflow(by: factor)
            return overflow || r >= Self.decimalLimit || r <= -Self.decimalLimit ? nil : r
        }
        func scaled(_ s: Stats) -> Stats? {
            guard let min = scaled(s.min), let max = scaled(s.max), let sum = scaled(s.sum) else { return nil }
            return Stats(count: s.count, min: min, max: max, sum: sum)
        }
        var out = entries
        for k in out.indices {
            guard let all = scaled(out[k].all) else { return false }
            out[k].all = all
            if let edge = out[k].edge {
                guard let s = scaled(edge) else { return false }
                out[k].edge = s
            }
        }
        entries = out
        exponent = target
        return true
    }

    /// Turns the block raw: every integer becomes the bits of its double.
    mutating func goRaw() {
        guard exponent != nil else { return }
        func raw(_ s: Stats) -> Stats {
            Stats(count: s.count, min: Self.bits(double(s.min)), max: Self.bits(double(s.max)), sum: Self.bits(double(s.sum)))
        }
        let converted = entries.map { Entry(index: $0.index, all: raw($0.all), edge: $0.edge.map(raw)) }
        entries = converted
        exponent = nil
    }

    // MARK: Merging

    /// Adds every bucket of `other` (the points of both, as if added to one block).
    public mutating func merge(_ other: RollupBlock) {
        var other = other
        if other.isEmpty { return }
        if isEmpty {
            self = other
            return
        }
        if let a = exponent, let b = other.exponent, a != b {
            let target = Swift.max(a, b)
            if !(rescale(to: target) && other.rescale(to: target)) {
                goRaw()
                other.goRaw()
            }
        } else if exponent == nil || other.exponent == nil {
            goRaw()
            other.goRaw()
        }
        // Sums past 2^53 turn both raw and the merge starts again (at most once).
        if let merged = Self.merged(entries, other.entries, decimal: exponent != nil) {
            entries = merged
        } else {
            goRaw()
            other.goRaw()
            entries = Self.merged(entries, other.entries, decimal: false)!
        }
    }

    static func merged(_ a: [Entry], _ b: [Entry], decimal: Bool) -> [Entry]? {
        var out: [Entry] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && a[i].index < b[j].index) {
                out.append(a[i])
                i += 1
            } else if i == a.count || b[j].index < a[i].index {
                out.append(b[j])
                j += 1
            } else {
                var e = a[i]
                guard combine(&e, b[j], decimal: decimal) else { return nil }
                out.append(e)
                i += 1
                j += 1
            }
        }
        return out
    }

    /// Adds `b` into `a` (one bucket); false when a decimal sum would pass 2^53.
    static func combine(_ a: inout Entry, _ b: Entry, decimal: Bool) -> Bool {
        guard let all = combine(a.all, b.all, decimal: decimal) else { return false }
        var edge: Stats? = nil
        if let x = a.edge, let y = b.edge {
            guard let s = combine(x, y, decimal: decimal) else { return false }
            edge = s
        }
        a.all = all
        a.edge = edge
        return true
    }

    static func combine(_ a: Stats, _ b: Stats, decimal: Bool) -> Stats? {
        if a.count == 0 { return b }
        if b.count == 0 { return a }
        let count = Swift.min(maxCount, a.count + b.count)
        if decimal {
            let (sum, overflow) = a.sum.addingReportingOverflow(b.sum)
            guard !overflow, sum < decimalLimit, sum > -decimalLimit else { return nil }
            return Stats(count: count, min: Swift.min(a.min, b.min), max: Swift.max(a.max, b.max), sum: sum)
        }
        func d(_ x: Int64) -> Double { Double(bitPattern: UInt64(bitPattern: x)) }
        let sum = Swift.max(-.greatestFiniteMagnitude, Swift.min(.greatestFiniteMagnitude, d(a.sum) + d(b.sum)))
        return Stats(
            count: count, min: bits(Swift.min(d(a.min), d(b.min))), max: bits(Swift.max(d(a.max), d(b.max))), sum: bits(sum))
    }

    /// Removes the buckets whose index `drop` says; returns how many.
    @discardableResult
    public mutating func removeSlots(where drop: (Int) -> Bool) -> Int {
        let before = entries.count
        entries.removeAll { drop($0.index) }
        return before - entries.count
    }

    // MARK: Encoding

    public func encoded() -> [UInt8] {
        var out: [UInt8] = [1]
        out.reserveCapacity(8 + entries.count * 10)
        if let e = exponent {
            out.append(0)
            out.append(UInt8(e))
        } else {
            out.append(1)
        }
        ChunkCodec.putUVarint(&out, UInt64(entries.count))
        var previousIndex = -1
        var base: Int64 = 0
        for entry in entries {
            ChunkCodec.putUVarint(&out, UInt64(entry.index - previousIndex - 1))
            previousIndex = entry.index
            put(&out, entry.all, base: base)
            base = entry.all.min
            if let edge = entry.edge {
                ChunkCodec.putUVarint(&out, 1 + header(edge))
                if edge.count > 0 { putBody(&out, edge, base: entry.all.min) }
            } else {
                out.append(0)
            }
        }
        return out
    }

    func header(_ s: Stats) -> UInt64 { UInt64(s.count) << 1 | (s.single ? 1 : 0) }

    func put(_ out: inout [UInt8], _ s: Stats, base: Int64) {
        ChunkCodec.putUVarint(&out, header(s))
        putBody(&out, s, base: base)
    }

    func putBody(_ out: inout [UInt8], _ s: Stats, base: Int64) {
        if exponent != nil {
            ChunkCodec.putVarint(&out, s.min &- base)
            if !s.single {
                ChunkCodec.putUVarint(&out, UInt64(bitPattern: s.max &- s.min))
                ChunkCodec.putUVarint(&out, UInt64(bitPattern: s.sum &- s.count &* s.min))
            }
        } else {
            for x in s.single ? [s.min] : [s.min, s.max, s.sum] {
                withUnsafeBytes(of: UInt64(bitPattern: x).littleEndian) { out.append(contentsOf: $0) }
            }
        }
    }

    // MARK: Decoding

    /// Reads a block; throws ``ChunkCodec/DecodeError`` on anything but a block this codec
    /// wrote (every integer in range, every double finite, indexes rising, no byte left).
    public init(decoding data: UnsafeRawBufferPointer) throws {
        var r = ChunkCodec.Reader(data)
        guard try r.byte() == 1 else { throw ChunkCodec.DecodeError() }
        switch try r.byte() {
        case 0:
            let e = Int(try r.byte())
            guard e <= DecimalForm.maxExponent else { throw ChunkCodec.DecodeError() }
            exponent = e
        case 1: exponent = nil
        default: throw ChunkCodec.DecodeError()
        }
        let n = try r.uvarint()
        // Every slot takes three bytes at least.
        guard n <= UInt64(r.remaining / 3) else { throw ChunkCodec.DecodeError() }
        entries.reserveCapacity(Int(n))
        var index = -1
        var base: Int64 = 0
        for _ in 0..<n {
            let gap = try r.uvarint()
            guard gap < UInt64(Self.maxIndex) else { throw ChunkCodec.DecodeError() }
            index += 1 + Int(gap)
            guard index <= Self.maxIndex else { throw ChunkCodec.DecodeError() }
            guard let all = try readStats(&r, header: try r.uvarint(), base: base), all.count > 0 else {
                throw ChunkCodec.DecodeError()
            }
            base = all.min
            let edgeField = try r.uvarint()
            let edge = edgeField == 0 ? nil : try readStats(&r, header: edgeField - 1, base: all.min)
            guard edgeField == 0 || edge != nil else { throw ChunkCodec.DecodeError() }
            if let edge, edge.count > all.count { throw ChunkCodec.DecodeError() }
            entries.append(Entry(index: index, all: all, edge: edge))
        }
        guard r.remaining == 0 else { throw ChunkCodec.DecodeError() }
    }

    /// Nil for a header no encoder writes.
    func readStats(_ r: inout ChunkCodec.Reader, header: UInt64, base: Int64) throws -> Stats? {
        let count = header >> 1
        let single = header & 1 == 1
        guard count <= UInt64(Self.maxCount), !single || count == 1 else { return nil }
        if count == 0 { return header == 0 ? Stats.none : nil }
        let n = Int64(count)
        var s: Stats
        if exponent != nil {
            let min = base &+ (try r.varint())
            s = Stats(count: n, min: min, max: min, sum: min)
            if !single {
                s.max = min &+ Int64(bitPattern: try r.uvarint())
                s.sum = Int64(bitPattern: try r.uvarint()) &+ n &* min
            }
            for x in [s.min, s.max, s.sum] where x >= Self.decimalLimit || x <= -Self.decimalLimit {
                throw ChunkCodec.DecodeError()
            }
        } else {
            let min = Int64(bitPattern: try r.uint64LE())
            s = Stats(count: n, min: min, max: min, sum: min)
            if !single {
                s.max = Int64(bitPattern: try r.uint64LE())
                s.sum = Int64(bitPattern: try r.uint64LE())
            }
            for x in [s.min, s.max, s.sum] where !Double(bitPattern: UInt64(bitPattern: x)).isFinite {
                throw ChunkCodec.DecodeError()
            }
        }
        guard s.min <= s.max || exponent == nil else { throw ChunkCodec.DecodeError() }
        return s
    }
}
