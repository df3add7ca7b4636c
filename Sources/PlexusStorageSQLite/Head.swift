import PlexusModel
import PlexusWAL
import Synchronization

/// Identity of a stored series.
struct SeriesKey: Hashable, Sendable {
    var orgID: Int64
    var sourceID: String
    var metric: String
    /// Numbers go to numeric series (rolled up); every other type to "other" series.
    var numeric: Bool
    var tags: [Tag]
    /// "" when the points belong to no session.
    var sessionID: String
    /// A numeric field of a vector object (`accel.x` of `accel`): queryable and rolled up,
    /// but not a point of its own (not exported, not counted).
    var derived = false
}

/// Points of one series waiting for the next flush into SQLite.
struct SeriesBuffer: Sendable {
    var timestamps: [Int64] = []
    var numbers: [Double] = []
    var others: [PlexusValue] = []
    var count: Int { timestamps.count }
}

struct SourceSighting: Sendable {
    var lastSeen: Int64
    var firstSeen: Int64
}

/// What a flush takes out of the head.
struct HeadSnapshot: Sendable {
    var series: [SeriesKey: SeriesBuffer] = [:]
    var sources: [SourceRef: SourceSighting] = [:]
    /// Sessions named by points, with the earliest point time seen.
    var sessions: [SessionRef: Int64] = [:]
    var pointCount = 0
    var walPosition = WriteAheadLog.Position.zero
    var isEmpty: Bool { pointCount == 0 && sources.isEmpty }
}

struct SourceRef: Hashable, Sendable {
    var orgID: Int64
    var sourceID: String
}

struct SessionRef: Hashable, Sendable {
    var orgID: Int64
    var sessionID: String
    var sourceID: String
}

/// The in-memory part of the store: durable (in the WAL) but not yet in SQLite.
/// Queries never read it; they ask the flusher to empty it first (read-your-writes).
final class Head: Sendable {
    private struct State {
        var snapshot = HeadSnapshot()
        var appendedSeq: UInt64 = 0
        var flushedSeq: UInt64 = 0
        var firstUnflushedAt: ContinuousClock.Instant?
        var waiters: [(UInt64, CheckedContinuation<Void, any Error>)] = []
        var failed: (any Error)?
    }

    private let state = Mutex(State())

    /// Applies one WAL group commit under a single lock, so a flush never sees half of it
    /// (the checkpoint it records covers the whole group).
    func insertGroup(_ body: (inout HeadSnapshot) -> Void) {
        state.withLock { s in
            body(&s.snapshot)
            s.appendedSeq += 1
            if s.firstUnflushedAt == nil { s.firstUnflushedAt = .now }
        }
    }

    static func add(_ batch: IngestBatch, orgID: Int64, receivedAt: Int64, to snap: inout HeadSnapshot) {
        for p in batch.points {
            let source = p.sourceID ?? ""
            let ts = p.timestamp ?? receivedAt
            let session = p.sessionID ?? ""
            switch p.value {
            case .number(let d):
                let key = SeriesKey(orgID: orgID, sourceID: source, metric: p.metric, numeric: true, tags: p.tags, sessionID: session)
                snap.series[key, default: SeriesBuffer()].append(ts, d)
            default:
                let key = SeriesKey(orgID: orgID, sourceID: source, metric: p.metric, numeric: false, tags: p.tags, sessionID: session)
                snap.series[key, default: SeriesBuffer()].append(ts, p.value)
                if let fields = p.value.numericFields {
                    for (name, d) in fields {
                        let fk = SeriesKey(
                            orgID: orgID, sourceID: source, metric: p.metric + "." + name, numeric: true,
                            tags: p.tags, sessionID: session, derived: true)
                        snap.series[fk, default: SeriesBuffer()].append(ts, d)
                    }
                }
            }
            if !session.isEmpty {
                let ref = SessionRef(orgID: orgID, sessionID: session, sourceID: source)
                snap.sessions[ref] = min(snap.sessions[ref] ?? ts, ts)
            }
        }
        // Sources: one sighting per distinct source in the batch.
        var last: String?
        for p in batch.points where p.sourceID != last {
            last = p.sourceID
            let ref = SourceRef(orgID: orgID, sourceID: p.sourceID ?? "")
            if var s = snap.sources[ref] {
                s.lastSeen = max(s.lastSeen, receivedAt)
                s.firstSeen = min(s.firstSeen, receivedAt)
                snap.sources[ref] = s
            } else {
                snap.sources[ref] = SourceSighting(lastSeen: receivedAt, firstSeen: receivedAt)
            }
        }
        snap.pointCount += batch.points.count
    }

