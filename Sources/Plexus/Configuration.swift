public import Foundation
import PlexusModel

/// Where a `Plexus` client sends and who it is, resolved like the Python SDK:
/// explicit argument > environment variable > `~/.plexus/config.json` > default.
/// The config file has the Python SDK's keys and format, so both can share a device.
public struct PlexusConfiguration: Sendable, Equatable {
    public var apiKey: String
    public var sourceID: String
    /// Base URL for HTTP ingest (`POST {gatewayURL}/ingest`).
    public var gatewayURL: String
    /// Base URL for the device WebSocket (`{gatewayWSURL}/ws/device`); by default the
    /// gateway URL with `ws://`/`wss://`.
    public var gatewayWSURL: String
    public var transport: Transport = .webSocket

    public enum Transport: Sendable, Equatable {
        /// WebSocket with acknowledgements and clock correction (falls back to HTTP while down).
        case webSocket
        /// HTTP only: `POST /ingest` (no clock correction).
        case http
    }
    /// Stable per installation; generated once and saved in the config file.
    public var installID: String?
    /// Send a batch when this many points wait.
    public var maxBatchPoints = 500
    /// Send what waits at least this often.
    public var flushInterval: Duration = .milliseconds(100)
    /// Points kept while the server cannot be reached (on disk with ``bufferPath``, else in
    /// memory); past this the oldest are dropped, counted in ``Plexus/droppedPoints`` and
    /// logged.
    public var maxBufferedPoints = 100_000
    /// A SQLite file for points not yet acknowledged, so they survive a lost connection and
    /// a restart and go first after it (with their original timestamps). nil: memory only.
    /// ``resolve(apiKey:sourceID:gatewayURL:environment:home:)`` sets
    /// `~/.plexus/buffer-swift.sqlite` unless the config file says `"persistent_buffer": false`.
    public var bufferPath: String?
    public var retry = RetryPolicy()
    /// Bodies larger than this are gzip-compressed (as the Python SDK does).
    public var gzipAbove = 1_024
    /// How often the WebSocket transport refreshes the clock offset over the open connection
    /// (`time_sync`, corrected by the round trip), starting right after it authenticates;
    /// nil: only from `authenticated` at each connect, as the Python SDK does.
    public var clockRefreshInterval: Duration? = .seconds(600)
    /// `device_auth.platform`, shown to dashboards.
    public var platform = "swift-sdk"
    /// `device_auth.agent_version`, shown to dashboards.
    public var agentVersion = "0.1.0"
    /// `device_auth.sensors`: the sensors the device reports (an array of
    /// `{"name","description","metrics","sample_rate","prefix","available"}`), shown to dashboards.
    public var sensors: PlexusValue?
    /// How far the device's wall clock is from the system clock (zero: it is the system
    /// clock). The server's clock corrects the wall clock (`authenticated` and `time_sync`):
    /// points sent without a timestamp are stamped with it plus the learnt offset. Set it to
    /// run a device on a clock of its own, e.g. to test clock correction.
    public var wallClockOffset: Duration = .zero

    public static let defaultGatewayURL = "http://127.0.0.1:8080"

    public init(
        apiKey: String, sourceID: String, gatewayURL: String = defaultGatewayURL, gatewayWSURL: String? = nil,
        installID: String? = nil, transport: Transport = .webSocket
    ) {
        self.apiKey = apiKey
        self.sourceID = sourceID
        self.gatewayURL = gatewayURL
        self.gatewayWSURL = gatewayWSURL ?? Self.webSocketURL(for: gatewayURL)
        self.installID = installID
        self.transport = transport
    }

    /// `http(s)://host` → `ws(s)://host`.
    public static func webSocketURL(for http: String) -> String {
        if http.hasPrefix("https://") { return "wss://" + http.dropFirst(8) }
        if http.hasPrefix("http://") { return "ws://" + http.dropFirst(7) }
        return http
    }

    /// Where `~/.plexus/config.json` lives, when the configuration came from it.
    public var home: String?

