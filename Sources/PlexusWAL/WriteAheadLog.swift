import PlexusStorage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The embedded store's write-ahead log: append-only segment files in `<data>/wal/`.
///
/// ```
/// segment file  := link? record*
/// record        := length:u32le crc32c(payload):u32le payload
/// link          := a record whose payload is 0x00 previous_segment:u64le previous_end:i64le
/// ```
/// A record is acknowledged only after `fdatasync` of its segment. Many concurrent
/// requests share one `fdatasync` (group commit). A torn or zero tail (a write that was
/// never acknowledged) ends replay. Segments wholly before the SQLite checkpoint are
/// deleted after each flush.
///
/// A failed write or sync fails its group, and the segment is never written or trusted
/// past its last acknowledged record again. The next append (at most once per
/// ``retryInterval``) starts a new segment whose first record, the *link*, says where the
/// failed segment ends; replay ignores whatever lies beyond that end. See
/// `docs/storage.md`, "When a write or sync fails".
///
/// This type does blocking file I/O; callers run it on a thread pool, never on the
/// cooperative pool.
package final class WriteAheadLog {
    package struct Position: Comparable, Hashable, Sendable {
        package var segment: UInt64
        package var offset: Int64
        package init(segment: UInt64, offset: Int64) {
            self.segment = segment
            self.offset = offset
        }
        package static func < (a: Position, b: Position) -> Bool {
            (a.segment, a.offset) < (b.segment, b.offset)
        }
        package static let zero = Position(segment: 0, offset: 0)
    }

    package static let segmentLimit: Int64 = 64 * 1024 * 1024
    package let directory: String
    /// After a failed write or sync, appends fail at once (503) until this long has passed
    /// since the last attempt; then the next append tries to recover.
    package let retryInterval: Duration
    private let now: () -> ContinuousClock.Instant
    private var fd: Int32 = -1
    package private(set) var position: Position
    /// Set while the log is failed: a write or sync of the current segment failed, so that
    /// segment is never written, synced or trusted past ``position`` again (after a failed
    /// fsync the kernel may have dropped its dirty pages and cleared the error). Cleared
    /// when an append has started a fresh segment.
    package private(set) var failure: String?
    private var lastRecoveryAttempt: ContinuousClock.Instant?

    package init(
        directory: String, retryInterval: Duration = .seconds(1),
        now: @escaping () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) throws {
        self.directory = directory
        self.retryInterval = retryInterval
        self.now = now
        position = .zero
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw StoreError(.unavailable, "cannot create WAL directory \(directory) (errno \(errno))")
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    package func segmentPath(_ n: UInt64) -> String {
        let digits = String(n)
        return directory + "/" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits + ".wal"
    }

    /// Names in the directory: segment numbers ascending, and segments being created
    /// (`….wal.tmp`) that a crash left behind.
    private func listing() throws -> (segments: [UInt64], temporary: [String]) {
        guard let dir = opendir(directory) else { throw StoreError(.unavailable, "cannot read WAL directory") }
        defer { closedir(dir) }
        var out: [UInt64] = []
        var temporary: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasSuffix(".wal"), let n = UInt64(name.dropLast(4)) { out.append(n) }
            if name.hasSuffix(".wal.tmp") { temporary.append(directory + "/" + name) }
        }
        return (out.sorted(), temporary)
    }

    /// Segment numbers present on disk, ascending.
    package func segments() throws -> [UInt64] { try listing().segments }

    // MARK: Replay

    /// The payload of a link record: `previous` is where the failed segment before this
    /// one really ends.
    package static func linkPayload(previous: Position) -> [UInt8] {
        var out: [UInt8] = [0]
        withUnsafeBytes(of: previous.segment.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: previous.offset.littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    /// The position a link payload names, or nil if `payload` is not a link. (Records of
    /// the store start with their version byte, 1, so the two never meet.)
    package static func link(in payload: UnsafeRawBufferPointer) -> Position? {
        guard payload.count == 17, payload[0] == 0 else { return nil }
        let offset = Int64(littleEndian: payload.loadUnaligned(fromByteOffset: 9, as: Int64.self))
        guard offset >= 0 else { return nil }
        return Position(segment: UInt64(littleEndian: payload.loadUnaligned(fromByteOffset: 1, as: UInt64.self)), offset: offset)
    }

    /// Walks the records in one segment's bytes, up to `bound` when a later segment's link
    /// says the segment ends there. Calls `body` with each intact record's payload and the
    /// offset after it (a link record at the start is skipped). Returns the offset after
    /// the last intact record, and whether every byte up to `bound` (or to the end) is
    /// intact records. The file-free core of ``replay(after:_:)``.
    package static func scanSegment(
        _ bytes: UnsafeRawBufferPointer, bound: Int? = nil, _ body: (UnsafeRawBufferPointer, Int) throws -> Void
    ) rethrows -> (end: Int, complete: Bool) {
        let limit = bound ?? bytes.count
        guard limit <= bytes.count else {
            // Acknowledged bytes are missing: still report the intact records before the gap.
            let end = try scanSegment(bytes, bound: nil, body).end
            return (end, false)
        }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[0..<limit])
        var off = 0
        while off + 8 <= raw.count {
            let len = Int(raw.loadUnaligned(fromByteOffset: off, as: UInt32.self).littleEndian)
            let crc = raw.loadUnaligned(fromByteOffset: off + 4, as: UInt32.self).littleEndian
            guard len > 0, len <= raw.count - off - 8 else { break }
            let payload = UnsafeRawBufferPointer(rebasing: raw[(off + 8)..<(off + 8 + len)])
            guard CRC32C.checksum(payload) == crc else { break }
            let isLink = off == 0 && link(in: payload) != nil
            off += 8 + len
            if !isLink { try body(payload, off) }
        }
        return (off, off == raw.count)
    }

    /// Calls `body` for every intact record after `checkpoint`, in order. Returns the
    /// position after the last intact record. A torn tail of the newest segment (a write
    /// that was never acknowledged) is cut; damage anywhere else is refused, since records
    /// after it were acknowledged. A segment that a later segment's link bounds is read
    /// only up to that bound.
    package func replay(after checkpoint: Position, _ body: (UnsafeRawBufferPointer, Position) throws -> Void) throws -> Position {
        var last = checkpoint
        let all = try segments().filter { $0 >= checkpoint.segment }
        for (k, seg) in all.enumerated() {
            let bytes = try readWhole(segmentPath(seg))
            var bound: Int?
            if k + 1 < all.count, let link = try firstLink(all[k + 1]), link.segment == seg {
                bound = Int(link.offset)
            }
            let (off, complete) = try bytes.withUnsafeBytes { raw in
                try Self.scanSegment(raw, bound: bound) { payload, end in
                    let pos = Position(segment: seg, offset: Int64(end))
                    if pos > checkpoint { try body(payload, pos) }
                    last = max(last, pos)
                }
            }
            if !complete {
                guard seg == all.last else {
                    throw StoreError(
                        .corrupted,
                        """
                        write-ahead log segment \(segmentPath(seg)) is damaged at byte \(off) and newer segments follow; \
                        refusing to start rather than lose acknowledged data (move the damaged segment aside to accept the loss)
                        """)
                }
                // A torn tail: never acknowledged. Cut it so new records follow good ones.
                truncate(segmentPath(seg), off_t(off))
                break
            }
        }
        return last
    }

    /// The link at the start of segment `n`, if it starts with one.
    private func firstLink(_ n: UInt64) throws -> Position? {
        let rfd = open(segmentPath(n), O_RDONLY | O_CLOEXEC)
        guard rfd >= 0 else { throw StoreError(.unavailable, "cannot open WAL segment for replay (errno \(errno))") }
        defer { close(rfd) }
        var head = [UInt8](repeating: 0, count: 8 + 17)
        let got = head.withUnsafeMutableBytes { pread(rfd, $0.baseAddress!, $0.count, 0) }
        guard got == head.count else { return nil }
        return head.withUnsafeBytes { raw in
            let payload = UnsafeRawBufferPointer(rebasing: raw[8...])
            guard raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian == 17,
                raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian == CRC32C.checksum(payload)
            else { return nil }
            return Self.link(in: payload)
        }
    }

    // MARK: Appending

    /// Opens a fresh segment for appending (after replay), removing empty ones that
    /// earlier restarts left and segments a crash left half created.
    package func openForAppend(after last: Position) throws {
        let (existing, temporary) = try listing()
        for path in temporary { unlink(path) }
        for seg in existing {
            var st = stat()
            if stat(segmentPath(seg), &st) == 0 && st.st_size == 0 { unlink(segmentPath(seg)) }
        }
        let next = max(last.segment, existing.last ?? 0) + 1
        try openSegment(next)
    }

    /// Starts segment `n` and makes it the one appended to. The current one stays open
    /// until the new one is there, so a failure here leaves the log as it was.
    private func openSegment(_ n: UInt64) throws {
        let newFD = open(segmentPath(n), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard newFD >= 0 else { throw StoreError(.unavailable, "cannot open WAL segment (errno \(errno))") }
        if fd >= 0 { close(fd) }
        fd = newFD
        position = Position(segment: n, offset: 0)
        try syncDirectory()
    }

    @discardableResult
    private func syncDirectory() throws -> Bool {
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw StoreError(.unavailable, "cannot open WAL directory (errno \(errno))") }
        defer { close(dfd) }
        return fsync(dfd) == 0
    }

    /// `payloads` framed as records.
    package static func frame(_ payloads: [[UInt8]]) -> [UInt8] {
        var total = 0
        for p in payloads { total += 8 + p.count }
        var buffer = [UInt8]()
        buffer.reserveCapacity(total)
        for p in payloads {
            let crc = p.withUnsafeBytes { CRC32C.checksum($0) }
            withUnsafeBytes(of: UInt32(p.count).littleEndian) { buffer.append(contentsOf: $0) }
            withUnsafeBytes(of: crc.littleEndian) { buffer.append(contentsOf: $0) }
            buffer.append(contentsOf: p)
        }
        return buffer
    }

    /// Writes all of `bytes` to `fd`; the errno of the first failure, or nil.
    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBytes { raw -> Int32? in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                done += n
            }
            return nil
        }
    }

    /// Frames `payloads` as records, writes them and makes them durable. Returns the
    /// position after the last record. After an earlier failure, first starts a fresh
    /// segment (at most once per ``retryInterval``; until then it fails at once).
    package func appendDurably(_ payloads: [[UInt8]]) throws -> Position {
        if failure != nil { try recover() }
        if position.offset >= Self.segmentLimit { try openSegment(position.segment + 1) }
        let buffer = Self.frame(payloads)
        if let e = Self.writeAll(fd, buffer) {
            fail("write failed, errno \(e)")
            throw StoreError(.unavailable, "WAL write failed (errno \(e))")
        }
        guard fdatasync(fd) == 0 else {
            let e = errno
            fail("fdatasync failed, errno \(e)")
            throw StoreError(.unavailable, "WAL fdatasync failed (errno \(e))")
        }
        position.offset += Int64(buffer.count)
        return position
    }

    /// A write or sync of the current segment failed: nothing of this group is
    /// acknowledged. Cuts what was written of it (so a restart finds the segment ending at
    /// the last acknowledged record; best effort, the next segment's link says so for sure)
    /// and refuses writes until ``recover()`` has started a new segment.
    private func fail(_ reason: String) {
        _ = ftruncate(fd, off_t(position.offset))
        failure = reason
        lastRecoveryAttempt = now()
    }

    /// Starts segment `position.segment + 1`, whose first record is a link to the end of
    /// the failed segment. The file is written and synced under a temporary name and
    /// renamed into place, then the directory is synced: a segment under its final name
    /// always starts with an intact link. The failed segment is never synced again.
    private func recover() throws {
        guard let failure else { return }
        if let last = lastRecoveryAttempt, now() < last.advanced(by: retryInterval) {
            throw StoreError(.unavailable, "the write-ahead log failed (\(failure)); it retries at most every \(retryInterval)")
        }
        lastRecoveryAttempt = now()
        let next = position.segment + 1
        let path = segmentPath(next)
        let temporary = path + ".tmp"
        let first = Self.frame([Self.linkPayload(previous: position)])
        let newFD = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        guard newFD >= 0 else {
            throw StoreError(.unavailable, "the write-ahead log failed (\(failure)); cannot start a new segment (errno \(errno))")
        }
        var problem: String?
        if let e = Self.writeAll(newFD, first) {
            problem = "write failed, errno \(e)"
        } else if fdatasync(newFD) != 0 {
            problem = "fdatasync failed, errno \(errno)"
        } else if rename(temporary, path) != 0 {
            problem = "rename failed, errno \(errno)"
        } else if (try? syncDirectory()) != true {
            problem = "directory fsync failed, errno \(errno)"
            // Under its final name the segment is harmless (its link is true), but it is
            // not known to be durable; the next attempt replaces it.
        }
        if let problem {
            close(newFD)
            unlink(temporary)
            throw StoreError(.unavailable, "the write-ahead log failed (\(failure)); cannot start a new segment (\(problem))")
        }
        close(fd)
        fd = newFD
        position = Position(segment: next, offset: Int64(first.count))
        self.failure = nil
        lastRecoveryAttempt = nil
    }

    /// Called after a flush: everything up to `checkpoint` is in SQLite. Deletes the
    /// segments before it; when the checkpoint is the end of the log and the current
    /// segment holds at least `rotateAbove` bytes, starts a new segment so the old one
    /// can go too (keeps the log small on disk between flushes). Starting the new segment
    /// is housekeeping: when it fails, the log goes on in the current one.
    package func checkpointed(at checkpoint: Position, rotateAbove: Int64) throws {
        let everythingFlushed = checkpoint >= position
        if everythingFlushed && failure == nil && position.offset >= rotateAbove && position.offset > 0 {
            try? openSegment(position.segment + 1)
        }
        for seg in try segments() where seg < position.segment && (seg < checkpoint.segment || everythingFlushed) {
            unlink(segmentPath(seg))
        }
    }

    private func readWhole(_ path: String) throws -> [UInt8] {
        let rfd = open(path, O_RDONLY | O_CLOEXEC)
        guard rfd >= 0 else { throw StoreError(.unavailable, "cannot open WAL segment for replay (errno \(errno))") }
        defer { close(rfd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(rfd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError(.unavailable, "WAL read failed (errno \(errno))")
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }
}
