import Foundation
import NIOHTTP1
import PlexusServerTesting
import PlexusStorage
import Testing

@testable import PlexusServer

@Suite("Dashboard socket: auth, tenants, subscriptions, replies, HTTP recording", .timeLimit(.minutes(3)))
struct DashboardSocketTests {
    @Test("dashboard auth: a bad key, a key without read, a wrong first frame: an error, then 1008")
    func authFailures() async throws {
        try await withServer { s in
            let writeOnly = try await s.createKey(scopes: "write")
            let cases: [([String: Any], String)] = [
                (["type": "auth", "api_key": "plx_00000000000000000000000000000000"], "Invalid API key"),
                (["type": "auth", "api_key": writeOnly], "API key lacks read scope"),
                (["type": "auth"], "api_key required"),
                (["type": "subscribe", "source_id": "*"], "first message must be auth (with api_key) or browser_auth"),
            ]
            for (frame, message) in cases {
                let dash = TestSocket(url: s.wsURL + "/ws/browser")
                dash.send(json: frame)
                let reply = await dash.next()
                #expect(reply?["type"] as? String == "error" && reply?["message"] as? String == message, "\(frame)")
                #expect(await dash.closed() == 1008)
            }
        }
    }

    @Test("a dashboard of another organisation sees and controls nothing of this one")
    func tenants() async throws {
        try await withServer { s in
            _ = try await s.cli(["orgs", "create", "--data-dir", s.dataDir, "team-b"])
            let keyB = try await s.createKey(scopes: "write,read", org: "team-b")
            let (dashB, initB) = await s.dashboard(key: keyB)
            #expect((initB?["online_sources"] as? [Any])?.isEmpty == true)
            dashB.send(json: ["type": "subscribe", "source_id": "*"])
            #expect(await dashB.next(type: "subscribed") != nil)

            // A device of the default organisation comes online and streams.
            let (dev, _) = await s.device("rig-a")
            dev.send(#"{"type":"telemetry","points":[{"metric":"m","value":1}]}"#)
            let (dashA, initA) = await s.dashboard()
            #expect((initA?["online_sources"] as? [[String: Any]])?.map { $0["source_id"] as? String } == ["rig-a"])
            // Team B: no source_status, no telemetry, and the name is unknown to it.
            dashB.send(json: ["type": "ping", "source_id": "rig-a"])
            let reply = await dashB.next()
            #expect(reply?["type"] as? String == "error" && reply?["code"] as? String == "DEVICE_UNKNOWN", "\(reply ?? [:])")
            #expect(await dev.next(type: "ping", timeout: .milliseconds(500)) == nil)
            let r = try await s.post("/v1/sources/rig-a/commands", #"{"command":"ping"}"#, key: keyB)
            #expect((r.status, r.object["code"] as? String) == (404, "DEVICE_UNKNOWN"))
            // The same name in team B is another device.
            let (devB, authB) = await s.device("rig-a", key: keyB)
            #expect(authB?["source_id"] as? String == "rig-a")
            #expect(await dashB.next(type: "source_status")?["source_id"] as? String == "rig-a")
            dashA.send(json: ["type": "ping", "source_id": "rig-a"])
            #expect(await dev.next(type: "ping") != nil)
            #expect(await devB.next(type: "ping", timeout: .milliseconds(500)) == nil)
        }
    }

    @Test("subscriptions filter by metric; unsubscribe stops; replies reach the dashboards watching")
    func subscriptionsAndReplies() async throws {
        try await withServerProcess { s in
            let (dev, _) = await s.device("arm")
            let (dash, _) = await s.dashboard()
            dash.send(json: ["type": "subscribe", "source_id": "arm", "metrics": ["arm:x"]])
            #expect(await dash.next(type: "subscribed")?["metrics"] as? [String] == ["x"])
            dev.send(#"{"type":"telemetry","points":[{"metric":"x","value":1},{"metric":"y","value":2}]}"#)
            let live = await dash.next(type: "telemetry")
            #expect((live?["points"] as? [[String: Any]])?.compactMap { $0["metric"] as? String } == ["x"])
            // Replies to control come back: command_result and session_stopped.
            dev.send(#"{"type":"command_result","command":"configure","status":"ok"}"#)
            #expect(await dash.next(type: "command_result")?["source_id"] as? String == "arm")
            dev.send(#"{"type":"session_stopped","session_id":"s-1"}"#)
            #expect(await dash.next(type: "session_stopped")?["session_id"] as? String == "s-1")

            dash.send(json: ["type": "unsubscribe", "source_id": "arm"])
            dash.send(json: ["type": "ping"])  // answered after the unsubscribe is in effect
            #expect(await dash.next(type: "pong") != nil)
            dev.send(#"{"type":"telemetry","points":[{"metric":"x","value":3}]}"#)
            dev.send(#"{"type":"pong"}"#)
            #expect(await dash.next(timeout: .milliseconds(700)) == nil)
            // Rejected frames are counted by code for the WebSocket transport.
            dev.send(#"{"type":"telemetry","points":[{"metric":"","value":1}]}"#)
            #expect(await dev.next(type: "error")?["code"] as? String == "INVALID_MESSAGE")
            let metrics = try await s.metrics().text
            #expect(metrics.contains(#"plexus_rejects_total{reason="INVALID_MESSAGE",transport="ws"} 1"#))
            #expect(metrics.contains(#"plexus_points_ingested_total{transport="ws"} 3"#))
        }
    }

    @Test("recording over HTTP commands: start_session creates the session, stop_session completes it")
    func httpRecording() async throws {
        try await withServer { s in
            let (dev, _) = await s.device("bench", extra: ["acks": true])
            var r = try await s.post(
                "/v1/sources/bench/commands",
                #"{"command":"start_session","params":{"session_id":"run-7","session_name":"Motor test"}}"#)
            #expect(r.status == 200)
            #expect(await dev.next(type: "start_session")?["session_id"] as? String == "run-7")
            r = try await s.get("/api/sessions/run-7")
            #expect(r.object["status"] as? String == "active" && r.object["name"] as? String == "Motor test")
            dev.send(#"{"type":"telemetry","seq":1,"points":[{"metric":"rpm","value":1200},{"metric":"rpm","value":1250}]}"#)
            // Stored (acknowledged) before the recording stops.
            #expect(await dev.next(type: "telemetry_ack")?["seq"] as? Int == 1)
            r = try await s.post("/v1/sources/bench/commands", #"{"command":"stop_session"}"#)
            #expect(r.status == 200)
            #expect(await dev.next(type: "stop_session")?["session_id"] as? String == "run-7")
            r = try await s.get("/api/sessions/run-7")
            #expect(r.object["status"] as? String == "completed" && r.object["ended_at"] is String)
            #expect((r.object["summary"] as? [String: Any])?["point_count"] as? Int == 2)
        }
    }

    @Test("a session_id of the wrong type, empty, huge or with control characters is refused, on commands and bodies; nothing is recorded")
    func hostileSessionIDs() async throws {
        try await withServer { s in
            let (dev, _) = await s.device("bench")
            let bad = ["5", "true", "{}", "[\"a\"]", "\"\"", "\"a\\u0000b\"", "\"\(String(repeating: "x", count: 257))\""]
            for id in bad {
                for command in ["start_session", "stop_session"] {
                    let r = try await s.post(
                        "/v1/sources/bench/commands", #"{"command":"\#(command)","params":{"session_id":\#(id)}}"#)
                    #expect(r.status == 400 && r.object["code"] as? String == "VALIDATION_ERROR", "\(command) \(id): \(r.text)")
                }
                let body = try await s.post("/api/sessions", #"{"name":"n","source_id":"bench","session_id":\#(id)}"#)
                #expect(body.status == 400, "POST /api/sessions \(id): \(body.text)")
            }
            let list = try await s.get("/api/sessions").object["sessions"] as? [Any]
            #expect(list?.isEmpty == true)
            // The device stayed connected and was sent no command.
            #expect(await dev.next(timeout: .milliseconds(200)) == nil)
            #expect(try await s.get("/v1/sources/bench").object["online"] as? Bool == true)
        }
    }

    @Test("the automatic interval follows the original platform's thresholds")
    func autoInterval() {
        let minute: Int64 = 60_000_000
        let cases: [(Int64, Resolution?)] = [
            (9 * minute, nil), (10 * minute, .minute), (599 * minute, .minute), (600 * minute, .tenMinutes),
            (3 * 1_440 * minute - 1, .tenMinutes), (3 * 1_440 * minute, .hour), (15 * 1_440 * minute - 1, .hour),
            (15 * 1_440 * minute, .day), (400 * 1_440 * minute, .day),
        ]
        for (span, expected) in cases {
            #expect(QueryRoutes.autoInterval(TimeRange(start: 0, end: span)) == expected, "\(span / minute) min")
        }
    }
}
