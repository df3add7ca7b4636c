public import PlexusModel
import Synchronization

/// Registers of the AK8963 magnetometer inside the MPU9250.
enum AK8963Register {
    static let address: UInt8 = 0x0C
    static let whoAmI: UInt8 = 0x00  // WIA, reads 0x48
    static let identity: UInt8 = 0x48
    static let dataStart: UInt8 = 0x03  // HXL; 0x03–0x08 HXL..HZH, 0x09 ST2
    static let control1: UInt8 = 0x0A  // CNTL1
    static let sensitivity: UInt8 = 0x10  // ASAX, ASAY, ASAZ (fuse ROM)
    static let powerDown: UInt8 = 0x00
    static let fuseROM: UInt8 = 0x0F
    /// 16-bit output, continuous measurement mode 2 (100 Hz).
    static let continuous16Bit: UInt8 = 0x16
    /// ST2 bit 3: magnetic sensor overflow.
    static let overflow: UInt8 = 0x08
    /// µT per LSB in 16-bit mode.
    static let microteslaPerLSB = 0.15
}

/// InvenSense MPU9250 9-axis IMU: the MPU6050-compatible accelerometer and gyroscope plus
/// the AK8963 magnetometer, at 0x68 (AD0 low) or 0x69.
///
/// Setup: WHO_AM_I (0x75) must be 0x71 (MPU9250) or 0x73 (MPU9255); wake and ranges as
/// ``MPU6050``; then USER_CTRL (0x6A) = 0 (internal I2C master off) and INT_PIN_CFG
/// (0x37) = 0x02 (bypass), which puts the AK8963 on the host bus at 0x0C. The AK8963 must
/// answer WIA (0x00) = 0x48; its sensitivity adjustment ASA (0x10–0x12) is read in fuse-ROM
/// mode (CNTL1 0x0A = 0x0F), then it runs in continuous mode 2 with 16-bit output
/// (CNTL1 = 0x16).
///
/// Read: the 14-byte burst from 0x3B and 7 bytes from AK8963 0x03 (HXL…HZH little-endian,
/// then ST2, whose read releases the data lock). Magnetometer values are
/// `raw × 0.15 µT × ((ASA − 128) / 256 + 1)`, in the AK8963's own axes (x and y swapped and
/// z inverted relative to the accelerometer). On a magnetic overflow (ST2 bit 3) the `mag_*`
/// readings are left out of that sample.
///
/// Metrics: `accel_x/y/z` (g), `gyro_x/y/z` (°/s), `mag_x/y/z` (µT). Default 100 Hz.
public final class MPU9250: Sensor {
    public static let addresses: [UInt8] = [0x68, 0x69]
    /// WHO_AM_I values of chips with the AK8963 inside.
    public static let acceptedIdentities: Set<UInt8> = [0x71, 0x73]

    public let name = "MPU9250"
    public let description = "MPU9250 9-axis IMU: accelerometer (g), gyroscope (°/s), AK8963 magnetometer (µT)"
    public let metrics = MPUMotionCore.metrics + ["mag_x", "mag_y", "mag_z"]
    public let settings: SensorSettings
    public let device: I2CDevice
    /// The AK8963 behind the bypass (same bus, 0x0C).
    public let magnetometer: I2CDevice

    private struct State {
        var core: MPUMotionCore
        var ready = false
        /// Per-axis factor `(ASA − 128) / 256 + 1`.
        var adjustment: (Double, Double, Double) = (1, 1, 1)
    }

    private let state: Mutex<State>

    public init(
        bus: any I2CBus, address: UInt8 = 0x68, accelRange: AccelerometerRange = .g2, gyroRange: GyroscopeRange = .dps250,
        sampleRate: Double = 100, prefix: String = ""
    ) {
        device = I2CDevice(bus: bus, address: address)
        magnetometer = I2CDevice(bus: bus, address: AK8963Register.address)
        settings = SensorSettings(sampleRate: sampleRate, prefix: prefix)
        state = Mutex(State(core: MPUMotionCore(accelRange: accelRange, gyroRange: gyroRange)))
    }

