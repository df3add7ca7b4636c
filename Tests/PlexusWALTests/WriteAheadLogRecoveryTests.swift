import Foundation
import PlexusStorage
import PlexusWAL
import Testing

#if canImport(Glibc)
    import Glibc
#endif

func temporaryDirectory() -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plexus-wal-test-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Every record `replay(after: .zero)` returns from `dir`, with its position.
func replayAll(_ dir: String) throws -> [(WriteAheadLog.Position, [UInt8])] {
    var out: [(WriteAheadLog.Position, [UInt8])] = []
    _ = try WriteAheadLog(directory: dir).replay(after: .zero) { out.append(($1, Array($0))) }
    return out
}

/// A small tmpfs mounted for one test: a disk that really fills up.
enum Tmpfs {
    /// Whether this process may mount one (root with CAP_SYS_ADMIN; not in most containers).
    static let permitted: Bool = {
        let probe = temporaryDirectory()
        defer { rmdir(probe) }
        guard mount("tmpfs", probe, "tmpfs", 0, "size=64k") == 0 else { return false }
        umount2(probe, Int32(MNT_DETACH))
        return true
    }()

    static func with<T>(size: String, _ body: (String) throws -> T) throws -> T {
        let dir = temporaryDirectory()
        guard mount("tmpfs", dir, "tmpfs", 0, "size=\(size)") == 0 else {
            throw StoreError(.unavailable, "mount tmpfs failed (errno \(errno))")
        }
        defer {
            umount2(dir, Int32(MNT_DETACH))
            rmdir(dir)
        }
        return try body(dir)
    }
}

/// Makes the log's next write to the segment at `path` fail for real: its descriptor (found
/// in /proc/self/fd) is replaced by a read-only one of the same file, so `write` gets EBADF
/// from the kernel, as it would get ENOSPC or EIO from a full or failing disk.
func failNextWrite(of path: String) throws {
    let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { Int32($0) }
    let target = fds.first { fd in
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) == path
            && fcntl(fd, F_GETFL) & O_ACCMODE == O_WRONLY
    }
    let fd = try #require(target, "no write descriptor of \(path) is open")
    let readOnly = open(path, O_RDONLY | O_CLOEXEC)
    try #require(readOnly >= 0)
    defer { close(readOnly) }
    try #require(dup2(readOnly, fd) == fd)
}

@Suite("Write-ahead log: recovery after a failed write")
struct WriteAheadLogRecoveryTests {
    @Test(
        "a full disk fails appends; once space is back the next append succeeds, and replay returns exactly the acknowledged records",
        .enabled(if: Tmpfs.permitted, "skipped: this process may not mount a tmpfs (needs root with CAP_SYS_ADMIN)"))
    func fullDisk() throws {
        try Tmpfs.with(size: "256k") { dir in
            let ballast = dir + "/ballast"
            #expect(FileManager.default.createFile(atPath: ballast, contents: Data(count: 96 * 1024)))
            let log = try WriteAheadLog(directory: dir, retryInterval: .zero)
            try log.openForAppend(after: .zero)
            var acknowledged: [(WriteAheadLog.Position, [UInt8])] = []
            var failures = 0
            var i: UInt8 = 0
            // Groups of two 3 KiB records until the disk is full, and a few more attempts.
            while failures < 3 {
                i &+= 1
                let group = [[UInt8](repeating: i, count: 3_000), [UInt8](repeating: ~i, count: 3_000)]
                do {
                    let end = try log.appendDurably(group)
                    acknowledged.append((WriteAheadLog.Position(segment: end.segment, offset: end.offset - 3_008), group[0]))
                    acknowledged.append((end, group[1]))
                } catch let e as StoreError {
                    #expect(e.code == .unavailable)
                    #expect(log.failure != nil)
                    failures += 1
                }
                try #require(acknowledged.count < 200, "the disk never filled up")
            }
            try #require(acknowledged.count > 10)
            // Space is back: the very next append works, without a restart.
            try FileManager.default.removeItem(atPath: ballast)
            let end = try log.appendDurably([[7, 7, 7]])
            acknowledged.append((end, [7, 7, 7]))
            #expect(log.failure == nil)
            let end2 = try log.appendDurably([[8]])
            acknowledged.append((end2, [8]))
            // A restart replays exactly what was acknowledged, in order, at the same positions.
            let replayed = try replayAll(dir)
            #expect(replayed.map(\.0) == acknowledged.map(\.0))
            #expect(replayed.map(\.1) == acknowledged.map(\.1))
        }
    }

    @Test("records after a link's bound are never replayed, even if the cut of the failed group did not reach the disk")
    func linkBoundsTheFailedSegment() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try WriteAheadLog(directory: dir, retryInterval: .zero)
        try log.openForAppend(after: .zero)
        let first = try log.appendDurably([[1, 1, 1], [2, 2]])
        let failedPath = log.segmentPath(first.segment)
        try failNextWrite(of: failedPath)
        #expect(throws: StoreError.self) { _ = try log.appendDurably([[3, 3, 3, 3], [4]]) }
        let next = try log.appendDurably([[5, 5]])
        #expect(next.segment == first.segment + 1)
        // A power loss before the cut reached the disk: the failed group's records are
        // back after the acknowledged ones, whole and CRC-valid.
        let handle = try #require(FileHandle(forWritingAtPath: failedPath))
        handle.seekToEndOfFile()
        handle.write(Data(WriteAheadLog.frame([[3, 3, 3, 3], [4]])))
        handle.closeFile()
        let replayed = try replayAll(dir)
        #expect(replayed.map(\.1) == [[1, 1, 1], [2, 2], [5, 5]])
        #expect(replayed.last?.0 == next)
    }

    @Test("damage before a link's bound still refuses to start")
    func damageBeforeTheBound() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try WriteAheadLog(directory: dir)
        try log.openForAppend(after: .zero)
        let first = try log.appendDurably([[1, 1, 1], [2, 2]])
        let path = log.segmentPath(first.segment)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[9] ^= 0xFF  // inside the first, acknowledged record
        try bytes.write(to: URL(fileURLWithPath: path))
        let link = WriteAheadLog.frame([WriteAheadLog.linkPayload(previous: first)])
        #expect(FileManager.default.createFile(atPath: log.segmentPath(first.segment + 1), contents: Data(link)))
        #expect(throws: StoreError.self) { _ = try replayAll(dir) }
    }

    @Test("after a failed write the log cuts the group, refuses appends until the retry interval has passed, then recovers")
    func retryInterval() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        final class ManualClock { var now = ContinuousClock.now }
        let clock = ManualClock()
        let log = try WriteAheadLog(directory: dir, retryInterval: .seconds(1), now: { clock.now })
        try log.openForAppend(after: .zero)
        let first = try log.appendDurably([[1, 2, 3]])
        let path = log.segmentPath(first.segment)
        try failNextWrite(of: path)
        #expect(throws: StoreError.self) { _ = try log.appendDurably([[4, 5, 6]]) }
        #expect(log.failure != nil)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == Int(first.offset))
        // Within the interval: refused without touching the disk.
        clock.now = clock.now.advanced(by: .milliseconds(999))
        #expect(throws: StoreError.self) { _ = try log.appendDurably([[7]]) }
        #expect(try log.segments() == [first.segment])
        // After it: a new segment, starting with a link to the failed one's end.
        clock.now = clock.now.advanced(by: .milliseconds(1))
        let end = try log.appendDurably([[8, 8]])
        #expect(end.segment == first.segment + 1)
        #expect(log.failure == nil)
        #expect(try replayAll(dir).map(\.1) == [[1, 2, 3], [8, 8]])
    }
}
