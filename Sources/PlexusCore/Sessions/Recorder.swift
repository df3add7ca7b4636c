import PlexusModel
public import PlexusStorage

/// The one owner of session rules: sessions created and changed over HTTP, and the
/// recordings a `start_session` / `stop_session` command runs on the server (from a
/// dashboard or `POST /v1/sources/{id}/commands`). Each recording change is one store
/// transaction (``PlexusStore/startRecording(_:)``), mirrored into the live fan-out that
/// the ``Ingestor`` asks which session a source is recording into.
///
/// Refusals are ``CoreError``s with the codes docs/http-api.md lists for sessions.
public struct Recorder: Sendable {
    public let store: any SessionStore
    public let live: any LiveFanout

    public init(store: any SessionStore, live: any LiveFanout) {
        self.store = store
        self.live = live
    }

    /// `session_<unix seconds>_<8 random base62 characters, lowercased>`.
    public static func generateID(now: Int64) -> String {
        "session_\(now / 1_000_000)_" + RandomText.base62(8).lowercased()
    }

    // MARK: Recording

    /// Starts recording a source into a session (`sessionID`, or a new id), then calls
    /// `deliver` with the session to send the command to the device. If `deliver` throws,
    /// the start is undone (the previous recording is back and a session made for this is
    /// aborted) and its error is rethrown; nothing is left half-done.
    public func start(
        orgID: Int64, sourceID: String, sessionID: String?, name: String?, at now: Int64,
        deliver: (SessionRecord) throws -> Void
    ) async throws -> SessionRecord {
        let id = sessionID ?? Self.generateID(now: now)
        let record = SessionRecord(
            orgID: orgID, sessionID: id, name: name.map { String($0.prefix(200)) } ?? id,
            sourceID: sourceID, status: .active, startedAt: now, createdAt: now)
        let start: RecordingStart
        do {
            start = try await store.startRecording(record)
        } catch let e as StoreError where e.code == .conflict {
            throw CoreError(.conflict, "CONFLICT", "session \(id) already exists")
        }
        live.setRecording(orgID: orgID, sourceID: sourceID, sessionID: id)
        do {
            try deliver(start.session)
        } catch {
            live.setRecording(orgID: orgID, sourceID: sourceID, sessionID: start.previous)
            try await store.undoRecordingStart(start, at: now)
            throw error
        }
        return start.session
    }

    /// Stops a source's recording and completes its session, and `sessionID` too when that
    /// names another active session of this source. Returns the session to report in the
    /// `stop_session` command: the one that was recording, else the one named.
    public func stop(orgID: Int64, sourceID: String, sessionID: String?, at now: Int64) async throws -> String? {
        let stop = try await store.stopRecording(orgID: orgID, sourceID: sourceID, alsoSessionID: sessionID, at: now)
        live.setRecording(orgID: orgID, sourceID: sourceID, sessionID: nil)
        return stop.stopped ?? sessionID
    }

    /// The `session_id` a session body or a command carries (nil: not a string), checked
    /// by ``Identifier/isValidSessionID(_:)``.
    public static func validSessionID(_ value: String?) throws -> String {
        guard let value, Identifier.isValidSessionID(value) else {
            throw invalid("session_id must be a string of 1-\(Limits.maxSessionIDBytes) bytes without control characters")
        }
        return value
    }

    // MARK: Sessions over HTTP

    /// `POST /api/sessions`. Returns the session and whether it was created (201) rather
    /// than found again (an identical request, or a session that points named first and
    /// this request now describes).
    public func create(orgID: Int64, _ f: SessionFields, at now: Int64) async throws -> (SessionRecord, created: Bool) {
        guard let name = f.name else { throw Self.invalid("name is required") }
        guard let source = f.sourceID else { throw Self.invalid("source_id is required") }
        let status = f.status ?? .active
        if status == .active && f.endedAt != nil { throw Self.invalid("an active session has no ended_at") }
        var startedAt = f.startedAt ?? now
        var endedAt = f.endedAt
        if let end = endedAt, end < startedAt {
            guard f.startedAt == nil else { throw Self.invalid("ended_at must be after started_at") }
            startedAt = end  // a retrospective session: the defaulted start moves back
        }
        if status != .active && endedAt == nil { endedAt = max(now, startedAt) }
        let id = f.sessionID ?? Self.generateID(now: now)
        let record = SessionRecord(
            orgID: orgID, sessionID: id, name: name, sourceID: source, status: status, tags: f.tags ?? "{}",
            metadata: f.metadata ?? "{}", startedAt: startedAt, startedAtExplicit: f.startedAt != nil, endedAt: endedAt,
            createdAt: now, pinned: f.pinned ?? false)
        let (stored, created) = try await store.createSession(record)
        if created { return (stored, true) }
        if stored.createdByData && stored.sourceID == source {
            // Points named this session first; this request gives it its name and details.
            var claimed = stored
            claimed.name = name
            claimed.status = status
            claimed.tags = record.tags
            claimed.metadata = record.metadata
            claimed.pinned = record.pinned
            claimed.createdByData = false
            if let s = f.startedAt { (claimed.startedAt, claimed.startedAtExplicit) = (s, true) }
            if status != .active {
                let end = f.endedAt ?? max(now, claimed.startedAt)
                try await checkEnd(end, &claimed)
                claimed.endedAt = end
            } else {
                claimed.endedAt = nil
            }
            try await store.updateSession(claimed)
            return (claimed, false)
        }
        // Idempotent: the same body again is fine; anything different is a conflict.
        let same =
            stored.name == name && stored.sourceID == source && stored.status == status && stored.tags == record.tags
            && stored.metadata == record.metadata && (f.startedAt == nil || stored.startedAt == f.startedAt)
            && (f.endedAt == nil || stored.endedAt == f.endedAt) && (f.pinned == nil || stored.pinned == f.pinned)
        guard same else { throw CoreError(.conflict, "CONFLICT", "session \(id) already exists with different fields") }
        return (stored, false)
    }

