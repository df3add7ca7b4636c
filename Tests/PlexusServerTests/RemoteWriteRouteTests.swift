import Foundation
import NIOHTTP1
import PlexusModel
import PlexusServer
import PlexusServerTesting
import Testing

extension TestServer {
    /// A remote-write request as Prometheus sends it (snappy, protobuf, a bearer key).
    func remoteWrite(
        _ series: [RemoteWrite.Series], key: String? = nil, encoding: String = "snappy", body: [UInt8]? = nil
    ) async throws -> Reply {
        let payload = body ?? Snappy.literalBlock(RemoteWrite.encode(series))
        return try await request(
            .POST, "/api/v1/write", key: .some(nil), body: Data(payload),
            headers: [
                ("authorization", "Bearer \(key ?? self.key)"), ("content-encoding", encoding),
                ("x-prometheus-remote-write-version", "0.1.0"),
            ],
            contentType: "application/x-protobuf")
    }
}

func series(_ name: String, instance: String = "node-1:9100", labels: [(String, String)] = [], _ samples: [(Double, Int64)])
    -> RemoteWrite.Series
{
    RemoteWrite.Series(
        labels: [("__name__", name), ("instance", instance)] + labels.map { (name: $0.0, value: $0.1) },
        samples: samples.map { (value: $0.0, timestampMs: $0.1) })
}

@Suite("Prometheus remote write route", .timeLimit(.minutes(2)))
struct RemoteWriteRouteTests {
    @Test("samples are stored under the instance as source, labels as tags, and read back")
    func writes() async throws {
        try await withServer { s in
            let r = try await s.remoteWrite([
                series("node_load1", labels: [("job", "node")], [(0.5, 1_700_000_000_000), (0.75, 1_700_000_015_000)]),
                series("up", labels: [("job", "node")], [(1, 1_700_000_000_000), (.nan, 1_700_000_015_000)]),
            ])
            #expect(r.status == 204)
            let (ts, values) = try await s.rawValues("node-1-9100", "node_load1")
            #expect(ts == [1_700_000_000_000, 1_700_000_015_000])
            #expect(values.compactMap { $0 as? Double } == [0.5, 0.75])
            // The NaN (a staleness marker, say) is skipped, not stored and not an error.
            #expect(try await s.rawValues("node-1-9100", "up").values.compactMap { $0 as? Double } == [1])
            let byTag = try await s.get(
                "/v1/sources/node-1-9100/metrics/query?metrics=up&tag.job=node&start=0&end=99999999999999&interval=raw")
            #expect(((byTag.object["series"] as? [String: Any])?["up"] as? [String: Any])?["value"] as? [Double] == [1])
        }
    }

    @Test("hostile bodies: not snappy, not protobuf, a snappy bomb, no encoding, over 10,000 samples")
    func hostile() async throws {
        try await withServer { s in
            var r = try await s.remoteWrite([], body: [0xFF, 0xFF])
            #expect(r.status == 400)
            #expect(r.object["code"] as? String == "INVALID_ENCODING")
            r = try await s.remoteWrite([], body: Snappy.literalBlock(Array("{\"points\":[]}".utf8)))
            #expect(r.status == 400)
            #expect(r.object["code"] as? String == "INVALID_PROTOBUF")
            // Declares 1 GiB uncompressed: refused before anything is allocated.
            r = try await s.remoteWrite([], body: [0x80, 0x80, 0x80, 0x80, 0x04, 0x00])
            #expect(r.status == 413)
            #expect(
                r.object["error"] as? String == "body exceeds \(Limits.maxBodyBytes) bytes" || r.text.contains("\(Limits.maxBodyBytes)"))
            r = try await s.remoteWrite([series("m", [(1, 1_700_000_000_000)])], encoding: "identity")
            #expect(r.status == 415)
            r = try await s.remoteWrite([series("m", (0...10_000).map { (Double($0), 1_700_000_000_000 + Int64($0)) })])
            #expect(r.status == 413)
            #expect(try await s.get("/v1/sources/node-1-9100/metrics").json as? [String] == [])
            #expect(try await s.get("/health").status == 200)
        }
    }

    @Test("a bad series is rejected with 400 naming it; the good ones are stored")
    func partial() async throws {
        try await withServer { s in
            let r = try await s.remoteWrite([
                series("good", [(1, 1_700_000_000_000)]),
                RemoteWrite.Series(labels: [("instance", "x")], samples: [(1, 1_700_000_000_000)]),
                series("late", [(1, -5)]),
            ])
            #expect(r.status == 400)
            let message = r.object["error"] as? String ?? ""
            #expect(message.contains("series 1: no __name__"))
            #expect(message.contains("series 2: sample timestamp"))
            #expect(try await s.rawValues("node-1-9100", "good").values.count == 1)
        }
    }

    @Test("credentials: bearer or basic auth with the write scope; another organisation writes into its own")
    func credentials() async throws {
        try await withServer { s in
            var r = try await s.remoteWrite([series("m", [(1, 1_700_000_000_000)])], key: "plx_00000000000000000000000000000000")
            #expect(r.status == 401)
            r = try await s.remoteWrite([series("m", [(1, 1_700_000_000_000)])], key: try await s.createKey(scopes: "read"))
            #expect(r.status == 403)
            let basic = Data("prometheus:\(s.key)".utf8).base64EncodedString()
            r = try await s.request(
                .POST, "/api/v1/write", key: .some(nil),
                body: Data(Snappy.literalBlock(RemoteWrite.encode([series("m", [(2, 1_700_000_000_000)])]))),
                headers: [("authorization", "Basic \(basic)"), ("content-encoding", "snappy")])
            #expect(r.status == 204)
            _ = try await s.cli(["orgs", "create", "--data-dir", s.dataDir, "other"])
            let other = try await s.createKey(scopes: "write,read", org: "other")
            #expect(try await s.remoteWrite([series("m", [(3, 1_700_000_000_001)])], key: other).status == 204)
            #expect(try await s.rawValues("node-1-9100", "m").values.compactMap { $0 as? Double } == [2])
            #expect(try await s.rawValues("node-1-9100", "m", key: other).values.compactMap { $0 as? Double } == [3])
        }
    }

    @Test("the source label is configurable")
    func mapping() async throws {
        try await withServer(.set(\.remoteWrite.sourceLabels, ["device", "instance"])) { s in
            let r = try await s.remoteWrite([series("temp", labels: [("device", "Arm-2")], [(21.5, 1_700_000_000_000)])])
            #expect(r.status == 204)
            #expect(try await s.rawValues("arm-2", "temp").values.first as? Double == 21.5)
        }
    }
}
