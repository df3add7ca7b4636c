import PlexusModel
import Testing

@testable import PlexusSensors

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("System sensor")
struct SystemSensorTests {
    /// A fake /proc and /sys with known numbers.
    static func fixture() -> TemporaryDirectory {
        let dir = TemporaryDirectory()
        dir.write(
            "proc/stat",
            """
            cpu  100 0 50 800 50 0 0 0 0 0
            cpu0 50 0 25 400 25 0 0 0 0 0
            intr 12345

            """)
        dir.write("proc/loadavg", "0.52 0.58 0.59 3/412 12345\n")
        dir.write(
            "proc/meminfo",
            """
            MemTotal:        8000000 kB
            MemFree:          500000 kB
            MemAvailable:    2000000 kB
            Buffers:          100000 kB
            Cached:          1000000 kB

            """)
        dir.write("proc/uptime", "12345.67 40000.00\n")
        dir.write(
            "proc/net/dev",
            """
            Inter-|   Receive                                                |  Transmit
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
                lo:  999999     100    0    0    0     0          0         0   999999     100    0    0    0     0       0          0
              eth0:    1000      10    0    0    0     0          0         0     2000      20    0    0    0     0       0          0
             wlan0:     500       5    0    0    0     0          0         0      250       3    0    0    0     0       0          0

            """)
        dir.write("sys/class/thermal/thermal_zone0/type", "acpitz\n")
        dir.write("sys/class/thermal/thermal_zone0/temp", "40000\n")
        dir.write("sys/class/thermal/thermal_zone1/type", "x86_pkg_temp\n")
        dir.write("sys/class/thermal/thermal_zone1/temp", "52500\n")
        dir.write("sys/class/thermal/cooling_device0/type", "Processor\n")
        return dir
    }

    static func sensor(_ dir: TemporaryDirectory) -> SystemSensor {
        SystemSensor(
            sources: .init(
                procRoot: dir.path + "/proc", sysRoot: dir.path + "/sys", diskPath: "/data",
                diskUsage: { path in
                    // 100 GiB, 40 GiB free of which 35 GiB available to users (5 GiB reserved).
                    path == "/data" ? .init(total: 100 << 30, free: 40 << 30, available: 35 << 30) : nil
                }))
    }

    @Test("fixture files give exact values")
    func fixtureValues() throws {
        let dir = Self.fixture()
        defer { dir.remove() }
        let s = Self.sensor(dir)
        try s.setup()  // first /proc/stat sample: total 1000 jiffies, idle+iowait 850
        dir.write("proc/stat", "cpu  160 0 70 900 70 0 0 0 0 0\n")  // total 1200, idle 970
        let r = try s.read()
        #expect(r.map(\.metric) == s.metrics)
        #expect(number(r, "cpu.temperature") == 52.5)  // the x86_pkg_temp zone, not zone0
        #expect(number(r, "cpu.usage_pct") == 40)  // (200 − 120) / 200
        #expect(number(r, "cpu.load") == 0.52)
        #expect(number(r, "memory.used_pct") == 75)  // (8000000 − 2000000) / 8000000
        #expect(number(r, "memory.available_mb") == 1953.125)  // 2000000 kB / 1024
        #expect(approx(number(r, "disk.used_pct"), 60.0 / 95.0 * 100))  // used 60 / (60 + 35), as df
        #expect(number(r, "disk.available_gb") == 35)
        #expect(number(r, "net.rx_bytes") == 1500)  // eth0 + wlan0, lo excluded
        #expect(number(r, "net.tx_bytes") == 2250)
        #expect(number(r, "system.uptime") == 12345.67)
        #expect(number(r, "system.processes") == 412)
    }

    @Test("without a previous sample cpu.usage_pct is left out; missing sources are skipped")
    func partial() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        dir.write("proc/stat", "cpu  100 0 50 800 50 0 0 0 0 0\n")
        dir.write("proc/meminfo", "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 100 kB\n")
        let s = SystemSensor(sources: .init(procRoot: dir.path + "/proc", sysRoot: dir.path + "/sys", diskUsage: { _ in nil }))
        let first = try s.read()
        #expect(first.map(\.metric) == ["memory.used_pct", "memory.available_mb"])
        #expect(number(first, "memory.used_pct") == 75)  // no MemAvailable: free + buffers + cached = 250
        dir.write("proc/stat", "cpu  150 0 50 850 50 0 0 0 0 0\n")
        #expect(number(try s.read(), "cpu.usage_pct") == 50)
    }

    @Test("nothing readable: a clear error")
    func nothing() {
        let s = SystemSensor(sources: .init(procRoot: "/nonexistent/proc", sysRoot: "/nonexistent/sys", diskUsage: { _ in nil }))
        #expect(throws: SensorError.self) { try s.read() }
        #expect(!s.isAvailable())
    }

    @Test("this machine's real /proc: every value in a plausible range")
    func realProc() throws {
        let s = SystemSensor()
        try s.setup()
        // /proc/stat counts in jiffies (usually 10 ms); wait long enough for them to advance.
        WallClock.sleep(seconds: 0.1)
        let r = try s.read()
        let usage = try #require(number(r, "cpu.usage_pct"))
        #expect(usage >= 0 && usage <= 100)
        #expect(try #require(number(r, "cpu.load")) >= 0)
        let used = try #require(number(r, "memory.used_pct"))
        #expect(used > 0 && used < 100)
        #expect(try #require(number(r, "memory.available_mb")) > 0)
        let disk = try #require(number(r, "disk.used_pct"))
        #expect(disk >= 0 && disk <= 100)
        #expect(try #require(number(r, "disk.available_gb")) >= 0)
        #expect(try #require(number(r, "system.uptime")) > 0)
        #expect(try #require(number(r, "system.processes")) >= 1)
        if let t = number(r, "cpu.temperature") { #expect(t > -40 && t < 150) }
        if let rx = number(r, "net.rx_bytes") { #expect(rx >= 0) }
        // The disk numbers agree with statvfs(3) of / read here directly.
        var st = statvfs()
        #expect(statvfs("/", &st) == 0)
        let available = Double(UInt64(st.f_bavail) * UInt64(st.f_frsize)) / 1_073_741_824
        #expect(abs(try #require(number(r, "disk.available_gb")) - available) < 1)
        #expect(s.isAvailable())
        #expect(s.info.jsonText.contains(#""name":"system""#))
    }
}
