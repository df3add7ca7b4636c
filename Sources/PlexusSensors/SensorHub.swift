public import PlexusModel
import Synchronization

/// Holds sensors and reads each one when its own interval has elapsed.
///
/// Scheduling: a sensor is due `1 / rate` seconds after its previous read (drift-free; if the
/// caller fell behind, the next read is one interval after now). The rate is the sensor's
/// ``Sensor/sampleRate``, halved once per ``Configuration/failuresBeforeSlowdown``
/// consecutive failures, capped by ``maximumRate``. When the halved rate falls below
/// ``Configuration/minimumRate`` (0.1 Hz) the sensor is disabled; a disabled sensor is
/// tried once every ``Configuration/disabledRetryInterval`` (60 s) so a device that comes
/// back is picked up again. Any successful read restores the full rate.
///
/// Time is injected: `now` returns monotonic seconds. ``poll()`` never sleeps, so tests drive
/// the hub with a fake clock; ``run(sleep:onPoll:)`` is the loop a program runs. Sensors are
/// read on the polling task, outside the hub's lock; two concurrent polls never read the same
/// sensor at once. Adding, removing and configuring are safe from any task.
///
/// Failures are not thrown: every poll returns the readings and the ``SensorIssue``s (failed
/// reads, slow-downs, disables, recoveries) so the caller can forward them, e.g. as the
/// dashboard's `device_error`.
public final class SensorHub: Sendable {
    public struct Configuration: Sendable {
        /// Consecutive failures that halve a sensor's rate. Default 5.
        public var failuresBeforeSlowdown: Int
        /// Below this rate (Hz) a failing sensor is disabled. Default 0.1.
        public var minimumRate: Double
        /// Seconds between attempts to read a disabled sensor; nil: never (the Python SDK's
        /// behaviour). Default 60.
        public var disabledRetryInterval: Double?

        public init(failuresBeforeSlowdown: Int = 5, minimumRate: Double = 0.1, disabledRetryInterval: Double? = 60) {
            self.failuresBeforeSlowdown = max(1, failuresBeforeSlowdown)
            self.minimumRate = minimumRate
            self.disabledRetryInterval = disabledRetryInterval
        }
    }

    private struct Entry {
        let sensor: any Sensor
        var id: ObjectIdentifier { ObjectIdentifier(sensor) }
        /// Monotonic time of the next read; nil: due now; infinity: never (disabled for good).
        var nextDue: Double?
        var halvings = 0
        var failures = 0
        var disabled = false
        var lastError: String?
        /// Being read by a poll right now (a concurrent poll skips it).
        var inFlight = false
    }

    private struct State {
        var entries: [Entry] = []
        var maximumRate: Double?
    }

    public let configuration: Configuration
    private let now: @Sendable () -> Double
    private let state = Mutex(State())

    /// - Parameters:
    ///   - now: monotonic seconds; default `CLOCK_MONOTONIC`.
    public init(configuration: Configuration = Configuration(), now: @escaping @Sendable () -> Double = WallClock.monotonic) {
        self.configuration = configuration
        self.now = now
    }

    // MARK: Sensors

    /// Adds a sensor (once; adding the same instance again does nothing). It is due at the next poll.
    public func add(_ sensor: any Sensor) {
        state.withLock { s in
            guard !s.entries.contains(where: { $0.id == ObjectIdentifier(sensor) }) else { return }
            s.entries.append(Entry(sensor: sensor))
        }
    }

    /// Removes a sensor; returns whether it was there.
    @discardableResult
    public func remove(_ sensor: any Sensor) -> Bool {
        state.withLock { s in
            let before = s.entries.count
            s.entries.removeAll { $0.id == ObjectIdentifier(sensor) }
            return s.entries.count != before
        }
    }

    /// Removes every sensor with this name; returns how many.
    @discardableResult
    public func remove(named name: String) -> Int {
        state.withLock { s in
            let before = s.entries.count
            s.entries.removeAll { $0.sensor.name == name }
            return before - s.entries.count
        }
    }

    public var sensors: [any Sensor] { state.withLock { $0.entries.map(\.sensor) } }

    /// The first sensor with this name (the Python SDK's `get_sensor`).
    public func sensor(named name: String) -> (any Sensor)? {
        state.withLock { $0.entries.first { $0.sensor.name == name }?.sensor }
    }

