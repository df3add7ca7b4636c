import PlexusModel
import Synchronization
import Testing

@testable import PlexusSensors

/// A custom sensor as a user would write it.
final class BoardTemperature: Sensor {
    let name = "board_temp"
    let metrics = ["board.temperature"]
    let settings = SensorSettings(sampleRate: 1)

    func read() throws -> [SensorReading] {
        [SensorReading("board.temperature", 41.5, timestamp: 1_700_000_000.25)]
    }
}

@Suite("Sensor protocol")
struct SensorProtocolTests {
    @Test("a custom sensor is one line to register and reports the Python SDK's info shape")
    func customSensor() {
        let hub = SensorHub(now: ManualClock().reader)
        hub.add(BoardTemperature())
        #expect(hub.sensors.map(\.name) == ["board_temp"])
        #expect(
            hub.info.jsonText
                == #"[{"name":"board_temp","description":"board_temp","metrics":["board.temperature"],"sample_rate":1,"prefix":"","available":true}]"#
        )
        #expect(hub.poll().readings == [SensorReading("board.temperature", 41.5, timestamp: 1_700_000_000.25)])
    }

    @Test("default configure: sample_rate and prefix only, checked, all or nothing")
    func defaultConfigure() throws {
        let s = BoardTemperature()
        try s.configure(["sample_rate": 5, "prefix": "rack1"])
        #expect(s.sampleRate == 5 && s.prefix == "rack1")
        for bad: [String: PlexusValue] in [["sample_rate": 0], ["sample_rate": "fast"], ["prefix": 3], ["sample_rate": 2, "gain": 4]] {
            #expect(throws: SensorError.self) { try s.configure(bad) }
        }
        #expect(s.sampleRate == 5 && s.prefix == "rack1")
        s.sampleRate = -3  // ignored: not a rate
        #expect(s.sampleRate == 5)
    }

    @Test("a reading becomes a model point: microseconds, sorted tags")
    func point() {
        let r = SensorReading("accel_x", 0.5, timestamp: 1_700_000_000.5, tags: ["b": "2", "a": "1"])
        let p = r.point(sourceID: "drone-01")
        #expect(p.timestamp == 1_700_000_000_500_000)
        #expect(p.tags == [Tag("a", "1"), Tag("b", "2")])
        #expect(p.sourceID == "drone-01" && p.value == .number(0.5))
    }
}

@Suite("Sensor hub")
struct SensorHubTests {
    @Test("each sensor is read at its own rate (injected clock, no sleeping)")
    func perSensorIntervals() {
        let clock = ManualClock()
        let hub = SensorHub(now: clock.reader)
        let fast = FlakySensor(name: "fast", sampleRate: 8)
        let medium = FlakySensor(name: "medium", sampleRate: 2)
        let slow = FlakySensor(name: "slow", sampleRate: 1)
        hub.add(fast)
        hub.add(medium)
        hub.add(slow)
        hub.add(fast)  // the same instance twice: ignored
        var perSensor: [String: Int] = [:]
        for step in 0..<128 {  // t = 0, 1/64, …, 127/64 s: two seconds
            clock.set(Double(step) / 64)
            for batch in hub.poll().batches { perSensor[batch.sensor, default: 0] += 1 }
            if step == 0 { #expect(hub.secondsUntilNextRead() == 0.125) }
        }
        #expect(perSensor == ["fast": 16, "medium": 4, "slow": 2])
        #expect(fast.reads == 16 && medium.reads == 4 && slow.reads == 2)
    }

    @Test("a global rate cap (start_stream interval_ms) limits fast sensors only")
    func rateCap() {
        let clock = ManualClock()
        let hub = SensorHub(now: clock.reader)
        let fast = FlakySensor(name: "fast", sampleRate: 8)
        let slow = FlakySensor(name: "slow", sampleRate: 1)
        hub.add(fast)
        hub.add(slow)
        hub.maximumRate = 2  // interval_ms 500
        for step in 0..<128 {
            clock.set(Double(step) / 64)
            _ = hub.poll()
        }
        #expect(fast.reads == 4 && slow.reads == 2)
        #expect(hub.statuses.map(\.effectiveRate) == [2, 1])
    }

    @Test("prefix and sensor tags are applied to every reading")
    func prefixAndTags() {
        let hub = SensorHub(now: ManualClock().reader)
        let s = FlakySensor(sampleRate: 1)
        s.prefix = "robot1"
        s.settings.tags = ["site": "lab"]
        hub.add(s)
        let r = hub.poll().readings
        #expect(r.map(\.metric) == ["robot1.value"])
        #expect(r.first?.tags == ["site": "lab"])
        s.prefix = "arm."
        #expect(hub.readAll().readings.map(\.metric) == ["arm.value"])
    }

    @Test("5 consecutive failures halve the rate; below 0.1 Hz the sensor is disabled; success restores")
    func degradation() {
        let clock = ManualClock()
        let hub = SensorHub(now: clock.reader)
        let s = FlakySensor(sampleRate: 8)
        s.failing = true
        hub.add(s)
        var kinds: [(Int, SensorIssue.Kind, Double)] = []
        // Drive the hub to each due time, as a program's loop would.
        while let wait = hub.secondsUntilNextRead(), s.reads < 35 {
            clock.advance(wait)
            for issue in hub.poll().issues where issue.kind != .readFailed {
                kinds.append((issue.consecutiveFailures, issue.kind, issue.sampleRate))
            }
        }
        // 8 → 4 → 2 → 1 → 0.5 → 0.25 → 0.125 Hz, then 0.0625 < 0.1: disabled after 35 failures.
        #expect(kinds.map(\.0) == [5, 10, 15, 20, 25, 30, 35])
        #expect(kinds.map(\.1) == [.slowedDown, .slowedDown, .slowedDown, .slowedDown, .slowedDown, .slowedDown, .disabled])
        #expect(kinds.map(\.2) == [4, 2, 1, 0.5, 0.25, 0.125, 0])
        // Time spent: the first read at t = 0, four more 1/8 s apart, then five reads at each
        // halved rate: 4/8 + 5 × (1/4 + 1/2 + 1 + 2 + 4 + 8) = 0.5 + 78.75 = 79.25 s.
        #expect(clock.now == 79.25)
        let status = hub.status(of: s)
        #expect(status?.isDisabled == true && status?.effectiveRate == 0 && status?.consecutiveFailures == 35)
        #expect(status?.lastError == "simulated failure")

        // Disabled: not read for the retry interval (60 s) …
        for _ in 0..<59 {
            clock.advance(1)
            #expect(hub.poll().isEmpty)
        }
        #expect(s.reads == 35)
        // … then tried once; still failing: one readFailed, no further slow-down.
        clock.advance(1)
        let retry = hub.poll()
        #expect(retry.issues.map(\.kind) == [.readFailed] && s.reads == 36)
        #expect(retry.issues.first?.severity == .error)
        // The device works again: the next retry recovers to the full 8 Hz.
        s.failing = false
        clock.advance(60)
        let back = hub.poll()
        #expect(back.issues.map(\.kind) == [.recovered])
        #expect(back.readings.count == 1)
        #expect(
            hub.status(of: s)
                == SensorStatus(
                    name: "flaky", sampleRate: 8, effectiveRate: 8, consecutiveFailures: 0, isDisabled: false, lastError: nil))
        #expect(hub.secondsUntilNextRead() == 0.125)
    }

