import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import PlexusCore
import PlexusModel
import PlexusServer
import PlexusStorage
import PlexusStorageSQLite
import Prometheus
import ServiceLifecycle
import UnixSignals

@main
struct PlexusServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plexus-server",
        abstract: "The Plexus telemetry server: ingest, sessions, query API.",
        version: PlexusVersion.current,
        subcommands: [Serve.self, Keys.self, Orgs.self, Users.self, Claims.self],
        defaultSubcommand: Serve.self)
}

enum PlexusVersion {
    static let current = "0.1.0"
}

/// Options every subcommand shares. Each flag falls back to an environment variable.
struct StoreOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Data directory (env PLEXUS_DATA_DIR).", valueName: "dir"))
    var dataDir: String?

    var resolvedDataDir: String {
        dataDir ?? ProcessInfo.processInfo.environment["PLEXUS_DATA_DIR"] ?? "./plexus-data"
    }

    /// The database alone (keys, organisations, people, claims): safe beside a running server.
    func openAdminStore() throws -> SQLiteCatalog {
        try SQLiteCatalog(directory: resolvedDataDir)
    }
}

func nowMicros() -> Int64 { Int64((Date().timeIntervalSince1970 * 1_000_000).rounded()) }

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server (the default).")

    @Option(help: "Address to bind (env PLEXUS_HOST, default 127.0.0.1).") var host: String?
    @Option(help: "Port; 0 picks a free one (env PLEXUS_PORT, default 8080).") var port: Int?
    @OptionGroup var store: StoreOptions
    @Option(help: "trace, debug, info, notice, warning, error or critical (env PLEXUS_LOG_LEVEL, default info).")
    var logLevel: String?
    @Option(
        help: ArgumentHelp(
            "HTTP ingest requests/s per source before 429; 0 = off (env PLEXUS_SOURCE_RATE_LIMIT, default 2000).",
            valueName: "n"))
    var sourceRateLimit: Double?
    @Option(
        help: ArgumentHelp(
            "Serve the web dashboard's files from this folder, re-read on every request (env PLEXUS_DASHBOARD_DIR; for working on the dashboard).",
            valueName: "dir"))
    var dashboardDir: String?
    @Option(
        help: ArgumentHelp(
            "Serve the device builds of scripts/package from this folder at /releases, for GET /setup (env PLEXUS_RELEASES_DIR).",
            valueName: "dir"))
    var releasesDir: String?
    @Flag(help: "Mark the dashboard's session cookie Secure even without X-Forwarded-Proto: https (env PLEXUS_SECURE_COOKIES=1).")
    var secureCookies = false
    @Flag(
        help:
            "Let anyone sign up and get an organisation of their own (env PLEXUS_OPEN_SIGNUP=1). Off: after the first person, sign-up is by invitation or `users create`."
    )
    var openSignup = false
    @Option(
        help: ArgumentHelp(
            "Close a connection idle this long, or whose first request head has not arrived (env PLEXUS_IDLE_TIMEOUT, default 60).",
            valueName: "seconds"))
    var idleTimeout: Double?
    @Option(
        help: ArgumentHelp(
            "Close a connection whose request body has not arrived within this time (env PLEXUS_BODY_TIMEOUT, default 30).",
            valueName: "seconds"))
    var bodyTimeout: Double?
    @Option(
        help: ArgumentHelp(
            "Open connections one client address may hold; 0 = no cap (env PLEXUS_MAX_CONNECTIONS_PER_CLIENT, default 1024).",
            valueName: "n"))
    var maxConnectionsPerClient: Int?
    @Option(
        help: ArgumentHelp(
            "Serve GET /metrics to requests with Authorization: Bearer <token> (env PLEXUS_METRICS_TOKEN).",
            valueName: "token"))
    var metricsToken: String?
    @Flag(help: "Serve GET /metrics to anyone (env PLEXUS_PUBLIC_METRICS=1); it shows counts across all organisations.")
    var publicMetrics = false
    @Option(
        help: ArgumentHelp(
            "HTTP ingest requests/s per organisation, all sources together; 0 = off (env PLEXUS_ORG_RATE_LIMIT, default 20000).",
            valueName: "n"))
    var orgRateLimit: Double?
    @Option(
        help: ArgumentHelp(
            "Distinct series per organisation; 0 = no limit (env PLEXUS_MAX_SERIES_PER_ORG, default 100000).", valueName: "n"))
    var maxSeriesPerOrg: Int?
    @Option(
        help: ArgumentHelp(
            "Distinct sources per organisation; 0 = no limit (env PLEXUS_MAX_SOURCES_PER_ORG, default 10000).", valueName: "n"))
    var maxSourcesPerOrg: Int?
    @Option(
        help: ArgumentHelp("Distinct metrics per source; 0 = no limit (env PLEXUS_MAX_METRICS_PER_SOURCE, default 1000).", valueName: "n"))
    var maxMetricsPerSource: Int?
    @Option(
        help: ArgumentHelp(
            "Line protocol (/write, /api/v2/write): the tags that name a point's source, in order (env PLEXUS_INFLUX_SOURCE_TAGS, default host,source_id).",
            valueName: "tags"))
    var influxSourceTags: String?
    @Option(
        help: ArgumentHelp(
            "Line protocol: a field becomes the metric measurement.field or just field (env PLEXUS_INFLUX_METRIC_NAMES, default measurement.field).",
            valueName: "form"))
    var influxMetricNames: String?

    @Option(
        help: ArgumentHelp(
            "Prometheus remote write (/api/v1/write): the labels that name a sample's source, in order (env PLEXUS_PROMETHEUS_SOURCE_LABELS, default instance).",
            valueName: "labels"))
    var prometheusSourceLabels: String?
    @Option(
        help: ArgumentHelp(
            "Keep raw points this long, e.g. 30d or 12h; forever by default (env PLEXUS_RETENTION). An organisation may set its own (orgs retention).",
            valueName: "duration"))
    var retention: String?
    @Option(
        help: ArgumentHelp(
            "Keep the minute and hour rollups this long, at least as long as the points; forever by default (env PLEXUS_ROLLUP_RETENTION).",
            valueName: "duration"))
    var rollupRetention: String?

    /// The retention from the flags, else the environment, else forever.
    func retentionPolicy(_ env: [String: String]) throws -> RetentionPolicy {
        var policy = RetentionPolicy()
        if let text = retention ?? env["PLEXUS_RETENTION"] { policy.raw = try Self.period(text, "retention") }
        if let text = rollupRetention ?? env["PLEXUS_ROLLUP_RETENTION"] {
            policy.rollups = try Self.period(text, "rollup-retention")
        }
        if let problem = policy.problem { throw ValidationError(problem) }
        return policy
    }

    static func period(_ text: String, _ flag: String) throws -> RetentionPeriod {
        guard let period = RetentionPeriod(text) else {
            throw ValidationError("\(flag) must be a duration such as 30d, 12h or 90m, or forever")
        }
        return period
    }

    /// The remote-write mapping from the flag, else the environment, else the default.
    func remoteWriteMapping(_ env: [String: String]) throws -> RemoteWrite.Mapping {
        var mapping = RemoteWrite.Mapping()
        if let text = prometheusSourceLabels ?? env["PLEXUS_PROMETHEUS_SOURCE_LABELS"] {
            mapping.sourceLabels = try Self.names(text, "prometheus-source-labels")
        }
        return mapping
    }

    /// A comma-separated list of tag keys or label names for a flag.
    static func names(_ text: String, _ flag: String) throws -> [String] {
        let names = text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty, names.allSatisfy({ !$0.isEmpty && $0.utf8.count <= Limits.maxTagBytes }) else {
            throw ValidationError("\(flag) must be a comma-separated list of names")
        }
        return names
    }

    /// The line protocol mapping from the flags, else the environment, else the defaults.
    func lineProtocolMapping(_ env: [String: String]) throws -> LineProtocol.Mapping {
        var mapping = LineProtocol.Mapping()
        if let text = influxSourceTags ?? env["PLEXUS_INFLUX_SOURCE_TAGS"] {
            mapping.sourceTags = try Self.names(text, "influx-source-tags")
        }
        if let text = influxMetricNames ?? env["PLEXUS_INFLUX_METRIC_NAMES"] {
            guard let form = LineProtocol.MetricNames(rawValue: text) else {
                throw ValidationError("influx-metric-names must be measurement.field or field")
            }
            mapping.metricNames = form
        }
        return mapping
    }

    /// A number from the flag, else the environment, else the default; refuses negatives.
    func setting<T: LosslessStringConvertible & Comparable & Numeric>(_ flag: T?, _ env: String, _ fallback: T) throws -> T {
        let value: T
        if let flag {
            value = flag
        } else if let text = ProcessInfo.processInfo.environment[env] {
            guard let v = T(text) else { throw ValidationError("\(env) must be a number") }
            value = v
        } else {
            value = fallback
        }
        guard value >= 0 else {
            throw ValidationError("\(env.dropFirst(7).lowercased().replacingOccurrences(of: "_", with: "-")) must not be negative")
        }
        return value
    }

    static func seconds(_ s: Double, _ name: String) throws -> Duration {
        guard s.isFinite, s > 0, s <= 86_400 else { throw ValidationError("\(name) must be between 0 and 86400 seconds") }
        return .milliseconds(Int64((s * 1_000).rounded()))
    }

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let host = host ?? env["PLEXUS_HOST"] ?? "127.0.0.1"
        let port = port ?? env["PLEXUS_PORT"].map({ Int($0) ?? -1 }) ?? 8080
        guard (0...65535).contains(port) else {
            throw ValidationError("port must be 0-65535")
        }
        let levelName = (logLevel ?? env["PLEXUS_LOG_LEVEL"] ?? "info").lowercased()
        guard let level = Logger.Level(rawValue: levelName == "warn" ? "warning" : levelName) else {
            throw ValidationError("unknown log level \(levelName)")
        }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        // Every limit is checked before anything is opened.
        var connections = ConnectionLimits()
        connections.idleTimeout = try Self.seconds(try setting(idleTimeout, "PLEXUS_IDLE_TIMEOUT", 60), "idle-timeout")
        connections.bodyTimeout = try Self.seconds(try setting(bodyTimeout, "PLEXUS_BODY_TIMEOUT", 30), "body-timeout")
        connections.maxConnectionsPerClient = try setting(maxConnectionsPerClient, "PLEXUS_MAX_CONNECTIONS_PER_CLIENT", 1_024)
        let orgLimit = try setting(orgRateLimit, "PLEXUS_ORG_RATE_LIMIT", 20_000.0)
        var quotas = Quotas()
        quotas.maxSeriesPerOrg = try setting(maxSeriesPerOrg, "PLEXUS_MAX_SERIES_PER_ORG", 100_000)
        quotas.maxSourcesPerOrg = try setting(maxSourcesPerOrg, "PLEXUS_MAX_SOURCES_PER_ORG", 10_000)
        quotas.maxMetricsPerSource = try setting(maxMetricsPerSource, "PLEXUS_MAX_METRICS_PER_SOURCE", 1_000)
        let lineProtocol = try lineProtocolMapping(env)
        let remoteWrite = try remoteWriteMapping(env)
        let retention = try retentionPolicy(env)
        let logger = Logger(label: "plexus.server")
        let dataDir = store.resolvedDataDir
        // One clock for the server and its store.
        let now: @Sendable () -> Int64 = { nowMicros() }
        var storeConfig = SQLiteStore.Configuration()
        storeConfig.now = now
        let sqlite = try SQLiteStore(
            directory: dataDir, configuration: storeConfig,
            logger: Logger(label: "plexus.storage.sqlite"))
        try await bootstrapKey(sqlite, env: env)
        let hasKeys = try await !sqlite.apiKeys(orgID: nil).isEmpty
        let sourceLimit = sourceRateLimit ?? env["PLEXUS_SOURCE_RATE_LIMIT"].flatMap { Double($0) } ?? 2_000
        var config = ServerConfiguration(
            host: host, port: port, now: now,
            metricsText: {
                var buffer: [UInt8] = []
                registry.emit(into: &buffer)
                return String(decoding: buffer, as: UTF8.self)
            },
            version: PlexusVersion.current, sourceRequestsPerSecond: sourceLimit)
        config.dashboardDirectory = dashboardDir ?? env["PLEXUS_DASHBOARD_DIR"]
        config.releasesDirectory = releasesDir ?? env["PLEXUS_RELEASES_DIR"]
        config.secureCookies = secureCookies || env["PLEXUS_SECURE_COOKIES"] == "1"
        config.openSignup = openSignup || env["PLEXUS_OPEN_SIGNUP"] == "1"
        config.connections = connections
        config.metricsToken = (metricsToken ?? env["PLEXUS_METRICS_TOKEN"]).flatMap { $0.isEmpty ? nil : $0 }
        config.publicMetrics = publicMetrics || env["PLEXUS_PUBLIC_METRICS"] == "1"
        config.orgRequestsPerSecond = orgLimit
        config.quotas = quotas
        config.lineProtocol = lineProtocol
        config.remoteWrite = remoteWrite
        config.retention = retention
        // Recordings started before a restart go on: untagged points still join them.
        let hub = Hub()
        hub.restoreRecordings(try await sqlite.recordings())
        let app = buildApplication(configuration: config, store: sqlite, services: [sqlite], hub: hub, logger: logger) { port in
            let shown = host.contains(":") ? "[\(host)]" : host
            var lines = [
                "Plexus server listening on http://\(shown):\(port) (store: sqlite in \(dataDir))",
                "Dashboard: http://\(shown):\(port)/ (the first person to sign up owns the default organisation)",
            ]
            if !hasKeys {
                lines.append("No API keys yet. Create one with:")
                lines.append("  plexus-server keys create --data-dir \(dataDir) --name my-device")
            }
            // Unbuffered, so scripts reading our stdout through a pipe see it at once.
            FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        }
        // Devices are closed first (after the frame in hand is stored and acknowledged),
        // then the HTTP server, then the store (the application's own group).
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: app), .init(service: DeviceDrain(hub: hub))],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// `PLEXUS_BOOTSTRAP_KEY=plx_…` stores that exact key (write, read, admin) in the
    /// default organisation if it is not stored yet: for scripted setups and benchmarks.
    func bootstrapKey(_ store: SQLiteStore, env: [String: String]) async throws {
        guard let key = env["PLEXUS_BOOTSTRAP_KEY"], !key.isEmpty else { return }
        guard APIKeys.isWellFormed(key) else { throw CLIError("PLEXUS_BOOTSTRAP_KEY must be plx_ followed by 32 base62 characters") }
        if try await store.apiKey(hash: APIKeys.hash(key)) != nil { return }
        guard let org = try await store.organization(named: "default") else { throw CLIError("no default organisation") }
        try await store.createAPIKey(
            APIKeys.record(
                key: key, orgID: org.id, name: "bootstrap", scopes: [.write, .read, .admin],
                now: nowMicros()))
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and revoke API keys (works whether or not the server runs).",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; prints it alone on stdout.")
        @OptionGroup var store: StoreOptions
        @Option(help: "A name for people, e.g. the device.") var name: String
        @Option(help: "Comma-separated scopes: write, read, admin.") var scopes: String = "write,read"
        @Option(help: "Organisation name.") var org: String = "default"
        @Option(help: "Expire after this long, e.g. 30d, 12h, 90s.") var expiresIn: String?
        @Flag(help: "Print id, key, name, org and scopes as JSON.") var json = false

        func run() async throws {
            var set = Set<Scope>()
            for s in scopes.split(separator: ",") {
                guard let scope = Scope(rawValue: s.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("unknown scope \(s) (use write, read, admin)")
                }
                set.insert(scope)
            }
            guard !set.isEmpty else { throw ValidationError("at least one scope is required") }
            guard !name.isEmpty else { throw ValidationError("name must not be empty") }
            var expires: Int64?
            if let e = expiresIn {
                guard let us = parseDuration(e) else { throw ValidationError("expires-in must look like 30d, 12h, 15m or 90s") }
                expires = nowMicros() + us
            }
            let db = try store.openAdminStore()
            guard let organization = try await db.organization(named: org) else {
                throw CLIError("no organisation named \(org) (create it with: plexus-server orgs create \(org))")
            }
            let key = APIKeys.generate()
            let record = APIKeys.record(
                key: key, orgID: organization.id, name: name, scopes: set, now: nowMicros(),
                expiresAt: expires)
            try await db.createAPIKey(record)
            if json {
                let obj: [String: Any] = [
                    "id": record.id, "key": key, "name": name, "org": organization.name,
                    "scopes": set.map(\.rawValue).sorted(),
                ]
                let d = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
                print(String(decoding: d, as: UTF8.self))
            } else {
                print(key)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (never the secret).")
        @OptionGroup var store: StoreOptions
        @Option(help: "Only this organisation.") var org: String?
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let db = try store.openAdminStore()
            var orgID: Int64?
            if let org {
                guard let o = try await db.organization(named: org) else { throw CLIError("no organisation named \(org)") }
                orgID = o.id
            }
            let orgs = Dictionary(uniqueKeysWithValues: try await db.organizations().map { ($0.id, $0.name) })
            let keys = try await db.apiKeys(orgID: orgID)
            let now = nowMicros()
            func status(_ k: APIKeyRecord) -> String {
                if k.revokedAt != nil { return "revoked" }
                if let e = k.expiresAt, e <= now { return "expired" }
                return "active"
            }
            if json {
                let arr: [[String: Any]] = keys.map { k in
                    [
                        "id": k.id, "name": k.name, "prefix": k.prefix, "org": orgs[k.orgID] ?? "", "status": status(k),
                        "scopes": k.scopes.map(\.rawValue).sorted(), "created_at": k.createdAt / 1_000,
                    ]
                }
                let d = try JSONSerialization.data(withJSONObject: arr, options: [.sortedKeys])
                print(String(decoding: d, as: UTF8.self))
                return
            }
            print("ID                    PREFIX    ORG         STATUS   SCOPES            NAME")
            for k in keys {
                let cols = [
                    k.id.padding(toLength: 22, withPad: " ", startingAt: 0),
                    k.prefix.padding(toLength: 10, withPad: " ", startingAt: 0),
                    (orgs[k.orgID] ?? "?").padding(toLength: 12, withPad: " ", startingAt: 0),
                    status(k).padding(toLength: 9, withPad: " ", startingAt: 0),
                    k.scopes.map(\.rawValue).sorted().joined(separator: ",").padding(toLength: 18, withPad: " ", startingAt: 0),
                    k.name,
                ]
                print(cols.joined())
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by id; it stops working within a second.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The key id (from keys list).") var id: String

        func run() async throws {
            let db = try store.openAdminStore()
            guard try await db.revokeAPIKey(id: id, at: nowMicros()) else { throw CLIError("no key with id \(id)") }
            print("revoked \(id)")
        }
    }
}

struct Orgs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Organisations (tenants). A fresh store has one, named default.",
        subcommands: [Create.self, List.self, Retention.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an organisation.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "Its name.") var name: String

        func run() async throws {
            guard !name.isEmpty, name.count <= 100 else { throw ValidationError("name must be 1-100 characters") }
            let org = try await store.openAdminStore().createOrganization(name: name, at: nowMicros())
            print(org.name)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List organisations.")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            for o in try await store.openAdminStore().organizations() { print(o.name) }
        }
    }

    struct Retention: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set how long an organisation's data is kept, over the server's --retention.",
            discussion: """
                Each option takes a duration (30d, 12h, 90m), forever, or default (the server's \
                --retention or --rollup-retention). A running server refuses points past it within a \
                second and removes older data at its next retention run.
                """)
        @OptionGroup var store: StoreOptions
        @Argument(help: "The organisation's name.") var name: String
        @Option(help: ArgumentHelp("Raw points.", valueName: "duration")) var raw: String?
        @Option(help: ArgumentHelp("Minute and hour rollups.", valueName: "duration")) var rollups: String?

        func run() async throws {
            let admin = try store.openAdminStore()
            guard let org = try await admin.organization(named: name) else { throw CLIError("no organisation named \(name)") }
            var retention = org.retention
            if let raw { retention.raw = try Self.setting(raw, "raw") }
            if let rollups { retention.rollups = try Self.setting(rollups, "rollups") }
            if let problem = retention.problem { throw ValidationError(problem) }
            if raw != nil || rollups != nil { _ = try await admin.setRetention(orgID: org.id, retention) }
            print("raw: \(retention.raw.map(\.description) ?? "default")")
            print("rollups: \(retention.rollups.map(\.description) ?? "default")")
        }

        /// nil: the server's default.
        static func setting(_ text: String, _ flag: String) throws -> RetentionPeriod? {
            if text == "default" { return nil }
            return try Serve.period(text, flag)
        }
    }
}

