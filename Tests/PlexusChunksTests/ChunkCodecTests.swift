import PlexusChunks
import PlexusModel
import Testing

@Suite("Chunk codec")
struct ChunkCodecTests {
    static func decodeAll(_ data: [UInt8]) throws -> [(Int64, PlexusValue)] {
        var out: [(Int64, PlexusValue)] = []
        try data.withUnsafeBytes { try ChunkCodec.decode($0) { out.append(($0, $1)) } }
        return out
    }

    static func roundTrip(_ ts: [Int64], _ vs: [Double]) throws -> [UInt8] {
        let data = ChunkCodec.encodeNumeric(timestamps: ts, values: vs)
        let back = try decodeAll(data)
        #expect(back.map(\.0) == ts)
        #expect(back.map { if case .number(let d) = $0.1 { d.bitPattern } else { 0 } } == vs.map(\.bitPattern))
        return data
    }

    @Test("numbers round-trip bit for bit, with irregular and negative times, −0, extremes and subnormals")
    func numeric() throws {
        var rng = SystemRandomNumberGenerator()
        var ts: [Int64] = [-5_000_000, 0, 1, 1, 1_700_000_000_000_000]
        var vs: [Double] = [0, -0.0, .greatestFiniteMagnitude, .leastNonzeroMagnitude, 72.5]
        var t: Int64 = 1_700_000_000_000_000
        var v = 20.0
        for _ in 0..<5_000 {
            t += Int64.random(in: 0...2_000_000, using: &rng)
            v += Double.random(in: -1...1, using: &rng)
            ts.append(t)
            vs.append((v * 100).rounded() / 100)
        }
        let data = try Self.roundTrip(ts, vs)
        // −0, the largest double and a subnormal are the decimal chunk's three exceptions.
        #expect(data[0] == 2 && data.count < 5_000 * 6, "\(data.count) bytes (XOR values would take about 10 a point)")
        _ = try Self.roundTrip([], [])
        _ = try Self.roundTrip([7], [-0.0])
        _ = try Self.roundTrip([.min, .max, 0], [1e300, -1e-300, 0.1 + 0.2])
    }

    /// A random walk from `start` by steps up to `step`, rounded to two decimals.
    static func walk(_ count: Int, from start: Double, step: Double) -> [Double] {
        var rng = SystemRandomNumberGenerator()
        var v = start
        return (0..<count).map { _ in
            v += Double.random(in: -step...step, using: &rng)
            return (v * 100).rounded() / 100
        }
    }

    @Test("decimal sensor readings at a steady rate: the mantissas' deltas and one time delta, about a byte a point")
    func decimalAndSteady() throws {
        let vs = Self.walk(8_192, from: 55, step: 0.5)
        let ts = (0..<Int64(vs.count)).map { 1_700_000_000_000_000 + $0 * 1_000_000 }
        let data = try Self.roundTrip(ts, vs)
        #expect(Double(data.count) / Double(vs.count) < 1.3, "\(data.count) bytes")
        // Whole numbers (exponent 0), negative, and an integer-valued counter at 10 ms.
        let counter = (0..<1_000).map { Double($0 * 3 - 500) }
        let fast = try Self.roundTrip((0..<Int64(1_000)).map { $0 * 10_000 }, counter)
        #expect(fast.count < 1_100)
        // Six digits after the point, and values near 2^53 / 10^e that must not lose a bit.
        _ = try Self.roundTrip([1, 2, 3], [0.000001, 123.456789, -98.7654321])
        _ = try Self.roundTrip([1, 2], [9_007_199_254_740_991, -9_007_199_254_740_991])
        _ = try Self.roundTrip([1, 2], [9_007_199_254.740_991, 1])
    }

