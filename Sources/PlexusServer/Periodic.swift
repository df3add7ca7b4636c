import ServiceLifecycle

/// Runs `pass` at once and then every `interval` until graceful shutdown, and returns
/// then: the loop of the application's periodic services (``SocketWatch``,
/// ``RetentionService``). A pass in progress at shutdown ends first.
func everyInterval(_ interval: Duration, _ pass: @escaping @Sendable () async -> Void) async throws {
    do {
        try await cancelWhenGracefulShutdown {
            while true {
                await pass()
                try await Task.sleep(for: interval)
            }
        }
    } catch is CancellationError {
        // Shutdown.
    }
}
