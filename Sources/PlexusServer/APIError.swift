import Foundation
public import HTTPTypes
public import Hummingbird
import Logging
import NIOCore
public import PlexusCore
public import PlexusModel
import PlexusPromQL
public import PlexusStorage

/// The one error type every HTTP route throws, and the one place errors become replies:
/// `{"error": "<safe message>", "code": "<STABLE_CODE>"}` with the matching status.
public struct APIError: Error, HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    /// Stable, documented machine code (docs/http-api.md lists them all).
    public let code: String
    public let message: String
    public var headers: HTTPFields
    /// For clients that read `error` as a code word (plexus-python 0.1.0's terminal
    /// login): the body becomes `{"error": <bodyError>, "code": …, "message": <message>}`.
    public var bodyError: String?
    /// The shape of the error body: Plexus's own, or that of the protocol a route speaks.
    public var envelope: Envelope = .plexus

    /// The error bodies of the protocols Plexus speaks besides its own.
    public enum Envelope: Sendable {
        /// `{"error","code"}`.
        case plexus
        /// InfluxDB 1.x: `{"error": message}` and the `X-Influxdb-Error` header.
        case influxV1
        /// InfluxDB 2.x: `{"code": "invalid" | "unauthorized" | …, "message"}`.
        case influxV2
        /// Prometheus' HTTP API: `{"status": "error", "errorType": "bad_data" | …, "error"}`.
        case prometheus
    }

    public init(
        _ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:],
        bodyError: String? = nil
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.bodyError = bodyError
    }

    public static func badRequest(_ m: String, code: String = "VALIDATION_ERROR") -> APIError { .init(.badRequest, code, m) }
    public static func unauthorized(_ m: String) -> APIError { .init(.unauthorized, "UNAUTHORIZED", m) }
    public static func forbidden(_ m: String) -> APIError { .init(.forbidden, "FORBIDDEN", m) }
    public static func notFound(_ m: String) -> APIError { .init(.notFound, "NOT_FOUND", m) }
    public static func conflict(_ m: String) -> APIError { .init(.conflict, "CONFLICT", m) }
    /// An expired one-time resource the server issued (login codes, invite and setup links).
    public static func gone(_ m: String) -> APIError { .init(.gone, "GONE", m) }
    public static let payloadTooLarge = payloadTooLarge(max: Limits.maxBodyBytes)
    public static func payloadTooLarge(max: Int) -> APIError {
        .init(.contentTooLarge, "PAYLOAD_TOO_LARGE", "payload too large (max \(max) bytes)")
    }
    public static func rateLimited(retryAfterSeconds: Int) -> APIError {
        .init(
            .tooManyRequests, "RATE_LIMITED", "rate limit exceeded, retry later",
            headers: [.retryAfter: String(retryAfterSeconds)])
    }
    public static func unavailable(_ m: String) -> APIError {
        .init(.serviceUnavailable, "UNAVAILABLE", m, headers: [.retryAfter: "1"])
    }
    public static let internalError = APIError(.internalServerError, "INTERNAL_ERROR", "internal error")

    public init(_ e: IngestError) {
        switch e.code {
        case .payloadTooLarge: self = .payloadTooLarge
        default: self.init(.badRequest, e.code.rawValue, e.message)
        }
    }

    /// The one mapping from a domain refusal to an HTTP reply.
    public init(_ e: CoreError) {
        switch e.kind {
        case .invalid, .overLimit: self.init(.badRequest, e.code, e.message)
        case .tooLarge: self.init(.contentTooLarge, e.code, e.message)
        case .rateLimited(let wait): self.init(.tooManyRequests, e.code, e.message, headers: [.retryAfter: String(wait)])
        case .notFound: self.init(.notFound, e.code, e.message)
        case .conflict: self.init(.conflict, e.code, e.message)
        case .forbidden: self.init(.forbidden, e.code, e.message)
        case .unavailable: self.init(.serviceUnavailable, e.code, e.message, headers: [.retryAfter: "1"])
        }
    }

    public init(_ e: StoreError) {
        switch e.code {
        case .notFound: self = .notFound(e.message)
        case .conflict: self = .conflict(e.message)
        case .gone: self = .gone(e.message)
        case .invalidArgument: self = .badRequest(e.message)
        case .forbidden: self = .forbidden(e.message)
        case .unavailable: self = .unavailable(e.message)
        default: self = .internalError
        }
    }

    /// Maps anything thrown by a handler.
    public init(any error: any Error) {
        switch error {
        case let e as APIError: self = e
        case let e as CoreError: self.init(e)
        case let e as IngestError: self.init(e)
        case let e as StoreError: self.init(e)
        case let e as PromQL.BadData: self = .badRequest(e.message, code: "BAD_DATA")
        case let e as HTTPError where e.status == .contentTooLarge: self = .payloadTooLarge
        case is NIOTooManyBytesError: self = .payloadTooLarge  // routes collect with Request.collectBody, which names its limit
        case let e as HTTPError:
            switch e.status {
            case .notFound: self = .notFound("not found")
            case .badRequest: self = .badRequest(e.body ?? "bad request")
            default: self.init(e.status, e.status.code >= 500 ? "INTERNAL_ERROR" : "HTTP_\(e.status.code)", e.status.reasonPhrase)
            }
        default: self = .internalError
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var h = headers
        let body: Data
        switch envelope {
        case .plexus:
            body = try JSONText.encoder.encode(ErrorBody(error: bodyError ?? message, code: code, message: bodyError.map { _ in message }))
        case .influxV1:
            body = try JSONText.encoder.encode(InfluxV1Error(error: message))
            h[InfluxWriteRoutes.errorHeader] = String(message.prefix(512))
        case .influxV2:
            body = try JSONText.encoder.encode(InfluxV2Error(code: InfluxV2Error.code(for: status.code), message: message))
        case .prometheus:
            body = try JSONText.encoder.encode(PrometheusError(errorType: PrometheusError.errorType(for: status.code), error: message))
        }
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Turns every error a route throws into an `APIError` reply, and counts rejects.
struct ErrorMappingMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let e = APIError(any: error)
            if e.status == .internalServerError {
                context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            ServerMetrics.rejected(reason: e.code, transport: "http")
            throw e
        }
    }
}
