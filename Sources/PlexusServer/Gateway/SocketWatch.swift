import PlexusStorage
import ServiceLifecycle

/// What opened a live connection, kept so that it can be checked again while the socket
/// is open: hashes only, never the secret.
enum LiveCredential: Hashable, Sendable {
    /// An API key (devices, and dashboards that sign in with a key).
    case apiKey(hash: [UInt8])
    /// A dashboard login: the session cookie's token hash.
    case login(tokenHash: [UInt8])
}

/// Credentials are checked when a socket opens, and again while it stays open: every
/// ``interval`` this service takes the distinct credentials of the open sockets, looks
/// each up **in the store** (not through the authenticator's cache, and so also seeing a
/// `plexus-server keys revoke` run by another process), and ends the sockets of those no
/// longer valid (an `UNAUTHORIZED` error, then close 1008): a revoked or expired key, a
/// login session that was signed out or ended by a password change, a person removed (the
/// session no longer finds its user), or one whose organisation or role no longer grants
/// what the socket was let in with. A store error leaves the sockets alone until the
/// next pass. It also drops dashboards whose writer is stalled (``LiveQueue``).
struct SocketWatch: Service {
    let hub: Hub
    let store: any PlexusStore
    /// Unix µs (login sessions and keys expire by the wall clock).
    let now: @Sendable () -> Int64
    var interval: Duration = .milliseconds(500)

    /// Until shutdown; the sockets close with the server.
    func run() async throws {
        try await everyInterval(interval) { await sweep() }
    }

    /// One pass: stalled dashboards, then credentials.
    func sweep() async {
        for c in hub.stalledDashboards() { c.terminate(.stalled) }
        let open = hub.openConnections()
        guard !open.isEmpty else { return }
        var verdicts: [LiveCredential: Verdict] = [:]
        for credential in Set(open.map(\.credential)) { verdicts[credential] = await check(credential) }
        for c in open {
            if let message = verdicts[c.credential]?.refusal(orgID: c.orgID, needsWrite: c.needsWrite) {
                c.control.terminate(.credential(message))
            }
        }
    }

    /// What the store says of a credential now.
    enum Verdict: Sendable, Equatable {
        case valid(orgID: Int64, scopes: Set<Scope>)
        case invalid(String)
        /// The store could not answer: decide on the next pass.
        case unknown

        /// Why a connection of `orgID` let in with (or without) write must end; nil if it may stay.
        func refusal(orgID: Int64, needsWrite: Bool) -> String? {
            switch self {
            case .unknown: return nil
            case .invalid(let message): return message
            case .valid(let org, let scopes):
                let has = { (s: Scope) in scopes.contains(s) || scopes.contains(.admin) }
                if org != orgID { return "credentials no longer belong to this organisation" }
                if needsWrite ? !has(.write) : !has(.read) { return "credentials no longer grant this connection's scope" }
                return nil
            }
        }
    }

    func check(_ credential: LiveCredential) async -> Verdict {
        do {
            switch credential {
            case .apiKey(let hash):
                guard let key = try await store.apiKey(hash: hash), APIKeys.equal(key.hash, hash) else {
                    return .invalid("API key removed")
                }
                if key.revokedAt != nil { return .invalid("API key revoked") }
                if let exp = key.expiresAt, exp <= now() { return .invalid("API key expired") }
                return .valid(orgID: key.orgID, scopes: key.scopes)
            case .login(let tokenHash):
                // Gone when signed out, ended by a password change, expired, or when the
                // person was removed (the session no longer joins a user).
                guard let (_, user) = try await store.loginSession(tokenHash: tokenHash, now: now()) else {
                    return .invalid("signed out")
                }
                return .valid(orgID: user.orgID, scopes: user.role.scopes)
            }
        } catch {
            return .unknown
        }
    }
}
