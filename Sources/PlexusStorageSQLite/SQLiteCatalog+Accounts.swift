import Foundation
import GRDB
public import PlexusStorage

/// People, login sessions and invites (tables `users`, `login_sessions`, `invites`).
extension SQLiteCatalog {
    private static let userColumns = "id, org_id, email, name, password_hash, role, created_at"

    private static func user(_ r: Row) -> UserRecord {
        UserRecord(
            id: r[0], orgID: r[1], email: r[2], name: r[3], passwordHash: r[4],
            role: PlexusStorage.Role(rawValue: r[5]) ?? .viewer, createdAt: r[6])
    }

    public func createUser(_ new: NewUser) async throws -> (UserRecord, Organization) {
        let email = new.email.lowercased()
        return try await translate {
            try await pool.write { db -> (UserRecord, Organization) in
                if try Bool.fetchOne(db, sql: "SELECT 1 FROM users WHERE email = ?", arguments: [email]) ?? false {
                    throw StoreError(.conflict, "an account with this email already exists")
                }
                let orgID: Int64
                let role: PlexusStorage.Role
                switch new.membership {
                case .firstOrNewOrganization(let name):
                    let anyone = try Bool.fetchOne(db, sql: "SELECT 1 FROM users LIMIT 1") ?? false
                    if !anyone, let def = try Int64.fetchOne(db, sql: "SELECT id FROM orgs WHERE name = 'default'") {
                        orgID = def
                    } else {
                        var candidate = name
                        var n = 1
                        while try Bool.fetchOne(db, sql: "SELECT 1 FROM orgs WHERE name = ?", arguments: [candidate]) ?? false {
                            n += 1
                            candidate = "\(name)-\(n)"
                        }
                        try db.execute(
                            sql: "INSERT INTO orgs (name, created_at) VALUES (?, ?)",
                            arguments: [candidate, new.createdAt])
                        orgID = db.lastInsertedRowID
                    }
                    role = .owner
                case .firstOnly:
                    guard !(try Bool.fetchOne(db, sql: "SELECT 1 FROM users LIMIT 1") ?? false),
                        let def = try Int64.fetchOne(db, sql: "SELECT id FROM orgs WHERE name = 'default'")
                    else { throw StoreError(.forbidden, "sign-up is by invitation on this server") }
                    orgID = def
                    role = .owner
                case .organization(let id, let r):
                    guard try Bool.fetchOne(db, sql: "SELECT 1 FROM orgs WHERE id = ?", arguments: [id]) ?? false else {
                        throw StoreError(.notFound, "no such organisation")
                    }
                    orgID = id
                    role = r
                case .invite(let tokenHash):
                    guard
                        let row = try Row.fetchOne(
                            db, sql: "SELECT org_id, role, expires_at, used_at FROM invites WHERE token_hash = ?",
                            arguments: [Data(tokenHash)])
                    else { throw StoreError(.notFound, "unknown invite") }
                    let expires: Int64 = row[2]
                    let used: Int64? = row[3]
                    guard used == nil, expires > new.createdAt else {
                        throw StoreError(.gone, "this invite has expired or was already used")
                    }
                    try db.execute(
                        sql: "UPDATE invites SET used_at = ? WHERE token_hash = ?",
                        arguments: [new.createdAt, Data(tokenHash)])
                    orgID = row[0]
                    role = PlexusStorage.Role(rawValue: row[1]) ?? .viewer
                }
                try db.execute(
                    sql: """
                        INSERT INTO users (org_id, email, name, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?, ?)
                        """, arguments: [orgID, email, new.name, new.passwordHash, role.rawValue, new.createdAt])
                let user = UserRecord(
                    id: db.lastInsertedRowID, orgID: orgID, email: email, name: new.name,
                    passwordHash: new.passwordHash, role: role, createdAt: new.createdAt)
                let org = try Self.fetchOrganization(id: orgID, db)
                guard let org else { throw StoreError(.internalError, "organisation vanished") }
                return (user, org)
            }
        }
    }

    public func user(email: String) async throws -> UserRecord? {
        try await translate {
            try await pool.read { db in
                try Row.fetchOne(
                    db, sql: "SELECT \(Self.userColumns) FROM users WHERE email = ?",
                    arguments: [email.lowercased()]
                ).map(Self.user)
            }
        }
    }

