import Foundation
import GRDB
public import PlexusStorage

/// The embedded store's database without its telemetry path: organisations, keys, people,
/// login sessions, invites and device-name claims, in `plexus.sqlite`. The admin commands
/// (`plexus-server keys …`, `orgs`, `users`, `claims`) open it on its own, safely while a
/// server runs on the same directory: it takes no lock and has no write-ahead log, so it
/// cannot hold points. ``SQLiteStore`` is this plus the telemetry path, for the server.
///
/// A class so that the server's store is one too, sharing these methods; every stored
/// property is an immutable `Sendable` value, hence the unchecked conformance.
public class SQLiteCatalog: TenantStore, AccountStore, DeviceStore, @unchecked Sendable {
    let directory: String
    let pool: DatabasePool

    /// Opens (creating and migrating if needed) the database in `directory`.
    public init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var dbConfig = GRDB.Configuration()
        dbConfig.busyMode = .timeout(10)
        dbConfig.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            pool = try DatabasePool(path: directory + "/plexus.sqlite", configuration: dbConfig)
            // A new database gives the pages that retention frees back to the file system
            // (PRAGMA incremental_vacuum); this can only be chosen before the first table.
            try pool.writeWithoutTransaction { db in
                if try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") == 0 {
                    // In WAL mode the setting takes effect through a VACUUM (instant here).
                    try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL; VACUUM")
                }
            }
            try Schema.migrator().migrate(pool)
        } catch {
            throw StoreError(.unavailable, "cannot open the database in \(directory)", underlying: error)
        }
    }

    /// Runs `body`, turning every engine error into a `StoreError` (nothing above storage
    /// sees a GRDB type).
    func translate<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError(.internalError, "database error", underlying: error)
        }
    }
}
