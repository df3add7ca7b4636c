/// Ready-made register maps for the chips the drivers support, with the behaviour the
/// drivers rely on: reset values after power-up, data that only appears once the chip is
/// woken, the AK8963 appearing behind the MPU9250's bypass, fuse-ROM-only sensitivity bytes.
extension SimulatedI2CDevice {
    /// The 14 bytes an MPU presents from 0x3B: accel XYZ, temperature, gyro XYZ, big-endian.
    public static func mpuMotionBytes(
        accel: (x: Int16, y: Int16, z: Int16), temperature: Int16 = 0, gyro: (x: Int16, y: Int16, z: Int16)
    ) -> [UInt8] {
        [accel.x, accel.y, accel.z, temperature, gyro.x, gyro.y, gyro.z].flatMap { v -> [UInt8] in
            let u = UInt16(bitPattern: v)
            return [UInt8(u >> 8), UInt8(u & 0xFF)]
        }
    }

    /// An MPU6050 after power-up: WHO_AM_I (0x75) = 0x68, PWR_MGMT_1 (0x6B) = 0x40 (asleep),
    /// ranges ±2 g / ±250 °/s. The data registers 0x3B–0x48 hold the given raw values but read
    /// as 0 while the chip sleeps.
    public static func mpu6050(
        accel: (x: Int16, y: Int16, z: Int16) = (0, 0, 16384), gyro: (x: Int16, y: Int16, z: Int16) = (0, 0, 0),
        temperature: Int16 = 0
    ) -> SimulatedI2CDevice {
        mpu(name: "MPU6050", whoAmI: 0x68, accel: accel, gyro: gyro, temperature: temperature, onWrite: nil)
    }

    /// An MPU9250 after power-up (WHO_AM_I 0x71), otherwise as ``mpu6050(accel:gyro:temperature:)``.
    /// Writing INT_PIN_CFG (0x37) with BYPASS_EN (bit 1) puts `magnetometer` on the bus at 0x0C
    /// (unless a device is already there); clearing the bit removes it.
    public static func mpu9250(
        accel: (x: Int16, y: Int16, z: Int16) = (0, 0, 16384), gyro: (x: Int16, y: Int16, z: Int16) = (0, 0, 0),
        temperature: Int16 = 0, magnetometer: SimulatedI2CDevice = .ak8963()
    ) -> SimulatedI2CDevice {
        mpu(name: "MPU9250", whoAmI: 0x71, accel: accel, gyro: gyro, temperature: temperature) { _, register, value, devices in
            guard register == MPURegister.intPinConfig else { return }
            if value & 0x02 != 0 {
                if devices[AK8963Register.address] == nil { devices[AK8963Register.address] = magnetometer }
            } else {
                devices.removeValue(forKey: AK8963Register.address)
            }
        }
    }

    private static func mpu(
        name: String, whoAmI: UInt8, accel: (x: Int16, y: Int16, z: Int16), gyro: (x: Int16, y: Int16, z: Int16),
        temperature: Int16, onWrite: WriteHook?
    ) -> SimulatedI2CDevice {
        var d = SimulatedI2CDevice(name: name, registers: [MPURegister.whoAmI: whoAmI, MPURegister.powerManagement1: 0x40])
        d.set(mpuMotionBytes(accel: accel, temperature: temperature, gyro: gyro), at: MPURegister.accelXOutH)
        d.onWrite = onWrite
        d.onRead = { register, registers in
            let asleep = (registers[MPURegister.powerManagement1] ?? 0) & 0x40 != 0
            return asleep && (0x3B...0x48).contains(register) ? 0 : nil
        }
        return d
    }

