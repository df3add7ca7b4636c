public import Hummingbird
public import NIOCore
import PlexusStorage

/// The context of every HTTP request Plexus serves: Hummingbird's core context plus the
/// address of the peer, for limits kept per client (sign-in throttling, connections).
public struct PlexusRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The connection the request came on (to close it when a body stalls).
    public let channel: (any Channel)?
    /// Who is calling, once a ``RequireScope`` group has checked it.
    public var principal: Principal?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }

    /// The peer's IP address as text ("unknown" when the transport has none).
    public var clientAddress: String { remoteAddress?.ipAddress ?? "unknown" }
}

/// Authenticates every request of a route group for one scope, by API key or by the
/// dashboard's session cookie (with its CSRF token for changes), before the handler runs
/// and before any body is read; the caller goes into the context. Refusals are 401/403.
struct RequireScope: RouterMiddleware {
    typealias Context = PlexusRequestContext
    let auth: Authenticator
    let scope: Scope

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.principal = try await auth.authenticate(request.head, scope: scope)
        return try await next(request, context)
    }
}

extension PlexusRequestContext {
    /// The caller that ``RequireScope`` authenticated (a route outside such a group has none).
    var caller: Principal {
        get throws {
            guard let principal else { throw APIError.unauthorized("missing x-api-key") }
            return principal
        }
    }
}

extension Router<PlexusRequestContext> {
    /// The routes under `path` that need `scope`.
    func group(_ path: RouterPath = "", requiring scope: Scope, _ auth: Authenticator) -> RouterGroup<PlexusRequestContext> {
        group(path).add(middleware: RequireScope(auth: auth, scope: scope))
    }
}
