/// The stable code of one of Plexus's error types (`IngestError.Code`, `StoreError.Code`,
/// `PlexusError.Code`, …): a string that is part of the API. `Domain` tells the error
/// types apart (an empty enum, or the error type itself), so the codes of two types never
/// mix; each domain lists its codes in an extension.
public struct ErrorCode<Domain>: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    /// For the error type's own list of codes.
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
}

/// An error of one of Plexus's domains: a stable ``code`` and a message that is safe to log
/// and to show (no payload values, no secrets). `IngestError`, the SDK's `PlexusError` and
/// `SensorError` are this type, told apart by `Domain`.
public struct CodedError<Domain>: Error, Sendable, Hashable, CustomStringConvertible {
    public typealias Code = ErrorCode<Domain>

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
