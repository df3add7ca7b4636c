// libFuzzer target: LineProtocol.decode on arbitrary bytes (a /write or /api/v2/write body),
// with the options taken from the input's first byte. Beyond "no crash":
//  * every accepted point obeys IngestDecoder's contract (PointRules: limits, valid source,
//    finite numbers, timestamps inside Timestamp.validMicros, sorted unique tags);
//  * accepted and rejected lines together never exceed the lines in the input;
//  * what the write-ahead log keeps for them (a version-2 record) decodes into exactly
//    the same points, and so does the JSON a set-aside batch is written as
//    (IngestEncoder.body, read by IngestDecoder): a replay rebuilds what was acknowledged;
//  * a rejection's reason never repeats the input (it names no value).
import FuzzSupport
import PlexusModel

let precisions = LineProtocol.Precision.allCases

func fuzzLineProtocol(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size > 0, let data else { return 0 }
    let first = data[0]
    let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(data + 1), count: size - 1)
    var options = LineProtocol.Options(precision: precisions[Int(first) % precisions.count])
    if first & 0x08 != 0 { options.mapping.metricNames = .field }
    if first & 0x10 != 0 { options.defaultSource = "fallback" }
    if first & 0x20 != 0 { options.mapping.sourceTags = ["device", "host"] }
    let decoded: LineProtocol.Decoded
    do {
        decoded = try LineProtocol.decode(bytes, options: options)
    } catch {
        require(error.code == .tooManyPoints, "decode threw \(error)")
        return 0
    }
    let newlines = bytes.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
    require(decoded.rejected.count <= newlines + 1, "\(decoded.rejected.count) rejections for \(newlines + 1) lines")
    require(decoded.rejected.listed.count <= min(decoded.rejected.count, Rejections.maxListed), "rejection list")
    for p in decoded.points { PointRules.check(p, forced: nil, recording: nil) }
    for r in decoded.rejected.listed { require(r.position >= 1 && r.position <= newlines + 1, "rejection on line \(r.position)") }
    checkWALRoundTrip(decoded.points)
    return 0
}

runFuzzer(fuzzLineProtocol)
