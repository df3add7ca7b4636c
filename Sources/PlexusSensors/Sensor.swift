public import PlexusModel
import Synchronization

/// A source of readings: a chip on a bus, a file in `/proc`, anything a program can read.
///
/// The Swift form of the Python SDK's `BaseSensor`. A sensor is a `final class` (the
/// protocol is class-bound and `Sendable`): the hub reads it from an async loop while the
/// dashboard's `configure` command may change it from another task, so every mutable part
/// lives behind a lock. The sample rate, prefix and tags live in ``SensorSettings``, which
/// does the locking for you, so a custom sensor needs three properties and `read()`:
///
/// ```swift
/// final class BoardTemperature: Sensor {
///     let name = "board_temp"
///     let metrics = ["board.temperature"]
///     let settings = SensorSettings(sampleRate: 1)
///
///     func read() throws -> [SensorReading] {
///         [SensorReading("board.temperature", 41.5)]
///     }
/// }
///
/// hub.add(BoardTemperature())
/// ```
///
/// Contract:
/// - `setup()` is called once by ``SensorHub/setup()`` (or lazily by the driver itself).
///   Drivers for hardware redo it on the next `read()` after a failed read, so a device that
///   was unplugged and powered up again is re-initialised without help.
/// - `read()` returns readings with metric names from `metrics`, unprefixed; the hub applies
///   ``prefix`` and ``SensorSettings/tags``.
/// - `read()` runs on the caller's thread and should return within milliseconds.
public protocol Sensor: AnyObject, Sendable {
    /// The driver name, e.g. `MPU6050`. The dashboard's `configure` command addresses it.
    var name: String { get }
    /// One line for people. Default: the name.
    var description: String { get }
    /// The metric names `read()` produces (unprefixed).
    var metrics: [String] { get }
    /// Sample rate, prefix and tags, shared and locked.
    var settings: SensorSettings { get }

    /// Prepares the device (wake it, load calibration). Default: nothing.
    func setup() throws
    /// One sample of every metric that could be read.
    func read() throws -> [SensorReading]
    /// Releases the device (power down, close files). Default: nothing.
    func cleanup()
    /// Applies `sample_rate`, `prefix` and driver options (the dashboard's `configure`).
    /// Default: `sample_rate` and `prefix` only. Unknown keys and invalid values throw
    /// ``SensorError`` `.invalidConfiguration` and change nothing.
    func configure(_ options: [String: PlexusValue]) throws
    /// Whether the device answers. Default: `read()` succeeds.
    func isAvailable() -> Bool
}

extension Sensor {
    public var description: String { name }
    public func setup() throws {}
    public func cleanup() {}
    public func isAvailable() -> Bool { (try? read()) != nil }

    public func configure(_ options: [String: PlexusValue]) throws {
        try settings.apply(options, sensor: name)
    }

    /// Hz. Setting a value that is not finite and positive is ignored; use `configure` for
    /// a checked change.
    public var sampleRate: Double {
        get { settings.sampleRate }
        set { settings.sampleRate = newValue }
    }

    /// Prepended to every metric by the hub: `prefix.metric` (no extra dot if the prefix
    /// already ends with one). Empty: no prefix.
    public var prefix: String {
        get { settings.prefix }
        set { settings.prefix = newValue }
    }

    /// `metric` with the prefix applied.
    public func prefixedMetric(_ metric: String) -> String { SensorSettings.prefixed(metric, with: settings.prefix) }

    /// The shape the Python SDK reports in `device_auth.sensors`:
    /// `{"name","description","metrics","sample_rate","prefix","available"}`.
    /// Calls ``isAvailable()``, which touches the device.
    public var info: PlexusValue {
        .object([
            ("name", .string(name)),
            ("description", .string(description)),
            ("metrics", .array(metrics.map { .string($0) })),
            ("sample_rate", .number(sampleRate)),
            ("prefix", .string(prefix)),
            ("available", .bool(isAvailable())),
        ])
    }
}

