public import ServiceLifecycle

/// Closes device connections on shutdown before the HTTP server does, so that a frame
/// a device is sending while the server stops is stored *and acknowledged* first, and
/// the device gets 1001 "going away" (and reconnects elsewhere) rather than a close in
/// the middle of its frame. Run it after the application in the same `ServiceGroup`:
/// groups shut down in reverse order, so it finishes before the server starts closing.
public struct DeviceDrain: Service {
    let hub: Hub
    let timeout: Duration

    public init(hub: Hub, timeout: Duration = .seconds(10)) {
        self.hub = hub
        self.timeout = timeout
    }

    public func run() async throws {
        // Returns once shutdown begins (or throws on cancellation: then nothing to drain).
        guard (try? await gracefulShutdown()) != nil else { return }
        let deadline = ContinuousClock.now + timeout
        // Devices that connect meanwhile are drained on the next pass.
        while hub.deviceCount > 0, ContinuousClock.now < deadline {
            await hub.drainDevices()
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