    /// An AK8963 magnetometer after power-up: WIA (0x00) = 0x48, CNTL1 (0x0A) = 0 (power-down).
    /// `sensitivity` (ASA X/Y/Z) reads back only in fuse-ROM mode (CNTL1 = 0x0F), 0 otherwise;
    /// the field (HXL…HZH, little-endian) reads as 0 until a measurement mode is set. ST2
    /// (0x09) has BITM (16-bit) set, and HOFL if `overflow`.
    public static func ak8963(
        sensitivity: (x: UInt8, y: UInt8, z: UInt8) = (176, 177, 165), field: (x: Int16, y: Int16, z: Int16) = (200, -300, 400),
        overflow: Bool = false
    ) -> SimulatedI2CDevice {
        var d = SimulatedI2CDevice(name: "AK8963", registers: [AK8963Register.whoAmI: AK8963Register.identity, 0x0A: 0x00])
        d.set([sensitivity.x, sensitivity.y, sensitivity.z], at: AK8963Register.sensitivity)
        d.set(
            [field.x, field.y, field.z].flatMap { v -> [UInt8] in
                let u = UInt16(bitPattern: v)
                return [UInt8(u & 0xFF), UInt8(u >> 8)]
            } + [0x10 | (overflow ? AK8963Register.overflow : 0)], at: AK8963Register.dataStart)
        d.registers[0x02] = 0x01  // ST1: data ready
        d.onRead = { register, registers in
            let mode = (registers[AK8963Register.control1] ?? 0) & 0x0F
            if (0x10...0x12).contains(register) { return mode == AK8963Register.fuseROM ? nil : 0 }
            if (0x03...0x08).contains(register) { return mode == 0 || mode == AK8963Register.fuseROM ? 0 : nil }
            return nil
        }
        return d
    }

    /// The 8 data bytes a BME280 presents from 0xF7: press (20 bit), temp (20 bit), hum (16 bit).
    public static func bme280DataBytes(adcT: Int32, adcP: Int32, adcH: Int32) -> [UInt8] {
        func twenty(_ v: Int32) -> [UInt8] { [UInt8((v >> 12) & 0xFF), UInt8((v >> 4) & 0xFF), UInt8((v & 0x0F) << 4)] }
        return twenty(adcP) + twenty(adcT) + [UInt8((adcH >> 8) & 0xFF), UInt8(adcH & 0xFF)]
    }

    /// A BME280 after power-up: chip id (0xD0) = 0x60, the calibration at 0x88/0xE1, sleep mode.
    /// The data registers read their reset values (0x80000, 0x80000, 0x8000) until a write to
    /// ctrl_meas (0xF4) selects a measuring mode; then they hold the given raw values.
    public static func bme280(
        calibration: BME280Calibration = .example, adcT: Int32 = 519888, adcP: Int32 = 415148, adcH: Int32 = 27000
    ) -> SimulatedI2CDevice {
        var d = SimulatedI2CDevice(name: "BME280", registers: [BME280Register.chipID: BME280Register.identity])
        let blocks = calibration.registerBlocks
        d.set(blocks.block1, at: BME280Register.calibration1)
        d.set(blocks.block2, at: BME280Register.calibration2)
        d.set(bme280DataBytes(adcT: adcT, adcP: adcP, adcH: adcH), at: BME280Register.data)
        let reset: [UInt8] = [0x80, 0, 0, 0x80, 0, 0, 0x80, 0]
        d.onRead = { register, registers in
            guard (0xF7...0xFE).contains(register) else { return nil }
            let measuring = (registers[BME280Register.controlMeasurement] ?? 0) & 0x03 != 0
            return measuring ? nil : reset[Int(register - 0xF7)]
        }
        return d
    }
}

extension BME280Calibration {
    /// Temperature and pressure words from the Bosch datasheet's worked example
    /// (dig_T1 27504 … dig_P9 6000) and humidity words typical of a real part
    /// (H1 75, H2 362, H3 0, H4 313, H5 50, H6 30). The default of the simulated BME280.
    public static let example = BME280Calibration(
        t1: 27504, t2: 26435, t3: -1000,
        p1: 36477, p2: -10685, p3: 3024, p4: 2855, p5: 140, p6: -7, p7: 15500, p8: -14600, p9: 6000,
        h1: 75, h2: 362, h3: 0, h4: 313, h5: 50, h6: 30
    )
}
