import Foundation
import GRDB
import PlexusModel
public import PlexusStorage

/// Organisations and API keys (tables `orgs`, `api_keys`).
extension SQLiteCatalog {
    public func createOrganization(name: String, at now: Int64) async throws -> Organization {
        do {
            return try await pool.write { db in
                try db.execute(sql: "INSERT INTO orgs (name, created_at) VALUES (?, ?)", arguments: [name, now])
                return Organization(id: db.lastInsertedRowID, name: name, createdAt: now)
            }
        } catch let e as DatabaseError where e.resultCode == .SQLITE_CONSTRAINT {
            throw StoreError(.conflict, "organisation \(name) already exists")
        }
    }

    private static let orgColumns = "id, name, created_at, raw_retention_us, rollup_retention_us"

    private static func org(_ row: Row) -> Organization {
        Organization(
            id: row[0], name: row[1], createdAt: row[2],
            retention: RetentionOverride(raw: period(row[3]), rollups: period(row[4])))
    }

    /// A retention column: NULL is the server's default, 0 forever, else microseconds.
    static func period(_ stored: Int64?) -> RetentionPeriod? {
        stored.map { $0 == 0 ? .forever : .micros($0) }
    }

    static func column(_ period: RetentionPeriod?) -> Int64? {
        switch period {
        case nil: nil
        case .forever: 0
        case .micros(let us): us
        }
    }

    public func setRetention(orgID: Int64, _ retention: RetentionOverride) async throws -> Bool {
        try await translate {
            try await pool.write { db in
                try db.execute(
                    sql: "UPDATE orgs SET raw_retention_us = ?, rollup_retention_us = ? WHERE id = ?",
                    arguments: [Self.column(retention.raw), Self.column(retention.rollups), orgID])
                return db.changesCount > 0
            }
        }
    }

    public func organization(named name: String) async throws -> Organization? {
        try await translate {
            try await pool.read { db in
                try Row.fetchOne(db, sql: "SELECT \(Self.orgColumns) FROM orgs WHERE name = ?", arguments: [name]).map(Self.org)
            }
        }
    }

    public func organization(id: Int64) async throws -> Organization? {
        try await translate { try await pool.read { db in try Self.fetchOrganization(id: id, db) } }
    }

    static func fetchOrganization(id: Int64, _ db: Database) throws -> Organization? {
        try Row.fetchOne(db, sql: "SELECT \(Self.orgColumns) FROM orgs WHERE id = ?", arguments: [id]).map(Self.org)
    }

    public func organizations() async throws -> [Organization] {
        try await translate {
            try await pool.read { db in
                try Row.fetchAll(db, sql: "SELECT \(Self.orgColumns) FROM orgs ORDER BY id").map(Self.org)
            }
        }
    }

    public func createAPIKey(_ key: APIKeyRecord) async throws {
        do {
            try await pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO api_keys (id, org_id, name, hash, prefix, scopes, created_at, expires_at, revoked_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        key.id, key.orgID, key.name, Data(key.hash), key.prefix,
                        key.scopes.map(\.rawValue).sorted().joined(separator: ","), key.createdAt,
                        key.expiresAt, key.revokedAt,
                    ])
            }
        } catch let e as DatabaseError where e.resultCode == .SQLITE_CONSTRAINT {
            throw StoreError(.conflict, "an API key with this id or secret already exists")
        }
    }

    private static func key(_ r: Row) -> APIKeyRecord {
        let scopes = (r[5] as String).split(separator: ",").compactMap { Scope(rawValue: String($0)) }
        return APIKeyRecord(
            id: r[0], orgID: r[1], name: r[2], hash: [UInt8](r[3] as Data), prefix: r[4],
            scopes: Set(scopes), createdAt: r[6], expiresAt: r[7], revokedAt: r[8])
    }

    private static let keyColumns = "id, org_id, name, hash, prefix, scopes, created_at, expires_at, revoked_at"

    public func apiKey(hash: [UInt8]) async throws -> APIKeyRecord? {
        try await translate {
            try await pool.read { db in
                try Row.fetchOne(db, sql: "SELECT \(Self.keyColumns) FROM api_keys WHERE hash = ?", arguments: [Data(hash)])
                    .map(Self.key)
            }
        }
    }

    public func apiKeys(orgID: Int64?) async throws -> [APIKeyRecord] {
        try await translate {
            try await pool.read { db in
                if let orgID {
                    return try Row.fetchAll(
                        db, sql: "SELECT \(Self.keyColumns) FROM api_keys WHERE org_id = ? ORDER BY created_at",
                        arguments: [orgID]
                    ).map(Self.key)
                }
                return try Row.fetchAll(db, sql: "SELECT \(Self.keyColumns) FROM api_keys ORDER BY created_at").map(Self.key)
            }
        }
    }

    public func revokeAPIKey(id: String, at: Int64) async throws -> Bool {
        try await translate {
            try await pool.write { db in
                try db.execute(sql: "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", arguments: [at, id])
                return db.changesCount > 0
            }
        }
    }

}

/// Device-name claims (table `device_claims`).
extension SQLiteCatalog {
    public func claimDeviceName(orgID: Int64, installID: String, requested: String, at: Int64) async throws -> String {
        try await pool.write { db -> String in
            // The same install asking again for the same name, or for the name it was given.
            if let mine = try String.fetchOne(
                db,
                sql: """
                    SELECT source_id FROM device_claims WHERE org_id = ? AND install_id = ? AND (requested = ? OR source_id = ?)
                    ORDER BY source_id = ? DESC LIMIT 1
                    """, arguments: [orgID, installID, requested, requested, requested])
            {
                return mine
            }
            // One writer at a time: the first free name wins, and no two installs get it. One
            // indexed range read finds every name taken in the `requested_N` family.
            let taken = Set(
                try String.fetchAll(
                    db,
                    sql: """
                        SELECT source_id FROM device_claims
                        WHERE org_id = ? AND (source_id = ? OR (source_id >= ? AND source_id < ?))
                        """, arguments: [orgID, requested, requested + "_", requested + "`"]))
            var n = 1
            var candidate = requested
            while taken.contains(candidate) {
                n += 1
                candidate = "\(requested)_\(n)"
            }
            guard candidate.utf8.count <= Limits.maxSourceIDBytes else { throw StoreError(.conflict, "no free name for \(requested)") }
            try db.execute(
                sql: """
                    INSERT INTO device_claims (org_id, source_id, install_id, requested, claimed_at) VALUES (?, ?, ?, ?, ?)
                    """, arguments: [orgID, candidate, installID, requested, at])
            return candidate
        }
    }

    public func deviceClaims(orgID: Int64) async throws -> [DeviceClaim] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT source_id, install_id, requested, claimed_at FROM device_claims WHERE org_id = ? ORDER BY source_id
                    """, arguments: [orgID]
            ).map { DeviceClaim(sourceID: $0[0], installID: $0[1], requested: $0[2], claimedAt: $0[3]) }
        }
    }

    public func releaseDeviceClaim(orgID: Int64, sourceID: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM device_claims WHERE org_id = ? AND source_id = ?", arguments: [orgID, sourceID])
            return db.changesCount > 0
        }
    }
}
