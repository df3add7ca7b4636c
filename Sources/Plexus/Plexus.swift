public import Foundation
import Logging
@_exported public import PlexusModel
public import ServiceLifecycle
import Synchronization

/// A point to send with its own timestamp (``Plexus/sendBatch(_:)``).
public struct PlexusPoint: Sendable {
    public var metric: String
    public var value: PlexusValue
    /// Unix time; nil means now.
    public var timestamp: Date?
    public var tags: [String: String]

    public init(_ metric: String, _ value: PlexusValue, timestamp: Date? = nil, tags: [String: String] = [:]) {
        self.metric = metric
        self.value = value
        self.timestamp = timestamp
        self.tags = tags
    }
}

/// The Plexus client: `send` never waits for the network. Points are batched (by count
/// and time) and delivered by the client's own sender, which runs as a `Service`: add the
/// client to your `ServiceGroup`, or use ``withPlexus(_:_:)`` for a scoped client.
///
/// ```swift
/// try await withPlexus(try .resolve(sourceID: "drone-01")) { px in
///     try px.send("temperature", 72.5)
///     try px.send("pos", ["x": 1.2, "y": 3.4])
///     try await px.flush()
/// }
/// ```
public final class Plexus: Service, Sendable {
    public let configuration: PlexusConfiguration
    let transport: any PlexusTransport
    let webSocket: WebSocketTransport?
    let identity: Identity
    private let state = Mutex(SendQueue())
    private let bell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation
    private let commandSink: AsyncStream<PlexusCommand>.Continuation
    /// Points not yet acknowledged, on disk (``PlexusConfiguration/bufferPath``); nil keeps
    /// them in memory only.
    let disk: DiskBuffer?
    private let logger = Logger(label: "plexus.sdk")

    /// Commands from dashboards, in the order they arrived (WebSocket transport only; over
    /// HTTP nothing arrives). Iterate it from one task. `ping`, `start_session` and
    /// `stop_session` have already been answered when they appear here (see
    /// ``PlexusCommand``); answer the others with ``reply(to:_:)``. At most 256 wait
    /// unread; later ones are dropped. Ends when the client stops.
    public let commands: AsyncStream<PlexusCommand>

    struct SendQueue: Sendable {
        /// Encoded points (JSON objects), oldest first. With a disk buffer, points wait here
        /// only until the sender's next tick moves them to disk.
        var pending: [[UInt8]] = []
        /// Points in the disk buffer.
        var onDisk = 0
        /// Points on their way from `pending` to disk (in neither count meanwhile).
        var spilling = false
        /// When a drop was last logged (at most one line per 10 s).
        var dropLoggedAt: ContinuousClock.Instant?
        var isEmpty: Bool { pending.isEmpty && onDisk == 0 }
        var firstPendingAt: ContinuousClock.Instant?
        var dropped = 0
        var closed = false
        var lastError: PlexusError?
        var flushWaiters: [CheckedContinuation<Void, any Error>] = []
        var delivering = false
        /// After a failed delivery (a refused key, an unreachable server), the next
        /// scheduled one waits: 0.5 s, doubling to 60 s, reset by a success. `flush()` does not wait.
        var pausedUntil: ContinuousClock.Instant?
        var failedDeliveries = 0
    }

    public init(configuration: PlexusConfiguration) {
        self.configuration = configuration
        identity = Identity(
            sourceID: configuration.sourceID, configFile: configuration.home.map(ConfigFile.init(home:)),
            wallClockOffset: configuration.wallClockOffset)
        (commands, commandSink) = AsyncStream.makeStream(of: PlexusCommand.self, bufferingPolicy: .bufferingOldest(256))
        switch configuration.transport {
        case .http:
            webSocket = nil
            transport = HTTPTransport(configuration: configuration)
        case .webSocket:
            let ws = WebSocketTransport(configuration: configuration, identity: identity, commandSink: commandSink)
            webSocket = ws
            transport = ws
        }
        (bell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        var opened: DiskBuffer?
        if let path = configuration.bufferPath {
            do {
                let buffer = try DiskBuffer(path: path, capacity: configuration.maxBufferedPoints)
                let waiting = buffer.count
                opened = buffer
                if waiting > 0 {
                    logger.info("\(waiting) points from before wait in \(path); they go first")
                    state.withLock { s in
                        s.onDisk = waiting
                        s.firstPendingAt = .now
                    }
                }
            } catch {
                logger.error("no disk buffer, points wait in memory only: \(error)")
            }
        }
        disk = opened
    }

    /// Resolves the configuration (arguments, environment, `~/.plexus/config.json`).
    public convenience init(apiKey: String? = nil, sourceID: String? = nil, gatewayURL: String? = nil) throws(PlexusError) {
        self.init(configuration: try .resolve(apiKey: apiKey, sourceID: sourceID, gatewayURL: gatewayURL))
    }

    /// The device's name; over WebSocket the server may assign another (`name_2`), which
    /// is adopted and saved in the config file.
    public var sourceID: String { identity.sourceID }
    /// Server time minus device time, learnt when the WebSocket authenticates; added to
    /// every timestamp the SDK generates (explicit timestamps are used as given).
    public var clockOffset: Duration { .milliseconds(identity.clockOffsetMs) }
    /// True while the WebSocket is connected and authenticated.
    public var isConnected: Bool { webSocket?.isConnected ?? false }
    /// Points dropped because the buffer was full (the server unreachable for long).
    public var droppedPoints: Int { state.withLock { $0.dropped } }
    /// Points waiting in the disk buffer at `path` (for `plexus status`); nil if there is none.
    public static func bufferedPoints(inBuffer path: String) -> Int? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try? DiskBuffer(path: path, capacity: .max).count
    }

