public import PlexusModel

/// A sensor named by a config string or found by a scan: driver, address and bus.
///
/// Config strings are the reference's form, persisted in the device config as `sensors`:
/// `name:0xADDR[:bus]` with the bus omitted when it is 1 (`mpu9250:0x68`,
/// `bme280:0x77:0`), or the bare name for sensors without an address (`system`).
public struct SensorDescriptor: Sendable, Hashable, CustomStringConvertible {
    /// The registry name, lowercase: `mpu6050`, `mpu9250`, `bme280`, `system`.
    public var driver: String
    /// The 7-bit I2C address; nil for `system`.
    public var address: UInt8?
    /// The I2C bus number (`/dev/i2c-N`).
    public var bus: Int

    public init(driver: String, address: UInt8?, bus: Int = 1) {
        self.driver = driver.lowercased()
        self.address = address
        self.bus = bus
    }

    /// Parses `name:0xADDR[:bus]` or a bare `name`.
    /// - Throws: ``SensorError`` `.invalidConfiguration` for a malformed string,
    ///   `.unknownDriver` for a name this build has no driver for.
    public init(configString: String) throws(SensorError) {
        let parts = configString.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let name = parts[0].trimmingCharacters(" ").lowercased()
        guard SensorRegistry.supported.contains(name) else {
            let supported = SensorRegistry.supported.joined(separator: ", ")
            if SensorRegistry.referenceOnly.contains(name) {
                throw SensorError(
                    .unknownDriver, "'\(name)' in '\(configString)' has no driver in this build (supported: \(supported))")
            }
            throw SensorError(.unknownDriver, "unknown sensor '\(name)' in '\(configString)' (supported: \(supported))")
        }
        if !SensorRegistry.needsAddress(name) {
            guard parts.count == 1 else {
                throw SensorError(.invalidConfiguration, "'\(name)' takes no address, got '\(configString)'")
            }
            self.init(driver: name, address: nil)
            return
        }
        guard parts.count == 2 || parts.count == 3 else {
            throw SensorError(.invalidConfiguration, "expected name:0xADDR[:bus], got '\(configString)'")
        }
        guard let address = Self.parseAddress(parts[1].trimmingCharacters(" ")), i2cScanAddresses.contains(address) else {
            throw SensorError(.invalidConfiguration, "'\(parts[1])' in '\(configString)' is not an I2C address 0x03–0x77")
        }
        var bus = 1
        if parts.count == 3 {
            guard let b = Int(parts[2].trimmingCharacters(" ")), b >= 0 else {
                throw SensorError(.invalidConfiguration, "'\(parts[2])' in '\(configString)' is not a bus number")
            }
            bus = b
        }
        self.init(driver: name, address: address, bus: bus)
    }

    private static func parseAddress(_ s: String) -> UInt8? {
        let lower = s.lowercased()
        if lower.hasPrefix("0x") { return UInt8(lower.dropFirst(2), radix: 16) }
        return UInt8(lower)
    }

    /// `mpu9250:0x68`, `bme280:0x77:0`, `system`.
    public var configString: String {
        guard let address else { return driver }
        return bus == 1 ? "\(driver):\(address.hex)" : "\(driver):\(address.hex):\(bus)"
    }

    /// The chip's name as its driver reports it (`MPU9250`), or the registry name.
    public var chip: String {
        switch driver {
        case "mpu6050": "MPU6050"
        case "mpu9250": "MPU9250"
        case "bme280": "BME280"
        default: driver
        }
    }

    public var description: String { configString }

    /// Builds the driver. `openBus` is called for I2C drivers only.
    public func makeSensor(openBus: (Int) throws -> any I2CBus) throws -> any Sensor {
        switch driver {
        case "system":
            return SystemSensor()
        case "mpu6050", "mpu9250", "bme280":
            guard let address else {
                throw SensorError(.invalidConfiguration, "\(driver) needs an I2C address")
            }
            let i2c = try openBus(bus)
            switch driver {
            case "mpu6050": return MPU6050(bus: i2c, address: address)
            case "mpu9250": return MPU9250(bus: i2c, address: address)
            default: return BME280(bus: i2c, address: address)
            }
        default:
            throw SensorError(.unknownDriver, "no driver for '\(driver)'")
        }
    }
}

