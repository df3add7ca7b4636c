/// The stable code of one of Plexus's error types (`IngestError.Code`, `StoreError.Code`,
/// `PlexusError.Code`, …): a string that is part of the API. `Domain` is the error type,
/// so the codes of two types never mix; each type lists its codes in an extension.
public struct ErrorCode<Domain>: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    /// For the error type's own list of codes.
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
}
