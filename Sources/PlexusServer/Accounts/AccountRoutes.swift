import Foundation
import HTTPTypes
import Hummingbird
import PlexusModel
import PlexusStorage

/// Accounts for the web dashboard and for terminals: sign up, sign in and out, password,
/// API keys, invitations, members, and the two terminal logins (`plexus start`'s email
/// and password, and the official SDK's browser approval).
struct AccountRoutes {
    let state: ServerState
    let throttle = LoginThrottle()

    func register(_ router: Router<PlexusRequestContext>) {
        registerPeople(router)
        registerTerminals(router)
        registerKeys(router)
        registerMembers(router)
    }

    /// The dashboard's sign-up, sign-in and out, and password change.
    private func registerPeople(_ router: Router<PlexusRequestContext>) {
        router.post("/api/auth/signup") { request, _ in try await signUp(request) }
        router.post("/api/auth/signin") { request, context in try await signIn(request, client: context.clientAddress) }
        router.post("/api/auth/signout") { request, _ in
            try SameOrigin.check(request)
            if let token = LoginCookie.token(in: request.headers) {
                try await state.store.deleteLoginSession(tokenHash: LoginCookie.hash(token))
            }
            var r = Response(status: .noContent)
            r.headers[.setCookie] = LoginCookie.setCookie(nil, secure: secure(request))
            return r
        }
        router.get("/api/auth/me") { request, _ in
            guard let token = LoginCookie.token(in: request.headers) else { throw APIError.unauthorized("not signed in") }
            let (session, user) = try await state.auth.signedIn(token: token)
            return try await me(user, csrf: session.csrfToken, status: .ok)
        }
        router.group(requiring: .read, state.auth).post("/api/auth/password") { request, context in
            let p = try context.caller
            guard let user = p.user, let token = LoginCookie.token(in: request.headers) else {
                throw APIError.forbidden("sign in to change your password")
            }
            let body = try await JSONBody.decode(PasswordChange.self, from: request, requireJSON: true)
            guard let current = body.currentPassword, let new = body.newPassword else {
                throw APIError.badRequest("current_password and new_password are required")
            }
            guard try await Passwords.verify(current, hash: user.passwordHash) else {
                throw APIError(.forbidden, "INVALID_CREDENTIALS", "the current password is wrong")
            }
            try Passwords.validate(new)
            try await state.store.updatePassword(
                userID: user.id, passwordHash: try await Passwords.hash(new),
                keeping: LoginCookie.hash(token))
            return Response(status: .noContent)
        }
    }