    /// Points waiting to be delivered (in memory and in the disk buffer).
    public var bufferedPoints: Int { state.withLock { $0.pending.count + $0.onDisk } }
    /// The session a dashboard started with `start_session`, until `stop_session`: every
    /// point sent meanwhile carries the tag `session_id` (unless it has its own).
    public var sessionID: String? { identity.session }

    /// Answers a command with `{"type":"command_result","command":…,"status":"ok"|"error",…}`
    /// (with the stream's `id` or the configured `sensor`, and the error's `message`).
    /// - Throws: ``PlexusError`` `.unavailable` when the socket is not connected.
    public func reply(to command: PlexusCommand, _ result: PlexusCommandResult) async throws(PlexusError) {
        guard let webSocket else { throw PlexusError(.unavailable, "commands need the WebSocket transport") }
        try await webSocket.write(frame: command.resultFrame(result))
    }

    /// Tells the dashboards that something on the device failed (a sensor stopped
    /// answering): a `device_error` frame, which the server stores as the metric
    /// `device.error`. Best effort: nothing is sent while the socket is down.
    public func reportError(source: String, _ message: String, severity: String = "error") async {
        guard let webSocket else { return }
        try? await webSocket.write(frame: DeviceFrame.deviceError(source: source, error: message, severity: severity))
    }

    // MARK: Sending

    /// Queues one point. `timestamp` nil means now. Never waits for the network.
    public func send(_ metric: String, _ value: PlexusValue, timestamp: Date? = nil, tags: [String: String] = [:]) throws(PlexusError) {
        try enqueue([try Self.encode(PlexusPoint(metric, value, timestamp: timestamp, tags: tags), now: now(), session: identity.session)])
    }

    /// Queues points that share one timestamp (nil: now) and tags.
    public func sendBatch(_ points: [(String, PlexusValue)], timestamp: Date? = nil, tags: [String: String] = [:]) throws(PlexusError) {
        let at = timestamp ?? now()
        var encoded: [[UInt8]] = []
        let session = identity.session
        for (m, v) in points { encoded.append(try Self.encode(PlexusPoint(m, v, timestamp: at, tags: tags), now: at, session: session)) }
        try enqueue(encoded)
    }

    /// Queues points, each with its own timestamp (the Python SDK's one-timestamp limit, lifted).
    public func sendBatch(_ points: [PlexusPoint]) throws(PlexusError) {
        let now = now()
        var encoded: [[UInt8]] = []
        let session = identity.session
        for p in points { encoded.append(try Self.encode(p, now: now, session: session)) }
        try enqueue(encoded)
    }

    /// The corrected clock for timestamps the SDK generates.
    func now() -> Date { identity.wallClock().addingTimeInterval(identity.clockOffsetMs / 1_000) }

    /// One point as JSON. During a session the point gets the tag `session_id` (the spec's
    /// shape), or the `session_id` field when its tags are already full.
    static func encode(_ p: PlexusPoint, now: Date, session: String? = nil) throws(PlexusError) -> [UInt8] {
        guard !p.metric.isEmpty, p.metric.utf8.count <= Limits.maxMetricBytes else {
            throw PlexusError(.invalidArgument, "metric must be 1-\(Limits.maxMetricBytes) bytes")
        }
        guard p.tags.count <= Limits.maxTags else { throw PlexusError(.invalidArgument, "at most \(Limits.maxTags) tags") }
        let at = ((p.timestamp ?? now).timeIntervalSince1970 * 1_000_000).rounded()
        var tags = p.tags
        var sessionField: String?
        if let session, tags["session_id"] == nil {
            if tags.count < Limits.maxTags { tags["session_id"] = session } else { sessionField = session }
        }
        var w = JSONWriter(capacity: 96)
        let point = Point(metric: p.metric, value: p.value, tags: tags.map { Tag($0.key, $0.value) }.sorted(), sessionID: sessionField)
        // The server's own rules, so a point it would refuse never joins (and sinks) a batch.
        if let refusal = Limits.refusal(point) {
            throw PlexusError(.invalidArgument, "point \(String(p.metric.prefix(64)).debugDescription): \(refusal.dropFirst())")
        }
        w.point(point, timestamp: Int64(at))
        return w.bytes
    }

