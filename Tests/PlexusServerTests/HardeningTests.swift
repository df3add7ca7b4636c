import Foundation
import NIOCore
import NIOHTTP1
import PlexusCore
import PlexusServer
import PlexusServerTesting
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What a stranger with a key (or without one) must not be able to do: crash the server,
/// poison the store, read what is not theirs, or hold its sockets (hardening review).
@Suite("Hardening: hostile requests", .timeLimit(.minutes(3)))
struct HardeningTests {
    /// Every reply body must be JSON that a strict parser accepts (no NaN, no bad escapes).
    func strictJSON(_ r: TestServer.Reply) -> Bool {
        (try? JSONSerialization.jsonObject(with: r.body, options: [.fragmentsAllowed])) != nil
    }

    @Test("times outside 1970-9999 are refused at every edge with a 400, and the server stays up")
    func timeRanges() async throws {
        try await withServer { s in
            for ts in ["-1", "-9000000000000000", "9000000000000000", "1e300", "253402300800", "253402300800000"] {
                let r = try await s.ingest(#"{"source_id":"t","points":[{"metric":"m","value":1,"timestamp":\#(ts)}]}"#)
                #expect(r.status == 400, "timestamp \(ts)")
                #expect(r.text.contains("1970-01-01 to 9999-12-31"), "timestamp \(ts)")
            }
            // The edges themselves are accepted.
            #expect(try await s.ingest(#"{"source_id":"t","points":[{"metric":"m","value":1,"timestamp":0}]}"#).status == 200)
            #expect(try await s.ingest(#"{"source_id":"t","points":[{"metric":"m","value":2,"timestamp":253402300799998}]}"#).status == 200)
            // Query parameters: the review's crash, and its cousins.
            for q in [
                "start=-9000000000000000&end=9000000000000000", "start=0&end=1e300", "start=-1&end=5",
                "start=0001-01-01T00:00:00Z&end=2024-01-01T00:00:00Z", "last=9999999999999d", "last=-1h", "last=106751992d",
                "last=3000000d",
            ] {
                let r = try await s.get("/v1/sources/t/metrics/query?\(q)")
                #expect(r.status == 400, "\(q)")
                #expect(strictJSON(r))
            }
            // The whole valid range is one query, auto-downsampled by day, and finds both points.
            var r = try await s.get("/v1/sources/t/metrics/query?start=0&end=253402300799999&interval=raw")
            #expect(r.status == 200 && ((r.object["series"] as? [String: Any])?["m"] as? [String: Any])?["value"] as? [Double] == [1, 2])
            r = try await s.get("/v1/sources/t/metrics/query?start=0&end=253402300799999")
            #expect(r.status == 200 && r.object["interval"] as? String == "1d")
            #expect(try await s.get("/v1/sources/t/logs?tail=1").status == 200)
            // A `last` that reaches before 1970 starts at 1970.
            r = try await s.get("/v1/sources/t/metrics/query?last=100000d&interval=raw")
            #expect(r.status == 200 && ((r.object["series"] as? [String: Any])?["m"] as? [String: Any])?["value"] as? [Double] == [1])
            // Session bodies.
            r = try await s.post("/api/sessions", #"{"name":"x","source_id":"t","started_at":-5}"#)
            #expect(r.status == 400)
            r = try await s.post("/api/sessions", #"{"name":"x","source_id":"t","started_at":"+275760-09-13T00:00:00Z"}"#)
            #expect(r.status == 400)
            r = try await s.post("/api/sessions", #"{"session_id":"s1","name":"x","source_id":"t","started_at":1700000000}"#)
            #expect(r.status == 201)
            r = try await s.request(.PATCH, "/api/sessions/s1", body: Data(#"{"ended_at":1e300}"#.utf8))
            #expect(r.status == 400)
            // Still alive, and the session's data and export answer.
            #expect(try await s.get("/health", key: .some(nil)).status == 200)
            #expect(try await s.get("/api/sessions/s1/data").status == 200)
        }
    }

    @Test("a PATCH whose ended_at alone precedes the start is a 400; the spec's PATCH that completes the session still works")
    func sessionEndBeforeStart() async throws {
        try await withServer { s in
            #expect(try await s.post("/api/sessions", #"{"session_id":"a","name":"a","source_id":"x"}"#).status == 201)
            var r = try await s.request(.PATCH, "/api/sessions/a", body: Data(#"{"ended_at":"2024-01-15T10:30:00Z"}"#.utf8))
            #expect(r.status == 400)
            r = try await s.get("/api/sessions/a")
            #expect(r.object["status"] as? String == "active" && r.object["ended_at"] is NSNull)
            r = try await s.request(
                .PATCH, "/api/sessions/a", body: Data(#"{"status":"completed","ended_at":"2024-01-15T10:30:00Z"}"#.utf8))
            #expect(r.status == 200 && r.object["started_at"] as? String == "2024-01-15T10:30:00.000Z")
        }
    }

    @Test("huge and opposite numbers in one minute leave every organisation's queries and flushes working")
    func rollupPoison() async throws {
        try await withServer { s in
            // Each at its own second of one minute: the same point twice would be stored once.
            for (k, v) in ["1.7e308", "1.7e308", "-1.7e308"].enumerated() {
                #expect(
                    try await s.ingest(
                        #"{"source_id":"p","points":[{"metric":"x","value":\#(v),"timestamp":\#(1_700_000_000 + k)}]}"#
                    ).status == 200)
                // A read forces a flush of what came before, so each lands in its own upsert.
                #expect(try await s.get("/v1/sources/p/metrics/query?start=1699999000&end=1700001000&interval=1m").status == 200)
            }
            let r = try await s.get("/v1/sources/p/metrics/query?start=1699999000&end=1700001000&interval=1m")
            #expect(r.status == 200 && strictJSON(r))
            let series = (r.object["series"] as? [String: Any])?["x"] as? [String: Any]
            #expect(series?["count"] as? [Int] == [3])
            #expect((series?["avg"] as? [Double])?.first?.isFinite == true)
            // Everyone else is unaffected.
            #expect(try await s.ingest(#"{"source_id":"q","points":[{"metric":"y","value":1}]}"#).status == 200)
            #expect(try await s.rawValues("q", "y").values.count == 1)
        }
    }

    @Test("NaN/Infinity nested in values, bad escapes and control characters in names are refused; every reply parses")
    func invalidJSONNeverStored() async throws {
        try await withServer { s in
            let bad = [
                #"{"metric":"o","value":{"a":NaN}}"#,
                #"{"metric":"o","value":[1,Infinity]}"#,
                #"{"metric":"o","value":{"a":[-Infinity]}}"#,
                #"{"metric":"o","value":{"a\q":1}}"#,
                #"{"metric":"o","value":["\ud800"]}"#,
                #"{"metric":"a\u0000b","value":1}"#,
                #"{"metric":"line\nbreak","value":1}"#,
                #"{"metric":"m","value":1,"tags":{"k":"v\u0000"}}"#,
                #"{"metric":"m","value":1,"tags":{"k\u001f":"v"}}"#,
                #"{"metric":"m","value":1,"session_id":"s\u0007"}"#,
            ]
            for p in bad {
                let r = try await s.ingest(#"{"source_id":"j","points":[\#(p)]}"#)
                #expect(r.status == 400, "\(p)")
                #expect(strictJSON(r))
            }
            #expect(try await s.ingest(#"{"source_id":"j","session_id":"a\u0000","points":[{"metric":"m","value":1}]}"#).status == 400)
            // Nothing of it was stored; "a" (what SQLite would have cut "a\0b" to) does not exist.
            #expect(try await s.get("/v1/sources/j/metrics").text == "[]")
            // Valid nested values and escapes are fine and read back as valid JSON.
            #expect(
                try await s.ingest(#"{"source_id":"j","points":[{"metric":"o","value":{"a":[1.5e300,-0.0,"\u00e9\n"]}}]}"#).status == 200)
            for path in [
                "/v1/sources/j/metrics/query?interval=raw&start=0&end=99999999999999", "/v1/sources/j/metrics/latest",
                "/v1/sources/j/logs?tail=5", "/v1/sources",
            ] {
                let r = try await s.get(path)
                #expect(r.status == 200 && strictJSON(r), "\(path)")
            }
        }
    }

    @Test("query strings: + is a space, repeated metrics= and %-encoded tag keys select any name ingest accepts")
    func queryStrings() async throws {
        try await withServer { s in
            #expect(
                try await s.ingest(
                    """
                    {"source_id":"q","points":[{"metric":"a,b","value":1,"timestamp":1700000000},{"metric":"c d","value":2,"timestamp":1700000000},
                    {"metric":"e","value":3,"timestamp":1700000000,"tags":{"my key,=x":"v w"}},{"metric":"e","value":4,"timestamp":1700000001}]}
                    """
                ).status == 200)
            func metrics(_ q: String) async throws -> [String: Any] {
                let r = try await s.get("/v1/sources/q/metrics/query?interval=raw&start=0&end=99999999999999&" + q)
                #expect(r.status == 200, "\(q)")
                return r.object["series"] as? [String: Any] ?? [:]
            }
            #expect(try await metrics("metrics=a%2Cb&metrics=e").keys.sorted() == ["a,b", "e"])
            #expect(try await metrics("metric=a%2Cb").keys.sorted() == ["a,b"])
            #expect(try await metrics("metrics=c+d").keys.sorted() == ["c d"])
            #expect(try await metrics("metrics=c%20d,e").keys.sorted() == ["c d", "e"])
            let tagged = try await metrics("metrics=e&tag.my+key%2C%3Dx=v+w")
            #expect((tagged["e"] as? [String: Any])?["value"] as? [Double] == [3])
        }
    }

    @Test("CSV export escapes text a spreadsheet would run as a formula")
    func csvFormulas() async throws {
        try await withServer { s in
            #expect(
                try await s.ingest(
                    """
                    {"source_id":"x","session_id":"csv","points":[{"metric":"note","value":"=HYPERLINK(\\"http://evil\\")","timestamp":1700000000},
                    {"metric":"n","value":-5,"timestamp":1700000000},{"metric":"at","value":"@SUM(A1)","timestamp":1700000001}]}
                    """
                ).status == 200)
            let csv = try await s.get("/api/sessions/csv/export?format=csv").text
            #expect(csv.contains(#""'=HYPERLINK(""http://evil"")""#))
            #expect(csv.contains(",'@SUM(A1),"))
            #expect(csv.contains(",n,-5,"))  // numbers stay numbers
        }
    }

    @Test("/health says nothing about tenants; /metrics is off unless a token or --public-metrics")
    func healthAndMetrics() async throws {
        try await withServerProcess(environment: ["PLEXUS_METRICS_TOKEN": ""]) { s in
            let r = try await s.get("/health", key: .some(nil))
            #expect(r.status == 200 && Set(r.object.keys) == ["status", "store", "uptime_s", "version", "retention"])
            #expect(try await s.get("/metrics", key: .some(nil)).status == 404)
            #expect(try await s.get("/metrics").status == 404)  // an API key is not enough
        }
        try await withServerProcess(environment: ["PLEXUS_METRICS_TOKEN": "s3cret-token"]) { s in
            #expect(try await s.get("/metrics", key: .some(nil)).status == 401)
            #expect(try await s.request(.GET, "/metrics", key: .some(nil), headers: [("authorization", "Bearer wrong")]).status == 401)
            let r = try await s.request(.GET, "/metrics", key: .some(nil), headers: [("authorization", "Bearer s3cret-token")])
            #expect(r.status == 200 && r.text.contains("plexus_"))
        }
    }

    @Test("roles: device keys cannot list people, viewers cannot list keys, members cannot revoke an owner's admin key")
    func roleChecks() async throws {
        try await withServer { s in
            var owner = Browser(s)
            #expect(try await owner.auth("/api/auth/signup", #"{"email":"o@example.com","password":"owner password"}"#).status == 201)
            var r = try await owner.call(.POST, "/api/keys", #"{"name":"admin","scopes":["admin","write","read"]}"#)
            let adminKeyID = try #require(r.object["id"] as? String)
            r = try await owner.call(.POST, "/api/keys", #"{"name":"device","scopes":["write","read"]}"#)
            let deviceKey = try #require(r.object["key"] as? String)
            let deviceKeyID = try #require(r.object["id"] as? String)
            #expect(try await s.get("/api/members", key: deviceKey).status == 403)
            #expect(try await s.get("/api/keys", key: deviceKey).status == 403)

            func join(_ role: String, _ email: String) async throws -> Browser {
                let t = try await owner.call(.POST, "/api/invites", #"{"role":"\#(role)"}"#).object["token"] as? String ?? ""
                var b = Browser(s)
                #expect(
                    try await b.auth("/api/auth/signup", #"{"email":"\#(email)","password":"a long password","invite":"\#(t)"}"#).status
                        == 201)
                return b
            }
            let viewer = try await join("viewer", "v@example.com")
            let member = try await join("member", "m@example.com")
            #expect(try await viewer.call(.GET, "/api/keys").status == 403)
            #expect(try await viewer.call(.GET, "/api/members").status == 200)
            #expect(try await member.call(.GET, "/api/keys").status == 200)
            #expect(try await member.call(.DELETE, "/api/keys/\(adminKeyID)").status == 403)
            #expect(try await member.call(.DELETE, "/api/keys/\(deviceKeyID)").status == 204)
            #expect(try await owner.call(.DELETE, "/api/keys/\(adminKeyID)").status == 204)
        }
    }

    @Test("sign-up is by invitation after the first person; --open-signup opens it; users create adds people")
    func inviteOnly() async throws {
        try await withServer { s in
            var first = Browser(s)
            var r = try await first.auth("/api/auth/signup", #"{"email":"first@example.com","password":"first password"}"#)
            #expect(r.status == 201 && (r.object["user"] as? [String: Any])?["role"] as? String == "owner")
            var second = Browser(s)
            r = try await second.auth("/api/auth/signup", #"{"email":"second@example.com","password":"second password"}"#)
            #expect(r.status == 403 && r.text.contains("invitation"))
            r = try await s.post("/api/auth/cli/signup", #"{"email":"third@example.com","password":"third password"}"#, key: .some(nil))
            #expect(r.status == 403)
            // An administrator adds someone from the command line, beside the running server.
            let out = try await s.cli(
                ["users", "create", "--data-dir", s.dataDir, "--email", "Op@Example.com", "--role", "member"],
                environment: ["PLEXUS_USER_PASSWORD": "operator password"])
            #expect(out.contains("op@example.com (member of default)"))
            var op = Browser(s)
            r = try await op.auth("/api/auth/signin", #"{"email":"op@example.com","password":"operator password"}"#)
            #expect(r.status == 200 && (r.object["user"] as? [String: Any])?["role"] as? String == "member")
        }
        try await withServer(.set(\.openSignup, true)) { s in
            var a = Browser(s)
            var b = Browser(s)
            #expect(try await a.auth("/api/auth/signup", #"{"email":"a@example.com","password":"a password 1"}"#).status == 201)
            let r = try await b.auth("/api/auth/signup", #"{"email":"b@example.com","password":"b password 1"}"#)
            #expect(r.status == 201 && (r.object["org"] as? [String: Any])?["name"] as? String == "b")
        }
    }

    @Test("sign-in refuses non-JSON bodies and other sites' origins (login CSRF)")
    func loginCSRF() async throws {
        try await withServer { s in
            var b = Browser(s)
            #expect(try await b.auth("/api/auth/signup", #"{"email":"c@example.com","password":"c password 1"}"#).status == 201)
            let body = Data(#"{"email":"c@example.com","password":"c password 1"}"#.utf8)
            var r = try await s.rawPost("/api/auth/signin", body: body, contentType: "text/plain")
            #expect(r.status == 415)
            r = try await s.rawPost("/api/auth/signin", body: body, contentType: "application/x-www-form-urlencoded")
            #expect(r.status == 415)
            r = try await s.request(.POST, "/api/auth/signin", key: .some(nil), body: body, headers: [("origin", "http://evil.example")])
            #expect(r.status == 403 && r.object["code"] as? String == "CROSS_ORIGIN")
            let own = s.url.replacingOccurrences(of: "/$", with: "", options: .regularExpression)
            r = try await s.request(.POST, "/api/auth/signin", key: .some(nil), body: body, headers: [("origin", own)])
            #expect(r.status == 200)
        }
    }

    @Test("too many series, sources or metrics for an organisation get CARDINALITY_LIMIT and store nothing")
    func cardinality() async throws {
        try await withServerProcess(environment: [
            "PLEXUS_MAX_SERIES_PER_ORG": "6", "PLEXUS_MAX_SOURCES_PER_ORG": "2",
            "PLEXUS_MAX_METRICS_PER_SOURCE": "3",
        ]) { s in
            #expect(
                try await s.ingest(
                    #"{"source_id":"a","points":[{"metric":"m1","value":1},{"metric":"m2","value":1},{"metric":"m3","value":1}]}"#
                ).status == 200)
            var r = try await s.ingest(#"{"source_id":"a","points":[{"metric":"m4","value":1}]}"#)
            #expect(r.status == 400 && r.object["code"] as? String == "CARDINALITY_LIMIT")
            #expect(try await s.ingest(#"{"source_id":"b","points":[{"metric":"m1","value":1}]}"#).status == 200)
            r = try await s.ingest(#"{"source_id":"c","points":[{"metric":"m1","value":1}]}"#)
            #expect(r.status == 400 && r.text.contains("sources"))
            // Tags make series too; the batch is all or nothing.
            #expect(
                try await s.ingest(
                    #"{"source_id":"b","points":[{"metric":"m1","value":1,"tags":{"k":"1"}},{"metric":"m1","value":2,"tags":{"k":"2"}}]}"#
                ).status == 200)
            r = try await s.ingest(#"{"source_id":"b","points":[{"metric":"m2","value":1},{"metric":"m1","value":2,"tags":{"k":"3"}}]}"#)
            #expect(r.status == 400 && r.text.contains("series"))
            #expect(try await s.get("/v1/sources/b/metrics").text == #"["m1"]"#)
            // Writing to series that exist goes on.
            #expect(try await s.ingest(#"{"source_id":"a","points":[{"metric":"m1","value":5}]}"#).status == 200)
        }
    }

    @Test("limit and mapping flags refuse NaN, negative, huge, empty and unknown values before the server starts")
    func badLimitFlags() async throws {
        let s = try await TestServer.start()
        defer {
            s.cleanUp()
            try? FileManager.default.removeItem(atPath: s.dataDir + "-other")
        }
        for args in [
            ["--idle-timeout", "nan"], ["--idle-timeout", "-1"], ["--body-timeout", "1e300"], ["--body-timeout", "0"],
            ["--max-series-per-org", "-5"], ["--max-connections-per-client", "many"], ["--org-rate-limit", "-1"],
            // The mappings of the other protocols: empty, only commas, a name over 256 bytes, an unknown form.
            ["--influx-source-tags", ""], ["--influx-source-tags", " , ,"], ["--influx-source-tags", String(repeating: "k", count: 300)],
            ["--influx-metric-names", "measurement"], ["--prometheus-source-labels", ","],
            // Retention: under an hour, negative, zero-length, no unit, overflowing, rollups shorter than points.
            ["--retention", "5m"], ["--retention", "-1d"], ["--retention", ""], ["--retention", "30"],
            ["--retention", "99999999999999d"], ["--rollup-retention", "nan"], ["--retention", "2d", "--rollup-retention", "1d"],
        ] {
            await #expect(throws: TestServer.CLIFailure.self, "\(args)") {
                try await s.cli(["serve", "--port", "0", "--data-dir", s.dataDir + "-other"] + args)
            }
        }
        await #expect(throws: TestServer.CLIFailure.self) {
            try await s.cli(["serve", "--port", "0", "--data-dir", s.dataDir + "-other"], environment: ["PLEXUS_IDLE_TIMEOUT": "inf"])
        }
        for env in [
            ["PLEXUS_INFLUX_METRIC_NAMES": "Field"], ["PLEXUS_PROMETHEUS_SOURCE_LABELS": ""], ["PLEXUS_RETENTION": "1e3d"],
            ["PLEXUS_RETENTION": "forever", "PLEXUS_ROLLUP_RETENTION": "90d"],
        ] {
            await #expect(throws: TestServer.CLIFailure.self, "\(env)") {
                try await s.cli(["serve", "--port", "0", "--data-dir", s.dataDir + "-other"], environment: env)
            }
        }
        // Refused before anything was opened: no data directory was made.
        #expect(!FileManager.default.fileExists(atPath: s.dataDir + "-other"))
    }

    @Test("a device frame that would pass a cardinality limit gets CARDINALITY_LIMIT with its seq; the socket stays open")
    func cardinalityOnSockets() async throws {
        try await withServer(.set(\.quotas.maxMetricsPerSource, 2)) { (s: TestServer) async throws in
            let (dev, auth) = await s.device("rig", extra: ["acks": true])
            #expect(auth?["type"] as? String == "authenticated")
            dev.send(#"{"type":"telemetry","seq":1,"points":[{"metric":"a","value":1},{"metric":"b","value":2}]}"#)
            #expect(await dev.next(type: "telemetry_ack")?["seq"] as? Int == 1)
            dev.send(#"{"type":"telemetry","seq":2,"points":[{"metric":"c","value":3}]}"#)
            let e = await dev.next(type: "error")
            #expect(e?["code"] as? String == "CARDINALITY_LIMIT" && e?["seq"] as? Int == 2)
            dev.send(#"{"type":"telemetry","seq":3,"points":[{"metric":"a","value":4}]}"#)
            #expect(await dev.next(type: "telemetry_ack")?["seq"] as? Int == 3)
            #expect(try await s.get("/v1/sources/rig/metrics").text == #"["a","b"]"#)
        }
    }

    @Test("idle sockets, half headers and slow bodies are closed; one client's connections are capped")
    func connectionDeadlines() async throws {
        try await withServerProcess(environment: [
            "PLEXUS_IDLE_TIMEOUT": "5", "PLEXUS_BODY_TIMEOUT": "1",
            "PLEXUS_MAX_CONNECTIONS_PER_CLIENT": "4",
        ]) { s in
            // Six idle sockets from one address: at most four are kept (the test's own HTTP
            // client may hold some places too), the rest are closed at once.
            let sockets = try (0..<6).map { _ in try RawSocket(port: s.port) }
            let closedAtOnce = sockets.filter { $0.waitForClose(seconds: 0.3) }
            #expect(closedAtOnce.count >= 2)
            // The kept ones send nothing and are closed after the idle timeout.
            for sock in sockets where !closedAtOnce.contains(where: { $0 === sock }) { #expect(sock.waitForClose(seconds: 15)) }
            // Half a request head, then nothing: closed too.
            let half = try RawSocket(port: s.port)
            try half.send("GET /health HTTP/1.1\r\nHost: x\r\n")
            #expect(half.waitForClose(seconds: 15))
            // A body that stops arriving: closed after the body timeout, long before the idle one.
            let slow = try RawSocket(port: s.port)
            try slow.send("POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{\"po")
            let start = ContinuousClock.now
            #expect(slow.waitForClose(seconds: 15))
            #expect(start.duration(to: .now) < .seconds(4))
            // The server serves everyone else throughout.
            #expect(try await s.get("/health", key: .some(nil)).status == 200)
        }
    }
}

/// A plain TCP client for what HTTP clients will not do (idle, half a request).
final class RawSocket: @unchecked Sendable {
    let fd: Int32

    init(port: Int) throws { fd = try Self.connectLoopback(port: port) }

    /// A TCP socket connected to 127.0.0.1:`port` (`receiveBuffer`: SO_RCVBUF, small to make
    /// the server's writes block soon).
    static func connectLoopback(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            Glibc.close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
        return fd
    }

    func send(_ s: String) throws {
        let bytes = Array(s.utf8)
        guard Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { throw POSIXError(.EPIPE) }
    }

    /// True when the server closes the connection within `seconds` (reads until EOF/reset).
    func waitForClose(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var buf = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, 100)
            if ready > 0 {
                let n = recv(fd, &buf, buf.count, 0)
                if n <= 0 { return true }
            }
        }
        return false
    }

    deinit { Glibc.close(fd) }
}
