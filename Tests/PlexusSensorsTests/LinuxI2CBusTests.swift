import Testing

@testable import PlexusSensors

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// This machine has no I2C hardware (no /dev/i2c-* nodes), so these tests cover what can be
/// checked without an adapter: errors, bus enumeration, and the kernel struct layouts the
/// ioctls depend on. The transfers themselves are exercised against SimulatedI2CBus.
@Suite("Linux i2c-dev bus")
struct LinuxI2CBusTests {
    @Test("opening a bus that does not exist throws busNotFound with a clear message")
    func missingBus() {
        do {
            _ = try LinuxI2CBus(bus: 99)
            Issue.record("/dev/i2c-99 opened")
        } catch {
            #expect(error.code == .busNotFound)
            #expect(error.errno == ENOENT)
            #expect(error.message.hasPrefix("no I2C bus at /dev/i2c-99"))
            #expect(error.message.contains("modprobe i2c-dev"))
            #expect(error.description.hasPrefix("busNotFound: "))
        }
    }

    @Test("bus enumeration lists every i2c-N, numerically sorted")
    func enumeration() {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        for name in ["i2c-10", "i2c-1", "i2c-0", "i2c-x", "tty0", "spidev0.0"] { dir.write(name, "") }
        #expect(LinuxI2CBus.availableBuses(in: dir.path) == [0, 1, 10])
        #expect(LinuxI2CBus.availableBuses(in: "/nonexistent") == [])
    }

    @Test("a file that is not an I2C adapter: transfers fail with typed errors, not crashes")
    func notAnAdapter() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        dir.write("i2c-5", "")
        let bus = try LinuxI2CBus(bus: 5, devicePath: dir.path + "/i2c-5")
        #expect(bus.number == 5)
        // ioctl(I2C_RDWR) on a regular file: ENOTTY → unsupported.
        do {
            _ = try bus.readBytes(address: 0x68, register: 0x75, count: 1)
            Issue.record("read succeeded")
        } catch {
            #expect(error.code == .unsupported)
            #expect(error.errno == ENOTTY)
        }
        // ioctl(I2C_SLAVE) fails the same way for writes.
        #expect(throws: I2CError.self) { try bus.writeByte(address: 0x68, register: 0x6B, value: 0) }
        #expect(!bus.probe(address: 0x68))
        #expect(!bus.probe(address: 0x50))  // EEPROM range: probed by reading
        #expect(throws: I2CError.self) { try bus.readBytes(address: 0x80, register: 0, count: 1) }
        #expect(throws: I2CError.self) { try bus.readBytes(address: 0x68, register: 0, count: 0) }
        #expect(SensorDetector.scan(bus).addresses.isEmpty)
        bus.close()
        #expect(throws: I2CError.self) { try bus.writeQuick(address: 0x68) }
    }

    @Test("struct layouts match <linux/i2c.h> and <linux/i2c-dev.h> on 64-bit Linux")
    func layouts() {
        // struct i2c_msg { __u16 addr; __u16 flags; __u16 len; __u8 *buf; }: 16 bytes, buf at 8.
        #expect(MemoryLayout<I2CMessage>.size == 16)
        #expect(MemoryLayout<I2CMessage>.stride == 16)
        #expect(MemoryLayout<I2CMessage>.offset(of: \.flags) == 2)
        #expect(MemoryLayout<I2CMessage>.offset(of: \.len) == 4)
        #expect(MemoryLayout<I2CMessage>.offset(of: \.buf) == 8)
        // struct i2c_rdwr_ioctl_data { struct i2c_msg *msgs; __u32 nmsgs; }: nmsgs at 8.
        #expect(MemoryLayout<I2CRdwrIoctlData>.offset(of: \.nmsgs) == 8)
        #expect(MemoryLayout<I2CRdwrIoctlData>.stride == 16)
        // struct i2c_smbus_ioctl_data { __u8 read_write; __u8 command; __u32 size; union … *data; }
        #expect(MemoryLayout<I2CSmbusIoctlData>.offset(of: \.command) == 1)
        #expect(MemoryLayout<I2CSmbusIoctlData>.offset(of: \.size) == 4)
        #expect(MemoryLayout<I2CSmbusIoctlData>.offset(of: \.data) == 8)
        #expect(I2CMessage.read == 0x0001)
        #expect(LinuxI2CBus.I2C_SLAVE == 0x0703 && LinuxI2CBus.I2C_RDWR == 0x0707 && LinuxI2CBus.I2C_SMBUS == 0x0720)
    }
}
