public import PlexusModel
import Synchronization

/// The BME280's factory trimming parameters and the Bosch double-precision compensation
/// (BME280 datasheet §4.2.3 and Appendix 8.1).
public struct BME280Calibration: Sendable, Hashable {
    public var t1: UInt16
    public var t2: Int16
    public var t3: Int16
    public var p1: UInt16
    public var p2: Int16
    public var p3: Int16
    public var p4: Int16
    public var p5: Int16
    public var p6: Int16
    public var p7: Int16
    public var p8: Int16
    public var p9: Int16
    public var h1: UInt8
    public var h2: Int16
    public var h3: UInt8
    /// 12-bit signed: 0xE4 (bits 11:4) and 0xE5 bits 3:0.
    public var h4: Int16
    /// 12-bit signed: 0xE6 (bits 11:4) and 0xE5 bits 7:4.
    public var h5: Int16
    public var h6: Int8

    public init(
        t1: UInt16, t2: Int16, t3: Int16,
        p1: UInt16, p2: Int16, p3: Int16, p4: Int16, p5: Int16, p6: Int16, p7: Int16, p8: Int16, p9: Int16,
        h1: UInt8, h2: Int16, h3: UInt8, h4: Int16, h5: Int16, h6: Int8
    ) {
        (self.t1, self.t2, self.t3) = (t1, t2, t3)
        (self.p1, self.p2, self.p3, self.p4, self.p5) = (p1, p2, p3, p4, p5)
        (self.p6, self.p7, self.p8, self.p9) = (p6, p7, p8, p9)
        (self.h1, self.h2, self.h3, self.h4, self.h5, self.h6) = (h1, h2, h3, h4, h5, h6)
    }