func parseDuration(_ s: String) -> Int64? { Timestamp.duration(s) }

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "People who sign in to the dashboard (works whether or not the server runs).",
        subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a person to an organisation; the password is read from standard input (or PLEXUS_USER_PASSWORD).")
        @OptionGroup var store: StoreOptions
        @Option(help: "Their email, used to sign in.") var email: String
        @Option(help: "Their name.") var name: String = ""
        @Option(help: "Organisation name.") var org: String = "default"
        @Option(help: "owner, member or viewer.") var role: String = "owner"

        func run() async throws {
            guard let role = Role(rawValue: role) else { throw ValidationError("role must be owner, member or viewer") }
            let password: String
            if let p = ProcessInfo.processInfo.environment["PLEXUS_USER_PASSWORD"], !p.isEmpty {
                password = p
            } else {
                guard let line = readLine(strippingNewline: true) else { throw ValidationError("give the password on standard input") }
                password = line
            }
            let user = try await PlexusAdmin.createUser(
                email: email, name: name, password: password, role: role, orgName: org, store: store.openAdminStore(), now: nowMicros())
            print("\(user.email) (\(user.role.rawValue) of \(org))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the people of an organisation.")
        @OptionGroup var store: StoreOptions
        @Option(help: "Organisation name.") var org: String = "default"

        func run() async throws {
            let db = try store.openAdminStore()
            guard let o = try await db.organization(named: org) else { throw CLIError("no organisation named \(org)") }
            for u in try await db.users(orgID: o.id) { print("\(u.email)\t\(u.role.rawValue)\t\(u.name)") }
        }
    }
}

struct Claims: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Device names held by installations (install_id): list and release.",
        subcommands: [List.self, Release.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List claimed names of an organisation.")
        @OptionGroup var store: StoreOptions
        @Option(help: "Organisation name.") var org: String = "default"

        func run() async throws {
            let db = try store.openAdminStore()
            guard let o = try await db.organization(named: org) else { throw CLIError("no organisation named \(org)") }
            for c in try await db.deviceClaims(orgID: o.id) {
                print("\(c.sourceID)\tinstall \(c.installID)\tasked for \(c.requested)")
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Free a name so another install can take it.")
        @OptionGroup var store: StoreOptions
        @Option(help: "Organisation name.") var org: String = "default"
        @Argument(help: "The claimed source_id.") var sourceID: String

        func run() async throws {
            let db = try store.openAdminStore()
            guard let o = try await db.organization(named: org) else { throw CLIError("no organisation named \(org)") }
            guard try await db.releaseDeviceClaim(orgID: o.id, sourceID: sourceID) else { throw CLIError("\(sourceID) is not claimed") }
            print("released \(sourceID)")
        }
    }
}
