import Foundation
import Logging
package import PlexusServer
import PlexusStorage
import PlexusStorageSQLite
import ServiceLifecycle

extension TestServer {
    /// The write+read+admin key every test server starts with, stored directly.
    fileprivate static func storeTestKey(_ store: SQLiteStore, now: Int64) async throws -> String {
        guard let org = try await store.organization(named: "default") else { throw CLIFailure(status: -1, output: "no default org") }
        let key = APIKeys.generate()
        try await store.createAPIKey(APIKeys.record(key: key, orgID: org.id, name: "test", scopes: [.write, .read, .admin], now: now))
        return key
    }

    /// A server in this process with `dataDir` already open as `store`.
    fileprivate static func inProcess(dataDir: String, port: Int, key: String) -> TestServer {
        TestServer(inProcessAt: dataDir, port: port, key: key)
    }
}

/// One change to a test server's configuration: `.set(\.openSignup, true)`.
package struct ServerSetting {
    let apply: (inout ServerConfiguration) -> Void

    package static func set<Value>(_ path: WritableKeyPath<ServerConfiguration, Value>, _ value: Value) -> ServerSetting {
        ServerSetting { $0[keyPath: path] = value }
    }
}

/// Runs `body` against a fresh server in this process: the application `plexus-server`
/// runs (`buildApplication` on the embedded store, the device drain beside it) on a
/// loopback port, started and stopped (gracefully, as on SIGTERM) around `body`, its data
/// removed afterwards. `settings` adjust the configuration (limits, clock, sign-up);
/// `/metrics` is empty here (the metrics system is per process: use
/// ``withServerProcess(environment:_:)`` to read it).
package func withServer(
    _ settings: ServerSetting..., body: (TestServer) async throws -> Void
) async throws {
    let dir = try TestServer.newDataDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var logger = Logger(label: "plexus.test-server")
    logger.logLevel = .warning
    var config = ServerConfiguration(host: "127.0.0.1", port: 0, now: { SQLiteStore.nowMicros() })
    config.metricsToken = TestServer.metricsToken
    for setting in settings { setting.apply(&config) }
    var storeConfig = SQLiteStore.Configuration()
    storeConfig.now = config.now
    let store = try SQLiteStore(directory: dir, configuration: storeConfig, logger: logger)
    let key = try await TestServer.storeTestKey(store, now: config.now())
    let hub = Hub()
    hub.restoreRecordings(try await store.recordings())
    let (ports, listening) = AsyncStream.makeStream(of: Int.self)
    let app = buildApplication(configuration: config, store: store, services: [store], hub: hub, logger: logger) { port in
        listening.yield(port)
    }
    // As `plexus-server` does: devices are drained first, then HTTP, then the store.
    let group = ServiceGroup(
        configuration: .init(services: [.init(service: app), .init(service: DeviceDrain(hub: hub))], logger: logger))
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask {
            defer { listening.finish() }
            try await group.run()
        }
        guard let port = await ports.first(where: { _ in true }) else {
            try await tasks.waitForAll()
            throw TestServer.CLIFailure(status: -1, output: "the server stopped before it listened")
        }
        let server = TestServer.inProcess(dataDir: dir, port: port, key: key)
        do {
            try await body(server)
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
    }
}
