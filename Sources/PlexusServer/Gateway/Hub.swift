import Foundation
public import PlexusCore
public import PlexusModel
import Synchronization

/// Everything live: which devices are connected (per organisation and source), which
/// dashboards watch what, and which sources the server is recording into a session.
/// One lock, short critical sections; sockets are written by their own tasks.
public final class Hub: LiveFanout {
    struct Key: Hashable, Sendable {
        var orgID: Int64
        var sourceID: String
    }

    struct Device: Sendable {
        var outbox: DeviceOutbox
        var info: DeviceInfo
        var credential: LiveCredential
        var control: ConnectionControl
    }

    struct Dashboard: Sendable {
        var orgID: Int64
        var outbox: DashboardOutbox
        var canControl: Bool
        var credential: LiveCredential
        var control: ConnectionControl
        /// nil: every source of the organisation. Otherwise source → metrics (empty: all).
        var subscriptions: [String: Set<String>]?

        /// Source/metric pairs: a source with all metrics, and `*`, count as one.
        var pairs: Int { subscriptions.map { $0.values.reduce(0) { $0 + max(1, $1.count) } } ?? 1 }
    }

    /// Bounds on what dashboards may watch.
    struct Limits: Sendable {
        /// Source/metric pairs one dashboard socket may subscribe to.
        var pairsPerDashboard = 1_000
        /// Source/metric pairs all dashboards of one organisation may subscribe to together.
        var pairsPerOrganization = 20_000
    }

    struct State: Sendable {
        var devices: [Key: Device] = [:]
        var dashboards: [Int: Dashboard] = [:]
        var recordings: [Key: String] = [:]
        var nextID = 1
    }

    private let state = Mutex(State())
    let limits: Limits

    public convenience init() { self.init(limits: Limits()) }

    init(limits: Limits) { self.limits = limits }

    func nextID() -> Int {
        state.withLock { s in
            defer { s.nextID += 1 }
            return s.nextID
        }
    }

    // MARK: Devices

    /// Registers a connected device; a previous connection for the same name is returned
    /// so the caller can close it (the newest connection wins).
    func register(
        _ outbox: DeviceOutbox, info: DeviceInfo, credential: LiveCredential,
        control: ConnectionControl = ConnectionControl()
    ) -> DeviceOutbox? {
        let key = Key(orgID: info.orgID, sourceID: info.sourceID)
        let (old, watchers) = state.withLock { s in
            let old = s.devices[key]?.outbox
            s.devices[key] = Device(outbox: outbox, info: info, credential: credential, control: control)
            return (old, s.dashboards.values.filter { $0.orgID == info.orgID }.map(\.outbox))
        }
        let status = Self.statusFrame(info)
        for w in watchers { w.enqueue(status) }
        return old
    }

    /// Server shutdown: every connected device is closed (1001) after the frame it is
    /// sending now has been stored and acknowledged; idle ones at once.
    func drainDevices() async {
        let outboxes = state.withLock { $0.devices.values.map(\.outbox) }
        for o in outboxes where o.drain() { await o.closeNow(Gateway.shutdownCode, "server shutting down") }
    }

    /// Removes the device if this connection is still the registered one.
    func unregister(_ outbox: DeviceOutbox, orgID: Int64, sourceID: String) {
        let key = Key(orgID: orgID, sourceID: sourceID)
        let watchers: [DashboardOutbox]? = state.withLock { s in
            guard s.devices[key]?.outbox.id == outbox.id else { return nil }
            s.devices[key] = nil
            return s.dashboards.values.filter { $0.orgID == orgID }.map(\.outbox)
        }
        guard let watchers else { return }
        let frame = DashboardFrame.sourceStatus(.offline(sourceID: sourceID)).bytes
        for d in watchers { d.enqueue(frame) }
    }

    func touch(orgID: Int64, sourceID: String, at: Int64) {
        state.withLock { s in s.devices[Key(orgID: orgID, sourceID: sourceID)]?.info.lastSeen = at }
    }

    public func isOnline(orgID: Int64, sourceID: String) -> Bool {
        state.withLock { $0.devices[Key(orgID: orgID, sourceID: sourceID)] != nil }
    }

    func online(orgID: Int64) -> [DeviceInfo] {
        state.withLock { s in s.devices.values.map(\.info).filter { $0.orgID == orgID } }.sorted { $0.sourceID < $1.sourceID }
    }

    func info(orgID: Int64, sourceID: String) -> DeviceInfo? {
        state.withLock { $0.devices[Key(orgID: orgID, sourceID: sourceID)]?.info }
    }

    public var deviceCount: Int { state.withLock { $0.devices.count } }
    public var dashboardCount: Int { state.withLock { $0.dashboards.count } }