    @Test("without a retry interval a disabled sensor stays off (the Python SDK's rule)")
    func disabledForGood() throws {
        let clock = ManualClock()
        let hub = SensorHub(configuration: .init(disabledRetryInterval: nil), now: clock.reader)
        let s = FlakySensor(sampleRate: 0.15)  // one halving → 0.075 Hz: disabled after 5 failures
        s.failing = true
        hub.add(s)
        while let wait = hub.secondsUntilNextRead() {
            clock.advance(wait)
            _ = hub.poll()
        }
        #expect(s.reads == 5)
        #expect(hub.status(of: s)?.isDisabled == true)
        clock.advance(3600)
        #expect(hub.poll().isEmpty && s.reads == 5)
        // configure restores it.
        try hub.configure(sensor: "flaky", ["sample_rate": 1])
        s.failing = false
        #expect(hub.poll().readings.count == 1)
    }

    @Test("fewer than five failures: errors reported, rate kept, recovery reported")
    func transientFailure() {
        let clock = ManualClock()
        let hub = SensorHub(now: clock.reader)
        let s = FlakySensor(sampleRate: 4)
        hub.add(s)
        #expect(hub.poll().readings.count == 1)
        s.failing = true
        for n in 1...4 {
            clock.advance(0.25)
            let p = hub.poll()
            #expect(p.issues.count == 1)
            #expect(p.issues.first?.consecutiveFailures == n)
            #expect(p.issues.first?.error is FlakySensor.Failure)
        }
        #expect(hub.status(of: s)?.effectiveRate == 4)
        s.failing = false
        clock.advance(0.25)
        let p = hub.poll()
        #expect(p.issues.map(\.kind) == [.recovered] && p.issues.first?.severity == .info)
        #expect(p.readings.count == 1)
    }

