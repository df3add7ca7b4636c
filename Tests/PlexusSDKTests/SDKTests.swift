import CompressNIO
import Foundation
import NIOCore
import PlexusServerTesting
import Testing

@testable import Plexus

@Suite("Swift SDK: configuration")
struct SDKConfigurationTests {
    func tempHome() -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("plexus-home-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test("argument > environment > config file; missing ids are generated and saved in the Python SDK's format")
    func resolution() throws {
        let home = tempHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        #expect(throws: PlexusError.self) { _ = try PlexusConfiguration.resolve(environment: [:], home: home) }
        let c = try PlexusConfiguration.resolve(
            environment: ["PLEXUS_API_KEY": "plx_env", "PLEXUS_GATEWAY_URL": "http://h:1/"], home: home)
        #expect(c.apiKey == "plx_env")
        #expect(c.gatewayURL == "http://h:1")
        #expect(c.sourceID.range(of: #"^source-[0-9a-f]{8}$"#, options: .regularExpression) != nil)
        let saved =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: home + "/.plexus/config.json"))) as? [String: Any]
        #expect(saved?["source_id"] as? String == c.sourceID)
        #expect((saved?["install_id"] as? String)?.range(of: #"^[0-9a-f]{32}$"#, options: .regularExpression) != nil)
        #expect(saved?["install_id"] as? String == c.installID)
        let perms = try FileManager.default.attributesOfItem(atPath: home + "/.plexus/config.json")[.posixPermissions] as? Int
        #expect(perms == 0o600)
        // The same ids next time; an explicit argument wins over the file.
        let again = try PlexusConfiguration.resolve(apiKey: "plx_arg", environment: [:], home: home)
        #expect(again.sourceID == c.sourceID && again.installID == c.installID && again.apiKey == "plx_arg")
        #expect(try PlexusConfiguration.resolve(apiKey: "k", sourceID: "rig-2", environment: [:], home: home).sourceID == "rig-2")
        #expect(throws: PlexusError.self) {
            _ = try PlexusConfiguration.resolve(apiKey: "k", sourceID: "Bad Id", environment: [:], home: home)
        }
    }

    @Test("reads a config file the Python SDK wrote")
    func pythonFile() throws {
        let home = tempHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        try FileManager.default.createDirectory(atPath: home + "/.plexus", withIntermediateDirectories: true)
        let py = """
            {
              "api_key": "plx_fromfile",
              "source_id": "drone-01_2",
              "persistent_buffer": true,
              "install_id": "c9f2e0b46f4a4f6a8c3e1d5b0a2e7f91",
              "gateway_url": "http://127.0.0.1:9"
            }
            """
        try py.write(toFile: home + "/.plexus/config.json", atomically: true, encoding: .utf8)
        let c = try PlexusConfiguration.resolve(environment: [:], home: home)
        var expected = PlexusConfiguration(
            apiKey: "plx_fromfile", sourceID: "drone-01_2", gatewayURL: "http://127.0.0.1:9",
            installID: "c9f2e0b46f4a4f6a8c3e1d5b0a2e7f91")
        expected.home = home
        expected.bufferPath = home + "/.plexus/buffer-swift.sqlite"  // "persistent_buffer": true
        #expect(c == expected)
        #expect(c.gatewayWSURL == "ws://127.0.0.1:9")
        try py.replacingOccurrences(of: #""persistent_buffer": true"#, with: #""persistent_buffer": false"#)
            .write(toFile: home + "/.plexus/config.json", atomically: true, encoding: .utf8)
        #expect(try PlexusConfiguration.resolve(environment: [:], home: home).bufferPath == nil)
    }

    @Test("retry delays: exponential with jitter, capped, Retry-After wins")
    func retryPolicy() {
        let p = RetryPolicy(maxRetries: 3, baseDelay: .seconds(1), maxDelay: .seconds(30))
        #expect(p.delay(attempt: 0, retryAfter: nil, random: 1) == .seconds(1))
        #expect(p.delay(attempt: 0, retryAfter: nil, random: 0) == .milliseconds(500))
        #expect(p.delay(attempt: 3, retryAfter: nil, random: 1) == .seconds(8))
        #expect(p.delay(attempt: 10, retryAfter: nil, random: 1) == .seconds(30))
        #expect(p.delay(attempt: 0, retryAfter: .seconds(7), random: 0) == .seconds(7))
        #expect(p.delay(attempt: 0, retryAfter: .seconds(90), random: 0) == .seconds(30))
    }
}

