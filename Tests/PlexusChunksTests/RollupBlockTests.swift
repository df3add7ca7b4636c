import PlexusChunks
import Testing

@Suite("Rollup blocks")
struct RollupBlockTests {
    typealias Aggregate = RollupBlock.Aggregate

    /// An hour of 2-decimal readings at 1 Hz (a random walk), as (second, value).
    static func walk(seed: UInt64, seconds: Int = 3_600) -> [(Int, Double)] {
        var state = seed
        var m: Int64 = 2_137
        return (0..<seconds).map { t in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            m += Int64((state >> 33) % 41) - 20
            return (t, Double(m) / 100)
        }
    }

    static func block(_ points: some Sequence<(Int, Double)>) -> RollupBlock {
        var b = RollupBlock()
        for (t, v) in points { b.add(index: t / 60, value: v, atStart: t % 60 == 0) }
        return b
    }

    static func decoded(_ b: RollupBlock) throws -> RollupBlock {
        try b.encoded().withUnsafeBytes { try RollupBlock(decoding: $0) }
    }

    @Test("minute buckets of decimal readings: exact aggregates, edges, under 0.2 bytes a point, a bit-exact round trip")
    func decimalReadings() throws {
        let points = Self.walk(seed: 1)
        let b = Self.block(points)
        #expect(b.isDecimal)
        let slots = b.slots
        #expect(slots.map(\.index) == Array(0..<60))
        for slot in slots {
            let values = points.filter { $0.0 / 60 == slot.index }.map(\.1)
            // The sum is the decimal sum rounded once, not the doubles added in order.
            let cents = values.reduce(Int64(0)) { $0 + Int64(($1 * 100).rounded()) }
            #expect(slot.all == Aggregate(count: 60, min: values.min()!, max: values.max()!, sum: Double(cents) / 100))
            #expect(slot.edge == Aggregate(count: 1, min: values[0], max: values[0], sum: values[0]))
        }
        let bytes = b.encoded()
        #expect(bytes.count < 3_600 * 2 / 10, "\(bytes.count) bytes for 3,600 points")
        #expect(try Self.decoded(b) == b)
    }

    @Test("the same points in any order, or in two blocks merged, make the same block")
    func orderDoesNotMatter() throws {
        var points = Self.walk(seed: 2, seconds: 600) + [(10, 0.125), (70, -3), (600, 1e-9)]
        let inOrder = Self.block(points)
        var rng = SystemRandomNumberGenerator()
        points.shuffle(using: &rng)
        #expect(Self.block(points) == inOrder)
        var merged = Self.block(points[..<300])
        merged.merge(Self.block(points[300...]))
        #expect(merged == inOrder)
        #expect(inOrder.isDecimal)
        #expect(try Self.decoded(inOrder) == inOrder)
        // Near 2^53 two integers can give one double back (…859.40 and …859.41 at two
        // digits): the block holds the one its fewest digits scale to (found by fuzzing).
        let wide = [84_496_747_180_859.4, 8_058_224.86, 0]
        #expect(Self.block(wide.map { (3_420, $0) }) == Self.block(wide.reversed().map { (3_420, $0) }))
        #expect(Self.block(wide.map { (3_420, $0) }).isDecimal)
    }

    @Test("values with no decimal form, −0.0 and sums past 2^53 turn a block raw: doubles added in order, saturating, always finite")
    func rawBlocks() throws {
        var b = RollupBlock()
        b.add(index: 0, value: 1.5, atStart: true)
        b.add(index: 0, value: 0.1 + 0.2, atStart: false)
        #expect(!b.isDecimal)
        #expect(b.slots[0].all == Aggregate(count: 2, min: 0.1 + 0.2, max: 1.5, sum: 1.5 + (0.1 + 0.2)))
        #expect(b.slots[0].edge == Aggregate(count: 1, min: 1.5, max: 1.5, sum: 1.5))
        b.add(index: 1, value: .greatestFiniteMagnitude, atStart: false)
        b.add(index: 1, value: .greatestFiniteMagnitude, atStart: false)
        b.add(index: 1, value: -.greatestFiniteMagnitude, atStart: false)
        #expect(b.slots[1].all.sum == 0 && b.slots[1].all.count == 3)
        b.add(index: 2, value: .nan, atStart: false)
        b.add(index: 2, value: .infinity, atStart: false)
        #expect(b.slots.count == 2)
        #expect(try Self.decoded(b) == b)

        var zero = RollupBlock()
        zero.add(index: 3, value: -0.0, atStart: true)
        #expect(!zero.isDecimal && zero.slots[0].all.min.sign == .minus)

        var big = RollupBlock()
        for _ in 0..<3 { big.add(index: 0, value: 4e15, atStart: false) }
        #expect(!big.isDecimal && big.slots[0].all.sum == 1.2e16)
        #expect(try Self.decoded(big) == big)
    }