    @Test("a device unplugged mid-stream: errors, then readings resume after a power-cycled re-plug")
    func deviceLostAndReplugged() throws {
        let clock = ManualClock()
        let hub = SensorHub(now: clock.reader)
        let bus = SimulatedI2CBus(devices: [0x68: .mpu6050(accel: (0, 0, 16384))])
        let mpu = MPU6050(bus: bus, sampleRate: 8)
        hub.add(mpu)
        #expect(hub.setup().isEmpty)

        func step() -> SensorPoll {
            clock.advance(hub.secondsUntilNextRead() ?? 1)
            return hub.poll()
        }
        #expect(number(step().readings, "accel_z") == 1.0)
        #expect(number(step().readings, "accel_z") == 1.0)

        bus.detach(0x68)
        var errors: [SensorIssue] = []
        for _ in 0..<7 {
            let p = step()
            #expect(p.readings.isEmpty)
            errors += p.issues
        }
        let failures = errors.filter { $0.kind == .readFailed }
        #expect(failures.count == 7)
        #expect((failures.first?.error as? I2CError)?.code == .noDevice)
        #expect(failures.first?.message.contains("no device acknowledged 0x68") == true)
        #expect(errors.contains { $0.kind == .slowedDown })
        #expect(hub.status(of: mpu)?.effectiveRate == 4)

        // Plugged back in: a fresh chip, asleep with its reset registers. The driver must
        // wake it and write the ranges again, otherwise it would read zeros.
        bus.attach(.mpu6050(accel: (0, 8192, 16384)), at: 0x68)
        bus.clearLog()
        let p = step()
        #expect(p.issues.map(\.kind) == [.recovered])
        #expect(number(p.readings, "accel_y") == 0.5)
        #expect(bus.writes.first == SimulatedI2CBus.Write(address: 0x68, register: 0x6B, value: 0x00))
        #expect(hub.status(of: mpu)?.effectiveRate == 8)
        #expect(number(step().readings, "accel_z") == 1.0)
    }

    @Test("a loose wire on an MPU9250 (both addresses silent, registers kept) recovers the magnetometer too")
    func looseWire() {
        let clock = ManualClock()
        let hub = SensorHub(now: clock.reader)
        let bus = SimulatedI2CBus(devices: [0x68: .mpu9250()])
        let mpu = MPU9250(bus: bus, sampleRate: 4)
        hub.add(mpu)
        #expect(hub.poll().readings.count == 9)
        bus.disconnect(0x68)
        bus.disconnect(0x0C)
        for _ in 0..<3 {
            clock.advance(0.25)
            #expect(hub.poll().issues.first?.kind == .readFailed)
        }
        bus.reconnect(0x68)
        bus.reconnect(0x0C)
        clock.advance(0.25)
        let p = hub.poll()
        #expect(p.readings.count == 9)
        #expect(p.issues.map(\.kind) == [.recovered])
    }

    @Test("setup failures are reported and the driver retries on its next read")
    func setupFailure() {
        let bus = SimulatedI2CBus()
        let clock = ManualClock()
        let hub = SensorHub(now: clock.reader)
        let bme = BME280(bus: bus, address: 0x76)
        hub.add(bme)
        let issues = hub.setup()
        #expect(issues.map(\.kind) == [.setupFailed])
        #expect(issues.first?.sensor == "BME280")
        bus.attach(.bme280(), at: 0x76)
        #expect(hub.poll().readings.map(\.metric) == ["temperature", "humidity", "pressure"])
    }

    @Test("configure by name through the hub")
    func configure() throws {
        let hub = SensorHub(now: ManualClock().reader)
        let bus = SimulatedI2CBus(devices: [0x68: .mpu6050(accel: (16384, 0, 0))])
        let mpu = MPU6050(bus: bus)
        hub.add(mpu)
        #expect(try hub.configure(sensor: "MPU6050", ["sample_rate": 50, "accel_range": 16]) == 1)
        #expect(mpu.sampleRate == 50 && mpu.accelRange == .g16)
        #expect(number(hub.poll().readings, "accel_x") == 8.0)
        #expect(throws: SensorError.self) { try hub.configure(sensor: "BME280", ["sample_rate": 1]) }
        #expect(hub.remove(named: "MPU6050") == 1 && hub.sensors.isEmpty)
    }

    @Test("run(): the loop sleeps until the next sensor is due and hands over each poll")
    func runLoop() async throws {
        let clock = ManualClock()
        let hub = SensorHub(now: clock.reader)
        hub.add(FlakySensor(name: "a", sampleRate: 4))
        hub.add(FlakySensor(name: "b", sampleRate: 1))
        let sleeps = Mutex<[Double]>([])
        var seen: [String] = []
        do {
            try await hub.run(
                sleep: { seconds in
                    let count = sleeps.withLock { s in
                        s.append(seconds)
                        return s.count
                    }
                    if count == 8 { throw CancellationError() }
                    clock.advance(seconds)
                },
                onPoll: { poll in seen += poll.batches.map(\.sensor) })
            Issue.record("run returned without cancellation")
        } catch is CancellationError {}
        #expect(sleeps.withLock { $0 } == Array(repeating: 0.25, count: 8))
        #expect(seen == ["a", "b", "a", "a", "a", "a", "b", "a", "a", "a"])
    }

    @Test("run() with the real clock: reads at once and stops when its task is cancelled")
    func runCancelled() async throws {
        let hub = SensorHub()
        let sensor = FlakySensor(sampleRate: 1)
        hub.add(sensor)
        let polled = AsyncStream<Int>.makeStream()
        let task = Task {
            try await hub.run { poll in polled.continuation.yield(poll.readings.count) }
        }
        var iterator = polled.stream.makeAsyncIterator()
        #expect(await iterator.next() == 1)
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        // One read at once; on a loaded machine the one-second wait may end before the
        // cancel arrives, so a second read is allowed, but never more.
        #expect((1...2).contains(sensor.reads))
    }
}
