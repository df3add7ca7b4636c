import PlexusModel
import Testing

@testable import PlexusServer

/// The dashboard protocol without sockets: frames in, actions out.
@Suite("Dashboard session state machine")
struct DashboardSessionMachineTests {
    typealias M = DashboardSessionMachine

    static func fields(_ s: String) -> Result<DashboardRequest, DashboardRequest.Problem> {
        Array(s.utf8).withUnsafeBytes { DashboardRequest.decode($0) }
    }
    static func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    func signedIn(canControl: Bool = true) -> M {
        var m = M()
        _ = m.received(Self.fields(#"{"type":"auth","api_key":"plx_k"}"#))
        _ = m.authenticated(M.Session(orgID: 7, orgName: "acme", canControl: canControl))
        return m
    }

    /// The one error frame an action list sends (and nothing else).
    func onlyFrame(_ actions: [M.Action]) -> String? {
        guard actions.count == 1, case .send(let f) = actions[0] else { return nil }
        return Self.text(f)
    }

    @Test(
        "a first frame that is not a sign-in: a clear error, then close 1008; nothing after it counts",
        arguments: [
            (#"{"type":"subscribe","source_id":"rig"}"#, "first message must be auth (with api_key) or browser_auth"),
            ("not json", "first message must be auth (with api_key) or browser_auth"),
            (#"{"type":"auth"}"#, "api_key required"),
            (#"{"type":"data_api_auth"}"#, "api_key required"),
        ])
    func wrongFirstFrame(_ first: String, _ message: String) {
        var m = M()
        let actions = m.received(Self.fields(first))
        guard actions.count == 2, case .send(let e) = actions[0], case .close(let code, let reason) = actions[1] else {
            Issue.record("unexpected \(actions)")
            return
        }
        #expect(Self.text(e) == #"{"type":"error","message":"\#(message)"}"#)
        #expect(code == 1008 && reason == "auth failed")
        #expect(m.state == .closed)
        let r1 = m.received(Self.fields(#"{"type":"ping"}"#))
        #expect(r1.isEmpty)
    }

    @Test("a key (auth, data_api_auth or browser_auth with api_key) or the login cookie (browser_auth alone) is checked by the shell")
    func credentials() {
        for (frame, expected) in [
            (#"{"type":"auth","api_key":"plx_a"}"#, M.Credential.apiKey("plx_a")),
            (#"{"type":"data_api_auth","api_key":"plx_b"}"#, .apiKey("plx_b")),
            (#"{"type":"browser_auth","api_key":"plx_c"}"#, .apiKey("plx_c")),
            (#"{"type":"browser_auth"}"#, .loginCookie),
        ] {
            var m = M()
            let actions = m.received(Self.fields(frame))
            guard actions.count == 1, case .authenticate(let c) = actions[0] else {
                Issue.record("unexpected \(actions) for \(frame)")
                continue
            }
            #expect(c == expected)
            #expect(m.state == .authenticating)
            // While the shell checks, further frames wait (the reader is not reading).
            let r2 = m.received(Self.fields(#"{"type":"ping"}"#))
            #expect(r2.isEmpty)
            let r3 = m.authenticated(M.Session(orgID: 1, orgName: "o", canControl: false))
            #expect(r3)
            #expect(m.session == M.Session(orgID: 1, orgName: "o", canControl: false))
        }
    }

    @Test("a refused credential: the shell's message, then close 1008")
    func refused() {
        var m = M()
        _ = m.received(Self.fields(#"{"type":"auth","api_key":"plx_bad"}"#))
        let actions = m.authFailed("Invalid API key")
        guard actions.count == 2, case .send(let e) = actions[0], case .close(1008, _) = actions[1] else {
            Issue.record("unexpected \(actions)")
            return
        }
        #expect(Self.text(e) == #"{"type":"error","message":"Invalid API key"}"#)
        #expect(m.state == .closed)
        let r4 = m.authenticated(M.Session(orgID: 1, orgName: "o", canControl: true))
        #expect(!r4)
    }

    @Test("the deadline closes a socket that has not signed in, also while its credential is being checked")
    func deadline() {
        var idle = M()
        let actions = idle.authDeadlinePassed()
        guard actions.count == 2, case .send(let e) = actions[0], case .close(1008, "auth timeout") = actions[1] else {
            Issue.record("unexpected \(actions)")
            return
        }
        #expect(Self.text(e) == #"{"type":"error","message":"no auth frame within 10 s"}"#)

        var checking = M()
        _ = checking.received(Self.fields(#"{"type":"browser_auth"}"#))
        let r5 = checking.authDeadlinePassed()
        #expect(r5.count == 2)
        // The check finishing late must not sign the closed socket in.
        let r6 = checking.authenticated(M.Session(orgID: 1, orgName: "o", canControl: true))
        #expect(!r6)
        #expect(checking.state == .closed)

        var done = signedIn()
        let r7 = done.authDeadlinePassed()
        #expect(r7.isEmpty)
        #expect(done.session != nil)
    }

    @Test("subscribe: metrics as sent, the original dashboard's source:metric form trimmed, * for every device, confirmed")
    func subscribe() {
        var m = signedIn()
        var actions = m.received(Self.fields(#"{"type":"subscribe","source_id":"rig","metrics":["rig:temp","accel.x"]}"#))
        guard actions.count == 1, case .subscribe(let source, let metrics, let ok) = actions[0] else {
            Issue.record("unexpected \(actions)")
            return
        }
        #expect(source == "rig" && metrics == ["temp", "accel.x"])
        #expect(Self.text(ok) == #"{"metrics":["accel.x","temp"],"source_id":"rig","type":"subscribed"}"#)

        actions = m.received(Self.fields(#"{"type":"subscribe","source_id":"*"}"#))
        guard case .subscribe(nil, let all, let ok2) = actions.first else {
            Issue.record("unexpected \(actions)")
            return
        }
        #expect(all.isEmpty && Self.text(ok2) == #"{"metrics":[],"source_id":"*","type":"subscribed"}"#)

        for frame in [#"{"type":"subscribe"}"#, #"{"type":"subscribe","source_id":null,"metrics":null}"#] {
            guard case .subscribe(nil, let none, _) = m.received(Self.fields(frame)).first else {
                Issue.record("unexpected for \(frame)")
                return
            }
            #expect(none.isEmpty)
        }

        guard case .unsubscribe("rig") = m.received(Self.fields(#"{"type":"unsubscribe","source_id":"rig"}"#)).first,
            case .unsubscribe(nil) = m.received(Self.fields(#"{"type":"unsubscribe"}"#)).first
        else {
            Issue.record("unsubscribe")
            return
        }
    }

    @Test(
        "subscribe and unsubscribe validate source ids and metric names like ingest, and bound the metric list",
        arguments: [
            (#"{"type":"subscribe","source_id":"Rig One"}"#, "source_id must be"),
            (#"{"type":"subscribe","source_id":5}"#, "source_id must be"),
            (#"{"type":"subscribe","source_id":"-rig"}"#, "source_id must be"),
            (#"{"type":"unsubscribe","source_id":"a/b"}"#, "source_id must be"),
            (#"{"type":"subscribe","source_id":"rig","metrics":"temp"}"#, "metrics must be an array of strings"),
            (#"{"type":"subscribe","source_id":"rig","metrics":["temp",3]}"#, "metrics must be an array of strings"),
            (#"{"type":"subscribe","source_id":"rig","metrics":[""]}"#, "metric names must be"),
            (#"{"type":"subscribe","source_id":"rig","metrics":["a\u0007b"]}"#, "metric names must be"),
            (#"{"type":"subscribe","source_id":"rig","metrics":["\#(String(repeating: "m", count: 257))"]}"#, "metric names must be"),
            (
                #"{"type":"subscribe","source_id":"rig","metrics":[\#((0...1_000).map { "\"m\($0)\"" }.joined(separator: ","))]}"#,
                "at most 1000 metrics per subscribe"
            ),
        ])
    func subscribeValidation(frame: String, message: String) {
        var m = signedIn()
        let reply = onlyFrame(m.received(Self.fields(frame)))
        #expect(reply?.contains(message) == true, "\(reply ?? "nothing")")
        #expect(reply?.hasPrefix(#"{"type":"error","code":""#) == true)
        // Exactly 256 bytes is fine.
        let ok = m.received(Self.fields(#"{"type":"subscribe","source_id":"rig","metrics":["\#(String(repeating: "m", count: 256))"]}"#))
        guard case .subscribe = ok.first else {
            Issue.record("a 256-byte metric was refused")
            return
        }
    }

    @Test("frames with NaN or Infinity, or a time out of range, are refused before anything is echoed")
    func strictFrames() {
        var m = signedIn()
        for frame in [
            #"{"type":"configure","source_id":"rig","config":{"rate":NaN}}"#,
            #"{"type":"start_stream","source_id":"rig","metrics":[Infinity]}"#,
            #"{"type":"configure","source_id":"rig","timestamp":-1}"#,
            #"{"type":"configure","source_id":"rig","started_at":1e300}"#,
        ] {
            let reply = onlyFrame(m.received(Self.fields(frame)))
            #expect(reply?.contains(#""code":"INVALID_MESSAGE""#) == true, "\(frame): \(reply ?? "nothing")")
        }
        // interval_ms is a duration, not a time.
        guard case .control = m.received(Self.fields(#"{"type":"start_stream","source_id":"rig","interval_ms":-5}"#)).first else {
            Issue.record("interval_ms was checked as a time")
            return
        }
    }

    @Test("the sign-in frame may ask for telemetry_batch frames")
    func batches() {
        var m = M()
        _ = m.received(Self.fields(#"{"type":"browser_auth","batch":true}"#))
        #expect(m.batches)
        var plain = M()
        _ = plain.received(Self.fields(#"{"type":"auth","api_key":"plx_k"}"#))
        #expect(!plain.batches)
    }

    @Test("control messages go to the named device with their fields; read-only logins and missing source_id are refused")
    func control() {
        var m = signedIn()
        let actions = m.received(Self.fields(#"{"type":"start_stream","source_id":"rig","metrics":["temp"],"interval_ms":100}"#))
        guard actions.count == 1, case .control(let command, let source, let fields) = actions[0] else {
            Issue.record("unexpected \(actions)")
            return
        }
        #expect(command == "start_stream" && source == "rig")
        #expect(fields == ["metrics": #"["temp"]"#, "interval_ms": "100"])
        for command in ["stop_stream", "start_session", "stop_session", "configure", "ping"] {
            guard case .control(command, "rig", _) = m.received(Self.fields(#"{"type":"\#(command)","source_id":"rig"}"#)).first else {
                Issue.record("\(command) was not sent")
                continue
            }
        }
        let r8 = m.received(Self.fields(#"{"type":"stop_stream"}"#))
        #expect(
            onlyFrame(r8)
                == #"{"type":"error","code":"INVALID_MESSAGE","detail":"source_id required","message":"source_id required"}"#)

        var viewer = signedIn(canControl: false)
        let refused = onlyFrame(viewer.received(Self.fields(#"{"type":"start_session","source_id":"rig"}"#)))
        #expect(refused?.contains(#""code":"FORBIDDEN""#) == true && refused?.contains(#""source_id":"rig""#) == true)
        // A viewer may still watch.
        guard case .subscribe = viewer.received(Self.fields(#"{"type":"subscribe","source_id":"rig"}"#)).first else {
            Issue.record("viewer could not subscribe")
            return
        }
    }

    @Test("ping without a device is answered by the server; bad frames get an error and the socket stays open")
    func misc() {
        var m = signedIn()
        let r9 = m.received(Self.fields(#"{"type":"ping"}"#))
        #expect(onlyFrame(r9) == #"{"type":"pong"}"#)
        let r10 = m.received(Self.fields(#"{"type":"pong"}"#))
        #expect(r10.isEmpty)
        let r11 = m.received(Self.fields(#"{"type":"ready"}"#))
        #expect(r11.isEmpty)
        let r12 = m.received(Self.fields("not json"))
        #expect(
            onlyFrame(r12)
                == #"{"type":"error","code":"INVALID_JSON","detail":"frame is not a JSON object","message":"frame is not a JSON object"}"#)
        let r13 = m.received(Self.fields(#"{"type":"launch"}"#))
        #expect(onlyFrame(r13)?.contains("unknown message type") == true)
        // Signing in again is refused, the socket stays signed in.
        #expect(onlyFrame(m.received(Self.fields(#"{"type":"auth","api_key":"plx_k"}"#)))?.contains("already authenticated") == true)
        let r14 = m.received(Self.fields(#"{"source_id":"rig"}"#))
        #expect(onlyFrame(r14)?.contains("frame has no type") == true)
        #expect(m.session != nil)
        m.closed()
        let r15 = m.received(Self.fields(#"{"type":"ping"}"#))
        #expect(r15.isEmpty)
    }
}