/// The driver names this build knows.
public enum SensorRegistry {
    /// Names with a driver here.
    public static let supported = ["system", "mpu6050", "mpu9250", "bme280"]
    /// Names the Python SDK 0.1.0 registry has that this build does not implement.
    public static let referenceOnly = ["gps", "ina219", "sht3x", "bh1750", "vl53l0x", "ads1115", "qmc5883l", "hmc5883l", "adxl345"]

    static func needsAddress(_ name: String) -> Bool { name != "system" }

    /// Builds sensors from config strings, opening each bus once.
    /// - Parameter openBus: opens bus N; default ``LinuxI2CBus``.
    public static func makeSensors(
        configStrings: [String],
        openBus: (Int) throws -> any I2CBus = { n in try LinuxI2CBus(bus: n) }
    ) throws -> [any Sensor] {
        var buses: [Int: any I2CBus] = [:]
        return try configStrings.map { string in
            try SensorDescriptor(configString: string).makeSensor { n in
                if let bus = buses[n] { return bus }
                let bus = try openBus(n)
                buses[n] = bus
                return bus
            }
        }
    }
}

/// What a scan of one bus found.
public struct I2CScanResult: Sendable, Hashable {
    public var bus: Int
    /// Every address that acknowledged, sorted.
    public var addresses: [UInt8]
    /// The addresses identified as supported chips.
    public var sensors: [SensorDescriptor]

    /// Addresses that answered but are not a supported sensor.
    public var unidentified: [UInt8] {
        let known = Set(sensors.compactMap(\.address))
        return addresses.filter { !known.contains($0) }
    }
}

/// Finds supported sensors on I2C buses.
///
/// Every address 0x03–0x77 is probed (``I2CBus/probe(address:)``); an address that answers
/// is identified by its identity register, never by address alone:
/// - 0x68/0x69: WHO_AM_I (0x75) 0x71 or 0x73 → `mpu9250` (it has the AK8963); 0x68 or 0x70
///   (MPU6500) → `mpu6050`;
/// - 0x76/0x77: chip id (0xD0) 0x60 → `bme280` (a BMP280 is not reported).
public enum SensorDetector {
    /// Scans one bus.
    public static func scan(_ bus: any I2CBus) -> I2CScanResult {
        let addresses = i2cScanAddresses.filter { bus.probe(address: $0) }
        let sensors = addresses.compactMap { identify(bus: bus, address: $0) }
        return I2CScanResult(bus: bus.number, addresses: addresses, sensors: sensors)
    }

    /// Scans several buses.
    public static func scan(_ buses: [any I2CBus]) -> [I2CScanResult] {
        buses.map { scan($0) }
    }

    /// Opens and scans every `/dev/i2c-N`. Buses that cannot be opened are returned as errors
    /// (e.g. `.permissionDenied` with the `usermod` hint). Both lists are empty on a machine
    /// without I2C.
    public static func scanLinuxBuses(devDirectory: String = "/dev") -> (results: [I2CScanResult], errors: [I2CError]) {
        var results: [I2CScanResult] = []
        var errors: [I2CError] = []
        for n in LinuxI2CBus.availableBuses(in: devDirectory) {
            do {
                let bus = try LinuxI2CBus(bus: n, devicePath: FileAccess.join(devDirectory, "i2c-\(n)"))
                results.append(scan(bus))
                bus.close()
            } catch {
                errors.append(error)
            }
        }
        return (results, errors)
    }

    /// The supported chip at `address`, or nil.
    public static func identify(bus: any I2CBus, address: UInt8) -> SensorDescriptor? {
        let device = I2CDevice(bus: bus, address: address)
        if MPU6050.addresses.contains(address), let id = try? device.readByte(register: MPURegister.whoAmI) {
            if MPU9250.acceptedIdentities.contains(id) {
                return SensorDescriptor(driver: "mpu9250", address: address, bus: bus.number)
            }
            if id == 0x68 || id == 0x70 {
                return SensorDescriptor(driver: "mpu6050", address: address, bus: bus.number)
            }
        }
        if BME280.addresses.contains(address), (try? device.readByte(register: BME280Register.chipID)) == BME280Register.identity {
            return SensorDescriptor(driver: "bme280", address: address, bus: bus.number)
        }
        return nil
    }
}