    /// Resolves missing values from the environment and the config file at `home`.
    /// Generates and saves `source_id` (`source-xxxxxxxx`) and `install_id` if absent.
    public static func resolve(
        apiKey: String? = nil, sourceID: String? = nil, gatewayURL: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        home: String = ConfigFile.defaultHome
    ) throws(PlexusError) -> PlexusConfiguration {
        let file = ConfigFile(home: home)
        var stored = file.load()
        guard let key = Self.apiKey(apiKey, environment: environment, stored: stored) else {
            throw PlexusError(.notConfigured, "no API key: pass apiKey, set PLEXUS_API_KEY, or run `plexus login`")
        }
        var source = sourceID ?? stored["source_id"] as? String
        var changed = false
        if source == nil {
            source = "source-" + String(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(8))
            stored["source_id"] = source
            changed = true
        }
        guard let source, Identifier.isValidSourceID(source) else {
            throw PlexusError(.invalidArgument, "source_id must match ^[a-z0-9][a-z0-9._-]*$ (at most 256 bytes)")
        }
        var install = environment["PLEXUS_INSTALL_ID"] ?? stored["install_id"] as? String
        if install == nil {
            install = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
            stored["install_id"] = install
            changed = true
        }
        if changed {
            for (k, v) in ["api_key": NSNull(), "persistent_buffer": true as Any] where stored[k] == nil { stored[k] = v }
            file.save(stored)
        }
        let url = Self.gatewayURL(gatewayURL, environment: environment, stored: stored)
        let ws = environment["PLEXUS_GATEWAY_WS_URL"] ?? stored["gateway_ws_url"] as? String
        var c = PlexusConfiguration(apiKey: key, sourceID: source, gatewayURL: url, gatewayWSURL: ws, installID: install)
        c.home = home
        if stored["persistent_buffer"] as? Bool != false { c.bufferPath = file.bufferPath }
        return c
    }

    /// The key: `explicit`, else `PLEXUS_API_KEY`, else the config file's `api_key`.
    public static func apiKey(_ explicit: String?, environment: [String: String], stored: [String: Any]) -> String? {
        explicit ?? environment["PLEXUS_API_KEY"].flatMap { $0.isEmpty ? nil : $0 } ?? stored["api_key"] as? String
    }

    /// The server, without a trailing `/`: `explicit`, else `PLEXUS_GATEWAY_URL`, else the
    /// config file's `gateway_url`, else its `endpoint` (where the Python SDK signs in),
    /// else ``defaultGatewayURL``.
    public static func gatewayURL(_ explicit: String?, environment: [String: String], stored: [String: Any]) -> String {
        var url =
            explicit ?? environment["PLEXUS_GATEWAY_URL"] ?? stored["gateway_url"] as? String
            ?? stored["endpoint"] as? String ?? defaultGatewayURL
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }
}

/// `~/.plexus/config.json`: a JSON object with `indent=2`, directory 0700, file 0600.
/// The keys are the Python SDK's (`api_key`, `source_id`, `install_id`, `gateway_url`, …).
public struct ConfigFile: Sendable {
    public let path: String
    public let directory: String

    /// `$HOME`, as every Unix program reads it, else the account's home directory
    /// (`NSHomeDirectory()` alone reads the password database on Linux and ignores `$HOME`).
    public static var defaultHome: String {
        ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
    }

    public init(home: String = ConfigFile.defaultHome) {
        directory = home + "/.plexus"
        path = directory + "/config.json"
    }

    /// The Swift SDK's on-disk buffer beside the config (``PlexusConfiguration/bufferPath``).
    public var bufferPath: String { directory + "/buffer-swift.sqlite" }

    /// The stored object; an unreadable or corrupt file reads as empty (as the Python SDK does).
    public func load() -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path),
            let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return obj
    }

    public func save(_ object: [String: Any]) {
        try? FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) else { return }
        _ = FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600])
    }

    /// Loads, changes and saves the stored object.
    public func update(_ body: (inout [String: Any]) -> Void) {
        var object = load()
        body(&object)
        save(object)
    }
}

/// Retries for 429 and 5xx answers and connection failures: exponential backoff with
/// jitter, honouring `Retry-After`. Never for 400, 401 or 403.
public struct RetryPolicy: Sendable, Equatable {
    public var maxRetries = 3
    public var baseDelay: Duration = .seconds(1)
    public var maxDelay: Duration = .seconds(30)

    public init(maxRetries: Int = 3, baseDelay: Duration = .seconds(1), maxDelay: Duration = .seconds(30)) {
        self.maxRetries = maxRetries
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// Delay before retry number `attempt` (0-based): min(base·2^attempt, max) × U(0.5, 1),
    /// or the server's `Retry-After` when it gave one (capped at max).
    public func delay(attempt: Int, retryAfter: Duration?, random: Double) -> Duration {
        if let retryAfter { return min(retryAfter, maxDelay) }
        let exp = baseDelay * Int(1 << min(attempt, 20))
        return min(exp, maxDelay) * (0.5 + 0.5 * min(max(random, 0), 1))
    }
}
