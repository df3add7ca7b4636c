import Foundation
import HTTPTypes
import Hummingbird
import PlexusStorage

/// Authenticates a write the ways collectors send credentials: InfluxDB clients and
/// Telegraf (the key as token, bearer, basic-auth password or `p` parameter), Prometheus
/// and Grafana (`authorization` / `bearer_token`, or `basic_auth` with the key as password).
/// The key needs `scope` (write for the write APIs, read for the query API); a login
/// cookie is not accepted.
struct CollectorKey: RouterMiddleware {
    typealias Context = PlexusRequestContext
    let auth: Authenticator
    var scope: Scope = .write

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        guard let key = Self.presentedKey(request.headers, query: QueryString(request)) else {
            throw APIError.unauthorized("missing API key: send it as Authorization: Token <key>, or as the password")
        }
        context.principal = try await auth.authenticate(key: key, scope: scope)
        return try await next(request, context)
    }

    static func presentedKey(_ headers: HTTPFields, query: QueryString) -> String? {
        if let authorization = headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2 {
                let scheme = parts[0].lowercased()
                let value = String(parts[1]).trimmingSpaces
                if scheme == "token" || scheme == "bearer" { return value }
                if scheme == "basic", let decoded = Data(base64Encoded: value).map({ String(decoding: $0, as: UTF8.self) }) {
                    let (user, password) =
                        decoded.firstIndex(of: ":").map { (String(decoded[..<$0]), String(decoded[decoded.index(after: $0)...])) } ?? (
                            decoded, ""
                        )
                    return [password, user].first { APIKeys.isWellFormed($0) } ?? password
                }
            }
        }
        if let key = Authenticator.presentedKey(headers) { return key }
        let password = query.get("p") ?? ""
        let user = query.get("u") ?? ""
        return [password, user].first { APIKeys.isWellFormed($0) } ?? (password.isEmpty ? nil : password)
    }
}
