import CompressNIO
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PlexusServerTesting
import Testing

@Suite("HTTP ingest", .timeLimit(.minutes(2)))
struct IngestTests {
    @Test("the spec's body is accepted on /ingest and /api/ingest, and reads back once (the same point sent twice)")
    func specBody() async throws {
        try await withServer { s in
            for path in ["/ingest", "/api/ingest"] {
                let r = try await s.post(
                    path,
                    """
                    {"points":[{"metric":"temperature","value":72.5,"timestamp":1699900000.123,"source_id":"sensor-001",
                    "tags":{"location":"lab"},"session_id":"test-001"}]}
                    """)
                #expect(r.status == 200)
                #expect(r.object["success"] as? Bool == true)
                #expect(r.object["count"] as? Int == 1)
                #expect(r.object["source_id"] as? String == "sensor-001")
            }
            let (ts, vs) = try await s.rawValues("sensor-001", "temperature")
            #expect(ts == [1_699_900_000_123])
            #expect(vs.compactMap { $0 as? Double } == [72.5])
        }
    }

    @Test("every value type round-trips, including a 10,000-sample waveform and vector fields")
    func valueTypes() async throws {
        try await withServer { s in
            let wave = "[" + (0..<10_000).map { String(Double($0) / 7) }.joined(separator: ",") + "]"
            let r = try await s.ingest(
                """
                {"source_id":"vt","points":[
                {"metric":"n","value":-40,"timestamp":1700000000},{"metric":"s","value":"error","timestamp":1700000000},
                {"metric":"b","value":true,"timestamp":1700000000},
                {"metric":"accel","value":{"x":1.2,"y":3.4,"z":5.6},"timestamp":1700000000},
                {"metric":"wave","value":\(wave),"timestamp":1700000000}]}
                """)
            #expect(r.status == 200)
            #expect(try await s.rawValues("vt", "n").values.first as? Double == -40)
            #expect(try await s.rawValues("vt", "s").values.first as? String == "error")
            #expect(try await s.rawValues("vt", "b").values.first as? Bool == true)
            #expect(try await s.rawValues("vt", "accel").values.first as? [String: Double] == ["x": 1.2, "y": 3.4, "z": 5.6])
            #expect(try await s.rawValues("vt", "accel.y").values.first as? Double == 3.4)
            let w = try await s.rawValues("vt", "wave").values.first as? [Double]
            #expect(w?.count == 10_000)
            #expect(w?[7] == 1.0)
            let logs = try await s.get("/v1/sources/vt/logs?start=0&end=99999999999999").json as? [[String: Any]]
            #expect(logs?.map { $0["metric"] as? String } == ["accel", "b", "s", "wave"])
        }
    }

    @Test("timestamps: float seconds keep sub-millisecond precision, >= 1e12 is ms, omitted is receive time")
    func timestamps() async throws {
        try await withServer { s in
            let before = nowMillis()
            let r = try await s.ingest(
                """
                {"source_id":"ts","points":[{"metric":"sec","value":1,"timestamp":1699900000.123456},
                {"metric":"ms","value":1,"timestamp":1699900000123},{"metric":"none","value":1}]}
                """)
            let after = nowMillis()
            #expect(r.status == 200)
            #expect(try await s.rawValues("ts", "sec").ts == [1_699_900_000_123.456])
            #expect(try await s.rawValues("ts", "ms").ts == [1_699_900_000_123])
            let none = try #require(try await s.rawValues("ts", "none").ts.first)
            #expect(none >= before - 1 && none <= after + 1)
        }
    }

