public import PlexusModel

/// An I2C bus: register reads and writes addressed to 7-bit device addresses.
///
/// Implementations: ``LinuxI2CBus`` (the kernel's i2c-dev interface) and
/// ``SimulatedI2CBus`` (register maps in memory, for tests and simulation mode). A bus is a
/// shared resource; implementations serialise transfers themselves, so one bus instance can
/// be handed to several drivers.
public protocol I2CBus: AnyObject, Sendable {
    /// The bus number (`N` of `/dev/i2c-N`).
    var number: Int { get }

    /// Writes one byte to a register.
    func writeByte(address: UInt8, register: UInt8, value: UInt8) throws(I2CError)
    /// Reads one register.
    func readByte(address: UInt8, register: UInt8) throws(I2CError) -> UInt8
    /// Reads `count` consecutive registers in one transfer (write register, repeated start,
    /// read), the way every chip here auto-increments.
    func readBytes(address: UInt8, register: UInt8, count: Int) throws(I2CError) -> [UInt8]
    /// An SMBus "quick write": the address byte alone. A device that ACKs is present.
    func writeQuick(address: UInt8) throws(I2CError)
    /// Whether a device answers at `address`, the way `i2cdetect` decides it: a quick write,
    /// except in 0x30–0x37 and 0x50–0x5F (EEPROMs, which a quick write can corrupt) where a
    /// one-byte read is used.
    func probe(address: UInt8) -> Bool
}

/// The valid range of 7-bit addresses that scans visit (0x00–0x02 and 0x78–0x7F are reserved).
public let i2cScanAddresses: ClosedRange<UInt8> = 0x03...0x77

/// One device on a bus: the bus plus its address, with the register calls drivers use.
public struct I2CDevice: Sendable {
    public let bus: any I2CBus
    public let address: UInt8

    public init(bus: any I2CBus, address: UInt8) {
        self.bus = bus
        self.address = address
    }

    public func writeByte(register: UInt8, value: UInt8) throws(I2CError) {
        try bus.writeByte(address: address, register: register, value: value)
    }

    public func readByte(register: UInt8) throws(I2CError) -> UInt8 {
        try bus.readByte(address: address, register: register)
    }

    public func readBytes(register: UInt8, count: Int) throws(I2CError) -> [UInt8] {
        let bytes = try bus.readBytes(address: address, register: register, count: count)
        guard bytes.count == count else {
            throw I2CError(
                .io, "short read from \(address.hex) register \(register.hex) on bus \(bus.number): \(bytes.count) of \(count) bytes")
        }
        return bytes
    }

    public func probe() -> Bool { bus.probe(address: address) }
}

/// Why an I2C transfer failed. `code` is stable; `message` names the bus and address and,
/// where it helps, what to do.
public struct I2CError: Error, Sendable, Equatable, CustomStringConvertible {
    public typealias Code = ErrorCode<I2CError>

    public let code: Code
    public let message: String
    /// The errno behind the failure, when there was one.
    public let errno: Int32?

    public init(_ code: Code, _ message: String, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    public var description: String { "\(code): \(message)" }
}

extension UInt8 {
    /// `0x68`: two lowercase hex digits, the form config strings use.
    var hex: String {
        let digits = Array("0123456789abcdef")
        return "0x" + String(digits[Int(self >> 4)]) + String(digits[Int(self & 0x0F)])
    }
}

extension I2CBus {
    /// i2cdetect's rule for which addresses are probed with a read instead of a quick write.
    static func probesByReading(_ address: UInt8) -> Bool {
        (0x30...0x37).contains(address) || (0x50...0x5F).contains(address)
    }
}

extension ErrorCode where Domain == I2CError {
    /// `/dev/i2c-N` does not exist (no such adapter, or i2c-dev not loaded).
    public static let busNotFound = Self("busNotFound")
    /// The bus device exists but this user may not open it.
    public static let permissionDenied = Self("permissionDenied")
    /// A kernel driver owns the address.
    public static let busy = Self("busy")
    /// Nothing acknowledged the address (device absent, unpowered, or lost mid-stream).
    public static let noDevice = Self("noDevice")
    /// The transfer failed for another reason (the errno is in the message).
    public static let io = Self("io")
    /// An argument is out of range (address above 0x77, a count of 0, …).
    public static let invalidArgument = Self("invalidArgument")
    /// The adapter cannot do this kind of transfer.
    public static let unsupported = Self("unsupported")
}