    /// Sends a frame to a connected device; false if it is not connected or its queue is full.
    func sendToDevice(orgID: Int64, sourceID: String, _ frame: [UInt8]) -> SendResult {
        guard let outbox = state.withLock({ $0.devices[Key(orgID: orgID, sourceID: sourceID)]?.outbox }) else { return .offline }
        return outbox.send(frame) ? .sent : .busy
    }

    enum SendResult { case sent, offline, busy }

    // MARK: Recording

    public func recording(orgID: Int64, sourceID: String) -> String? {
        state.withLock { $0.recordings[Key(orgID: orgID, sourceID: sourceID)] }
    }

    /// Mirrors a recording the ``Recorder`` started or stopped in the store.
    public func setRecording(orgID: Int64, sourceID: String, sessionID: String?) {
        state.withLock { s in s.recordings[Key(orgID: orgID, sourceID: sourceID)] = sessionID }
    }

    /// Restores the recordings a previous run left active (at start-up).
    public func restoreRecordings(_ list: [(orgID: Int64, sourceID: String, sessionID: String)]) {
        state.withLock { s in
            for r in list { s.recordings[Key(orgID: r.orgID, sourceID: r.sourceID)] = r.sessionID }
        }
    }

    // MARK: Dashboards

    func register(
        dashboard outbox: DashboardOutbox, orgID: Int64, canControl: Bool, credential: LiveCredential,
        control: ConnectionControl = ConnectionControl()
    ) {
        state.withLock { s in
            s.dashboards[outbox.id] = Dashboard(
                orgID: orgID, outbox: outbox, canControl: canControl, credential: credential,
                control: control, subscriptions: [:])
        }
    }

    func unregister(dashboard id: Int) { _ = state.withLock { $0.dashboards.removeValue(forKey: id) } }

    enum SubscribeOutcome: Sendable, Equatable {
        case subscribed
        /// Over ``Limits/pairsPerDashboard``; nothing changed.
        case tooManyForDashboard(Int)
        /// Over ``Limits/pairsPerOrganization``; nothing changed.
        case tooManyForOrganization(Int)
    }

    /// `source == nil` subscribes to every source; `metrics` empty means all metrics.
    /// Refused, with nothing changed, when it would take the dashboard or its organisation
    /// over their bounds.
    func subscribe(dashboard id: Int, source: String?, metrics: Set<String>) -> SubscribeOutcome {
        state.withLock { s in
            guard var d = s.dashboards[id] else { return .subscribed }
            let before = d.pairs
            if let source {
                // Watching every source already includes this one.
                if d.subscriptions != nil { d.subscriptions![source] = metrics }
            } else {
                d.subscriptions = nil
            }
            if d.pairs > before {
                guard d.pairs <= limits.pairsPerDashboard else { return .tooManyForDashboard(limits.pairsPerDashboard) }
                let org = s.dashboards.values.reduce(0) { $0 + ($1.orgID == d.orgID && $1.outbox.id != id ? $1.pairs : 0) }
                guard org + d.pairs <= limits.pairsPerOrganization else {
                    return .tooManyForOrganization(limits.pairsPerOrganization)
                }
            }
            s.dashboards[id] = d
            return .subscribed
        }
    }

    func unsubscribe(dashboard id: Int, source: String?) {
        state.withLock { s in
            guard var d = s.dashboards[id] else { return }
            // Watching every source: only an unsubscribe from all ("*" or none) stops it.
            if let source, source != "*" {
                if d.subscriptions != nil { d.subscriptions![source] = nil }
            } else {
                d.subscriptions = [:]
            }
            s.dashboards[id] = d
        }
    }

    private func watchers(_ s: State, orgID: Int64, sourceID: String) -> [(DashboardOutbox, Set<String>)] {
        s.dashboards.values.compactMap { d in
            guard d.orgID == orgID else { return nil }
            guard let subs = d.subscriptions else { return (d.outbox, []) }
            guard let metrics = subs[sourceID] else { return nil }
            return (d.outbox, metrics)
        }
    }

