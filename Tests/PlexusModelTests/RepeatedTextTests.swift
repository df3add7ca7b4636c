import Foundation
import Testing

@testable import PlexusModel

/// The decoder shares what a body repeats (metric names, sources, tag objects) between
/// points by their bytes; none of that may change what a body means.
@Suite("Ingest decoder: repeated names and tags")
struct RepeatedTextTests {
    /// A small reproducible generator (SplitMix64), so a failure names its seed.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    // Names of one length that share their first and last eight bytes land in one cache
    // slot; escaped and plain spellings of one name; names valid as a metric but not as a
    // source; control characters; too long.
    static let metrics = [
        "\"temperature\"", "\"temperaturf\"", "\"sensor.accel.aaaa.x\"", "\"sensor.accel.aaab.x\"",
        "\"sensor.accel.aaaa.y\"", "\"t\"", "\"\"", "\"a\\u0062c\"", "\"abc\"", "\"bad\\u0001ctl\"",
        "\"Bad Source\"", "\"sensor-001\"", "\"" + String(repeating: "m", count: 257) + "\"", "7", "null",
    ]
    static let sources = [
        "\"sensor-001\"", "\"sensor-002\"", "\"Bad Source\"", "\"\"", "\"sensor-00\\u0031\"", "\"temperature\"",
        "null", "12",
    ]
    static let tags = [
        #"{"location":"lab-1"}"#, #"{"location":"lab-2"}"#, #"{"location":"lab-1","k":"v"}"#,
        #"{"k":"v","location":"lab-1"}"#, #"{"session_id":"s1","k":"v"}"#, #"{"":"x"}"#, #"{"k":1}"#, "null", "{}",
        #" {"location" : "lab-1"}"#, #"{"location":"lab-1","location":"lab-9"}"#, "[]", #"{"session_id":""}"#,
    ]
    static let values = ["1.5", "\"text\"", "NaN", "null", "true", #"{"x":1}"#, "-0.25"]
    static let sessions = ["\"s2\"", "5", "\"\"", "null"]

    static func pick(_ list: [String], _ rng: inout Seeded) -> String { list[Int(rng.next() % UInt64(list.count))] }

    static func point(_ rng: inout Seeded) -> String {
        var fields = ["\"metric\":" + pick(metrics, &rng), "\"value\":" + pick(values, &rng)]
        if rng.next() % 3 != 0 { fields.append("\"source_id\":" + pick(sources, &rng)) }
        if rng.next() % 4 != 0 { fields.append("\"tags\":" + pick(tags, &rng)) }
        if rng.next() % 5 == 0 { fields.append("\"session_id\":" + pick(sessions, &rng)) }
        if rng.next() % 2 == 0 { fields.append("\"timestamp\":\(1_700_000_000_000 + Int(rng.next() % 1000))") }
        if rng.next() % 7 == 0 { fields.reverse() }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func body(_ points: [String], top: String?) -> String {
        (top.map { "{\"source_id\":\($0),\"points\":[" } ?? "{\"points\":[") + points.joined(separator: ",") + "]}"
    }

    static func outcome(_ json: String, _ options: IngestDecoder.Options) -> Result<[Point], IngestError> {
        Result { () throws(IngestError) -> [Point] in try decode(json, options).points }
    }

    @Test("a body decodes to what its points decode to one by one, whatever it repeats (5,000 seeded bodies)")
    func sameAsAlone() {
        for seed in UInt64(1)...5_000 {
            var rng = Seeded(state: seed)
            let points = (0..<(1 + Int(rng.next() % 12))).map { _ in Self.point(&rng) }
            // Always a top-level source: a point without one is refused after the whole body
            // is read, so the body would name another point than the first refused alone.
            let top = "\"top-src\""
            let options: IngestDecoder.Options =
                rng.next() % 4 == 0 ? .init(forcedSourceID: "dev-1", recordingSessionID: "rec-1") : .init()
            let whole = Self.outcome(Self.body(points, top: top), options)
            let alone = points.map { Self.outcome(Self.body([$0], top: top), options) }
            switch whole {
            case .success(let decoded):
                #expect(decoded.count == points.count, "seed \(seed)")
                for (k, one) in alone.enumerated() {
                    guard case .success(let p) = one, p.count == 1 else {
                        Issue.record("seed \(seed): point \(k) is refused alone but not in the body: \(points[k])")
                        continue
                    }
                    #expect(p[0] == decoded[k], "seed \(seed), point \(k): \(points[k])")
                }
            case .failure(let error):
                // The first point refused alone is the one the body names, with the same reason.
                guard let k = alone.firstIndex(where: { if case .failure = $0 { true } else { false } }),
                    case .failure(let own) = alone[k]
                else {
                    Issue.record("seed \(seed): the body is refused (\(error.message)) but every point alone is accepted")
                    continue
                }
                let expected = own.message.replacingOccurrences(of: "points[0]", with: "points[\(k)]")
                #expect(error.message == expected, "seed \(seed): \(points)")
            }
        }
    }

    static func fourDigits(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    @Test("names that share a cache slot come back as themselves")
    func collidingNames() throws {
        let names = (0..<40).map { "sensor.accel.\(Self.fourDigits($0)).x" }
        let points = names.map { #"{"metric":"\#($0)","value":1}"# }
        let b = try decode(Self.body(points + points.reversed(), top: "\"s\""))
        #expect(b.points.map(\.metric) == names + names.reversed())
    }

    @Test("a name valid as a metric is checked again as a source, and the other way round")
    func rolesAreSeparate() {
        let metricFirst =
            #"{"points":[{"metric":"Bad Source","value":1,"source_id":"ok"},{"metric":"m","value":1,"source_id":"Bad Source"}]}"#
        #expect(decodeError(metricFirst)?.message == "points[1] source_id must match ^[a-z0-9][a-z0-9._-]*$")
        let sourceFirst = #"{"points":[{"metric":"m","value":1,"source_id":"s-1"},{"metric":"s-1","value":1,"source_id":"s-1"}]}"#
        #expect((try? decode(sourceFirst))?.points.map(\.metric) == ["m", "s-1"])
    }

    @Test("a session lifted out of a shared tag object leaves the next point's tags whole")
    func sessionInSharedTags() throws {
        let p = #"{"metric":"m","value":1,"tags":{"session_id":"s1","k":"v"}}"#
        let b = try decode(Self.body([p, p, p], top: "\"src\""))
        for point in b.points {
            #expect(point.sessionID == "s1")
            #expect(point.tags == [Tag("k", "v")])
        }
    }

    @Test("a refused tag object is refused at every copy")
    func refusedTagsAreNotShared() {
        let bad = #"{"metric":"m","value":1,"tags":{"k":1}}"#
        let good = #"{"metric":"m","value":1,"tags":{"k":"1"}}"#
        #expect(decodeError(Self.body([good, bad], top: "\"s\""))?.message == #"points[1].tags["k"] must be a string"#)
        #expect(decodeError(Self.body([bad, good], top: "\"s\""))?.message == #"points[0].tags["k"] must be a string"#)
    }

    @Test("a session_id error is kept when tags follow it")
    func sessionErrorBeforeTags() {
        let p = #"{"metric":"m","value":1,"session_id":5,"tags":{}}"#
        #expect(decodeError(Self.body([p], top: "\"s\""))?.message == "points[0].session_id must be a string")
    }
}

@Suite("JSON strings read eight bytes at a time")
struct WordScanTests {
    static func special(_ b: UInt8) -> Bool { b == 0x22 || b == 0x5C || b < 0x20 }

    @Test("a word flags a special byte exactly when one of its bytes is a quote, a backslash or a control byte, the first one lowest")
    func specialByteTest() {
        var rng = SystemRandomNumberGenerator()
        // Every byte value at every position of an otherwise plain word, then random words.
        for position in 0..<8 {
            for b in 0...255 {
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 8)
                bytes[position] = UInt8(b)
                let w = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
                let flags = JSONCursor.specialBytes(w)
                #expect((flags != 0) == Self.special(UInt8(b)), "byte \(b) at \(position)")
                if flags != 0 { #expect(flags.trailingZeroBitCount >> 3 == position) }
            }
        }
        for _ in 0..<100_000 {
            let w = rng.next() as UInt64
            let bytes = withUnsafeBytes(of: w.littleEndian) { Array($0) }
            let flags = JSONCursor.specialBytes(w)
            #expect((flags != 0) == bytes.contains(where: Self.special))
            // The lowest flagged byte is the first special one.
            if flags != 0 { #expect(flags.trailingZeroBitCount >> 3 == bytes.firstIndex(where: Self.special)) }
        }
    }

    @Test("strings of every length up to 40, ending anywhere in a word, with a special byte anywhere")
    func everyLength() throws {
        for n in 0...40 {
            let plain = String((0..<n).map { Character(UnicodeScalar(UInt8(ascii: "a") + UInt8($0 % 26))) })
            var body = Array("\"\(plain)\"".utf8)
            body.withUnsafeBytes { raw in
                var c = JSONCursor(raw)
                #expect((try? c.readString()) == plain, "length \(n)")
                #expect(c.atEnd)
            }
            // Cut before the closing quote: no string.
            body.removeLast()
            body.withUnsafeBytes { raw in
                var c = JSONCursor(raw)
                #expect((try? c.readString()) == nil, "length \(n) without its quote")
            }
            guard n > 0 else { continue }
            for at in 0..<n {
                var escaped = Array(plain.utf8)
                escaped.replaceSubrange(at..<(at + 1), with: Array("\\n".utf8))
                let text = [UInt8(ascii: "\"")] + escaped + [UInt8(ascii: "\"")]
                text.withUnsafeBytes { raw in
                    var c = JSONCursor(raw)
                    var expected = Array(plain.utf8)
                    expected[at] = 0x0A
                    #expect((try? c.readString()).map { Array($0.utf8) } == expected, "escape at \(at) of \(n)")
                }
                var control = Array("\"\(plain)\"".utf8)
                control[1 + at] = 0x01
                control.withUnsafeBytes { raw in
                    var c = JSONCursor(raw)
                    #expect((try? c.readString()) == nil, "control byte at \(at) of \(n)")
                }
            }
        }
    }
}

@Suite("Point keys matched on their bytes")
struct PointKeyTests {
    @Test("the key constants are the keys' first eight bytes")
    func constants() {
        let expected: [(UInt64, String)] = [
            (IngestDecoder.Keys.tags, "tags"), (IngestDecoder.Keys.value, "value"), (IngestDecoder.Keys.metric, "metric"),
            (IngestDecoder.Keys.timestam, "timestam"), (IngestDecoder.Keys.sourceI, "source_i"),
            (IngestDecoder.Keys.session, "session_"),
        ]
        for (constant, text) in expected {
            let bytes = Array(text.utf8)
            let w = bytes.withUnsafeBufferPointer { RepeatedText.word($0.baseAddress!, bytes.count, readable: bytes.count) }
            #expect(w == constant, "\(text)")
        }
    }

    @Test("keys like the known ones, at the end of the body or escaped, are matched exactly")
    func nearMisses() throws {
        // Known keys escaped, and keys one byte off (other fields are ignored, so the point
        // lacks its metric or value, or keeps them).
        let escaped = try decode(#"{"points":[{"m\u0065tric":"m","valu\u0065":1,"source_\u0069d":"s"}]}"#)
        #expect(escaped.points.first.map { [$0.metric, $0.sourceID ?? ""] } == ["m", "s"])
        for key in ["metrics", "metri", "Metric", "tag", "tagz", "timestamps", "timestamq", "source_ie", "session_ie", "session_i"] {
            let body = #"{"source_id":"s","points":[{"metric":"m","value":1,"\#(key)":"x"}]}"#
            let b = try decode(body)
            #expect(b.points.first?.metric == "m" && b.points.first?.tags == [] && b.points.first?.sessionID == nil, "\(key)")
        }
        // A key at the very end of a (truncated) body is still read safely.
        for cut in ["{\"points\":[{\"tags", "{\"points\":[{\"tags\"", "{\"points\":[{\"tags\":"] {
            #expect(decodeError(cut)?.code == .invalidJSON, "\(cut)")
        }
    }
}

extension PointKeyTests {
    @Test("an unknown key that is not UTF-8 makes the body invalid JSON, as it did when every key became a String (fuzz finding)")
    func unknownKeyInvalidUTF8() {
        var body = Array(#"{"source_id":"s","points":[{"metric":"m","value":1,"se"#.utf8)
        body += [0x8D] + Array(#"x":null}]}"#.utf8)
        let error = body.withUnsafeBytes { raw -> IngestError? in
            do throws(IngestError) {
                _ = try IngestDecoder.decode(raw)
                return nil
            } catch {
                return error
            }
        }
        #expect(error?.code == .invalidJSON)
    }
}
