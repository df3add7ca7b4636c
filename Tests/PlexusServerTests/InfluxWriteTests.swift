import CompressNIO
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PlexusModel
import PlexusServer
import PlexusServerTesting
import Testing

extension TestServer {
    /// A line protocol write to `path` with `headers` (and no `x-api-key` unless given).
    func writeLines(_ path: String, _ text: String, headers: [(String, String)] = []) async throws -> Reply {
        try await request(.POST, path, key: .some(nil), body: Data(text.utf8), headers: headers, contentType: "text/plain; charset=utf-8")
    }

    func token(_ key: String? = nil) -> [(String, String)] { [("authorization", "Token \(key ?? self.key)")] }
}

@Suite("InfluxDB line protocol writes", .timeLimit(.minutes(2)))
struct InfluxWriteTests {
    @Test("v1 /write and v2 /api/v2/write answer 204 and every field reads back as a metric of its host")
    func writes() async throws {
        try await withServer { s in
            var r = try await s.writeLines(
                "/api/v2/write?org=acme&bucket=fleet&precision=ms",
                "motor,host=Rover-7,side=left rpm=1200i,temp=40.5,ok=t,state=\"run\" 1700000000123\n", headers: s.token())
            #expect(r.status == 204)
            #expect(r.body.isEmpty)
            r = try await s.writeLines("/write?db=fleet&precision=s&u=me&p=\(s.key)", "motor,host=rover-7 rpm=1300i 1700000001")
            #expect(r.status == 204)
            let (ts, vs) = try await s.rawValues("rover-7", "motor.rpm")
            #expect(ts == [1_700_000_000_123, 1_700_000_001_000])
            #expect(vs.compactMap { $0 as? Double } == [1200, 1300])
            #expect(try await s.rawValues("rover-7", "motor.temp").values.first as? Double == 40.5)
            #expect(try await s.rawValues("rover-7", "motor.ok").values.first as? Bool == true)
            #expect(try await s.rawValues("rover-7", "motor.state").values.first as? String == "run")
            // The tags are kept: a query by tag finds the point.
            let byTag = try await s.get(
                "/v1/sources/rover-7/metrics/query?metrics=motor.rpm&tag.side=left&start=0&end=99999999999999&interval=raw")
            #expect(((byTag.object["series"] as? [String: Any])?["motor.rpm"] as? [String: Any])?["value"] as? [Double] == [1200])
        }
    }

    @Test("the key as Token, Bearer, basic-auth password, p parameter or x-api-key; 401 and 403 in InfluxDB's shapes")
    func credentials() async throws {
        try await withServer { s in
            let basic = Data("telegraf:\(s.key)".utf8).base64EncodedString()
            let ways: [(String, [(String, String)])] = [
                ("/api/v2/write?bucket=b", s.token()),
                ("/api/v2/write?bucket=b", [("authorization", "Bearer \(s.key)")]),
                ("/write?db=b", [("authorization", "Basic \(basic)")]),
                ("/write?db=b&u=telegraf&p=\(s.key)", []),
                ("/write?db=b", [("x-api-key", s.key)]),
            ]
            for (path, headers) in ways {
                #expect(try await s.writeLines(path, "m,host=a f=1", headers: headers).status == 204, "\(headers)")
            }
            var r = try await s.writeLines("/api/v2/write?bucket=b", "m,host=a f=1")
            #expect(r.status == 401)
            #expect(r.object["code"] as? String == "unauthorized")
            #expect((r.object["message"] as? String)?.isEmpty == false)
            r = try await s.writeLines("/write?db=b&p=plx_00000000000000000000000000000000", "m,host=a f=1")
            #expect(r.status == 401)
            #expect(r.object["error"] as? String == "invalid API key")
            #expect(r.headers["x-influxdb-error"].first == "invalid API key")
            let readOnly = try await s.createKey(scopes: "read")
            r = try await s.writeLines("/api/v2/write?bucket=b", "m,host=a f=1", headers: s.token(readOnly))
            #expect(r.status == 403)
            #expect(r.object["code"] as? String == "forbidden")
            // A cookie is no credential here: these routes take keys only.
            r = try await s.writeLines("/write?db=b", "m,host=a f=1", headers: [("cookie", "plexus_session=x")])
            #expect(r.status == 401)
        }
    }

