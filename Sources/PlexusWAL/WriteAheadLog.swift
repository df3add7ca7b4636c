#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PlexusStorage

/// The embedded store's write-ahead log: append-only segment files in `<data>/wal/`.
///
/// ```
/// segment file  := record*
/// record        := length:u32le crc32c(payload):u32le payload
/// ```
/// A record is acknowledged only after `fdatasync` of its segment. Many concurrent
/// requests share one `fdatasync` (group commit). A torn or zero tail (a write that was
/// never acknowledged) ends replay. Segments wholly before the SQLite checkpoint are
/// deleted after each flush.
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
    private var fd: Int32 = -1
    package private(set) var position: Position
    /// Set when a write or sync failed: what is on disk after the last good position is
    /// unknown (and after a failed fsync the kernel may have dropped the pages), so the
    /// log refuses further writes until a restart replays it. PostgreSQL does the same.
    package private(set) var failure: String?

    package init(directory: String) throws {
        self.directory = directory
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

    /// Segment numbers present on disk, ascending.
    package func segments() throws -> [UInt64] {
        guard let dir = opendir(directory) else { throw StoreError(.unavailable, "cannot read WAL directory") }
        defer { closedir(dir) }
        var out: [UInt64] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasSuffix(".wal"), let n = UInt64(name.dropLast(4)) { out.append(n) }
        }
        return out.sorted()
    }

    /// Calls `body` for every intact record after `checkpoint`, in order. Returns the
    /// position after the last intact record. A torn tail of the newest segment (a write
    /// that was never acknowledged) is cut; damage anywhere else is refused, since records
    /// after it were acknowledged.
    package func replay(after checkpoint: Position, _ body: (UnsafeRawBufferPointer, Position) throws -> Void) throws -> Position {
        var last = checkpoint
        let all = try segments()
        for seg in all where seg >= checkpoint.segment {
            let bytes = try readWhole(segmentPath(seg))
            var off = 0
            let valid = try bytes.withUnsafeBytes { raw -> Bool in
                while off + 8 <= raw.count {
                    let len = Int(raw.loadUnaligned(fromByteOffset: off, as: UInt32.self).littleEndian)
                    let crc = raw.loadUnaligned(fromByteOffset: off + 4, as: UInt32.self).littleEndian
                    guard len > 0, off + 8 + len <= raw.count else { return false }
                    let payload = UnsafeRawBufferPointer(rebasing: raw[(off + 8)..<(off + 8 + len)])
                    guard CRC32C.checksum(payload) == crc else { return false }
                    off += 8 + len
                    let pos = Position(segment: seg, offset: Int64(off))
                    if pos > checkpoint { try body(payload, pos) }
                    last = max(last, pos)
                }
                return off == raw.count
            }
            if !valid {
                guard seg == all.last else {
                    throw StoreError(.corrupted, """
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

    /// Opens a fresh segment for appending (after replay), removing empty ones that
    /// earlier restarts left.
    package func openForAppend(after last: Position) throws {
        let existing = try segments()
        for seg in existing {
            var st = stat()
            if stat(segmentPath(seg), &st) == 0 && st.st_size == 0 { unlink(segmentPath(seg)) }
        }
        let next = max(last.segment, existing.last ?? 0) + 1
        try openSegment(next)
    }

    private func openSegment(_ n: UInt64) throws {
        if fd >= 0 { close(fd) }
        fd = open(segmentPath(n), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError(.unavailable, "cannot open WAL segment (errno \(errno))") }
        position = Position(segment: n, offset: 0)
        try syncDirectory()
    }

    private func syncDirectory() throws {
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw StoreError(.unavailable, "cannot open WAL directory (errno \(errno))") }
        defer { close(dfd) }
        _ = fsync(dfd)
    }

    /// Frames `payloads` as records, writes them and makes them durable. Returns the
    /// position after the last record.
    package func appendDurably(_ payloads: [[UInt8]]) throws -> Position {
        if let failure { throw StoreError(.unavailable, "the write-ahead log failed earlier (\(failure)); restart the server") }
        if position.offset >= Self.segmentLimit { try openSegment(position.segment + 1) }
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
        try buffer.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    let e = errno
                    // Cut what was written of this group so replay never sees unacknowledged records.
                    _ = ftruncate(fd, off_t(position.offset))
                    failure = "write failed, errno \(e)"
                    throw StoreError(.unavailable, "WAL write failed (errno \(e))")
                }
                done += n
            }
        }
        guard fdatasync(fd) == 0 else {
            let e = errno
            _ = ftruncate(fd, off_t(position.offset))
            failure = "fdatasync failed, errno \(e)"
            throw StoreError(.unavailable, "WAL fdatasync failed (errno \(e))")
        }
        position.offset += Int64(total)
        return position
    }

    /// Called after a flush: everything up to `checkpoint` is in SQLite. Deletes the
    /// segments before it; when the checkpoint is the end of the log and the current
    /// segment holds at least `rotateAbove` bytes, starts a new segment so the old one
    /// can go too (keeps the log small on disk between flushes).
    package func checkpointed(at checkpoint: Position, rotateAbove: Int64) throws {
        let everythingFlushed = checkpoint >= position
        if everythingFlushed && position.offset >= rotateAbove && position.offset > 0 {
            try openSegment(position.segment + 1)
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
