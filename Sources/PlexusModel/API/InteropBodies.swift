/// InfluxDB 1.x's error body on `/write`: `{"error": "…"}`.
public struct InfluxV1Error: Codable, Sendable, Equatable {
    public var error: String

    public init(error: String) { self.error = error }
}

/// InfluxDB 2.x's error body on `/api/v2/write`: `{"code": "invalid", "message": "…"}`.
public struct InfluxV2Error: Codable, Sendable, Equatable {
    /// InfluxDB's code word: `invalid`, `unauthorized`, `forbidden`, `not found`,
    /// `request too large`, `too many requests`, `unavailable`, `internal error`.
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// InfluxDB's code word for an HTTP status.
    public static func code(for status: Int) -> String {
        switch status {
        case 400: "invalid"
        case 401: "unauthorized"
        case 403: "forbidden"
        case 404: "not found"
        case 413: "request too large"
        case 429: "too many requests"
        case 503: "unavailable"
        default: status >= 500 ? "internal error" : "invalid"
        }
    }
}

/// InfluxDB 1.x's `/query` answer to statements without rows (`CREATE DATABASE`):
/// `{"results":[{"statement_id":0}]}`.
public struct InfluxQueryResults: Codable, Sendable, Equatable {
    public struct Statement: Codable, Sendable, Equatable {
        public var statementID: Int

        public init(statementID: Int) { self.statementID = statementID }

        enum CodingKeys: String, CodingKey {
            case statementID = "statement_id"
        }
    }

    public var results: [Statement]

    public init(results: [Statement]) { self.results = results }
}

/// Prometheus' HTTP API error body: `{"status":"error","errorType":"bad_data","error":"…"}`.
public struct PrometheusError: Codable, Sendable, Equatable {
    public var status = "error"
    public var errorType: String
    public var error: String

    public init(errorType: String, error: String) {
        self.errorType = errorType
        self.error = error
    }

    /// Prometheus' error type for an HTTP status.
    public static func errorType(for status: Int) -> String {
        switch status {
        case 400, 413, 415: "bad_data"
        case 401, 403: "unauthorized"
        case 404: "not_found"
        case 422: "execution"
        case 429, 503: "unavailable"
        default: "internal"
        }
    }
}
