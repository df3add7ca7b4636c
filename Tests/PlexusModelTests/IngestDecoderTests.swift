import Testing

@testable import PlexusModel

func decode(_ json: String, _ options: IngestDecoder.Options = .init()) throws(IngestError) -> IngestBatch {
    let bytes = Array(json.utf8)
    let result = bytes.withUnsafeBytes { raw in
        Result { () throws(IngestError) -> IngestBatch in try IngestDecoder.decode(raw, options: options) }
    }
    return try result.get()
}

func decodeError(_ json: String) -> IngestError? {
    do {
        _ = try decode(json)
        return nil
    } catch {
        return error
    }
}

@Suite("Ingest decoder")
struct IngestDecoderTests {
    @Test("the spec's example body")
    func specExample() throws {
        let b = try decode(
            """
            {"points":[{"metric":"temperature","value":72.5,"timestamp":1699900000.123,"source_id":"sensor-001",
              "tags":{"location":"lab"},"session_id":"test-001"}]}
            """)
        #expect(b.points.count == 1)
        let p = b.points[0]
        #expect(p.metric == "temperature")
        #expect(p.value == .number(72.5))
        #expect(p.timestamp == 1_699_900_000_123_000)
        #expect(p.sourceID == "sensor-001")
        #expect(p.tags == [Tag("location", "lab")])
        #expect(p.sessionID == "test-001")
        #expect(b.singleSourceID == "sensor-001")
    }

