import PlexusModel
import Testing

/// What dashboards send: every request's encoder against the decoder, and each refusal.
@Suite("Dashboard requests")
struct DashboardRequestTests {
    static func decode(_ text: String) -> Result<DashboardRequest, DashboardRequest.Problem> {
        Array(text.utf8).withUnsafeBytes { DashboardRequest.decode($0) }
    }

    static let requests: [DashboardRequest] = [
        .signIn(.auth, apiKey: "plx_k", batch: false),
        .signIn(.dataAPIAuth, apiKey: "plx_k", batch: true),
        .signIn(.browserAuth, apiKey: nil, batch: false),
        .subscribe(source: nil, metrics: []),
        .subscribe(source: "drone-01", metrics: ["accel.x", "temp"]),
        .unsubscribe(source: nil),
        .unsubscribe(source: "drone-01"),
        .ping,
        .ignored(.pong),
        .ignored(.ready),
        .ignored(.setThrottle),
        .control(.startStream, source: "drone-01", fields: ["metrics": #"["temp"]"#, "interval_ms": "200"]),
        .control(.ping, source: "drone-01", fields: [:]),
        .control(.configure, source: nil, fields: ["sensor": #""BME280""#]),
    ]

    @Test("every request decodes to what was encoded", arguments: requests)
    func roundTrip(_ request: DashboardRequest) {
        let text = String(decoding: request.encoded, as: UTF8.self)
        #expect(Self.decode(text) == .success(request), "\(text)")
    }

    @Test("the original dashboard's forms: source:metric trimmed, * and null for every device, ping with a source is a command")
    func originalForms() {
        #expect(
            Self.decode(#"{"type":"subscribe","source_id":"rig","metrics":["rig:temp","rpm"]}"#)
                == .success(.subscribe(source: "rig", metrics: ["temp", "rpm"])))
        #expect(Self.decode(#"{"type":"subscribe","source_id":null,"metrics":null}"#) == .success(.subscribe(source: nil, metrics: [])))
        #expect(Self.decode(#"{"type":"unsubscribe","source_id":"*"}"#) == .success(.unsubscribe(source: nil)))
        #expect(Self.decode(#"{"type":"ping"}"#) == .success(.ping))
        #expect(Self.decode(#"{"type":"ping","source_id":"rig"}"#) == .success(.control(.ping, source: "rig", fields: [:])))
    }

    @Test(
        "refusals name the problem, with the code dashboards act on",
        arguments: [
            ("not json", FrameErrorCode.invalidJSON, "frame is not a JSON object"),
            ("[1]", .invalidJSON, "frame is not a JSON object"),
            (#"{"source_id":"a"}"#, .invalidMessage, "frame has no type"),
            (#"{"type":"launch"}"#, .invalidMessage, "unknown message type"),
            (#"{"type":"subscribe","source_id":"Bad Name"}"#, .invalidMessage, "source_id must be"),
            (#"{"type":"subscribe","source_id":7}"#, .invalidMessage, "source_id must be"),
            (#"{"type":"subscribe","metrics":"temp"}"#, .invalidMessage, "metrics must be an array of strings"),
            (#"{"type":"subscribe","metrics":["a",1]}"#, .invalidMessage, "metrics must be an array of strings"),
            (#"{"type":"subscribe","metrics":[""]}"#, .invalidMessage, "metric names must be"),
            (#"{"type":"subscribe","metrics":["a\u0007"]}"#, .invalidMessage, "metric names must be"),
            (#"{"type":"start_stream","source_id":"a","interval_ms":NaN}"#, .invalidMessage, "interval_ms is not JSON"),
            (#"{"type":"start_session","source_id":"a","started_at":1e300}"#, .invalidMessage, "started_at out of range"),
        ])
    func refused(_ text: String, _ code: FrameErrorCode, _ message: String) {
        guard case .failure(let p) = Self.decode(text) else {
            Issue.record("\(text) was accepted")
            return
        }
        #expect(p.code == code)
        #expect(p.message.hasPrefix(message), "\(p.message)")
    }

    @Test("at most 1,000 metrics per subscribe: more is refused whole, not cut")
    func tooMany() {
        let names = (0...DashboardRequest.maxMetricsPerSubscribe).map { "\"m\($0)\"" }.joined(separator: ",")
        guard case .failure(let p) = Self.decode(#"{"type":"subscribe","source_id":"a","metrics":[\#(names)]}"#) else {
            Issue.record("accepted")
            return
        }
        #expect(p.code == .tooManySubscriptions && p.sourceID == "a")
    }
}
