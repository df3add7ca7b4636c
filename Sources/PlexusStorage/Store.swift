public import PlexusModel

/// Who sent a batch and when it was received. The batch itself is what is stored, its
/// points exactly as given (an engine with a log keeps them there, and a replay rebuilds
/// the same points).
public struct AppendContext: Sendable {
    public var orgID: Int64
    /// Unix microseconds; stamps points that came without a timestamp.
    public var receivedAt: Int64

    public init(orgID: Int64, receivedAt: Int64) {
        self.orgID = orgID
        self.receivedAt = receivedAt
    }
}

/// One batch of ``PlexusStore/append(contentsOf:)``.
public struct AppendEntry: Sendable {
    public var batch: IngestBatch
    public var context: AppendContext
    public init(batch: IngestBatch, context: AppendContext) {
        self.batch = batch
        self.context = context
    }
}

/// What the server needs from storage, by concern. Implemented by the embedded SQLite
/// store and (later) PostgreSQL; every engine passes `PlexusStorageTesting`'s
/// conformance suite, which is split the same way. The domain asks for the narrowest
/// protocol it needs (the `Ingestor` a ``TelemetryStore``, the `Recorder` a
/// ``SessionStore``). Times come in from the caller's clock; an engine reads no clock of
/// its own to decide anything a caller can see.
public protocol PlexusStore: TelemetryStore, TenantStore, AccountStore, SessionStore, DeviceStore {
    /// A short description of the engine for `/health`, e.g. `sqlite`.
    var engineName: String { get }
}

/// Points: durable appends and every read of them.
///
/// Durability contract: when ``append(_:context:)`` returns, every point of the batch is
/// on disk and survives a crash. Reads see every appended point.
public protocol TelemetryStore: Sendable {
    /// Stores a validated batch durably; returns once it is on disk.
    func append(_ batch: IngestBatch, context: AppendContext) async throws
    /// Stores several batches durably, in this order, sharing one sync where the engine
    /// can; returns once all of them are on disk. If it throws, none may be acknowledged
    /// (some may be stored). The default appends them one after another.
    func append(contentsOf entries: [AppendEntry]) async throws

    func sources(orgID: Int64) async throws -> [SourceInfo]
    func source(orgID: Int64, sourceID: String) async throws -> SourceInfo?
    /// Distinct metric names of a source, sorted.
    func metrics(orgID: Int64, sourceID: String) async throws -> [String]
    /// Every series an organisation has stored (not the derived fields of vector
    /// objects), for cardinality limits.
    func seriesIdentities(orgID: Int64) async throws -> [SeriesIdentity]
    /// The series with stored points in `range`: at least every series with a point in it,
    /// and possibly one whose stored span merely covers it (an engine may answer from the
    /// bounds of its blocks, as Prometheus' series API does). What Grafana's metric browser
    /// lists for a dashboard's time range.
    func seriesIdentities(orgID: Int64, overlapping range: TimeRange) async throws -> [SeriesIdentity]
    /// The newest value of each metric of a source whose last point is at or after `since`.
    func latest(orgID: Int64, sourceID: String, since: Int64) async throws -> [LatestValue]
    /// Raw points ordered by metric, then time; at most `limit` in total.
    func queryRaw(_ selector: SeriesSelector, range: TimeRange, limit: Int) async throws -> RawResult
    /// Numeric points of each series the selector matches, one entry per series (source,
    /// metric, exact tags, session), each in time order; at most `limit` points in all.
    /// What a per-series query language (PromQL) needs: `queryRaw` merges the series of a metric.
    func querySeries(_ selector: SeriesSelector, range: TimeRange, limit: Int) async throws -> SeriesPointsResult
    /// Numeric points bucketed; min/max/sum/count per bucket, at most `limit` buckets in total.
    func queryAggregated(_ selector: SeriesSelector, range: TimeRange, resolution: Resolution, limit: Int) async throws
        -> AggregatedResult
    /// The rollup buckets of each numeric series the selectors match (as ``querySeries(_:range:limit:)``
    /// separates them; selector by selector) whose start lies in `range`, with their edges;
    /// at most `limit` buckets in all. Several selectors are one read.
    func querySeriesRollups(_ selectors: [SeriesSelector], range: TimeRange, width: RollupWidth, limit: Int) async throws
        -> SeriesRollupResult
    /// Non-numeric points (strings, booleans, objects, arrays) in time order.
    /// With `newestFirst`, the newest `limit` points (still returned oldest first).
    func logs(_ selector: SeriesSelector, range: TimeRange, limit: Int, newestFirst: Bool) async throws -> [StoredPoint]
    /// Visits every point of a session in time order, `batchSize` at a time, without
    /// holding the whole session in memory.
    func scanSession(
        orgID: Int64, sessionID: String, batchSize: Int,
        _ body: ([StoredPoint]) async throws -> Void) async throws
    /// Removes what retention no longer keeps at `now`, organisation by organisation (its
    /// ``Organization/retention`` over `defaults`): raw points older than the raw period
    /// and rollup buckets that end before the rollup period, never the points (nor their
    /// rollups) of a pinned session, and gives the space back. An engine removes whole
    /// storage blocks, so a point may outlive the limit while it shares a block with
    /// newer points; it never removes a point inside the limit.
    func applyRetention(_ defaults: RetentionPolicy, at now: Int64) async throws -> RetentionSweep
}

