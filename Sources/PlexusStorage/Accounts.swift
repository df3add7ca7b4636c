/// People who sign in to the dashboard, their login sessions and invitations.
/// Secrets (passwords, session tokens, invite tokens) are never stored: passwords as
/// bcrypt hashes, tokens as SHA-256 digests.

/// What a person may do in their organisation.
public enum Role: String, Sendable, Hashable, Codable, CaseIterable {
    /// Everything, including inviting people.
    case owner
    /// Read, write (control devices, record), manage API keys.
    case member
    /// Read only: sees devices, sessions and charts, controls nothing.
    case viewer

    /// The API scopes a signed-in person of this role has.
    public var scopes: Set<Scope> {
        switch self {
        case .owner: [.read, .write, .admin]
        case .member: [.read, .write]
        case .viewer: [.read]
        }
    }
}

public struct UserRecord: Sendable, Hashable {
    public var id: Int64
    public var orgID: Int64
    /// Lower-cased.
    public var email: String
    public var name: String
    /// bcrypt (`$2b$…`).
    public var passwordHash: String
    public var role: Role
    public var createdAt: Int64

    public init(id: Int64, orgID: Int64, email: String, name: String, passwordHash: String, role: Role, createdAt: Int64) {
        self.id = id
        self.orgID = orgID
        self.email = email
        self.name = name
        self.passwordHash = passwordHash
        self.role = role
        self.createdAt = createdAt
    }
}

/// A signed-in browser. The cookie holds the token; the store holds its SHA-256.
public struct LoginSessionRecord: Sendable, Hashable {
    public var tokenHash: [UInt8]
    public var userID: Int64
    /// Sent back by the page in `x-csrf-token` on every state-changing request.
    public var csrfToken: String
    public var createdAt: Int64
    public var expiresAt: Int64

    public init(tokenHash: [UInt8], userID: Int64, csrfToken: String, createdAt: Int64, expiresAt: Int64) {
        self.tokenHash = tokenHash
        self.userID = userID
        self.csrfToken = csrfToken
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// A one-time link that lets someone join an organisation with a role.
public struct InviteRecord: Sendable, Hashable {
    public var tokenHash: [UInt8]
    public var orgID: Int64
    public var role: Role
    public var createdBy: Int64
    public var createdAt: Int64
    public var expiresAt: Int64
    public var usedAt: Int64?

    public init(
        tokenHash: [UInt8], orgID: Int64, role: Role, createdBy: Int64, createdAt: Int64, expiresAt: Int64,
        usedAt: Int64? = nil
    ) {
        self.tokenHash = tokenHash
        self.orgID = orgID
        self.role = role
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.usedAt = usedAt
    }
}

/// A sign-up, carried out atomically by ``PlexusStore/createUser(_:)``.
public struct NewUser: Sendable, Hashable {
    /// Which organisation the new person joins.
    public enum Membership: Sendable, Hashable {
        /// The first person on a server becomes the owner of the `default` organisation;
        /// anyone after that becomes the owner of a new organisation with this name (made
        /// unique with `-2`, `-3`… when taken).
        case firstOrNewOrganization(name: String)
        /// Invite-only servers: only the very first person may sign up without an invite
        /// (and owns `default`); once anyone exists this is refused with `.forbidden`,
        /// decided in the same transaction so two strangers cannot both be first.
        case firstOnly
        /// An administrator (`plexus-server users create`) adds a person to an existing
        /// organisation with a role.
        case organization(id: Int64, role: Role)
        /// Through an invitation: its organisation and role. The invite must be unused
        /// and not expired at `createdAt`; it is used up by this sign-up.
        case invite(tokenHash: [UInt8])
    }

    public var email: String
    public var name: String
    public var passwordHash: String
    public var membership: Membership
    public var createdAt: Int64

    public init(email: String, name: String, passwordHash: String, membership: Membership, createdAt: Int64) {
        self.email = email
        self.name = name
        self.passwordHash = passwordHash
        self.membership = membership
        self.createdAt = createdAt
    }
}
