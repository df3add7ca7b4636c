import Foundation
public import Logging
import ServiceLifecycle

extension SQLiteStore {
    /// Runs `body` with a fresh store on disk (in a new temporary directory unless one is
    /// given), running as a service as it does in the server, then stops it gracefully and
    /// removes the temporary directory. For tests and tools: it is the real engine.
    public static func withTemporary(
        directory: String? = nil, configuration: Configuration = .init(), logLevel: Logger.Level = .warning,
        _ body: (SQLiteStore) async throws -> Void
    ) async throws {
        let dir = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("plexus-test-\(UUID().uuidString)").path
        defer { if directory == nil { try? FileManager.default.removeItem(atPath: dir) } }
        var logger = Logger(label: "plexus.storage.sqlite.temporary")
        logger.logLevel = logLevel
        let store = try SQLiteStore(directory: dir, configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [store], gracefulShutdownSignals: [], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                try await body(store)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