/// Organisations and their API keys.
public protocol TenantStore: Sendable {
    func createOrganization(name: String, at: Int64) async throws -> Organization
    func organization(named: String) async throws -> Organization?
    func organization(id: Int64) async throws -> Organization?
    func organizations() async throws -> [Organization]
    func createAPIKey(_ key: APIKeyRecord) async throws
    func apiKey(hash: [UInt8]) async throws -> APIKeyRecord?
    func apiKeys(orgID: Int64?) async throws -> [APIKeyRecord]
    /// Returns false when no such key exists.
    func revokeAPIKey(id: String, at: Int64) async throws -> Bool
    /// Sets an organisation's own retention. False when no such organisation exists.
    func setRetention(orgID: Int64, _ retention: RetentionOverride) async throws -> Bool
}

/// People who sign in to the dashboard, their login sessions and invites.
public protocol AccountStore: Sendable {
    /// Creates a person and, for a first sign-up, their organisation, in one transaction.
    /// Throws `conflict` when the email is taken, `notFound` for an unknown invite and
    /// `gone` for a used or expired one.
    func createUser(_ user: NewUser) async throws -> (UserRecord, Organization)
    /// By lower-cased email.
    func user(email: String) async throws -> UserRecord?
    func user(id: Int64) async throws -> UserRecord?
    func users(orgID: Int64) async throws -> [UserRecord]
    /// Sets a new password hash and ends every login session of the user except `keeping`.
    func updatePassword(userID: Int64, passwordHash: String, keeping: [UInt8]?) async throws
    func createLoginSession(_ session: LoginSessionRecord) async throws
    /// The login session with this token hash and its user, if it exists and has not expired at `now`.
    func loginSession(tokenHash: [UInt8], now: Int64) async throws -> (LoginSessionRecord, UserRecord)?
    func deleteLoginSession(tokenHash: [UInt8]) async throws
    func createInvite(_ invite: InviteRecord) async throws
    func invite(tokenHash: [UInt8]) async throws -> InviteRecord?
}

/// Recording sessions, and the recordings the server runs into them.
public protocol SessionStore: Sendable {
    /// Inserts the session, or returns the existing one with the same id (the caller
    /// decides between "identical" and "conflict").
    func createSession(_ session: SessionRecord) async throws -> (SessionRecord, created: Bool)
    func session(orgID: Int64, sessionID: String) async throws -> SessionRecord?
    func sessions(orgID: Int64, sourceID: String?, status: SessionStatus?) async throws -> [SessionRecord]
    func updateSession(_ session: SessionRecord) async throws
    /// Deletes the session and every point recorded in it. False if unknown.
    func deleteSession(orgID: Int64, sessionID: String) async throws -> Bool
    func sessionSummary(orgID: Int64, sessionID: String) async throws -> SessionSummary

    // A source's recording (server-side `start_session`) is kept so a restart resumes it.
    // Each change is one transaction: the session and the recording never disagree.

    /// Starts recording `session.sourceID` into `session`: inserts it (or, when a session
    /// with its id exists, requires it to be this source's and active, else `.conflict`),
    /// points the source's recording at it, and completes the session it was recorded into
    /// before (ended at `session.startedAt`, never before its own start) if that was active.
    func startRecording(_ session: SessionRecord) async throws -> RecordingStart
    /// Undoes a start whose command never reached the device: the recording goes back to
    /// the previous session (reopened if the start completed it), and a session the start
    /// created is aborted at `at`.
    func undoRecordingStart(_ start: RecordingStart, at: Int64) async throws
    /// Stops a source's recording: clears it and completes, at `at`, the session it
    /// recorded into and `alsoSessionID` when that one is this source's and active.
    func stopRecording(orgID: Int64, sourceID: String, alsoSessionID: String?, at: Int64) async throws -> RecordingStop
    /// Every active recording: (organisation, source, session).
    func recordings() async throws -> [(orgID: Int64, sourceID: String, sessionID: String)]
}

/// Device identity: the names installations claim in an organisation.
public protocol DeviceStore: Sendable {
    /// Gives an installation a name in its organisation, atomically: the same install
    /// always gets its name back; a different install asking for a claimed name gets
    /// `name_2`, then `name_3`. Claims are durable.
    func claimDeviceName(orgID: Int64, installID: String, requested: String, at: Int64) async throws -> String
    func deviceClaims(orgID: Int64) async throws -> [DeviceClaim]
    /// Frees a name for other installs. False if it was not claimed.
    func releaseDeviceClaim(orgID: Int64, sourceID: String) async throws -> Bool
}

extension TelemetryStore {
    public func append(contentsOf entries: [AppendEntry]) async throws {
        for e in entries { try await append(e.batch, context: e.context) }
    }
}