    @Test("bad input: a clear error, the stable code, and nothing stored")
    func errors() async throws {
        try await withServer { s in
            var r = try await s.ingest(
                #"{"points":[{"metric":"ok","value":1,"source_id":"e"},{"metric":"x","value":NaN,"source_id":"e"}]}"#)
            #expect(r.status == 400)
            #expect(r.object["error"] as? String == "points[1].value must be finite")
            #expect(r.object["code"] as? String == "INVALID_POINT")
            #expect(r.headers["content-type"].first == "application/json")
            r = try await s.ingest("{not json")
            #expect((r.status, r.object["code"] as? String) == (400, "INVALID_JSON"))
            let many =
                #"{"source_id":"e","points":["# + Array(repeating: #"{"metric":"m","value":1}"#, count: 10_001).joined(separator: ",")
                + "]}"
            r = try await s.ingest(many)
            #expect((r.status, r.object["code"] as? String) == (400, "TOO_MANY_POINTS"))
            #expect(r.object["error"] as? String == "too many points: 10001 (max 10000)")
            r = try await s.ingest(#"{"points":[]}"#)
            #expect(r.status == 200)
            #expect(r.object["count"] as? Int == 0)
            // Nothing from the rejected requests was stored.
            #expect(try await s.rawValues("e", "ok").values.isEmpty)
            #expect(try await s.get("/v1/sources/e").status == 404)
        }
    }

    @Test("body limits: 413 over 5 MiB raw or decompressed; gzip accepted; not-gzip refused")
    func limitsAndGzip() async throws {
        try await withServer { s in
            let big = #"{"source_id":"g","points":[{"metric":"m","value":""# + String(repeating: "a", count: 5 * 1024 * 1024) + #""}]}"#
            var r = try await s.ingest(big)
            #expect(r.status == 413)
            #expect(r.object["code"] as? String == "PAYLOAD_TOO_LARGE")
            #expect(r.object["error"] as? String == "payload too large (max 5242880 bytes)")
            let body = Data(#"{"source_id":"g","points":[{"metric":"m","value":3.5,"timestamp":1700000000}]}"#.utf8)
            r = try await s.request(.POST, "/ingest", body: try gzip(body), headers: [("content-encoding", "GZIP")])
            #expect(r.status == 200)
            #expect(try await s.rawValues("g", "m").values.first as? Double == 3.5)
            // A bomb: 40 MiB of JSON whitespace that compresses to ~40 KB.
            let bomb = Data(#"{"source_id":"g","points":[]"#.utf8) + Data(repeating: 0x20, count: 40 << 20) + Data("}".utf8)
            let compressed = try gzip(bomb)
            #expect(compressed.count < 200_000)
            r = try await s.request(.POST, "/ingest", body: compressed, headers: [("content-encoding", "gzip")])
            #expect(r.status == 413)
            #expect(r.object["code"] as? String == "PAYLOAD_TOO_LARGE")
            #expect(r.object["error"] as? String == "payload too large (max 5242880 bytes decompressed)")
            r = try await s.request(.POST, "/ingest", body: body, headers: [("content-encoding", "gzip")])
            #expect((r.status, r.object["code"] as? String) == (400, "INVALID_ENCODING"))
            #expect(r.object["error"] as? String == "invalid gzip body")
        }
    }

    @Test("a 200 is durable: kill -9 right after the answers loses nothing")
    func killNine() async throws {
        let server = try await TestServer.start()
        defer { server.cleanUp() }
        let requests = 40
        try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<requests {
                group.addTask {
                    let pts = (0..<100).map { #"{"metric":"m\#($0 % 5)","value":\#($0),"timestamp":\#(1_700_000_000 + i * 100 + $0)}"# }
                    let r = try await server.ingest(#"{"source_id":"k9","points":[\#(pts.joined(separator: ","))]}"#)
                    return r.status
                }
            }
            for try await status in group { #expect(status == 200) }
        }
        await server.kill9()
        try await server.launch()
        let q = try await server.get("/v1/sources/k9/metrics/query?start=0&end=99999999999999&interval=1d")
        let counts = (q.object["series"] as? [String: [String: Any]])?.values.flatMap { ($0["count"] as? [Int]) ?? [] } ?? []
        #expect(counts.reduce(0, +) == requests * 100)
    }
}

func gzip(_ data: Data) throws -> Data {
    var buffer = ByteBuffer(data: data)
    let out = try buffer.compress(with: .gzip())
    return Data(buffer: out)
}
