import PlexusModel
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Host metrics from `/proc` and `/sys`, so a device without I2C still streams something real.
///
/// | metric | source | unit |
/// |---|---|---|
/// | `cpu.temperature` | `/sys/class/thermal/thermal_zone*/temp` (a CPU/SoC zone if one is named so, else the first) | °C |
/// | `cpu.usage_pct` | `/proc/stat` first line, busy share of the jiffies since the previous read | % |
/// | `cpu.load` | `/proc/loadavg`, 1-minute load average | – |
/// | `memory.used_pct` | `/proc/meminfo`, (MemTotal − MemAvailable) / MemTotal | % |
/// | `memory.available_mb` | `/proc/meminfo` MemAvailable | MiB |
/// | `disk.used_pct` | `statvfs` of `/`, used / (used + available to users), as `df` | % |
/// | `disk.available_gb` | `statvfs` of `/`, blocks available to users | GiB |
/// | `net.rx_bytes`, `net.tx_bytes` | `/proc/net/dev`, summed over interfaces except `lo` | bytes |
/// | `system.uptime` | `/proc/uptime` | s |
/// | `system.processes` | `/proc/loadavg`, the total after the slash | – |
///
/// A metric whose source is missing is left out (no thermal zone in a container, for
/// example); `read()` throws only when nothing at all could be read. `cpu.usage_pct` needs
/// two samples: `setup()` takes the first, and without it the first read leaves the metric out.
/// Paths are injectable (``Sources``) so tests can point at fixture files.
public final class SystemSensor: Sensor {
    /// Where the sensor reads from.
    public struct Sources: Sendable {
        /// Default `/proc`.
        public var procRoot: String
        /// Default `/sys`.
        public var sysRoot: String
        /// The file system `disk.*` describes. Default `/`.
        public var diskPath: String
        /// Reads the file system's usage; default `statvfs(3)`.
        public var diskUsage: @Sendable (String) -> DiskUsage?

        public init(
            procRoot: String = "/proc", sysRoot: String = "/sys", diskPath: String = "/",
            diskUsage: @escaping @Sendable (String) -> DiskUsage? = SystemSensor.statvfsUsage
        ) {
            self.procRoot = procRoot
            self.sysRoot = sysRoot
            self.diskPath = diskPath
            self.diskUsage = diskUsage
        }
    }

    /// File system sizes in bytes.
    public struct DiskUsage: Sendable, Hashable {
        public var total: UInt64
        /// Free blocks, including those reserved for root.
        public var free: UInt64
        /// Free blocks available to unprivileged users.
        public var available: UInt64
        public init(total: UInt64, free: UInt64, available: UInt64) {
            self.total = total
            self.free = free
            self.available = available
        }
    }

    public let name = "system"
    public let description = "Host metrics from /proc and /sys: CPU, memory, disk, network, uptime"
    public let metrics = [
        "cpu.temperature", "cpu.usage_pct", "cpu.load", "memory.used_pct", "memory.available_mb", "disk.used_pct",
        "disk.available_gb", "net.rx_bytes", "net.tx_bytes", "system.uptime", "system.processes",
    ]
    public let settings: SensorSettings
    public let sources: Sources

    /// The previous `/proc/stat` totals: (all jiffies, idle + iowait jiffies).
    private let previousCPU = Mutex<(total: UInt64, idle: UInt64)?>(nil)

    public init(sources: Sources = Sources(), sampleRate: Double = 1, prefix: String = "") {
        self.sources = sources
        settings = SensorSettings(sampleRate: sampleRate, prefix: prefix)
    }

    /// Takes the first CPU sample, so the first read has `cpu.usage_pct`.
    public func setup() throws {
        let sample = cpuTimes()
        previousCPU.withLock { $0 = sample }
    }

    public func read() throws -> [SensorReading] {
        let now = WallClock.now()
        var out: [SensorReading] = []
        func add(_ metric: String, _ value: Double?) {
            if let value, value.isFinite { out.append(SensorReading(metric, value, timestamp: now)) }
        }

        add("cpu.temperature", cpuTemperature())
        if let sample = cpuTimes() {
            let previous = previousCPU.withLock { p in
                defer { p = sample }
                return p
            }
            if let previous, sample.total > previous.total, sample.idle >= previous.idle {
                let total = Double(sample.total - previous.total)
                let idle = Double(sample.idle - previous.idle)
                add("cpu.usage_pct", max(0, min(100, (total - idle) / total * 100)))
            }
        }
        let load = FileAccess.readText(proc("loadavg")).map { $0.split(separator: " ") }
        add("cpu.load", load.flatMap { $0.first }.flatMap { Double($0) })
        if let mem = memory() {
            add("memory.used_pct", mem.total > 0 ? Double(mem.total - min(mem.available, mem.total)) / Double(mem.total) * 100 : nil)
            add("memory.available_mb", Double(mem.available) / 1024)
        }
        if let disk = sources.diskUsage(sources.diskPath) {
            let used = disk.total >= disk.free ? disk.total - disk.free : 0
            let denominator = used + disk.available
            add("disk.used_pct", denominator > 0 ? Double(used) / Double(denominator) * 100 : nil)
            add("disk.available_gb", Double(disk.available) / 1_073_741_824)
        }
        if let net = network() {
            add("net.rx_bytes", Double(net.rx))
            add("net.tx_bytes", Double(net.tx))
        }
        add("system.uptime", FileAccess.readText(proc("uptime")).flatMap { $0.split(separator: " ").first }.flatMap { Double($0) })
        if let load, load.count >= 4, let slash = load[3].firstIndex(of: "/") {
            add("system.processes", Double(load[3][load[3].index(after: slash)...]))
        }

        guard !out.isEmpty else {
            throw SensorError(.unavailable, "nothing readable under \(sources.procRoot) or \(sources.sysRoot)")
        }
        return out
    }