    @Test("a partial write stores the good lines and answers 400 naming the bad ones")
    func partialWrite() async throws {
        try await withServer { s in
            let body = "m,host=a f=1 1700000000000000000\nm,host=a f=NaN\nm,host=a g=2,h=\"x 1700000000000000000\n"
            var r = try await s.writeLines(
                "/api/v2/write?bucket=b", "m,host=a f=1 1700000000000000000\nnot line protocol\nm,host=a f=2 1700000001000000000\n",
                headers: s.token())
            #expect(r.status == 400)
            #expect(r.object["code"] as? String == "invalid")
            let message = r.object["message"] as? String ?? ""
            #expect(message.contains("line 2"))
            #expect(message.contains("dropped=1"))
            #expect(try await s.rawValues("a", "m.f").values.count == 2)
            r = try await s.writeLines("/write?db=b", body, headers: s.token())
            #expect(r.status == 400)
            #expect((r.object["error"] as? String)?.hasPrefix("partial write") == true)
            // Nothing of a bad line is stored, not even its good fields.
            #expect(try await s.rawValues("a", "m.g").values.isEmpty)
        }
    }

    @Test("gzip bodies; a gzip bomb, a body over 5 MiB and over 10,000 fields get 413")
    func sizes() async throws {
        try await withServer { s in
            let lines = (0..<500).map { "m,host=gz f=\($0) \(1_700_000_000 + $0)" }.joined(separator: "\n")
            var buffer = ByteBuffer(string: lines)
            let gz = try buffer.compress(with: .gzip())
            var r = try await s.request(
                .POST, "/api/v2/write?bucket=b&precision=s", key: .some(nil), body: Data(buffer: gz),
                headers: s.token() + [("content-encoding", "gzip")])
            #expect(r.status == 204)
            #expect(try await s.rawValues("gz", "m.f").values.count == 500)
            var zeros = ByteBuffer(repeating: 0x61, count: 6 << 20)
            let bomb = try zeros.compress(with: .gzip())
            r = try await s.request(
                .POST, "/write?db=b", key: .some(nil), body: Data(buffer: bomb), headers: s.token() + [("content-encoding", "gzip")])
            #expect(r.status == 413)
            #expect(r.object["error"] != nil)
            r = try await s.writeLines("/api/v2/write?bucket=b", String(repeating: "m,host=a f=1\n", count: 10_001), headers: s.token())
            #expect(r.status == 413)
            #expect(r.object["code"] as? String == "request too large")
            r = try await s.request(
                .POST, "/write?db=b", key: .some(nil), body: Data("x".utf8), headers: s.token() + [("content-encoding", "br")])
            #expect(r.status == 415)
        }
    }

    @Test("hostile parameters: unknown precision, a db with no letter or digit, empty and overflowing bodies")
    func parameters() async throws {
        try await withServer { s in
            var r = try await s.writeLines("/api/v2/write?bucket=b&precision=h", "m,host=a f=1", headers: s.token())
            #expect(r.status == 400)
            #expect(r.object["code"] as? String == "invalid")
            r = try await s.writeLines("/write?db=b&precision=fortnight", "m,host=a f=1", headers: s.token())
            #expect(r.status == 400)
            // Without a host tag the database names the source, when it is a valid source id.
            #expect(try await s.writeLines("/write?db=Lab-Rig", "m f=5", headers: s.token()).status == 204)
            #expect(try await s.rawValues("lab-rig", "m.f").values.first as? Double == 5)
            r = try await s.writeLines("/write?db=--%3A%3A", "m f=5", headers: s.token())
            #expect(r.status == 400)
            #expect((r.object["error"] as? String)?.contains("no source") == true)
            #expect(try await s.writeLines("/api/v2/write?bucket=b", "", headers: s.token()).status == 204)
            let overflow = "m,host=a f=1 \(Int64.max)\nm,host=a f=1 99999999999999999999999\nm,host=a f=1e400\n"
            r = try await s.writeLines("/api/v2/write?bucket=b&precision=s", overflow, headers: s.token())
            #expect(r.status == 400)
            #expect((r.object["message"] as? String)?.contains("dropped=3") == true)
            // The server is still well.
            #expect(try await s.get("/health").status == 200)
        }
    }

