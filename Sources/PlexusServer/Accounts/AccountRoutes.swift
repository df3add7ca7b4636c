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
            let body = try await JSONBody.object(request, requireJSON: true)
            guard let current = body["current_password"] as? String, let new = body["new_password"] as? String else {
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

        // Terminals: `plexus start` (plexus-python 0.1.0 and ours) signs up or in with an
        // email and password and receives a device key.
        router.post("/api/auth/cli/signup") { request, _ in
            let (email, password, name) = try await credentials(request, nameField: "first_name")
            do {
                let user = try await createUser(email: email, password: password, name: name, invite: nil)
                return try await deviceKey(for: user, name: "plexus start (\(email))", status: .created)
            } catch let e as APIError where e.status == .conflict {
                throw cliError(.conflict, "account_exists", "an account with this email already exists: sign in")
            }
        }
        router.post("/api/auth/cli/signin") { request, context in
            let (email, password, _) = try await credentials(request, nameField: nil)
            let user = try await checkPassword(email: email, password: password, client: context.clientAddress, cli: true)
            return try await deviceKey(for: user, name: "plexus start (\(email))", status: .ok)
        }
        // The official SDK's `plexus init`/`plexus login` (0.4-0.14) opens
        // /auth/cli?state&callback&name in a browser; the signed-in page approves here.
        router.group(requiring: .write, state.auth).post("/api/auth/cli/approve") { request, context in
            let p = try context.caller
            guard let user = p.user else { throw APIError.forbidden("approving a terminal needs a signed-in person") }
            let body = try await JSONBody.object(request)
            guard let st = body["state"] as? String, !st.isEmpty, let cb = body["callback"] as? String else {
                throw APIError.badRequest("state and callback are required")
            }
            guard var callback = URLComponents(string: cb), callback.scheme == "http",
                let host = callback.host, ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host)
            else { throw APIError.badRequest("callback must be a loopback http:// address") }
            let name = (body["name"] as? String).flatMap { $0.isEmpty ? nil : String($0.prefix(utf8Bytes: 128)) } ?? "plexus-cli"
            let key = try await createKey(orgID: user.orgID, name: name, scopes: [.write, .read], expiresAt: nil)
            callback.queryItems =
                (callback.queryItems ?? []) + [
                    URLQueryItem(name: "state", value: st),
                    URLQueryItem(name: "key", value: key.secret),
                ]
            return Reply.json { w in
                w.raw("{\"redirect\":")
                w.string(callback.string ?? "")
                w.raw("}")
            }
        }

        router.group(requiring: .read, state.auth).get("/api/keys") { request, context in
            let p = try context.caller
            // Owners and members manage keys; viewers and keys without admin see none.
            guard p.user.map({ $0.role.scopes.contains(.write) }) ?? p.has(.admin) else {
                throw APIError.forbidden("listing keys needs a member or owner, or the admin scope")
            }
            let keys = try await state.store.apiKeys(orgID: p.orgID)
            return Reply.json { w in
                w.raw("{\"keys\":[")
                w.list(keys) { w, k in Self.write(k, to: &w) }
                w.raw("]}")
            }
        }
        router.group(requiring: .write, state.auth).post("/api/keys") { request, context in
            let p = try context.caller
            guard p.user != nil || p.has(.admin) else { throw APIError.forbidden("creating keys needs the admin scope") }
            let body = try await JSONBody.object(request)
            guard let name = body["name"] as? String, !name.isEmpty, name.utf8.count <= 128 else {
                throw APIError.badRequest("name is required (1-128 bytes)")
            }
            var scopes: Set<Scope> = [.write, .read]
            if let list = body["scopes"] {
                guard let names = list as? [String], !names.isEmpty else { throw APIError.badRequest("scopes must be a non-empty list") }
                scopes = try Set(
                    names.map { n in
                        guard let s = Scope(rawValue: n) else { throw APIError.badRequest("unknown scope \(n.prefix(32))") }
                        return s
                    })
            }
            guard scopes.allSatisfy(p.has) else { throw APIError.forbidden("a key cannot have scopes its creator lacks") }
            var expiresAt: Int64?
            if let e = body["expires_in"], !(e is NSNull) {
                guard let text = e as? String, let us = Timestamp.duration(text), us > 0 else {
                    throw APIError.badRequest("expires_in must look like 30d, 12h, 15m or 90s")
                }
                expiresAt = state.config.now() + us
            }
            let key = try await createKey(orgID: p.orgID, name: name, scopes: scopes, expiresAt: expiresAt)
            return Reply.json(status: .created) { w in
                w.raw("{\"key\":")
                w.string(key.secret)
                w.raw(",")
                Self.writeFields(key.record, to: &w)
                w.raw("}")
            }
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

        router.group(requiring: .admin, state.auth).post("/api/invites") { request, context in
            let p = try context.caller
            guard let user = p.user, user.role == .owner else { throw APIError.forbidden("only an owner can invite people") }
            let body = try await JSONBody.object(request)
            let role = Role(rawValue: body["role"] as? String ?? "member") ?? .member
            guard role != .owner else { throw APIError.badRequest("role must be member or viewer") }
            let token = LoginCookie.newToken()
            let now = state.config.now()
            let invite = InviteRecord(
                tokenHash: LoginCookie.hash(token), orgID: user.orgID, role: role, createdBy: user.id,
                createdAt: now, expiresAt: now + Self.inviteLifetime)
            try await state.store.createInvite(invite)
            return Reply.json(status: .created) { w in
                w.raw("{\"token\":")
                w.string(token)
                w.raw(",\"url\":")
                w.string("/invite/" + token)
                w.raw(",\"role\":")
                w.string(role.rawValue)
                w.raw(",\"expires_at\":")
                w.string(Times.iso(invite.expiresAt))
                w.raw("}")
            }
        }
        router.get("/api/invites/:token") { _, context in
            let token = try context.parameters.require("token")
            guard let invite = try await state.store.invite(tokenHash: LoginCookie.hash(token)),
                let org = try await state.store.organization(id: invite.orgID)
            else { throw APIError.notFound("no such invite") }
            guard invite.usedAt == nil, invite.expiresAt > state.config.now() else {
                throw APIError.gone("this invite has expired or was already used")
            }
            return Reply.json { w in
                w.raw("{\"org\":{\"name\":")
                w.string(org.name)
                w.raw("},\"role\":")
                w.string(invite.role.rawValue)
                w.raw(",\"expires_at\":")
                w.string(Times.iso(invite.expiresAt))
                w.raw("}")
            }
        }
        router.group(requiring: .read, state.auth).get("/api/members") { request, context in
            let p = try context.caller
            // People's emails are for people of the organisation (and admin keys), not for
            // the write/read keys that devices carry.
            guard p.user != nil || p.has(.admin) else {
                throw APIError.forbidden("listing members needs a signed-in person or the admin scope")
            }
            let users = try await state.store.users(orgID: p.orgID)
            return Reply.json { w in
                w.raw("{\"members\":[")
                w.list(users) { w, u in
                    w.raw("{")
                    Self.writeUser(u, to: &w)
                    w.raw(",\"created_at\":")
                    w.string(Times.iso(u.createdAt))
                    w.raw("}")
                }
                w.raw("]}")
            }
        }
    }

    /// Seven days.
    static let inviteLifetime: Int64 = 7 * 86_400 * 1_000_000

    // MARK: Sign up and in

    private func signUp(_ request: Request) async throws -> Response {
        try SameOrigin.check(request)
        let body = try await JSONBody.object(request, requireJSON: true)
        let (email, password) = try Self.emailAndPassword(body)
        let name = (body["name"] as? String).map { String($0.prefix(utf8Bytes: 128)) } ?? ""
        let invite = (body["invite"] as? String).flatMap { $0.isEmpty ? nil : $0 }
        let user = try await createUser(email: email, password: password, name: name, invite: invite)
        return try await startSession(user, request: request, status: .created)
    }

    private func signIn(_ request: Request, client: String) async throws -> Response {
        try SameOrigin.check(request)
        let body = try await JSONBody.object(request, requireJSON: true)
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
        return Reply.json(status: status) { w in
            w.raw("{\"user\":{")
            Self.writeUser(user, to: &w)
            w.raw("},\"org\":{\"id\":")
            w.int(user.orgID)
            w.raw(",\"name\":")
            w.string(org?.name ?? "")
            w.raw("},\"csrf_token\":")
            w.string(csrf)
            w.raw("}")
        }
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
        return Reply.json(status: status) { w in
            w.raw("{\"api_key\":")
            w.string(key.secret)
            w.raw(",\"org_id\":")
            w.string(org?.name ?? String(user.orgID))
            w.raw("}")
        }
    }

    // MARK: Bodies

    private func credentials(_ request: Request, nameField: String?) async throws -> (String, String, String) {
        try SameOrigin.check(request)
        let body = try await JSONBody.object(request, requireJSON: true)
        let (email, password) = try Self.emailAndPassword(body, checkRules: nameField != nil)
        let name = nameField.flatMap { body[$0] as? String }.map { String($0.prefix(utf8Bytes: 128)) } ?? ""
        return (email, password, name)
    }

    static func emailAndPassword(_ body: [String: Any], checkRules: Bool = true) throws -> (String, String) {
        guard let rawEmail = body["email"] as? String, let password = body["password"] as? String else {
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

    static func writeUser(_ u: UserRecord, to w: inout JSONWriter) {
        w.raw("\"id\":")
        w.int(u.id)
        w.raw(",\"email\":")
        w.string(u.email)
        w.raw(",\"name\":")
        w.string(u.name)
        w.raw(",\"role\":")
        w.string(u.role.rawValue)
    }

    static func write(_ k: APIKeyRecord, to w: inout JSONWriter) {
        w.raw("{")
        writeFields(k, to: &w)
        w.raw("}")
    }

    static func writeFields(_ k: APIKeyRecord, to w: inout JSONWriter) {
        w.raw("\"id\":")
        w.string(k.id)
        w.raw(",\"name\":")
        w.string(k.name)
        w.raw(",\"prefix\":")
        w.string(k.prefix)
        w.raw(",\"scopes\":")
        w.strings(k.scopes.map(\.rawValue).sorted())
        w.raw(",\"created_at\":")
        w.string(Times.iso(k.createdAt))
        w.raw(",\"expires_at\":")
        w.optionalString(k.expiresAt.map(Times.iso))
        w.raw(",\"revoked_at\":")
        w.optionalString(k.revokedAt.map(Times.iso))
    }
}