    @Test("noisy decimal readings are Rice-coded (under 0.9 bytes a point where varints take 1), outliers and exceptions too")
    func riceCoded() throws {
        // A walk whose steps spread like a sensor's noise (a sum of uniforms, σ ≈ 25 hundredths).
        var state: UInt64 = 11
        var m: Int64 = 5_000
        var vs: [Double] = []
        for _ in 0..<8_192 {
            var step: Int64 = 0
            for _ in 0..<2 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                step += Int64((state >> 33) % 61) - 30
            }
            m += step
            vs.append(Double(m) / 100)
        }
        let ts = (0..<Int64(vs.count)).map { 1_700_000_000_000_000 + $0 * 1_000_000 }
        let data = try Self.roundTrip(ts, vs)
        #expect(Double(data.count) / Double(vs.count) < 0.9, "\(data.count) bytes")
        // Outliers (a jump of 10^9 takes the escape) and values of no decimal form.
        var odd = vs
        odd[10] = 1e7
        odd[11] = -1e7
        odd[500] = -0.0
        odd[501] = 0.1 + 0.2
        let mixed = try Self.roundTrip(ts, odd)
        #expect(Double(mixed.count) / Double(vs.count) < 0.95, "\(mixed.count) bytes")
        // Every truncation of a Rice chunk is refused or decodes fewer points, never crashes.
        for n in stride(from: 0, to: data.count, by: 97) {
            _ = try? Self.decodeAll(Array(data[..<n]))
        }
    }

    @Test("decimal readings with a few values of no decimal form (−0.0 where a walk crosses zero, 0.1 + 0.2) stay decimal")
    func decimalExceptions() throws {
        // Around zero, where rounding makes -0.0 (made +0 here, then -0.0 put in on purpose).
        var vs = Self.walk(4_096, from: 0, step: 0.05).enumerated().map { i, v in i % 512 == 7 ? -0.0 : v == 0 ? 0 : v }
        vs[100] = 0.1 + 0.2
        vs[0] = -0.0
        vs[4_095] = -0.0
        let ts = (0..<Int64(vs.count)).map { $0 * 1_000_000 }
        let data = try Self.roundTrip(ts, vs)
        let exceptions = vs.indices.filter { vs[$0].bitPattern == (-0.0).bitPattern || $0 == 100 }.count
        #expect(Double(data.count) < 1.3 * Double(vs.count) + 10 * Double(exceptions), "\(data.count) bytes")
        // An exponent that grows after an exception, and exceptions next to each other.
        let grown = try Self.roundTrip((0..<32).map { Int64($0) }, [-0.0, -0.0, 1, 1.5] + (4..<32).map { Double($0) / 1_000 })
        #expect(grown[6] == 2, "values mode: decimal with exceptions")  // after version, kind, count, first, mode, delta
        // More than one value in 16 without a decimal form: the XOR scheme, still exact.
        var many = vs
        for i in stride(from: 0, to: many.count, by: 8) { many[i] = -0.0 }
        let xor = try Self.roundTrip(ts, many)
        #expect(xor.count > 4 * vs.count)
    }

    @Test("chunks written before (version 1) stay readable")
    func versionOne() throws {
        // 3 points at 10, 20, 35 µs: 1.5, 1.5, 2.5, as version 1 wrote them.
        let v1: [UInt8] = [1, 0, 3, 0x14, 0x14, 0x0A, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0x00, 0x86, 0xFC, 0x7F]
        let back = try Self.decodeAll(v1)
        #expect(back.map(\.0) == [10, 20, 35])
        #expect(back.map(\.1) == [.number(1.5), .number(1.5), .number(2.5)])
    }

    @Test("other values keep their type")
    func other() throws {
        let vs: [PlexusValue] = [
            .string("idle"), .bool(true), .bool(false), .object(JSONText(unchecked: #"{"a":1}"#)),
            .array(JSONText(unchecked: "[]")), .string(""), .number(3),
        ]
        let ts = (0..<Int64(vs.count)).map { $0 * 1_000 }
        #expect(try Self.decodeAll(ChunkCodec.encodeOther(timestamps: ts, values: vs)).map(\.1) == vs)
    }

    @Test("truncated or damaged chunks are an error, never a crash")
    func truncated() {
        for data in [
            ChunkCodec.encodeNumeric(timestamps: [1, 2, 3], values: [1.5, 2.5, 3.5]),
            ChunkCodec.encodeNumeric(timestamps: [1, 5, 6], values: [1.5, -0.0, 3.5]),
            ChunkCodec.encodeNumeric(timestamps: (0..<32).map { Int64($0) }, values: [-0.0] + (1..<32).map { Double($0) / 4 }),
            ChunkCodec.encodeOther(timestamps: [1, 2], values: [.string("ab"), .bool(true)]),
        ] {
            for n in 0..<data.count {
                #expect(throws: (any Error).self) { _ = try Self.decodeAll(Array(data.prefix(n))) }
            }
        }
        // A version or mode that does not exist; a count past the bytes; an exponent past 15.
        // Decimal exceptions: none, more than the points, a position past the last.
        let bits: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0x80]
        for bad: [UInt8] in [
            [3, 0, 0], [2, 0, 2, 2, 7, 0, 0, 0], [2, 0, 0xFF, 0xFF, 0x03, 0], [2, 0, 1, 2, 0, 16, 2], [2, 1, 0],
            [2, 0, 2, 2, 0, 2, 2, 1, 0, 2, 2], [2, 0, 2, 2, 0, 2, 2, 1, 3, 0] + bits + [0] + bits + [2, 2],
            [2, 0, 2, 2, 0, 2, 2, 1, 1, 2] + bits + [2, 2], [2, 0, 2, 2, 0, 2, 2, 1, 2, 1] + bits + [0] + bits + [2, 2],
        ] {
            #expect(throws: (any Error).self) { _ = try Self.decodeAll(bad) }
        }
    }
}
