import PlexusModel
import Testing

@testable import PlexusSensors

@Suite("Detection and config strings")
struct DetectionTests {
    static let eeprom = SimulatedI2CDevice(name: "24C32 EEPROM", registers: [0x00: 0xFF, 0x75: 0x71, 0xD0: 0x60])

    @Test("MPU9250 at 0x68, BME280 at 0x77, an unknown device at 0x50: exactly the two sensors")
    func scan() {
        let bus = SimulatedI2CBus(number: 1, devices: [0x68: .mpu9250(), 0x77: .bme280(), 0x50: Self.eeprom])
        let result = SensorDetector.scan(bus)
        #expect(result.addresses == [0x50, 0x68, 0x77])
        #expect(
            result.sensors == [
                SensorDescriptor(driver: "mpu9250", address: 0x68, bus: 1),
                SensorDescriptor(driver: "bme280", address: 0x77, bus: 1),
            ])
        #expect(result.sensors.map(\.configString) == ["mpu9250:0x68", "bme280:0x77"])
        #expect(result.sensors.map(\.chip) == ["MPU9250", "BME280"])
        #expect(result.unidentified == [0x50])
        #expect(bus.writes.isEmpty)  // detection only reads
    }

    @Test("identity decides, not the address: MPU6050 vs MPU9250, BME280 vs BMP280, RTC at 0x68")
    func identity() {
        var bmp280 = SimulatedI2CDevice.bme280()
        bmp280.registers[0xD0] = 0x58
        let rtc = SimulatedI2CDevice(name: "DS3231", registers: [0x75: 0x00])
        let bus0 = SimulatedI2CBus(number: 0, devices: [0x69: .mpu6050(), 0x76: bmp280])
        let bus3 = SimulatedI2CBus(number: 3, devices: [0x68: rtc, 0x76: .bme280()])
        let results = SensorDetector.scan([bus0, bus3])
        #expect(results.map(\.bus) == [0, 3])
        #expect(results[0].sensors.map(\.configString) == ["mpu6050:0x69:0"])
        #expect(results[0].unidentified == [0x76])
        #expect(results[1].sensors.map(\.configString) == ["bme280:0x76:3"])
        #expect(results[1].unidentified == [0x68])
    }

    @Test(
        "config strings round-trip",
        arguments: [
            "mpu9250:0x68", "mpu6050:0x69", "bme280:0x77", "bme280:0x76:0", "mpu9250:0x68:20", "system",
        ])
    func roundTrip(_ string: String) throws {
        #expect(try SensorDescriptor(configString: string).configString == string)
    }

    @Test("config strings are read leniently: case, spaces, decimal addresses, explicit bus 1")
    func lenient() throws {
        #expect(try SensorDescriptor(configString: "MPU9250:0X68").configString == "mpu9250:0x68")
        #expect(try SensorDescriptor(configString: "bme280: 0x77 :1").configString == "bme280:0x77")
        #expect(try SensorDescriptor(configString: "bme280:118").configString == "bme280:0x76")
    }

    @Test(
        "bad config strings throw with the reason",
        arguments: [
            ("mpu9250", SensorError.Code.invalidConfiguration),
            ("mpu9250:0x80", .invalidConfiguration),
            ("bme280:zz", .invalidConfiguration),
            ("bme280:0x76:x", .invalidConfiguration),
            ("bme280:0x76:1:2", .invalidConfiguration),
            ("system:0x10", .invalidConfiguration),
            ("ina219:0x40", .unknownDriver),
            ("toaster:0x10", .unknownDriver),
        ])
    func bad(_ string: String, _ code: SensorError.Code) {
        do {
            _ = try SensorDescriptor(configString: string)
            Issue.record("\(string) parsed")
        } catch {
            #expect(error.code == code)
            #expect(error.message.contains(string) || error.message.contains(String(string.split(separator: ":")[1])))
        }
    }

    @Test("detected descriptors rebuild working drivers, one bus instance per bus number")
    func rebuild() throws {
        let bus1 = SimulatedI2CBus(number: 1, devices: [0x68: .mpu9250(), 0x77: .bme280()])
        let bus0 = SimulatedI2CBus(number: 0, devices: [0x69: .mpu6050()])
        let strings = SensorDetector.scan([bus1, bus0]).flatMap(\.sensors).map(\.configString) + ["system"]
        #expect(strings == ["mpu9250:0x68", "bme280:0x77", "mpu6050:0x69:0", "system"])

        var opened: [Int] = []
        let sensors = try SensorRegistry.makeSensors(configStrings: strings) { n in
            opened.append(n)
            return n == 0 ? bus0 : bus1
        }
        #expect(opened == [1, 0])
        #expect(sensors.map(\.name) == ["MPU9250", "BME280", "MPU6050", "system"])
        let mpu9250 = try #require(sensors[0] as? MPU9250)
        #expect(mpu9250.device.address == 0x68 && mpu9250.device.bus === bus1)
        let bme = try #require(sensors[1] as? BME280)
        #expect(bme.device.address == 0x77)
        let mpu6050 = try #require(sensors[2] as? MPU6050)
        #expect(mpu6050.device.address == 0x69 && mpu6050.device.bus === bus0)
        #expect(number(try mpu9250.read(), "mag_x") != nil)
        #expect(number(try bme.read(), "pressure") != nil)
    }

    @Test("a machine without I2C: no buses, nothing found")
    func noBuses() {
        // An empty directory stands in for a /dev without i2c-N nodes.
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        dir.write("tty0", "")
        let scan = SensorDetector.scanLinuxBuses(devDirectory: dir.path)
        #expect(scan.results.isEmpty && scan.errors.isEmpty)
    }
}
