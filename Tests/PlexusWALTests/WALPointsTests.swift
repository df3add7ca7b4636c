import PlexusModel
import PlexusWAL
import Testing

@Suite("WAL record, version 2: points")
struct WALPointsTests {
    static let receivedAt: Int64 = 1_700_000_000_000_000

    /// Points of every value kind, with and without times, sources, sessions and tags,
    /// repeating some names and tag sets and not others.
    static func points(_ n: Int, using rng: inout some RandomNumberGenerator) -> [Point] {
        let metrics = ["temperature", "humidity", "accel", "log", "a.b_c-d", "é"]
        let sources = ["sensor-001", "sensor-002", "drone-01"]
        let tagSets: [[PlexusModel.Tag]] = [
            [], [PlexusModel.Tag("location", "lab-1")], [PlexusModel.Tag("a", "1"), PlexusModel.Tag("b", "é")],
            [PlexusModel.Tag("location", "lab-2")],
        ]
        var t = receivedAt - 5_000_000
        return (0..<n).map { _ in
            let value: PlexusValue =
                switch Int.random(in: 0..<7, using: &rng) {
                case 0: .number(Double(Int.random(in: -100_000...100_000, using: &rng)) / 100)
                case 1: .number(Double.random(in: -1e300...1e300, using: &rng))
                case 2: .string(String(repeating: "x", count: Int.random(in: 0..<40, using: &rng)) + "\"\\\n")
                case 3: .bool(Bool.random(using: &rng))
                case 4: .object(JSONText(unchecked: #"{"x":1,"y":[2,3]}"#))
                case 5: .array(JSONText(unchecked: "[1,2.5,\"s\"]"))
                default: .number(-0.0)
                }
            t += Int64.random(in: -2_000...1_000_000, using: &rng)
            return Point(
                metric: metrics.randomElement(using: &rng)!, value: value,
                timestamp: Bool.random(using: &rng) ? t : nil, sourceID: sources.randomElement(using: &rng)!,
                tags: tagSets.randomElement(using: &rng)!,
                sessionID: Int.random(in: 0..<4, using: &rng) == 0 ? "session_1" : nil)
        }
    }

    static func encode(_ points: [Point]) -> [UInt8] {
        var out: [UInt8] = []
        WALPoints.encode(points, receivedAt: receivedAt, into: &out)
        return out
    }

    static func decode(_ bytes: [UInt8]) -> Result<[Point], WALPoints.Invalid> {
        bytes.withUnsafeBytes { raw in
            Result { () throws(WALPoints.Invalid) -> [Point] in try WALPoints.decode(raw, receivedAt: receivedAt) }
        }
    }

    @Test("points come back exactly: every value kind, -0.0, times or none, sessions, tag sets")
    func roundTrip() throws {
        var rng = SystemRandomNumberGenerator()
        for n in [0, 1, 2, 17, 500] {
            let points = Self.points(n, using: &rng)
            let back = try Self.decode(Self.encode(points)).get()
            #expect(back == points)
            // -0.0 keeps its sign (== alone would not tell).
            for (a, b) in zip(points, back) {
                if case .number(let x) = a.value, case .number(let y) = b.value { #expect(x.bitPattern == y.bitPattern) }
            }
        }
    }

    @Test("a repeated name or tag set is written once: W1's points take about 14 bytes each")
    func compact() {
        let points = (0..<5_000).map { k in
            Point(
                metric: "metric-\(k % 20)", value: .number(Double(k % 997) / 100), timestamp: Self.receivedAt + Int64(k / 20) * 1_000_000,
                sourceID: "sensor-001", tags: [PlexusModel.Tag("location", "lab-1")])
        }
        let size = Self.encode(points).count
        #expect(size < 5_000 * 15, "\(size) bytes")
    }

    @Test("every cut-off body is refused, never read past its end")
    func truncated() {
        var rng = SystemRandomNumberGenerator()
        let bytes = Self.encode(Self.points(30, using: &rng))
        for cut in 0..<bytes.count {
            guard case .failure = Self.decode(Array(bytes[..<cut])) else {
                Issue.record("a body cut at \(cut) of \(bytes.count) bytes decoded")
                continue
            }
        }
        guard case .failure = Self.decode(bytes + [0]) else {
            Issue.record("a byte after the last point was accepted")
            return
        }
    }

    @Test("changed bytes are refused or give points that obey every ingest rule")
    func flipped() {
        var rng = SystemRandomNumberGenerator()
        let bytes = Self.encode(Self.points(20, using: &rng))
        for _ in 0..<20_000 {
            var b = bytes
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            guard case .success(let points) = Self.decode(b) else { continue }
            for p in points {
                #expect(Limits.refusal(p) == nil)
                #expect(p.sourceID.map(Identifier.isValidSourceID) == true)
                if let t = p.timestamp { #expect(Timestamp.isValid(t)) }
                if case .number(let d) = p.value { #expect(d.isFinite) }
            }
        }
    }

    @Test("hostile bodies: huge counts, indexes out of range, NaN, bad UTF-8, a source ingest refuses")
    func hostile() {
        // Counts far beyond the bytes left.
        #expect(Self.failure([0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) != nil)
        // One string "m", no tag sets, one point naming string 5.
        #expect(Self.failure([1, 1, 0x6D, 0, 1, 0, 5, 0, 0, 0] + [UInt8](repeating: 0, count: 8)) != nil)
        // A varint running past 64 bits.
        #expect(Self.failure([UInt8](repeating: 0x80, count: 11) + [1]) != nil)
        // Text that is not UTF-8.
        #expect(Self.failure([1, 1, 0xC3, 0, 0]) != nil)
        // Unknown value kind.
        let good: [Point] = [Point(metric: "m", value: .number(1), timestamp: nil, sourceID: "s", tags: [], sessionID: nil)]
        var bytes = Self.encode(good)
        let kindAt = bytes.count - 13  // kind, metric, source, session, tags, 8 value bytes
        #expect(bytes[kindAt] == 0)
        bytes[kindAt] = 9
        #expect(Self.failure(bytes) != nil)
        // NaN and a source ingest would refuse: readable, so the points come with the error
        // (the replay sets them aside as an ingest body).
        for bad in [
            Point(metric: "m", value: .number(.nan), timestamp: nil, sourceID: "s", tags: [], sessionID: nil),
            Point(metric: "m", value: .number(1), timestamp: nil, sourceID: "Bad Source", tags: [], sessionID: nil),
            Point(metric: "m", value: .number(1), timestamp: -1, sourceID: "s", tags: [], sessionID: nil),
            Point(
                metric: "m", value: .number(1), timestamp: nil, sourceID: "s", tags: [PlexusModel.Tag("session_id", "x")], sessionID: nil),
        ] {
            let error = Self.failure(Self.encode([bad]))
            #expect(error?.points?.count == 1, "\(bad)")
        }
    }

    static func failure(_ bytes: [UInt8]) -> WALPoints.Invalid? {
        if case .failure(let e) = decode(bytes) { return e }
        return nil
    }
}
