import Hummingbird
import HummingbirdTesting
@testable import PlexusServer
import Testing

@Suite("Error model")
struct ErrorModelTests {
    @Test("every status renders the JSON body with its stable code", arguments: [
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
                #expect(String(buffer: response.body) == #"{"error":"\#(error.message)","code":"\#(code)"}"#)
                if status == 429 { #expect(response.headers[.retryAfter] == "3") }
            }
        }
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
                #expect(String(buffer: response.body) == #"{"error":"internal error","code":"INTERNAL_ERROR"}"#)
            }
        }
    }
}