    /// A global rate cap in Hz (the dashboard's `start_stream` `interval_ms` as `1000 / ms`),
    /// floored at 0.01 Hz; nil: none.
    public var maximumRate: Double? {
        get { state.withLock { $0.maximumRate } }
        set { state.withLock { $0.maximumRate = newValue.map { max($0, 0.01) } } }
    }

    /// Where each sensor stands, in the order they were added.
    public var statuses: [SensorStatus] {
        state.withLock { s in s.entries.map { status($0, cap: s.maximumRate) } }
    }

    /// The status of one sensor, nil if it is not in the hub.
    public func status(of sensor: any Sensor) -> SensorStatus? {
        state.withLock { s in s.entries.first { $0.id == ObjectIdentifier(sensor) }.map { status($0, cap: s.maximumRate) } }
    }

    /// `[info, …]` of every sensor, the `device_auth.sensors` array.
    public var info: PlexusValue { .array(sensors.map(\.info)) }

    /// Applies options to every sensor with this name (the dashboard's `configure` command)
    /// and restores its full rate. Returns how many sensors were configured.
    /// - Throws: ``SensorError`` `.invalidConfiguration` if no sensor has the name, or the
    ///   sensor's own error.
    @discardableResult
    public func configure(sensor name: String, _ options: [String: PlexusValue]) throws -> Int {
        let targets = state.withLock { s in s.entries.filter { $0.sensor.name == name }.map(\.sensor) }
        guard !targets.isEmpty else {
            throw SensorError(.invalidConfiguration, "no sensor named '\(name)' (have: \(sensors.map(\.name).joined(separator: ", ")))")
        }
        for sensor in targets { try sensor.configure(options) }
        state.withLock { s in
            for i in s.entries.indices where s.entries[i].sensor.name == name {
                s.entries[i].halvings = 0
                s.entries[i].disabled = false
                s.entries[i].nextDue = nil
            }
        }
        return targets.count
    }

    // MARK: Lifecycle

    /// Calls `setup()` on every sensor. A sensor whose setup fails stays in the hub (drivers
    /// retry their setup on the next read) and is reported.
    public func setup() -> [SensorIssue] {
        var issues: [SensorIssue] = []
        for sensor in sensors {
            do {
                try sensor.setup()
            } catch {
                issues.append(
                    SensorIssue(
                        sensor: sensor.name, kind: .setupFailed, message: "setup failed: \(error)", error: error,
                        consecutiveFailures: 0, sampleRate: sensor.sampleRate))
            }
        }
        return issues
    }

    /// Calls `cleanup()` on every sensor.
    public func cleanup() {
        for sensor in sensors { sensor.cleanup() }
    }

    // MARK: Reading

    /// Reads every sensor that is due now.
    public func poll() -> SensorPoll {
        let t = now()
        let due: [any Sensor] = state.withLock { s in
            var due: [any Sensor] = []
            for i in s.entries.indices where !s.entries[i].inFlight && (s.entries[i].nextDue.map { $0 <= t } ?? true) {
                s.entries[i].inFlight = true
                due.append(s.entries[i].sensor)
            }
            return due
        }
        return read(due, at: t)
    }

    /// Reads every sensor now, due or not, disabled or not; results count like any read.
    public func readAll() -> SensorPoll {
        let all: [any Sensor] = state.withLock { s in
            var all: [any Sensor] = []
            for i in s.entries.indices where !s.entries[i].inFlight {
                s.entries[i].inFlight = true
                all.append(s.entries[i].sensor)
            }
            return all
        }
        return read(all, at: now())
    }

    /// Seconds until the next sensor is due (0 if one is due now); nil without sensors or
    /// when every sensor is disabled for good.
    public func secondsUntilNextRead() -> Double? {
        let t = now()
        return state.withLock { s in
            s.entries.map { e in e.nextDue.map { max(0, $0 - t) } ?? 0 }.filter(\.isFinite).min()
        }
    }

    /// Polls until the task is cancelled: each due reading batch and issue goes to `onPoll`,
    /// then it sleeps until the next sensor is due (at most 1 s, so added sensors and new
    /// rates are picked up).
    /// - Parameter sleep: waits the given seconds; inject to drive the loop without waiting.
    public func run(
        sleep: (Double) async throws -> Void = { try await Task.sleep(for: .seconds($0)) },
        onPoll: (SensorPoll) async throws -> Void
    ) async throws {
        while true {
            try Task.checkCancellation()  // ends the same way wherever the cancel lands
            let result = poll()
            if !result.isEmpty { try await onPoll(result) }
            try await sleep(min(max(secondsUntilNextRead() ?? 1, 0.000_5), 1))
        }
    }