    public func user(id: Int64) async throws -> UserRecord? {
        try await translate {
            try await pool.read { db in
                try Row.fetchOne(db, sql: "SELECT \(Self.userColumns) FROM users WHERE id = ?", arguments: [id]).map(Self.user)
            }
        }
    }

    public func users(orgID: Int64) async throws -> [UserRecord] {
        try await translate {
            try await pool.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT \(Self.userColumns) FROM users WHERE org_id = ? ORDER BY created_at, id",
                    arguments: [orgID]
                ).map(Self.user)
            }
        }
    }

    public func updatePassword(userID: Int64, passwordHash: String, keeping: [UInt8]?) async throws {
        try await translate {
            try await pool.write { db in
                try db.execute(sql: "UPDATE users SET password_hash = ? WHERE id = ?", arguments: [passwordHash, userID])
                guard db.changesCount > 0 else { throw StoreError(.notFound, "unknown user") }
                try db.execute(
                    sql: "DELETE FROM login_sessions WHERE user_id = ? AND token_hash IS NOT ?",
                    arguments: [userID, keeping.map { Data($0) }])
            }
        }
    }

    public func createLoginSession(_ s: LoginSessionRecord) async throws {
        try await translate {
            try await pool.write { db in
                // Expired sessions are swept here, so the table never grows without bound.
                try db.execute(sql: "DELETE FROM login_sessions WHERE expires_at <= ?", arguments: [s.createdAt])
                try db.execute(
                    sql: """
                        INSERT INTO login_sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
                        """, arguments: [Data(s.tokenHash), s.userID, s.csrfToken, s.createdAt, s.expiresAt])
            }
        }
    }

    public func loginSession(tokenHash: [UInt8], now: Int64) async throws -> (LoginSessionRecord, UserRecord)? {
        try await translate {
            try await pool.read { db -> (LoginSessionRecord, UserRecord)? in
                guard
                    let r = try Row.fetchOne(
                        db,
                        sql: """
                            SELECT s.user_id, s.csrf_token, s.created_at, s.expires_at,
                                   u.id, u.org_id, u.email, u.name, u.password_hash, u.role, u.created_at
                            FROM login_sessions s JOIN users u ON u.id = s.user_id
                            WHERE s.token_hash = ? AND s.expires_at > ?
                            """, arguments: [Data(tokenHash), now])
                else { return nil }
                let session = LoginSessionRecord(tokenHash: tokenHash, userID: r[0], csrfToken: r[1], createdAt: r[2], expiresAt: r[3])
                let user = UserRecord(
                    id: r[4], orgID: r[5], email: r[6], name: r[7], passwordHash: r[8],
                    role: PlexusStorage.Role(rawValue: r[9]) ?? .viewer, createdAt: r[10])
                return (session, user)
            }
        }
    }

    public func deleteLoginSession(tokenHash: [UInt8]) async throws {
        try await translate {
            try await pool.write { db in
                try db.execute(sql: "DELETE FROM login_sessions WHERE token_hash = ?", arguments: [Data(tokenHash)])
            }
        }
    }

    public func createInvite(_ i: InviteRecord) async throws {
        try await translate {
            try await pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO invites (token_hash, org_id, role, created_by, created_at, expires_at, used_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """, arguments: [Data(i.tokenHash), i.orgID, i.role.rawValue, i.createdBy, i.createdAt, i.expiresAt, i.usedAt])
            }
        }
    }

    public func invite(tokenHash: [UInt8]) async throws -> InviteRecord? {
        try await translate {
            try await pool.read { db in
                try Row.fetchOne(
                    db,
                    sql: """
                        SELECT org_id, role, created_by, created_at, expires_at, used_at FROM invites WHERE token_hash = ?
                        """, arguments: [Data(tokenHash)]
                ).map {
                    InviteRecord(
                        tokenHash: tokenHash, orgID: $0[0], role: PlexusStorage.Role(rawValue: $0[1]) ?? .viewer, createdBy: $0[2],
                        createdAt: $0[3], expiresAt: $0[4], usedAt: $0[5])
                }
            }
        }
    }
}
