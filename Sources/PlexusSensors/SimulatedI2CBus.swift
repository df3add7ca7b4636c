import Synchronization

/// One simulated chip: a register map plus optional behaviour.
///
/// Reads return the stored register (0x00 for registers never written) unless `onRead`
/// supplies a value; multi-byte reads auto-increment the register. Writes store the value,
/// then call `onWrite`, which may change this device's registers or other devices on the
/// bus (the MPU9250's bypass switch attaches its AK8963 that way).
public struct SimulatedI2CDevice: Sendable {
    /// The devices of a simulated bus by address, as write hooks see and change them.
    public typealias Devices = [UInt8: SimulatedI2CDevice]
    /// Called after a write to `register` at `address` was stored.
    public typealias WriteHook = @Sendable (_ address: UInt8, _ register: UInt8, _ value: UInt8, _ devices: inout Devices) -> Void
    /// Returns the value to read from `register`, or nil for the stored one.
    public typealias ReadHook = @Sendable (_ register: UInt8, _ registers: [UInt8: UInt8]) -> UInt8?

    /// For logs and tests, e.g. "MPU9250".
    public var name: String
    public var registers: [UInt8: UInt8]
    public var onWrite: WriteHook?
    public var onRead: ReadHook?

    public init(name: String, registers: [UInt8: UInt8] = [:], onWrite: WriteHook? = nil, onRead: ReadHook? = nil) {
        self.name = name
        self.registers = registers
        self.onWrite = onWrite
        self.onRead = onRead
    }

    /// Stores `bytes` in consecutive registers from `register`.
    public mutating func set(_ bytes: [UInt8], at register: UInt8) {
        for (i, b) in bytes.enumerated() { registers[register &+ UInt8(truncatingIfNeeded: i)] = b }
    }

    func read(_ register: UInt8) -> UInt8 {
        onRead?(register, registers) ?? registers[register] ?? 0
    }
}

/// An I2C bus in memory: devices at addresses, each a ``SimulatedI2CDevice``.
///
/// Used by the tests and by the CLI's simulation mode. A device can be unplugged and
/// plugged back in two ways: ``disconnect(_:)`` / ``reconnect(_:)`` keep its registers (a
/// loose wire), ``detach(_:)`` / ``attach(_:at:)`` replace it (a power cycle: the new device
/// starts from its reset values). Every register write is logged in ``writes``.
public final class SimulatedI2CBus: I2CBus {
    /// One logged register write.
    public struct Write: Sendable, Hashable, CustomStringConvertible {
        public var address: UInt8
        public var register: UInt8
        public var value: UInt8
        public init(address: UInt8, register: UInt8, value: UInt8) {
            self.address = address
            self.register = register
            self.value = value
        }
        public var description: String { "\(address.hex)[\(register.hex)]=\(value.hex)" }
    }

    private struct State {
        var devices: SimulatedI2CDevice.Devices
        var disconnected: Set<UInt8> = []
        var writes: [Write] = []
        var transfers = 0
    }

    public let number: Int
    private let state: Mutex<State>

    public init(number: Int = 1, devices: [UInt8: SimulatedI2CDevice] = [:]) {
        self.number = number
        state = Mutex(State(devices: devices))
    }

    // MARK: Test and simulation controls

    /// Puts `device` at `address`, replacing whatever was there.
    public func attach(_ device: SimulatedI2CDevice, at address: UInt8) {
        state.withLock {
            $0.devices[address] = device
            $0.disconnected.remove(address)
        }
    }

    /// Removes the device at `address` and returns it.
    @discardableResult
    public func detach(_ address: UInt8) -> SimulatedI2CDevice? {
        state.withLock { $0.devices.removeValue(forKey: address) }
    }

    /// Makes the device at `address` stop answering; its registers are kept.
    public func disconnect(_ address: UInt8) {
        state.withLock { _ = $0.disconnected.insert(address) }
    }

    /// Undoes ``disconnect(_:)``.
    public func reconnect(_ address: UInt8) {
        state.withLock { _ = $0.disconnected.remove(address) }
    }

    /// The device at `address` (also when disconnected).
    public func device(at address: UInt8) -> SimulatedI2CDevice? {
        state.withLock { $0.devices[address] }
    }

    /// Changes the device at `address` in place (no-op if there is none).
    public func update(_ address: UInt8, _ body: (inout SimulatedI2CDevice) -> Void) {
        state.withLock { s in
            guard var d = s.devices[address] else { return }
            body(&d)
            s.devices[address] = d
        }
    }

    /// Addresses that answer, sorted.
    public var presentAddresses: [UInt8] {
        state.withLock { s in s.devices.keys.filter { !s.disconnected.contains($0) }.sorted() }
    }

    /// Every register write since the start or the last ``clearLog()``.
    public var writes: [Write] { state.withLock { $0.writes } }

    /// The number of transfers (reads, writes, probes) made, answered or not.
    public var transferCount: Int { state.withLock { $0.transfers } }

    public func clearLog() {
        state.withLock {
            $0.writes = []
            $0.transfers = 0
        }
    }

    // MARK: I2CBus

    public func writeByte(address: UInt8, register: UInt8, value: UInt8) throws(I2CError) {
        try state.withLock { (s) throws(I2CError) in
            s.transfers += 1
            guard var d = present(address, s) else { throw noDevice(address, "write of register \(register.hex)") }
            d.registers[register] = value
            s.devices[address] = d
            s.writes.append(Write(address: address, register: register, value: value))
            d.onWrite?(address, register, value, &s.devices)
        }
    }

    public func readByte(address: UInt8, register: UInt8) throws(I2CError) -> UInt8 {
        try readBytes(address: address, register: register, count: 1)[0]
    }

    public func readBytes(address: UInt8, register: UInt8, count: Int) throws(I2CError) -> [UInt8] {
        guard count > 0, count <= 8192 else { throw I2CError(.invalidArgument, "read count \(count) outside 1...8192") }
        return try state.withLock { (s) throws(I2CError) -> [UInt8] in
            s.transfers += 1
            guard let d = present(address, s) else {
                throw noDevice(address, "read of \(count) bytes from register \(register.hex)")
            }
            return (0..<count).map { d.read(register &+ UInt8(truncatingIfNeeded: $0)) }
        }
    }

    public func writeQuick(address: UInt8) throws(I2CError) {
        try state.withLock { (s) throws(I2CError) in
            s.transfers += 1
            if present(address, s) == nil { throw noDevice(address, "quick write") }
        }
    }

    public func probe(address: UInt8) -> Bool { (try? writeQuick(address: address)) != nil }

    private func present(_ address: UInt8, _ s: State) -> SimulatedI2CDevice? {
        s.disconnected.contains(address) ? nil : s.devices[address]
    }

    private func noDevice(_ address: UInt8, _ what: String) -> I2CError {
        I2CError(.noDevice, "no device acknowledged \(address.hex) on simulated bus \(number) (\(what))", errno: 6)  // ENXIO
    }
}
