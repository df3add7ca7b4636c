/// Request and response bodies of the device routes: sources, commands, name claims and
/// the terminals' connection config.

/// A source (device) as `GET /v1/sources` and `/v1/sources/<id>` show it. The fields from
/// `platform` on are present only while the device is connected.
public struct SourceBody: Codable, Sendable, Equatable {
    public var sourceID: String
    public var online: Bool
    public var lastSeenMs: Int64?
    public var platform: String?
    public var agentVersion: String?
    /// What the device reported in `device_auth` (an array; `[]` when it sent none).
    public var sensors: JSONValue?
    public var connectedAtMs: Int64?

    public init(
        sourceID: String, online: Bool, lastSeenMs: Int64?, platform: String? = nil, agentVersion: String? = nil,
        sensors: JSONValue? = nil, connectedAtMs: Int64? = nil
    ) {
        self.sourceID = sourceID
        self.online = online
        self.lastSeenMs = lastSeenMs
        self.platform = platform
        self.agentVersion = agentVersion
        self.sensors = sensors
        self.connectedAtMs = connectedAtMs
    }

    enum CodingKeys: String, CodingKey {
        case online, platform, sensors
        case sourceID = "source_id"
        case lastSeenMs = "last_seen_ms"
        case agentVersion = "agent_version"
        case connectedAtMs = "connected_at_ms"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sourceID, forKey: .sourceID)
        try c.encode(online, forKey: .online)
        try c.encodeNullable(lastSeenMs, forKey: .lastSeenMs)
        // A connected device: what it reported, nulls included.
        if let connectedAtMs {
            try c.encodeNullable(platform, forKey: .platform)
            try c.encodeNullable(agentVersion, forKey: .agentVersion)
            try c.encode(sensors ?? .array([]), forKey: .sensors)
            try c.encode(connectedAtMs, forKey: .connectedAtMs)
        }
    }
}

/// `GET /v1/sources`.
public struct SourceList: Codable, Sendable, Equatable {
    public var devices: [SourceBody]

    public init(devices: [SourceBody]) { self.devices = devices }
}

/// `POST /v1/sources/<id>/commands`.
public struct CommandRequest: Codable, Sendable, Equatable {
    public var command: String?
    /// A JSON object; each member becomes a field of the frame sent to the device.
    public var params: JSONValue?

    public init(command: String?, params: JSONValue? = nil) {
        self.command = command
        self.params = params
    }
}

/// The answer to a command: the frame as it was sent to the device.
public struct CommandQueued: Codable, Sendable, Equatable {
    public var queued: Bool
    public var frame: JSONValue

    public init(queued: Bool, frame: JSONValue) {
        self.queued = queued
        self.frame = frame
    }
}

/// A device-name claim, `GET /api/devices/claims`.
public struct ClaimBody: Codable, Sendable, Equatable {
    public var sourceID: String
    public var installID: String
    public var requested: String
    public var claimedAt: String
    public var online: Bool

    public init(sourceID: String, installID: String, requested: String, claimedAt: String, online: Bool) {
        self.sourceID = sourceID
        self.installID = installID
        self.requested = requested
        self.claimedAt = claimedAt
        self.online = online
    }

    enum CodingKeys: String, CodingKey {
        case requested, online
        case sourceID = "source_id"
        case installID = "install_id"
        case claimedAt = "claimed_at"
    }
}

/// `GET /api/devices/claims`.
public struct ClaimList: Codable, Sendable, Equatable {
    public var claims: [ClaimBody]

    public init(claims: [ClaimBody]) { self.claims = claims }
}

/// `GET /api/config`: where `plexus start` opens its WebSocket.
public struct ClientConfig: Codable, Sendable, Equatable {
    public var wsURL: String

    public init(wsURL: String) { self.wsURL = wsURL }

    enum CodingKeys: String, CodingKey {
        case wsURL = "ws_url"
    }
}