/// The mutable settings every sensor has, behind a lock.
public final class SensorSettings: Sendable {
    private struct State {
        var sampleRate: Double
        var prefix: String
        var tags: [String: String]
    }

    private let state: Mutex<State>

    /// - Parameters:
    ///   - sampleRate: Hz, finite and positive (a bad value falls back to 1 Hz).
    ///   - prefix: see ``Sensor/prefix``.
    ///   - tags: added to every reading the hub returns (the reading's own tags win).
    public init(sampleRate: Double = 10, prefix: String = "", tags: [String: String] = [:]) {
        let rate = sampleRate.isFinite && sampleRate > 0 ? sampleRate : 1
        state = Mutex(State(sampleRate: rate, prefix: prefix, tags: tags))
    }

    public var sampleRate: Double {
        get { state.withLock { $0.sampleRate } }
        set {
            guard newValue.isFinite, newValue > 0 else { return }
            state.withLock { $0.sampleRate = newValue }
        }
    }

    public var prefix: String {
        get { state.withLock { $0.prefix } }
        set { state.withLock { $0.prefix = newValue } }
    }

    public var tags: [String: String] {
        get { state.withLock { $0.tags } }
        set { state.withLock { $0.tags = newValue } }
    }

    /// Applies `sample_rate` (a number in (0, 10000] Hz) and `prefix` (a string).
    ///
    /// Drivers remove their own options from the dictionary first (after checking them) and
    /// pass their names as `driverOptions` for the error message. Any other key, or an
    /// invalid value, throws ``SensorError/Code-swift.struct/invalidConfiguration`` and
    /// changes nothing.
    public func apply(_ options: [String: PlexusValue], sensor: String, driverOptions: [String] = []) throws(SensorError) {
        var rest = options
        var rate: Double?
        var newPrefix: String?
        if let v = rest.removeValue(forKey: "sample_rate") {
            guard case .number(let r) = v, r.isFinite, r > 0, r <= 10_000 else {
                throw SensorError(.invalidConfiguration, "\(sensor) sample_rate must be a number of Hz in (0, 10000], got \(v.jsonText)")
            }
            rate = r
        }
        if let v = rest.removeValue(forKey: "prefix") {
            guard case .string(let p) = v else {
                throw SensorError(.invalidConfiguration, "\(sensor) prefix must be a string, got \(v.jsonText)")
            }
            newPrefix = p
        }
        if let key = rest.keys.sorted().first {
            let known = (["sample_rate", "prefix"] + driverOptions).joined(separator: ", ")
            throw SensorError(.invalidConfiguration, "\(sensor) has no option '\(key)' (it knows \(known))")
        }
        state.withLock {
            if let rate { $0.sampleRate = rate }
            if let newPrefix { $0.prefix = newPrefix }
        }
    }

    static func prefixed(_ metric: String, with prefix: String) -> String {
        if prefix.isEmpty { return metric }
        return prefix.hasSuffix(".") ? prefix + metric : prefix + "." + metric
    }
}

/// One value a sensor produced.
public struct SensorReading: Sendable, Hashable {
    public var metric: String
    public var value: PlexusValue
    /// Unix time in seconds, fractions kept.
    public var timestamp: Double
    public var tags: [String: String]

    public init(metric: String, value: PlexusValue, timestamp: Double = WallClock.now(), tags: [String: String] = [:]) {
        self.metric = metric
        self.value = value
        self.timestamp = timestamp
        self.tags = tags
    }

    /// A numeric reading.
    public init(_ metric: String, _ value: Double, timestamp: Double = WallClock.now(), tags: [String: String] = [:]) {
        self.init(metric: metric, value: .number(value), timestamp: timestamp, tags: tags)
    }

    /// The reading as a model point (timestamp in microseconds, tags sorted).
    public func point(sourceID: String? = nil) -> Point {
        Point(
            metric: metric, value: value, timestamp: Timestamp.micros(fromWire: timestamp), sourceID: sourceID,
            tags: tags.map { Tag($0.key, $0.value) }.sorted()
        )
    }
}