    private func read(_ sensors: [any Sensor], at t: Double) -> SensorPoll {
        var outcomes: [(sensor: any Sensor, result: Result<[SensorReading], any Error>)] = []
        for sensor in sensors {
            outcomes.append((sensor, Result { try sensor.read() }))
        }
        var poll = SensorPoll()
        state.withLock { s in
            for (sensor, result) in outcomes {
                guard let i = s.entries.firstIndex(where: { $0.id == ObjectIdentifier(sensor) }) else { continue }
                s.entries[i].inFlight = false
                switch result {
                case .success(let readings):
                    if let issue = succeeded(&s.entries[i], at: t, cap: s.maximumRate) { poll.issues.append(issue) }
                    poll.batches.append(SensorBatch(sensor: sensor.name, readings: decorate(readings, from: sensor)))
                case .failure(let error):
                    poll.issues += failed(&s.entries[i], error, at: t, cap: s.maximumRate)
                }
            }
        }
        return poll
    }

    private func decorate(_ readings: [SensorReading], from sensor: any Sensor) -> [SensorReading] {
        let prefix = sensor.settings.prefix
        let tags = sensor.settings.tags
        guard !prefix.isEmpty || !tags.isEmpty else { return readings }
        return readings.map { r in
            var r = r
            r.metric = SensorSettings.prefixed(r.metric, with: prefix)
            if !tags.isEmpty { r.tags = tags.merging(r.tags) { _, own in own } }
            return r
        }
    }

    // MARK: Degradation rule

    private func baseRate(_ e: Entry) -> Double {
        e.sensor.sampleRate / Double(1 << min(e.halvings, 62))
    }

    private func effectiveRate(_ e: Entry, cap: Double?) -> Double {
        min(baseRate(e), cap ?? .infinity)
    }

    private func schedule(_ e: inout Entry, at t: Double, cap: Double?) {
        let interval = 1 / effectiveRate(e, cap: cap)
        if let due = e.nextDue, due + interval > t {
            e.nextDue = due + interval
        } else {
            e.nextDue = t + interval
        }
    }

    private func succeeded(_ e: inout Entry, at t: Double, cap: Double?) -> SensorIssue? {
        let wasFailing = e.failures > 0 || e.disabled
        let previousFailures = e.failures
        e.failures = 0
        e.halvings = 0
        if e.disabled {
            e.disabled = false
            e.nextDue = nil
        }
        e.lastError = nil
        schedule(&e, at: t, cap: cap)
        guard wasFailing else { return nil }
        let rate = effectiveRate(e, cap: cap)
        let reads = previousFailures == 1 ? "read" : "reads"
        return SensorIssue(
            sensor: e.sensor.name, kind: .recovered,
            message: "reading again after \(previousFailures) failed \(reads); back to \(Self.hz(rate))",
            error: nil, consecutiveFailures: 0, sampleRate: rate)
    }

    private func failed(_ e: inout Entry, _ error: any Error, at t: Double, cap: Double?) -> [SensorIssue] {
        e.failures += 1
        e.lastError = "\(error)"
        let name = e.sensor.name
        var issues = [
            SensorIssue(
                sensor: name, kind: .readFailed, message: "read failed: \(error)", error: error,
                consecutiveFailures: e.failures, sampleRate: e.disabled ? 0 : effectiveRate(e, cap: cap))
        ]
        if e.disabled {
            // A retry of a disabled sensor failed: wait for the next retry.
            e.nextDue = t + (configuration.disabledRetryInterval ?? .infinity)
            return issues
        }
        if e.failures % configuration.failuresBeforeSlowdown == 0 {
            e.halvings += 1
            if baseRate(e) < configuration.minimumRate {
                e.disabled = true
                e.nextDue = t + (configuration.disabledRetryInterval ?? .infinity)
                let retry = configuration.disabledRetryInterval.map { "; retrying every \(Self.seconds($0))" } ?? ""
                let floor = Self.hz(configuration.minimumRate)
                issues.append(
                    SensorIssue(
                        sensor: name, kind: .disabled,
                        message: "disabled after \(e.failures) consecutive failures (rate would fall below \(floor))\(retry)",
                        error: error, consecutiveFailures: e.failures, sampleRate: 0))
                return issues
            }
            let rate = effectiveRate(e, cap: cap)
            issues.append(
                SensorIssue(
                    sensor: name, kind: .slowedDown,
                    message: "\(e.failures) consecutive failures; sample rate lowered to \(Self.hz(rate))",
                    error: error, consecutiveFailures: e.failures, sampleRate: rate))
        }
        schedule(&e, at: t, cap: cap)
        return issues
    }

