import PlexusStorage
import Testing

/// The rule engines store a series' points by (``PointIdentity``), without a database.
@Suite("Point identity")
struct PointIdentityTests {
    /// What to store, the slow way: sorted by time (stable), each (time, value) once,
    /// nothing already stored.
    static func reference(_ ts: [Int64], _ values: [Int], stored: [Int64: Set<Int>]) -> [Int] {
        var seen = stored
        var keep: [Int] = []
        for i in ts.indices.sorted(by: { (ts[$0], $0) < (ts[$1], $1) })
        where seen[ts[i], default: []].insert(values[i]).inserted {
            keep.append(i)
        }
        return keep
    }

    @Test("random batches with times and values repeated, sorted or not, with or without stored points")
    func matchesReference() {
        var seed: UInt64 = 0x2545_F491_4F6C_DD1D
        func next(_ n: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((seed >> 33) % UInt64(n))
        }
        for round in 0..<500 {
            let n = next(40)
            let times = 1 + next(20)
            var ts = (0..<n).map { _ in Int64(next(times)) }
            if round % 3 == 0 { ts.sort() }
            let values = (0..<n).map { _ in next(round % 2 == 0 ? 3 : 1_000) }
            var stored: [Int64: Set<Int>] = [:]
            if round % 4 != 0 {
                for _ in 0..<next(10) { stored[Int64(next(times)), default: []].insert(next(3)) }
            }
            let got = PointIdentity.toStore(timestamps: ts, key: { values[$0] }, stored: stored) ?? Array(ts.indices)
            #expect(got == Self.reference(ts, values, stored: stored), "round \(round): \(ts) \(values) \(stored)")
        }
    }

    @Test("nil (everything, as given) only for sorted, distinct times with nothing stored")
    func fastPath() {
        #expect(PointIdentity.toStore(timestamps: [1, 2, 3], key: { $0 }, stored: [Int64: Set<Int>]()) == nil)
        #expect(PointIdentity.toStore(timestamps: [], key: { $0 }, stored: [Int64: Set<Int>]()) == nil)
        #expect(PointIdentity.toStore(timestamps: [2, 1], key: { $0 }, stored: [Int64: Set<Int>]()) == [1, 0])
        #expect(PointIdentity.toStore(timestamps: [1, 1], key: { _ in 7 }, stored: [Int64: Set<Int>]()) == [0])
        #expect(PointIdentity.toStore(timestamps: [1, 2], key: { $0 }, stored: [9: [0]]) == [0, 1])
        #expect(PointIdentity.toStore(timestamps: [1, 2], key: { $0 }, stored: [2: [1]]) == [0])
    }

    @Test("numbers by their bits: -0.0 and 0 are two readings, the same NaN-free value once")
    func numberBits() {
        let values: [Double] = [0, -0.0, 0, 1.5, 1.5]
        let keep = PointIdentity.toStore(timestamps: [5, 5, 5, 5, 6], key: { values[$0].bitPattern }, stored: [:])
        #expect(keep == [0, 1, 3, 4])
    }

    @Test("a hostile batch: 200,000 points of one series at one time, all different, all kept")
    func oneTimeManyValues() {
        let n = 200_000
        let keep = PointIdentity.toStore(timestamps: Array(repeating: 42, count: n), key: { $0 }, stored: [Int64: Set<Int>]())
        #expect(keep == Array(0..<n))
    }
}
