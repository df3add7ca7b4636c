/// Why an ingest request or frame was refused. The message names the offending point
/// (`points[3].value must be finite`) and never echoes payload values.
public struct IngestError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        private init(_ raw: String) { rawValue = raw }
        /// The body is not JSON, or not the shape `{"points":[...]}`.
        public static let invalidJSON = Code("INVALID_JSON")
        /// A point breaks a rule (missing field, bad type, limit exceeded).
        public static let invalidPoint = Code("INVALID_POINT")
        /// More than ``Limits/maxPointsPerRequest`` points.
        public static let tooManyPoints = Code("TOO_MANY_POINTS")
        /// Body or frame over its byte limit.
        public static let payloadTooLarge = Code("PAYLOAD_TOO_LARGE")
        /// `Content-Encoding: gzip` on a body that is not gzip.
        public static let invalidEncoding = Code("INVALID_ENCODING")
        public var description: String { rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    static func point(_ i: Int, _ rest: String) -> IngestError {
        IngestError(.invalidPoint, "points[\(i)]\(rest)")
    }
}
