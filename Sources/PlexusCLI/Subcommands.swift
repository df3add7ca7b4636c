import ArgumentParser
import Foundation
import Logging
import Plexus
import PlexusModel
import PlexusSensors
import ServiceLifecycle
import UnixSignals

struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Scan the sensors, connect, stream, and obey the dashboard until SIGINT or SIGTERM.",
        discussion: """
            Without a key (no --key, no PLEXUS_API_KEY, none in ~/.plexus/config.json) and on a \
            terminal, it offers to sign up or sign in and saves the new key.
            """)

    @Option(name: [.customLong("key"), .customShort("k")], help: "An API key with the write scope (saved to the config).")
    var key: String?
    @Option(name: [.customLong("name"), .customShort("n")], help: "The device's name, its source_id (saved to the config).")
    var name: String?
    @Option(help: "The server's URL (saved to the config). Default: the config's, or http://127.0.0.1:8080.")
    var server: String?
    @Flag(help: "Use a simulated I2C bus with an MPU6050 and a BME280 instead of /dev/i2c-*.")
    var simulate = false
    @Flag(help: "Wait for the dashboard's start_stream instead of streaming every metric at once.")
    var waitForStream = false
    @Option(help: ArgumentHelp("Where the i2c-N device files are.", visibility: .hidden))
    var devDirectory = "/dev"

    func validate() throws {
        if let name, !Identifier.isValidSourceID(name) {
            throw ValidationError("--name must match ^[a-z0-9][a-z0-9._-]*$")
        }
    }

    func run() async throws {
        let home = DeviceHome.current
        let serverURL = home.server(server)
        var apiKey = home.apiKey(key)
        if apiKey == nil {
            guard Terminal.isInteractive else {
                throw CLIFailure("no API key: pass --key plx_…, set PLEXUS_API_KEY, or run `plexus login`")
            }
            let credentials = try await Accounts.interactive(server: serverURL)
            Accounts.save(credentials, server: serverURL, home: home)
            apiKey = credentials.apiKey
            print("✓ Signed in; the key is saved in \(home.file.path)")
        }
        home.file.update { o in
            if let key { o["api_key"] = key }
            if server != nil || o["gateway_url"] == nil { home.saveServer(serverURL, in: &o) }
            if let name { o["source_id"] = name }
            if o["source_id"] as? String == nil { o["source_id"] = defaultDeviceName() }
        }

        let console = Console()
        let found = Hardware.discover(simulate: simulate, devDirectory: devDirectory)
        for problem in found.problems { console.log("⚠ \(problem)") }
        let hub = SensorHub()
        for s in found.sensors { hub.add(s) }
        for issue in hub.setup() { console.log("⚠ \(issue)") }
        console.log(
            "sensors: " + hub.sensors.map { "\($0.name) (\($0.metrics.count) metrics, \($0.sampleRate) Hz)" }.joined(separator: ", "))

        var config: PlexusConfiguration
        do {
            config = try PlexusConfiguration.resolve(apiKey: apiKey, gatewayURL: serverURL, environment: home.environment, home: home.path)
        } catch {
            throw CLIFailure(error.message)
        }
        config.platform = DeviceInfo.platform
        config.agentVersion = DeviceInfo.version
        config.sensors = hub.info
        let px = Plexus(configuration: config)
        let agent = DeviceAgent(px: px, hub: hub, console: console, streamAtStart: !waitForStream)
        console.log("connecting to \(config.gatewayWSURL) as \(config.sourceID) (key \(Terminal.mask(config.apiKey)))")

        var logger = Logger(label: "plexus")
        logger.logLevel = .warning
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: px), .init(service: agent)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        if console.isTTY { print("") }
        console.log("stopped; \(px.bufferedPoints) points left undelivered")
    }
}

struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send one value now (over HTTP) and wait until it is stored.")

    @Argument(help: "The metric, e.g. temperature.")
    var metric: String
    @Argument(help: "A number, true/false, JSON (an object or array), or text.")
    var value: String
    @Option(name: .customLong("tag"), help: "A tag key=value (repeatable).")
    var tags: [String] = []
    @Option(help: "The server's URL.")
    var server: String?
    @Option(name: [.customLong("key"), .customShort("k")], help: "An API key with the write scope.")
    var key: String?

    func validate() throws {
        for t in tags where !t.contains("=") { throw ValidationError("--tag takes key=value, got '\(t)'") }
    }

    func run() async throws {
        let home = DeviceHome.current
        var config: PlexusConfiguration
        do {
            config = try PlexusConfiguration.resolve(
                apiKey: key, gatewayURL: home.server(server), environment: home.environment, home: home.path)
        } catch {
            throw CLIFailure(error.message)
        }
        config.transport = .http
        config.retry = RetryPolicy(maxRetries: 2)
        config.bufferPath = nil  // one value, delivered before we return: `plexus start` owns the buffer
        let parsed: PlexusValue = PlexusValue(jsonText: value) ?? .string(value)
        var tagMap: [String: String] = [:]
        for t in tags {
            let parts = t.split(separator: "=", maxSplits: 1)
            tagMap[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        do {
            try await withPlexus(config) { px in
                try px.send(metric, parsed, tags: tagMap)
                try await px.flush()
            }
        } catch let e as PlexusError {
            throw CLIFailure(e.message)
        }
        print("✓ \(metric) = \(parsed.jsonText) sent as \(config.sourceID)")
    }
}

struct Scan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the I2C sensors found on this device.")

    @Flag(help: "Scan the simulated bus (an MPU6050 and a BME280).")
    var simulate = false
    @Option(help: ArgumentHelp("Where the i2c-N device files are.", visibility: .hidden))
    var devDirectory = "/dev"

    func run() async throws {
        let found = Hardware.discover(simulate: simulate, devDirectory: devDirectory)
        if found.scans.isEmpty { print("No I2C buses found (\(devDirectory)/i2c-*); only the system sensor is available.") }
        for scan in found.scans {
            print("bus \(scan.bus): \(scan.addresses.count) address(es) answer")
            for d in scan.sensors { print("  \(d.address.map { String(format: "0x%02x", $0) } ?? "-")  \(d.chip)  (\(d.configString))") }
            for a in scan.unidentified { print(String(format: "  0x%02x  unknown device", a)) }
        }
        for p in found.problems { print("⚠ \(p)") }
        print("sensors: " + found.sensors.map(\.name).joined(separator: ", "))
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the key (masked), server and identity of this device.")

    func run() async throws {
        let home = DeviceHome.current
        let stored = home.file.load()
        let key = home.apiKey(nil)
        print("config:     \(home.file.path)\(FileManager.default.fileExists(atPath: home.file.path) ? "" : " (none yet)")")
        print("api key:    \(key.map(Terminal.mask) ?? "none: run `plexus login`")")
        print("server:     \(home.server(nil))")
        print("source_id:  \(stored["source_id"] as? String ?? "not set (`plexus start` uses the host name)")")
        print("install_id: \(stored["install_id"] as? String ?? "not yet generated")")
        if let org = stored["org_id"] as? String { print("org_id:     \(org)") }
        let bufferPath = home.file.bufferPath
        if stored["persistent_buffer"] as? Bool == false {
            print("buffer:     memory only (persistent_buffer is false)")
        } else {
            print("buffer:     \(Plexus.bufferedPoints(inBuffer: bufferPath) ?? 0) points waiting in \(bufferPath)")
        }
    }
}

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sign in (or up) and save a device key, or save a key you have.")

    @Option(name: [.customLong("key"), .customShort("k")], help: "Save this key instead of signing in.")
    var key: String?
    @Option(help: "Email, to sign in without prompts.")
    var email: String?
    @Option(help: "Password, to sign in without prompts.")
    var password: String?
    @Flag(help: "Create an account (with --email and --password).")
    var signup = false
    @Option(help: "The server's URL.")
    var server: String?
    @Option(name: [.customLong("name"), .customShort("n")], help: "Also save the device's name (source_id).")
    var name: String?

    func validate() throws {
        if (email == nil) != (password == nil) { throw ValidationError("--email and --password go together") }
        if let name, !Identifier.isValidSourceID(name) { throw ValidationError("--name must match ^[a-z0-9][a-z0-9._-]*$") }
    }

    func run() async throws {
        let home = DeviceHome.current
        let url = home.server(server)
        let credentials: Accounts.Credentials
        if let key {
            credentials = Accounts.Credentials(apiKey: key, orgID: nil)
        } else if let email, let password {
            credentials = try await Accounts.request(signup ? .signup : .signin, server: url, email: email, password: password)
        } else {
            guard Terminal.isInteractive else { throw CLIFailure("no terminal: pass --key, or --email and --password") }
            credentials = try await Accounts.interactive(server: url)
        }
        Accounts.save(credentials, server: url, home: home)
        if let name { home.file.update { $0["source_id"] = name } }
        print("✓ Saved key \(Terminal.mask(credentials.apiKey)) for \(url) in \(home.file.path)")
    }
}

struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Forget the API key (the rest of the config stays).")

    func run() async throws {
        let home = DeviceHome.current
        home.file.update { $0["api_key"] = NSNull() }
        print("✓ Logged out: the key is removed from \(home.file.path)")
    }
}

struct Reset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete ~/.plexus/config.json (key, name, install id).")

    @Flag(name: [.customLong("yes"), .customShort("y")], help: "Do not ask.")
    var yes = false

    func run() async throws {
        let home = DeviceHome.current
        if !yes {
            guard Terminal.isInteractive else { throw CLIFailure("no terminal to confirm on: pass --yes") }
            let answer = Terminal.prompt("Delete \(home.file.path)? [y/N]") ?? ""
            guard answer.lowercased().hasPrefix("y") else { throw CLIFailure("nothing deleted") }
        }
        try? FileManager.default.removeItem(atPath: home.file.path)
        print("✓ Reset: \(home.file.path) deleted")
    }
}
