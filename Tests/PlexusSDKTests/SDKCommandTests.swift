import Foundation
import PlexusServerTesting
import Synchronization
import Testing

@testable import Plexus

@Suite("Swift SDK: control messages")
struct SDKCommandParsingTests {
    @Test("each forwarded control frame parses into its action; other frames are not commands")
    func parse() {
        let cases: [(String, PlexusCommand.Action?)] = [
            (
                #"{"type":"start_stream","source_id":"d","interval_ms":100,"metrics":["d:accel_x","accel_y"]}"#,
                .startStream(.init(metrics: ["accel_x", "accel_y"], intervalMs: 100))
            ),
            (#"{"type":"start_stream","source_id":"d","id":"s1"}"#, .startStream(.init(id: "s1"))),
            (#"{"type":"stop_stream","source_id":"d","id":"*"}"#, .stopStream(id: "*")),
            (#"{"type":"stop_stream","source_id":"d"}"#, .stopStream(id: nil)),
            (
                #"{"type":"start_session","source_id":"d","interval_ms":50,"metrics":[],"session_id":"s_1","session_name":"Motor Test"}"#,
                .startSession(id: "s_1", name: "Motor Test", stream: .init(metrics: [], intervalMs: 50))
            ),
            (#"{"type":"start_session","source_id":"d"}"#, nil),  // no session id: not actionable
            (#"{"type":"stop_session","source_id":"d","session_id":"s_1"}"#, .stopSession(id: "s_1")),
            (
                #"{"type":"configure","source_id":"d","config":{"sample_rate":50,"accel_range":4,"x":null},"sensor":"MPU6050"}"#,
                .configure(sensor: "MPU6050", options: ["sample_rate": 50, "accel_range": 4])
            ),
            (#"{"type":"ping","source_id":"d"}"#, .ping),
            (#"{"type":"start_camera","source_id":"d","camera_id":"*"}"#, .other),
            (#"{"type":"telemetry_ack","seq":1}"#, nil),
            (#"{"type":"start_stream","interval_ms":"#, nil),
        ]
        for (text, expected) in cases {
            #expect(PlexusCommand.parse(text)?.action == expected, "\(text)")
        }
        // Wrong types read as absent rather than losing the command.
        #expect(PlexusCommand.parse(#"{"type":"start_stream","interval_ms":"fast","metrics":[1]}"#)?.action == .startStream(.init()))
    }

    @Test("replies have the spec's shapes")
    func replies() throws {
        #expect(DeviceFrame.pong == #"{"type":"pong"}"#)
        #expect(
            DeviceFrame.sessionStarted(id: "s_1", name: "Motor Test")
                == #"{"type":"session_started","session_id":"s_1","session_name":"Motor Test"}"#)
        #expect(DeviceFrame.sessionStopped(id: "s_1") == #"{"type":"session_stopped","session_id":"s_1"}"#)
        let configure = try #require(PlexusCommand.parse(#"{"type":"configure","sensor":"BME280","config":{}}"#))
        #expect(
            configure.resultFrame(.error("no sensor named 'BME280'"))
                == #"{"type":"command_result","command":"configure","sensor":"BME280","status":"error","message":"no sensor named 'BME280'"}"#
        )
        let stop = try #require(PlexusCommand.parse(#"{"type":"stop_stream","id":"*"}"#))
        #expect(stop.resultFrame(.ok) == #"{"type":"command_result","command":"stop_stream","id":"*","status":"ok"}"#)
    }

    @Test("during a session points carry the session_id tag, or the field when the tags are full")
    func sessionTagging() throws {
        let at = Date(timeIntervalSince1970: 1)
        let plain = try Plexus.encode(PlexusPoint("m", 1, timestamp: at), now: at, session: "s_1")
        #expect(String(decoding: plain, as: UTF8.self) == #"{"metric":"m","value":1,"timestamp":1000,"tags":{"session_id":"s_1"}}"#)
        let own = try Plexus.encode(PlexusPoint("m", 1, timestamp: at, tags: ["session_id": "mine"]), now: at, session: "s_1")
        #expect(String(decoding: own, as: UTF8.self).contains(#""session_id":"mine""#))
        let full = Dictionary(uniqueKeysWithValues: (0..<16).map { ("k\($0)", "v") })
        let crowded = String(
            decoding: try Plexus.encode(PlexusPoint("m", 1, timestamp: at, tags: full), now: at, session: "s_1"), as: UTF8.self)
        #expect(crowded.hasSuffix(#","session_id":"s_1"}"#))
        let none = try Plexus.encode(PlexusPoint("m", 1, timestamp: at), now: at, session: nil)
        #expect(!String(decoding: none, as: UTF8.self).contains("session"))
    }
}

@Suite("Swift SDK: control messages from a dashboard, against the server", .timeLimit(.minutes(2)))
struct SDKCommandServerTests {
    @Test("a dashboard drives the SDK: pong, session_started/stopped, command_result; session points are stored in the session")
    func drive() async throws {
        try await withServer { s in
            var c = PlexusConfiguration(apiKey: s.key, sourceID: "cmd-1", gatewayURL: s.url, installID: "c0ffee")
            c.flushInterval = .milliseconds(20)
            c.sensors = [["name": "MPU6050", "metrics": ["accel_x"]]]
            let received = Received()
            try await withPlexus(c) { px in
                #expect(await eventually(timeout: .seconds(5)) { px.isConnected })
                #expect(px.isConnected)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await command in px.commands {
                            received.list.withLock { $0.append(command) }
                            switch command.action {
                            case .configure(let sensor, _):
                                try await px.reply(to: command, sensor == "MPU6050" ? .ok : .error("no sensor named '\(sensor)'"))
                            case .startStream, .stopStream:
                                try await px.reply(to: command, .ok)
                            default:
                                break
                            }
                        }
                    }
                    let (dash, hello) = await s.dashboard()
                    let online = (hello?["online_sources"] as? [[String: Any]])?.first
                    #expect((online?["sensors"] as? [[String: Any]])?.first?["name"] as? String == "MPU6050")

                    dash.send(json: ["type": "ping", "source_id": "cmd-1"])
                    #expect(await dash.next(type: "pong")?["source_id"] as? String == "cmd-1")

                    dash.send(json: ["type": "start_stream", "source_id": "cmd-1", "metrics": ["accel_x"], "interval_ms": 100, "id": "st"])
                    let started = await dash.next(type: "command_result")
                    #expect(
                        started?["command"] as? String == "start_stream" && started?["status"] as? String == "ok"
                            && started?["id"] as? String == "st")

                    dash.send(json: ["type": "configure", "source_id": "cmd-1", "sensor": "BME280", "config": ["sample_rate": 5]])
                    let refused = await dash.next(type: "command_result")
                    #expect(refused?["status"] as? String == "error" && refused?["sensor"] as? String == "BME280")

                    dash.send(json: ["type": "start_session", "source_id": "cmd-1", "session_name": "Motor Test"])
                    let session = try #require(await dash.next(type: "session_started"))
                    let id = try #require(session["session_id"] as? String)
                    #expect(session["session_name"] as? String == "Motor Test")
                    #expect(px.sessionID == id)
                    try px.send("rpm", 1200)
                    try px.send("rpm", 1250)
                    try await px.flush()
                    dash.send(json: ["type": "stop_session", "source_id": "cmd-1"])
                    #expect(await dash.next(type: "session_stopped")?["session_id"] as? String == id)
                    #expect(px.sessionID == nil)
                    try px.send("rpm", 0)
                    try await px.flush()

                    dash.send(json: ["type": "stop_stream", "source_id": "cmd-1", "id": "*"])
                    #expect(await dash.next(type: "command_result")?["command"] as? String == "stop_stream")

                    let points = try await s.get("/api/sessions/\(id)")
                    #expect((points.object["summary"] as? [String: Any])?["point_count"] as? Int == 2)
                    let tagged = try await s.get(
                        "/v1/sources/cmd-1/metrics/query?metrics=rpm&start=0&end=99999999999999&interval=raw&session_id=\(id)")
                    let series = (tagged.object["series"] as? [String: Any])?["rpm"] as? [String: Any]
                    #expect(series?["value"] as? [Double] == [1200, 1250])
                    group.cancelAll()
                }
            }
            let types = received.list.withLock { $0.map(\.type) }
            #expect(types == ["ping", "start_stream", "configure", "start_session", "stop_session", "stop_stream"])
        }
    }
}

final class Received: Sendable {
    let list = Mutex<[PlexusCommand]>([])
}
