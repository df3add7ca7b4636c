import Foundation
import PlexusModel
import Testing

/// The dashboard frames' encoders against their decoders, and the shapes the dashboard
/// (Sources/PlexusDashboard) and the original platform's dashboard read.
@Suite("Dashboard frames")
struct DashboardFramesTests {
    static let device = DeviceStatus(
        sourceID: "drone-01", platform: "Linux", agentVersion: nil, sensors: .array([.object(["name": .string("IMU")])]),
        connectedAtMs: 1_700_000_000_000, lastSeenMs: 1_700_000_000_500)

    static func text(_ frame: DashboardFrame) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: try e.encode(frame), as: UTF8.self)
    }

    static let frames: [DashboardFrame] = [
        .initial(
            .init(
                orgID: "acme", canControl: true, batch: false, serverTimeMs: 5,
                onlineSources: [.init(device: device, metrics: ["a", "b"], recording: nil)])),
        .initial(
            .init(
                orgID: "acme", canControl: false, batch: true, serverTimeMs: 5,
                onlineSources: [.init(device: device, metrics: [], recording: "run-1")])),
        .sourceStatus(.online(device)),
        .sourceStatus(.offline(sourceID: "drone-01")),
        .subscribed(.init(sourceID: "*", metrics: ["x"])),
        .controlSent(.init(command: "ping", sourceID: "drone-01", frame: .object(["type": .string("ping")]))),
    ]

    @Test("every frame decodes to what was encoded", arguments: frames)
    func roundTrip(_ frame: DashboardFrame) throws {
        let data = try JSONEncoder().encode(frame)
        #expect(try JSONDecoder().decode(DashboardFrame.self, from: data) == frame)
        let type = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])["type"] as? String
        #expect(type == frame.type.rawValue)
    }

    @Test("the wire shapes: source_status online and offline, init without batch unless asked, nulls present")
    func shapes() throws {
        #expect(
            try Self.text(.sourceStatus(.offline(sourceID: "d")))
                == #"{"source_id":"d","status":"offline","type":"source_status"}"#)
        #expect(
            try Self.text(.sourceStatus(.online(Self.device)))
                == #"{"agent_version":null,"connected_at_ms":1700000000000,"last_seen_ms":1700000000500,"platform":"Linux","#
                + #""sensors":[{"name":"IMU"}],"source_id":"drone-01","status":"online","type":"source_status"}"#)
        let initial = try Self.text(Self.frames[0])
        #expect(!initial.contains("batch"))
        #expect(initial.contains(#""recording":null"#) && initial.contains(#""metrics":["a","b"]"#))
        #expect(initial.contains(#""org_id":"acme""#) && initial.contains(#""can_control":true"#))
        #expect(try Self.text(Self.frames[1]).contains(#""batch":true"#))
        #expect(
            try Self.text(.subscribed(.init(sourceID: "*", metrics: []))) == #"{"metrics":[],"source_id":"*","type":"subscribed"}"#)
    }

    @Test(
        "what is not a dashboard frame of this codec is refused, not guessed",
        arguments: [
            #"{"type":"telemetry","source_id":"d","points":[]}"#,
            #"{"type":"source_status","source_id":"d","status":"maybe"}"#,
            #"{"type":"source_status","status":"offline"}"#,
            #"{"type":"nope"}"#,
            #"{"source_id":"d"}"#,
            #"{"type":"init","org_id":"a","can_control":"yes","server_time_ms":1,"online_sources":[]}"#,
            #"{"type":"subscribed","source_id":"*","metrics":"x"}"#,
            #"[]"#,
        ])
    func refused(_ text: String) {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(DashboardFrame.self, from: Data(text.utf8)) }
    }

    @Test("the frame types are the vocabulary's, and none is also a device frame type or a command")
    func vocabulary() {
        let mine = Set(DashboardServerFrameType.allCases.map(\.rawValue))
        #expect(mine.isDisjoint(with: ControlCommand.allCases.map(\.rawValue)))
        #expect(mine.isDisjoint(with: DashboardFrameType.allCases.map(\.rawValue).filter { $0 != "pong" }))
    }
}
