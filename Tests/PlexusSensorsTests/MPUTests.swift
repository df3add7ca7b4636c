import PlexusModel
import Testing

@testable import PlexusSensors

typealias W = SimulatedI2CBus.Write

@Suite("MPU6050 driver on the simulated bus")
struct MPU6050Tests {
    @Test(
        "setup checks WHO_AM_I, wakes the chip and writes both ranges",
        arguments: [
            (AccelerometerRange.g2, GyroscopeRange.dps250, UInt8(0x00), UInt8(0x00)),
            (.g4, .dps500, 0x08, 0x08),
            (.g8, .dps1000, 0x10, 0x10),
            (.g16, .dps2000, 0x18, 0x18),
        ])
    func setupWrites(accel: AccelerometerRange, gyro: GyroscopeRange, accelConfig: UInt8, gyroConfig: UInt8) throws {
        let bus = SimulatedI2CBus(devices: [0x68: .mpu6050()])
        let mpu = MPU6050(bus: bus, accelRange: accel, gyroRange: gyro)
        try mpu.setup()
        #expect(
            bus.writes == [
                W(address: 0x68, register: 0x6B, value: 0x00),
                W(address: 0x68, register: 0x1B, value: gyroConfig),
                W(address: 0x68, register: 0x1C, value: accelConfig),
            ])
        #expect(bus.device(at: 0x68)?.registers[0x6B] == 0x00)
    }

    @Test(
        "raw register values scale to g and °/s for every range",
        arguments: [
            // (range, raw accel, expected g)
            (AccelerometerRange.g2, [Int16(16384), -16384, 4096], [1.0, -1.0, 0.25]),
            (.g4, [16384, -16384, 4096], [2.0, -2.0, 0.5]),
            (.g8, [16384, -16384, 4096], [4.0, -4.0, 1.0]),
            (.g16, [16384, -16384, 32767], [8.0, -8.0, 32767.0 / 2048]),
        ])
    func accelerometerScaling(range: AccelerometerRange, raw: [Int16], expected: [Double]) throws {
        let bus = SimulatedI2CBus(devices: [0x68: .mpu6050(accel: (raw[0], raw[1], raw[2]))])
        let r = try MPU6050(bus: bus, accelRange: range).read()
        #expect(approx(number(r, "accel_x"), expected[0]))
        #expect(approx(number(r, "accel_y"), expected[1]))
        #expect(approx(number(r, "accel_z"), expected[2]))
    }

    @Test(
        "gyroscope LSB: 131, 65.5, 32.8, 16.4 per °/s",
        arguments: [
            (GyroscopeRange.dps250, [Int16(131), -262, 1310], [1.0, -2.0, 10.0]),
            (.dps500, [131, -655, 6550], [2.0, -10.0, 100.0]),
            (.dps1000, [164, -328, 3280], [5.0, -10.0, 100.0]),
            (.dps2000, [164, -82, 16400], [10.0, -5.0, 1000.0]),
        ])
    func gyroscopeScaling(range: GyroscopeRange, raw: [Int16], expected: [Double]) throws {
        let bus = SimulatedI2CBus(devices: [0x69: .mpu6050(gyro: (raw[0], raw[1], raw[2]))])
        let r = try MPU6050(bus: bus, address: 0x69, gyroRange: range).read()
        #expect(approx(number(r, "gyro_x"), expected[0]))
        #expect(approx(number(r, "gyro_y"), expected[1]))
        #expect(approx(number(r, "gyro_z"), expected[2]))
        #expect(r.map(\.metric) == ["accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z"])
    }

    @Test("one read is one 14-byte burst, not one transfer per byte")
    func burstRead() throws {
        let bus = SimulatedI2CBus(devices: [0x68: .mpu6050()])
        let mpu = MPU6050(bus: bus)
        try mpu.setup()
        bus.clearLog()
        _ = try mpu.read()
        #expect(bus.transferCount == 1)
        #expect(bus.writes.isEmpty)
    }

    @Test("a sleeping chip reads zeros; the driver wakes it before the first read")
    func wakesBeforeReading() throws {
        let bus = SimulatedI2CBus(devices: [0x68: .mpu6050(accel: (0, 0, 16384))])
        // Raw bus read without the driver: the chip is asleep after power-up.
        #expect(try bus.readBytes(address: 0x68, register: 0x3B, count: 6) == [0, 0, 0, 0, 0, 0])
        let r = try MPU6050(bus: bus).read()  // no explicit setup()
        #expect(number(r, "accel_z") == 1.0)
    }

    @Test("a chip that is not an MPU is refused with its WHO_AM_I in the message")
    func wrongChip() {
        // A DS3231 real-time clock also lives at 0x68; its register 0x75 is not 0x68.
        let bus = SimulatedI2CBus(devices: [0x68: SimulatedI2CDevice(name: "DS3231", registers: [0x75: 0x00])])
        let mpu = MPU6050(bus: bus)
        #expect(throws: SensorError.self) { try mpu.setup() }
        do {
            try mpu.setup()
        } catch let e as SensorError {
            #expect(e.code == .wrongDevice)
            #expect(e.message.contains("read 0x00"))
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(!mpu.isAvailable())
        #expect(bus.writes.isEmpty)
    }

    @Test("the MPU6050 driver runs the register-compatible MPU9250 core")
    func runsOnMPU9250() throws {
        let bus = SimulatedI2CBus(devices: [0x68: .mpu9250(accel: (8192, 0, 0))])
        #expect(number(try MPU6050(bus: bus).read(), "accel_x") == 0.5)
    }

    @Test("configure: ranges change the register and the scale; bad values change nothing")
    func configure() throws {
        let bus = SimulatedI2CBus(devices: [0x68: .mpu6050(accel: (16384, 0, 0))])
        let mpu = MPU6050(bus: bus)
        #expect(number(try mpu.read(), "accel_x") == 1.0)
        try mpu.configure(["accel_range": 4, "gyro_range": 2000, "sample_rate": 50, "prefix": "imu"])
        #expect(mpu.accelRange == .g4 && mpu.gyroRange == .dps2000)
        #expect(mpu.sampleRate == 50 && mpu.prefix == "imu")
        bus.clearLog()
        #expect(number(try mpu.read(), "accel_x") == 2.0)
        #expect(bus.writes.contains(W(address: 0x68, register: 0x1C, value: 0x08)))
        #expect(bus.writes.contains(W(address: 0x68, register: 0x1B, value: 0x18)))

        let bads: [[String: PlexusValue]] = [
            ["accel_range": 3], ["gyro_range": "fast"], ["sample_rate": -1, "accel_range": 8], ["odr": 1],
        ]
        for bad in bads {
            #expect(throws: SensorError.self) { try mpu.configure(bad) }
        }
        #expect(mpu.accelRange == .g4 && mpu.sampleRate == 50)
    }

    @Test("cleanup puts the chip back to sleep")
    func cleanup() throws {
        let bus = SimulatedI2CBus(devices: [0x68: .mpu6050()])
        let mpu = MPU6050(bus: bus)
        try mpu.setup()
        mpu.cleanup()
        #expect(bus.device(at: 0x68)?.registers[0x6B] == 0x40)
    }
}