    public func isAvailable() -> Bool {
        FileAccess.readText(proc("stat")) != nil || FileAccess.readText(proc("loadavg")) != nil
    }

    // MARK: Sources

    private func proc(_ file: String) -> String { FileAccess.join(sources.procRoot, file) }

    /// Jiffies from the aggregate `cpu` line: total of user…steal and idle + iowait.
    func cpuTimes() -> (total: UInt64, idle: UInt64)? {
        guard let text = FileAccess.readText(proc("stat")) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("cpu ") {
            let fields = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
            guard fields.count >= 4 else { return nil }
            // user nice system idle iowait irq softirq steal (guest time is already in user).
            let total = fields.prefix(8).reduce(0, +)
            let idle = fields[3] + (fields.count > 4 ? fields[4] : 0)
            return (total, idle)
        }
        return nil
    }

    /// (MemTotal, MemAvailable) in kB; MemFree + Buffers + Cached on kernels without MemAvailable.
    func memory() -> (total: UInt64, available: UInt64)? {
        guard let text = FileAccess.readText(proc("meminfo")) else { return nil }
        var values: [Substring: UInt64] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon]
            if let v = line[line.index(after: colon)...].split(separator: " ").first.flatMap({ UInt64($0) }) {
                values[key] = v
            }
        }
        guard let total = values["MemTotal"] else { return nil }
        if let available = values["MemAvailable"] { return (total, available) }
        guard let free = values["MemFree"] else { return nil }
        return (total, free + (values["Buffers"] ?? 0) + (values["Cached"] ?? 0))
    }

    /// Received and transmitted bytes over all interfaces except loopback.
    func network() -> (rx: UInt64, tx: UInt64)? {
        guard let text = FileAccess.readText(FileAccess.join(sources.procRoot, "net/dev")) else { return nil }
        var rx: UInt64 = 0
        var tx: UInt64 = 0
        var found = false
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let interface = line[..<colon].trimmingCharacters(" ")
            if interface == "lo" || interface.isEmpty { continue }
            let fields = line[line.index(after: colon)...].split(separator: " ")
            guard fields.count >= 9, let r = UInt64(fields[0]), let t = UInt64(fields[8]) else { continue }
            rx += r
            tx += t
            found = true
        }
        return found ? (rx, tx) : nil
    }

    /// °C from the CPU's thermal zone: the first zone whose `type` names a CPU, package or SoC,
    /// else the lowest-numbered zone with a readable `temp`.
    func cpuTemperature() -> Double? {
        let base = FileAccess.join(sources.sysRoot, "class/thermal")
        guard let names = FileAccess.list(base) else { return nil }
        let zones = names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("thermal_zone"), let n = Int(name.dropFirst("thermal_zone".count)) else { return nil }
            return (n, FileAccess.join(base, name))
        }.sorted { $0.0 < $1.0 }.map(\.1)
        var fallback: Double?
        for zone in zones {
            guard let text = FileAccess.readText(FileAccess.join(zone, "temp")),
                let milli = Double(text.trimmingCharacters("\n "))
            else { continue }
            let celsius = milli / 1000
            let type = FileAccess.readText(FileAccess.join(zone, "type"))?.lowercased() ?? ""
            if type.contains("cpu") || type.contains("x86_pkg") || type.contains("soc") || type.contains("coretemp") {
                return celsius
            }
            if fallback == nil { fallback = celsius }
        }
        return fallback
    }

    /// `statvfs(3)` of `path`.
    public static func statvfsUsage(_ path: String) -> DiskUsage? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        let unit = UInt64(s.f_frsize)
        return DiskUsage(total: UInt64(s.f_blocks) * unit, free: UInt64(s.f_bfree) * unit, available: UInt64(s.f_bavail) * unit)
    }
}

extension StringProtocol {
    /// The string without the given characters at either end.
    func trimmingCharacters(_ set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}