    @Test("more digits raise the block's exponent, keeping every aggregate exact; too many for 2^53 turn it raw")
    func exponentGrows() throws {
        var b = RollupBlock()
        for (i, v) in [3.0, 1.5, 1.25, 0.001].enumerated() { b.add(index: i % 2, value: v, atStart: false) }
        #expect(b.isDecimal)
        #expect(
            b.slots.map(\.all) == [
                Aggregate(count: 2, min: 1.25, max: 3, sum: 4.25), Aggregate(count: 2, min: 0.001, max: 1.5, sum: 1.501),
            ])
        b.add(index: 0, value: 1e-15, atStart: false)
        #expect(b.isDecimal)
        b.add(index: 0, value: 9e6, atStart: false)  // 9e6 × 10^15 passes 2^53
        #expect(!b.isDecimal && b.slots[0].all.max == 9e6 && b.slots[0].all.count == 4)
    }

    @Test("aggregates carried over as doubles: decimal when they have the form, edges not known stay so through merges")
    func carriedOver() throws {
        var b = RollupBlock()
        b.add(index: 5, all: Aggregate(count: 3, min: 1.5, max: 2.25, sum: 5.5), edge: nil)
        #expect(b.isDecimal)
        b.add(index: 6, all: Aggregate(count: 2, min: 1, max: 2, sum: 3), edge: Aggregate(count: 0, min: 0, max: 0, sum: 0))
        b.add(index: 5, value: 2, atStart: true)
        #expect(b.slots[0] == RollupBlock.Slot(index: 5, all: Aggregate(count: 4, min: 1.5, max: 2.25, sum: 7.5), edge: nil))
        #expect(b.slots[1].edge == Aggregate(count: 0, min: 0, max: 0, sum: 0))
        b.add(index: 7, all: Aggregate(count: 2, min: 0.1, max: 0.2, sum: 0.1 + 0.2), edge: nil)
        #expect(!b.isDecimal && b.slots[2].all.sum == 0.1 + 0.2)
        #expect(try Self.decoded(b) == b)
        #expect(b.removeSlots { $0 < 7 } == 2 && b.slots.map(\.index) == [7])
        // A sum an old release stored as inf: the largest double, so the block stays readable.
        b.add(index: 8, all: Aggregate(count: 2, min: 1e308, max: 1e308, sum: .infinity), edge: nil)
        #expect(b.slots[1].all.sum == .greatestFiniteMagnitude)
        #expect(try Self.decoded(b) == b)
    }

    @Test("truncated, damaged or random blocks are an error, never a crash")
    func hostile() throws {
        let good = Self.block(Self.walk(seed: 3, seconds: 300)).encoded()
        for n in 0..<good.count {
            #expect(throws: (any Error).self) { _ = try Array(good[..<n]).withUnsafeBytes { try RollupBlock(decoding: $0) } }
        }
        func refused(_ bytes: [UInt8]) -> Bool { (try? bytes.withUnsafeBytes { try RollupBlock(decoding: $0) }) == nil }
        #expect(refused(good + [0]))  // a byte left over
        #expect(refused([2] + good.dropFirst()))  // an unknown version
        #expect(refused([1, 0, 16, 0]))  // exponent past 15
        #expect(refused([1, 2, 0]))  // an unknown mode
        #expect(refused([1, 0, 0, 1, 0, 0, 0, 0]))  // a bucket of no points
        #expect(refused([1, 1, 1, 0, 3] + [UInt8](repeating: 0, count: 6) + [0xF0, 0x7F, 0]))  // +inf in a raw block
        // A mantissa past 2^53.
        #expect(refused([1, 0, 0, 1, 0, 3, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0]))
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            var bytes = good
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            // Whatever decodes is a block that encodes and decodes to itself.
            if let b = try? bytes.withUnsafeBytes({ try RollupBlock(decoding: $0) }) { #expect(try Self.decoded(b) == b) }
        }
    }
}
