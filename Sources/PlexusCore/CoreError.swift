public import PlexusModel

/// Why the domain refused something, in words every transport can answer with: HTTP maps
/// ``kind`` to a status (`APIError`), the WebSocket gateway to an `error` frame. ``code``
/// is the stable wire code (docs/http-api.md, docs/websocket-api.md) and ``message`` is
/// safe to show a client. Nothing here knows HTTP.
public struct CoreError: Error, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The client's input breaks a rule (HTTP 400).
        case invalid
        /// The input is too large (HTTP 413).
        case tooLarge
        /// Over a rate; try again after this many seconds (HTTP 429).
        case rateLimited(retryAfterSeconds: Int)
        /// Over a cardinality or size limit of the organisation (HTTP 400).
        case overLimit
        case notFound
        case conflict
        case forbidden
        /// The store or another part of the server cannot do it now; retry (HTTP 503).
        case unavailable
    }

    public var kind: Kind
    public var code: String
    public var message: String

    public init(_ kind: Kind, _ code: String, _ message: String) {
        self.kind = kind
        self.code = code
        self.message = message
    }

    /// An ingest rule broken by a batch or frame.
    public init(_ e: IngestError) {
        self.init(e.code == .payloadTooLarge ? .tooLarge : .invalid, e.code.rawValue, e.message)
    }

    public static func rateLimited(retryAfterSeconds: Int) -> CoreError {
        CoreError(.rateLimited(retryAfterSeconds: retryAfterSeconds), "RATE_LIMITED", "rate limit exceeded, retry later")
    }

    public static func unavailable(_ message: String) -> CoreError { CoreError(.unavailable, "UNAVAILABLE", message) }
}
