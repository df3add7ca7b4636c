import PlexusModel
import Testing

@testable import PlexusSensors

@Suite("BME280 compensation (Bosch double-precision formulas)")
struct BME280CompensationTests {
    /// The datasheet's worked example (BMP280 datasheet §3.12; the BME280 uses the same
    /// temperature and pressure formulas): dig_T1 27504, dig_T2 26435, dig_T3 −1000,
    /// dig_P1 36477, dig_P2 −10685, dig_P3 3024, dig_P4 2855, dig_P5 140, dig_P6 −7,
    /// dig_P7 15500, dig_P8 −14600, dig_P9 6000, adc_T 519888, adc_P 415148.
    let cal = BME280Calibration.example

    @Test("temperature: adc_T 519888 → 25.08 °C, t_fine 128422")
    func temperature() {
        // var1 = (519888/16384 − 27504/1024) × 26435
        //      = (31.73144531 − 26.859375) × 26435 = 4.87207031 × 26435 = 128793.1787
        // var2 = (519888/131072 − 27504/8192)² × (−1000)
        //      = (3.96643066 − 3.35742188)² × (−1000) = 0.60900879² × (−1000) = −370.8917
        // var1 + var2 = 128422.2870 → t_fine = (S32) 128422 (truncated)
        // T = 128422.2870 / 5120 = 25.0825 °C  (the datasheet prints 25.08 °C)
        let (celsius, tFine) = cal.temperature(adcT: 519888)
        #expect(tFine == 128422)
        #expect(abs(celsius - 25.082477930816820) < 1e-12)
        #expect((celsius * 100).rounded() / 100 == 25.08)
    }

    @Test("pressure: adc_P 415148 → 100653.26 Pa, i.e. 100653 Pa (1006.53 hPa)")
    func pressure() throws {
        // With t_fine = 128422 (the S32 the datasheet's double code carries over):
        // var1 = 128422/2 − 64000 = 211
        // var2 = 211² × (−7)/32768 = −9.5107;  var2 += 211 × 140 × 2 = 59070.4893
        // var2 = 59070.4893/4 + 2855 × 65536 = 187119302.62
        // var1 = (3024 × 211²/524288 + (−10685) × 211)/524288 = −4.29982
        // var1 = (1 + (−4.29982)/32768) × 36477 = 36472.2134
        // p = 1048576 − 415148 = 633428
        // p = (633428 − 187119302.62/4096) × 6250 / 36472.2134 = 100717.89
        // var1 = 6000 × p²/2^31 = 28342.32;  var2 = p × (−14600)/32768 = −44875.17
        // p = 100717.89 + (28342.32 − 44875.17 + 15500)/16 = 100653.258 Pa
        //
        // The datasheet's table quotes 100653.27 Pa. That figure results when the unrounded
        // t_fine (128422.287) is carried into the pressure formula (→ 100653.267 Pa); the
        // published code truncates t_fine to a 32-bit integer, which gives 100653.258 Pa. We
        // implement the code as published, so 100653.258 is the right value here. Both
        // agree to 0.01 Pa and round to the integer formula's 100653 Pa.
        let p = try #require(cal.pressure(adcP: 415148, tFine: 128422))
        #expect(abs(p - 100653.25814481472) < 1e-6)
        #expect(p.rounded() == 100653)
        #expect(abs(p - 100653.27) < 0.02)
    }

    @Test(
        "humidity, checked against an independent re-implementation",
        arguments: [
            // (adc_T, adc_H, expected %RH). Expected values were computed once with a separate
            // Python transcription of the datasheet's BME280_compensate_H_double, using
            // dig_H1 75, dig_H2 362, dig_H3 0, dig_H4 313, dig_H5 50, dig_H6 30.
            (Int32(519888), Int32(27000), 38.275054276373446),  // t_fine 128422
            (519888, 30500, 57.7803278411176),
            (480000, 30000, 54.53011853929546),  // t_fine 64342, 12.5669 °C
        ])
    func humidity(adcT: Int32, adcH: Int32, expected: Double) {
        let (_, tFine) = cal.temperature(adcT: adcT)
        #expect(abs(cal.humidity(adcH: adcH, tFine: tFine) - expected) < 1e-9)
    }

    @Test("humidity is clamped to 0…100 %")
    func humidityClamped() {
        #expect(cal.humidity(adcH: 65535, tFine: 128422) == 100)
        #expect(cal.humidity(adcH: 0, tFine: 128422) == 0)
    }

