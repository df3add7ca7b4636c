import HummingbirdBcrypt
import NIOPosix
import PlexusModel
public import PlexusStorage
import Synchronization

/// Password hashing with bcrypt, run on NIO's blocking thread pool: one hash takes a
/// few hundred milliseconds on purpose, and must not hold a cooperative-pool thread.
enum Passwords {
    /// bcrypt's work factor (2^cost rounds).
    static let cost: UInt8 = 12
    /// bcrypt reads at most 72 bytes; longer passwords are refused rather than cut.
    static let maxBytes = 72
    static let minCharacters = 8

    /// Throws a 400 naming the rule a new password breaks.
    static func validate(_ password: String) throws {
        guard password.count >= minCharacters else {
            throw APIError.badRequest("password must be at least \(minCharacters) characters", code: "INVALID_PASSWORD")
        }
        guard password.utf8.count <= maxBytes else {
            throw APIError.badRequest("password must be at most \(maxBytes) bytes", code: "INVALID_PASSWORD")
        }
    }

    /// bcrypt costs ~0.25 s of CPU on purpose, so anyone could keep every core busy with
    /// sign-in attempts: at most `gate.width` hashes run at once and `gate.queue` wait;
    /// beyond that the attempt is refused with 503 and `Retry-After`.
    static let gate = WorkGate(width: 2, queue: 32)

    static func hash(_ password: String) async throws -> String {
        try await gate.run { try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) } }
    }

    static func verify(_ password: String, hash: String) async throws -> Bool {
        try await gate.run { try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) } }
    }

    /// A hash to verify against when the email is unknown, so both answers take as long.
    static let decoy = Bcrypt.hash("plexus-decoy-password", cost: cost)
}

/// Runs at most `width` operations at once with at most `queue` more waiting in line;
/// a caller past that is refused at once (503) instead of piling up.
final class WorkGate: Sendable {
    let width: Int
    let queue: Int
    private struct State {
        var running = 0
        var waiting: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    init(width: Int, queue: Int) {
        self.width = width
        self.queue = queue
    }

    func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await enter()
        defer { leave() }
        return try await body()
    }

    private func enter() async throws {
        enum Decision { case go, wait, refuse }
        let d = state.withLock { s -> Decision in
            if s.running < width {
                s.running += 1
                return .go
            }
            return s.waiting.count < queue ? .wait : .refuse
        }
        switch d {
        case .go: return
        case .refuse: throw APIError.unavailable("the server is busy checking passwords; try again shortly")
        case .wait:
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    // A slot may have freed between the two locks.
                    if s.running < width {
                        s.running += 1
                        return true
                    }
                    s.waiting.append(c)
                    return false
                }
                if now { c.resume() }
            }
        }
    }

    private func leave() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            // A waiter takes over the slot as it is.
            if !s.waiting.isEmpty { return s.waiting.removeFirst() }
            s.running -= 1
            return nil
        }
        next?.resume()
    }
}

/// Administration that needs the server's account rules (`plexus-server users create`).
public enum PlexusAdmin {
    /// Adds a person with a password to an existing organisation, with the same password
    /// rules and hashing as sign-up.
    public static func createUser(
        email: String, name: String, password: String, role: Role, orgName: String,
        store: any TenantStore & AccountStore, now: Int64
    ) async throws -> UserRecord {
        let (email, _) = try AccountRoutes.emailAndPassword(LoginBody(email: email, password: password))
        guard let org = try await store.organization(named: orgName) else {
            throw StoreError(.notFound, "no organisation named \(orgName)")
        }
        let hash = try await Passwords.hash(password)
        return try await store.createUser(
            NewUser(
                email: email, name: String(name.prefix(utf8Bytes: 128)), passwordHash: hash,
                membership: .organization(id: org.id, role: role), createdAt: now)
        ).0
    }
}
