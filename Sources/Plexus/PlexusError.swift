public import PlexusModel

/// Why the SDK could not do something. `code` is stable; `message` is safe to log.
public typealias PlexusError = CodedError<PlexusErrorDomain>

/// The domain of ``PlexusError``'s codes.
public enum PlexusErrorDomain: Sendable {}

extension ErrorCode where Domain == PlexusErrorDomain {
    /// No API key could be found.
    public static let notConfigured = Self("notConfigured")
    public static let invalidArgument = Self("invalidArgument")
    /// 401: the key is missing, unknown, revoked or expired. Not retried.
    public static let unauthorized = Self("unauthorized")
    /// 403: the key lacks the write scope. Not retried.
    public static let forbidden = Self("forbidden")
    /// 400: the server refused the data (the message says which point). Not retried.
    public static let rejected = Self("rejected")
    /// The server could not be reached or kept failing after the retries.
    public static let unavailable = Self("unavailable")
    /// The client was closed.
    public static let closed = Self("closed")
}
