import PlexusModel
import PlexusSensors

/// Finding the sensors of this device: every `/dev/i2c-N`, or a simulated bus.
enum Hardware {
    struct Found {
        var sensors: [any Sensor] = []
        var scans: [I2CScanResult] = []
        var problems: [String] = []
    }

    /// One simulated bus (number 1) with an MPU6050 at 0x68 and a BME280 at 0x76, for
    /// trying `plexus start` on a machine without hardware, and for the tests.
    static func simulatedBus() -> SimulatedI2CBus {
        SimulatedI2CBus(
            number: 1,
            devices: [
                0x68: .mpu6050(accel: (410, -205, 16_220), gyro: (131, -66, 262), temperature: 1_200),
                0x76: .bme280(),
            ])
    }

    /// Scans and builds a driver for every chip found, plus the `system` sensor.
    static func discover(simulate: Bool, devDirectory: String = "/dev") -> Found {
        var found = Found()
        if simulate {
            let bus = simulatedBus()
            let scan = SensorDetector.scan(bus)
            found.scans = [scan]
            for d in scan.sensors {
                do { found.sensors.append(try d.makeSensor { _ in bus }) } catch { found.problems.append("\(d): \(error)") }
            }
        } else {
            let (results, errors) = SensorDetector.scanLinuxBuses(devDirectory: devDirectory)
            found.scans = results
            found.problems += errors.map { "\($0)" }
            var buses: [Int: any I2CBus] = [:]
            for d in results.flatMap(\.sensors) {
                do {
                    found.sensors.append(
                        try d.makeSensor { n in
                            if let b = buses[n] { return b }
                            let b = try LinuxI2CBus(bus: n, devicePath: devDirectory + "/i2c-\(n)")
                            buses[n] = b
                            return b
                        })
                } catch {
                    found.problems.append("\(d): \(error)")
                }
            }
        }
        found.sensors.append(SystemSensor())
        return found
    }
}
