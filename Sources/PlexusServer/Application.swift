public import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
public import Logging
import NIOCore
public import PlexusCore
public import PlexusModel
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
    /// Anyone may sign up and gets an organisation of their own. Off by default: after
    /// the first person (the owner of `default`), people join by invitation or are added
    /// with `plexus-server users create`.
    public var openSignup = false
    /// Idle, header and body deadlines and the per-client connection cap.
    public var connections = ConnectionLimits()
    /// `GET /metrics` (Prometheus text; counts across every organisation): served to a
    /// request bearing this token (`Authorization: Bearer …`), or to anyone when
    /// `publicMetrics` is set; otherwise not served.
    public var metricsToken: String?
    public var publicMetrics = false
    /// Per-organisation cardinality limits (series, sources, metrics per source).
    public var quotas = Quotas()
    /// HTTP ingest requests per second per organisation, all sources together; 0 disables.
    public var orgRequestsPerSecond: Double = 20_000
    /// How InfluxDB line protocol becomes points: which tags name the source, and metric names.
    public var lineProtocol = LineProtocol.Mapping()
    /// How Prometheus remote write becomes points: which labels name the source.
    public var remoteWrite = RemoteWrite.Mapping()
    /// How long data is kept, unless an organisation sets its own (`--retention`,
    /// `--rollup-retention`); applied at start and every `retentionInterval`.
    public var retention = RetentionPolicy()
    public var retentionInterval: Duration = .seconds(600)

    public init(
        host: String = "127.0.0.1", port: Int = 8080, now: @escaping @Sendable () -> Int64,
        metricsText: @escaping @Sendable () -> String = { "" }, version: String = "0.1.0",
        sourceRequestsPerSecond: Double = 2_000
    ) {
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
    /// Every transport's way in for telemetry (limits, recording, live, durable, metrics).
    let ingestor: Ingestor
    /// Every session rule (HTTP sessions, recordings started and stopped by commands).
    let recorder: Recorder
    var cardinality: CardinalityGuard { ingestor.cardinality }
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
        ingestor: Ingestor(
            store: store, live: hub,
            limiter: RateLimiter(
                perSecond: configuration.sourceRequestsPerSecond, burst: configuration.sourceRequestsPerSecond * 2,
                orgPerSecond: configuration.orgRequestsPerSecond),
            cardinality: CardinalityGuard(store: store, quotas: configuration.quotas),
            retention: RetentionGuard(store: store, defaults: configuration.retention, now: configuration.now)),
        recorder: Recorder(store: store, live: hub))
    let gateway = Gateway(state: state)
    let router = Router(context: PlexusRequestContext.self)
    router.add(
        middleware: CORSMiddleware(
            allowOrigin: .all, allowHeaders: [.contentType, .authorization, .init("x-api-key")!, .contentEncoding],
            allowMethods: [.get, .post, .patch, .delete, .options], maxAge: .seconds(86_400)))
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: ErrorMappingMiddleware())
    router.add(middleware: BodyDeadlineMiddleware(timeout: configuration.connections.bodyTimeout))
    HealthRoutes(state: state).register(router)
    IngestRoutes(state: state).register(router)
    InfluxWriteRoutes(state: state).register(router)
    RemoteWriteRoutes(state: state).register(router)
    PrometheusQueryRoutes(state: state).register(router)
    SessionRoutes(state: state).register(router)
    QueryRoutes(state: state).register(router)
    AccountRoutes(state: state).register(router)
    DashboardRoutes(state: state, logger: logger).register(router)
    SetupRoutes(state: state).register(router)
    let gatewayRoutes = GatewayRoutes(state: state, gateway: gateway)
    gatewayRoutes.register(router)
    let wsRouter = Router(context: GatewayWebSocketContext.self)
    gatewayRoutes.register(webSocket: wsRouter)
    let limits = configuration.connections
    let connections = ClientConnections()
    let wsResponder = wsRouter.buildResponder()
    let channelConfiguration = HTTP1WebSocketUpgradeChannel.Configuration(
        http1: .init(idleTimeout: .nanoseconds(limits.idleTimeout.nanoseconds)),
        ws: .init(maxFrameSize: Limits.maxFrameBytes, autoPing: .enabled(timePeriod: .seconds(30)), validateUTF8: true))
    let server = HTTPServerBuilder { responder in
        let inner = HTTP1WebSocketUpgradeChannel(
            responder: responder, webSocketResponder: wsResponder, configuration: channelConfiguration)
        prepareConnectionTypes(inner, logger: logger)
        return GuardedChildChannel(inner: inner, limits: limits, connections: connections)
    }
    return Application(
        router: router,
        server: server,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "plexus"),
        services: services + [
            SocketWatch(hub: hub, store: store, now: configuration.now),
            RetentionService(
                store: store, policy: configuration.retention, now: configuration.now,
                interval: configuration.retentionInterval, logger: logger),
        ],
        onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.port) },
        logger: logger)
}
