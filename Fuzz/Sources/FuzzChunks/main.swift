// libFuzzer target: the chunk codec and rollup blocks (PlexusChunks). The input is decoded
// as a chunk and as a rollup block (what a damaged database would hand the store), then
// read as points to encode:
//  * decoding any bytes throws or returns points, never crashes or returns more than
//    eight points a byte (a Rice code is at least a bit);
//  * encodeNumeric then decode gives back every timestamp and every value bit for bit
//    (−0.0, NaN payloads, subnormals, decimals near 2^53), whichever way it encodes them
//    (decimal with varints or Rice codes, with exceptions, XOR);
//  * encodeOther then decode gives back every value of every kind;
//  * a rollup block decoded from any bytes encodes and decodes to itself; one built from
//    the points counts each bucket's points, minimum and maximum right, keeps every
//    aggregate finite, round-trips, and (when decimal) is the same block whatever order
//    or batches the points came in.
import FuzzSupport
import PlexusChunks
import PlexusModel

func decodeAll(_ data: [UInt8]) throws -> [(Int64, PlexusValue)] {
    var out: [(Int64, PlexusValue)] = []
    try data.withUnsafeBytes { try ChunkCodec.decode($0) { out.append(($0, $1)) } }
    return out
}

func fuzzChunks(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let raw = UnsafeRawBufferPointer(start: data, count: size)
    var decoded = 0
    _ = try? ChunkCodec.decode(raw) { _, _ in decoded += 1 }
    require(decoded <= size * 8, "\(decoded) points from \(size) bytes")

    var input = FuzzInput(raw)
    var ts: [Int64] = []
    var vs: [Double] = []
    var t = Int64(bitPattern: input.uint64())
    while !input.isEmpty && ts.count < 4_096 {
        // How the next time moves: the same step, a small one, or anywhere.
        switch input.byte() % 4 {
        case 0: t = t &+ 1_000_000
        case 1: t = t &+ Int64(Int8(bitPattern: input.byte()))
        case 2: t = Int64(bitPattern: input.uint64())
        default: break
        }
        // The value: a decimal with up to 17 digits after the point, −0.0 or any bits, these
        // two rare enough that decimal chunks with a few exceptions come up.
        let v: Double
        switch input.byte() % 8 {
        case 0, 1, 2:
            let digits = Int(input.byte() % 18)
            let m = Int64(bitPattern: input.uint64()) >> Int64(input.byte() % 64)
            v = Double(m) / (0..<digits).reduce(1.0) { r, _ in r * 10 }
        case 3, 4, 5: v = Double(Int16(bitPattern: input.uint16())) / 100
        case 6: v = -0.0
        default: v = Double(bitPattern: input.uint64())
        }
        ts.append(t)
        vs.append(v)
    }
    checkRollups(raw, ts, vs)
    let chunk = ChunkCodec.encodeNumeric(timestamps: ts, values: vs)
    guard let back = try? decodeAll(chunk) else {
        require(false, "a chunk of \(ts.count) numbers does not decode")
        return 0
    }
    require(back.map(\.0) == ts, "timestamps changed")
    require(
        back.map { p -> UInt64 in if case .number(let d) = p.1 { d.bitPattern } else { 0 } } == vs.map(\.bitPattern),
        "values changed")
    let others: [PlexusValue] = vs.prefix(64).enumerated().map { i, v in
        switch i % 4 {
        case 0: .number(v)
        case 1: .bool(v.bitPattern & 1 == 1)
        case 2: .string(String(v.bitPattern, radix: 36))
        default: .array(JSONText(unchecked: "[\(v.bitPattern)]"))
        }
    }
    let otherBack = try? decodeAll(ChunkCodec.encodeOther(timestamps: Array(ts.prefix(others.count)), values: others))
    // Compared bit for bit: a NaN number is not == itself.
    func bits(_ v: PlexusValue) -> PlexusValue { if case .number(let d) = v { .string("\(d.bitPattern)") } else { v } }
    require(
        otherBack?.map { bits($0.1) } == others.map(bits) && otherBack?.map(\.0) == Array(ts.prefix(others.count)),
        "other values changed")
    return 0
}

func roundTrips(_ b: RollupBlock) -> Bool {
    (try? b.encoded().withUnsafeBytes { try RollupBlock(decoding: $0) }) == b
}

func checkRollups(_ raw: UnsafeRawBufferPointer, _ ts: [Int64], _ vs: [Double]) {
    if let b = try? RollupBlock(decoding: raw) { require(roundTrips(b), "a decoded block does not encode to itself") }
    // The points' minute buckets within an hour.
    let points = zip(ts, vs).filter { $0.1.isFinite }.map { t, v in
        let inHour = Int64(bitPattern: UInt64(bitPattern: t) % 3_600_000_000)
        return (index: Int(inHour / 60_000_000), atStart: inHour % 60_000_000 == 0, value: v)
    }
    func block(_ p: some Sequence<(index: Int, atStart: Bool, value: Double)>) -> RollupBlock {
        var b = RollupBlock()
        for x in p { b.add(index: x.index, value: x.value, atStart: x.atStart) }
        return b
    }
    let inOrder = block(points)
    require(roundTrips(inOrder), "a built block does not round-trip")
    var expected: [Int: (count: Int64, min: Double, max: Double)] = [:]
    for p in points {
        let e = expected[p.index]
        expected[p.index] = e.map { ($0.count + 1, min($0.min, p.value), max($0.max, p.value)) } ?? (1, p.value, p.value)
    }
    let slots = inOrder.slots
    require(slots.map(\.index) == expected.keys.sorted(), "buckets differ")
    for s in slots {
        let e = expected[s.index]!
        require(s.all.count == e.count && s.all.min == e.min && s.all.max == e.max, "bucket \(s.index) is wrong")
        require(s.all.sum.isFinite && (s.edge?.sum.isFinite ?? true), "a sum is not finite")
    }
    // (A sum of mixed signs can pass 2^53 on the way in one order and not in another,
    // turning one block raw: compared when both stayed decimal.)
    guard inOrder.isDecimal else { return }
    let reversed = block(points.reversed())
    require(!reversed.isDecimal || reversed == inOrder, "a decimal block depends on the points' order")
    var halves = block(points.prefix(points.count / 2))
    halves.merge(block(points.dropFirst(points.count / 2)))
    require(!halves.isDecimal || halves == inOrder, "a decimal block depends on the batches")
}

runFuzzer(fuzzChunks)