    /// Decodes the 26 bytes from 0x88 (0x88–0xA1; dig_T*, dig_P* little-endian, dig_H1 at
    /// 0xA1) and the 7 bytes from 0xE1 (0xE1–0xE7).
    public init(block1 b: [UInt8], block2 h: [UInt8]) throws(SensorError) {
        guard b.count == 26, h.count == 7 else {
            throw SensorError(.invalidConfiguration, "BME280 calibration needs 26 + 7 bytes, got \(b.count) + \(h.count)")
        }
        func u16(_ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
        func s16(_ i: Int) -> Int16 { Int16(bitPattern: u16(i)) }
        self.init(
            t1: u16(0), t2: s16(2), t3: s16(4),
            p1: u16(6), p2: s16(8), p3: s16(10), p4: s16(12), p5: s16(14), p6: s16(16), p7: s16(18), p8: s16(20),
            p9: s16(22),
            h1: b[25],
            h2: Int16(bitPattern: UInt16(h[0]) | UInt16(h[1]) << 8),
            h3: h[2],
            h4: Int16(Int8(bitPattern: h[3])) * 16 | Int16(h[4] & 0x0F),
            h5: Int16(Int8(bitPattern: h[5])) * 16 | Int16(h[4] >> 4),
            h6: Int8(bitPattern: h[6])
        )
    }

    /// The register bytes this calibration is stored as: 26 bytes for 0x88 and 7 for 0xE1
    /// (the inverse of ``init(block1:block2:)``; byte 0xA0 is unused and 0).
    public var registerBlocks: (block1: [UInt8], block2: [UInt8]) {
        var b: [UInt8] = []
        func le(_ v: UInt16) {
            b.append(UInt8(v & 0xFF))
            b.append(UInt8(v >> 8))
        }
        le(t1)
        le(UInt16(bitPattern: t2))
        le(UInt16(bitPattern: t3))
        le(p1)
        for p in [p2, p3, p4, p5, p6, p7, p8, p9] { le(UInt16(bitPattern: p)) }
        b.append(0)
        b.append(h1)
        let h2u = UInt16(bitPattern: h2)
        let h4u = UInt16(bitPattern: h4)
        let h5u = UInt16(bitPattern: h5)
        let h: [UInt8] = [
            UInt8(h2u & 0xFF), UInt8(h2u >> 8), h3,
            UInt8((h4u >> 4) & 0xFF), UInt8(h4u & 0x0F) | UInt8((h5u & 0x0F) << 4), UInt8((h5u >> 4) & 0xFF),
            UInt8(bitPattern: h6),
        ]
        return (b, h)
    }

    /// Temperature in °C and `t_fine` (the datasheet's `(BME280_S32_t)(var1 + var2)`,
    /// truncated toward zero) from the 20-bit `adc_T`.
    public func temperature(adcT: Int32) -> (celsius: Double, tFine: Int32) {
        let adc = Double(adcT)
        let var1 = (adc / 16384.0 - Double(t1) / 1024.0) * Double(t2)
        let d = adc / 131072.0 - Double(t1) / 8192.0
        let var2 = d * d * Double(t3)
        return ((var1 + var2) / 5120.0, Int32(var1 + var2))
    }

    /// Pressure in Pa from the 20-bit `adc_P`, or nil when the calibration makes the formula
    /// divide by zero.
    public func pressure(adcP: Int32, tFine: Int32) -> Double? {
        var var1 = Double(tFine) / 2.0 - 64000.0
        var var2 = var1 * var1 * Double(p6) / 32768.0
        var2 = var2 + var1 * Double(p5) * 2.0
        var2 = var2 / 4.0 + Double(p4) * 65536.0
        var1 = (Double(p3) * var1 * var1 / 524288.0 + Double(p2) * var1) / 524288.0
        var1 = (1.0 + var1 / 32768.0) * Double(p1)
        if var1 == 0 { return nil }
        var p = 1048576.0 - Double(adcP)
        p = (p - var2 / 4096.0) * 6250.0 / var1
        var1 = Double(p9) * p * p / 2147483648.0
        var2 = p * Double(p8) / 32768.0
        return p + (var1 + var2 + Double(p7)) / 16.0
    }

    /// Relative humidity in %, clamped to 0…100, from the 16-bit `adc_H`.
    public func humidity(adcH: Int32, tFine: Int32) -> Double {
        var h = Double(tFine) - 76800.0
        h =
            (Double(adcH) - (Double(h4) * 64.0 + Double(h5) / 16384.0 * h))
            * (Double(h2) / 65536.0 * (1.0 + Double(h6) / 67108864.0 * h * (1.0 + Double(h3) / 67108864.0 * h)))
        h = h * (1.0 - Double(h1) * h / 524288.0)
        return min(100, max(0, h))
    }
}

/// Register addresses of the BME280.
enum BME280Register {
    static let calibration1: UInt8 = 0x88  // 26 bytes
    static let chipID: UInt8 = 0xD0
    static let calibration2: UInt8 = 0xE1  // 7 bytes
    static let controlHumidity: UInt8 = 0xF2
    static let controlMeasurement: UInt8 = 0xF4
    static let config: UInt8 = 0xF5
    static let data: UInt8 = 0xF7  // 8 bytes: press (20 bit), temp (20 bit), hum (16 bit)
    static let identity: UInt8 = 0x60
}

/// Bosch BME280 temperature, humidity and pressure sensor at 0x76 (SDO low) or 0x77.
///
/// Setup: chip id (0xD0) must be 0x60 (a BMP280, 0x56–0x58, has no humidity and is refused);
/// calibration is read from 0x88 (26 bytes) and 0xE1 (7 bytes); then, in this order,
/// ctrl_meas (0xF4) = 0x00 (sleep, so the config write is not ignored), ctrl_hum (0xF2) = 0x01
/// (humidity ×1), config (0xF5) = standby (bits 7:5) matched to the sample rate, filter off,
/// and ctrl_meas = 0x27 (temperature ×1, pressure ×1, normal mode; this write also latches
/// ctrl_hum). At 1 Hz the standby is 1000 ms, config 0xA0.
///
/// Read: one 8-byte burst from 0xF7; Bosch double-precision compensation. Metrics:
/// `temperature` (°C), `humidity` (%RH), `pressure` (hPa). Default 1 Hz.
/// A sample still at the reset value (0x80000) throws `.notReady`.
public final class BME280: Sensor {
    public static let addresses: [UInt8] = [0x76, 0x77]

    public let name = "BME280"
    public let description = "BME280 environment sensor: temperature (°C), humidity (%RH), pressure (hPa)"
    public let metrics = ["temperature", "humidity", "pressure"]
    public let settings: SensorSettings
    public let device: I2CDevice

    private struct State {
        var calibration: BME280Calibration?
        var ready = false
        var configuredRate: Double = 0
    }

