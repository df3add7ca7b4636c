/// Request and response bodies of `/api/sessions` (docs/http-api.md, "Sessions").

/// A time as clients send it: ISO-8601 text or a Unix number (seconds, or milliseconds
/// when >= 1e12). The server turns it into microseconds within `Timestamp.validMicros`.
public enum WireTime: Codable, Sendable, Equatable {
    case text(String)
    case number(Double)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) {
            self = .text(s)
        } else if (try? c.decode(Bool.self)) != nil {
            throw DecodingError.typeMismatch(
                Double.self, .init(codingPath: decoder.codingPath, debugDescription: "a time, not true or false"))
        } else {
            self = .number(try c.decode(Double.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .text(let s): try c.encode(s)
        case .number(let n): try c.encode(n)
        }
    }
}

/// `POST /api/sessions` (create) and `PATCH /api/sessions/<id>` (change): every field is
/// optional; null is the same as absent.
public struct SessionRequest: Codable, Sendable, Equatable {
    public var sessionID: String?
    public var name: String?
    public var sourceID: String?
    /// `active`, `completed` or `aborted`.
    public var status: String?
    /// JSON objects, stored as given.
    public var tags: JSONValue?
    public var metadata: JSONValue?
    public var startedAt: WireTime?
    public var endedAt: WireTime?
    /// Keep the session's points whatever the server's retention.
    public var pinned: Bool?

    public init(
        sessionID: String? = nil, name: String? = nil, sourceID: String? = nil, status: String? = nil,
        tags: JSONValue? = nil, metadata: JSONValue? = nil, startedAt: WireTime? = nil, endedAt: WireTime? = nil,
        pinned: Bool? = nil
    ) {
        self.sessionID = sessionID
        self.name = name
        self.sourceID = sourceID
        self.status = status
        self.tags = tags
        self.metadata = metadata
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.pinned = pinned
    }

    enum CodingKeys: String, CodingKey {
        case name, status, tags, metadata, pinned
        case sessionID = "session_id"
        case sourceID = "source_id"
        case startedAt = "started_at"
        case endedAt = "ended_at"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sessionID = try c.decodeIfPresent(String.self, forKey: .sessionID)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        sourceID = try c.decodeIfPresent(String.self, forKey: .sourceID)
        status = try c.decodeIfPresent(String.self, forKey: .status)
        // `"tags": null` is absent, not the JSON value null.
        tags = try c.decodeIfPresent(JSONValue.self, forKey: .tags).flatMap { $0 == .null ? nil : $0 }
        metadata = try c.decodeIfPresent(JSONValue.self, forKey: .metadata).flatMap { $0 == .null ? nil : $0 }
        startedAt = try c.decodeIfPresent(WireTime.self, forKey: .startedAt)
        endedAt = try c.decodeIfPresent(WireTime.self, forKey: .endedAt)
        pinned = try c.decodeIfPresent(Bool.self, forKey: .pinned)
    }
}

/// A session as the API shows it; `summary` in `GET /api/sessions/<id>` only.
public struct SessionBody: Codable, Sendable, Equatable {
    public struct Summary: Codable, Sendable, Equatable {
        public var metrics: [String]
        public var pointCount: Int64
        /// Milliseconds, with a fraction for sub-millisecond times.
        @Nullable public var firstTimestampMs: Double?
        @Nullable public var lastTimestampMs: Double?

        public init(metrics: [String], pointCount: Int64, firstTimestampMs: Double?, lastTimestampMs: Double?) {
            self.metrics = metrics
            self.pointCount = pointCount
            self.firstTimestampMs = firstTimestampMs
            self.lastTimestampMs = lastTimestampMs
        }

        enum CodingKeys: String, CodingKey {
            case metrics
            case pointCount = "point_count"
            case firstTimestampMs = "first_timestamp_ms"
            case lastTimestampMs = "last_timestamp_ms"
        }
    }

    public var sessionID: String
    public var name: String
    public var sourceID: String
    public var status: String
    public var tags: JSONValue
    public var metadata: JSONValue
    public var startedAt: String
    @Nullable public var endedAt: String?
    public var createdAt: String
    public var pinned: Bool
    public var summary: Summary?

    public init(
        sessionID: String, name: String, sourceID: String, status: String, tags: JSONValue, metadata: JSONValue,
        startedAt: String, endedAt: String?, createdAt: String, pinned: Bool = false, summary: Summary? = nil
    ) {
        self.sessionID = sessionID
        self.name = name
        self.sourceID = sourceID
        self.status = status
        self.tags = tags
        self.metadata = metadata
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.createdAt = createdAt
        self.pinned = pinned
        self.summary = summary
    }

    enum CodingKeys: String, CodingKey {
        case name, status, tags, metadata, summary, pinned
        case sessionID = "session_id"
        case sourceID = "source_id"
        case startedAt = "started_at"
        case endedAt = "ended_at"
        case createdAt = "created_at"
    }
}

/// `GET /api/sessions`.
public struct SessionList: Codable, Sendable, Equatable {
    public var sessions: [SessionBody]

    public init(sessions: [SessionBody]) { self.sessions = sessions }
}