    var pointCount: Int { state.withLock { $0.snapshot.pointCount } }

    /// True when a flush is due: enough points, old enough, or someone waits to read.
    func flushDue(maxPoints: Int, maxAge: Duration) -> Bool {
        state.withLock { s in
            guard s.appendedSeq > s.flushedSeq else { return false }
            if !s.waiters.isEmpty || s.snapshot.pointCount >= maxPoints { return true }
            if let t = s.firstUnflushedAt, t.duration(to: .now) >= maxAge { return true }
            return false
        }
    }

    /// Takes everything out for a flush, with the sequence number of the last group in it
    /// (inserts take the same lock, so the snapshot holds exactly the groups up to `seq`).
    func take() -> (snapshot: HeadSnapshot, seq: UInt64) {
        state.withLock { s in
            let snap = s.snapshot
            s.snapshot = HeadSnapshot()
            s.snapshot.walPosition = snap.walPosition
            s.firstUnflushedAt = nil
            return (snap, s.appendedSeq)
        }
    }

    /// Records that everything up to `seq` is in SQLite and wakes readers waiting for it.
    func markFlushed(upTo seq: UInt64) {
        let ready = state.withLock { s -> [CheckedContinuation<Void, any Error>] in
            s.flushedSeq = max(s.flushedSeq, seq)
            let done = s.waiters.filter { $0.0 <= s.flushedSeq }.map(\.1)
            s.waiters.removeAll { $0.0 <= s.flushedSeq }
            return done
        }
        for c in ready { c.resume() }
    }

    /// A flush failed: puts the snapshot back (it is still in the WAL) and fails waiters.
    func restore(_ snap: HeadSnapshot, error: any Error) {
        let failed = state.withLock { s -> [CheckedContinuation<Void, any Error>] in
            var merged = snap
            for (k, v) in s.snapshot.series { merged.series[k, default: SeriesBuffer()].append(contentsOf: v) }
            for (k, v) in s.snapshot.sources { merged.sources[k] = v }
            for (k, v) in s.snapshot.sessions { merged.sessions[k] = min(merged.sessions[k] ?? v, v) }
            merged.pointCount += s.snapshot.pointCount
            merged.walPosition = max(merged.walPosition, s.snapshot.walPosition)
            s.snapshot = merged
            if s.firstUnflushedAt == nil { s.firstUnflushedAt = .now }
            let w = s.waiters.map(\.1)
            s.waiters.removeAll()
            return w
        }
        for c in failed { c.resume(throwing: error) }
    }

    /// Returns when everything appended before the call is readable from SQLite.
    /// `ring` asks the flusher to run.
    func waitUntilReadable(ring: () -> Void) async throws {
        let target: UInt64? = state.withLock { s in s.appendedSeq > s.flushedSeq ? s.appendedSeq : nil }
        guard let target else { return }
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.flushedSeq >= target { return true }
                s.waiters.append((target, c))
                return false
            }
            if resumeNow { c.resume() } else { ring() }
        }
    }

    /// Fails everyone waiting (shutdown).
    func failWaiters(_ error: any Error) {
        let w = state.withLock { s -> [CheckedContinuation<Void, any Error>] in
            let w = s.waiters.map(\.1)
            s.waiters.removeAll()
            return w
        }
        for c in w { c.resume(throwing: error) }
    }
}

extension SeriesBuffer {
    mutating func append(_ ts: Int64, _ d: Double) {
        timestamps.append(ts)
        numbers.append(d)
    }
    mutating func append(_ ts: Int64, _ v: PlexusValue) {
        timestamps.append(ts)
        others.append(v)
    }
    mutating func append(contentsOf o: SeriesBuffer) {
        timestamps.append(contentsOf: o.timestamps)
        numbers.append(contentsOf: o.numbers)
        others.append(contentsOf: o.others)
    }
}
