import Foundation
import PlexusModel

/// A control message from a dashboard (or `POST /v1/sources/{id}/commands`), as the server
/// forwards it to the device: a top-level frame whose `type` is the command.
///
/// The client answers some commands itself, before your program sees them:
/// - `ping` → `{"type":"pong"}`;
/// - `start_session` → the session becomes active (every point sent from then on is tagged
///   `session_id`), then `{"type":"session_started","session_id":…,"session_name":…}`;
/// - `stop_session` → the session ends, then `{"type":"session_stopped","session_id":…}`.
///
/// Everything else (`start_stream`, `stop_stream`, `configure`, camera, CAN and MAVLink
/// commands) is yours to act on; answer with ``Plexus/reply(to:_:)``, which sends a
/// `command_result`.
public struct PlexusCommand: Sendable, Equatable {
    /// What a `start_stream` (or the stream part of a `start_session`) asks for.
    public struct StreamRequest: Sendable, Equatable {
        /// The stream's id (`stop_stream` may name it); nil if the dashboard gave none.
        public var id: String?
        /// Metric names to stream, with any `source:` prefix removed; empty means all.
        public var metrics: [String]
        /// The global rate cap: at most one reading per sensor every `intervalMs`; nil for none.
        public var intervalMs: Double?

        public init(id: String? = nil, metrics: [String] = [], intervalMs: Double? = nil) {
            self.id = id
            self.metrics = metrics
            self.intervalMs = intervalMs
        }
    }

    public enum Action: Sendable, Equatable {
        case startStream(StreamRequest)
        /// `id` nil or `"*"`: every stream.
        case stopStream(id: String?)
        case startSession(id: String, name: String?, stream: StreamRequest)
        case stopSession(id: String?)
        /// Options for the sensor named `sensor` (its driver name, e.g. `MPU6050`).
        case configure(sensor: String, options: [String: PlexusValue])
        case ping
        /// A command this SDK does not interpret (`start_camera`, `mavlink_command`, …):
        /// read ``PlexusCommand/json`` yourself.
        case other
    }

    /// The frame's `type`: the command's name.
    public let type: String
    public let action: Action
    /// The frame as it arrived (JSON text).
    public let json: String

    public init(type: String, action: Action, json: String) {
        self.type = type
        self.action = action
        self.json = json
    }

    /// The frame types the server forwards as commands (docs/websocket-api.md).
    public static let commandTypes: Set<String> = [
        "start_stream", "stop_stream", "start_session", "stop_session", "configure", "ping",
        "start_camera", "stop_camera", "configure_camera", "start_can", "stop_can",
        "start_mavlink", "stop_mavlink", "mavlink_command",
    ]

    /// Parses a frame the server sent; nil if it is not a command (acks, errors, …) or
    /// not JSON. A command whose fields have the wrong types keeps the fields that are right.
    public static func parse(_ text: String) -> PlexusCommand? {
        guard let wire = try? JSONDecoder().decode(Wire.self, from: Data(text.utf8)),
              commandTypes.contains(wire.type) else { return nil }
        let stream = StreamRequest(
            id: wire.id,
            metrics: (wire.metrics ?? []).map { m in m.split(separator: ":", maxSplits: 1).last.map(String.init) ?? m },
            intervalMs: wire.intervalMs.flatMap { $0 > 0 && $0.isFinite ? $0 : nil })
        let action: Action
        switch wire.type {
        case "start_stream": action = .startStream(stream)
        case "stop_stream": action = .stopStream(id: wire.id)
        case "start_session":
            guard let id = wire.sessionID, !id.isEmpty else { return nil }
            action = .startSession(id: id, name: wire.sessionName, stream: StreamRequest(metrics: stream.metrics, intervalMs: stream.intervalMs))
        case "stop_session": action = .stopSession(id: wire.sessionID)
        case "configure":
            guard let sensor = wire.sensor else { return PlexusCommand(type: wire.type, action: .other, json: text) }
            var options: [String: PlexusValue] = [:]
            if case .object(let fields)? = wire.config?.node { for (k, v) in fields { options[k] = v.value } }
            action = .configure(sensor: sensor, options: options)
        case "ping": action = .ping
        default: action = .other
        }
        return PlexusCommand(type: wire.type, action: action, json: text)
    }

    /// The fields the SDK reads; a field of the wrong type reads as absent.
    private struct Wire: Decodable {
        var type: String
        var id: String?
        var metrics: [String]?
        var intervalMs: Double?
        var sessionID: String?
        var sessionName: String?
        var sensor: String?
        var config: AnyJSON?

