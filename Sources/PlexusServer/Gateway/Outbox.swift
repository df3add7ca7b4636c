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
    /// Shutdown: how many frames the connection has taken and not finished (read, but not
    /// yet stored and answered), and whether the server is stopping. The one of the two
    /// sides that sees no frame in flight while draining closes the connection, so a frame
    /// being stored is acknowledged before the close.
    private let phase = Mutex((inFlight: 0, draining: false))

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
            p.inFlight += 1
            return true
        }
    }

    /// A frame is finished (stored and answered); true if the connection must now close.
    func endFrame() -> Bool {
        phase.withLock { p in
            p.inFlight -= 1
            return p.draining && p.inFlight == 0
        }
    }

    /// The server is stopping; true if no frame is in flight and the connection can be
    /// closed now (otherwise it closes after its last frame is answered).
    /// Only the first call can say so.
    func drain() -> Bool {
        phase.withLock { p in
            defer { p.draining = true }
            return p.inFlight == 0 && !p.draining
        }
    }
}

/// A dashboard connection's outbound queue: the thread-safe shell around ``LiveQueue``
/// (which decides what is kept, dropped and coalesced). Publishers append and ring the
/// bell; the connection's writer drains and writes. A slow or stalled dashboard loses
/// live data (and is told so with a `gap` frame), never slows ingest or storage, and
/// never grows an unbounded queue.
final class DashboardOutbox: Sendable {
    let id: Int
    private let queue: Mutex<LiveQueue>
    let bell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation
    private let epoch: ContinuousClock.Instant

    init(id: Int, limits: LiveQueue.Limits = LiveQueue.Limits()) {
        self.id = id
        queue = Mutex(LiveQueue(limits: limits))
        epoch = .now
        (bell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Monotonic time since this outbox was made.
    var now: Duration { epoch.duration(to: .now) }

    /// Coalesced `telemetry_batch` frames (the dashboard asked for them when it signed in).
    func useBatches() { queue.withLock { $0.batch = true } }

    func enqueue(_ chunk: LiveChunk) {
        let t = now
        if queue.withLock({ $0.enqueue(.points(chunk), now: t) }) { ring.yield() }
    }

    /// A relayed device frame: live data, dropped when it waits too long.
    func enqueue(relay frame: [UInt8]) {
        let t = now
        if queue.withLock({ $0.enqueue(.frame(frame), now: t) }) { ring.yield() }
    }

    /// A frame of the server's own (status, reply, error).
    func enqueue(_ frame: [UInt8]) {
        if queue.withLock({ $0.enqueue(control: frame) }) { ring.yield() }
    }

    /// Holds every frame until ``release(first:)`` (``LiveQueue/hold()``).
    func hold() { queue.withLock { $0.hold() } }

    func release(first frame: [UInt8]) {
        queue.withLock { $0.release(first: frame) }
        ring.yield()
    }

    func close(code: UInt16, reason: String) {
        queue.withLock { $0.close(code: code, reason: reason) }
        ring.yield()
        ring.finish()
    }

    func finish() {
        queue.withLock { $0.finish() }
        ring.finish()
    }

    var delayBeforeDrain: Duration {
        let t = now
        return queue.withLock { $0.delayBeforeDrain(now: t) }
    }

    func drain() -> LiveQueue.Drain {
        let t = now
        return queue.withLock { $0.drain(now: t) }
    }

    func wrote() { queue.withLock { $0.wrote() } }

    var stalled: Bool {
        let t = now
        return queue.withLock { $0.stalled(now: t) }
    }
}

/// How the server ends a connection from outside its own tasks (a revoked credential, a
/// stalled consumer): the connection's watchdog task waits for this and acts.
final class ConnectionControl: Sendable {
    enum Termination: Sendable, Equatable {
        /// The credential that opened the socket is no longer valid: an `error` frame with
        /// this message, then close 1008.
        case credential(String)
        /// The consumer has not read for too long: the connection is dropped.
        case stalled
    }

    let terminations: AsyncStream<Termination>
    private let continuation: AsyncStream<Termination>.Continuation
    private let ended = Mutex(false)
    /// Finishes when the connection has stopped reading (its reader returned).
    private let over: AsyncStream<Void>
    private let overContinuation: AsyncStream<Void>.Continuation

    init() {
        (terminations, continuation) = AsyncStream.makeStream(of: Termination.self, bufferingPolicy: .bufferingOldest(1))
        (over, overContinuation) = AsyncStream.makeStream(of: Void.self)
    }

    /// The connection's reader has returned: a watchdog waiting for a termination stops,
    /// and one finishing a termination learns that the connection ended by itself.
    func connectionEnded() {
        continuation.finish()
        overContinuation.finish()
    }

    /// Waits for ``connectionEnded()``, at most `timeout`; true if the connection ended.
    /// (One caller: the connection's watchdog.)
    func waitForEnd(upTo timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { g in
            g.addTask {
                for await _ in self.over {}
                return !Task.isCancelled
            }
            g.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await g.next() ?? false
            g.cancelAll()
            return first
        }
    }

    /// Asks the connection to end; only the first request counts.
    func terminate(_ t: Termination) {
        let first = ended.withLock { e in
            defer { e = true }
            return !e
        }
        if first { continuation.yield(t) }
    }

    var isTerminated: Bool { ended.withLock { $0 } }
}
