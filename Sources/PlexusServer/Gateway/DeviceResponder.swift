import Synchronization

/// What a device connection says back to the device about its own frames (acks, errors,
/// replies, the close), in the order the frames came, with the durable appends in between.
///
/// The reader decides on a frame, publishes its points live and queues the rest here, then
/// reads the next frame at once instead of waiting for the disk. ``run(store:send:close:frameDone:failed:)``
/// takes every step waiting, stores each run of consecutive appends together (in order, one
/// write-ahead-log sync for all of them) and only then performs the steps behind them. So
/// an ack still means "on disk", no reply overtakes the ack of an earlier frame, and a
/// device that sends a point every 10 ms is read every 10 ms, not once per `fdatasync`.
///
/// The queue is bounded by steps and by bytes; past either the reader waits for room (the
/// device is then held back by TCP, as when every frame waited for its sync). After a
/// failed append or a close nothing more is performed: the frames behind are left
/// unacknowledged for the device to resend. The rules are here, without I/O; the gateway
/// supplies the effects.
final class DeviceResponder<Append: Sendable>: Sendable {
    enum Step: Sendable {
        /// Store durably; the steps behind wait until it is.
        case append(Append, bytes: Int)
        case send([UInt8])
        case close(UInt16, String)
        /// The reader has finished with a frame (shutdown closes after the last one).
        case frameDone
    }

    struct Limits: Sendable {
        var steps = 256
        var bytes = 4 << 20
    }

    private struct State {
        var waiting: [Step] = []
        var waitingBytes = 0
        /// Steps taken by the runner and not yet performed.
        var running = 0
        var runningBytes = 0
        var finished = false
        /// A failure or a close was performed: nothing more will be.
        var over = false
        var roomWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let limits: Limits
    private let state = Mutex(State())
    private let bell: AsyncStream<Void>.Continuation
    private let bells: AsyncStream<Void>

    init(limits: Limits = Limits()) {
        self.limits = limits
        (bells, bell) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    private enum Decision { case queued, full, over }

    /// Queues a step, first waiting for room. False once the responder is over (a failure
    /// or a close was performed, or it was finished): the step will never be performed.
    @discardableResult
    func enqueue(_ step: Step) async -> Bool {
        let cost: Int
        if case .append(_, let bytes) = step { cost = max(0, bytes) } else { cost = 0 }
        while true {
            let d = state.withLock { s -> Decision in
                if s.over || s.finished { return .over }
                let steps = s.waiting.count + s.running
                let bytes = s.waitingBytes + s.runningBytes
                // One step is always admitted into an empty queue, however big.
                if steps > 0 && (steps >= limits.steps || bytes + cost > limits.bytes) { return .full }
                s.waiting.append(step)
                s.waitingBytes += cost
                return .queued
            }
            switch d {
            case .queued:
                bell.yield()
                return true
            case .over:
                return false
            case .full:
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let retry = state.withLock { s -> Bool in
                        if s.over || s.finished || (s.waiting.isEmpty && s.running == 0) { return true }
                        s.roomWaiters.append(c)
                        return false
                    }
                    if retry { c.resume() }
                }
            }
        }
    }

    /// No more steps: ``run(store:send:close:frameDone:failed:)`` returns once it has
    /// performed what is queued.
    func finish() {
        state.withLock { $0.finished = true }
        bell.finish()
    }

    /// Performs the steps until finished, failed or closed. `store` stores a run of appends
    /// durably, in order; `frameDone` says whether the connection must now close (and how);
    /// `failed` handles the first failed store, after which nothing more is performed.
    func run(
        store: ([Append]) async throws -> Void,
        send: ([UInt8]) async -> Void,
        close: (UInt16, String) async -> Void,
        frameDone: () -> (UInt16, String)?,
        failed: (any Error) async -> Void
    ) async {
        var wakeups = bells.makeAsyncIterator()
        while true {
            let steps = state.withLock { s -> [Step] in
                let taken = s.waiting
                s.waiting.removeAll(keepingCapacity: true)
                s.running = taken.count
                s.runningBytes = s.waitingBytes
                s.waitingBytes = 0
                return taken
            }
            if steps.isEmpty {
                if state.withLock({ $0.finished }) { return }
                // Nil: finished, or the connection's task was cancelled (it failed); one
                // last look either way, then stop.
                if await wakeups.next() == nil {
                    state.withLock { $0.finished = true }
                }
                continue
            }
            var i = 0
            while i < steps.count {
                switch steps[i] {
                case .append:
                    var run: [Append] = []
                    while i < steps.count, case .append(let a, _) = steps[i] {
                        run.append(a)
                        i += 1
                    }
                    do {
                        try await store(run)
                    } catch {
                        end()
                        await failed(error)
                        return
                    }
                    continue
                case .send(let bytes):
                    await send(bytes)
                case .close(let code, let reason):
                    end()
                    await close(code, reason)
                    return
                case .frameDone:
                    if let (code, reason) = frameDone() {
                        end()
                        await close(code, reason)
                        return
                    }
                }
                i += 1
            }
            release()
        }
    }

    /// The steps taken are performed: room for the reader.
    private func release() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.running = 0
            s.runningBytes = 0
            defer { s.roomWaiters.removeAll() }
            return s.roomWaiters
        }
        for c in waiters { c.resume() }
    }

    /// Nothing more will be performed: what waits is dropped, and so is the reader's wait.
    private func end() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.over = true
            s.waiting.removeAll()
            s.waitingBytes = 0
            s.running = 0
            s.runningBytes = 0
            defer { s.roomWaiters.removeAll() }
            return s.roomWaiters
        }
        for c in waiters { c.resume() }
    }
}