    private func status(_ e: Entry, cap: Double?) -> SensorStatus {
        SensorStatus(
            name: e.sensor.name, sampleRate: e.sensor.sampleRate, effectiveRate: e.disabled ? 0 : effectiveRate(e, cap: cap),
            consecutiveFailures: e.failures, isDisabled: e.disabled, lastError: e.lastError)
    }

    static func hz(_ r: Double) -> String {
        let rounded = (r * 1000).rounded() / 1000
        return "\(rounded) Hz"
    }

    static func seconds(_ s: Double) -> String {
        s == s.rounded() ? "\(Int(s)) s" : "\(s) s"
    }
}

/// What one poll produced.
public struct SensorPoll: Sendable {
    /// One batch per sensor read successfully, metrics prefixed and sensor tags applied.
    public var batches: [SensorBatch] = []
    /// Failed reads and state changes, in order.
    public var issues: [SensorIssue] = []

    public init(batches: [SensorBatch] = [], issues: [SensorIssue] = []) {
        self.batches = batches
        self.issues = issues
    }

    /// Every reading of every batch.
    public var readings: [SensorReading] { batches.flatMap(\.readings) }
    public var isEmpty: Bool { batches.isEmpty && issues.isEmpty }
}

/// The readings of one sensor from one read.
public struct SensorBatch: Sendable, Hashable {
    /// The sensor's name.
    public var sensor: String
    public var readings: [SensorReading]

    public init(sensor: String, readings: [SensorReading]) {
        self.sensor = sensor
        self.readings = readings
    }
}

/// Something the caller should know about a sensor. Maps onto the dashboard's
/// `device_error {source, error, severity, timestamp}`: `source` = ``sensor``,
/// `error` = ``message``, `severity` = ``severity``.
public struct SensorIssue: Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// `setup()` threw.
        case setupFailed
        /// `read()` threw.
        case readFailed
        /// Too many consecutive failures: the rate was halved.
        case slowedDown
        /// The rate would fall below the minimum: the sensor is only retried now and then.
        case disabled
        /// A read succeeded after failures: full rate again.
        case recovered
    }

    public enum Severity: String, Sendable, Hashable {
        case info, warning, error
    }

    public var sensor: String
    public var kind: Kind
    /// For operators; no reading values.
    public var message: String
    /// The error behind it (nil for `.recovered`).
    public var error: (any Error)?
    public var consecutiveFailures: Int
    /// The sensor's effective rate after the event (0 when disabled).
    public var sampleRate: Double
    /// Unix seconds.
    public var timestamp: Double

    public init(
        sensor: String, kind: Kind, message: String, error: (any Error)?, consecutiveFailures: Int, sampleRate: Double,
        timestamp: Double = WallClock.now()
    ) {
        self.sensor = sensor
        self.kind = kind
        self.message = message
        self.error = error
        self.consecutiveFailures = consecutiveFailures
        self.sampleRate = sampleRate
        self.timestamp = timestamp
    }

    public var severity: Severity {
        switch kind {
        case .setupFailed, .readFailed, .disabled: .error
        case .slowedDown: .warning
        case .recovered: .info
        }
    }

    public var description: String { "\(sensor) \(kind.rawValue): \(message)" }
}

/// Where one sensor stands in the hub.
public struct SensorStatus: Sendable, Hashable {
    public var name: String
    /// The sensor's own rate (Hz).
    public var sampleRate: Double
    /// The rate it is read at now: halved for failures, capped, 0 when disabled.
    public var effectiveRate: Double
    public var consecutiveFailures: Int
    public var isDisabled: Bool
    /// The last failure's description, nil after a success.
    public var lastError: String?
}