    /// Live fan-out of a stored (or about to be stored) batch to the dashboards watching.
    /// Each source's points are encoded once, into one chunk that every dashboard without a
    /// metric filter shares; a filtered dashboard gets its own chunk of its metrics.
    public func publish(orgID: Int64, batch: IngestBatch, receivedAt: Int64) {
        guard !batch.points.isEmpty else { return }
        let sources =
            batch.points.count == 1 || Self.singleSource(batch)
            ? [batch.points[0].sourceID ?? ""]
            : Array(Set(batch.points.map { $0.sourceID ?? "" })).sorted()
        let targets = state.withLock { s in sources.map { watchers(s, orgID: orgID, sourceID: $0) } }
        for (source, watching) in zip(sources, targets) where !watching.isEmpty {
            let points = sources.count == 1 ? batch.points[...] : ArraySlice(batch.points.filter { ($0.sourceID ?? "") == source })
            let needsSpans = watching.contains { !$0.1.isEmpty }
            var w = JSONWriter(capacity: points.count * 96)
            var spans: [(metric: String, range: Range<Int>, micros: Int64)] = []
            if needsSpans { spans.reserveCapacity(points.count) }
            var first = Int64.max
            var last = Int64.min
            for p in points {
                if w.bytes.count > 0 { w.raw(",") }
                let start = w.bytes.count
                let t = p.timestamp ?? receivedAt
                w.point(p, timestamp: t)
                first = min(first, t)
                last = max(last, t)
                if needsSpans { spans.append((p.metric, start..<w.bytes.count, t)) }
            }
            let all = LiveChunk(sourceID: source, bytes: w.bytes, count: points.count, firstMicros: first, lastMicros: last)
            for (outbox, metrics) in watching {
                if metrics.isEmpty {
                    outbox.enqueue(all)
                    continue
                }
                var f = JSONWriter(capacity: all.bytes.count)
                var n = 0
                var lo = Int64.max
                var hi = Int64.min
                for span in spans where metrics.contains(span.metric) {
                    if n > 0 { f.raw(",") }
                    f.rawBytes(all.bytes[span.range])
                    n += 1
                    lo = min(lo, span.micros)
                    hi = max(hi, span.micros)
                }
                if n > 0 { outbox.enqueue(LiveChunk(sourceID: source, bytes: f.bytes, count: n, firstMicros: lo, lastMicros: hi)) }
            }
        }
    }

    private static func singleSource(_ batch: IngestBatch) -> Bool {
        let first = batch.points[0].sourceID
        return batch.points.allSatisfy { $0.sourceID == first }
    }

    /// Relays a device's frame (reply, video, heartbeat) to the dashboards watching it.
    func relay(orgID: Int64, sourceID: String, frame: [UInt8], alsoTo extra: DashboardOutbox? = nil) {
        let targets = state.withLock { watchers($0, orgID: orgID, sourceID: sourceID).map(\.0) }
        for t in targets { t.enqueue(relay: frame) }
        if let extra, !targets.contains(where: { $0.id == extra.id }) { extra.enqueue(relay: frame) }
    }

    /// Subscribes to a source unless the dashboard already watches it (keeps its filter).
    func watch(dashboard id: Int, source: String) {
        state.withLock { s in
            guard var d = s.dashboards[id], d.subscriptions != nil, d.subscriptions![source] == nil else { return }
            d.subscriptions![source] = []
            s.dashboards[id] = d
        }
    }

    // MARK: Credentials and stalls

    /// One open connection as the connection guard sees it.
    struct OpenConnection: Sendable {
        var orgID: Int64
        var credential: LiveCredential
        /// What the connection was let in with: `write` (devices, controlling dashboards)
        /// or only `read`.
        var needsWrite: Bool
        var control: ConnectionControl
    }

    /// Every connection not yet told to end, with the credential that opened it.
    func openConnections() -> [OpenConnection] {
        state.withLock { s in
            s.devices.values.filter { !$0.control.isTerminated }.map {
                OpenConnection(orgID: $0.info.orgID, credential: $0.credential, needsWrite: true, control: $0.control)
            }
                + s.dashboards.values.filter { !$0.control.isTerminated }.map {
                    OpenConnection(orgID: $0.orgID, credential: $0.credential, needsWrite: $0.canControl, control: $0.control)
                }
        }
    }

    /// Dashboards whose writer has been stuck on one write for too long.
    func stalledDashboards() -> [ConnectionControl] {
        state.withLock { s in s.dashboards.values.filter { !$0.control.isTerminated && $0.outbox.stalled }.map(\.control) }
    }

    static func statusFrame(_ info: DeviceInfo) -> [UInt8] { DashboardFrame.sourceStatus(.online(info.status)).bytes }
}

/// What the server knows about a connected device.
struct DeviceInfo: Sendable {
    var orgID: Int64
    var sourceID: String
    var platform: String?
    var agentVersion: String?
    /// JSON array text the device reported.
    var sensors: String?
    var commands: String?
    var installID: String?
    var connectedAt: Int64
    var lastSeen: Int64

    /// The sensors as a JSON value (`[]` when the device reported none).
    var sensorsValue: JSONValue {
        sensors.flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) } ?? .array([])
    }

    /// As dashboards see it.
    var status: DeviceStatus {
        DeviceStatus(
            sourceID: sourceID, platform: platform, agentVersion: agentVersion, sensors: sensorsValue,
            connectedAtMs: connectedAt / 1_000, lastSeenMs: lastSeen / 1_000)
    }
}

extension DashboardFrame {
    /// The frame's JSON text. Values that came from JSON always encode; should one not
    /// (a non-finite number), dashboards get an `error` frame instead of nothing.
    var bytes: [UInt8] {
        do {
            return Array(try JSONText.encoder.encode(self))
        } catch {
            return OutboundFrame.error(.internalError, message: "could not encode \(type.rawValue)")
        }
    }
}
