internal import CSQLite
import Foundation
import Synchronization

/// Points not yet acknowledged by the server, on disk, oldest first: a SQLite file
/// (`~/.plexus/buffer-swift.sqlite` by default) with one row per encoded point.
///
/// The client's sender moves every queued point here before it tries to deliver it, and
/// removes points only once the server has acknowledged them (WebSocket) or answered 2xx
/// (HTTP). So points survive a lost connection, a server that is down for hours and a
/// restart of the program; after a reconnect the oldest go first, with the timestamps
/// they were given when they were sent.
///
/// Bounded: at most `capacity` points. Appending past that drops the **oldest** rows;
/// ``append(_:)`` returns how many, and the client counts and logs them.
///
/// Written against the system SQLite directly (no GRDB): this is on the device's hot
/// path, where a library's per-row overhead was most of the cost, and it keeps the
/// server's storage library out of the SDK. One client owns a buffer file at a time
/// (the count of waiting points is kept in memory after it is read at opening). The calls
/// are synchronous: each is one short transaction on a local file, made by the client's
/// sender, never by `send`.
final class DiskBuffer: Sendable {
    let path: String
    let capacity: Int
    private let file: Mutex<SQLiteFile>

    struct Row: Sendable {
        var id: Int64
        var body: [UInt8]
    }

    init(path: String, capacity: Int) throws(PlexusError) {
        self.path = path
        self.capacity = max(1, capacity)
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        do {
            let f = try SQLiteFile(path: path)
            // WAL + NORMAL: a commit survives the process dying (not the machine losing power
            // in the last moments), at a fraction of FULL's cost per batch.
            try f.execute("PRAGMA journal_mode = WAL")
            try f.execute("PRAGMA synchronous = NORMAL")
            try f.execute("CREATE TABLE IF NOT EXISTS pending (id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL)")
            try f.prepareStatements()
            f.stored = try f.countRows()
            file = Mutex(f)
        } catch {
            throw PlexusError(.unavailable, "cannot open the buffer \(path): \(error)")
        }
    }

    /// Points waiting.
    var count: Int { file.withLock { $0.stored } }

    /// Appends points in one transaction; drops the oldest beyond the capacity.
    /// - Returns: the number now stored and the number dropped.
    func append(_ points: [[UInt8]]) throws(PlexusError) -> (count: Int, dropped: Int) {
        let capacity = capacity
        let result = file.withLock { f in
            Result { () throws(SQLiteFailure) -> (Int, Int) in
                let total = f.stored + points.count
                let extra = max(0, total - capacity)
                try f.transaction { () throws(SQLiteFailure) in
                    for p in points { try f.insert(p) }
                    if extra > 0 { try f.deleteOldest(extra) }
                }
                f.stored = total - extra
                return (total - extra, extra)
            }
        }
        switch result {
        case .success(let r): return (r.0, r.1)
        case .failure(let e): throw PlexusError(.unavailable, "cannot write the buffer: \(e)")
        }
    }

    /// The oldest `limit` points.
    func oldest(_ limit: Int) throws(PlexusError) -> [Row] {
        let result = file.withLock { f in Result { () throws(SQLiteFailure) in try f.oldest(limit) } }
        switch result {
        case .success(let rows): return rows
        case .failure(let e): throw PlexusError(.unavailable, "cannot read the buffer: \(e)")
        }
    }

    /// Removes the given rows (delivered, or refused for good); rows dropped meanwhile
    /// are not counted again.
    /// - Returns: the number removed.
    func remove(_ ids: [Int64]) throws(PlexusError) -> Int {
        guard let first = ids.min(), let last = ids.max() else { return 0 }
        let result = file.withLock { f in
            Result { () throws(SQLiteFailure) -> Int in
                let n = try f.deleteRange(first, last)
                f.stored = max(0, f.stored - n)
                return n
            }
        }
        switch result {
        case .success(let n): return n
        case .failure(let e): throw PlexusError(.unavailable, "cannot write the buffer: \(e)")
        }
    }
}

/// A SQLite error: the result code and SQLite's message.
struct SQLiteFailure: Error, CustomStringConvertible {
    var code: Int32
    var message: String
    var description: String { "SQLite error \(code): \(message)" }
}

/// One connection and the buffer's prepared statements. Used only under `DiskBuffer`'s
/// lock, so never from two threads at once.
final class SQLiteFile: @unchecked Sendable {
    private var db: OpaquePointer?
    private var insertStatement: OpaquePointer?
    private var oldestStatement: OpaquePointer?
    private var deleteRangeStatement: OpaquePointer?
    private var deleteOldestStatement: OpaquePointer?
    /// Rows in `pending`, kept in step with every change.
    var stored = 0