    public var accelRange: AccelerometerRange { state.withLock { $0.core.accelRange } }
    public var gyroRange: GyroscopeRange { state.withLock { $0.core.gyroRange } }
    /// The sensitivity factors from the fuse ROM, `(ASA − 128) / 256 + 1` per axis; (1, 1, 1)
    /// before setup.
    public var magnetometerAdjustment: (x: Double, y: Double, z: Double) { state.withLock { $0.adjustment } }

    public func setup() throws {
        try state.withLock { s in
            s.ready = false
            try initialise(&s)
        }
    }

    private func initialise(_ s: inout State) throws {
        try MPUMotionCore.checkIdentity(device, accepted: Self.acceptedIdentities, driver: name)
        try s.core.configure(device)
        try device.writeByte(register: MPURegister.userControl, value: 0x00)
        try device.writeByte(register: MPURegister.intPinConfig, value: 0x02)

        let wia = try magnetometer.readByte(register: AK8963Register.whoAmI)
        guard wia == AK8963Register.identity else {
            throw SensorError(
                .wrongDevice,
                "MPU9250 magnetometer: expected AK8963 WIA 0x48 at 0x0c on bus \(device.bus.number) after enabling the bypass, read \(wia.hex)"
            )
        }
        // Mode changes go through power-down; the AK8963 needs 100 µs between them.
        try magnetometer.writeByte(register: AK8963Register.control1, value: AK8963Register.powerDown)
        WallClock.sleep(seconds: 0.0001)
        try magnetometer.writeByte(register: AK8963Register.control1, value: AK8963Register.fuseROM)
        WallClock.sleep(seconds: 0.0001)
        let asa = try magnetometer.readBytes(register: AK8963Register.sensitivity, count: 3)
        try magnetometer.writeByte(register: AK8963Register.control1, value: AK8963Register.powerDown)
        WallClock.sleep(seconds: 0.0001)
        try magnetometer.writeByte(register: AK8963Register.control1, value: AK8963Register.continuous16Bit)
        s.adjustment = (Self.adjustment(asa[0]), Self.adjustment(asa[1]), Self.adjustment(asa[2]))
        s.ready = true
    }

    /// `(ASA − 128) / 256 + 1` (AK8963 datasheet §8.3.11).
    static func adjustment(_ asa: UInt8) -> Double { (Double(asa) - 128) / 256 + 1 }

    public func read() throws -> [SensorReading] {
        try state.withLock { s in
            do {
                if !s.ready { try initialise(&s) }
                let now = WallClock.now()
                var readings = try s.core.read(device, timestamp: now)
                let m = try magnetometer.readBytes(register: AK8963Register.dataStart, count: 7)
                if m[6] & AK8963Register.overflow == 0 {
                    func axis(_ i: Int) -> Double { Double(Int16(bitPattern: UInt16(m[i + 1]) << 8 | UInt16(m[i]))) }
                    let k = AK8963Register.microteslaPerLSB
                    readings.append(SensorReading("mag_x", axis(0) * k * s.adjustment.0, timestamp: now))
                    readings.append(SensorReading("mag_y", axis(2) * k * s.adjustment.1, timestamp: now))
                    readings.append(SensorReading("mag_z", axis(4) * k * s.adjustment.2, timestamp: now))
                }
                return readings
            } catch {
                s.ready = false
                throw error
            }
        }
    }

    /// Powers the magnetometer down and puts the MPU back to sleep.
    public func cleanup() {
        state.withLock { s in
            s.ready = false
            try? magnetometer.writeByte(register: AK8963Register.control1, value: AK8963Register.powerDown)
            try? device.writeByte(register: MPURegister.powerManagement1, value: 0x40)
        }
    }

    public func configure(_ options: [String: PlexusValue]) throws {
        guard let core = try MPUMotionCore.reconfigured(state.withLock { $0.core }, options, settings: settings, driver: name) else {
            return
        }
        state.withLock { s in
            s.core = core
            s.ready = false  // the next read writes the new ranges
        }
    }

    public func isAvailable() -> Bool {
        guard let id = try? device.readByte(register: MPURegister.whoAmI) else { return false }
        return Self.acceptedIdentities.contains(id)
    }
}
