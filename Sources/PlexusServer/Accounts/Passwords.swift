import HummingbirdBcrypt
import NIOPosix

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

    static func hash(_ password: String) async throws -> String {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    static func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    /// A hash to verify against when the email is unknown, so both answers take as long.
    static let decoy = Bcrypt.hash("plexus-decoy-password", cost: cost)
}
