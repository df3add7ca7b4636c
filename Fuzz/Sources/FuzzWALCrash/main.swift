import FuzzSupport
import PlexusStorage
import PlexusWAL

// libFuzzer target: the real WriteAheadLog on real files, driven by a program the fuzzer
// writes: appends (some failing part-way: RLIMIT_FSIZE makes write() fail with EFBIG as a
// full disk fails with ENOSPC), recovery, checkpoints, restarts, crashes that leave a torn
// tail, and power losses that undo the cut of a failed group. After every restart, replay
// must return exactly the acknowledged records after the checkpoint, at the positions
// appendDurably reported: nothing acknowledged lost, nothing unacknowledged replayed.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

enum Scratch {
    static let directory: String = {
        // tmpfs when there is one: fdatasync is free there, so the fuzzer runs fast.
        var st = stat()
        let root = stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp"
        let dir = "\(root)/plexus-fuzz-wal-\(getpid())"
        mkdir(dir, 0o755)
        signal(SIGXFSZ, SIG_IGN)  // a write past RLIMIT_FSIZE then fails with EFBIG instead of killing us
        return dir
    }()
}

func clear(_ dir: String) {
    guard let d = opendir(dir) else { return }
    var names: [String] = []
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    closedir(d)
    for n in names { unlink(dir + "/" + n) }
}

func setFileSizeLimit(_ bytes: UInt64?) {
    var r = rlimit()
    let resource = __rlimit_resource_t(RLIMIT_FSIZE.rawValue)
    getrlimit(resource, &r)
    r.rlim_cur = bytes.map { rlim_t($0) } ?? r.rlim_max
    setrlimit(resource, &r)
}

func fileSize(_ path: String) -> Int64 {
    var st = stat()
    return stat(path, &st) == 0 ? Int64(st.st_size) : 0
}

/// Appends `bytes` at the end of the file at `path`.
func appendRaw(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_APPEND)
    guard fd >= 0 else { return }
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

struct Acked: Equatable {
    var position: WriteAheadLog.Position
    var payload: [UInt8]
}

struct Model {
    var acked: [Acked] = []
    var checkpoint = WriteAheadLog.Position.zero
    /// A group whose write failed: the segment it was cut from, where the cut was, its
    /// bytes, and whether a later segment's link has recorded the cut.
    var failed: (segment: UInt64, end: Int64, bytes: [UInt8], linked: Bool)?
}

func restart(_ dir: String, _ model: Model) -> WriteAheadLog {
    let log: WriteAheadLog
    do {
        log = try WriteAheadLog(directory: dir, retryInterval: .zero)
        var replayed: [Acked] = []
        let end = try log.replay(after: model.checkpoint) { payload, position in
            replayed.append(Acked(position: position, payload: Array(payload)))
        }
        let expected = model.acked.filter { $0.position > model.checkpoint }
        require(
            replayed == expected,
            """
            replay returned \(replayed.count) records, \(expected.count) were acknowledged after the checkpoint:
            \(replayed.map { "\($0.position)" }) vs \(expected.map { "\($0.position)" })
            """)
        if let last = expected.last { require(end == last.position, "replay ended at \(end), not \(last.position)") }
        try log.openForAppend(after: end)
    } catch {
        require(false, "restart failed: \(error)")
        fatalError()
    }
    return log
}

func fuzzWALCrash(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let dir = Scratch.directory + "/log"
    clear(dir)
    var input = FuzzInput(UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: size))
    var model = Model()
    var log = restart(dir, model)
    var steps = 0
    while !input.isEmpty && steps < 24 {
        steps += 1
        switch input.byte() % 6 {
        case 0, 1:
            // Append a group; maybe with a file size limit that makes the write (or the
            // recovery's new segment) fail part-way.
            var payloads: [[UInt8]] = []
            for _ in 0...(input.byte() % 4) { payloads.append([1] + input.take(Int(input.byte() % 48))) }
            let limit = input.byte()
            let segmentBefore = log.position.segment
            let offsetBefore = log.position.offset
            let wasFailed = log.failure != nil
            setFileSizeLimit(limit < 160 ? nil : UInt64(offsetBefore) + UInt64(limit % 96))
            let result = Result { try log.appendDurably(payloads) }
            setFileSizeLimit(nil)
            let recovered = wasFailed && log.position.segment != segmentBefore
            if recovered { model.failed?.linked = true }
            switch result {
            case .success(let end):
                var start = end.offset - Int64(WriteAheadLog.frame(payloads).count)
                require(start >= 0, "appendDurably reported an impossible end")
                for p in payloads {
                    start += 8 + Int64(p.count)
                    model.acked.append(Acked(position: .init(segment: end.segment, offset: start), payload: p))
                }
                require(log.failure == nil, "a successful append left the log failed")
            case .failure(let error):
                let e = error as? StoreError
                require(e?.code == .unavailable, "append failed with \(error)")
                require(log.failure != nil, "a failed append did not mark the log failed")
                if !wasFailed || recovered {
                    // The group was written (in part) and cut again.
                    model.failed = (log.position.segment, log.position.offset, WriteAheadLog.frame(payloads), false)
                }
                // The cut: the segment ends at the last acknowledged record again.
                require(
                    fileSize(log.segmentPath(log.position.segment)) == log.position.offset,
                    "a failed append left bytes after the last acknowledged record")
            }
        case 2:
            // A power loss after recovery that undoes the cut of the failed group: its
            // records (whole or not) reappear after the acknowledged end of its segment.
            if let f = model.failed, f.linked, fileSize(log.segmentPath(f.segment)) == f.end {
                appendRaw(log.segmentPath(f.segment), Array(f.bytes.prefix(Int(input.byte()) * 4 + 1)))
                model.failed = nil
            }
        case 3:
            // A crash in the middle of a write: a torn record (or zeros) at the end of the
            // newest segment, then a restart.
            if log.failure == nil {
                let path = log.segmentPath(log.position.segment)
                let record = WriteAheadLog.frame([[1] + input.take(Int(input.byte() % 32))])
                let torn = input.bool() ? [UInt8](repeating: 0, count: Int(input.byte() % 40)) : Array(record.prefix(record.count - 1))
                appendRaw(path, torn)
                if model.failed?.linked == false { model.failed = nil }
                log = restart(dir, model)
            }
        case 4:
            // A flush moved everything up to the log's end into SQLite.
            if log.failure == nil, let last = model.acked.last {
                model.checkpoint = max(model.checkpoint, last.position)
                do {
                    try log.checkpointed(at: model.checkpoint, rotateAbove: Int64(input.byte()))
                } catch {
                    require(false, "checkpointed failed: \(error)")
                }
            }
        default:
            // A restart before the cut of a failed group was linked: the cut is in the
            // file already (a process crash does not undo it), nothing to simulate.
            if model.failed?.linked == false { model.failed = nil }
            log = restart(dir, model)
        }
    }
    _ = restart(dir, model)
    return 0
}

runFuzzer(fuzzWALCrash)
