public import PlexusModel

/// Why a sensor could not be configured, set up or read. `code` is stable; `message` says
/// what happened and what to do, and never contains readings.
///
/// Bus failures are thrown as ``I2CError`` unchanged, so callers can tell "the chip did not
/// answer" from "the chip answered something wrong".
public typealias SensorError = CodedError<SensorErrorDomain>

/// The domain of ``SensorError``'s codes.
public enum SensorErrorDomain: Sendable {}

extension ErrorCode where Domain == SensorErrorDomain {
    /// An option or config string is malformed or names an unknown option.
    public static let invalidConfiguration = Self("invalidConfiguration")
    /// A config string names a driver this build does not have.
    public static let unknownDriver = Self("unknownDriver")
    /// The device at the address is not the chip the driver expects (WHO_AM_I / chip id).
    public static let wrongDevice = Self("wrongDevice")
    /// The device has no new measurement yet (e.g. right after power-up).
    public static let notReady = Self("notReady")
    /// A file or interface the sensor reads is missing or unreadable.
    public static let unavailable = Self("unavailable")
}
