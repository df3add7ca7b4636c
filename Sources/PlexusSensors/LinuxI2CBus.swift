import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An I2C bus through the Linux i2c-dev interface (`/dev/i2c-N`).
///
/// - Register writes: `ioctl(I2C_SLAVE)` selects the address (cached until it changes),
///   then `write(2)` sends `[register, value]`.
/// - Register reads: one `ioctl(I2C_RDWR)` with two messages, a one-byte write of the
///   register and a read of `count` bytes joined by a repeated start, so no other master can
///   move the register pointer in between.
/// - Scanning: SMBus quick write (`ioctl(I2C_SMBUS)`), or a one-byte read in the EEPROM
///   ranges, as `i2cdetect` does.
///
/// Transfers are serialised by a lock; each takes microseconds. The file descriptor is
/// closed by ``close()`` or when the bus is released.
public final class LinuxI2CBus: I2CBus {
    public let number: Int
    /// The device file, e.g. `/dev/i2c-1`.
    public let path: String

    private struct State {
        var fd: Int32
        var selected: UInt8?
    }

    private let state: Mutex<State>

    /// Opens `/dev/i2c-<bus>` (or `devicePath` if given) for reading and writing.
    /// - Throws: ``I2CError`` `.busNotFound` if the file does not exist, `.permissionDenied`
    ///   if the user may not open it, `.io` otherwise.
    public init(bus: Int, devicePath: String? = nil) throws(I2CError) {
        let path = devicePath ?? "/dev/i2c-\(bus)"
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            switch e {
            case ENOENT, ENODEV, ENXIO:
                throw I2CError(
                    .busNotFound,
                    "no I2C bus at \(path): the adapter does not exist or the i2c-dev module is not loaded "
                        + "(try `sudo modprobe i2c-dev`; on a Raspberry Pi enable I2C with raspi-config)", errno: e)
            case EACCES, EPERM:
                throw I2CError(
                    .permissionDenied,
                    "permission denied opening \(path): add the user to the i2c group "
                        + "(`sudo usermod -aG i2c $USER`, then log in again)", errno: e)
            default:
                throw I2CError(.io, "cannot open \(path): \(Self.errnoText(e))", errno: e)
            }
        }
        self.number = bus
        self.path = path
        self.state = Mutex(State(fd: fd, selected: nil))
    }

    deinit {
        state.withLock { s in
            if s.fd >= 0 { closeDescriptor(s.fd) }
        }
    }

    /// Closes the device file. Later transfers throw `.io`.
    public func close() {
        state.withLock { s in
            if s.fd >= 0 { closeDescriptor(s.fd) }
            s.fd = -1
            s.selected = nil
        }
    }

    /// The numbers of every `/dev/i2c-N`, sorted. Empty on a machine without I2C.
    public static func availableBuses(in directory: String = "/dev") -> [Int] {
        guard let names = FileAccess.list(directory) else { return [] }
        return names.compactMap { name -> Int? in
            guard name.hasPrefix("i2c-") else { return nil }
            return Int(name.dropFirst(4))
        }.sorted()
    }

    // MARK: I2CBus

    public func writeByte(address: UInt8, register: UInt8, value: UInt8) throws(I2CError) {
        try checkAddress(address)
        try state.withLock { (s) throws(I2CError) in
            try select(address, &s)
            var bytes: [UInt8] = [register, value]
            let n = bytes.withUnsafeMutableBytes { write(s.fd, $0.baseAddress, 2) }
            if n != 2 { throw transferError(address, "write of register \(register.hex)", n < 0 ? errno : EIO) }
        }
    }

    public func readByte(address: UInt8, register: UInt8) throws(I2CError) -> UInt8 {
        try readBytes(address: address, register: register, count: 1)[0]
    }

    public func readBytes(address: UInt8, register: UInt8, count: Int) throws(I2CError) -> [UInt8] {
        try checkAddress(address)
        guard count > 0, count <= 8192 else {
            throw I2CError(.invalidArgument, "read count \(count) outside 1...8192")
        }
        return try state.withLock { (s) throws(I2CError) -> [UInt8] in
            var reg = register
            var buffer = [UInt8](repeating: 0, count: count)
            let result: Int32 = withUnsafeMutablePointer(to: &reg) { regPointer in
                buffer.withUnsafeMutableBufferPointer { out in
                    var messages = [
                        I2CMessage(addr: UInt16(address), flags: 0, len: 1, buf: regPointer),
                        I2CMessage(addr: UInt16(address), flags: I2CMessage.read, len: UInt16(count), buf: out.baseAddress),
                    ]
                    return messages.withUnsafeMutableBufferPointer { m in
                        var request = I2CRdwrIoctlData(msgs: m.baseAddress, nmsgs: UInt32(m.count))
                        return ioctl(s.fd, Self.I2C_RDWR, &request)
                    }
                }
            }
            if result < 0 { throw transferError(address, "read of \(count) bytes from register \(register.hex)", errno) }
            return buffer
        }
    }

    public func writeQuick(address: UInt8) throws(I2CError) {
        try checkAddress(address)
        try state.withLock { (s) throws(I2CError) in
            try select(address, &s)
            var request = I2CSmbusIoctlData(readWrite: 0, command: 0, size: 0, data: nil)  // I2C_SMBUS_WRITE, I2C_SMBUS_QUICK
            if ioctl(s.fd, Self.I2C_SMBUS, &request) < 0 {
                throw transferError(address, "quick write", errno)
            }
        }
    }

    public func probe(address: UInt8) -> Bool {
        if Self.probesByReading(address) {
            return (try? receiveByte(address: address)) != nil
        }
        return (try? writeQuick(address: address)) != nil
    }

    /// One byte read with no register (SMBus "receive byte").
    func receiveByte(address: UInt8) throws(I2CError) -> UInt8 {
        try checkAddress(address)
        return try state.withLock { (s) throws(I2CError) -> UInt8 in
            try select(address, &s)
            var byte: UInt8 = 0
            let n = withUnsafeMutableBytes(of: &byte) { read(s.fd, $0.baseAddress, 1) }
            if n != 1 { throw transferError(address, "receive byte", n < 0 ? errno : EIO) }
            return byte
        }
    }

    // MARK: Internals

    // The kernel's names (linux/i2c-dev.h), kept so they can be looked up.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    static let I2C_SLAVE: UInt = 0x0703
    // swift-format-ignore: AlwaysUseLowerCamelCase
    static let I2C_RDWR: UInt = 0x0707
    // swift-format-ignore: AlwaysUseLowerCamelCase
    static let I2C_SMBUS: UInt = 0x0720

    private func checkAddress(_ address: UInt8) throws(I2CError) {
        guard address <= 0x7F else {
            throw I2CError(.invalidArgument, "\(address.hex) is not a 7-bit I2C address")
        }
    }

    private func select(_ address: UInt8, _ s: inout State) throws(I2CError) {
        guard s.fd >= 0 else { throw I2CError(.io, "\(path) is closed") }
        if s.selected == address { return }
        if ioctl(s.fd, Self.I2C_SLAVE, CInt(address)) < 0 {
            let e = errno
            s.selected = nil
            if e == EBUSY {
                throw I2CError(
                    .busy, "\(address.hex) on \(path) is claimed by a kernel driver (see /sys/bus/i2c/devices)", errno: e)
            }
            throw I2CError(.io, "cannot select \(address.hex) on \(path): \(Self.errnoText(e))", errno: e)
        }
        s.selected = address
    }

    private func transferError(_ address: UInt8, _ what: String, _ e: Int32) -> I2CError {
        switch e {
        case ENXIO, remoteIOError:
            return I2CError(.noDevice, "no device acknowledged \(address.hex) on \(path) (\(what))", errno: e)
        case EIO:
            return I2CError(.io, "\(what) at \(address.hex) on \(path) failed: I/O error (device missing or bus fault)", errno: e)
        case EOPNOTSUPP, ENOTTY:
            return I2CError(.unsupported, "the adapter behind \(path) cannot do a \(what)", errno: e)
        case EBADF:
            return I2CError(.io, "\(path) is closed", errno: e)
        default:
            return I2CError(.io, "\(what) at \(address.hex) on \(path) failed: \(Self.errnoText(e))", errno: e)
        }
    }

    static func errnoText(_ e: Int32) -> String {
        guard let s = strerror(e) else { return "errno \(e)" }
        return "\(String(cString: s)) (errno \(e))"
    }
}