@Suite("MPU9250 driver and its AK8963 magnetometer")
struct MPU9250Tests {
    @Test("setup: MPU wake and ranges, bypass on, AK8963 identity, fuse ROM, continuous 16-bit")
    func setupSequence() throws {
        let bus = SimulatedI2CBus(devices: [0x68: .mpu9250()])
        #expect(bus.presentAddresses == [0x68])  // the AK8963 is hidden until the bypass is on
        let mpu = MPU9250(bus: bus, accelRange: .g8, gyroRange: .dps500)
        try mpu.setup()
        #expect(
            bus.writes == [
                W(address: 0x68, register: 0x6B, value: 0x00),
                W(address: 0x68, register: 0x1B, value: 0x08),
                W(address: 0x68, register: 0x1C, value: 0x10),
                W(address: 0x68, register: 0x6A, value: 0x00),
                W(address: 0x68, register: 0x37, value: 0x02),
                W(address: 0x0C, register: 0x0A, value: 0x00),
                W(address: 0x0C, register: 0x0A, value: 0x0F),
                W(address: 0x0C, register: 0x0A, value: 0x00),
                W(address: 0x0C, register: 0x0A, value: 0x16),
            ])
        #expect(bus.presentAddresses == [0x0C, 0x68])
        // ASA 176, 177, 165 → (ASA − 128) / 256 + 1; the simulated chip returns them only in
        // fuse-ROM mode, so these values prove the driver switched modes before reading.
        let k = mpu.magnetometerAdjustment
        #expect(k.x == 1.1875 && k.y == 1.19140625 && k.z == 1.14453125)
    }

    @Test("magnetometer: little-endian raw × 0.15 µT × ASA adjustment; accel and gyro as MPU6050")
    func magnetometerScaling() throws {
        let bus = SimulatedI2CBus(devices: [
            0x68: .mpu9250(
                accel: (0, 0, 2048), gyro: (0, 328, 0),
                magnetometer: .ak8963(sensitivity: (176, 177, 165), field: (200, -300, 400)))
        ])
        let r = try MPU9250(bus: bus, accelRange: .g16, gyroRange: .dps1000).read()
        #expect(r.map(\.metric) == ["accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z", "mag_x", "mag_y", "mag_z"])
        #expect(number(r, "accel_z") == 1.0)
        #expect(approx(number(r, "gyro_y"), 10.0))
        // 200 × 0.15 × 1.1875 = 35.625; −300 × 0.15 × 1.19140625 = −53.61328125;
        // 400 × 0.15 × 1.14453125 = 68.671875.
        #expect(approx(number(r, "mag_x"), 35.625))
        #expect(approx(number(r, "mag_y"), -53.61328125))
        #expect(approx(number(r, "mag_z"), 68.671875))
    }

    @Test("a magnetic overflow (ST2 HOFL) drops the mag readings of that sample only")
    func overflow() throws {
        let bus = SimulatedI2CBus(devices: [0x68: .mpu9250(magnetometer: .ak8963(overflow: true))])
        let r = try MPU9250(bus: bus).read()
        #expect(r.count == 6)
        #expect(number(r, "mag_x") == nil)
    }

    @Test("an MPU6050 (WHO_AM_I 0x68) is refused by the MPU9250 driver")
    func refusesMPU6050() {
        let bus = SimulatedI2CBus(devices: [0x68: .mpu6050()])
        #expect(throws: SensorError.self) { try MPU9250(bus: bus).setup() }
    }

    @Test("a wrong magnetometer identity is reported")
    func wrongMagnetometer() {
        var ak = SimulatedI2CDevice.ak8963()
        ak.registers[0x00] = 0x00
        let bus = SimulatedI2CBus(devices: [0x68: .mpu9250(magnetometer: ak)])
        do {
            try MPU9250(bus: bus).setup()
            Issue.record("setup succeeded")
        } catch let e as SensorError {
            #expect(e.code == .wrongDevice)
            #expect(e.message.contains("AK8963"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
