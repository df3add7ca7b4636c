/// Request and response bodies of the account routes (docs/http-api.md, "Accounts"):
/// sign-up and sign-in for people and terminals, password changes, invitations, members.
/// Request fields are optional here: a missing field gets the route's own "is required"
/// answer, a field of the wrong type a 400 naming it.

/// `POST /api/auth/signup` and `/api/auth/signin` (the dashboard), and the terminals'
/// `POST /api/auth/cli/signup` and `/signin` (`first_name` instead of `name`).
public struct LoginBody: Codable, Sendable, Equatable {
    public var email: String?
    public var password: String?
    public var name: String?
    public var firstName: String?
    /// An invitation token (`/invite/<token>`): join that organisation.
    public var invite: String?

    public init(email: String?, password: String?, name: String? = nil, firstName: String? = nil, invite: String? = nil) {
        self.email = email
        self.password = password
        self.name = name
        self.firstName = firstName
        self.invite = invite
    }

    enum CodingKeys: String, CodingKey {
        case email, password, name, invite
        case firstName = "first_name"
    }
}

/// `POST /api/auth/password`.
public struct PasswordChange: Codable, Sendable, Equatable {
    public var currentPassword: String?
    public var newPassword: String?

    public init(currentPassword: String?, newPassword: String?) {
        self.currentPassword = currentPassword
        self.newPassword = newPassword
    }

    enum CodingKeys: String, CodingKey {
        case currentPassword = "current_password"
        case newPassword = "new_password"
    }
}

/// A person as the API shows them.
public struct UserBody: Codable, Sendable, Equatable {
    public var id: Int64
    public var email: String
    public var name: String
    /// `owner`, `member` or `viewer`.
    public var role: String
    /// ISO-8601; in the member list only.
    public var createdAt: String?

    public init(id: Int64, email: String, name: String, role: String, createdAt: String? = nil) {
        self.id = id
        self.email = email
        self.name = name
        self.role = role
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id, email, name, role
        case createdAt = "created_at"
    }
}

/// `GET /api/auth/me`, and the answer to a dashboard sign-up or sign-in.
public struct SignedIn: Codable, Sendable, Equatable {
    public struct Org: Codable, Sendable, Equatable {
        public var id: Int64
        public var name: String

        public init(id: Int64, name: String) {
            self.id = id
            self.name = name
        }
    }

    public var user: UserBody
    public var org: Org
    /// Sent back in `X-CSRF-Token` by the dashboard's writes.
    public var csrfToken: String

    public init(user: UserBody, org: Org, csrfToken: String) {
        self.user = user
        self.org = org
        self.csrfToken = csrfToken
    }

    enum CodingKeys: String, CodingKey {
        case user, org
        case csrfToken = "csrf_token"
    }
}

/// A terminal's sign-up or sign-in answer: a new device key of the person's organisation.
public struct DeviceKeyGrant: Codable, Sendable, Equatable {
    public var apiKey: String
    /// The organisation's name (the original platform's `org_id`).
    public var orgID: String?

    public init(apiKey: String, orgID: String?) {
        self.apiKey = apiKey
        self.orgID = orgID
    }

    enum CodingKeys: String, CodingKey {
        case apiKey = "api_key"
        case orgID = "org_id"
    }
}

/// `POST /api/auth/cli/approve`: the signed-in page approves a terminal's login.
public struct TerminalApproval: Codable, Sendable, Equatable {
    public var state: String?
    /// A loopback `http://` address the terminal listens on.
    public var callback: String?
    /// The new key's name.
    public var name: String?

    public init(state: String?, callback: String?, name: String? = nil) {
        self.state = state
        self.callback = callback
        self.name = name
    }
}

/// `{"redirect": url}`.
public struct Redirect: Codable, Sendable, Equatable {
    public var redirect: String

    public init(redirect: String) { self.redirect = redirect }
}

/// `POST /api/invites`.
public struct InviteRequest: Codable, Sendable, Equatable {
    /// `member` (the default) or `viewer`.
    public var role: String?

    public init(role: String? = nil) { self.role = role }
}

/// An invitation: the answer to `POST /api/invites` (with `token` and `url`) and to
/// `GET /api/invites/<token>` (with `org`).
public struct InviteBody: Codable, Sendable, Equatable {
    public struct Org: Codable, Sendable, Equatable {
        public var name: String

        public init(name: String) { self.name = name }
    }

    public var token: String?
    public var url: String?
    public var org: Org?
    public var role: String
    public var expiresAt: String

    public init(token: String? = nil, url: String? = nil, org: Org? = nil, role: String, expiresAt: String) {
        self.token = token
        self.url = url
        self.org = org
        self.role = role
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case token, url, org, role
        case expiresAt = "expires_at"
    }
}

/// `GET /api/members`.
public struct MemberList: Codable, Sendable, Equatable {
    public var members: [UserBody]

    public init(members: [UserBody]) { self.members = members }
}

/// The body of every HTTP error: `{"error": message, "code": CODE}`; terminal logins add
/// `message` and put a code word in `error` (plexus-python 0.1.0 reads it so).
public struct ErrorBody: Codable, Sendable, Equatable {
    public var error: String
    public var code: String?
    public var message: String?

    public init(error: String, code: String?, message: String? = nil) {
        self.error = error
        self.code = code
        self.message = message
    }
}