    private let state: Mutex<State>

    public init(bus: any I2CBus, address: UInt8 = 0x76, sampleRate: Double = 1, prefix: String = "") {
        device = I2CDevice(bus: bus, address: address)
        settings = SensorSettings(sampleRate: sampleRate, prefix: prefix)
        state = Mutex(State())
    }

    /// The calibration read at setup, nil before.
    public var calibration: BME280Calibration? { state.withLock { $0.calibration } }

    /// The config register (0xF5) for a sample rate: the longest standby time not longer
    /// than one sample period (t_sb codes: 0.5, 62.5, 125, 250, 500, 1000, 10, 20 ms), filter off.
    public static func configRegister(sampleRate: Double) -> UInt8 {
        let periodMs = 1000 / sampleRate
        let standby: [(code: UInt8, ms: Double)] = [(5, 1000), (4, 500), (3, 250), (2, 125), (1, 62.5), (7, 20), (6, 10)]
        let code = standby.first { $0.ms <= periodMs }?.code ?? 0
        return code << 5
    }

    public func setup() throws {
        try state.withLock { s in
            s.ready = false
            try initialise(&s)
        }
    }

    private func initialise(_ s: inout State) throws {
        let id = try device.readByte(register: BME280Register.chipID)
        guard id == BME280Register.identity else {
            let hint = (0x56...0x58).contains(id) ? " (a BMP280, which has no humidity sensor)" : ""
            throw SensorError(
                .wrongDevice,
                "BME280 expected chip id 0x60 at \(device.address.hex) on bus \(device.bus.number), read \(id.hex)\(hint)")
        }
        let block1 = try device.readBytes(register: BME280Register.calibration1, count: 26)
        let block2 = try device.readBytes(register: BME280Register.calibration2, count: 7)
        s.calibration = try BME280Calibration(block1: block1, block2: block2)
        let rate = settings.sampleRate
        try device.writeByte(register: BME280Register.controlMeasurement, value: 0x00)
        try device.writeByte(register: BME280Register.controlHumidity, value: 0x01)
        try device.writeByte(register: BME280Register.config, value: Self.configRegister(sampleRate: rate))
        try device.writeByte(register: BME280Register.controlMeasurement, value: 0x27)
        s.configuredRate = rate
        s.ready = true
        // The first conversion (×1 oversampling) takes at most 9.3 ms.
        WallClock.sleep(seconds: 0.010)
    }

    public func read() throws -> [SensorReading] {
        try state.withLock { s in
            do {
                if !s.ready || s.configuredRate != settings.sampleRate { try initialise(&s) }
                guard let cal = s.calibration else { throw SensorError(.notReady, "BME280 has no calibration") }
                let b = try device.readBytes(register: BME280Register.data, count: 8)
                let adcP = Int32(b[0]) << 12 | Int32(b[1]) << 4 | Int32(b[2] >> 4)
                let adcT = Int32(b[3]) << 12 | Int32(b[4]) << 4 | Int32(b[5] >> 4)
                let adcH = Int32(b[6]) << 8 | Int32(b[7])
                guard adcT != 0x80000 else {
                    throw SensorError(
                        .notReady, "BME280 at \(device.address.hex) has no measurement yet (temperature at its reset value)")
                }
                let now = WallClock.now()
                let (celsius, tFine) = cal.temperature(adcT: adcT)
                var readings = [SensorReading("temperature", celsius, timestamp: now)]
                if adcH != 0x8000 {
                    readings.append(SensorReading("humidity", cal.humidity(adcH: adcH, tFine: tFine), timestamp: now))
                }
                if adcP != 0x80000, let pa = cal.pressure(adcP: adcP, tFine: tFine) {
                    readings.append(SensorReading("pressure", pa / 100, timestamp: now))
                }
                return readings
            } catch {
                s.ready = false
                throw error
            }
        }
    }

    /// Puts the chip to sleep (ctrl_meas mode bits 00).
    public func cleanup() {
        state.withLock { s in
            s.ready = false
            try? device.writeByte(register: BME280Register.controlMeasurement, value: 0x00)
        }
    }

    public func isAvailable() -> Bool {
        (try? device.readByte(register: BME280Register.chipID)) == BME280Register.identity
    }
}
