// libFuzzer target: IngestDecoder.decode on arbitrary bytes (an HTTP body or a telemetry
// frame). Beyond "no crash", for every batch the decoder accepts:
//  * the input is JSON (an independent strict parser agrees, up to NaN/Infinity tokens);
//  * every point obeys the limits: metric, source, session, tags, value sizes, and a
//    timestamp inside Timestamp.validMicros;
//  * every point re-encodes (JSONWriter.point, as dashboards and the SDK send it) to
//    strict JSON that decodes back to the same point;
//  * the points (of one source) re-encoded into one body, twice over, decode back to
//    themselves: sharing what a body repeats changes nothing.
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

/// `p` as a point object the way devices send it, its timestamp in the exact wire form
/// (none when it has none).
func pointText(_ p: Point) -> [UInt8]? {
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
        return nil
    }
    text.replaceSubrange(at..<(at + marker.count), with: us.map { Array((",\"timestamp\":" + wireTimestamp($0)).utf8) } ?? [])
    return text
}

/// A batch of `points` (one source) as devices send it.
func batchText(source: String?, _ points: [[UInt8]]) -> [UInt8] {
    var w = JSONWriter()
    w.raw("{\"source_id\":")
    w.string(source ?? "")
    w.raw(",\"points\":[")
    for (k, p) in points.enumerated() {
        if k > 0 { w.raw(",") }
        w.rawBytes(p)
    }
    w.raw("]}")
    return w.bytes
}

/// Decodes `encoded`, or records why it was refused.
func decodeBack(_ encoded: [UInt8], _ what: String) -> IngestBatch? {
    switch StrictJSON.check(encoded) {
    case nil: break
    case .nonFinite: Known.finding(Known.nonFiniteTokens, what)
    case .syntax: require(false, "\(what) is not JSON: \(String(decoding: encoded.prefix(300), as: UTF8.self).debugDescription)")
    }
    do {
        return try encoded.withUnsafeBytes { try IngestDecoder.decode($0) }
    } catch {
        require(false, "\(what) is refused (\(error)): \(String(decoding: encoded.prefix(300), as: UTF8.self).debugDescription)")
        return nil
    }
}

/// `back` equals `p`, timestamps within what the wire's double can hold: a microsecond,
/// or two units in the last place past 2^53 µs (the year 2255), where a double's steps are
/// wider than a microsecond.
func requireSame(_ back: Point, _ p: Point, _ what: String) {
    var back = back
    if let a = p.timestamp, let b = back.timestamp {
        let tolerance = max(1, Int64(2 * Double(a.magnitude).ulp))
        require(abs(a - b) <= tolerance, "\(what): timestamp \(a) came back as \(b)")
        back.timestamp = a
    }
    require(back == p, "\(what): \(p) became \(back)")
}

/// Encodes `p` as a one-point batch the way devices send it, decodes it again and compares.
func checkRoundTrip(_ p: Point) {
    guard let text = pointText(p), let again = decodeBack(batchText(source: p.sourceID, [text]), "re-encoded point") else { return }
    require(again.points.count == 1, "re-encoded batch has \(again.points.count) points")
    if let back = again.points.first { requireSame(back, p, "point changed in a round trip") }
}

/// The points of one source, re-encoded into one body twice over, decode to themselves:
/// the decoder's sharing of repeated names and tag objects (RepeatedText) changes nothing.
func checkTogether(_ points: [Point]) {
    guard points.count > 1, let source = points.first?.sourceID, points.allSatisfy({ $0.sourceID == source }) else { return }
    let texts = points.compactMap(pointText)
    guard texts.count == points.count, let again = decodeBack(batchText(source: source, texts + texts), "re-encoded batch")
    else { return }
    require(again.points.count == 2 * points.count, "re-encoded batch has \(again.points.count) points")
    for (k, back) in again.points.enumerated() where k < 2 * points.count {
        requireSame(back, points[k % points.count], "point \(k) of a re-encoded batch")
    }
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
        checkTogether(Array(batch.points.prefix(64)))
    }
    return 0
}

runFuzzer(fuzzIngest)