    @Test("calibration bytes decode little-endian, with the packed 12-bit H4/H5")
    func decode() throws {
        // 0x88…0xA1 and 0xE1…0xE7 of a chip holding `.example`, written out by hand:
        // T1 27504 = 0x6B70 → 70 6B; T2 26435 = 0x6743 → 43 67; T3 −1000 = 0xFC18 → 18 FC; …
        // H4 313 = 0x139 → E4 = 0x13, E5 low nibble 9; H5 50 = 0x032 → E5 high nibble 2, E6 = 0x03.
        let block1 = hex("706b436718fc7d8e43d6d00b270b8c00f9ff8c3cf8c67017004b")
        let block2 = hex("6a01001329031e")
        #expect(try BME280Calibration(block1: block1, block2: block2) == .example)
        #expect(BME280Calibration.example.registerBlocks.block1 == block1)
        #expect(BME280Calibration.example.registerBlocks.block2 == block2)

        // Negative H4/H5 (Bosch reads 0xE4/0xE6 as signed): H4 −100, H5 −7.
        let negative = try BME280Calibration(block1: block1, block2: hex("6a0100f99cff1e"))
        #expect(negative.h4 == -100 && negative.h5 == -7)
        var round = BME280Calibration.example
        round.h4 = -100
        round.h5 = -7
        #expect(round.registerBlocks.block2 == hex("6a0100f99cff1e"))
        #expect(throws: SensorError.self) { try BME280Calibration(block1: [1, 2], block2: block2) }
    }

    func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }
}

@Suite("BME280 driver on the simulated bus")
struct BME280DriverTests {
    @Test(
        "setup: chip id, calibration, then sleep → ctrl_hum → config → ctrl_meas",
        arguments: [
            (1.0, UInt8(0xA0)),  // t_standby 1000 ms
            (2.0, 0x80),  // 500 ms
            (10.0, 0x20),  // 62.5 ms
            (50.0, 0xE0),  // 20 ms: the period is 20 ms, so code 7 (20 ms) is the longest that fits
            (200.0, 0x00),  // 0.5 ms: nothing longer fits in 5 ms
        ])
    func setupWrites(rate: Double, config: UInt8) throws {
        // Standby codes (bits 7:5): 0 0.5 ms, 1 62.5, 2 125, 3 250, 4 500, 5 1000, 6 10, 7 20.
        let bus = SimulatedI2CBus(devices: [0x77: .bme280()])
        let bme = BME280(bus: bus, address: 0x77, sampleRate: rate)
        try bme.setup()
        #expect(
            bus.writes == [
                W(address: 0x77, register: 0xF4, value: 0x00),
                W(address: 0x77, register: 0xF2, value: 0x01),
                W(address: 0x77, register: 0xF5, value: config),
                W(address: 0x77, register: 0xF4, value: 0x27),
            ])
        #expect(bme.calibration == .example)
    }

    @Test("a read gives °C, %RH and hPa from the 8-byte burst")
    func read() throws {
        let bus = SimulatedI2CBus(devices: [0x76: .bme280(adcT: 519888, adcP: 415148, adcH: 27000)])
        let bme = BME280(bus: bus)
        try bme.setup()
        bus.clearLog()
        let r = try bme.read()
        #expect(bus.transferCount == 1)
        #expect(r.map(\.metric) == ["temperature", "humidity", "pressure"])
        #expect(approx(number(r, "temperature"), 25.082477930816820, 1e-12))
        #expect(approx(number(r, "humidity"), 38.275054276373446))
        #expect(approx(number(r, "pressure"), 1006.5325814481472, 1e-8))
    }

    @Test("a BMP280 (chip id 0x58) is refused and named")
    func refusesBMP280() {
        var chip = SimulatedI2CDevice.bme280()
        chip.registers[0xD0] = 0x58
        let bus = SimulatedI2CBus(devices: [0x76: chip])
        do {
            try BME280(bus: bus).setup()
            Issue.record("setup succeeded")
        } catch let e as SensorError {
            #expect(e.code == .wrongDevice)
            #expect(e.message.contains("BMP280"))
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(!BME280(bus: bus).isAvailable())
    }

    @Test("a chip that never measured (reset value 0x80000) is reported not ready")
    func notReady() {
        let bus = SimulatedI2CBus(devices: [0x76: .bme280(adcT: 0x80000)])
        do {
            _ = try BME280(bus: bus).read()
            Issue.record("read succeeded")
        } catch let e as SensorError {
            #expect(e.code == .notReady)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("a new sample rate rewrites the standby time on the next read")
    func rateChange() throws {
        let bus = SimulatedI2CBus(devices: [0x76: .bme280()])
        let bme = BME280(bus: bus)
        _ = try bme.read()
        try bme.configure(["sample_rate": 4])
        bus.clearLog()
        _ = try bme.read()
        #expect(bus.writes.contains(W(address: 0x76, register: 0xF5, value: 0x60)))  // 250 ms
        #expect(throws: SensorError.self) { try bme.configure(["oversampling": 16]) }
    }
}
