// The ingest codecs per point, without the server (scripts/bench-codecs): the JSON body
// /ingest decodes, the line protocol body /write decodes plus the WAL record it then gets,
// remote write (snappy + protobuf + the WAL record), and a replay reading a WAL record. The bodies are the shared
// harness's W1 shape: one source, 20 metrics, 100 points a request, 2-decimal values.
//
//   PlexusCodecBench [--rounds N]      prints ns per point for each codec
//
// Under `valgrind --tool=callgrind` (instruction counts, stable on a shared machine),
// run with a small --rounds. Then the chunk codec, encode and decode, on 8,192-point chunks.
import Foundation
import PlexusChunks
import PlexusModel
import PlexusWAL

let rounds = CommandLine.arguments.firstIndex(of: "--rounds").flatMap { Int(CommandLine.arguments[$0 + 1]) } ?? 2_000
let pointsPerBody = 100
let metrics = (0..<20).map { "metric_\($0)" }

func value(_ k: Int) -> Double { Double((k * 7_919) % 10_000) / 100 }

let jsonBody: [UInt8] = {
    var w = JSONWriter()
    w.raw("{\"points\":[")
    w.list(0..<pointsPerBody) { w, k in
        w.raw("{\"metric\":")
        w.string(metrics[k % 20])
        w.raw(",\"value\":")
        w.number(value(k))
        w.raw(",\"timestamp\":")
        w.exactTimestamp(1_795_561_200_000_000 + Int64(k / 20) * 1_000_000)
        w.raw(",\"source_id\":\"sensor-000\",\"tags\":{\"location\":\"lab-0\"}}")
    }
    w.raw("]}")
    return w.bytes
}()

let lineBody: [UInt8] = Array(
    (0..<pointsPerBody).map { k in
        "\(metrics[k % 20]),location=lab-0,source_id=sensor-000 value=\(value(k)) \(1_795_561_200_000 + (k / 20) * 1_000)"
    }.joined(separator: "\n").utf8)

let remoteBody: [UInt8] = Snappy.literalBlock(
    RemoteWrite.encode(
        (0..<20).map { m in
            RemoteWrite.Series(
                labels: [("__name__", metrics[m]), ("instance", "sensor-000"), ("location", "lab-0")],
                samples: (0..<(pointsPerBody / 20)).map { (value(m + $0 * 20), 1_795_561_200_000 + Int64($0) * 1_000) })
        }))

func measure(_ name: String, rounds: Int = rounds, _ body: () throws -> Int) rethrows {
    var points = 0
    let start = ContinuousClock.now
    for _ in 0..<rounds { points += try body() }
    let elapsed = start.duration(to: .now)
    let ns = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
    print("\(name): \(Int((ns / Double(points)).rounded())) ns/point (\(points) points)")
}

try measure("json /ingest decode") {
    try jsonBody.withUnsafeBytes { try IngestDecoder.decode($0).points.count }
}
try measure("line protocol decode") {
    try lineBody.withUnsafeBytes { try LineProtocol.decode($0, options: .init(precision: .milliseconds)).points.count }
}
let walRecord = WALPointsRecord(orgID: 1, receivedAt: 1_795_561_200_000_000)
try measure("line protocol decode + WAL record") {
    let d = try lineBody.withUnsafeBytes { try LineProtocol.decode($0, options: .init(precision: .milliseconds)) }
    return walRecord.encode(d.points).isEmpty ? 0 : d.points.count
}
try measure("remote write unsnappy + decode + WAL record") {
    let raw = try remoteBody.withUnsafeBytes { try Snappy.decompress($0, maxLength: 1 << 22) }
    let d = try raw.withUnsafeBytes { try RemoteWrite.decode($0) }
    return walRecord.encode(d.points).isEmpty ? 0 : d.points.count
}
// A replay: the WAL record of the JSON body's points read back (every rule checked).
let replayRecord = walRecord.encode(try jsonBody.withUnsafeBytes { try IngestDecoder.decode($0).points })
try measure("WAL record replay") {
    try replayRecord.withUnsafeBytes { raw in
        let (r, body) = try WALPointsRecord.decode(raw)
        return try WALPoints.decode(body, receivedAt: r.receivedAt).count
    }
}

// The chunk codec (PlexusChunks) on one series' chunk of 8,192 points at one per second:
// the harness's two-decimal random walk (decimal values, one time delta), the same walk
// with a −0.0 in it (decimal with one exception), and the walk divided by 3 (numbers of
// no decimal form: every value XOR'd, as version 1 wrote all numbers).
let chunkTimes = (0..<Int64(8_192)).map { 1_795_561_200_000_000 + $0 * 1_000_000 }
let walk: [Double] = {
    var v = 55.0
    var state: UInt64 = 42
    return chunkTimes.map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        v += Double(Int64(state >> 33) % 51 - 25) / 100
        return (v * 100).rounded() / 100
    }
}()
// 100 points a round for the bodies above; a chunk is 8,192.
let chunkRounds = max(1, rounds / 80)
for (name, values) in [("decimal", walk), ("exception", [-0.0] + walk.dropFirst()), ("xor", walk.map { $0 / 3 })] {
    let chunk = ChunkCodec.encodeNumeric(timestamps: chunkTimes, values: values)
    print("chunk \(name): \(String(format: "%.3f", Double(chunk.count) / Double(values.count))) bytes/point")
    measure("chunk \(name) encode", rounds: chunkRounds) {
        ChunkCodec.encodeNumeric(timestamps: chunkTimes, values: values).isEmpty ? 0 : values.count
    }
    try measure("chunk \(name) decode", rounds: chunkRounds) {
        var n = 0
        try chunk.withUnsafeBytes { try ChunkCodec.decode($0) { _, _ in n += 1 } }
        return n
    }
}

// Rollup blocks (PlexusChunks): an hour of the walk at one point a second added to one
// block of minute buckets, as a flush adds points, then the block written and read back.
func hourBlock() -> RollupBlock {
    var block = RollupBlock()
    for i in 0..<3_600 { block.add(index: i / 60, value: walk[i], atStart: i % 60 == 0) }
    return block
}
let hour = hourBlock()
print("rollup block: \(String(format: "%.3f", Double(hour.encoded().count) / 3_600)) bytes/point")
measure("rollup block add", rounds: chunkRounds) { hourBlock().isEmpty ? 0 : 3_600 }
try measure("rollup block encode + decode", rounds: chunkRounds) {
    try hour.encoded().withUnsafeBytes { try RollupBlock(decoding: $0) }.isEmpty ? 0 : 3_600
}
