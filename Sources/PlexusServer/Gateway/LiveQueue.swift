import PlexusModel

/// The points of one published batch for one source, already encoded as point objects
/// joined by commas. Built once per batch and shared by every dashboard that watches the
/// source without a metric filter (one allocation per batch, not per point or dashboard).
struct LiveChunk: Sendable {
    var sourceID: String
    /// `{…},{…},…`
    var bytes: [UInt8]
    var count: Int
    /// The points' own timestamps (Unix µs), for the `gap` notice when the chunk is dropped.
    var firstMicros: Int64
    var lastMicros: Int64
}

/// What a dashboard socket has waiting to be written, and the rules for it: no I/O and no
/// clock of its own (the times come in as durations since an epoch the shell chose).
///
/// * Telemetry chunks are coalesced: one drain writes **one** frame with every source's
///   points (`telemetry_batch`), or one `telemetry` frame per source for dashboards that
///   did not ask for batches.
/// * The queue is bounded by **bytes** (``Limits/maxBytes``, oldest live data dropped
///   first) and by **age**: live data (telemetry and relayed device frames) that has waited
///   longer than ``Limits/maxAge`` is dropped, never sent. Each drop is tallied, and the next
///   drain starts with a `gap` frame saying what was lost.
/// * Frames the server itself sends (status, replies, errors) are never dropped for age;
///   at most ``Limits/maxControlFrames`` of them wait.
/// * A write that has not finished after ``Limits/stallAfter`` marks the consumer stalled:
///   the shell then drops the connection.
/// * Drains are at least ``Limits/minDrainInterval`` apart, so a dashboard gets a few
///   hundred frames a second at most, however many device frames arrive.
struct LiveQueue: Sendable {
    struct Limits: Sendable, Equatable {
        var maxBytes = 4 << 20
        var maxAge: Duration = .seconds(1)
        var maxControlFrames = 256
        var stallAfter: Duration = .seconds(5)
        var minDrainInterval: Duration = .milliseconds(2)
    }

    enum Live: Sendable {
        case points(LiveChunk)
        /// A relayed device frame (heartbeat, reply, video).
        case frame([UInt8])

        var byteCount: Int {
            switch self {
            case .points(let c): c.bytes.count + c.sourceID.utf8.count + 32
            case .frame(let f): f.count
            }
        }
    }

    /// What one drain writes, in order; then the close, if one was asked for.
    struct Drain: Sendable {
        var frames: [[UInt8]] = []
        var close: (code: UInt16, reason: String)?
    }

    let limits: Limits
    /// `telemetry_batch` frames instead of one `telemetry` frame per source.
    var batch = false
    private var live = FIFO<(item: Live, at: Duration)>()
    private var control = FIFO<[UInt8]>()
    private(set) var bytes = 0
    private var gap = GapTally()
    private(set) var closed = false
    private var pendingClose: (code: UInt16, reason: String)?
    /// When the write in progress began (nil: the writer is not writing).
    private var writingSince: Duration?
    private var lastDrain: Duration?
    /// Signing in: the dashboard is registered (so nothing that happens meanwhile is
    /// missed) but its `init` is still being built; nothing is sent until it is queued first.
    private(set) var held = false
    private var leading: [UInt8]?

    init(limits: Limits = Limits()) { self.limits = limits }

    var isEmpty: Bool { leading == nil && live.isEmpty && control.isEmpty && gap.isEmpty && pendingClose == nil }

    /// Queues live data; false if the queue is closed (nothing to wake).
    mutating func enqueue(_ item: Live, now: Duration) -> Bool {
        guard !closed else { return false }
        expire(now: now)
        live.append((item, now))
        bytes += item.byteCount
        bound()
        return true
    }

    /// Queues a frame of the server's own (status, reply, error).
    mutating func enqueue(control frame: [UInt8]) -> Bool {
        guard !closed else { return false }
        control.append(frame)
        bytes += frame.count
        while control.count > limits.maxControlFrames, let old = control.popFirst() {
            bytes -= old.count
            gap.droppedFrames += 1
        }
        bound()
        return true
    }

    /// Sends nothing until ``release(first:)``.
    mutating func hold() { held = true }

    /// Queues `frame` ahead of everything queued while held (even a `gap` notice), and
    /// lets drains go on.
    mutating func release(first frame: [UInt8]) {
        guard held else {
            _ = enqueue(control: frame)
            return
        }
        held = false
        guard !closed else { return }
        leading = frame
        bytes += frame.count
    }

    /// Asks for a close after what is queued now.
    mutating func close(code: UInt16, reason: String) {
        guard !closed else { return }
        closed = true
        pendingClose = (code, reason)
    }

    /// No more frames will be accepted (the connection is ending).
    mutating func finish() { closed = true }

