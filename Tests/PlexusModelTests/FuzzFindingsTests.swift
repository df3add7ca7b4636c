import Testing

@testable import PlexusModel

/// Regressions for what the fuzzers (Fuzz/, docs/fuzzing.md) found, each with the input
/// they found, reduced.
@Suite("Fuzz findings")
struct FuzzFindingsTests {
    /// Bytes with invalid UTF-8 or an invalid escape inside a nested object's key.
    static let badNestedKeys: [[UInt8]] = [
        Array(#"{"#.utf8) + [0x22, 0x8D, 0x22] + Array(#":1.2,"y":3.4}"#.utf8),  // found by `ingest`
        Array(#"{"\q":1}"#.utf8),
        Array(#"{"a":{"\ud800":1}}"#.utf8),
    ]

    @Test("ingest refuses an object value whose nested keys are not valid JSON strings (found by the ingest fuzzer)")
    func nestedKeysInValues() throws {
        for key in Self.badNestedKeys {
            let body = Array(#"{"source_id":"rig-1","points":[{"metric":"accel","value":"#.utf8) + key + Array("}]}".utf8)
            let result = body.withUnsafeBytes { raw in
                Result { () throws(IngestError) -> IngestBatch in try IngestDecoder.decode(raw) }
            }
            // Before the fix these were accepted and stored as text that is not JSON (or,
            // for invalid UTF-8, silently altered).
            guard case .failure(let error) = result else {
                Issue.record("accepted \(String(decoding: key, as: UTF8.self).debugDescription)")
                continue
            }
            #expect(error.code == .invalidPoint)  // ".value is not valid JSON …", naming the point
        }
        // Valid escapes and UTF-8 in nested keys stay accepted, verbatim.
        let ok = #"{"source_id":"rig-1","points":[{"metric":"m","value":{"\u00e9\n":1,"ü":{"\"":2}}}]}"#
        #expect(try decode(ok).points.first?.value == .object(JSONText(unchecked: #"{"\u00e9\n":1,"ü":{"\"":2}}"#)))
    }

    @Test("a key given twice with values of two types: the last is the field in every view of Frames.fields (found by the frames fuzzer)")
    func duplicateKeysInFrames() throws {
        let frame = Array(#"{"type":"start_stream","source_mes{age":"","source_mes{age":220}"#.utf8)
        let f = try #require(frame.withUnsafeBytes { Frames.fields($0) })
        #expect(f.raw["source_mes{age"] == "220" && f.numbers["source_mes{age"] == 220)
        #expect(f.strings["source_mes{age"] == nil)
        let back = try #require(Array(#"{"type":"x","k":1,"k":true,"k":"s"}"#.utf8).withUnsafeBytes { Frames.fields($0) })
        #expect(back.strings["k"] == "s" && back.raw["k"] == #""s""# && back.numbers["k"] == nil && back.bools["k"] == nil)
        // type(of:) agrees: the last `type` is the frame's.
        let types = Array(#"{"type":"ping","type":1}"#.utf8)
        #expect(types.withUnsafeBytes { Frames.type(of: $0) } == "")
        #expect(types.withUnsafeBytes { Frames.fields($0) }?.strings["type"] == nil)
    }

    @Test("Frames.fields and type(of:) refuse a frame whose nested keys are not valid JSON strings (found by the frames fuzzer)")
    func nestedKeysInFrames() {
        for key in Self.badNestedKeys {
            let frame = Array(#"{"type":"configure","source_id":"my-device-001","config":"#.utf8) + key + [UInt8(ascii: "}")]
            frame.withUnsafeBytes { raw in
                #expect(Frames.fields(raw) == nil)
                #expect(Frames.type(of: raw) == nil)
            }
        }
    }
}