    /// Terminals: `plexus start` (plexus-python 0.1.0 and ours) signs up or in with an email
    /// and password and receives a device key; the official SDK's `plexus init`/`plexus
    /// login` (0.4-0.14) opens /auth/cli?state&callback&name in a browser, and the
    /// signed-in page approves here.
    private func registerTerminals(_ router: Router<PlexusRequestContext>) {
        router.post("/api/auth/cli/signup") { request, _ in
            let (email, password, body) = try await credentials(request, checkRules: true)
            let name = body.firstName.map { String($0.prefix(utf8Bytes: 128)) } ?? ""
            do {
                let user = try await createUser(email: email, password: password, name: name, invite: nil)
                return try await deviceKey(for: user, name: "plexus start (\(email))", status: .created)
            } catch  where (error as? StoreError)?.code == .conflict || (error as? APIError)?.status == .conflict {
                // The store reports a taken email as a conflict; an invite check as an APIError.
                throw cliError(.conflict, "account_exists", "an account with this email already exists: sign in")
            }
        }
        router.post("/api/auth/cli/signin") { request, context in
            let (email, password, _) = try await credentials(request, checkRules: false)
            let user = try await checkPassword(email: email, password: password, client: context.clientAddress, cli: true)
            return try await deviceKey(for: user, name: "plexus start (\(email))", status: .ok)
        }
        router.group(requiring: .write, state.auth).post("/api/auth/cli/approve") { request, context in
            let p = try context.caller
            guard let user = p.user else { throw APIError.forbidden("approving a terminal needs a signed-in person") }
            let body = try await JSONBody.decode(TerminalApproval.self, from: request)
            guard let st = body.state, !st.isEmpty, let cb = body.callback else {
                throw APIError.badRequest("state and callback are required")
            }
            guard var callback = URLComponents(string: cb), callback.scheme == "http",
                let host = callback.host, ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host)
            else { throw APIError.badRequest("callback must be a loopback http:// address") }
            let name = body.name.flatMap { $0.isEmpty ? nil : String($0.prefix(utf8Bytes: 128)) } ?? "plexus-cli"
            let key = try await createKey(orgID: user.orgID, name: name, scopes: [.write, .read], expiresAt: nil)
            callback.queryItems =
                (callback.queryItems ?? []) + [
                    URLQueryItem(name: "state", value: st),
                    URLQueryItem(name: "key", value: key.secret),
                ]
            return try Reply.json(Redirect(redirect: callback.string ?? ""))
        }
    }

    /// API keys: listed by members and owners, created and revoked within the creator's scopes.
    private func registerKeys(_ router: Router<PlexusRequestContext>) {
        router.group(requiring: .read, state.auth).get("/api/keys") { request, context in
            let p = try context.caller
            // Owners and members manage keys; viewers and keys without admin see none.
            guard p.user.map({ $0.role.scopes.contains(.write) }) ?? p.has(.admin) else {
                throw APIError.forbidden("listing keys needs a member or owner, or the admin scope")
            }
            let keys = try await state.store.apiKeys(orgID: p.orgID)
            return try Reply.json(KeyList(keys: keys.map { Self.body($0) }))
        }
        router.group(requiring: .write, state.auth).post("/api/keys") { request, context in
            let p = try context.caller
            guard p.user != nil || p.has(.admin) else { throw APIError.forbidden("creating keys needs the admin scope") }
            let body = try await JSONBody.decode(KeyRequest.self, from: request)
            guard let name = body.name, !name.isEmpty, name.utf8.count <= 128 else {
                throw APIError.badRequest("name is required (1-128 bytes)")
            }
            var scopes: Set<Scope> = [.write, .read]
            if let names = body.scopes {
                guard !names.isEmpty else { throw APIError.badRequest("scopes must be a non-empty list") }
                scopes = try Set(
                    names.map { n in
                        guard let s = Scope(rawValue: n) else { throw APIError.badRequest("unknown scope \(n.prefix(32))") }
                        return s
                    })
            }
            guard scopes.allSatisfy(p.has) else { throw APIError.forbidden("a key cannot have scopes its creator lacks") }
            var expiresAt: Int64?
            if let text = body.expiresIn {
                guard let us = Timestamp.duration(text), us > 0 else {
                    throw APIError.badRequest("expires_in must look like 30d, 12h, 15m or 90s")
                }
                let (at, overflow) = state.config.now().addingReportingOverflow(us)
                guard !overflow, Timestamp.isValid(at) else { throw APIError.badRequest("expires_in " + Timestamp.rangeMessage) }
                expiresAt = at
            }
            let key = try await createKey(orgID: p.orgID, name: name, scopes: scopes, expiresAt: expiresAt)
            return try Reply.json(Self.body(key.record, secret: key.secret), status: .created)
        }
        router.group(requiring: .write, state.auth).delete("/api/keys/:id") { request, context in
            let p = try context.caller
            guard p.user != nil || p.has(.admin) else { throw APIError.forbidden("revoking keys needs the admin scope") }
            let id = try context.parameters.require("id")
            // Only a key of the caller's own organisation; another's is "not found".
            guard let key = try await state.store.apiKeys(orgID: p.orgID).first(where: { $0.id == id }) else {
                throw APIError.notFound("no such key")
            }
            // As for creating one: nobody revokes a key with scopes they lack (a member
            // cannot revoke an owner's admin key).
            guard key.scopes.allSatisfy(p.has) else { throw APIError.forbidden("a key with scopes you lack cannot be revoked by you") }
            guard try await state.store.revokeAPIKey(id: id, at: state.config.now()) else { throw APIError.notFound("no such key") }
            state.auth.invalidate()
            return Response(status: .noContent)
        }
    }

    /// Invitations (owners) and the member list.
    private func registerMembers(_ router: Router<PlexusRequestContext>) {
        router.group(requiring: .admin, state.auth).post("/api/invites") { request, context in
            let p = try context.caller
            guard let user = p.user, user.role == .owner else { throw APIError.forbidden("only an owner can invite people") }
            let body = try await JSONBody.decode(InviteRequest.self, from: request)
            let role = Role(rawValue: body.role ?? "member") ?? .member
            guard role != .owner else { throw APIError.badRequest("role must be member or viewer") }
            let token = LoginCookie.newToken()
            let now = state.config.now()
            let invite = InviteRecord(
                tokenHash: LoginCookie.hash(token), orgID: user.orgID, role: role, createdBy: user.id,
                createdAt: now, expiresAt: now + Self.inviteLifetime)
            try await state.store.createInvite(invite)
            return try Reply.json(
                InviteBody(token: token, url: "/invite/" + token, role: role.rawValue, expiresAt: Times.iso(invite.expiresAt)),
                status: .created)
        }
        router.get("/api/invites/:token") { _, context in
            let token = try context.parameters.require("token")
            guard let invite = try await state.store.invite(tokenHash: LoginCookie.hash(token)),
                let org = try await state.store.organization(id: invite.orgID)
            else { throw APIError.notFound("no such invite") }
            guard invite.usedAt == nil, invite.expiresAt > state.config.now() else {
                throw APIError.gone("this invite has expired or was already used")
            }
            return try Reply.json(
                InviteBody(org: .init(name: org.name), role: invite.role.rawValue, expiresAt: Times.iso(invite.expiresAt)))
        }
        router.group(requiring: .read, state.auth).get("/api/members") { request, context in
            let p = try context.caller
            // People's emails are for people of the organisation (and admin keys), not for
            // the write/read keys that devices carry.
            guard p.user != nil || p.has(.admin) else {
                throw APIError.forbidden("listing members needs a signed-in person or the admin scope")
            }
            let users = try await state.store.users(orgID: p.orgID)
            return try Reply.json(MemberList(members: users.map { Self.body($0, withCreatedAt: true) }))
        }
    }

    /// Seven days.
    static let inviteLifetime: Int64 = 7 * 86_400 * 1_000_000

    // MARK: Sign up and in

    private func signUp(_ request: Request) async throws -> Response {
        try SameOrigin.check(request)
        let body = try await JSONBody.decode(LoginBody.self, from: request, requireJSON: true)
        let (email, password) = try Self.emailAndPassword(body)
        let name = body.name.map { String($0.prefix(utf8Bytes: 128)) } ?? ""
        let invite = body.invite.flatMap { $0.isEmpty ? nil : $0 }
        let user = try await createUser(email: email, password: password, name: name, invite: invite)
        return try await startSession(user, request: request, status: .created)
    }

    private func signIn(_ request: Request, client: String) async throws -> Response {
        try SameOrigin.check(request)
        let body = try await JSONBody.decode(LoginBody.self, from: request, requireJSON: true)
        let (email, password) = try Self.emailAndPassword(body, checkRules: false)
        let user = try await checkPassword(email: email, password: password, client: client, cli: false)
        return try await startSession(user, request: request, status: .ok)
    }

    private func createUser(email: String, password: String, name: String, invite: String?) async throws -> UserRecord {
        try Passwords.validate(password)
        let hash = try await Passwords.hash(password)
        let local = email.split(separator: "@").first.map(String.init) ?? "org"
        let orgName = String(local.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }.prefix(48))
        // Without an invite: anyone gets an organisation of their own only where sign-up
        // is open (`--open-signup`); otherwise only the server's first person, who owns it.
        let membership: NewUser.Membership =
            invite.map { .invite(tokenHash: LoginCookie.hash($0)) }
            ?? (state.config.openSignup ? .firstOrNewOrganization(name: orgName.isEmpty ? "org" : orgName) : .firstOnly)
        do {
            return try await state.store.createUser(
                NewUser(
                    email: email, name: name, passwordHash: hash,
                    membership: membership, createdAt: state.config.now())
            ).0
        } catch let e as StoreError where e.code == .notFound {
            throw APIError.notFound("no such invite")
        }
    }

    /// The person with this email and password, or the error: rate limited, or wrong (an
    /// unknown email and a wrong password get the same answer, in the same time).
    private func checkPassword(email: String, password: String, client: String, cli: Bool) async throws -> UserRecord {
        let now = state.config.now()
        if let wait = throttle.retryAfter(email, client: client, now: now) {
            throw APIError(
                .tooManyRequests, "RATE_LIMITED", "too many failed sign-ins; try again later",
                headers: [.retryAfter: String(wait)])
        }
        let user = try await state.store.user(email: email)
        // Verify against a decoy when the email is unknown, so timing does not tell.
        let ok = try await Passwords.verify(password, hash: user?.passwordHash ?? Passwords.decoy)
        guard let user, ok else {
            throttle.failed(email, client: client, now: now)
            if cli { throw cliError(.unauthorized, "invalid_credentials", "wrong email or password (or no account: sign up)") }
            throw APIError(.unauthorized, "INVALID_CREDENTIALS", "wrong email or password")
        }
        throttle.succeeded(email, client: client)
        return user
    }

    private func startSession(_ user: UserRecord, request: Request, status: HTTPResponse.Status) async throws -> Response {
        let token = LoginCookie.newToken()
        let csrf = LoginCookie.newToken()
        let now = state.config.now()
        try await state.store.createLoginSession(
            LoginSessionRecord(
                tokenHash: LoginCookie.hash(token), userID: user.id, csrfToken: csrf, createdAt: now, expiresAt: now + LoginCookie.lifetime)
        )
        var r = try await me(user, csrf: csrf, status: status)
        r.headers[.setCookie] = LoginCookie.setCookie(token, secure: secure(request))
        return r
    }

    private func me(_ user: UserRecord, csrf: String, status: HTTPResponse.Status) async throws -> Response {
        let org = try await state.store.organization(id: user.orgID)
        return try Reply.json(
            SignedIn(user: Self.body(user), org: .init(id: user.orgID, name: org?.name ?? ""), csrfToken: csrf), status: status)
    }

    private func secure(_ request: Request) -> Bool { LoginCookie.isSecure(request.head, forced: state.config.secureCookies) }

    // MARK: Keys

    private func createKey(orgID: Int64, name: String, scopes: Set<Scope>, expiresAt: Int64?) async throws
        -> (secret: String, record: APIKeyRecord)
    {
        let secret = APIKeys.generate()
        let record = APIKeys.record(
            key: secret, orgID: orgID, name: name, scopes: scopes, now: state.config.now(),
            expiresAt: expiresAt)
        try await state.store.createAPIKey(record)
        return (secret, record)
    }

    /// `{api_key, org_id}` for a terminal: a new write+read key of the person's organisation.
    private func deviceKey(for user: UserRecord, name: String, status: HTTPResponse.Status) async throws -> Response {
        guard user.role.scopes.contains(.write) else {
            throw cliError(.forbidden, "forbidden", "your role (\(user.role.rawValue)) cannot connect devices")
        }
        let key = try await createKey(orgID: user.orgID, name: name, scopes: [.write, .read], expiresAt: nil)
        let org = try await state.store.organization(id: user.orgID)
        return try Reply.json(DeviceKeyGrant(apiKey: key.secret, orgID: org?.name ?? String(user.orgID)), status: status)
    }

    // MARK: Bodies

    private func credentials(_ request: Request, checkRules: Bool) async throws -> (String, String, LoginBody) {
        try SameOrigin.check(request)
        let body = try await JSONBody.decode(LoginBody.self, from: request, requireJSON: true)
        let (email, password) = try Self.emailAndPassword(body, checkRules: checkRules)
        return (email, password, body)
    }

    static func emailAndPassword(_ body: LoginBody, checkRules: Bool = true) throws -> (String, String) {
        guard let rawEmail = body.email, let password = body.password else {
            throw APIError.badRequest("email and password are required")
        }
        let email = rawEmail.trimmingSpaces.lowercased()
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), email.utf8.count <= 254,
            !email.contains(where: { $0.isWhitespace })
        else { throw APIError.badRequest("email must look like name@example.com", code: "INVALID_EMAIL") }
        if checkRules { try Passwords.validate(password) }
        return (email, password)
    }

    /// The terminal logins' error shape: plexus-python 0.1.0 reads `error` as a code word
    /// (`no_account`, `invalid_credentials`) and shows `message`.
    private func cliError(_ status: HTTPResponse.Status, _ word: String, _ message: String) -> APIError {
        APIError(status, word.uppercased(), message, bodyError: word)
    }

    static func body(_ u: UserRecord, withCreatedAt: Bool = false) -> UserBody {
        UserBody(id: u.id, email: u.email, name: u.name, role: u.role.rawValue, createdAt: withCreatedAt ? Times.iso(u.createdAt) : nil)
    }

    static func body(_ k: APIKeyRecord, secret: String? = nil) -> KeyBody {
        KeyBody(
            key: secret, id: k.id, name: k.name, prefix: k.prefix, scopes: k.scopes.map(\.rawValue).sorted(),
            createdAt: Times.iso(k.createdAt), expiresAt: k.expiresAt.map(Times.iso), revokedAt: k.revokedAt.map(Times.iso))
    }
}