    /// How long the writer should wait before draining, so that drains are at least
    /// ``Limits/minDrainInterval`` apart (zero: drain now).
    func delayBeforeDrain(now: Duration) -> Duration {
        guard let lastDrain, pendingClose == nil else { return .zero }
        return max(.zero, lastDrain + limits.minDrainInterval - now)
    }

    /// Takes everything that may still be sent: a `gap` notice if anything was dropped,
    /// the server's frames, relayed frames, then the coalesced telemetry. Live data older
    /// than ``Limits/maxAge`` is dropped here too. A drain with frames starts a write.
    mutating func drain(now: Duration) -> Drain {
        // Held: only a close goes out (the sign-in failed or the socket is ending).
        if held && pendingClose == nil { return Drain() }
        expire(now: now)
        lastDrain = now
        var d = Drain()
        if let f = leading {
            d.frames.append(f)
            leading = nil
        }
        if !gap.isEmpty {
            d.frames.append(LiveFrame.gap(gap.notice))
            gap = GapTally()
        }
        while let f = control.popFirst() { d.frames.append(f) }
        var sources: [LiveFrame.Source] = []
        var index: [String: Int] = [:]
        while let (item, _) = live.popFirst() {
            switch item {
            case .frame(let f):
                d.frames.append(f)
            case .points(let c):
                if let i = index[c.sourceID] {
                    sources[i].chunks.append(c.bytes)
                } else {
                    index[c.sourceID] = sources.count
                    sources.append(LiveFrame.Source(sourceID: c.sourceID, chunks: [c.bytes]))
                }
            }
        }
        bytes = 0
        if batch, !sources.isEmpty {
            d.frames.append(LiveFrame.telemetryBatch(sources))
        } else {
            for s in sources { d.frames.append(LiveFrame.telemetry(s)) }
        }
        d.close = pendingClose
        pendingClose = nil
        if !d.frames.isEmpty { writingSince = now }
        return d
    }

    /// The writer finished writing a drain.
    mutating func wrote() { writingSince = nil }

    /// Whether a write has been stuck longer than ``Limits/stallAfter``: the consumer does
    /// not read, and the connection should be dropped.
    func stalled(now: Duration) -> Bool {
        guard let since = writingSince else { return false }
        return now - since > limits.stallAfter
    }

    /// Points and frames dropped so far and not yet reported.
    var pendingGap: LiveFrame.Gap { gap.notice }

    // MARK: Bounds

    /// Drops live data older than the age bound (the queue is in arrival order).
    private mutating func expire(now: Duration) {
        while let head = live.first, now - head.at > limits.maxAge {
            drop(live.popFirst()!.item)
        }
    }

    /// Drops the oldest live data, then the oldest of the server's frames, until the
    /// queue fits its byte bound.
    private mutating func bound() {
        while bytes > limits.maxBytes {
            if let old = live.popFirst() {
                drop(old.item)
            } else if let old = control.popFirst() {
                bytes -= old.count
                gap.droppedFrames += 1
            } else {
                break
            }
        }
    }

    private mutating func drop(_ item: Live) {
        bytes -= item.byteCount
        switch item {
        case .frame: gap.droppedFrames += 1
        case .points(let c): gap.add(c)
        }
    }
}

/// Dropped live data not yet reported to the dashboard.
struct GapTally: Sendable {
    var droppedFrames = 0
    private var points: [String: LiveFrame.Gap.Source] = [:]

    var isEmpty: Bool { droppedFrames == 0 && points.isEmpty }

    mutating func add(_ c: LiveChunk) {
        guard c.count > 0 else { return }
        if var s = points[c.sourceID] {
            s.points += c.count
            s.fromMicros = min(s.fromMicros, c.firstMicros)
            s.toMicros = max(s.toMicros, c.lastMicros)
            points[c.sourceID] = s
        } else {
            points[c.sourceID] = .init(sourceID: c.sourceID, points: c.count, fromMicros: c.firstMicros, toMicros: c.lastMicros)
        }
    }

    var notice: LiveFrame.Gap {
        let sources = points.values.sorted { $0.sourceID < $1.sourceID }
        return LiveFrame.Gap(droppedPoints: sources.reduce(0) { $0 + $1.points }, droppedFrames: droppedFrames, sources: sources)
    }
}

/// A first-in first-out queue with O(1) amortised append and removal at the front.
struct FIFO<Element: Sendable>: Sendable {
    private var items: [Element?] = []
    private var head = 0

    var isEmpty: Bool { head == items.count }
    var count: Int { items.count - head }
    var first: Element? { isEmpty ? nil : items[head] }

    mutating func append(_ e: Element) { items.append(e) }

    mutating func popFirst() -> Element? {
        guard !isEmpty else { return nil }
        let e = items[head]
        items[head] = nil
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: items.count <= 4_096)
            head = 0
        } else if head >= 1_024 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return e
    }
}
