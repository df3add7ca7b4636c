import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOWebSocket
import PlexusModel
import Synchronization
import WSClient

/// Live-path benchmark (issue 3): devices stream over /ws/device, dashboards watch over
/// /ws/browser; measures device → dashboard latency and checks every point was stored.
/// `--idle N` instead connects N quiet devices and reports memory and CPU at rest.
/// Run it through scripts/bench-live, which starts the server.
@main
struct LiveBench {
    struct Options {
        var url = "http://127.0.0.1:8080"
        var key = ""
        var devices = 100
        var rate = 100.0  // points per second per device
        var pointsPerFrame = 10
        var dashboards = 10
        var seconds = 20.0
        var idle = 0
        var pid: Int32 = 0
        var prefix = "bench"
    }

    static func parse() -> Options {
        var o = Options()
        var args = CommandLine.arguments.dropFirst().makeIterator()
        while let a = args.next() {
            let v = args.next() ?? ""
            switch a {
            case "--url": o.url = v
            case "--key": o.key = v
            case "--devices": o.devices = Int(v) ?? o.devices
            case "--rate": o.rate = Double(v) ?? o.rate
            case "--points-per-frame": o.pointsPerFrame = Int(v) ?? o.pointsPerFrame
            case "--dashboards": o.dashboards = Int(v) ?? o.dashboards
            case "--seconds": o.seconds = Double(v) ?? o.seconds
            case "--idle": o.idle = Int(v) ?? 0
            case "--pid": o.pid = Int32(v) ?? 0
            case "--prefix": o.prefix = v
            default:
                FileHandle.standardError.write(Data("unknown option \(a)\n".utf8))
                exit(2)
            }
        }
        return o
    }

    static let logger: Logger = {
        var l = Logger(label: "bench")
        l.logLevel = .critical
        return l
    }()

    static func nowMs() -> Double { Date().timeIntervalSince1970 * 1_000 }