    /// `SQLITE_TRANSIENT`: SQLite copies the bytes before the call returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(path: String) throws(SQLiteFailure) {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK else {
            let failure = SQLiteFailure(code: rc, message: db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open")
            sqlite3_close_v2(db)
            db = nil
            throw failure
        }
        sqlite3_busy_timeout(db, 5_000)
    }

    deinit {
        for s in [insertStatement, oldestStatement, deleteRangeStatement, deleteOldestStatement] { sqlite3_finalize(s) }
        sqlite3_close_v2(db)
    }

    func prepareStatements() throws(SQLiteFailure) {
        insertStatement = try prepare("INSERT INTO pending (body) VALUES (?)")
        oldestStatement = try prepare("SELECT id, body FROM pending ORDER BY id LIMIT ?")
        deleteRangeStatement = try prepare("DELETE FROM pending WHERE id BETWEEN ? AND ?")
        deleteOldestStatement = try prepare("DELETE FROM pending WHERE id IN (SELECT id FROM pending ORDER BY id LIMIT ?)")
    }

    func execute(_ sql: String) throws(SQLiteFailure) {
        try check(sqlite3_exec(db, sql, nil, nil, nil))
    }

    func countRows() throws(SQLiteFailure) -> Int {
        let s = try prepare("SELECT COUNT(*) FROM pending")
        defer { sqlite3_finalize(s) }
        guard sqlite3_step(s) == SQLITE_ROW else { throw failure(sqlite3_errcode(db)) }
        return Int(sqlite3_column_int64(s, 0))
    }

    /// Runs `body` in one transaction, rolled back if it throws.
    func transaction(_ body: () throws(SQLiteFailure) -> Void) throws(SQLiteFailure) {
        try execute("BEGIN IMMEDIATE")
        do {
            try body()
            try execute("COMMIT")
        } catch {
            _ = sqlite3_exec(db, "ROLLBACK", nil, nil, nil)
            throw error
        }
    }

    func insert(_ body: [UInt8]) throws(SQLiteFailure) {
        let s = insertStatement
        defer {
            sqlite3_reset(s)
            sqlite3_clear_bindings(s)
        }
        let rc = body.withUnsafeBytes { raw in
            // A zero-length blob still needs a non-null pointer to be stored as a blob.
            sqlite3_bind_blob(s, 1, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(raw.count), Self.transient)
        }
        try check(rc)
        try done(sqlite3_step(s))
    }

    func oldest(_ limit: Int) throws(SQLiteFailure) -> [DiskBuffer.Row] {
        let s = oldestStatement
        defer {
            sqlite3_reset(s)
            sqlite3_clear_bindings(s)
        }
        try check(sqlite3_bind_int64(s, 1, Int64(limit)))
        var rows: [DiskBuffer.Row] = []
        while true {
            let rc = sqlite3_step(s)
            if rc == SQLITE_DONE { return rows }
            guard rc == SQLITE_ROW else { throw failure(rc) }
            let id = sqlite3_column_int64(s, 0)
            let n = Int(sqlite3_column_bytes(s, 1))
            let body = n > 0 ? Array(UnsafeRawBufferPointer(start: sqlite3_column_blob(s, 1), count: n)) : []
            rows.append(DiskBuffer.Row(id: id, body: body))
        }
    }

    /// - Returns: the number of rows deleted.
    func deleteRange(_ first: Int64, _ last: Int64) throws(SQLiteFailure) -> Int {
        let s = deleteRangeStatement
        defer {
            sqlite3_reset(s)
            sqlite3_clear_bindings(s)
        }
        try check(sqlite3_bind_int64(s, 1, first))
        try check(sqlite3_bind_int64(s, 2, last))
        try done(sqlite3_step(s))
        return Int(sqlite3_changes(db))
    }

    func deleteOldest(_ n: Int) throws(SQLiteFailure) {
        let s = deleteOldestStatement
        defer {
            sqlite3_reset(s)
            sqlite3_clear_bindings(s)
        }
        try check(sqlite3_bind_int64(s, 1, Int64(n)))
        try done(sqlite3_step(s))
    }

    private func prepare(_ sql: String) throws(SQLiteFailure) -> OpaquePointer? {
        var s: OpaquePointer?
        try check(sqlite3_prepare_v2(db, sql, -1, &s, nil))
        return s
    }

    private func check(_ rc: Int32) throws(SQLiteFailure) {
        guard rc == SQLITE_OK else { throw failure(rc) }
    }

    private func done(_ rc: Int32) throws(SQLiteFailure) {
        guard rc == SQLITE_DONE else { throw failure(rc) }
    }

    private func failure(_ rc: Int32) -> SQLiteFailure {
        SQLiteFailure(code: rc, message: db.map { String(cString: sqlite3_errmsg($0)) } ?? "no connection")
    }
}
