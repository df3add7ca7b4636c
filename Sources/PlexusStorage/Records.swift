public import PlexusModel

/// An organisation (tenant). Every key, source, series and session belongs to one.
public struct Organization: Sendable, Hashable, Codable {
    public var id: Int64
    public var name: String
    public var createdAt: Int64
    /// Its own retention, over the server's default.
    public var retention: RetentionOverride
    public init(id: Int64, name: String, createdAt: Int64, retention: RetentionOverride = RetentionOverride()) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.retention = retention
    }
}

public enum Scope: String, Sendable, Hashable, Codable, CaseIterable {
    /// Ingest and device connections.
    case write
    /// The query API.
    case read
    /// Administration (deleting sessions, managing keys).
    case admin
}

/// A stored API key. The secret itself is never stored, only its SHA-256.
public struct APIKeyRecord: Sendable, Hashable {
    public var id: String
    public var orgID: Int64
    public var name: String
    /// SHA-256 of the full `plx_…` key.
    public var hash: [UInt8]
    /// The first characters of the key (`plx_AbCd`), for people to recognise it.
    public var prefix: String
    public var scopes: Set<Scope>
    public var createdAt: Int64
    public var expiresAt: Int64?
    public var revokedAt: Int64?

    public init(
        id: String, orgID: Int64, name: String, hash: [UInt8], prefix: String, scopes: Set<Scope>,
        createdAt: Int64, expiresAt: Int64? = nil, revokedAt: Int64? = nil
    ) {
        self.id = id
        self.orgID = orgID
        self.name = name
        self.hash = hash
        self.prefix = prefix
        self.scopes = scopes
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }
}

public enum SessionStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case active, completed, aborted
}

/// A named time window of one source's data ("recording").
public struct SessionRecord: Sendable, Hashable {
    public var orgID: Int64
    public var sessionID: String
    public var name: String
    public var sourceID: String
    public var status: SessionStatus
    /// JSON text of the session's tags object (`{}` when none).
    public var tags: String
    /// JSON text of the metadata object (`{}` when none).
    public var metadata: String
    /// Unix microseconds.
    public var startedAt: Int64
    /// False when nobody gave a start: then it is provisional (creation time, or the first
    /// point for sessions named by data) and may move back to the data or to `ended_at`.
    public var startedAtExplicit: Bool
    public var endedAt: Int64?
    public var createdAt: Int64
    /// True for a session that exists only because points named it; a later
    /// `POST /api/sessions` may claim it (give it a name, tags, metadata).
    public var createdByData: Bool
    /// A pinned session's points are kept whatever the retention.
    public var pinned: Bool

    public init(
        orgID: Int64, sessionID: String, name: String, sourceID: String, status: SessionStatus,
        tags: String = "{}", metadata: String = "{}", startedAt: Int64, startedAtExplicit: Bool = true,
        endedAt: Int64? = nil, createdAt: Int64, createdByData: Bool = false, pinned: Bool = false
    ) {
        self.orgID = orgID
        self.sessionID = sessionID
        self.name = name
        self.sourceID = sourceID
        self.status = status
        self.tags = tags
        self.metadata = metadata
        self.startedAt = startedAt
        self.startedAtExplicit = startedAtExplicit
        self.endedAt = endedAt
        self.createdAt = createdAt
        self.createdByData = createdByData
        self.pinned = pinned
    }
}

public struct SessionSummary: Sendable, Hashable {
    public var metrics: [String]
    public var pointCount: Int64
    /// Unix microseconds of the first and last point, nil when the session has no data.
    public var firstTimestamp: Int64?
    public var lastTimestamp: Int64?
    public init(metrics: [String], pointCount: Int64, firstTimestamp: Int64?, lastTimestamp: Int64?) {
        self.metrics = metrics
        self.pointCount = pointCount
        self.firstTimestamp = firstTimestamp
        self.lastTimestamp = lastTimestamp
    }
}

public struct SourceInfo: Sendable, Hashable {
    public var sourceID: String
    /// Unix microseconds.
    public var firstSeen: Int64
    public var lastSeen: Int64
    public init(sourceID: String, firstSeen: Int64, lastSeen: Int64) {
        self.sourceID = sourceID
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
    }
}

/// A device name held by one installation (see `PlexusStore.claimDeviceName`).
public struct DeviceClaim: Sendable, Hashable {
    public var sourceID: String
    public var installID: String
    /// The name the install asked for when it got this one.
    public var requested: String
    public var claimedAt: Int64
    public init(sourceID: String, installID: String, requested: String, claimedAt: Int64) {
        self.sourceID = sourceID
        self.installID = installID
        self.requested = requested
        self.claimedAt = claimedAt
    }
}

/// A point as stored and read back.
public struct StoredPoint: Sendable, Hashable {
    public var sourceID: String
    public var metric: String
    public var timestamp: Int64
    public var value: PlexusValue
    public var tags: [Tag]
    public var sessionID: String?
    public init(sourceID: String, metric: String, timestamp: Int64, value: PlexusValue, tags: [Tag], sessionID: String?) {
        self.sourceID = sourceID
        self.metric = metric
        self.timestamp = timestamp
        self.value = value
        self.tags = tags
        self.sessionID = sessionID
    }
}

/// What makes a series: its source, metric, tags, session and whether it holds numbers.
public struct SeriesIdentity: Sendable, Hashable {
    public var sourceID: String
    public var metric: String
    public var tags: [Tag]
    /// nil for points outside any session.
    public var sessionID: String?
    public var numeric: Bool

    public init(sourceID: String, metric: String, tags: [Tag], sessionID: String?, numeric: Bool) {
        self.sourceID = sourceID
        self.metric = metric
        self.tags = tags
        self.sessionID = sessionID
        self.numeric = numeric
    }
}

/// What ``PlexusStore/startRecording(_:)`` did.
public struct RecordingStart: Sendable, Hashable {
    /// The session as stored.
    public var session: SessionRecord
    public var created: Bool
    /// The session the source was recorded into before, if another one.
    public var previous: String?
    /// Whether the start completed ``previous`` (it was still active).
    public var completedPrevious: Bool

    public init(session: SessionRecord, created: Bool, previous: String?, completedPrevious: Bool) {
        self.session = session
        self.created = created
        self.previous = previous
        self.completedPrevious = completedPrevious
    }
}

/// What ``PlexusStore/stopRecording(orgID:sourceID:alsoSessionID:at:)`` did.
public struct RecordingStop: Sendable, Hashable {
    /// The session the source was being recorded into, if any.
    public var stopped: String?
    /// The sessions it completed, sorted.
    public var completed: [String]

    public init(stopped: String?, completed: [String]) {
        self.stopped = stopped
        self.completed = completed
    }
}
