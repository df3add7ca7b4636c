import Foundation
import PlexusSensors
import PlexusServerTesting
import Testing

@testable import Plexus
@testable import PlexusCLI

@Suite("plexus start: stream control and sensor loss", .timeLimit(.minutes(2)))
struct DeviceAgentTests {
    @Test("stream control: start narrows, stop stops, a session streams its own way and then restores what was before")
    func streamControl() {
        var c = StreamControl(streaming: true)
        #expect(c.passes("a") && c.maximumRate == nil)
        c.start(.init(metrics: ["a"], intervalMs: 250))
        #expect(c.passes("a") && !c.passes("b") && c.maximumRate == 4)
        c.startSession(.init(metrics: [], intervalMs: 100))
        #expect(c.passes("b") && c.maximumRate == 10)
        c.startSession(.init(metrics: ["b"]))  // a second start keeps the first saved state
        c.stopSession()
        #expect(c.passes("a") && !c.passes("b") && c.maximumRate == 4)
        c.stop()
        #expect(!c.passes("a") && c.maximumRate == nil)
        c.startSession(.init())
        #expect(c.passes("z"))
        c.stopSession()
        #expect(!c.passes("z"))
        c.stopSession()  // without a session: nothing changes
        #expect(!c.passes("z"))
    }

    @Test("a sensor that loses its device mid-stream is reported to the dashboard (device.error) and streams again when it returns")
    func sensorLoss() async throws {
        try await withServer { s in
            var c = PlexusConfiguration(apiKey: s.key, sourceID: "lossy", gatewayURL: s.url, installID: "l0551")
            c.flushInterval = .milliseconds(20)
            let bus = Hardware.simulatedBus()
            let hub = SensorHub(configuration: .init(failuresBeforeSlowdown: 3, minimumRate: 0.1, disabledRetryInterval: 0.2))
            hub.add(MPU6050(bus: bus, address: 0x68, sampleRate: 20))
            let px = Plexus(configuration: c)
            let agent = DeviceAgent(px: px, hub: hub, console: Console(isTTY: false), streamAtStart: true)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await px.run() }
                group.addTask { try await agent.run() }
                #expect(await eventually(timeout: .seconds(5)) { px.isConnected })
                #expect(px.isConnected)
                // Streaming before the chip goes away.
                #expect(try await eventually { try await !s.rawValues("lossy", "accel_x").values.isEmpty })
                bus.disconnect(0x68)
                var errors: [String] = []
                _ = try await eventually {
                    errors = try await s.rawValues("lossy", "device.error").values.compactMap { $0 as? String }
                    return !errors.isEmpty
                }
                #expect(errors.first?.contains("read failed") == true, "\(errors)")
                let before = try await s.rawValues("lossy", "accel_x").values.count
                bus.reconnect(0x68)
                var after = before
                _ = try await eventually {
                    after = try await s.rawValues("lossy", "accel_x").values.count
                    return after >= before + 5
                }
                #expect(after >= before + 5, "streams again after the device returns")
                // The recovery notice travels in its own batch: wait for it as for the rest.
                _ = try await eventually {
                    errors = try await s.rawValues("lossy", "device.error").values.compactMap { $0 as? String }
                    return errors.contains { $0.contains("reading again") }
                }
                #expect(errors.contains { $0.contains("reading again") }, "\(errors)")
                group.cancelAll()
            }
        }
    }
}