@Suite("Swift SDK: HTTP transport against the server", .timeLimit(.minutes(2)))
struct SDKHTTPTests {
    func config(_ s: TestServer, key: String? = nil, source: String = "sdk-1") -> PlexusConfiguration {
        var c = PlexusConfiguration(apiKey: key ?? s.key, sourceID: source, gatewayURL: s.url, transport: .http)
        c.flushInterval = .milliseconds(20)
        c.retry = RetryPolicy(maxRetries: 8, baseDelay: .milliseconds(50), maxDelay: .seconds(2))
        return c
    }

    @Test("every value type, shared and per-point timestamps, tags; flush means stored")
    func sendAndFlush() async throws {
        try await withServer { s in
            let t = Date(timeIntervalSince1970: 1_700_000_000.123456)
            try await withPlexus(config(s)) { px in
                try px.send("temperature", 72.5, timestamp: t)
                try px.send("state", "running", timestamp: t)
                try px.send("armed", true, timestamp: t)
                try px.send("pos", ["x": 1.2, "y": 3.4], timestamp: t)
                try px.send("wave", .waveform([1, 2, 3]), timestamp: t, tags: ["loc": "lab"])
                try px.sendBatch([("a", 1), ("b", 2)], timestamp: t)
                try px.sendBatch([PlexusPoint("c", 1, timestamp: t), PlexusPoint("c", 2, timestamp: t + 1.5)])
                try await px.flush()
                #expect(px.bufferedPoints == 0)
            }
            #expect(try await s.rawValues("sdk-1", "temperature").ts == [1_700_000_000_123.456])
            #expect(try await s.rawValues("sdk-1", "state").values.first as? String == "running")
            #expect(try await s.rawValues("sdk-1", "armed").values.first as? Bool == true)
            #expect(try await s.rawValues("sdk-1", "pos.y").values.first as? Double == 3.4)
            #expect(try await s.rawValues("sdk-1", "wave").values.first as? [Double] == [1, 2, 3])
            #expect(try await s.rawValues("sdk-1", "c").ts == [1_700_000_000_123.456, 1_700_000_001_623.456])
            let tagged = try await s.get("/v1/sources/sdk-1/metrics/query?metrics=wave&start=0&end=99999999999999&interval=raw&tag.loc=lab")
            #expect(((tagged.object["series"] as? [String: Any])?["wave"]) != nil)
        }
    }