    private func enqueue(_ points: [[UInt8]]) throws(PlexusError) {
        let (full, closed, dropped) = state.withLock { s -> (Bool, Bool, Int) in
            guard !s.closed else { return (false, true, 0) }
            s.pending.append(contentsOf: points)
            var extra = 0
            if s.pending.count > configuration.maxBufferedPoints {
                extra = s.pending.count - configuration.maxBufferedPoints
                s.pending.removeFirst(extra)
                s.dropped += extra
            }
            if s.firstPendingAt == nil { s.firstPendingAt = .now }
            return (s.pending.count >= configuration.maxBatchPoints, false, extra)
        }
        if closed { throw PlexusError(.closed, "the client is closed") }
        if dropped > 0 { logDrop(dropped) }
        if full { ring.yield() }
    }

    /// Returns when everything queued so far is delivered; throws the delivery error if the
    /// last attempt failed (the points stay buffered for a retry).
    public func flush() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let done = state.withLock { s -> Bool in
                if s.isEmpty && !s.delivering && !s.spilling { return true }
                s.flushWaiters.append(c)
                return false
            }
            if done { c.resume() } else { ring.yield() }
        }
    }

    /// Delivers what is queued, then stops the sender.
    public func close() async throws {
        defer {
            state.withLock { $0.closed = true }
            ring.finish()
        }
        try await flush()
    }

    // MARK: Service

    public func run() async throws {
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [ring, configuration] in
                while !Task.isCancelled {
                    try await Task.sleep(for: configuration.flushInterval)
                    ring.yield()
                }
            }
            if let disk {
                // Points go to disk every tick, even while a delivery hangs on a dead server.
                group.addTask { [configuration] in
                    while !Task.isCancelled {
                        try await Task.sleep(for: configuration.flushInterval)
                        self.spill(to: disk)
                    }
                }
            }
            if let webSocket {
                group.addTask {
                    var logger = Logger(label: "plexus.sdk")
                    logger.logLevel = .critical
                    await webSocket.run(logger: logger)
                }
            }
            await withGracefulShutdownHandler {
                for await _ in bell { await deliverDue() }
            } onGracefulShutdown: { [ring] in
                ring.finish()
            }
            await deliverDue(force: true)
            commandSink.finish()
            group.cancelAll()
        }
    }

    private func deliverDue(force: Bool = false) async {
        while true {
            if let disk { spill(to: disk) }
            let start = state.withLock { s -> [[UInt8]]? in
                let total = s.pending.count + s.onDisk
                let due =
                    force || !s.flushWaiters.isEmpty
                    || ((s.pausedUntil.map { .now >= $0 } ?? true)
                        && (total >= configuration.maxBatchPoints
                            || (s.firstPendingAt.map { $0.duration(to: .now) >= configuration.flushInterval } ?? false)))
                guard due, total > 0, !s.delivering else { return nil }
                s.delivering = true
                return disk == nil ? Array(s.pending.prefix(configuration.maxBatchPoints)) : []
            }
            guard var batch = start else {
                resolveWaiters()
                return
            }
            var ids: [Int64] = []
            if let disk {
                let read: Result<[DiskBuffer.Row], PlexusError>
                do { read = .success(try disk.oldest(configuration.maxBatchPoints)) } catch { read = .failure(error) }
                switch read {
                case .success(let rows) where rows.isEmpty:
                    // The count was off (rows dropped meanwhile): the disk is empty.
                    state.withLock { s in
                        s.delivering = false
                        s.onDisk = 0
                        if s.pending.isEmpty { s.firstPendingAt = nil }
                    }
                    resolveWaiters()
                    return
                case .success(let rows):
                    batch = rows.map(\.body)
                    ids = rows.map(\.id)
                case .failure(let e):
                    // Keep everything; the next tick tries again.
                    if !Task.isCancelled { logger.error("\(e)") }
                    state.withLock { s in
                        s.delivering = false
                        s.lastError = e
                    }
                    failWaiters()
                    return
                }
            }
            let result = await transport.deliver(batch, sourceID: identity.sourceID)
            var removed = 0
            if let disk, result.isSettled {
                do { removed = try disk.remove(ids) } catch { logger.error("\(error)") }
            }
            let previous = state.withLock { s in
                let previous = s.lastError
                s.delivering = false
                switch result {
                case .success:
                    s.lastError = nil
                    s.failedDeliveries = 0
                    s.pausedUntil = nil
                case .failure(let e):
                    s.lastError = e
                    if e.code != .rejected {
                        s.failedDeliveries += 1
                        let delay = Duration.milliseconds(500) * (1 << min(s.failedDeliveries - 1, 7))
                        s.pausedUntil = .now + min(delay, .seconds(60))
                    }
                }
                if result.isSettled {
                    if disk == nil {
                        s.pending.removeFirst(min(batch.count, s.pending.count))
                    } else {
                        s.onDisk = max(0, s.onDisk - removed)
                    }
                }
                s.firstPendingAt = s.isEmpty ? nil : .now
                return previous
            }
            logDelivery(result, points: batch.count, previous: previous)
            if case .failure(let e) = result {
                failWaiters()
                // Keep the points for the next tick; only at shutdown go on past a refused batch.
                if !force || e.code != .rejected { return }
            }
        }
    }

    /// Says what a delivery did when it matters: every refused batch (its points are
    /// dropped), the first of a run of other failures (the points are kept and retried:
    /// a wrong key would otherwise retry in silence), and the recovery after one.
    private func logDelivery(_ result: Result<Void, PlexusError>, points: Int, previous: PlexusError?) {
        switch result {
        case .failure(let e) where e.code == .rejected:
            logger.error("the server refused \(points) points, which are dropped: \(e)")
        case .failure(let e) where previous?.code != e.code:
            if !Task.isCancelled { logger.error("delivery failed, the points are kept and sent again: \(e)") }
        case .success where previous != nil:
            logger.notice("delivering again")
        default:
            break
        }
    }

    /// Moves the points queued in memory to the disk buffer (one transaction), dropping
    /// the oldest on disk past the bound. If the disk fails they stay in memory.
    private func spill(to disk: DiskBuffer) {
        let moving = state.withLock { s -> [[UInt8]] in
            guard !s.pending.isEmpty, !s.spilling else { return [] }
            s.spilling = true  // flush() must not see an empty queue while they move
            defer { s.pending.removeAll() }
            return s.pending
        }
        guard !moving.isEmpty else { return }
        do {
            let dropped = try disk.append(moving).dropped
            state.withLock { s in
                s.onDisk = max(0, s.onDisk + moving.count - dropped)
                s.dropped += dropped
                s.spilling = false
            }
            if dropped > 0 { logDrop(dropped) }
        } catch {
            state.withLock { s in
                s.pending.insert(contentsOf: moving, at: 0)
                s.spilling = false
            }
            logger.error("\(error)")
        }
    }

    /// Logs dropped points: the first drop at once, then at most one line per 10 s.
    private func logDrop(_ count: Int) {
        let total = state.withLock { s -> Int? in
            if let last = s.dropLoggedAt, last.duration(to: .now) < .seconds(10) { return nil }
            s.dropLoggedAt = .now
            return s.dropped
        }
        guard let total else { return }
        logger.warning(
            "buffer full (\(configuration.maxBufferedPoints) points): dropped the \(count) oldest; \(total) dropped since start")
    }

    private func resolveWaiters() {
        let (waiters, error) = state.withLock { s -> ([CheckedContinuation<Void, any Error>], PlexusError?) in
            guard s.isEmpty && !s.delivering && !s.spilling else { return ([], nil) }
            defer { s.flushWaiters.removeAll() }
            return (s.flushWaiters, s.lastError)
        }
        for w in waiters { if let error { w.resume(throwing: error) } else { w.resume() } }
    }

    private func failWaiters() {
        let (waiters, error) = state.withLock { s -> ([CheckedContinuation<Void, any Error>], PlexusError?) in
            defer { s.flushWaiters.removeAll() }
            return (s.flushWaiters, s.lastError)
        }
        for w in waiters { w.resume(throwing: error ?? PlexusError(.unavailable, "delivery failed")) }
    }
}

/// Runs a client for the duration of `body`: its sender starts before and everything
/// queued is delivered (or the error thrown) before it returns.
public func withPlexus<T: Sendable>(_ configuration: PlexusConfiguration, _ body: (Plexus) async throws -> T) async throws -> T {
    let px = Plexus(configuration: configuration)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await px.run() }
        do {
            let value = try await body(px)
            try await px.close()
            try await group.waitForAll()
            return value
        } catch {
            try? await px.close()
            group.cancelAll()
            throw error
        }
    }
}

extension Result where Failure == PlexusError {
    /// Delivered, or refused for good (the server will never take these points): either
    /// way they leave the buffer.
    var isSettled: Bool {
        switch self {
        case .success: true
        case .failure(let e): e.code == .rejected
        }
    }
}
