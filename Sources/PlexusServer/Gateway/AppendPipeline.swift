import Synchronization

/// A device connection's durable appends, kept apart from reading its frames.
///
/// The reader decides on a frame, publishes it live, and hands its append here; it then
/// reads the next frame at once instead of waiting for the disk. The appender takes every
/// append that is waiting, starts them together (so they share one write-ahead-log sync),
/// and only when each is durable acknowledges them, **in the order the frames came**. An
/// ack therefore still means "on disk", and a device sending a point every 10 ms is read
/// every 10 ms rather than once per `fdatasync`.
///
/// At most `limit` appends wait or run at once; past that the reader waits for room (the
/// device is then held back by TCP, as before). After the first failure nothing more is
/// acknowledged: the failure handler answers the device and closes the connection, and
/// the frames behind it are left for the device to resend.
final class AppendPipeline<Item: Sendable>: Sendable {
    let limit: Int
    private struct State {
        var waiting: [Item] = []
        var running = 0
        var finished = false
        var failed = false
        var roomWaiters: [CheckedContinuation<Void, Never>] = []
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())
    private enum EnqueueDecision { case queued, full, closed }
    private let bell: AsyncStream<Void>.Continuation
    private let bells: AsyncStream<Void>

    init(limit: Int = 64) {
        self.limit = limit
        (bells, bell) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues an append, waiting for room first. False once the pipeline has failed or
    /// finished (the frame is then not stored, and not acknowledged).
    @discardableResult
    func enqueue(_ item: Item) async -> Bool {
        while true {
            let d = state.withLock { s -> EnqueueDecision in
                if s.failed || s.finished { return .closed }
                if s.waiting.count + s.running >= limit { return .full }
                s.waiting.append(item)
                return .queued
            }
            switch d {
            case .queued:
                bell.yield()
                return true
            case .closed:
                return false
            case .full:
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let now = state.withLock { s -> Bool in
                        if s.failed || s.finished || s.waiting.count + s.running < limit { return true }
                        s.roomWaiters.append(c)
                        return false
                    }
                    if now { c.resume() }
                }
            }
        }
    }

    /// Returns once nothing is waiting or running (everything queued so far is stored and
    /// acknowledged, or the pipeline failed).
    func waitUntilIdle() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if (s.waiting.isEmpty && s.running == 0) || s.failed { return true }
                s.idleWaiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    /// No more appends: ``run(append:acknowledge:fail:)`` returns once the queue is empty.
    func finish() {
        state.withLock { $0.finished = true }
        bell.finish()
    }

    /// The appender. `append` stores one item durably; `acknowledge` answers it (in order);
    /// `fail` handles the first failure, after which nothing more is acknowledged.
    func run(append: @escaping @Sendable (Item) async throws -> Void,
             acknowledge: (Item) async -> Void,
             fail: (Item, any Error) async -> Void) async {
        var wakeups = bells.makeAsyncIterator()
        while true {
            let batch = state.withLock { s -> [Item] in
                let b = s.waiting
                s.waiting.removeAll(keepingCapacity: true)
                s.running = b.count
                return b
            }
            if batch.isEmpty {
                release(failed: false)
                if await wakeups.next() == nil {
                    // Finished: one last look for what was queued before the finish.
                    if state.withLock({ $0.waiting.isEmpty }) { return }
                }
                continue
            }
            // Every waiting append at once: they join the same group commit.
            let errors = await withTaskGroup(of: (Int, (any Error)?).self) { group -> [(any Error)?] in
                for (i, item) in batch.enumerated() {
                    group.addTask {
                        do {
                            try await append(item)
                            return (i, nil)
                        } catch {
                            return (i, error)
                        }
                    }
                }
                var out = [(any Error)?](repeating: nil, count: batch.count)
                for await (i, e) in group { out[i] = e }
                return out
            }
            for (i, item) in batch.enumerated() {
                if let e = errors[i] {
                    release(failed: true)
                    await fail(item, e)
                    return
                }
                await acknowledge(item)
            }
            release(failed: false)
        }
    }

    /// Marks the running batch done and wakes whoever waits for room or for idleness.
    private func release(failed: Bool) {
        let (room, idle) = state.withLock { s -> ([CheckedContinuation<Void, Never>], [CheckedContinuation<Void, Never>]) in
            s.running = 0
            if failed {
                s.failed = true
                s.waiting.removeAll()
            }
            let room = s.roomWaiters
            s.roomWaiters.removeAll()
            var idle: [CheckedContinuation<Void, Never>] = []
            if s.waiting.isEmpty || s.failed {
                idle = s.idleWaiters
                s.idleWaiters.removeAll()
            }
            return (room, idle)
        }
        for c in room { c.resume() }
        for c in idle { c.resume() }
    }
}
