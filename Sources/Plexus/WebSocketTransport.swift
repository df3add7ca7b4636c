import Foundation
import Logging
import NIOCore
import NIOWebSocket
import PlexusModel
import Synchronization
import WSClient

/// The default transport: one WebSocket to `/ws/device`, in the SDK wire format
/// (`device_auth` with `install_id` and `acks`, `telemetry` frames with `seq`). A batch
/// counts as delivered only when the server acknowledged it (it is then on disk). While
/// the socket is down, batches go over HTTP instead, so sends never wait for a reconnect.
final class WebSocketTransport: PlexusTransport, Sendable {
    let configuration: PlexusConfiguration
    let http: HTTPTransport
    let identity: Identity
    private let state = Mutex(State())
    static let ackTimeout: Duration = .seconds(30)

    struct State: Sendable {
        var outbound: WebSocketOutboundWriter?
        /// Per connection: seq numbers start at 1, acks are cumulative.
        var connection = 0
        var nextSeq: Int64 = 1
        var ackedUpTo: Int64 = 0
        var rejected: Set<Int64> = []
        var waiting: [Int64: CheckedContinuation<Bool, Never>] = [:]
        /// `time_sync` frames sent and not yet answered: id → (monotonic, wall ms) at sending.
        var syncID = 0
        var syncSent: [Int: (sent: ContinuousClock.Instant, wallMs: Double)] = [:]
    }

    /// Where commands from the server go (``Plexus/commands``).
    let commandSink: AsyncStream<PlexusCommand>.Continuation

    init(configuration: PlexusConfiguration, identity: Identity, commandSink: AsyncStream<PlexusCommand>.Continuation) {
        self.configuration = configuration
        self.identity = identity
        self.commandSink = commandSink
        http = HTTPTransport(configuration: configuration)
    }

    /// Writes one frame (a reply) on the open socket.
    func write(frame: String) async throws(PlexusError) {
        guard let outbound = state.withLock({ $0.outbound }) else {
            throw PlexusError(.unavailable, "not connected")
        }
        do {
            try await outbound.write(.text(frame))
        } catch {
            throw PlexusError(.unavailable, "the connection closed: \(error)")
        }
    }

    /// A command from the server: the client's own part first (ping, sessions), then it
    /// goes to ``Plexus/commands``.
    private func handle(command: PlexusCommand, outbound: WebSocketOutboundWriter) async throws {
        switch command.action {
        case .ping:
            try await outbound.write(.text(DeviceFrame.pong))
        case .startSession(let id, let name, _):
            identity.setSession(id)
            try await outbound.write(.text(DeviceFrame.sessionStarted(id: id, name: name)))
        case .stopSession(let id):
            let ended = identity.endSession(id)
            if let stopped = id ?? ended {
                try await outbound.write(.text(DeviceFrame.sessionStopped(id: stopped)))
            }
        default:
            break
        }
        commandSink.yield(command)
    }

    var isConnected: Bool { state.withLock { $0.outbound != nil } }

    var url: String {
        var base = configuration.gatewayWSURL
        while base.hasSuffix("/") { base.removeLast() }
        return base.hasSuffix("/ws/device") ? base : base + "/ws/device"
    }

    func deliver(_ points: [[UInt8]], sourceID: String) async -> Result<Void, PlexusError> {
        if await sendOverSocket(points) { return .success(()) }
        return await http.deliver(points, sourceID: identity.sourceID)
    }

