/// The frames the server sends a dashboard on `/ws/browser` about devices and its own
/// requests (docs/websocket-api.md, "Dashboard protocol"): typed and Codable, since each
/// is sent once per event, not per point. Live telemetry, `gap` and `error` frames, which
/// are, keep their hand-written codecs (``LiveFrame``, ``OutboundFrame``).

/// A connected device as dashboards see it: in `init`'s `online_sources` and in
/// `source_status`.
public struct DeviceStatus: Codable, Sendable, Equatable {
    public var sourceID: String
    @Nullable public var platform: String?
    @Nullable public var agentVersion: String?
    /// What the device reported in `device_auth` (an array; `[]` when it sent none).
    public var sensors: JSONValue
    public var connectedAtMs: Int64
    public var lastSeenMs: Int64

    public init(
        sourceID: String, platform: String?, agentVersion: String?, sensors: JSONValue, connectedAtMs: Int64, lastSeenMs: Int64
    ) {
        self.sourceID = sourceID
        self.platform = platform
        self.agentVersion = agentVersion
        self.sensors = sensors
        self.connectedAtMs = connectedAtMs
        self.lastSeenMs = lastSeenMs
    }

    enum CodingKeys: String, CodingKey {
        case platform, sensors
        case sourceID = "source_id"
        case agentVersion = "agent_version"
        case connectedAtMs = "connected_at_ms"
        case lastSeenMs = "last_seen_ms"
    }
}

/// Every frame of this file, by its `type`.
public enum DashboardFrame: Sendable, Equatable, Codable {
    /// `init`: the first frame after sign-in.
    case initial(Initial)
    /// `source_status`: a device came online (with what it reported) or went offline.
    case sourceStatus(SourceStatus)
    /// `subscribed`: a subscription is in effect; everything after it is delivered.
    case subscribed(Subscribed)
    /// `control_sent`: a dashboard's command went to the device, as this frame.
    case controlSent(ControlSent)

    public struct Initial: Codable, Sendable, Equatable {
        public struct Source: Sendable, Equatable {
            public var device: DeviceStatus
            public var metrics: [String]
            /// The server-side recording's session id, if one is running.
            public var recording: String?

            public init(device: DeviceStatus, metrics: [String], recording: String?) {
                self.device = device
                self.metrics = metrics
                self.recording = recording
            }
        }

        /// The organisation's name.
        public var orgID: String
        public var canControl: Bool
        /// Live telemetry comes as `telemetry_batch` frames (asked for with `?batch=1`).
        public var batch: Bool
        public var serverTimeMs: Int64
        public var onlineSources: [Source]

        public init(orgID: String, canControl: Bool, batch: Bool, serverTimeMs: Int64, onlineSources: [Source]) {
            self.orgID = orgID
            self.canControl = canControl
            self.batch = batch
            self.serverTimeMs = serverTimeMs
            self.onlineSources = onlineSources
        }

        enum CodingKeys: String, CodingKey {
            case batch
            case orgID = "org_id"
            case canControl = "can_control"
            case serverTimeMs = "server_time_ms"
            case onlineSources = "online_sources"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            orgID = try c.decode(String.self, forKey: .orgID)
            canControl = try c.decode(Bool.self, forKey: .canControl)
            batch = try c.decodeIfPresent(Bool.self, forKey: .batch) ?? false
            serverTimeMs = try c.decode(Int64.self, forKey: .serverTimeMs)
            onlineSources = try c.decode([Source].self, forKey: .onlineSources)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(orgID, forKey: .orgID)
            try c.encode(canControl, forKey: .canControl)
            // Only when asked for: the original dashboard does not know the field.
            if batch { try c.encode(true, forKey: .batch) }
            try c.encode(serverTimeMs, forKey: .serverTimeMs)
            try c.encode(onlineSources, forKey: .onlineSources)
        }
    }

    /// `online` with the device's status, or `offline` with its `source_id` only.
    public enum SourceStatus: Sendable, Equatable {
        case online(DeviceStatus)
        case offline(sourceID: String)

        public var sourceID: String {
            switch self {
            case .online(let d): d.sourceID
            case .offline(let id): id
            }
        }
    }

    public struct Subscribed: Codable, Sendable, Equatable {
        /// `*` for every source.
        public var sourceID: String
        public var metrics: [String]

        public init(sourceID: String, metrics: [String]) {
            self.sourceID = sourceID
            self.metrics = metrics
        }

        enum CodingKeys: String, CodingKey {
            case metrics
            case sourceID = "source_id"
        }
    }

    public struct ControlSent: Codable, Sendable, Equatable {
        public var command: String
        public var sourceID: String
        /// The frame as the device received it.
        public var frame: JSONValue

        public init(command: String, sourceID: String, frame: JSONValue) {
            self.command = command
            self.sourceID = sourceID
            self.frame = frame
        }

        enum CodingKeys: String, CodingKey {
            case command, frame
            case sourceID = "source_id"
        }
    }

    /// The frame's `type`.
    public var type: DashboardServerFrameType {
        switch self {
        case .initial: .initial
        case .sourceStatus: .sourceStatus
        case .subscribed: .subscribed
        case .controlSent: .controlSent
        }
    }

    enum TypeKey: String, CodingKey { case type, status }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: TypeKey.self)
        let raw = try c.decode(String.self, forKey: .type)
        guard let type = DashboardServerFrameType(rawValue: raw) else {
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "not a dashboard frame: \(raw)")
        }
        switch type {
        case .initial: self = .initial(try Initial(from: decoder))
        case .subscribed: self = .subscribed(try Subscribed(from: decoder))
        case .controlSent: self = .controlSent(try ControlSent(from: decoder))
        case .sourceStatus:
            switch try c.decode(String.self, forKey: .status) {
            case "online": self = .sourceStatus(.online(try DeviceStatus(from: decoder)))
            case "offline":
                let id = try decoder.container(keyedBy: DeviceStatus.CodingKeys.self).decode(String.self, forKey: .sourceID)
                self = .sourceStatus(.offline(sourceID: id))
            case let other:
                throw DecodingError.dataCorruptedError(forKey: .status, in: c, debugDescription: "unknown status \(other)")
            }
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "\(raw) has a codec of its own")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: TypeKey.self)
        try c.encode(type.rawValue, forKey: .type)
        switch self {
        case .initial(let f): try f.encode(to: encoder)
        case .subscribed(let f): try f.encode(to: encoder)
        case .controlSent(let f): try f.encode(to: encoder)
        case .sourceStatus(.online(let d)):
            try c.encode("online", forKey: .status)
            try d.encode(to: encoder)
        case .sourceStatus(.offline(let id)):
            try c.encode("offline", forKey: .status)
            var k = encoder.container(keyedBy: DeviceStatus.CodingKeys.self)
            try k.encode(id, forKey: .sourceID)
        }
    }
}

extension DashboardFrame.Initial.Source: Codable {
    enum CodingKeys: String, CodingKey { case metrics, recording }

    public init(from decoder: any Decoder) throws {
        device = try DeviceStatus(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        metrics = try c.decode([String].self, forKey: .metrics)
        recording = try c.decodeIfPresent(String.self, forKey: .recording)
    }

    public func encode(to encoder: any Encoder) throws {
        try device.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(metrics, forKey: .metrics)
        try c.encodeNullable(recording, forKey: .recording)
    }
}
