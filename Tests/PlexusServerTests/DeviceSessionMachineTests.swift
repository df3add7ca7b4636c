import Foundation
import PlexusCore
import PlexusModel
import Testing

@testable import PlexusServer

/// The device protocol without sockets or clocks: frames in, actions out.
@Suite("Device session state machine")
struct DeviceSessionMachineTests {
    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
    static func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    func authed(acks: Bool = false) -> DeviceSessionMachine {
        var m = DeviceSessionMachine()
        _ = m.received(Self.bytes(#"{"type":"device_auth","api_key":"plx_x","source_id":"drone-01"}"#), now: .zero)
        _ = m.authenticated(orgID: 1, sourceID: "drone-01", acks: acks, serverTimeMs: 1_700_000_000_000)
        return m
    }

    @Test("time_sync asks the shell for the server's clock, with the frame's id as sent; it counts against the control rate")
    func timeSync() {
        var m = authed()
        let actions = m.received(Self.bytes(#"{"type":"time_sync","id":7}"#), now: .zero)
        guard actions.count == 1, case .timeSync(let id) = actions[0] else {
            Issue.record("unexpected \(actions)")
            return
        }
        #expect(id == "7")
        #expect(
            Self.text(OutboundFrame.timeSync(idJSON: id, serverTimeMs: 1_700_000_000_123))
                == #"{"type":"time_sync","id":7,"server_time_ms":1700000000123}"#)
        #expect(Self.text(OutboundFrame.timeSync(idJSON: nil, serverTimeMs: 5)) == #"{"type":"time_sync","server_time_ms":5}"#)
        var limited = 0
        for _ in 0..<100 {
            if case .send = m.received(Self.bytes(#"{"type":"time_sync"}"#), now: .zero).first { limited += 1 }
        }
        #expect(limited == 100 - Int(DeviceSessionMachine.controlBurst) + 1)
    }

    @Test(
        "a first frame that is not a valid device_auth: a clear error, then close 1008",
        arguments: [
            (#"{"type":"telemetry","points":[]}"#, "first message must be device_auth"),
            ("not json", "first message must be device_auth"),
            (
                #"{"type":"device_auth","source_id":"Bad Name","api_key":"k"}"#,
                "device_auth source_id must match ^[a-z0-9][a-z0-9._-]*$ (at most 256 bytes)"
            ),
            (#"{"type":"device_auth","source_id":"ok"}"#, "device_auth needs api_key"),
        ])
    func wrongFirstFrame(_ first: String, _ message: String) {
        do {
            var m = DeviceSessionMachine()
            let actions = m.received(Self.bytes(first), now: .zero)
            guard actions.count == 2, case .send(let e) = actions[0], case .close(let code, _) = actions[1] else {
                Issue.record("unexpected \(actions)")
                return
            }
            #expect(Self.text(e) == #"{"type":"error","message":"\#(message)"}"#)
            #expect(code == 1008)
            #expect(m.state == .closed)
            #expect(m.received(Self.bytes(#"{"type":"heartbeat"}"#), now: .zero).isEmpty)
        }
    }

    @Test("device_auth asks the shell to authenticate; success sends compact authenticated")
    func auth() {
        var m = DeviceSessionMachine()
        let a = m.received(
            Self.bytes(
                #"{"type":"device_auth","api_key":"plx_k","source_id":"drone-01","install_id":"abc","platform":"python-sdk","agent_version":"0.6.2","acks":true,"sensors":[{"name":"MPU6050"}]}"#
            ), now: .zero)
        guard case .authenticate(let auth)? = a.first else {
            Issue.record("\(a)")
            return
        }
        #expect(
            auth
                == DeviceAuth(
                    apiKey: "plx_k", sourceID: "drone-01", installID: "abc", platform: "python-sdk",
                    agentVersion: "0.6.2", sensors: #"[{"name":"MPU6050"}]"#, commands: nil, acks: true))
        let ok = m.authenticated(orgID: 1, sourceID: "drone-01_2", acks: true, serverTimeMs: 1_746_100_800_000)
        guard case .send(let frame)? = ok.first else {
            Issue.record("\(ok)")
            return
        }
        #expect(Self.text(frame) == #"{"type":"authenticated","source_id":"drone-01_2","server_time_ms":1746100800000,"acks":true}"#)
        #expect(m.sourceID == "drone-01_2")
    }

    @Test("a refused key: the reason, then close 1008; the deadline does the same")
    func authFailure() {
        var m = DeviceSessionMachine()
        _ = m.received(Self.bytes(#"{"type":"device_auth","api_key":"plx_k","source_id":"d"}"#), now: .zero)
        let f = m.authFailed("Invalid API key")
        guard case .send(let e) = f[0], case .close(1008, "auth failed") = f[1] else {
            Issue.record("\(f)")
            return
        }
        #expect(Self.text(e) == #"{"type":"error","message":"Invalid API key"}"#)
        var late = DeviceSessionMachine()
        #expect(late.authDeadlinePassed().count == 2)
        #expect(authed().authDeadlinePassedCopy.isEmpty)
    }

    @Test("telemetry: stored with the connection's name (never a point's own); acked by seq when asked")
    func telemetry() {
        var m = authed(acks: true)
        let a = m.received(
            Self.bytes(
                #"{"type":"telemetry","seq":7,"points":[{"metric":"t","value":1,"source_id":"other"},{"metric":"s","value":"x","class":"metric"}]}"#
            ),
            now: .zero)
        guard case .store(let batch, _, let seq)? = a.first else {
            Issue.record("\(a)")
            return
        }
        #expect(seq == 7)
        #expect(batch.points.map(\.sourceID) == ["drone-01", "drone-01"])
        #expect(batch.points[1].value == .string("x"))  // class "metric" never drops a string
        var noAcks = authed()
        guard case .store(_, _, nil)? = noAcks.received(Self.bytes(#"{"type":"telemetry","seq":1,"points":[]}"#), now: .zero).first
        else {
            Issue.record("acked without acks")
            return
        }
    }

    @Test(
        "bad frames get an error and the connection stays open",
        arguments: [
            (
                #"{"type":"telemetry","seq":3,"points":[{"metric":"t","value":NaN}]}"#,
                #"{"type":"error","code":"INVALID_MESSAGE","detail":"points[0].value must be finite","message":"points[0].value must be finite","seq":3}"#
            ),
            (
                "{nope",
                #"{"type":"error","code":"INVALID_JSON","detail":"frame is not a JSON object","message":"frame is not a JSON object"}"#
            ),
            (
                #"{"type":"launch_missiles"}"#,
                #"{"type":"error","code":"INVALID_MESSAGE","detail":"unknown message type","message":"unknown message type"}"#
            ),
            (#"{"points":[]}"#, #"{"type":"error","code":"INVALID_MESSAGE","detail":"frame has no type","message":"frame has no type"}"#),
        ])
    func badFrames(_ frame: String, _ reply: String) {
        var m = authed()
        let a = m.received(Self.bytes(frame), now: .zero)
        guard case .send(let e)? = a.first, a.count == 1 else {
            Issue.record("\(a)")
            return
        }
        #expect(Self.text(e) == reply)
        #expect(m.sourceID == "drone-01")
    }

    @Test("replies and device messages are relayed; heartbeats and device errors have their own actions")
    func relays() {
        var m = authed()
        for t in [
            "session_started", "session_stopped", "pong", "command_result", "video_frame", "command_status", "command_sync",
            "command_ack",
        ] {
            guard case .relay(let type, _)? = m.received(Self.bytes(#"{"type":"\#(t)","camera_id":"c","frame":"AA=="}"#), now: .zero).first
            else {
                Issue.record("no relay for \(t)")
                continue
            }
            #expect(type.rawValue == t)
        }
        guard case .heartbeat? = m.received(Self.bytes(#"{"type":"heartbeat","uptime_s":3}"#), now: .zero).first else {
            Issue.record("heartbeat")
            return
        }
        guard
            case .deviceError(let msg, let src, _)? = m.received(
                Self.bytes(#"{"type":"device_error","error":"I2C timeout","source":"MPU6050"}"#), now: .zero
            ).first
        else {
            Issue.record("device_error")
            return
        }
        #expect((msg, src) == ("I2C timeout", "MPU6050"))
    }

    @Test("over the telemetry rate the device is told and slowed, and its frames are still stored and acked")
    func rateLimit() {
        var m = authed(acks: true)
        let frame = Self.bytes(#"{"type":"telemetry","seq":1,"points":[]}"#)
        var paused: [Duration] = []
        var stored = 0
        for _ in 0..<Int(DeviceSessionMachine.telemetryBurst) + 5 {
            for a in m.received(frame, now: .zero) {
                switch a {
                case .send(let e):
                    // No seq: SDKs would take "error with seq" as dropped and never resend.
                    #expect(
                        Self.text(e)
                            == #"{"type":"error","code":"RATE_LIMITED","detail":"over 500 frames/s; reading is slowed","message":"over 500 frames/s; reading is slowed"}"#
                    )
                case .pause(let d): paused.append(d)
                case .store(_, _, let seq):
                    #expect(seq == 1)
                    stored += 1
                default: Issue.record("unexpected \(a)")
                }
            }
        }
        #expect(stored == Int(DeviceSessionMachine.telemetryBurst) + 5)
        #expect(paused == (1...5).map { .milliseconds(2 * $0) })  // 500/s: each extra frame waits 2 ms more
    }

    @Test func tokenBucket() {
        var b = TokenBucket(capacity: 2, refillPerSecond: 10)
        let taken = [
            b.take(at: .zero), b.take(at: .zero), b.take(at: .zero), b.take(at: .milliseconds(50)),
            b.take(at: .milliseconds(160)), b.take(at: .seconds(10)), b.take(at: .seconds(10)), b.take(at: .seconds(10)),
        ]
        #expect(taken == [true, true, false, false, true, true, true, false])
    }

    @Test("relayed frames carry the device's name")
    func tagged() {
        #expect(Self.text(Gateway.tagged(Self.bytes(#"{"type":"pong"}"#), source: "d1")) == #"{"type":"pong","source_id":"d1"}"#)
        #expect(
            Self.text(
                Gateway.tagged(Self.bytes(#"{"source_id":"spoof", "uptime_s": 3.5, "type":"heartbeat","x":{"a":[1]}} "#), source: "d1"))
                == #"{"type":"heartbeat","source_id":"d1","uptime_s":3.5,"x":{"a":[1]}}"#)
    }
}

extension DeviceSessionMachine {
    var authDeadlinePassedCopy: [Action] {
        var copy = self
        return copy.authDeadlinePassed()
    }
}

@Suite("Dashboard outbox")
struct DashboardOutboxTests {
    @Test("a dashboard that does not read keeps a bounded queue, and what was dropped is reported in one gap frame")
    func bounded() throws {
        let box = DashboardOutbox(id: 1, limits: .init(maxBytes: 64 << 10))
        for i in 0..<5_000 {
            box.enqueue(LiveChunk(sourceID: "s", bytes: Array(#"{"v":\#(i)}"#.utf8), count: 1, firstMicros: Int64(i), lastMicros: Int64(i)))
        }
        for i in 0..<300 { box.enqueue(Array(#"{"type":"x","i":\#(i)}"#.utf8)) }
        let d = box.drain()
        #expect(d.close == nil)
        #expect(d.frames.count == 1 + 256 + 1)  // the gap notice, the newest 256 of the server's frames, the telemetry
        #expect(d.frames.reduce(0) { $0 + $1.count } <= (64 << 10) + 200)
        let gap = try #require(try JSONSerialization.jsonObject(with: Data(d.frames[0])) as? [String: Any])
        let telemetry = String(decoding: d.frames.last!, as: UTF8.self)
        #expect(telemetry.hasPrefix(#"{"type":"telemetry","source_id":"s","points":[{"v":"#))
        #expect(telemetry.hasSuffix(#"{"v":4999}]}"#))
        let kept = telemetry.components(separatedBy: #"{"v":"#).count - 1
        #expect(gap["type"] as? String == "gap" && gap["dropped_frames"] as? Int == 44)
        #expect((gap["dropped_points"] as? Int).map { $0 + kept } == 5_000)
        #expect(box.drain().frames.isEmpty)
    }
}

@Suite("Device outbox: shutdown")
struct DeviceOutboxDrainTests {
    @Test("an idle connection is closed by the drain, and no frame begins after it")
    func idle() {
        let box = DeviceOutbox(id: 1)
        #expect(box.drain())  // idle: the drain closes it now
        #expect(!box.beginFrame())  // a frame read meanwhile is not handled (not stored, not acked)
        #expect(!box.drain())  // only the first call closes
    }

    @Test("a frame in hand is finished first; then its reader closes")
    func busy() {
        let box = DeviceOutbox(id: 2)
        #expect(box.beginFrame())
        #expect(!box.drain())  // the reader is mid-frame: it closes after it
        #expect(box.endFrame())  // ... and is told so once the frame is stored and acked
        #expect(!box.beginFrame())

        let calm = DeviceOutbox(id: 3)
        #expect(calm.beginFrame())
        #expect(!calm.endFrame())  // no shutdown: carry on
        #expect(calm.drain())
    }
}
