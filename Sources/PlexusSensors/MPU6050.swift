public import PlexusModel
import Synchronization

/// Full-scale range of the MPU6050/MPU9250 accelerometer (ACCEL_CONFIG 0x1C, bits 4:3).
public enum AccelerometerRange: Int, Sendable, CaseIterable {
    case g2 = 2
    case g4 = 4
    case g8 = 8
    case g16 = 16

    /// AFS_SEL, the value of bits 4:3.
    public var selector: UInt8 {
        switch self {
        case .g2: 0
        case .g4: 1
        case .g8: 2
        case .g16: 3
        }
    }

    /// LSB per g: 16384, 8192, 4096, 2048.
    public var lsbPerG: Double { 32768 / Double(rawValue) }
}

/// Full-scale range of the MPU6050/MPU9250 gyroscope (GYRO_CONFIG 0x1B, bits 4:3).
public enum GyroscopeRange: Int, Sendable, CaseIterable {
    case dps250 = 250
    case dps500 = 500
    case dps1000 = 1000
    case dps2000 = 2000

    /// FS_SEL, the value of bits 4:3.
    public var selector: UInt8 {
        switch self {
        case .dps250: 0
        case .dps500: 1
        case .dps1000: 2
        case .dps2000: 3
        }
    }

    /// LSB per °/s as the datasheets state them: 131, 65.5, 32.8, 16.4.
    public var lsbPerDegreePerSecond: Double {
        switch self {
        case .dps250: 131
        case .dps500: 65.5
        case .dps1000: 32.8
        case .dps2000: 16.4
        }
    }
}

/// Register addresses shared by the MPU6050 and the MPU9250 (MPU6500 core).
enum MPURegister {
    static let gyroConfig: UInt8 = 0x1B
    static let accelConfig: UInt8 = 0x1C
    static let intPinConfig: UInt8 = 0x37
    static let accelXOutH: UInt8 = 0x3B
    static let userControl: UInt8 = 0x6A
    static let powerManagement1: UInt8 = 0x6B
    static let whoAmI: UInt8 = 0x75
}

/// The accelerometer/gyroscope half both MPU drivers share: configuration writes and the
/// 14-byte burst (ACCEL_XOUT_H 0x3B … GYRO_ZOUT_L 0x48: accel XYZ, temperature, gyro XYZ,
/// each big-endian signed 16-bit).
struct MPUMotionCore: Sendable {
    var accelRange: AccelerometerRange
    var gyroRange: GyroscopeRange

    static let metrics = ["accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z"]
    static let options = ["accel_range", "gyro_range"]

    /// Wakes the chip (PWR_MGMT_1 = 0: out of sleep, internal oscillator) and sets both ranges.
    func configure(_ device: I2CDevice) throws(I2CError) {
        try device.writeByte(register: MPURegister.powerManagement1, value: 0x00)
        try device.writeByte(register: MPURegister.gyroConfig, value: gyroRange.selector << 3)
        try device.writeByte(register: MPURegister.accelConfig, value: accelRange.selector << 3)
    }

    func read(_ device: I2CDevice, timestamp: Double) throws(I2CError) -> [SensorReading] {
        let b = try device.readBytes(register: MPURegister.accelXOutH, count: 14)
        return convert(b, timestamp: timestamp)
    }

    /// Scales a 14-byte burst: accel in g, gyro in °/s.
    func convert(_ b: [UInt8], timestamp: Double) -> [SensorReading] {
        func word(_ i: Int) -> Double { Double(Int16(bitPattern: UInt16(b[i]) << 8 | UInt16(b[i + 1]))) }
        let a = accelRange.lsbPerG
        let g = gyroRange.lsbPerDegreePerSecond
        return [
            SensorReading("accel_x", word(0) / a, timestamp: timestamp),
            SensorReading("accel_y", word(2) / a, timestamp: timestamp),
            SensorReading("accel_z", word(4) / a, timestamp: timestamp),
            SensorReading("gyro_x", word(8) / g, timestamp: timestamp),
            SensorReading("gyro_y", word(10) / g, timestamp: timestamp),
            SensorReading("gyro_z", word(12) / g, timestamp: timestamp),
        ]
    }