    @Test("bad input is refused locally; a bad key or a read-only key fails flush with a typed error, never retried")
    func errors() async throws {
        try await withServer { s in
            let px = Plexus(configuration: config(s))
            #expect(throws: PlexusError.self) { try px.send("", 1) }
            #expect(throws: PlexusError.self) { try px.send("t", .number(.nan)) }
            // Every rule the server applies to a point, checked when it is queued, so one bad
            // point never sinks the batch it would have travelled in.
            let refused: [(String, PlexusValue, [String: String])] = [
                ("t", .string(String(repeating: "x", count: Limits.maxStringValueBytes + 1)), [:]),
                ("t", .array(JSONText(unchecked: "[" + String(repeating: "1,", count: Limits.maxStructuredValueBytes / 2) + "1]")), [:]),
                ("t", 1, ["k": "a\u{1}b"]), ("t", 1, ["": "v"]), ("t", 1, ["k": String(repeating: "v", count: 257)]),
                ("t", 1, ["session_id": ""]), ("a\u{0}b", 1, [:]), (String(repeating: "m", count: 257), 1, [:]),
            ]
            for (metric, value, tags) in refused {
                #expect(throws: PlexusError.self, "\(metric.prefix(20)) \(tags)") {
                    try px.sendBatch([PlexusPoint(metric, value, tags: tags)])
                }
            }
            #expect(px.bufferedPoints == 0)
            let readOnly = try await s.createKey(scopes: "read")
            for (key, code) in [("plx_00000000000000000000000000000000", PlexusError.Code.unauthorized), (readOnly, .forbidden)] {
                // A retry would wait at least 30 s first (60 s × U(0.5, 1)), so finishing well before that
                // proves there was none, however loaded the machine is.
                var c = config(s, key: key)
                c.retry = RetryPolicy(maxRetries: 8, baseDelay: .seconds(60), maxDelay: .seconds(120))
                let start = ContinuousClock.now
                do {
                    try await withPlexus(c) { px in
                        try px.send("t", 1)
                        try await px.flush()
                    }
                    Issue.record("expected \(code)")
                } catch let e as PlexusError {
                    #expect(e.code == code)
                }
                #expect(start.duration(to: .now) < .seconds(25))  // no retries
            }
        }
    }

    @Test("429 with Retry-After: the client waits and retries until everything is stored")
    func retries() async throws {
        // 1 request/s with a burst of 2, and 12 batches: only a machine taking over 10 s for
        // the 12 requests would see no 429.
        try await withServerProcess(environment: ["PLEXUS_SOURCE_RATE_LIMIT": "1"]) { s in
            var c = config(s, source: "busy")
            c.maxBatchPoints = 5
            try await withPlexus(c) { px in
                for i in 0..<60 { try px.send("m", .number(Double(i))) }
                try await px.flush()
            }
            let values = try await s.rawValues("busy", "m").values.compactMap { $0 as? Double }
            #expect(values.sorted() == (0..<60).map(Double.init))
            // The server did refuse some: the retries are what delivered them.
            let metrics = try await s.metrics().text
            #expect(metrics.contains(#"plexus_rejects_total{reason="RATE_LIMITED",transport="http"}"#))
        }
    }

    @Test("a large batch goes gzip-compressed and lands intact")
    func gzip() async throws {
        try await withServer { s in
            let c = config(s, source: "big")
            let transport = HTTPTransport(configuration: c)
            let small = transport.prepare([Array(#"{"metric":"m","value":1}"#.utf8)], sourceID: "big")
            #expect(!small.gzipped)
            #expect(String(buffer: small.body) == #"{"source_id":"big","points":[{"metric":"m","value":1}]}"#)
            let points = (0..<400).map { Array(#"{"metric":"m","value":\#($0)}"#.utf8) }
            var large = transport.prepare(points, sourceID: "big")
            #expect(large.gzipped)
            let plain = try large.body.decompress(with: .gzip())
            #expect(Array(plain.readableBytesView) == transport.body(points, sourceID: "big"))
            try await withPlexus(c) { px in
                try px.sendBatch((0..<400).map { ("m\($0 % 4)", PlexusValue.number(Double($0))) })
                try await px.flush()
            }
            #expect(try await s.rawValues("big", "m3").values.count == 100)
        }
    }
}

@Suite("Swift SDK: WebSocket transport against the server", .timeLimit(.minutes(2)))
struct SDKWebSocketTests {
    func connected(_ px: Plexus) async -> Bool {
        #expect(await eventually(timeout: .seconds(5)) { px.isConnected })
        return px.isConnected
    }

    func home(config: [String: Any]? = nil) throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("plexus-home-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d + "/.plexus", withIntermediateDirectories: true)
        if let config { try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: d + "/.plexus/config.json")) }
        return d
    }

    @Test("points go over the socket, acknowledged once stored")
    func delivery() async throws {
        try await withServerProcess { s in
            var c = PlexusConfiguration(apiKey: s.key, sourceID: "ws-1", gatewayURL: s.url, installID: "1111")
            c.flushInterval = .milliseconds(20)
            try await withPlexus(c) { px in
                #expect(await connected(px))
                for i in 0..<50 { try px.send("m", .number(Double(i))) }
                try px.send("state", "ok")
                try await px.flush()
            }
            #expect(try await s.rawValues("ws-1", "m").values.count == 50)
            #expect(try await s.rawValues("ws-1", "state").values.first as? String == "ok")
            let metrics = try await s.metrics().text
            #expect(metrics.contains(#"plexus_points_ingested_total{transport="ws"} 51"#))
            #expect(!metrics.contains(#"plexus_points_ingested_total{transport="http"}"#))
        }
    }

    @Test("a second install asking for a taken name adopts name_2 and saves it, as the Python SDK does")
    func identity() async throws {
        try await withServer { s in
            let homeA = try home()
            let homeB = try home()
            defer { for h in [homeA, homeB] { try? FileManager.default.removeItem(atPath: h) } }
            for (h, expected) in [(homeA, "drone-01"), (homeB, "drone-01_2")] {
                let c = try PlexusConfiguration.resolve(apiKey: s.key, sourceID: "drone-01", gatewayURL: s.url, environment: [:], home: h)
                try await withPlexus(c) { px in
                    #expect(await connected(px), "\(px.sourceID)")
                    #expect(px.sourceID == expected)
                    try px.send("alt", 1)
                    try await px.flush()
                }
                let saved =
                    try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: h + "/.plexus/config.json")))
                    as? [String: Any]
                #expect(saved?["source_id"] as? String == (expected == "drone-01_2" ? "drone-01_2" : nil))
            }
            #expect(try await s.rawValues("drone-01_2", "alt").values.count == 1)
        }
    }

    @Test("clock correction: SDK-generated timestamps land at server time, explicit ones as given")
    func clockCorrection() async throws {
        let day: Double = 86_400_000
        try await withServer { s in
            var c = PlexusConfiguration(apiKey: s.key, sourceID: "skew", gatewayURL: s.url, installID: "2222")
            c.flushInterval = .milliseconds(20)
            // The device's clock is a day behind the server's.
            c.wallClockOffset = .seconds(-86_400)
            let before = nowMillis()
            try await withPlexus(c) { px in
                #expect(await connected(px))
                #expect(abs(Double(px.clockOffset.components.seconds) * 1_000 - day) < 5_000)
                try px.send("t", 1)
                try px.send("fixed", 2, timestamp: Date(timeIntervalSince1970: 1_700_000_000))
                try await px.flush()
            }
            let after = nowMillis()
            let ts = try #require(try await s.rawValues("skew", "t").ts.first)
            #expect(ts >= before - 5_000 && ts <= after + 5_000)
            #expect(try await s.rawValues("skew", "fixed").ts == [1_700_000_000_000])
        }
    }

    @Test("the offset is refreshed over the open connection (time_sync), corrected by the round trip")
    func clockRefresh() async throws {
        // The server read its clock half-way through a 40 ms round trip.
        #expect(ClockSync.offsetMs(serverMs: 10_020, sentWallMs: 1_000, roundTrip: .milliseconds(40)) == 9_000)
        let day: Double = 86_400_000
        try await withServer { s in
            var c = PlexusConfiguration(apiKey: s.key, sourceID: "drift", gatewayURL: s.url, installID: "3333")
            c.clockRefreshInterval = .milliseconds(100)
            c.wallClockOffset = .seconds(-86_400)
            try await withPlexus(c) { px in
                #expect(await eventually(timeout: .seconds(5)) { px.isConnected })
                #expect(px.isConnected)
                // The device's clock jumps (or drifts) while connected: the next sync puts it right.
                px.identity.setClockOffset(ms: 0)
                var offset = 0.0
                for _ in 0..<100 where abs(offset - day) > 1_000 {
                    try await Task.sleep(for: .milliseconds(20))  // polling, at most 2 s
                    offset = px.identity.clockOffsetMs
                }
                #expect(abs(offset - day) < 1_000, "\(offset)")
            }
        }
    }
}
