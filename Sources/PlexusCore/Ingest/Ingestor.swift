public import PlexusModel
public import PlexusStorage

/// The one way telemetry comes in, whatever the transport (HTTP `/ingest`, a device's
/// WebSocket frames, and later line protocol or remote write). A transport decodes its
/// bytes into an ``IngestBatch`` and hands it here; the rules then run in one order, in
/// one place:
///
/// 1. **limits**: the request rate (``Pacing/perRequest``: the organisation's and each
///    source's buckets, ``CoreError/Kind/rateLimited``), then the organisation's raw
///    retention (``RetentionGuard``: points older than it are `INVALID_POINT`), then its
///    cardinality quotas (``CoreError/Kind/overLimit``); a refused batch leaves no trace;
/// 2. **recording**: a source the server records (`start_session`) takes the points that
///    name no session, and the WAL record says so, so a replay does the same;
/// 3. **live**: the batch is published to watching dashboards at once (a live view never
///    waits for the disk; a batch whose append then fails was shown and is resent);
/// 4. **durable**: the store appends it (WAL group commit, `fdatasync`);
/// 5. **metrics**: points ingested and append latency, by transport.
///
/// Steps 1–3 are ``admit(_:)`` and steps 4–5 ``store(_:transport:)``, so a device
/// connection can read its next frame while earlier ones sync; ``ingest(_:)`` is both.
public struct Ingestor: Sendable {
    public enum Transport: String, Sendable {
        case http
        case ws
        /// InfluxDB line protocol (`/write`, `/api/v2/write`).
        case lineProtocol = "line_protocol"
        /// Prometheus remote write (`/api/v1/write`).
        case remoteWrite = "remote_write"
    }

    /// Who paces the sender.
    public enum Pacing: Sendable {
        /// Every call is a request, counted against the organisation's and each of its
        /// sources' request buckets (HTTP: refused with 429 and a Retry-After).
        case perRequest
        /// The transport paces its sender itself (a device connection's frame bucket,
        /// which slows reading rather than refusing).
        case pacedByConnection
    }

    /// A decoded batch on its way in.
    public struct Submission: Sendable {
        public var orgID: Int64
        public var batch: IngestBatch
        public var receivedAt: Int64
        public var transport: Transport
        public var pacing: Pacing

        public init(orgID: Int64, batch: IngestBatch, receivedAt: Int64, transport: Transport, pacing: Pacing) {
            self.orgID = orgID
            self.batch = batch
            self.receivedAt = receivedAt
            self.transport = transport
            self.pacing = pacing
        }

        /// Points a transport decoded into a list (line protocol, remote write).
        public init(orgID: Int64, points: [Point], receivedAt: Int64, transport: Transport, pacing: Pacing = .perRequest) {
            self.init(orgID: orgID, batch: IngestBatch(points: points), receivedAt: receivedAt, transport: transport, pacing: pacing)
        }
    }

    /// A batch that passed every rule and was shown live.
    public struct Admitted: Sendable {
        /// The batch as stored: with the recording's session on its untagged points.
        public var batch: IngestBatch
        /// What to append; nil when the batch has no points.
        public var entry: AppendEntry?
    }

    public let store: any TelemetryStore
    public let live: any LiveFanout
    public let limiter: RateLimiter
    public let cardinality: CardinalityGuard
    /// Nil: every time is kept (no retention anywhere).
    public let retention: RetentionGuard?

    public init(
        store: any TelemetryStore, live: any LiveFanout, limiter: RateLimiter, cardinality: CardinalityGuard,
        retention: RetentionGuard? = nil
    ) {
        self.store = store
        self.live = live
        self.limiter = limiter
        self.cardinality = cardinality
        self.retention = retention
    }

    /// Steps 1 to 3. Throws ``CoreError`` for a refusal, or the store's error when the
    /// quotas could not be read.
    public func admit(_ s: Submission) async throws -> Admitted {
        var batch = s.batch
        guard !batch.points.isEmpty else { return Admitted(batch: batch, entry: nil) }
        if case .perRequest = s.pacing {
            var sources = Set<String>()
            for p in batch.points { sources.insert(p.sourceID ?? "") }
            if let wait = limiter.check(orgID: s.orgID, sources: sources) { throw CoreError.rateLimited(retryAfterSeconds: wait) }
        }
        try await retention?.check(orgID: s.orgID, times: batch.points.lazy.map(\.timestamp))
        try await cardinality.admit(batch, orgID: s.orgID)
        if let single = batch.singleSourceID, let recording = live.recording(orgID: s.orgID, sourceID: single) {
            batch.joinRecording(recording)
        }
        live.publish(orgID: s.orgID, batch: batch, receivedAt: s.receivedAt)
        let entry = AppendEntry(
            batch: batch,
            context: AppendContext(orgID: s.orgID, receivedAt: s.receivedAt))
        return Admitted(batch: batch, entry: entry)
    }

    /// Steps 4 and 5: the entries are durable, in order, when this returns.
    public func store(_ entries: [AppendEntry], transport: Transport) async throws {
        guard !entries.isEmpty else { return }
        let start = ContinuousClock.now
        try await store.append(contentsOf: entries)
        ServerMetrics.storeLatency("append", start.duration(to: .now))
        ServerMetrics.pointsIngested(entries.reduce(0) { $0 + $1.batch.points.count }, transport: transport.rawValue)
    }

    /// Every step: the batch is durable when this returns. Returns the batch as stored.
    @discardableResult
    public func ingest(_ s: Submission) async throws -> IngestBatch {
        let admitted = try await admit(s)
        if let entry = admitted.entry { try await store([entry], transport: s.transport) }
        return admitted.batch
    }
}