    @Test("another organisation's key writes into its own organisation only")
    func tenants() async throws {
        try await withServer { s in
            _ = try await s.cli(["orgs", "create", "--data-dir", s.dataDir, "other"])
            let other = try await s.createKey(scopes: "write,read", org: "other")
            #expect(
                try await s.writeLines("/api/v2/write?org=default&bucket=b", "m,host=shared f=2", headers: s.token(other)).status == 204)
            #expect(try await s.writeLines("/api/v2/write?bucket=b", "m,host=shared f=1", headers: s.token()).status == 204)
            #expect(try await s.rawValues("shared", "m.f").values.compactMap { $0 as? Double } == [1])
            #expect(try await s.rawValues("shared", "m.f", key: other).values.compactMap { $0 as? Double } == [2])
        }
    }

    @Test("the mapping flags: source tags and metric names")
    func mapping() async throws {
        try await withServer(.set(\.lineProtocol.sourceTags, ["device"]), .set(\.lineProtocol.metricNames, .field)) { s in
            #expect(
                try await s.writeLines("/api/v2/write?bucket=b", "imu,device=arm-2,host=ignored ax=0.5", headers: s.token()).status == 204)
            #expect(try await s.get("/v1/sources/arm-2/metrics").json as? [String] == ["ax"])
            let byTag = try await s.get(
                "/v1/sources/arm-2/metrics/query?metrics=ax&tag.host=ignored&start=0&end=99999999999999&interval=raw")
            #expect(((byTag.object["series"] as? [String: Any])?["ax"] as? [String: Any])?["value"] as? [Double] == [0.5])
        }
    }

    @Test("over the request rate: 429 with Retry-After in InfluxDB's shape, as on /ingest")
    func rateLimit() async throws {
        try await withServer(.set(\.sourceRequestsPerSecond, 1)) { s in
            var statuses: [Int] = []
            var limited: TestServer.Reply?
            for _ in 0..<6 {
                let r = try await s.writeLines("/api/v2/write?bucket=b", "m,host=busy f=1", headers: s.token())
                statuses.append(r.status)
                if r.status == 429 { limited = r }
            }
            #expect(statuses.first == 204)
            let r = try #require(limited)
            #expect(r.object["code"] as? String == "too many requests")
            #expect(r.headers["retry-after"].first != nil)
        }
    }

    @Test("a 204 is durable: kill -9 right after the answers loses nothing and the replay stores nothing twice")
    func killNine() async throws {
        let server = try await TestServer.start()
        defer { server.cleanUp() }
        let requests = 20
        try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<requests {
                group.addTask {
                    let lines = (0..<100).map {
                        "k9,host=lp-k9,n=\($0 % 5) f=\($0)i,s=\"\($0)\" \((1_700_000_000 + i * 100 + $0) * 1_000_000_000 + 123_456)"
                    }
                    return try await server.writeLines("/api/v2/write?bucket=b", lines.joined(separator: "\n"), headers: server.token())
                        .status
                }
            }
            for try await status in group { #expect(status == 204) }
        }
        await server.kill9()
        try await server.launch()
        let (ts, values) = try await server.rawValues("lp-k9", "k9.f")
        #expect(values.count == requests * 100)
        #expect(Set(ts).count == requests * 100)
        #expect(ts.first == 1_700_000_000_000.123)
        #expect(try await server.rawValues("lp-k9", "k9.s").values.count == requests * 100)
    }

    @Test("CREATE DATABASE (Telegraf's first request) is a no-op success; any other /query is a 400")
    func createDatabase() async throws {
        try await withServer { s in
            var r = try await s.request(.POST, "/query?q=CREATE+DATABASE+%22telegraf%22", key: .some(nil), headers: s.token())
            #expect(r.status == 200)
            #expect(r.json as? [String: [[String: Int]]] == ["results": [["statement_id": 0]]])
            // Telegraf sends it as a form body.
            r = try await s.request(
                .POST, "/query", key: .some(nil), body: Data("q=CREATE%20DATABASE%20a%3B%20create%20database%20b".utf8), headers: s.token(),
                contentType: "application/x-www-form-urlencoded")
            #expect(r.json as? [String: [[String: Int]]] == ["results": [["statement_id": 0], ["statement_id": 1]]])
            for q in ["SELECT+*+FROM+cpu", "CREATE+DATABASE+a%3BDROP+DATABASE+a", "", "%00"] {
                r = try await s.request(.GET, "/query?q=\(q)", key: .some(nil), headers: s.token())
                #expect(r.status == 400, "\(q)")
                #expect((r.object["error"] as? String)?.contains("CREATE DATABASE") == true)
            }
            r = try await s.request(.POST, "/query?q=CREATE+DATABASE+x", key: .some(nil))
            #expect(r.status == 401)
            // Over the form's 64 KiB: 413 naming that limit (not what was left after the first chunk).
            r = try await s.request(
                .POST, "/query", key: .some(nil), body: Data(("q=" + String(repeating: "a", count: 200_000)).utf8), headers: s.token(),
                contentType: "application/x-www-form-urlencoded")
            #expect(r.status == 413)
            #expect(r.text.contains("65536"), "\(r.text)")
        }
    }

    @Test("GET and HEAD /ping answer 204 with X-Influxdb-Version")
    func ping() async throws {
        try await withServer { s in
            for method in [HTTPMethod.GET, .HEAD] {
                let r = try await s.request(method, "/ping", key: .some(nil))
                #expect(r.status == 204)
                #expect(r.headers["x-influxdb-version"].first?.isEmpty == false)
            }
        }
    }
}
