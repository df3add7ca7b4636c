// libFuzzer target: IngestDecoder.decode on arbitrary bytes (an HTTP body or a telemetry
// frame). Beyond "no crash", for every batch the decoder accepts:
//  * the input is JSON (an independent strict parser agrees, up to NaN/Infinity tokens);
//  * every point obeys the limits: metric, source, session, tags, value sizes, and a
//    timestamp inside Timestamp.validMicros;
//  * every point re-encodes (JSONWriter.point, as dashboards and the SDK send it) to
//    strict JSON that decodes back to the same point.
import FuzzSupport
import PlexusModel

/// A timestamp as wire text that means exactly `us`: integer milliseconds or seconds when
/// they are exact, else milliseconds or seconds with a fraction.
func wireTimestamp(_ us: Int64) -> String {
    if us >= 1_000_000_000_000_000 {
        return us % 1_000 == 0 ? String(us / 1_000) : (Double(us) / 1_000).description
    }
    return us % 1_000_000 == 0 ? String(us / 1_000_000) : (Double(us) / 1_000_000).description
}

func lastIndex(of needle: [UInt8], in hay: [UInt8]) -> Int? {
    guard hay.count >= needle.count else { return nil }
    var k = hay.count - needle.count
    while k >= 0 {
        if hay[k..<(k + needle.count)].elementsEqual(needle) { return k }
        k -= 1
    }
    return nil
}

/// Encodes `p` as a one-point batch the way devices send it, decodes it again and compares.
func checkRoundTrip(_ p: Point) {
    var w = JSONWriter()
    w.raw("{\"source_id\":")
    w.string(p.sourceID ?? "")
    w.raw(",\"points\":[")
    var point = p
    let us = p.timestamp
    point.timestamp = nil
    var body = JSONWriter()
    body.point(point, timestamp: 0)
    // JSONWriter.point always writes a timestamp; put the exact wire form in its place.
    // The last `,"timestamp":0` is the writer's own: an object value comes before it, and
    // tags and session after it are strings.
    var text = body.bytes
    let marker = Array(",\"timestamp\":0".utf8)
    guard let at = lastIndex(of: marker, in: text) else {
        require(false, "JSONWriter.point wrote no timestamp")
        return
    }
    text.replaceSubrange(at..<(at + marker.count), with: us.map { Array((",\"timestamp\":" + wireTimestamp($0)).utf8) } ?? [])
    w.rawBytes(text)
    w.raw("]}")
    let encoded = w.bytes
    switch StrictJSON.check(encoded) {
    case nil: break
    case .nonFinite: Known.finding(Known.nonFiniteTokens, "re-encoded point")
    case .syntax: require(false, "re-encoded point is not JSON: \(w.string.prefix(300).debugDescription)")
    }
    let again: IngestBatch
    do {
        again = try encoded.withUnsafeBytes { try IngestDecoder.decode($0) }
    } catch {
        require(false, "re-encoded point is refused (\(error)): \(w.string.prefix(300).debugDescription)")
        return
    }
    require(again.points.count == 1, "re-encoded batch has \(again.points.count) points")
    var back = again.points[0]
    if let a = us, let b = back.timestamp {
        require(abs(a - b) <= 1, "timestamp \(a) came back as \(b)")
        back.timestamp = a
    }
    require(back == p, "point changed in a round trip: \(p) became \(back)")
}

func fuzzIngest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: size)
    let variants: [IngestDecoder.Options] = [.init(), .init(forcedSourceID: "dev-1", recordingSessionID: "rec-1")]
    for options in variants {
        let batch: IngestBatch
        do {
            batch = try IngestDecoder.decode(bytes, options: options)
        } catch {
            continue
        }
        switch StrictJSON.check(bytes) {
        case nil: break
        case .nonFinite: Known.finding(Known.nonFiniteTokens, "accepted body")
        case .syntax: require(false, "decoder accepted a body that is not JSON")
        }
        require(Frames.type(of: bytes) != nil, "Frames.type(of:) refuses an accepted body")
        require(batch.points.count <= Limits.maxPointsPerRequest, "too many points")
        if let seq = batch.seq { require(abs(seq) < 9_000_000_000_000_000, "seq \(seq)") }
        for p in batch.points {
            PointRules.check(p, forced: options.forcedSourceID, recording: options.recordingSessionID)
        }
        for p in batch.points.prefix(64) { checkRoundTrip(p) }
    }
    return 0
}

runFuzzer(fuzzIngest)
