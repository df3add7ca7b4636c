import PlexusModel
import Synchronization
import Testing

@testable import PlexusSensors

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A clock the test moves by hand (monotonic seconds).
final class ManualClock: Sendable {
    private let time: Mutex<Double>
    init(_ start: Double = 0) { time = Mutex(start) }
    var now: Double { time.withLock { $0 } }
    func set(_ t: Double) { time.withLock { $0 = t } }
    func advance(_ dt: Double) { time.withLock { $0 += dt } }
    var reader: @Sendable () -> Double { { self.now } }
}

/// A sensor that fails while `failing` is set and counts its reads.
final class FlakySensor: Sensor {
    let name: String
    let metrics = ["value"]
    let settings: SensorSettings
    private let state = Mutex((failing: false, reads: 0))

    init(name: String = "flaky", sampleRate: Double) {
        self.name = name
        settings = SensorSettings(sampleRate: sampleRate)
    }

    var failing: Bool {
        get { state.withLock { $0.failing } }
        set { state.withLock { $0.failing = newValue } }
    }

    var reads: Int { state.withLock { $0.reads } }

    struct Failure: Error, CustomStringConvertible {
        var description: String { "simulated failure" }
    }

    func read() throws -> [SensorReading] {
        let (failing, n) = state.withLock { s in
            s.reads += 1
            return (s.failing, s.reads)
        }
        if failing { throw Failure() }
        return [SensorReading("value", Double(n), timestamp: 1_700_000_000)]
    }
}

/// The value of `metric` in `readings`, if it is a number.
func number(_ readings: [SensorReading], _ metric: String) -> Double? {
    for r in readings where r.metric == metric {
        if case .number(let v) = r.value { return v }
    }
    return nil
}

/// `|a − b| ≤ tolerance`, with nil failing.
func approx(_ a: Double?, _ b: Double, _ tolerance: Double = 1e-9) -> Bool {
    guard let a else { return false }
    return abs(a - b) <= tolerance
}

/// A fresh directory under /tmp, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() {
        var template = Array("/tmp/plexus-sensors-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Writes `contents` at `relative`, creating directories on the way.
    func write(_ relative: String, _ contents: String) {
        let full = path + "/" + relative
        var dir = path
        for component in relative.split(separator: "/").dropLast() {
            dir += "/" + component
            mkdir(dir, 0o755)
        }
        let fd = open(full, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0, "cannot create \(full)")
        writeAll(fd, Array(contents.utf8))
    }

    func remove() { Self.removeTree(path) }

    private static func removeTree(_ path: String) {
        if let names = FileAccess.list(path) {
            for name in names { removeTree(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

private func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    precondition(n == bytes.count)
    close(fd)
}