    static func main() async throws {
        let o = parse()
        let ws = o.url.replacingOccurrences(of: "http://", with: "ws://")
        if o.idle > 0 {
            try await idle(o, ws: ws)
            return
        }
        let cpu0 = ProcStats.cpuSeconds(o.pid)
        let stopAt = ContinuousClock.now + .seconds(o.seconds + 2)
        let results = try await withThrowingTaskGroup(of: Result.self) { group in
            for d in 0..<o.dashboards {
                group.addTask { try await dashboard(ws: ws, key: o.key, until: stopAt, index: d) }
            }
            try await Task.sleep(for: .milliseconds(500))  // dashboards first, so they see every point
            for i in 0..<o.devices {
                group.addTask { try await device(ws: ws, o: o, index: i) }
            }
            var all: [Result] = []
            for try await r in group { all.append(r) }
            return all
        }
        let cpu1 = ProcStats.cpuSeconds(o.pid)
        let sent = results.reduce(0) { $0 + $1.sent }
        var latencies = results.flatMap(\.latencies)
        latencies.sort()
        func pct(_ p: Double) -> Double { latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        let received = results.reduce(0) { $0 + $1.received }
        let stored = try await storedCount(o)
        let report: [String: Any] = [
            "devices": o.devices, "dashboards": o.dashboards, "points_per_s_per_device": o.rate, "seconds": o.seconds,
            "points_per_frame": o.pointsPerFrame, "frames_received_by_dashboards": results.reduce(0) { $0 + $1.frames },
            "points_reported_dropped": results.reduce(0) { $0 + $1.dropped },
            "points_sent": sent, "points_stored": stored, "points_received_by_dashboards": received,
            "expected_received": sent * o.dashboards,
            "latency_ms_p50": pct(0.50), "latency_ms_p99": pct(0.99), "latency_ms_max": latencies.last ?? .nan,
            "server_cpu_pct": cpu0.flatMap { a in cpu1.map { ($0 - a) / (o.seconds + 2.5) * 100 } } ?? -1,
            "server_rss_mb": ProcStats.rssMB(o.pid) ?? -1,
        ]
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }

    struct Result: Sendable {
        var sent = 0
        var received = 0
        /// Live frames that carried telemetry, and points the server said it dropped (`gap`).
        var frames = 0
        var dropped = 0
        var latencies: [Double] = []
    }

    static func device(ws: String, o: Options, index: Int) async throws -> Result {
        let source = "\(o.prefix)-dev-\(index)"
        let frames = Int(o.rate * o.seconds) / max(1, o.pointsPerFrame)
        let interval = Double(o.pointsPerFrame) / o.rate
        let sent = Mutex(0)
        try await WebSocketClient.connect(url: ws + "/ws/device", logger: logger) { inbound, outbound, _ in
            try await outbound.write(.text(#"{"type":"device_auth","api_key":"\#(o.key)","source_id":"\#(source)","platform":"bench"}"#))
            var it = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
            guard case .text(let reply)? = try await it.next(), reply.contains("authenticated") else { return }
            // Spread devices over one interval so frames do not arrive in lockstep.
            try await Task.sleep(for: .seconds(interval * Double(index) / Double(o.devices)))
            let start = ContinuousClock.now
            for f in 0..<frames {
                var w = JSONWriter(capacity: 64 * o.pointsPerFrame)
                w.raw("{\"type\":\"telemetry\",\"points\":[")
                for p in 0..<o.pointsPerFrame {
                    if p > 0 { w.raw(",") }
                    w.raw("{\"metric\":\"m")
                    w.int(p)
                    w.raw("\",\"value\":")
                    w.int(f)
                    w.raw(",\"timestamp\":")
                    w.number(nowMs())
                    w.raw("}")
                }
                w.raw("]}")
                try await outbound.write(.text(w.string))
                sent.withLock { $0 += o.pointsPerFrame }
                let next = start + .seconds(interval * Double(f + 1))
                if next > .now { try await Task.sleep(until: next) }
            }
            try await outbound.close(.normalClosure, reason: nil)
            while try await it.next() != nil {}
        }
        return Result(sent: sent.withLock { $0 })
    }

    static func dashboard(ws: String, key: String, until: ContinuousClock.Instant, index: Int) async throws -> Result {
        let result = Mutex(Result())
        try await WebSocketClient.connect(url: ws + "/ws/browser", configuration: .init(maxFrameSize: 16 << 20), logger: logger) {
            inbound, outbound, _ in
            // Coalesced frames: one telemetry_batch per server write, every source in it.
            try await outbound.write(.text(#"{"type":"auth","api_key":"\#(key)","batch":true}"#))
            try await outbound.write(.text(#"{"type":"subscribe","source_id":"*"}"#))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await Task.sleep(until: until)
                    try await outbound.close(.normalClosure, reason: nil)
                }
                for try await message in inbound.messages(maxSize: 16 << 20) {
                    guard case .text(let text) = message else { continue }
                    let now = nowMs()
                    let bytes = Array(text.utf8)
                    if text.hasPrefix(#"{"type":"gap""#) {
                        let f = bytes.withUnsafeBytes { Frames.fields($0) }
                        result.withLock { $0.dropped += Int(f?.numbers["dropped_points"] ?? 0) }
                        continue
                    }
                    guard text.hasPrefix(#"{"type":"telemetry"#) else { continue }
                    let stamps = bytes.withUnsafeBytes { Self.timestamps($0) }
                    result.withLock { r in
                        r.frames += 1
                        r.received += stamps.count
                        for t in stamps { r.latencies.append(now - t) }
                    }
                }
                group.cancelAll()
            }
        }
        return result.withLock { $0 }
    }

    /// Every point's timestamp (ms) in a live `telemetry` or `telemetry_batch` frame, found
    /// by scanning for `"timestamp":`. The frame is the server's own encoding
    /// (`JSONWriter.point`: exactly one such key per point, and the bench's metric names and
    /// values never contain it), and a scan costs the load generator a fraction of a full
    /// decode: it shares this machine with the server it measures.
    static func timestamps(_ bytes: UnsafeRawBufferPointer) -> [Double] {
        let key = Array(#""timestamp":"#.utf8)
        var out: [Double] = []
        var i = 0
        let n = bytes.count
        while i + key.count < n {
            guard bytes[i] == key[0], bytes[i + 1] == key[1], bytes[i + 2] == key[2] else {
                i += 1
                continue
            }
            var k = 3
            while k < key.count, bytes[i + k] == key[k] { k += 1 }
            guard k == key.count else {
                i += 1
                continue
            }
            var j = i + key.count
            var value = 0.0
            var scale = 0.0
            while j < n {
                let c = bytes[j]
                if c >= 48 && c <= 57 {
                    value = value * 10 + Double(c - 48)
                    if scale > 0 { scale *= 10 }
                } else if c == UInt8(ascii: ".") {
                    scale = 1
                } else {
                    break
                }
                j += 1
            }
            out.append(scale > 0 ? value / scale : value)
            i = j
        }
        return out
    }

    static func storedCount(_ o: Options) async throws -> Int {
        var total = 0
        for i in 0..<o.devices {
            var req = HTTPClientRequest(url: o.url + "/v1/sources/\(o.prefix)-dev-\(i)/metrics/query?last=1h&interval=1h")
            req.headers.add(name: "x-api-key", value: o.key)
            let resp = try await HTTPClient.shared.execute(req, timeout: .seconds(30))
            let body = try await resp.body.collect(upTo: 16 << 20)
            let obj = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
            for (_, s) in (obj?["series"] as? [String: [String: Any]]) ?? [:] {
                total += ((s["count"] as? [Int]) ?? []).reduce(0, +)
            }
        }
        return total
    }

    static func idle(_ o: Options, ws: String) async throws {
        let rss0 = ProcStats.rssMB(o.pid) ?? -1
        let connected = Counter()
        let hold = ContinuousClock.now + .seconds(o.seconds + 5)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<o.idle {
                group.addTask {
                    try await WebSocketClient.connect(url: ws + "/ws/device", logger: logger) { inbound, outbound, _ in
                        try await outbound.write(
                            .text(#"{"type":"device_auth","api_key":"\#(o.key)","source_id":"\#(o.prefix)-idle-\#(i)"}"#))
                        var it = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                        guard case .text(let reply)? = try await it.next(), reply.contains("authenticated") else { return }
                        connected.add()
                        try await withThrowingTaskGroup(of: Void.self) { g in
                            g.addTask {
                                try await Task.sleep(until: hold)
                                try await outbound.close(.normalClosure, reason: nil)
                            }
                            while try await it.next() != nil {}
                            g.cancelAll()
                        }
                    }
                }
                if i % 50 == 49 { try await Task.sleep(for: .milliseconds(20)) }
            }
            group.addTask {
                while connected.value < o.idle { try await Task.sleep(for: .milliseconds(100)) }
                try await Task.sleep(for: .seconds(2))
                let rss1 = ProcStats.rssMB(o.pid) ?? -1
                let c0 = ProcStats.cpuSeconds(o.pid)
                try await Task.sleep(for: .seconds(o.seconds))
                let c1 = ProcStats.cpuSeconds(o.pid)
                let report: [String: Any] = [
                    "idle_devices": connected.value, "server_rss_mb_before": rss0, "server_rss_mb_connected": rss1,
                    "kb_per_connection": (rss1 - rss0) * 1024 / Double(o.idle),
                    "server_cpu_pct_at_rest": c0.flatMap { a in c1.map { ($0 - a) / o.seconds * 100 } } ?? -1,
                ]
                let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
                print(String(decoding: json, as: UTF8.self))
            }
            try await group.waitForAll()
        }
    }
}

final class Counter: Sendable {
    private let n = Mutex(0)
    func add() { n.withLock { $0 += 1 } }
    var value: Int { n.withLock { $0 } }
}

enum ProcStats {
    static func cpuSeconds(_ pid: Int32) -> Double? {
        guard pid > 0, let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = s.lastIndex(of: ")")
        else { return nil }
        let f = s[s.index(after: close)...].split(separator: " ")
        guard f.count > 13, let u = Double(f[11]), let k = Double(f[12]) else { return nil }
        return (u + k) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func rssMB(_ pid: Int32) -> Double? {
        guard pid > 0, let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return line.split(separator: " ").dropFirst().first.flatMap { Double($0) }.map { $0 / 1024 }
        }
        return nil
    }
}
