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

    /// Parses a frame the server sent; nil if it is not a command (acks, errors, …) or
    /// not JSON. A command whose fields have the wrong types keeps the fields that are right.
    public static func parse(_ text: String) -> PlexusCommand? {
        let bytes = Array(text.utf8)
        guard let f = bytes.withUnsafeBytes({ Frames.fields($0) }), let type = f.string("type"),
            let command = ControlCommand(rawValue: type)
        else { return nil }
        let metrics = (f.raw["metrics"].flatMap(Frames.stringArray) ?? []).map { m in
            m.split(separator: ":", maxSplits: 1).last.map(String.init) ?? m
        }
        let stream = StreamRequest(
            id: f.string("id"), metrics: metrics,
            intervalMs: f.numbers["interval_ms"].flatMap { $0 > 0 && $0.isFinite ? $0 : nil })
        let action: Action
        switch command {
        case .startStream: action = .startStream(stream)
        case .stopStream: action = .stopStream(id: stream.id)
        case .startSession:
            guard let id = f.string("session_id"), !id.isEmpty else { return nil }
            action = .startSession(
                id: id, name: f.string("session_name"), stream: StreamRequest(metrics: metrics, intervalMs: stream.intervalMs))
        case .stopSession: action = .stopSession(id: f.string("session_id"))
        case .configure:
            guard let sensor = f.string("sensor") else { return PlexusCommand(type: type, action: .other, json: text) }
            var options: [String: PlexusValue] = [:]
            var config = f.raw["config"] ?? ""
            // Each option as a value of its own; a `null` option is left out.
            if let fields = config.withUTF8({ Frames.fields(UnsafeRawBufferPointer($0)) }) {
                for (k, raw) in fields.raw { options[k] = PlexusValue(jsonText: raw) }
            }
            action = .configure(sensor: sensor, options: options)
        case .ping: action = .ping
        default: action = .other
        }
        return PlexusCommand(type: type, action: action, json: text)
    }
}

/// How a command went, for ``Plexus/reply(to:_:)``.
public enum PlexusCommandResult: Sendable, Equatable {
    case ok
    case error(String)
}

extension PlexusCommand {
    /// The `command_result` answering this command: with the stream's `id` or the
    /// configured `sensor`, and the error's `message`.
    func resultFrame(_ result: PlexusCommandResult) -> String {
        var id: String?
        var sensor: String?
        switch action {
        case .startStream(let s): id = s.id
        case .stopStream(let i): id = i
        case .configure(let s, _): sensor = s
        default: break
        }
        let error: String? = if case .error(let m) = result { m } else { nil }
        return DeviceFrame.commandResult(command: type, id: id, sensor: sensor, error: error)
    }
}
