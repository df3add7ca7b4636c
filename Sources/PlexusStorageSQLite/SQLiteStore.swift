import Foundation
import GRDB
public import Logging
import Metrics
import NIOPosix
public import PlexusModel
public import PlexusStorage
import PlexusWAL
public import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The embedded store: a write-ahead log for durability plus SQLite (through GRDB) for
/// everything readable — compressed chunks of points, 1-minute and 1-hour rollups,
/// sources, sessions, organisations and keys. Layout: `docs/storage.md`.
///
/// Run it as a `Service` (it owns the log writer and the flusher). It holds the data
/// directory's `LOCK`: one server per directory. The admin commands open the database part
/// alone (``SQLiteCatalog``, which this class extends).
public final class SQLiteStore: SQLiteCatalog, PlexusStore, Service, @unchecked Sendable {

    public struct Configuration: Sendable {
        /// Flush to SQLite once this many points wait in memory.
        public var flushMaxPoints = 250_000
        /// Flush to SQLite at least this often while data waits.
        public var flushMaxAge: Duration = .seconds(1)
        /// Points per chunk BLOB at most.
        public var maxChunkPoints = 8192
        /// Microseconds from a chunk's first point to its last at most, so retention (which
        /// removes whole chunks) keeps no point much longer than asked.
        public var maxChunkSpan: Int64 = 7_200_000_000
        /// Encoded bytes of a numeric chunk at most: about what one 4 KiB database page
        /// holds without an overflow page, so a full chunk fills its page (a 3 KB chunk
        /// alone on a page left a quarter of it empty).
        public var maxNumericChunkBytes = 4_000
        /// Bytes of value text per chunk of non-numeric values (a chunk ends at the first of
        /// the two limits); keeps BLOBs far below SQLite's 1 GB limit.
        public var maxChunkBytes = 4 << 20
        /// Points the head may hold while flushes fail (disk full, database locked) before
        /// appends are refused with `unavailable`: memory stays bounded whatever happens.
        public var maxHeadPoints = 4_000_000
        /// After a failed WAL write or sync, ingest gets 503 at once until this long has
        /// passed; then the next append starts a fresh segment and carries on.
        public var walRetryInterval: Duration = .seconds(1)
        /// The wall clock (Unix µs) for what the engine stamps by itself: when points
        /// create a session (`created_at`), the names of set-aside files. The server passes
        /// its own, so one clock rules everything a client can see.
        public var now: @Sendable () -> Int64 = SQLiteStore.nowMicros
        public init() {}
    }

    public let engineName = "sqlite"
    let config: Configuration
    let logger: Logger
    let head = Head()
    private let wal: Mutex<WriteAheadLog>
    private let pending = Mutex(PendingQueue())
    private let writerBell: AsyncStream<Void>.Continuation
    private let writerStream: AsyncStream<Void>
    private let flushBell: AsyncStream<Void>.Continuation
    private let flushStream: AsyncStream<Void>
    let seriesIDs = Mutex([SeriesKey: Int64]())
    private let threadPool = NIOThreadPool(numberOfThreads: 1)
    private let lockFD: Int32
    /// Made once: making a handle asks the metrics backend to look up its name.
    private let pointsStored = Metrics.Counter(label: "plexus_points_stored_total")
    private let duplicatesDropped = Metrics.Counter(label: "plexus_points_duplicate_total")

    struct PendingAppend: Sendable {
        var payload: [UInt8]
        var batch: IngestBatch
        var orgID: Int64
        var receivedAt: Int64
        /// Nil for all but the last of a group appended together: a group is queued under
        /// one lock, so one drain takes all of it and one resume answers for all.
        var continuation: CheckedContinuation<Void, any Error>?
    }

    struct PendingQueue: Sendable {
        var items: [PendingAppend] = []
        var closed = false
    }

    /// Opens (creating if needed) the store in `directory`, takes its lock and replays
    /// its write-ahead log.
    public init(directory: String, configuration: Configuration = .init(), logger: Logger) throws {
        self.config = configuration
        self.logger = logger
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fd = open(directory + "/LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            if fd >= 0 { close(fd) }
            throw StoreError(.unavailable, "data directory \(directory) is in use by another plexus-server")
        }
        lockFD = fd
        (writerStream, writerBell) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (flushStream, flushBell) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        do {
            wal = Mutex(try WriteAheadLog(directory: directory + "/wal", retryInterval: configuration.walRetryInterval))
            try super.init(directory: directory)
        } catch {
            close(fd)
            throw error
        }
        try wal.withLock { [head, pool, logger] log in try Self.replay(log, into: head, pool: pool, logger: logger) }
        threadPool.start()
    }