    /// True when the server acknowledged the frame; false to fall back to HTTP.
    private func sendOverSocket(_ points: [[UInt8]]) async -> Bool {
        guard
            let (outbound, seq, connection) = state.withLock({ s -> (WebSocketOutboundWriter, Int64, Int)? in
                guard let o = s.outbound else { return nil }
                defer { s.nextSeq += 1 }
                return (o, s.nextSeq, s.connection)
            })
        else { return false }
        var w = JSONWriter(capacity: points.reduce(64) { $0 + $1.count + 1 })
        w.raw("{\"type\":\"telemetry\",\"seq\":")
        w.int(seq)
        w.pointsAndClose(points)
        do {
            try await outbound.write(.text(w.string))
        } catch {
            return false
        }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                    // The ack may already be here; the connection may already be gone.
                    let now = self.state.withLock { s -> Bool? in
                        guard s.connection == connection, s.outbound != nil else { return false }
                        if seq <= s.ackedUpTo { return true }
                        if s.rejected.remove(seq) != nil { return false }
                        s.waiting[seq] = c
                        return nil
                    }
                    if let now { c.resume(returning: now) }
                }
            }
            group.addTask {
                try? await Task.sleep(for: Self.ackTimeout)
                self.resolve(seq, false)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    private func resolve(_ seq: Int64, _ ok: Bool) {
        state.withLock { $0.waiting.removeValue(forKey: seq) }?.resume(returning: ok)
    }

    /// Cumulative ack: everything up to `seq` is stored.
    private func acked(upTo seq: Int64) {
        let done = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            s.ackedUpTo = max(s.ackedUpTo, seq)
            let keys = s.waiting.keys.filter { $0 <= seq }
            return keys.compactMap { s.waiting.removeValue(forKey: $0) }
        }
        for c in done { c.resume(returning: true) }
    }

    /// The server refused that frame (it names the bad point); HTTP will say why.
    private func rejected(_ seq: Int64) {
        let c = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            if let c = s.waiting.removeValue(forKey: seq) { return c }
            s.rejected.insert(seq)
            return nil
        }
        c?.resume(returning: false)
    }

    /// Keeps the connection up until cancelled: connect, authenticate, read acks; on loss,
    /// back off (1 s doubling to 60 s, ±25 % jitter) and reconnect.
    func run(logger: Logger) async {
        var attempt = 0
        while !Task.isCancelled {
            let authenticated = Mutex(false)
            _ = try? await WebSocketClient.connect(
                url: url, configuration: .init(maxFrameSize: Limits.maxFrameBytes),
                logger: logger
            ) { inbound, outbound, _ in
                try await outbound.write(.text(self.authFrame()))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for try await message in inbound.messages(maxSize: Limits.maxFrameBytes) {
                        guard case .text(let text) = message else { continue }
                        let bytes = Array(text.utf8)
                        guard let f = bytes.withUnsafeBytes({ Frames.fields($0) }) else { continue }
                        let type = f.string("type") ?? ""
                        if ControlCommand(rawValue: type) != nil {
                            if let command = PlexusCommand.parse(text) { try await self.handle(command: command, outbound: outbound) }
                            continue
                        }
                        switch ServerFrameType(rawValue: type) {
                        case .authenticated:
                            if let ms = f.numbers["server_time_ms"], ms > 0 { self.identity.setClockOffset(serverMs: ms) }
                            if let name = f.string("source_id"), !name.isEmpty { self.identity.adopt(name) }
                            authenticated.withLock { $0 = true }
                            self.state.withLock { s in
                                s.outbound = outbound
                                s.connection += 1
                                s.nextSeq = 1
                                s.ackedUpTo = 0
                                s.rejected.removeAll()
                                s.syncSent.removeAll()
                            }
                            if let every = self.configuration.clockRefreshInterval {
                                group.addTask { try await self.refreshClock(outbound, every: every) }
                            }
                        case .timeSync:
                            if let id = f.numbers["id"], let server = f.numbers["server_time_ms"], server > 0 {
                                self.clockSynced(id: Int(id), serverMs: server)
                            }
                        case .telemetryAck:
                            if let seq = f.numbers["seq"] { self.acked(upTo: Int64(seq)) }
                        case .error:
                            if let seq = f.numbers["seq"] { self.rejected(Int64(seq)) }
                        case nil:
                            break
                        }
                    }
                    group.cancelAll()
                }
            }
            // Lost: whatever waits for an ack goes over HTTP instead (duplicates over loss).
            let pending = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
                s.outbound = nil
                defer { s.waiting.removeAll() }
                return Array(s.waiting.values)
            }
            for c in pending { c.resume(returning: false) }
            if authenticated.withLock({ $0 }) { attempt = 0 }
            let base = min(60.0, pow(2.0, Double(min(attempt, 6))))
            attempt += 1
            try? await Task.sleep(for: .seconds(base * Double.random(in: 0.75...1.25)))
        }
    }

    /// Asks for the server's clock now and then every `every` while the connection lasts:
    /// `{"type":"time_sync","id":N}`, answered with `server_time_ms` (a server that does not
    /// know the frame answers an error, and the offset from `authenticated` stays).
    private func refreshClock(_ outbound: WebSocketOutboundWriter, every: Duration) async throws {
        while true {
            let id = state.withLock { s -> Int in
                s.syncID += 1
                s.syncSent = s.syncSent.filter { $0.key > s.syncID - 8 }
                s.syncSent[s.syncID] = (ContinuousClock.now, identity.localMs)
                return s.syncID
            }
            try await outbound.write(.text(DeviceFrame.timeSync(id: id)))
            try await Task.sleep(for: every)
        }
    }

    private func clockSynced(id: Int, serverMs: Double) {
        guard let sent = state.withLock({ $0.syncSent.removeValue(forKey: id) }) else { return }
        let roundTrip = sent.sent.duration(to: .now)
        guard roundTrip < Self.maxSyncRoundTrip else { return }  // too slow to say much
        identity.setClockOffset(ms: ClockSync.offsetMs(serverMs: serverMs, sentWallMs: sent.wallMs, roundTrip: roundTrip))
    }

    static let maxSyncRoundTrip: Duration = .seconds(5)

    func authFrame() -> String {
        let sensors = configuration.sensors.map { value -> String in
            var w = JSONWriter()
            w.write(value)
            return w.string
        }
        let auth = DeviceAuth(
            apiKey: configuration.apiKey, sourceID: identity.sourceID, installID: configuration.installID,
            platform: configuration.platform, agentVersion: configuration.agentVersion, sensors: sensors, acks: true)
        return String(decoding: auth.encoded, as: UTF8.self)
    }
}

