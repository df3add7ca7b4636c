import PlexusModel
import Synchronization

/// Everything live: which devices are connected (per organisation and source), which
/// dashboards watch what, and which sources the server is recording into a session.
/// One lock, short critical sections; sockets are written by their own tasks.
public final class Hub: Sendable {
    struct Key: Hashable, Sendable {
        var orgID: Int64
        var sourceID: String
    }

    struct Device: Sendable {
        var outbox: DeviceOutbox
        var info: DeviceInfo
    }

    struct Dashboard: Sendable {
        var orgID: Int64
        var outbox: DashboardOutbox
        var canControl: Bool
        /// nil: every source of the organisation. Otherwise source → metrics (empty: all).
        var subscriptions: [String: Set<String>]?
    }

    struct State: Sendable {
        var devices: [Key: Device] = [:]
        var dashboards: [Int: Dashboard] = [:]
        var recordings: [Key: String] = [:]
        var nextID = 1
    }

    private let state = Mutex(State())

    public init() {}

    func nextID() -> Int { state.withLock { s in defer { s.nextID += 1 }; return s.nextID } }

    // MARK: Devices

    /// Registers a connected device; a previous connection for the same name is returned
    /// so the caller can close it (the newest connection wins).
    func register(_ outbox: DeviceOutbox, info: DeviceInfo) -> DeviceOutbox? {
        let key = Key(orgID: info.orgID, sourceID: info.sourceID)
        let (old, watchers) = state.withLock { s in
            let old = s.devices[key]?.outbox
            s.devices[key] = Device(outbox: outbox, info: info)
            return (old, s.dashboards.values.filter { $0.orgID == info.orgID }.map(\.outbox))
        }
        let status = Self.statusFrame(info, online: true)
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
        var w = JSONWriter()
        w.raw("{\"type\":\"source_status\",\"source_id\":")
        w.string(sourceID)
        w.raw(",\"status\":\"offline\"}")
        for d in watchers { d.enqueue(w.bytes) }
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

    func recording(orgID: Int64, sourceID: String) -> String? {
        state.withLock { $0.recordings[Key(orgID: orgID, sourceID: sourceID)] }
    }

    /// Starts recording a source into a session; returns the session it was recording before.
    func startRecording(orgID: Int64, sourceID: String, sessionID: String) -> String? {
        state.withLock { s in
            let key = Key(orgID: orgID, sourceID: sourceID)
            let old = s.recordings[key]
            s.recordings[key] = sessionID
            return old
        }
    }

    /// Restores the recordings a previous run left active (at start-up).
    public func restoreRecordings(_ list: [(orgID: Int64, sourceID: String, sessionID: String)]) {
        state.withLock { s in
            for r in list { s.recordings[Key(orgID: r.orgID, sourceID: r.sourceID)] = r.sessionID }
        }
    }

    func stopRecording(orgID: Int64, sourceID: String) -> String? {
        state.withLock { s in s.recordings.removeValue(forKey: Key(orgID: orgID, sourceID: sourceID)) }
    }

    // MARK: Dashboards

    func register(dashboard outbox: DashboardOutbox, orgID: Int64, canControl: Bool) {
        state.withLock { s in
            s.dashboards[outbox.id] = Dashboard(orgID: orgID, outbox: outbox, canControl: canControl, subscriptions: [:])
        }
    }

    func unregister(dashboard id: Int) { _ = state.withLock { $0.dashboards.removeValue(forKey: id) } }

    /// `source == nil` subscribes to every source; `metrics` empty means all metrics.
    func subscribe(dashboard id: Int, source: String?, metrics: Set<String>) {
        state.withLock { s in
            guard var d = s.dashboards[id] else { return }
            if let source {
                // Watching every source already includes this one.
                if d.subscriptions != nil { d.subscriptions![source] = metrics }
            } else {
                d.subscriptions = nil
            }
            s.dashboards[id] = d
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
    func publish(orgID: Int64, batch: IngestBatch, receivedAt: Int64) {
        let targets = state.withLock { s -> [String: [(DashboardOutbox, Set<String>)]] in
            var bySource: [String: [(DashboardOutbox, Set<String>)]] = [:]
            for p in batch.points {
                let src = p.sourceID ?? ""
                if bySource[src] == nil { bySource[src] = watchers(s, orgID: orgID, sourceID: src) }
            }
            return bySource
        }
        guard targets.values.contains(where: { !$0.isEmpty }) else { return }
        var encoded: [String: [(metric: String, json: [UInt8])]] = [:]
        for p in batch.points where !(targets[p.sourceID ?? ""]?.isEmpty ?? true) {
            encoded[p.sourceID ?? "", default: []].append((p.metric, Self.encode(p, receivedAt: receivedAt)))
        }
        for (source, points) in encoded {
            for (outbox, metrics) in targets[source] ?? [] {
                outbox.enqueue(source: source, points: metrics.isEmpty ? points : points.filter { metrics.contains($0.metric) })
            }
        }
    }

    /// Relays a device's frame (reply, video, heartbeat) to the dashboards watching it.
    func relay(orgID: Int64, sourceID: String, frame: [UInt8], alsoTo extra: DashboardOutbox? = nil) {
        let targets = state.withLock { watchers($0, orgID: orgID, sourceID: sourceID).map(\.0) }
        for t in targets { t.enqueue(frame) }
        if let extra, !targets.contains(where: { $0.id == extra.id }) { extra.enqueue(frame) }
    }

    /// Subscribes to a source unless the dashboard already watches it (keeps its filter).
    func watch(dashboard id: Int, source: String) {
        state.withLock { s in
            guard var d = s.dashboards[id], d.subscriptions != nil, d.subscriptions![source] == nil else { return }
            d.subscriptions![source] = []
            s.dashboards[id] = d
        }
    }

    static func encode(_ p: Point, receivedAt: Int64) -> [UInt8] {
        var w = JSONWriter(capacity: 96)
        w.point(p, timestamp: p.timestamp ?? receivedAt)
        return w.bytes
    }

    static func statusFrame(_ info: DeviceInfo, online: Bool) -> [UInt8] {
        var w = JSONWriter(capacity: 256)
        w.raw("{\"type\":\"source_status\",\"status\":")
        w.raw(online ? "\"online\"," : "\"offline\",")
        info.writeFields(&w)
        w.raw("}")
        return w.bytes
    }
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

    /// `"source_id":…,"platform":…,…` (no braces).
    func writeFields(_ w: inout JSONWriter) {
        w.raw("\"source_id\":")
        w.string(sourceID)
        w.raw(",\"platform\":")
        w.optionalString(platform)
        w.raw(",\"agent_version\":")
        w.optionalString(agentVersion)
        w.raw(",\"sensors\":")
        w.rawText(sensors ?? "[]")
        w.raw(",\"connected_at_ms\":")
        w.int(connectedAt / 1_000)
        w.raw(",\"last_seen_ms\":")
        w.int(lastSeen / 1_000)
    }
}
