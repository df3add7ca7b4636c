import Foundation
import GRDB

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
final class DiskBuffer: Sendable {
    let path: String
    let capacity: Int
    private let queue: DatabaseQueue

    struct Row: Sendable {
        var id: Int64
        var body: [UInt8]
    }

    init(path: String, capacity: Int) throws(PlexusError) {
        self.path = path
        self.capacity = max(1, capacity)
        var config = GRDB.Configuration()
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            // WAL + NORMAL: a commit survives the process dying (not the machine losing power
            // in the last moments), at a fraction of FULL's cost per batch.
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
            try queue.write { db in
                try db.execute(sql: "CREATE TABLE IF NOT EXISTS pending (id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL)")
            }
        } catch {
            throw PlexusError(.unavailable, "cannot open the buffer \(path): \(error)")
        }
    }

    /// Points waiting (read at start-up; the client keeps its own count afterwards).
    func count() throws(PlexusError) -> Int {
        do {
            return try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM pending") ?? 0 }
        } catch {
            throw PlexusError(.unavailable, "cannot read the buffer: \(error)")
        }
    }

    /// Appends points in one transaction; drops the oldest beyond the capacity.
    /// - Returns: the number now stored and the number dropped.
    func append(_ points: [[UInt8]]) async throws(PlexusError) -> (count: Int, dropped: Int) {
        let capacity = capacity
        do {
            return try await queue.write { db in
                let insert = try db.makeStatement(sql: "INSERT INTO pending (body) VALUES (?)")
                for p in points { try insert.execute(arguments: [Data(p)]) }
                let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM pending") ?? 0
                let extra = max(0, count - capacity)
                if extra > 0 {
                    try db.execute(sql: "DELETE FROM pending WHERE id IN (SELECT id FROM pending ORDER BY id LIMIT ?)", arguments: [extra])
                }
                return (count - extra, extra)
            }
        } catch {
            throw PlexusError(.unavailable, "cannot write the buffer: \(error)")
        }
    }

    /// The oldest `limit` points.
    func oldest(_ limit: Int) async throws(PlexusError) -> [Row] {
        do {
            return try await queue.read { db in
                try GRDB.Row.fetchAll(db, sql: "SELECT id, body FROM pending ORDER BY id LIMIT ?", arguments: [limit]).map { r in
                    Row(id: r["id"], body: Array((r["body"] as Data?) ?? Data()))
                }
            }
        } catch {
            throw PlexusError(.unavailable, "cannot read the buffer: \(error)")
        }
    }

    /// Removes the given rows (delivered, or refused for good); rows dropped meanwhile
    /// are not counted again.
    /// - Returns: the number removed.
    func remove(_ ids: [Int64]) async throws(PlexusError) -> Int {
        guard let first = ids.min(), let last = ids.max() else { return 0 }
        do {
            return try await queue.write { db in
                try db.execute(sql: "DELETE FROM pending WHERE id BETWEEN ? AND ?", arguments: [first, last])
                return db.changesCount
            }
        } catch {
            throw PlexusError(.unavailable, "cannot write the buffer: \(error)")
        }
    }
}