    /// Applies `accel_range` (2, 4, 8, 16) and `gyro_range` (250, 500, 1000, 2000) from
    /// options; throws before changing anything if a value is invalid.
    mutating func apply(_ options: inout [String: PlexusValue], driver: String) throws(SensorError) {
        var accel = accelRange
        var gyro = gyroRange
        if let v = options.removeValue(forKey: "accel_range") {
            guard case .number(let n) = v, let r = AccelerometerRange(rawValue: Int(exactly: n) ?? -1) else {
                throw SensorError(.invalidConfiguration, "\(driver) accel_range must be 2, 4, 8 or 16 (g), got \(v.jsonText)")
            }
            accel = r
        }
        if let v = options.removeValue(forKey: "gyro_range") {
            guard case .number(let n) = v, let r = GyroscopeRange(rawValue: Int(exactly: n) ?? -1) else {
                throw SensorError(
                    .invalidConfiguration, "\(driver) gyro_range must be 250, 500, 1000 or 2000 (°/s), got \(v.jsonText)")
            }
            gyro = r
        }
        accelRange = accel
        gyroRange = gyro
    }

    /// A driver's `configure`: the ranges into a copy of `current`, the rest into the common
    /// settings, nothing changed if any option is invalid. The new core when a range changed
    /// (the chip must be set up again before its next read), else nil.
    static func reconfigured(
        _ current: MPUMotionCore, _ options: [String: PlexusValue], settings: SensorSettings, driver: String
    ) throws -> MPUMotionCore? {
        var rest = options
        var core = current
        try core.apply(&rest, driver: driver)
        try settings.apply(rest, sensor: driver, driverOptions: Self.options)
        return core.accelRange != current.accelRange || core.gyroRange != current.gyroRange ? core : nil
    }

    static func checkIdentity(_ device: I2CDevice, accepted: Set<UInt8>, driver: String) throws {
        let id = try device.readByte(register: MPURegister.whoAmI)
        guard accepted.contains(id) else {
            throw SensorError(
                .wrongDevice,
                "\(driver) expected WHO_AM_I in \(accepted.sorted().map(\.hex)) at \(device.address.hex) on bus \(device.bus.number), read \(id.hex)"
            )
        }
    }
}

/// InvenSense MPU6050 6-axis IMU at 0x68 (AD0 low) or 0x69.
///
/// Setup checks WHO_AM_I (0x75) and accepts the register-compatible 0x68 (MPU6050),
/// 0x70 (MPU6500), 0x71 (MPU9250) and 0x73 (MPU9255), wakes the chip (PWR_MGMT_1 0x6B = 0)
/// and writes GYRO_CONFIG (0x1B) and ACCEL_CONFIG (0x1C). Each read is one 14-byte burst
/// from 0x3B. Metrics: `accel_x/y/z` in g, `gyro_x/y/z` in °/s. Options: `accel_range`,
/// `gyro_range`. Default 100 Hz.
public final class MPU6050: Sensor {
    public static let addresses: [UInt8] = [0x68, 0x69]
    /// WHO_AM_I values this driver can run (accelerometer and gyroscope only).
    public static let acceptedIdentities: Set<UInt8> = [0x68, 0x70, 0x71, 0x73]

    public let name = "MPU6050"
    public let description = "MPU6050 6-axis IMU: accelerometer (g) and gyroscope (°/s)"
    public let metrics = MPUMotionCore.metrics
    public let settings: SensorSettings
    public let device: I2CDevice

    private struct State {
        var core: MPUMotionCore
        var ready = false
    }

    private let state: Mutex<State>

    public init(
        bus: any I2CBus, address: UInt8 = 0x68, accelRange: AccelerometerRange = .g2, gyroRange: GyroscopeRange = .dps250,
        sampleRate: Double = 100, prefix: String = ""
    ) {
        device = I2CDevice(bus: bus, address: address)
        settings = SensorSettings(sampleRate: sampleRate, prefix: prefix)
        state = Mutex(State(core: MPUMotionCore(accelRange: accelRange, gyroRange: gyroRange)))
    }

    public var accelRange: AccelerometerRange { state.withLock { $0.core.accelRange } }
    public var gyroRange: GyroscopeRange { state.withLock { $0.core.gyroRange } }

    public func setup() throws {
        try state.withLock { s in
            s.ready = false
            try MPUMotionCore.checkIdentity(device, accepted: Self.acceptedIdentities, driver: name)
            try s.core.configure(device)
            s.ready = true
        }
    }

    public func read() throws -> [SensorReading] {
        try state.withLock { s in
            do {
                if !s.ready {
                    try MPUMotionCore.checkIdentity(device, accepted: Self.acceptedIdentities, driver: name)
                    try s.core.configure(device)
                    s.ready = true
                }
                return try s.core.read(device, timestamp: WallClock.now())
            } catch {
                s.ready = false
                throw error
            }
        }
    }

    /// Puts the chip back to sleep (PWR_MGMT_1 = 0x40).
    public func cleanup() {
        state.withLock { s in
            s.ready = false
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
