public import HTTPTypes
public import PlexusStorage
import Synchronization

/// Who is calling: the organisation and scopes of the presented key, or of the person
/// signed in to the dashboard.
public struct Principal: Sendable, Hashable {
    public var orgID: Int64
    /// The API key's id; empty for a signed-in person.
    public var keyID: String
    public var scopes: Set<Scope>
    /// Set when the caller is a signed-in person (session cookie), not a key.
    public var user: UserRecord?

    public init(orgID: Int64, keyID: String, scopes: Set<Scope>, user: UserRecord? = nil) {
        self.orgID = orgID
        self.keyID = keyID
        self.scopes = scopes
        self.user = user
    }

    /// `admin` includes every other scope.
    public func has(_ scope: Scope) -> Bool { scopes.contains(scope) || scopes.contains(.admin) }
}

/// Checks API keys from `x-api-key` or `Authorization: Bearer`. Lookups are cached for
/// one second, so a key revoked from the command line stops working within a second (open
/// sockets are checked again by the gateway's `SocketWatch`, without this cache).
public final class Authenticator: Sendable {
    let store: any PlexusStore
    /// The wall clock, Unix µs: key expiry and login sessions.
    let clock: @Sendable () -> Int64
    /// A monotonic clock for the cache's TTL, so that a wall-clock step (NTP, a skewed test
    /// clock) can neither keep a stale entry alive nor expire every entry at once.
    let monotonic: @Sendable () -> Duration
    private let cache: Mutex<KeyCache>
    static let ttl: Duration = .seconds(1)
    /// Entries the cache holds at most (hashes of keys seen within the TTL).
    static let capacity = 10_000

    public convenience init(store: any PlexusStore, now: @escaping @Sendable () -> Int64) {
        let epoch = ContinuousClock.now
        self.init(store: store, now: now, monotonic: { epoch.duration(to: .now) })
    }

    init(
        store: any PlexusStore, now: @escaping @Sendable () -> Int64, monotonic: @escaping @Sendable () -> Duration,
        capacity: Int = Authenticator.capacity
    ) {
        self.store = store
        self.clock = now
        self.monotonic = monotonic
        cache = Mutex(KeyCache(capacity: capacity, ttl: Self.ttl))
    }

    static let apiKeyHeader = HTTPField.Name("x-api-key")!

    /// The key presented by a request, if any.
    public static func presentedKey(_ headers: HTTPFields) -> String? {
        if let k = headers[apiKeyHeader], !k.isEmpty { return k }
        if let auth = headers[.authorization] {
            let parts = auth.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return String(parts[1]).trimmingSpaces }
        }
        return nil
    }

    /// Verifies `key` and that it grants `scope`.
    public func authenticate(key: String?, scope: Scope) async throws -> Principal {
        guard let key, !key.isEmpty else { throw APIError.unauthorized("missing x-api-key") }
        let p = try await verify(key)
        guard p.has(scope) else { throw APIError.forbidden("API key lacks \(scope.rawValue) scope") }
        return p
    }

    /// Authenticates a request by its API key or, without one, by the dashboard's session
    /// cookie. A cookie alone never authorises a state-changing method: those also need
    /// the session's CSRF token in `x-csrf-token`.
    public func authenticate(_ head: HTTPRequest, scope: Scope) async throws -> Principal {
        if let key = Self.presentedKey(head.headerFields) { return try await authenticate(key: key, scope: scope) }
        guard let token = LoginCookie.token(in: head.headerFields) else { throw APIError.unauthorized("missing x-api-key") }
        let (session, user) = try await signedIn(token: token)
        if ![.get, .head, .options].contains(head.method) {
            guard let sent = head.headerFields[Self.csrfHeader], APIKeys.equal(Array(sent.utf8), Array(session.csrfToken.utf8)) else {
                throw APIError(.forbidden, "CSRF_TOKEN_INVALID", "missing or wrong x-csrf-token")
            }
        }
        let p = Principal(orgID: user.orgID, keyID: "", scopes: user.role.scopes, user: user)
        guard p.has(scope) else { throw APIError.forbidden("your role (\(user.role.rawValue)) cannot do this") }
        return p
    }

    static let csrfHeader = HTTPField.Name("x-csrf-token")!

    /// The login session and person behind a session cookie's token.
    public func signedIn(token: String) async throws -> (LoginSessionRecord, UserRecord) {
        guard let found = try await store.loginSession(tokenHash: LoginCookie.hash(token), now: clock()) else {
            throw APIError.unauthorized("not signed in")
        }
        return found
    }

    /// Verifies a key without a scope requirement.
    public func verify(_ key: String) async throws -> Principal {
        guard APIKeys.isWellFormed(key) else { throw APIError.unauthorized("invalid API key") }
        let hash = APIKeys.hash(key)
        let now = clock()
        let tick = monotonic()
        let record: APIKeyRecord?
        if let cached = cache.withLock({ $0.lookup(hash, at: tick) }) {
            record = cached
        } else {
            record = try await store.apiKey(hash: hash)
            let fetched = monotonic()
            cache.withLock { $0.insert(hash, record, at: fetched) }
        }
        guard let record, APIKeys.equal(record.hash, hash) else { throw APIError.unauthorized("invalid API key") }
        if record.revokedAt != nil { throw APIError.unauthorized("API key revoked") }
        if let exp = record.expiresAt, exp <= now { throw APIError.unauthorized("API key expired") }
        return Principal(orgID: record.orgID, keyID: record.id, scopes: record.scopes)
    }

    /// Forgets cached lookups (after a revoke through the API).
    public func invalidate() { cache.withLock { $0.removeAll() } }

    var cachedCount: Int { cache.withLock { $0.count } }
}

/// Key lookups (found or not) by key hash, each valid for `ttl` of monotonic time. At most
/// `capacity` entries: when full, expired entries go first, then the oldest, so a flood of
/// unknown keys cannot grow it, nor flush it wholesale.
struct KeyCache: Sendable {
    let capacity: Int
    let ttl: Duration
    private var entries: [[UInt8]: (record: APIKeyRecord?, fetched: Duration)] = [:]
    /// Insertion order, for eviction (may hold hashes already replaced or removed).
    private var order = FIFO<(hash: [UInt8], fetched: Duration)>()

    init(capacity: Int, ttl: Duration) {
        self.capacity = capacity
        self.ttl = ttl
    }

    var count: Int { entries.count }

    /// The cached lookup (`.some(nil)`: cached as unknown), or nil when absent or expired.
    func lookup(_ hash: [UInt8], at now: Duration) -> APIKeyRecord?? {
        guard let e = entries[hash], now - e.fetched < ttl, now >= e.fetched else { return nil }
        return .some(e.record)
    }

    mutating func insert(_ hash: [UInt8], _ record: APIKeyRecord?, at now: Duration) {
        // Oldest first: expired entries, then (when still full) the oldest live ones.
        while let head = order.first, entries.count >= capacity || now - head.fetched >= ttl {
            _ = order.popFirst()
            if entries[head.hash]?.fetched == head.fetched { entries[head.hash] = nil }
        }
        entries[hash] = (record, now)
        order.append((hash, now))
    }

    mutating func removeAll() {
        entries.removeAll()
        order = FIFO()
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