#if os(Linux)
    /// EREMOTEIO: what many adapters (the Raspberry Pi's among them) return for a missing ACK.
    private let remoteIOError = EREMOTEIO
#else
    private let remoteIOError: Int32 = -1
#endif

private func closeDescriptor(_ fd: Int32) {
    _ = close(fd)
}

// The kernel's structures from <linux/i2c.h> and <linux/i2c-dev.h>, which Glibc does not
// export. Swift lays out these plain structs in declaration order with C alignment; the
// tests pin the sizes and offsets.

/// `struct i2c_msg { __u16 addr; __u16 flags; __u16 len; __u8 *buf; }`
struct I2CMessage {
    /// I2C_M_RD
    static let read: UInt16 = 0x0001
    var addr: UInt16
    var flags: UInt16
    var len: UInt16
    var buf: UnsafeMutablePointer<UInt8>?
}

/// `struct i2c_rdwr_ioctl_data { struct i2c_msg *msgs; __u32 nmsgs; }`
struct I2CRdwrIoctlData {
    var msgs: UnsafeMutablePointer<I2CMessage>?
    var nmsgs: UInt32
}

/// `struct i2c_smbus_ioctl_data { __u8 read_write; __u8 command; __u32 size; union i2c_smbus_data *data; }`
struct I2CSmbusIoctlData {
    var readWrite: UInt8
    var command: UInt8
    var size: UInt32
    var data: UnsafeMutableRawPointer?
}
