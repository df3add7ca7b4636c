/// Why an ingest request or frame was refused. The message names the offending point
/// (`points[3].value must be finite`) and never echoes payload values.
public typealias IngestError = CodedError<IngestErrorDomain>

/// The domain of ``IngestError``'s codes.
public enum IngestErrorDomain: Sendable {}

extension CodedError where Domain == IngestErrorDomain {
    static func point(_ i: Int, _ rest: String) -> IngestError {
        IngestError(.invalidPoint, "points[\(i)]\(rest)")
    }
}

extension ErrorCode where Domain == IngestErrorDomain {
    /// The body is not JSON, or not the shape `{"points":[...]}`.
    public static let invalidJSON = Self("INVALID_JSON")
    /// A point breaks a rule (missing field, bad type, limit exceeded).
    public static let invalidPoint = Self("INVALID_POINT")
    /// More than ``Limits/maxPointsPerRequest`` points.
    public static let tooManyPoints = Self("TOO_MANY_POINTS")
    /// Body or frame over its byte limit.
    public static let payloadTooLarge = Self("PAYLOAD_TOO_LARGE")
    /// A remote-write body that is not a protobuf `WriteRequest`.
    public static let invalidProtobuf = Self("INVALID_PROTOBUF")
    /// `Content-Encoding: gzip` (or snappy) on a body that is not gzip (or snappy).
    public static let invalidEncoding = Self("INVALID_ENCODING")
}