    /// `PATCH /api/sessions/{id}`.
    public func update(orgID: Int64, sessionID id: String, _ f: SessionFields, at now: Int64) async throws -> SessionRecord {
        guard var s = try await store.session(orgID: orgID, sessionID: id) else {
            throw CoreError(.notFound, "NOT_FOUND", "session not found")
        }
        if let src = f.sourceID, src != s.sourceID { throw Self.invalid("source_id of a session cannot change") }
        if let other = f.sessionID, other != id { throw Self.invalid("session_id of a session cannot change") }
        if f.startedAt != nil { throw Self.invalid("started_at cannot change; create the session with it") }
        if f.status == .active && f.endedAt != nil { throw Self.invalid("an active session has no ended_at") }
        if let name = f.name { s.name = name }
        if let tags = f.tags { s.tags = tags }
        if let metadata = f.metadata { s.metadata = metadata }
        if let pinned = f.pinned { s.pinned = pinned }
        s.createdByData = false
        var status = f.status
        if let end = f.endedAt {
            // Only a request that also ends the session (the spec's own `PATCH` example)
            // may move a provisional start back to `ended_at`; `ended_at` alone before the
            // start is refused.
            try await checkEnd(end, &s, mayMoveStart: status != nil && status != .active)
            s.endedAt = end
            if status == nil && s.status == .active { status = .completed }  // ended_at alone ends it
        }
        if let status {
            s.status = status
            if status == .active {
                s.endedAt = nil
            } else if s.endedAt == nil {
                try await checkEnd(now, &s)
                s.endedAt = now
            }
        }
        try await store.updateSession(s)
        return s
    }

    /// `ended_at` may not precede an explicit start or the session's first point. A start
    /// nobody gave (the creation time) is provisional: it moves back to the first point, or
    /// to `ended_at` for a session that has no data yet (the spec's own example ends a
    /// just-created session at a date in the past).
    func checkEnd(_ end: Int64, _ s: inout SessionRecord, mayMoveStart: Bool = true) async throws {
        if s.startedAtExplicit || (!mayMoveStart && end < s.startedAt) {
            guard end >= s.startedAt else { throw Self.invalid("ended_at must be after started_at") }
            return
        }
        let summary = try await store.sessionSummary(orgID: s.orgID, sessionID: s.sessionID)
        if let first = summary.firstTimestamp {
            guard end >= first else { throw Self.invalid("ended_at must be after started_at (the session's first point)") }
            s.startedAt = min(s.startedAt, first)
        } else {
            s.startedAt = min(s.startedAt, end)
        }
    }

    static func invalid(_ message: String) -> CoreError { CoreError(.invalid, "VALIDATION_ERROR", message) }
}

/// The fields of a session body (`POST` and `PATCH /api/sessions`), each already checked
/// on its own (types, sizes, time range); ``Recorder`` checks them together.
public struct SessionFields: Sendable {
    public var name: String?
    public var sourceID: String?
    public var status: SessionStatus?
    public var sessionID: String?
    /// Canonical JSON text of an object.
    public var tags: String?
    public var metadata: String?
    public var startedAt: Int64?
    public var endedAt: Int64?
    /// Kept whatever the retention.
    public var pinned: Bool?

    public init(
        name: String? = nil, sourceID: String? = nil, status: SessionStatus? = nil, sessionID: String? = nil,
        tags: String? = nil, metadata: String? = nil, startedAt: Int64? = nil, endedAt: Int64? = nil, pinned: Bool? = nil
    ) {
        self.name = name
        self.sourceID = sourceID
        self.status = status
        self.sessionID = sessionID
        self.tags = tags
        self.metadata = metadata
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.pinned = pinned
    }
}