    deinit {
        if lockFD >= 0 { close(lockFD) }
    }

    public static func nowMicros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1_000
    }

    private static func replay(_ log: WriteAheadLog, into head: Head, pool: DatabasePool, logger: Logger) throws {
        let checkpoint = try pool.read { db -> WriteAheadLog.Position in
            let seg = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'wal_segment'") ?? 0
            let off = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'wal_offset'") ?? 0
            return WriteAheadLog.Position(segment: UInt64(seg), offset: off)
        }
        var records = 0
        var entries: [(IngestBatch, Int64, Int64)] = []
        let end = try log.replay(after: checkpoint) { payload, position in
            // Intact but not valid (a rule tightened since it was acknowledged): kept beside
            // the log for an operator instead of refusing to start or dropping it silently.
            func setAside(_ bytes: [UInt8], as ext: String, _ error: any Error) {
                let path = log.directory + "/rejected-\(position.segment)-\(position.offset).\(ext)"
                _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
                logger.error(
                    "a logged batch no longer passes validation; set aside, not stored",
                    metadata: ["file": "\(path)", "error": "\(error)"])
            }
            if payload.first == WALPointsRecord.version {
                let (rec, body) = try WALPointsRecord.decode(payload)
                do throws(WALPoints.Invalid) {
                    let points = try WALPoints.decode(body, receivedAt: rec.receivedAt)
                    entries.append((IngestBatch(points: points), rec.orgID, rec.receivedAt))
                    records += 1
                } catch {
                    // The points as an ingest body when they could be read, else the record.
                    if let points = error.points {
                        setAside(IngestEncoder.body(points), as: "json", error)
                    } else {
                        setAside(Array(payload), as: "bin", error)
                    }
                }
                return
            }
            let (rec, json) = try WALRecord.decode(payload)
            do {
                entries.append((try IngestDecoder.decode(json, options: rec.ingestOptions), rec.orgID, rec.receivedAt))
                records += 1
            } catch {
                setAside(Array(json), as: "json", error)
            }
        }
        try log.openForAppend(after: end)
        if !entries.isEmpty {
            // Replayed records end where the new segment starts: once they are flushed,
            // every older segment can go.
            head.insert(entries, position: log.position)
            logger.info("replayed write-ahead log", metadata: ["records": "\(records)"])
        }
    }

    // MARK: Service

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.writerLoop() }
            group.addTask { await self.flusherLoop() }
            group.addTask {
                // Wakes the flusher so age-based flushes happen without traffic.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(200))
                    self.flushBell.yield()
                }
            }
            try? await gracefulShutdown()
            // Stop taking writes, drain what was accepted, flush everything, stop.
            pending.withLock { $0.closed = true }
            writerBell.finish()
            await group.next()  // the writer finishes after draining
            flushBell.finish()
            group.cancelAll()
        }
        // Everything is in SQLite now: drop the log and fold SQLite's own WAL into the file.
        await flushOnce(rotateAbove: 0)
        do {
            _ = try await pool.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        } catch {
            logger.warning("SQLite checkpoint at shutdown failed", metadata: ["error": "\(error)"])
        }
        head.failWaiters(StoreError(.unavailable, "the store is shutting down"))
        try? await threadPool.shutdownGracefully()
        // Stopped: another process may take the directory now, whenever this object goes.
        if lockFD >= 0 { flock(lockFD, LOCK_UN) }
        logger.info("store stopped")
    }

    private func writerLoop() async {
        for await _ in writerStream { await drainPending() }
        await drainPending()
    }

    private func drainPending() async {
        while true {
            let items = pending.withLock { q -> [PendingAppend] in
                let items = q.items
                q.items.removeAll(keepingCapacity: true)
                return items
            }
            if items.isEmpty { return }
            let payloads = items.map(\.payload)
            do {
                let position = try await threadPool.runIfActive { [self] in
                    try self.wal.withLock { log in try log.appendDurably(payloads) }
                }
                head.insert(items.map { ($0.batch, $0.orgID, $0.receivedAt) }, position: position)
                for item in items { item.continuation?.resume() }
                pointsStored.increment(by: items.reduce(0) { $0 + $1.batch.points.count })
                if head.pointCount >= config.flushMaxPoints { flushBell.yield() }
            } catch {
                logger.error("write-ahead log append failed", metadata: ["error": "\(error)"])
                let e = StoreError(.unavailable, "the store could not write to disk", underlying: error)
                for item in items { item.continuation?.resume(throwing: e) }
            }
        }
    }

    private func flusherLoop() async {
        for await _ in flushStream where head.flushDue(maxPoints: config.flushMaxPoints, maxAge: config.flushMaxAge) {
            await flushOnce()
        }
    }

    /// Moves everything in memory into SQLite in one transaction, then drops WAL segments.
    func flushOnce(rotateAbove: Int64 = 8 << 20) async {
        let (snap, seq) = head.take()
        if snap.isEmpty {
            head.markFlushed(upTo: seq)
            if rotateAbove == 0 {
                try? await threadPool.runIfActive { [self] in
                    try self.wal.withLock { try $0.checkpointed(at: snap.walPosition, rotateAbove: 0) }
                }
            }
            return
        }
        let start = ContinuousClock.now
        do {
            let written = try await pool.write { db in try self.write(snap, db) }
            cacheSeriesIDs(written.created)
            if written.duplicates > 0 { duplicatesDropped.increment(by: written.duplicates) }
        } catch {
            // Nothing was committed: the snapshot goes back into the head (it is still in
            // the WAL) and the next flush tries again.
            logger.error("flush to SQLite failed; data stays in the write-ahead log", metadata: ["error": "\(error)"])
            head.restore(snap, error: StoreError(.unavailable, "flush failed", underlying: error))
            return
        }
        // Committed, with the WAL position it covers: from here on the snapshot is in
        // SQLite whatever happens to the log, and must never go back into the head (it
        // would be stored twice). Dropping old segments is housekeeping; a failure (EMFILE,
        // EIO) leaves them for the next flush, and replay skips what the checkpoint covers.
        head.markFlushed(upTo: seq)
        do {
            try await threadPool.runIfActive { [self] in
                try self.wal.withLock { try $0.checkpointed(at: snap.walPosition, rotateAbove: rotateAbove) }
            }
        } catch {
            logger.warning(
                "dropping flushed WAL segments failed; retried after the next flush",
                metadata: ["error": "\(error)"])
        }
        let d = start.duration(to: .now)
        Metrics.Timer(label: "plexus_store_flush_seconds").recordNanoseconds(
            d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }

    /// Remembers series ids created by a flush. The cache is bounded: past
    /// `maxCachedSeries` it starts again (a miss costs one indexed SELECT in the flush).
    func cacheSeriesIDs(_ ids: [SeriesKey: Int64]) {
        guard !ids.isEmpty else { return }
        seriesIDs.withLock { cache in
            if cache.count + ids.count > Self.maxCachedSeries { cache.removeAll(keepingCapacity: false) }
            cache.merge(ids) { a, _ in a }
        }
    }

    static let maxCachedSeries = 100_000

    // MARK: Append

    public func append(_ batch: IngestBatch, context: AppendContext) async throws {
        try await append(contentsOf: [AppendEntry(batch: batch, context: context)])
    }

    /// Every entry goes into the same WAL group commit, in order.
    public func append(contentsOf entries: [AppendEntry]) async throws {
        let entries = entries.filter { !$0.batch.points.isEmpty }
        guard !entries.isEmpty else { return }
        guard head.pointCount < config.maxHeadPoints else {
            flushBell.yield()
            throw StoreError(.unavailable, "the store is behind writing to its database; retry shortly")
        }
        let payloads = entries.map { e in
            WALPointsRecord(orgID: e.context.orgID, receivedAt: e.context.receivedAt).encode(e.batch.points)
        }
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let accepted = pending.withLock { q -> Bool in
                if q.closed { return false }
                for (i, e) in entries.enumerated() {
                    q.items.append(
                        PendingAppend(
                            payload: payloads[i], batch: e.batch, orgID: e.context.orgID,
                            receivedAt: e.context.receivedAt,
                            continuation: i == entries.count - 1 ? c : nil))
                }
                return true
            }
            if accepted {
                writerBell.yield()
            } else {
                c.resume(throwing: StoreError(.unavailable, "the store is shutting down"))
            }
        }
    }

    /// Read-your-writes: every query first waits until acknowledged data is in SQLite.
    func readable() async throws {
        try await head.waitUntilReadable { flushBell.yield() }
    }
}

extension Head {
    /// Inserts a group of durable batches atomically (one WAL group commit).
    func insert(_ entries: [(IngestBatch, Int64, Int64)], position: WriteAheadLog.Position) {
        insertGroup { snap in
            for (batch, org, at) in entries { Head.add(batch, orgID: org, receivedAt: at, to: &snap) }
            snap.walPosition = position
        }
    }
}

/// Writing a small file that must be on disk before the caller goes on.
enum DurableFile {
    static func save(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError(.unavailable, "cannot create \(path) (errno \(errno))") }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError(.unavailable, "cannot write \(path) (errno \(errno))")
            }
            done += n
        }
        guard fsync(fd) == 0 else { throw StoreError(.unavailable, "cannot sync \(path) (errno \(errno))") }
    }
}
