import Foundation
import NIOHTTP1
import PlexusCore
import PlexusServer
import PlexusServerTesting
import Testing

@Suite("WebSocket gateway", .timeLimit(.minutes(2)))
struct GatewayTests {
    @Test("device auth: bad key, missing write scope and a wrong first frame get an error, then close 1008")
    func authFailures() async throws {
        try await withServer { s in
            var (dev, reply) = await s.device("d1", key: "plx_00000000000000000000000000000000")
            #expect(reply?["type"] as? String == "error")
            #expect(reply?["message"] as? String == "Invalid API key")
            #expect(await dev.closed() == 1008)
            (dev, reply) = await s.device("d1", key: try await s.createKey(scopes: "read"))
            #expect(reply?["message"] as? String == "API key lacks write scope")
            #expect(await dev.closed() == 1008)
            let raw = TestSocket(url: s.wsURL + "/ws/device")
            raw.send(#"{"type":"telemetry","points":[]}"#)
            #expect(await raw.next()?["message"] as? String == "first message must be device_auth")
            #expect(await raw.closed() == 1008)
        }
    }

    @Test("telemetry: authenticated, acked after it is durable, bad frames answered with their seq, stored like HTTP")
    func telemetryAndAcks() async throws {
        try await withServer { s in
            let before = nowMillis()
            let (dev, auth) = await s.device("drone-01", extra: ["acks": true, "agent_version": "9.9", "sensors": [["name": "MPU6050"]]])
            #expect(auth?["type"] as? String == "authenticated")
            #expect(auth?["source_id"] as? String == "drone-01")
            #expect(auth?["acks"] as? Bool == true)
            let serverTime = try #require(auth?["server_time_ms"] as? Double)
            // The server's clock when it answered: between sending and receiving (however
            // slow a loaded machine makes the sign-in), with a second for rounding.
            #expect(serverTime >= before - 1_000 && serverTime <= nowMillis() + 1_000)
            dev.send(
                #"{"type":"telemetry","seq":1,"points":[{"metric":"temp","value":21.5,"timestamp":1700000000.25},{"metric":"state","value":"idle","class":"metric","timestamp":1700000000000}]}"#
            )
            #expect(await dev.next(type: "telemetry_ack")?["seq"] as? Int == 1)
            dev.send(#"{"type":"telemetry","seq":2,"points":[{"metric":"temp","value":NaN}]}"#)
            let err = await dev.next()
            #expect(err?["type"] as? String == "error")
            #expect(err?["code"] as? String == "INVALID_MESSAGE")
            #expect(err?["detail"] as? String == "points[0].value must be finite")
            #expect(err?["seq"] as? Int == 2)
            dev.send(#"{"type":"telemetry","seq":3,"points":[{"metric":"temp","value":22}]}"#)  // still open
            #expect(await dev.next(type: "telemetry_ack")?["seq"] as? Int == 3)
            #expect(try await s.rawValues("drone-01", "temp").values.compactMap { $0 as? Double } == [21.5, 22])
            #expect(try await s.rawValues("drone-01", "temp").ts.first == 1_700_000_000_250)
            #expect(try await s.rawValues("drone-01", "state").values.first as? String == "idle")
            let src = try await s.get("/v1/sources/drone-01").object
            #expect(src["online"] as? Bool == true)
            #expect(src["agent_version"] as? String == "9.9")
            #expect((src["sensors"] as? [[String: String]])?.first?["name"] == "MPU6050")
            dev.close()
            _ = await dev.closed()
            #expect(try await eventually { try await s.get("/v1/sources/drone-01").object["online"] as? Bool == false })
        }
    }

    @Test("video frames (JSON and the SDK's binary format) are relayed live to dashboards, not stored")
    func video() async throws {
        try await withServer { s in
            let (dev, _) = await s.device("cam")
            let (dash, _) = await s.dashboard()
            dash.send(json: ["type": "subscribe", "source_id": "cam"])
            #expect(await dash.next(type: "subscribed") != nil)
            dev.send(#"{"type":"video_frame","camera_id":"front","frame":"/9j/AA==","width":2,"height":1,"timestamp":1700000000000}"#)
            var f = await dash.next(type: "video_frame")
            #expect(f?["source_id"] as? String == "cam")
            #expect(f?["camera_id"] as? String == "front")
            #expect(f?["frame"] as? String == "/9j/AA==")
            // 0x01, len+source, len+camera, u32 width, u32 height, i64 timestamp (all big-endian), JPEG bytes.
            var bin: [UInt8] = [1, 3] + Array("cam".utf8) + [4] + Array("rear".utf8)
            bin += [0, 0, 2, 128, 0, 0, 1, 224]  // 640 x 480
            bin += withUnsafeBytes(of: Int64(1_700_000_000_123).bigEndian, Array.init)
            bin += [0xFF, 0xD8, 0xFF, 0xD9]
            dev.send(binary: bin)
            f = await dash.next(type: "video_frame")
            #expect(f?["camera_id"] as? String == "rear")
            #expect(f?["width"] as? Int == 640)
            #expect(f?["height"] as? Int == 480)
            #expect(f?["timestamp"] as? Int == 1_700_000_000_123)
            #expect(f?["frame"] as? String == Data([0xFF, 0xD8, 0xFF, 0xD9]).base64EncodedString())
            let stored = try await s.get("/v1/sources/cam/metrics").text
            #expect(stored == "[]")  // nothing stored
        }
    }

    @Test("a frame over 1 MiB closes the connection with 1009")
    func oversizeFrame() async throws {
        try await withServer { s in
            let (dev, _) = await s.device("big")
            dev.send(#"{"type":"telemetry","points":[{"metric":"m","value":""# + String(repeating: "x", count: 1_100_000) + #""}]}"#)
            #expect(await dev.closed() == 1009)
        }
    }

    @Test("identity: installs claim names atomically; the same install gets its name back after a restart")
    func identity() async throws {
        let s = try await TestServer.start()
        defer { s.cleanUp() }
        let (a, ra) = await s.device("drone-01", extra: ["install_id": "aaaa"])
        #expect(ra?["source_id"] as? String == "drone-01")
        let (b, rb) = await s.device("drone-01", extra: ["install_id": "bbbb"])
        #expect(rb?["source_id"] as? String == "drone-01_2")
        let (c, rc) = await s.device("drone-01", extra: ["install_id": "cccc"])
        #expect(rc?["source_id"] as? String == "drone-01_3")
        for d in [a, b, c] { d.close() }
        await s.stop()
        try await s.launch()
        #expect(await s.device("drone-01", extra: ["install_id": "bbbb"]).1?["source_id"] as? String == "drone-01_2")
        #expect(await s.device("drone-01_2", extra: ["install_id": "bbbb"]).1?["source_id"] as? String == "drone-01_2")
        // Without install_id the name passes through unchanged, and a second live connection replaces the first.
        let (legacy1, r1) = await s.device("drone-01")
        #expect(r1?["source_id"] as? String == "drone-01")
        let (_, r2) = await s.device("drone-01")
        #expect(r2?["source_id"] as? String == "drone-01")
        #expect(await legacy1.closed() == 1008)
        let claims = try await s.get("/api/devices/claims").object["claims"] as? [[String: Any]]
        #expect(claims?.map { $0["source_id"] as? String } == ["drone-01", "drone-01_2", "drone-01_3"])
        #expect(try await s.request(.DELETE, "/api/devices/claims/drone-01_3").status == 204)
        #expect(try await s.cli(["claims", "release", "--data-dir", s.dataDir, "drone-01_2"]) == "released drone-01_2")
        #expect(await s.device("drone-01", extra: ["install_id": "dddd"]).1?["source_id"] as? String == "drone-01_2")
    }

    @Test("dashboards: online devices on connect, live telemetry, control frames to the device, replies back")
    func dashboardControl() async throws {
        try await withServer { s in
            let (dev, _) = await s.device("rig-1", extra: ["sensors": [["name": "BME280", "metrics": ["temperature"]]]])
            _ = try await s.ingest(#"{"source_id":"rig-1","points":[{"metric":"temperature","value":1}]}"#)
            let (dash, initFrame) = await s.dashboard()
            #expect(initFrame?["type"] as? String == "init", "\(initFrame ?? [:])")
            #expect(initFrame?["can_control"] as? Bool == true)
            let online = try #require((initFrame?["online_sources"] as? [[String: Any]])?.first)
            #expect(online["source_id"] as? String == "rig-1")
            #expect(online["metrics"] as? [String] == ["temperature"])
            #expect((online["sensors"] as? [[String: Any]])?.first?["name"] as? String == "BME280")

            dash.send(json: ["type": "subscribe", "source_id": "rig-1"])
            #expect(await dash.next(type: "subscribed")?["source_id"] as? String == "rig-1")
            dev.send(#"{"type":"telemetry","points":[{"metric":"temperature","value":23.5}]}"#)
            let live = await dash.next(type: "telemetry")
            #expect(live?["source_id"] as? String == "rig-1")
            #expect((live?["points"] as? [[String: Any]])?.first?["value"] as? Double == 23.5)

            dash.send(json: ["type": "start_stream", "source_id": "rig-1", "metrics": ["temperature"], "interval_ms": 100])
            let atDevice = await dev.next(type: "start_stream")
            #expect(atDevice?["metrics"] as? [String] == ["temperature"])
            #expect(atDevice?["interval_ms"] as? Int == 100)
            #expect(await dash.next(type: "control_sent")?["command"] as? String == "start_stream")
            dash.send(json: ["type": "configure", "source_id": "rig-1", "sensor": "BME280", "config": ["sample_rate": 50]])
            #expect((await dev.next(type: "configure")?["config"] as? [String: Int]) == ["sample_rate": 50])
            dash.send(json: ["type": "ping", "source_id": "rig-1"])
            #expect(await dev.next(type: "ping") != nil)
            dev.send(#"{"type":"pong"}"#)
            #expect(await dash.next(type: "pong")?["source_id"] as? String == "rig-1")
            dash.send(json: ["type": "stop_stream", "source_id": "rig-1"])
            #expect(await dev.next(type: "stop_stream") != nil)

            dash.send(json: ["type": "start_stream", "source_id": "nobody"])
            let unknown = await dash.next(type: "error")
            #expect(unknown?["code"] as? String == "DEVICE_UNKNOWN")
            #expect(unknown?["source_id"] as? String == "nobody")
            // Known to the organisation (it sent data over HTTP) but not connected.
            _ = try await s.ingest(#"{"source_id":"http-only","points":[{"metric":"m","value":1}]}"#)
            dash.send(json: ["type": "start_stream", "source_id": "http-only"])
            let offline = await dash.next(type: "error")
            #expect(offline?["code"] as? String == "DEVICE_OFFLINE")

            // A read-only login watches but cannot control.
            let (viewer, vinit) = await s.dashboard(key: try await s.createKey(scopes: "read"))
            #expect(vinit?["can_control"] as? Bool == false)
            viewer.send(json: ["type": "start_stream", "source_id": "rig-1"])
            #expect(await viewer.next(type: "error")?["code"] as? String == "FORBIDDEN")

            dev.close()
            let status = await dash.next(type: "source_status")
            #expect(status?["status"] as? String == "offline")
        }
    }

    @Test("recording: start_session creates the session at once, untagged points join it, stop_session completes it")
    func recording() async throws {
        try await withServer { s in
            let (dev, _) = await s.device("arm")
            let (dash, _) = await s.dashboard()
            dash.send(json: [
                "type": "start_session", "source_id": "arm", "session_id": "rec-1", "session_name": "Motor Test",
                "metrics": [], "interval_ms": 100,
            ])
            let started = await dev.next(type: "start_session")
            #expect(started?["session_id"] as? String == "rec-1")
            #expect(started?["session_name"] as? String == "Motor Test")
            var r = try await s.get("/api/sessions/rec-1")
            #expect(r.object["status"] as? String == "active")
            #expect(r.object["name"] as? String == "Motor Test")
            dev.send(#"{"type":"telemetry","points":[{"metric":"rpm","value":1200}]}"#)  // an old device: never tags
            dev.send(#"{"type":"session_started","session_id":"rec-1","session_name":"Motor Test"}"#)
            #expect(await dash.next(type: "session_started")?["source_id"] as? String == "arm")
            // HTTP fallback from the same device is recorded too.
            #expect(try await s.ingest(#"{"source_id":"arm","points":[{"metric":"rpm","value":1300}]}"#).status == 200)
            dash.send(json: ["type": "stop_session", "source_id": "arm"])
            #expect(await dev.next(type: "stop_session")?["session_id"] as? String == "rec-1")
            dev.send(#"{"type":"telemetry","points":[{"metric":"rpm","value":1}]}"#)
            // Once the point sent after the stop is stored, the session must not have it.
            #expect(try await eventually { try await s.rawValues("arm", "rpm").values.compactMap { $0 as? Double }.contains(1) })
            r = try await s.get("/api/sessions/rec-1")
            #expect(r.object["status"] as? String == "completed")
            #expect((r.object["summary"] as? [String: Any])?["point_count"] as? Int == 2)
            let data = try await s.get("/api/sessions/rec-1/data?interval=raw")
            #expect(((data.object["series"] as? [String: [String: Any]])?["rpm"]?["value"] as? [Double]) == [1200, 1300])
            // stop_session naming another device's session leaves that session alone.
            #expect(try await s.post("/api/sessions", #"{"session_id":"theirs","name":"t","source_id":"leg"}"#).status == 201)
            dash.send(json: ["type": "stop_session", "source_id": "arm", "session_id": "theirs"])
            #expect(await dev.next(type: "stop_session") != nil)
            #expect(try await s.get("/api/sessions/theirs").object["status"] as? String == "active")
        }
    }

    @Test("a recording survives a server restart")
    func recordingAcrossRestart() async throws {
        let s = try await TestServer.start()
        defer { s.cleanUp() }
        let (dev, _) = await s.device("arm")
        let (dash, _) = await s.dashboard()
        dash.send(json: ["type": "start_session", "source_id": "arm", "session_id": "long-run"])
        #expect(await dev.next(type: "start_session") != nil)
        await s.stop()
        try await s.launch()
        #expect(try await s.ingest(#"{"source_id":"arm","points":[{"metric":"rpm","value":7}]}"#).status == 200)
        let (dev2, _) = await s.device("arm")
        let (dash2, _) = await s.dashboard()
        dash2.send(json: ["type": "stop_session", "source_id": "arm"])
        #expect(await dev2.next(type: "stop_session")?["session_id"] as? String == "long-run")
        let r = try await s.get("/api/sessions/long-run")
        #expect(r.object["status"] as? String == "completed")
        #expect((r.object["summary"] as? [String: Any])?["point_count"] as? Int == 1)
    }

    @Test("HTTP control, key check and config for the SDKs")
    func httpControl() async throws {
        try await withServer { s in
            let (dev, _) = await s.device("cam-1")
            var r = try await s.post(
                "/v1/sources/cam-1/commands", #"{"command":"start_stream","params":{"metrics":["a"],"interval_ms":50}}"#)
            #expect(r.status == 200)
            #expect(r.object["queued"] as? Bool == true)
            let f = await dev.next(type: "start_stream")
            #expect(f?["interval_ms"] as? Int == 50)
            r = try await s.post("/v1/sources/cam-1/commands", #"{"command":"self_destruct"}"#)
            #expect((r.status, r.object["code"] as? String) == (400, "VALIDATION_ERROR"))
            r = try await s.post("/v1/sources/never-seen/commands", #"{"command":"ping"}"#)
            #expect((r.status, r.object["code"] as? String) == (404, "DEVICE_UNKNOWN"))
            _ = try await s.ingest(#"{"source_id":"gone","points":[{"metric":"m","value":1}]}"#)
            r = try await s.post("/v1/sources/gone/commands", #"{"command":"ping"}"#)
            #expect((r.status, r.object["code"] as? String) == (409, "DEVICE_OFFLINE"))
            r = try await s.post("/v1/sources/cam-1/commands", #"{"command":"ping"}"#, key: try await s.createKey(scopes: "read"))
            #expect(r.status == 403)
            r = try await s.get("/api/auth/verify-key")
            #expect(r.object["org_id"] as? String == "default")
            #expect(r.object["scopes"] as? [String] == ["admin", "read", "write"])
            #expect(try await s.get("/api/auth/verify-key", key: "plx_00000000000000000000000000000000").status == 401)
            #expect(try await s.get("/api/config", key: .some(nil)).object["ws_url"] as? String == "\(s.wsURL)/ws/device")
        }
    }

    @Test("nothing acknowledged is lost: kill -9 after acks, restart, every acked frame is there")
    func ackedSurviveKill() async throws {
        let s = try await TestServer.start()
        defer { s.cleanUp() }
        let (dev, _) = await s.device("k9", extra: ["acks": true])
        for seq in 1...50 {
            let pts = (0..<20).map { #"{"metric":"m","value":\#($0),"timestamp":\#(1_700_000_000 + seq * 20 + $0)}"# }
            dev.send(#"{"type":"telemetry","seq":\#(seq),"points":[\#(pts.joined(separator: ","))]}"#)
        }
        var acked = 0
        while let a = await dev.next(type: "telemetry_ack") {
            acked = a["seq"] as? Int ?? acked
            if acked == 50 { break }
        }
        #expect(acked == 50)
        await s.kill9()
        try await s.launch()
        let q = try await s.get("/v1/sources/k9/metrics/query?start=0&end=99999999999999&interval=1d")
        let counts = (q.object["series"] as? [String: [String: Any]])?["m"]?["count"] as? [Int]
        #expect(counts?.reduce(0, +) == 1_000)
    }

    @Test("SIGTERM: devices get a proper close frame")
    func shutdown() async throws {
        let s = try await TestServer.start()
        defer { s.cleanUp() }
        let (dev, _) = await s.device("bye", extra: ["acks": true])
        dev.send(#"{"type":"telemetry","seq":1,"points":[{"metric":"m","value":1}]}"#)
        #expect(await dev.next(type: "telemetry_ack") != nil)
        s.process?.terminate()
        let code = await dev.closed(timeout: .seconds(20))
        #expect(code == 1001)
        await TestServer.exited(try #require(s.process))
        #expect(s.process?.terminationStatus == 0)
    }

    @Test("SIGTERM while a device streams: what was stored was acknowledged, then 1001")
    func shutdownInFlight() async throws {
        let s = try await TestServer.start()
        defer { s.cleanUp() }
        let (dev, _) = await s.device("busy", extra: ["acks": true])
        let points = (0..<50).map { #"{"metric":"m","value":\#($0)}"# }.joined(separator: ",")
        for seq in 1...300 { dev.send(#"{"type":"telemetry","seq":\#(seq),"points":[\#(points)]}"#) }
        #expect(await dev.next(type: "telemetry_ack", timeout: .seconds(20)) != nil)
        s.process?.terminate()
        var acked = 1
        while let a = await dev.next(type: "telemetry_ack", timeout: .seconds(20)) {
            #expect(a["seq"] as? Int == acked + 1)
            acked = a["seq"] as? Int ?? acked
        }
        #expect(await dev.closed(timeout: .seconds(20)) == 1001)
        await TestServer.exited(try #require(s.process))
        try await s.launch()
        let q = try await s.get("/v1/sources/busy/metrics/query?metrics=m&start=0&end=99999999999999&interval=1d")
        let counts = (q.object["series"] as? [String: [String: Any]])?["m"]?["count"] as? [Int]
        // Every stored frame was acknowledged: a device resending what it has no ack for
        // never makes a duplicate.
        #expect(counts?.reduce(0, +) == acked * 50)
    }

    @Test("HTTP over the per-source rate: 429 with Retry-After, never a silent drop")
    func httpRateLimit() async throws {
        try await withServer(.set(\.sourceRequestsPerSecond, 1)) { s in
            // 20 requests at once against 1 request/s (burst 2): most must be refused, however slow the machine.
            let replies = try await withThrowingTaskGroup(of: TestServer.Reply.self) { group in
                for i in 0..<20 {
                    group.addTask { try await s.ingest(#"{"source_id":"fast","points":[{"metric":"m","value":\#(i)}]}"#) }
                }
                return try await group.reduce(into: [TestServer.Reply]()) { $0.append($1) }
            }
            let statuses = replies.map(\.status)
            let limited = try #require(replies.first { $0.status == 429 })
            #expect(limited.object["code"] as? String == "RATE_LIMITED")
            #expect(Int(limited.headers["retry-after"].first ?? "") ?? 0 >= 1)
            #expect(statuses.filter { $0 == 200 }.count <= 10)
            #expect(Set(statuses).isSubset(of: [200, 429]))
            // What was answered 200 is all there; nothing else is.
            let stored = try await s.rawValues("fast", "m").values.count
            #expect(stored == statuses.filter { $0 == 200 }.count)
        }
    }
}