    @Test("all five value types keep their type and text")
    func valueTypes() throws {
        let b = try decode(
            """
            {"source_id":"d","points":[{"metric":"n","value":-40},{"metric":"s","value":"running"},
            {"metric":"b","value":false},{"metric":"o","value":{"x": 1.2,"y":3.4,"z":5.6}},{"metric":"a","value":[1.0,2.0,3.0,4.0]}]}
            """)
        #expect(
            b.points.map(\.value) == [
                .number(-40), .string("running"), .bool(false),
                .object(JSONText(unchecked: #"{"x": 1.2,"y":3.4,"z":5.6}"#)), .array(JSONText(unchecked: "[1.0,2.0,3.0,4.0]")),
            ])
        #expect(b.points.allSatisfy { $0.sourceID == "d" })
        #expect(b.points[3].value.numericFields?.map(\.0) == ["x", "y", "z"])
        #expect(b.points[4].value.numericFields == nil)
    }

    @Test(
        "timestamps: seconds keep sub-millisecond digits, >= 1e12 is ms, omitted is nil",
        arguments: [
            ("1699900000", Int64(1_699_900_000_000_000)),
            ("1699900000.123456", Int64(1_699_900_000_123_456)),
            ("1699900000123", Int64(1_699_900_000_123_000)),
            ("1699900000123.5", Int64(1_699_900_000_123_500)),
            ("1e12", Int64(1_000_000_000_000_000)),
            ("253402300799", Int64(253_402_300_799_000_000)),
            ("0.5", Int64(500_000)),
        ])
    func timestamps(_ wire: String, _ micros: Int64) throws {
        let b = try decode(#"{"points":[{"metric":"m","value":1,"source_id":"s","timestamp":\#(wire)}]}"#)
        #expect(b.points[0].timestamp == micros)
    }

    @Test func omittedAndNullTimestamp() throws {
        let b = try decode(
            #"{"points":[{"metric":"m","value":1,"source_id":"s"},{"metric":"m","value":1,"source_id":"s","timestamp":null}]}"#)
        #expect(b.points.map(\.timestamp) == [nil, nil])
    }

    @Test(
        "every validation rule names the point",
        arguments: [
            (#"{"points":[{"metric":"m","value":NaN,"source_id":"s"}]}"#, "points[0].value must be finite"),
            (
                #"{"points":[{"metric":"m","value":1,"source_id":"s"},{"metric":"m","value":-Infinity,"source_id":"s"}]}"#,
                "points[1].value must be finite"
            ),
            (#"{"points":[{"metric":"m","value":1e400,"source_id":"s"}]}"#, "points[0].value must be finite"),
            (#"{"points":[null]}"#, "points[0] is null"),
            (
                #"{"points":[{"metric":"m","value":1}]}"#,
                "points[0] missing source_id (set top-level source_id or per-point source_id)"
            ),
            (#"{"points":[{"metric":"m","value":1,"source_id":"Bad"}]}"#, "points[0] source_id must match ^[a-z0-9][a-z0-9._-]*$"),
            (#"{"points":[{"metric":"m","value":1,"source_id":"-x"}]}"#, "points[0] source_id must match ^[a-z0-9][a-z0-9._-]*$"),
            (#"{"points":[{"metric":"","value":1,"source_id":"s"}]}"#, "points[0].metric invalid"),
            (#"{"points":[{"metric":7,"value":1,"source_id":"s"}]}"#, "points[0].metric invalid"),
            (#"{"points":[{"metric":"m","source_id":"s"}]}"#, "points[0].value is required"),
            (#"{"points":[{"metric":"m","value":null,"source_id":"s"}]}"#, "points[0].value cannot be null"),
            (#"{"points":[{"metric":"m","value":1,"source_id":"s","timestamp":"now"}]}"#, "points[0].timestamp must be a number"),
            (#"{"points":[{"metric":"m","value":1,"source_id":"s","tags":[]}]}"#, "points[0].tags must be an object"),
            (#"{"points":[{"metric":"m","value":1,"source_id":"s","tags":{"k":1}}]}"#, #"points[0].tags["k"] must be a string"#),
            (#"{"points":"x"}"#, "invalid JSON body"),
            (#"{"points":[1]}"#, "points[0] must be an object"),
            (#"{"points":[{"metric":"m","value":1,"source_id":"s"}"#, "invalid JSON body"),
            (#"{"source_id":"s"}"#, "'points' array is required"),
            ("[]", "invalid JSON body"),
            ("", "invalid JSON body"),
            (#"{"points":[]} x"#, "invalid JSON body"),
        ])
    func validation(_ json: String, _ message: String) {
        #expect(decodeError(json)?.message == message)
    }

    @Test func limits() {
        let long = String(repeating: "a", count: 257)
        #expect(decodeError(#"{"points":[{"metric":"\#(long)","value":1,"source_id":"s"}]}"#)?.message == "points[0].metric invalid")
        #expect(
            decodeError(#"{"points":[{"metric":"m","value":1,"source_id":"\#(long)"}]}"#)?.message
                == "points[0] source_id exceeds max length (256)")
        let tags = (0..<17).map { #""k\#($0)":"v""# }.joined(separator: ",")
        #expect(
            decodeError(#"{"points":[{"metric":"m","value":1,"source_id":"s","tags":{\#(tags)}}]}"#)?.message
                == "points[0].tags exceeds max entries (16)")
        #expect(
            decodeError(#"{"points":[{"metric":"m","value":1,"source_id":"s","tags":{"k":"\#(long)"}}]}"#)?.message
                == #"points[0].tags["k"] value too long"#)
        let ok256 = String(repeating: "b", count: 256)
        #expect(decodeError(#"{"points":[{"metric":"\#(ok256)","value":1,"source_id":"\#(ok256)"}]}"#) == nil)
    }

    @Test("more than 10,000 points is refused with the count")
    func tooManyPoints() {
        let one = #"{"metric":"m","value":1}"#
        let body = #"{"source_id":"s","points":["# + Array(repeating: one, count: 10_001).joined(separator: ",") + "]}"
        let e = decodeError(body)
        #expect(e?.code == .tooManyPoints)
        #expect(e?.message == "too many points: 10001 (max 10000)")
        let ok = #"{"source_id":"s","points":["# + Array(repeating: one, count: 10_000).joined(separator: ",") + "]}"
        #expect(decodeError(ok) == nil)
    }

    @Test("a 10,000-sample waveform fits")
    func waveform() throws {
        let samples = (0..<10_000).map { Double($0) * 0.001 }
        guard case .array(let text) = PlexusValue.waveform(samples) else {
            Issue.record("not an array")
            return
        }
        let b = try decode(#"{"points":[{"metric":"w","value":\#(text.text),"source_id":"s"}]}"#)
        #expect(b.points[0].value == .array(text))
    }

    @Test("per-point source beats top-level; a forced source beats both; a recording takes untagged points")
    func sources() throws {
        let body =
            #"{"source_id":"top","session_id":"s1","points":[{"metric":"m","value":1},{"metric":"m","value":1,"source_id":"own","session_id":"s2"}]}"#
        let b = try decode(body)
        #expect(b.points.map(\.sourceID) == ["top", "own"])
        #expect(b.points.map(\.sessionID) == ["s1", "s2"])
        #expect(b.singleSourceID == nil)
        let f = try decode(body, .init(forcedSourceID: "dev", recordingSessionID: "rec"))
        #expect(f.points.map(\.sourceID) == ["dev", "dev"])
        #expect(f.points.map(\.sessionID) == ["s1", "s2"])  // sessions the sender named win
        let untagged = try decode(
            #"{"points":[{"metric":"m","value":1},{"metric":"m","value":1,"session_id":"own"}]}"#,
            .init(forcedSourceID: "dev", recordingSessionID: "rec"))
        #expect(untagged.points.map(\.sessionID) == ["rec", "own"])
    }

    @Test("session_id inside tags becomes the point's session")
    func sessionInTags() throws {
        let b = try decode(#"{"points":[{"metric":"m","value":1,"source_id":"s","tags":{"session_id":"x","a":"b"}}]}"#)
        #expect(b.points[0].sessionID == "x")
        #expect(b.points[0].tags == [Tag("a", "b")])
    }

    @Test("strings: escapes, unicode, surrogate pairs; invalid UTF-8 refused")
    func strings() throws {
        let b = try decode(#"{"points":[{"metric":"t\u00e9mp\/","value":"\ud83d\ude80 \"go\" \\ \/\n","source_id":"s"}]}"#)
        #expect(b.points[0].metric == "témp/")
        #expect(b.points[0].value == .string("🚀 \"go\" \\ /\n"))
        let bad: [UInt8] = Array(#"{"points":[{"metric":""#.utf8) + [0xFF, 0xFE] + Array(#"","value":1,"source_id":"s"}]}"#.utf8)
        let e = bad.withUnsafeBytes { raw -> IngestError? in
            do throws(IngestError) {
                _ = try IngestDecoder.decode(raw)
                return nil
            } catch { return error }
        }
        #expect(e?.code == .invalidJSON)
    }

    @Test("UTF-8 is checked as String(validating:) does: overlong forms, surrogates, cut sequences and stray bytes refused")
    func utf8() {
        let samples: [[UInt8]] = [
            [], Array("plain".utf8), Array("témp 🚀 日本".utf8), [0x00], [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xE2, 0x82],
            [0xF4, 0x90, 0x80, 0x80], [0x80], Array("ok".utf8) + [0xEF, 0xBF, 0xBD], Array("a".utf8) + [0xFE],
        ]
        for bytes in samples {
            let ours = bytes.withUnsafeBytes { String(utf8: $0) }
            let standard = bytes.withUnsafeBufferPointer { String(validating: $0, as: UTF8.self) }
            #expect(ours == standard, "\(bytes)")
        }
    }

    @Test("unknown fields are ignored; class never changes the stored type")
    func unknownFields() throws {
        let b = try decode(
            #"{"type":"telemetry","seq":7,"x":{"y":[1,{}]},"points":[{"metric":"m","class":"metric","value":"idle","source_id":"s","meta":null}]}"#
        )
        #expect(b.points[0].value == .string("idle"))
        #expect(b.seq == 7)
    }

    @Test("numbers parse exactly like Swift's Double(String)")
    func numbers() throws {
        var rng = SystemRandomNumberGenerator()
        var texts = [
            "0", "-0", "1", "-1", "0.1", "3.14159", "1e-7", "1E+3", "123456789012345678901234567890", "4.9e-324",
            "1.7976931348623157e308", "0.30000000000000004", "9007199254740993", "72.50", "-40.000001",
        ]
        for _ in 0..<500 {
            let d = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &rng))
            if d.isFinite { texts.append("\(d)") }
            texts.append(String(format2: Double.random(in: -1e6...1e6, using: &rng)))
        }
        for t in texts {
            let b = try decode(#"{"points":[{"metric":"m","value":\#(t),"source_id":"s"}]}"#)
            #expect(b.points[0].value == .number(Double(t)!), "\(t)")
        }
    }
}

extension String {
    /// A decimal with two fractional digits, like the random-walk values devices send.
    init(format2 d: Double) {
        let cents = (d * 100).rounded()
        self = "\(Int64(cents) / 100).\(String(abs(Int64(cents) % 100)).leftPad(2))"
        if cents < 0 && Int64(cents) / 100 == 0 { self = "-" + self }
    }
    func leftPad(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}

@Suite("Ingest decoder: tag edge cases")
struct TagEdgeTests {
    @Test func sessionInTagsDoesNotCountAndMustNotBeEmpty() throws {
        let sixteen = (0..<16).map { #""k\#($0)":"v""# }.joined(separator: ",")
        let b = try decode(#"{"points":[{"metric":"m","value":1,"source_id":"s","tags":{\#(sixteen),"session_id":"r"}}]}"#)
        #expect(b.points[0].tags.count == 16)
        #expect(b.points[0].sessionID == "r")
        #expect(
            decodeError(#"{"points":[{"metric":"m","value":1,"source_id":"s","tags":{"session_id":""}}]}"#)?.message
                == #"points[0].tags["session_id"] must not be empty"#)
        #expect(
            decodeError(#"{"points":[{"metric":"m","value":1,"source_id":"s","tags":{"":"v"}}]}"#)?.message
                == "points[0].tags key must not be empty")
    }
}

@Suite("Ingest decoder: WebSocket frames")
struct WebSocketFrameDecodeTests {
    @Test("a point's own source_id is ignored (not validated) when the connection names the source")
    func sourceIgnored() throws {
        let b = try decode(
            #"{"type":"telemetry","points":[{"metric":"m","value":1,"source_id":"NOT VALID"}]}"#,
            .init(forcedSourceID: "dev"))
        #expect(b.points[0].sourceID == "dev")
    }
}
