import Hummingbird
import HummingbirdTesting
import PlexusCore
import PlexusModel
import Testing

@testable import PlexusServer

@Suite("Error model")
struct ErrorModelTests {
    @Test(
        "every status renders the JSON body with its stable code",
        arguments: [
            (APIError.gone("this setup link has expired"), 410, "GONE"),
            (APIError.notFound("session not found"), 404, "NOT_FOUND"),
            (APIError.conflict("exists"), 409, "CONFLICT"),
            (APIError.payloadTooLarge, 413, "PAYLOAD_TOO_LARGE"),
            (APIError.rateLimited(retryAfterSeconds: 3), 429, "RATE_LIMITED"),
            (APIError.unavailable("shutting down"), 503, "UNAVAILABLE"),
        ])
    func render(_ error: APIError, _ status: Int, _ code: String) async throws {
        let router = Router()
        router.add(middleware: ErrorMappingMiddleware())
        router.get("/x") { _, _ -> String in throw error }
        let app = Application(router: router)
        try await app.test(.router) { client in
            try await client.execute(uri: "/x", method: .get) { response in
                #expect(Int(response.status.code) == status)
                #expect(response.headers[.contentType] == "application/json")
                #expect(String(buffer: response.body) == #"{"code":"\#(code)","error":"\#(error.message)"}"#)
                if status == 429 { #expect(response.headers[.retryAfter] == "3") }
            }
        }
    }

    @Test(
        "domain refusals map to one status each over HTTP, and to error frames with or without the seq",
        arguments: [
            (CoreError(.invalid, "INVALID_POINT", "bad"), 400, true),
            (CoreError(.overLimit, "CARDINALITY_LIMIT", "full"), 400, true),
            (CoreError(.tooLarge, "PAYLOAD_TOO_LARGE", "big"), 413, true),
            (CoreError.rateLimited(retryAfterSeconds: 7), 429, false),
            (CoreError(.notFound, "NOT_FOUND", "gone"), 404, true),
            (CoreError(.conflict, "CONFLICT", "taken"), 409, true),
            (CoreError(.forbidden, "FORBIDDEN", "no"), 403, true),
            (CoreError.unavailable("later"), 503, false),
        ])
    func domainErrors(_ error: CoreError, _ status: Int, _ frameKeepsSeq: Bool) async throws {
        let api = APIError(any: error)
        #expect(Int(api.status.code) == status && api.code == error.code && api.message == error.message)
        if case .rateLimited = error.kind { #expect(api.headers[.retryAfter] == "7") }
        if status == 503 { #expect(api.headers[.retryAfter] == "1") }
        let frame = String(decoding: OutboundFrame.error(error, seq: 42), as: UTF8.self)
        #expect(frame.contains(#""code":"\#(error.code)""#))
        #expect(frame.contains(#""seq":42"#) == frameKeepsSeq)
    }

    @Test("unexpected errors become a generic 500 without details")
    func internalError() async throws {
        struct Secret: Error {}
        let router = Router()
        router.add(middleware: ErrorMappingMiddleware())
        router.get("/x") { _, _ -> String in throw Secret() }
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/x", method: .get) { response in
                #expect(response.status == .internalServerError)
                #expect(String(buffer: response.body) == #"{"code":"INTERNAL_ERROR","error":"internal error"}"#)
            }
        }
    }
}
