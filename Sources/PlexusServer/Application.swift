public import Hummingbird
import HummingbirdWebSocket
public import Logging
import NIOCore
import PlexusModel
public import PlexusStorage
public import ServiceLifecycle

/// Everything the HTTP application needs, as plain values.
public struct ServerConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port; `onListening` receives the real one.
    public var port: Int
    /// The server's clock in Unix microseconds (tests inject a skewed one).
    public var now: @Sendable () -> Int64
    /// Prometheus text for `GET /metrics`.
    public var metricsText: @Sendable () -> String
    public var version: String
    /// HTTP ingest requests per second per (organisation, source); 0 disables.
    public var sourceRequestsPerSecond: Double
    /// Mark the dashboard's session cookie `Secure` even when the request does not say
    /// it came over TLS (for a TLS proxy that sets no `X-Forwarded-Proto`).
    public var secureCookies: Bool = false
    /// Serve the dashboard's files from this directory, re-read on every request
    /// (for working on the dashboard); nil serves the files built into the binary.
    public var dashboardDirectory: String?
    /// Where `scripts/package` put the device builds (`plexus-linux-<arch>` and
    /// `.sha256`), served at `/releases/…` for `GET /setup`; nil serves none.
    public var releasesDirectory: String?

    public init(host: String = "127.0.0.1", port: Int = 8080, now: @escaping @Sendable () -> Int64,
                metricsText: @escaping @Sendable () -> String = { "" }, version: String = "0.1.0",
                sourceRequestsPerSecond: Double = 2_000) {
        self.sourceRequestsPerSecond = sourceRequestsPerSecond
        self.host = host
        self.port = port
        self.now = now
        self.metricsText = metricsText
        self.version = version
    }
}

/// Shared state of the running server, handed to every route.
struct ServerState: Sendable {
    let store: any PlexusStore
    let auth: Authenticator
    let config: ServerConfiguration
    let startedAt: ContinuousClock.Instant
    let hub: Hub
    let limiter: RateLimiter
}

/// Builds the Plexus HTTP application. `services` run beside the server in its
/// ServiceGroup (the store first, so it stops last and flushes everything).
public func buildApplication(
    configuration: ServerConfiguration, store: any PlexusStore, services: [any Service] = [],
    hub: Hub = Hub(), logger: Logger, onListening: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let state = ServerState(
        store: store, auth: Authenticator(store: store, now: configuration.now), config: configuration,
        startedAt: .now, hub: hub,
        limiter: RateLimiter(perSecond: configuration.sourceRequestsPerSecond, burst: configuration.sourceRequestsPerSecond * 2))
    let gateway = Gateway(state: state)
    let router = Router()
    router.add(middleware: CORSMiddleware(
        allowOrigin: .all, allowHeaders: [.contentType, .authorization, .init("x-api-key")!, .contentEncoding],
        allowMethods: [.get, .post, .patch, .delete, .options], maxAge: .seconds(86_400)))
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: ErrorMappingMiddleware())
    HealthRoutes(state: state).register(router)
    IngestRoutes(state: state).register(router)
    SessionRoutes(state: state).register(router)
    QueryRoutes(state: state).register(router)
    AccountRoutes(state: state).register(router)
    DashboardRoutes(state: state, logger: logger).register(router)
    SetupRoutes(state: state).register(router)
    let gatewayRoutes = GatewayRoutes(state: state, gateway: gateway)
    gatewayRoutes.register(router)
    let wsRouter = Router(context: GatewayWebSocketContext.self)
    gatewayRoutes.register(webSocket: wsRouter)
    return Application(
        router: router,
        server: .http1WebSocketUpgrade(
            webSocketRouter: wsRouter,
            // Text frames that are not UTF-8 close the connection with 1007.
            configuration: .init(ws: .init(maxFrameSize: Limits.maxFrameBytes, autoPing: .enabled(timePeriod: .seconds(30)),
                                           validateUTF8: true))),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "plexus"),
        services: services + [ConnectionGuard(hub: hub, store: store, now: configuration.now)],
        onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.port) },
        logger: logger)
}