/// The device's name (the server may assign `name_2`; it is adopted and saved) and its
/// clock offset to the server (applied to timestamps the SDK generates).
final class Identity: Sendable {
    private let state: Mutex<(sourceID: String, offsetMs: Double, session: String?)>
    let configFile: ConfigFile?
    /// ``PlexusConfiguration/wallClockOffset`` in seconds.
    let wallClockOffset: Double

    init(sourceID: String, configFile: ConfigFile?, wallClockOffset: Duration = .zero) {
        state = Mutex((sourceID, 0, nil))
        self.configFile = configFile
        self.wallClockOffset = Double(wallClockOffset.components.seconds) + Double(wallClockOffset.components.attoseconds) * 1e-18
    }

    /// The device's wall clock, uncorrected.
    func wallClock() -> Date { Date().addingTimeInterval(wallClockOffset) }

    /// The device clock in milliseconds, uncorrected.
    var localMs: Double { wallClock().timeIntervalSince1970 * 1_000 }

    var sourceID: String { state.withLock { $0.sourceID } }
    var clockOffsetMs: Double { state.withLock { $0.offsetMs } }
    /// The session a dashboard started (`start_session`); points are tagged with it.
    var session: String? { state.withLock { $0.session } }

    func setSession(_ id: String?) { state.withLock { $0.session = id } }

    /// Ends the session `id` (nil: whichever is active); returns the one that was active.
    func endSession(_ id: String?) -> String? {
        state.withLock { s in
            let was = s.session
            if id == nil || id == was { s.session = nil }
            return was
        }
    }

    func setClockOffset(ms: Double) {
        state.withLock { $0.offsetMs = ms }
    }

    func setClockOffset(serverMs: Double) {
        let local = localMs
        state.withLock { $0.offsetMs = serverMs - local }
    }

    func adopt(_ name: String) {
        let changed = state.withLock { s -> Bool in
            guard s.sourceID != name else { return false }
            s.sourceID = name
            return true
        }
        if changed, let file = configFile {
            var stored = file.load()
            stored["source_id"] = name
            file.save(stored)
        }
    }
}

/// Round-trip-compensated clock offset: the server read its clock about half-way through
/// the round trip, so it is compared with the device's clock at that moment.
enum ClockSync {
    /// Server time minus device time, in ms. `sentWallMs` is the device's wall clock when
    /// the request left; `roundTrip` the monotonic time until the answer arrived.
    static func offsetMs(serverMs: Double, sentWallMs: Double, roundTrip: Duration) -> Double {
        let rttMs = Double(roundTrip.components.seconds) * 1_000 + Double(roundTrip.components.attoseconds) / 1e15
        return serverMs - (sentWallMs + rttMs / 2)
    }
}
