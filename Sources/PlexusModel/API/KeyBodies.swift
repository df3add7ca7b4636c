/// Request and response bodies of `/api/keys` and of the SDKs' key check.

/// `POST /api/keys`.
public struct KeyRequest: Codable, Sendable, Equatable {
    public var name: String?
    /// Scope names (`read`, `write`, `admin`); default write and read.
    public var scopes: [String]?
    /// `30d`, `12h`, `15m`, `90s`; absent or null: never expires.
    public var expiresIn: String?

    public init(name: String?, scopes: [String]? = nil, expiresIn: String? = nil) {
        self.name = name
        self.scopes = scopes
        self.expiresIn = expiresIn
    }

    enum CodingKeys: String, CodingKey {
        case name, scopes
        case expiresIn = "expires_in"
    }
}

/// A key as listed; `key` (the secret) only in the answer that created it.
public struct KeyBody: Codable, Sendable, Equatable {
    public var key: String?
    public var id: String
    public var name: String
    /// The first characters of the secret, to tell keys apart.
    public var prefix: String
    public var scopes: [String]
    public var createdAt: String
    @Nullable public var expiresAt: String?
    @Nullable public var revokedAt: String?

    public init(
        key: String? = nil, id: String, name: String, prefix: String, scopes: [String], createdAt: String,
        expiresAt: String?, revokedAt: String?
    ) {
        self.key = key
        self.id = id
        self.name = name
        self.prefix = prefix
        self.scopes = scopes
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    enum CodingKeys: String, CodingKey {
        case key, id, name, prefix, scopes
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case revokedAt = "revoked_at"
    }
}

/// `GET /api/keys`.
public struct KeyList: Codable, Sendable, Equatable {
    public var keys: [KeyBody]

    public init(keys: [KeyBody]) { self.keys = keys }
}

/// `GET /api/auth/verify-key`: whose key this is and what it may do.
public struct KeyCheck: Codable, Sendable, Equatable {
    /// The organisation's name.
    public var orgID: String
    public var scopes: [String]

    public init(orgID: String, scopes: [String]) {
        self.orgID = orgID
        self.scopes = scopes
    }

    enum CodingKeys: String, CodingKey {
        case scopes
        case orgID = "org_id"
    }
}
