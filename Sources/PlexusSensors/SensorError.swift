/// Why a sensor could not be configured, set up or read. `code` is stable; `message` says
/// what happened and what to do, and never contains readings.
///
/// Bus failures are thrown as ``I2CError`` unchanged, so callers can tell "the chip did not
/// answer" from "the chip answered something wrong".
public struct SensorError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        private init(_ r: String) { rawValue = r }
        /// An option or config string is malformed or names an unknown option.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// A config string names a driver this build does not have.
        public static let unknownDriver = Code("unknownDriver")
        /// The device at the address is not the chip the driver expects (WHO_AM_I / chip id).
        public static let wrongDevice = Code("wrongDevice")
        /// The device has no new measurement yet (e.g. right after power-up).
        public static let notReady = Code("notReady")
        /// A file or interface the sensor reads is missing or unreadable.
        public static let unavailable = Code("unavailable")
        public var description: String { rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
