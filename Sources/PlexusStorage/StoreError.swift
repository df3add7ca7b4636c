public import PlexusModel

/// Errors a store reports. Engines translate their own errors (SQLite, Postgres) into
/// these at their boundary; nothing above storage sees an engine type.
public struct StoreError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public typealias Code = ErrorCode<StoreError>

    public let code: Code
    /// Safe for logs and clients: no payloads, SQL arguments or secrets.
    public let message: String
    public let underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { "\(code): \(message)" }
    public var debugDescription: String {
        underlying.map { "\(description) (cause: \(String(reflecting: $0)))" } ?? description
    }
}

extension ErrorCode where Domain == StoreError {
    public static let notFound = Self("notFound")
    public static let conflict = Self("conflict")
    /// A one-time resource that was used up or has expired (an invite).
    public static let gone = Self("gone")
    public static let invalidArgument = Self("invalidArgument")
    /// Refused by a rule of the server (sign-up closed, a quota reached).
    public static let forbidden = Self("forbidden")
    /// The store is shutting down or its write path failed; retry elsewhere/later.
    public static let unavailable = Self("unavailable")
    public static let corrupted = Self("corrupted")
    public static let internalError = Self("internal")
}
