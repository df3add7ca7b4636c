// libFuzzer target: Prometheus remote write's decoders on arbitrary bytes. The first byte
// picks the mapping; the rest is used twice:
//  * as a snappy block (Snappy.decompress, capped at 1 MiB): no crash, and what it returns
//    has the length its header declared;
//  * as an uncompressed protobuf WriteRequest (RemoteWrite.decode): every point obeys
//    IngestDecoder's contract (PointRules), rejected series never outnumber the series, and
//    the write-ahead log's record of them (and a set-aside batch's JSON) decodes back to
//    exactly the same points;
// and Snappy.literalBlock of the bytes decompresses back to them.
import FuzzSupport
import PlexusModel

func fuzzRemoteWrite(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size > 0, let data else { return 0 }
    let first = data[0]
    let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(data + 1), count: size - 1)
    if let out = try? Snappy.decompress(bytes, maxLength: 1 << 20) {
        var declared = 0
        var shift = 0
        for b in bytes {
            declared |= Int(b & 0x7F) << shift
            shift += 7
            if b & 0x80 == 0 { break }
        }
        require(out.count == declared, "decompressed \(out.count) bytes, header said \(declared)")
    }
    let block = Snappy.literalBlock(Array(bytes))
    let back = block.withUnsafeBytes { try? Snappy.decompress($0, maxLength: 1 << 20) }
    require(back == Array(bytes), "a literal block did not decompress to its bytes")

    let mapping = RemoteWrite.Mapping(sourceLabels: first & 1 == 0 ? ["instance"] : ["job", "instance"])
    let decoded: RemoteWrite.Decoded
    do {
        decoded = try RemoteWrite.decode(bytes, mapping: mapping)
    } catch {
        require(error.code == .tooManyPoints || error.code == .invalidProtobuf, "decode threw \(error)")
        return 0
    }
    require(decoded.rejected.listed.count <= min(decoded.rejected.count, Rejections.maxListed), "rejection list")
    for p in decoded.points {
        PointRules.check(p, forced: nil, recording: nil)
        require(p.timestamp.map { $0 % 1_000 == 0 } ?? false, "a sample time is not whole milliseconds")
    }
    checkWALRoundTrip(decoded.points)
    return 0
}

runFuzzer(fuzzRemoteWrite)
