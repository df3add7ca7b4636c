/// Why the SDK could not do something. `code` is stable; `message` is safe to log.
public struct PlexusError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        private init(_ r: String) { rawValue = r }
        /// No API key could be found.
        public static let notConfigured = Code("notConfigured")
        public static let invalidArgument = Code("invalidArgument")
        /// 401: the key is missing, unknown, revoked or expired. Not retried.
        public static let unauthorized = Code("unauthorized")
        /// 403: the key lacks the write scope. Not retried.
        public static let forbidden = Code("forbidden")
        /// 400: the server refused the data (the message says which point). Not retried.
        public static let rejected = Code("rejected")
        /// The server could not be reached or kept failing after the retries.
        public static let unavailable = Code("unavailable")
        /// The client was closed.
        public static let closed = Code("closed")
        public var description: String { rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