        enum CodingKeys: String, CodingKey {
            case type, id, metrics, sensor, config
            case intervalMs = "interval_ms"
            case sessionID = "session_id"
            case sessionName = "session_name"
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(String.self, forKey: .type)
            id = (try? c.decodeIfPresent(String.self, forKey: .id)) ?? nil
            metrics = (try? c.decodeIfPresent([String].self, forKey: .metrics)) ?? nil
            intervalMs = (try? c.decodeIfPresent(Double.self, forKey: .intervalMs)) ?? nil
            sessionID = (try? c.decodeIfPresent(String.self, forKey: .sessionID)) ?? nil
            sessionName = (try? c.decodeIfPresent(String.self, forKey: .sessionName)) ?? nil
            sensor = (try? c.decodeIfPresent(String.self, forKey: .sensor)) ?? nil
            config = (try? c.decodeIfPresent(AnyJSON.self, forKey: .config)) ?? nil
        }
    }
}

/// Any JSON value, decoded into a ``PlexusValue`` (`null` becomes nil inside containers).
struct AnyJSON: Decodable, Sendable {
    enum Node: Sendable {
        case null
        case value(PlexusValue)
        case object([(String, AnyJSON)])
        case array([AnyJSON])
    }

    let node: Node

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        if let c = try? decoder.container(keyedBy: Key.self) {
            node = .object(try c.allKeys.sorted { $0.stringValue < $1.stringValue }.map { ($0.stringValue, try c.decode(AnyJSON.self, forKey: $0)) })
            return
        }
        if var c = try? decoder.unkeyedContainer() {
            var items: [AnyJSON] = []
            while !c.isAtEnd { items.append(try c.decode(AnyJSON.self)) }
            node = .array(items)
            return
        }
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            node = .null
        } else if let b = try? c.decode(Bool.self) {
            node = .value(.bool(b))
        } else if let d = try? c.decode(Double.self) {
            node = .value(.number(d))
        } else {
            node = .value(.string(try c.decode(String.self)))
        }
    }

    /// The value; nil for `null`.
    var value: PlexusValue? {
        switch node {
        case .null: nil
        case .value(let v): v
        case .object(let fields): .object(fields.compactMap { k, v in v.value.map { (k, $0) } })
        case .array(let items): .array(items.compactMap(\.value))
        }
    }
}

/// How a command went, for ``Plexus/reply(to:_:)``.
public enum PlexusCommandResult: Sendable, Equatable {
    case ok
    case error(String)
}

/// The frames a device sends in answer to commands.
enum CommandReplies {
    static func pong() -> String { #"{"type":"pong"}"# }

    static func sessionStarted(id: String, name: String?) -> String {
        var w = JSONWriter(capacity: 96)
        w.raw("{\"type\":\"session_started\",\"session_id\":")
        w.string(id)
        if let name {
            w.raw(",\"session_name\":")
            w.string(name)
        }
        w.raw("}")
        return w.string
    }

    static func sessionStopped(id: String) -> String {
        var w = JSONWriter(capacity: 96)
        w.raw("{\"type\":\"session_stopped\",\"session_id\":")
        w.string(id)
        w.raw("}")
        return w.string
    }

    /// `{"type":"command_result","command":…,"id"?:…,"sensor"?:…,"status":"ok"|"error","message"?:…}`
    static func result(for command: PlexusCommand, _ result: PlexusCommandResult) -> String {
        var w = JSONWriter(capacity: 128)
        w.raw("{\"type\":\"command_result\",\"command\":")
        w.string(command.type)
        switch command.action {
        case .startStream(let s) where s.id != nil:
            w.raw(",\"id\":")
            w.string(s.id ?? "")
        case .stopStream(let id?):
            w.raw(",\"id\":")
            w.string(id)
        case .configure(let sensor, _):
            w.raw(",\"sensor\":")
            w.string(sensor)
        default:
            break
        }
        switch result {
        case .ok:
            w.raw(",\"status\":\"ok\"}")
        case .error(let message):
            w.raw(",\"status\":\"error\",\"message\":")
            w.string(message)
            w.raw("}")
        }
        return w.string
    }
}

extension PlexusValue {
    /// Parses JSON text (a number, string, boolean, object or array); nil for `null` or
    /// text that is not JSON. `plexus send` uses it for values given on the command line.
    public init?(json text: String) {
        guard let decoded = try? JSONDecoder().decode(AnyJSON.self, from: Data(text.utf8)), let value = decoded.value else {
            return nil
        }
        self = value
    }
}
