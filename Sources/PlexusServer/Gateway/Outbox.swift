import PlexusModel
import Synchronization

/// A device connection's outbound queue: bounded, so a device that stops reading cannot
/// make the server buffer without limit (a full queue refuses the command).
final class DeviceOutbox: Sendable {
    let id: Int
    let stream: AsyncStream<[UInt8]>
    private let continuation: AsyncStream<[UInt8]>.Continuation
    /// Writes a close frame at once, past anything queued (a replaced connection).
    let closeNow: @Sendable (UInt16, String) async -> Void
    /// Shutdown: whether the reader is handling a frame, and whether the server is
    /// stopping. The one of the two that sees both closes the connection, so a frame
    /// being stored is acknowledged before the close.
    private let phase = Mutex((busy: false, draining: false))

    init(id: Int, capacity: Int = 64, closeNow: @escaping @Sendable (UInt16, String) async -> Void = { _, _ in }) {
        self.id = id
        self.closeNow = closeNow
        (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingOldest(capacity))
    }

    @discardableResult
    func send(_ frame: [UInt8]) -> Bool {
        if case .enqueued = continuation.yield(frame) { return true }
        return false
    }

    func finish() { continuation.finish() }

    /// The reader took a frame; false if the connection is draining, and the frame must
    /// not be handled: the drain may already have closed the socket, so an ack could not
    /// be written, and a frame stored without its ack would be sent again (a duplicate).
    /// Under the same lock as ``drain()``, so exactly one of the two wins.
    func beginFrame() -> Bool {
        phase.withLock { p in
            guard !p.draining else { return false }
            p.busy = true
            return true
        }
    }

    /// The reader finished a frame (and wrote its reply); true if it must now close.
    func endFrame() -> Bool {
        phase.withLock { p in
            p.busy = false
            return p.draining
        }
    }

    /// The server is stopping; true if the connection is idle and can be closed now
    /// (otherwise its reader closes it after the frame in hand).
    /// Only the first call can say so.
    func drain() -> Bool {
        phase.withLock { p in
            defer { p.draining = true }
            return !p.busy && !p.draining
        }
    }
}

/// A dashboard connection's outbound queue. Live telemetry is coalesced per source and
/// metric and capped (oldest dropped, counted), other frames are capped too: a slow or
/// stalled dashboard loses live frames, never slows ingest or storage, and never grows
/// an unbounded queue.
final class DashboardOutbox: Sendable {
    static let pointsPerSeries = 1_000
    static let otherFrames = 256
    /// Video frames are large: non-telemetry frames are capped by bytes too.
    static let otherBytes = 8 << 20

    struct Pending: Sendable {
        /// source → metric → encoded points, oldest first.
        var telemetry: [String: [String: [[UInt8]]]] = [:]
        var others: [[UInt8]] = []
        var otherBytes = 0
        var dropped = 0
        var closed = false
        var close: (UInt16, String)?
    }

    let id: Int
    private let pending = Mutex(Pending())
    let bell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    init(id: Int) {
        self.id = id
        (bell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    var dropped: Int { pending.withLock { $0.dropped } }

    func enqueue(source: String, points: [(metric: String, json: [UInt8])]) {
        let accepted = pending.withLock { p -> Bool in
            guard !p.closed else { return false }
            for (metric, json) in points {
                var list = p.telemetry[source, default: [:]][metric, default: []]
                if list.count >= Self.pointsPerSeries {
                    list.removeFirst(list.count - Self.pointsPerSeries + 1)
                    p.dropped += 1
                }
                list.append(json)
                p.telemetry[source, default: [:]][metric] = list
            }
            return true
        }
        if accepted { ring.yield() }
    }

    func enqueue(_ frame: [UInt8]) {
        let accepted = pending.withLock { p -> Bool in
            guard !p.closed else { return false }
            while !p.others.isEmpty && (p.others.count >= Self.otherFrames || p.otherBytes + frame.count > Self.otherBytes) {
                p.otherBytes -= p.others.removeFirst().count
                p.dropped += 1
            }
            p.others.append(frame)
            p.otherBytes += frame.count
            return true
        }
        if accepted { ring.yield() }
    }

    func close(code: UInt16, reason: String) {
        pending.withLock {
            $0.close = (code, reason)
            $0.closed = true
        }
        ring.yield()
        ring.finish()
    }

    func finish() {
        pending.withLock { $0.closed = true }
        ring.finish()
    }

    /// Takes everything queued: other frames first (status, replies), then one telemetry
    /// frame per source.
    func drain() -> (frames: [[UInt8]], close: (UInt16, String)?) {
        let p = pending.withLock { p -> Pending in
            let taken = p
            p.telemetry.removeAll(keepingCapacity: true)
            p.others.removeAll(keepingCapacity: true)
            p.otherBytes = 0
            p.close = nil
            return taken
        }
        var frames = p.others
        for (source, metrics) in p.telemetry {
            var w = JSONWriter(capacity: 4096)
            w.raw("{\"type\":\"telemetry\",\"source_id\":")
            w.string(source)
            w.raw(",\"points\":[")
            var first = true
            for (_, points) in metrics {
                for pt in points {
                    if !first { w.raw(",") }
                    first = false
                    w.rawBytes(pt)
                }
            }
            w.raw("]}")
            frames.append(w.bytes)
        }
        return (frames, p.close)
    }
}
