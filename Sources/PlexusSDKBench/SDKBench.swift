import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Plexus

/// SDK throughput (issue 4): how many points per second one `Plexus` client pushes to the
/// server, and the client's CPU per 1,000 points, over WebSocket (with and without the
/// disk buffer) and over HTTP. Every run counts its points back from the server.
/// Run it through scripts/bench-sdk, which starts the server.
@main
struct SDKBench {
    struct Options: Sendable {
        var url = "http://127.0.0.1:8080", key = "", points = 200_000, transport = "ws", disk = false, batch = 500

        static func parse() -> Options {
            var o = Options()
            var args = CommandLine.arguments.dropFirst().makeIterator()
            while let a = args.next() {
                switch a {
                case "--url": o.url = args.next() ?? o.url
                case "--key": o.key = args.next() ?? o.key
                case "--points": o.points = Int(args.next() ?? "") ?? o.points
                case "--transport": o.transport = args.next() ?? o.transport
                case "--batch": o.batch = Int(args.next() ?? "") ?? o.batch
                case "--disk": o.disk = true
                default: fatalError("usage: PlexusSDKBench --url U --key K [--points N] [--transport ws|http] [--batch N] [--disk]")
                }
            }
            return o
        }
    }

    static func main() async throws {
        try await run(Options.parse())
    }

    /// Off the main actor, where the entry point runs.
    static func run(_ o: Options) async throws {
        let source = "sdk-bench-\(o.transport)\(o.disk ? "-disk" : "")-\(UUID().uuidString.prefix(6).lowercased())"
        var config = PlexusConfiguration(
            apiKey: o.key, sourceID: source, gatewayURL: o.url, installID: String(source.suffix(6)),
            transport: o.transport == "http" ? .http : .webSocket)
        config.maxBatchPoints = o.batch
        config.maxBufferedPoints = o.points
        var dir: String?
        if o.disk {
            let d = FileManager.default.temporaryDirectory.appendingPathComponent("plexus-sdk-bench-\(UUID().uuidString)").path
            config.bufferPath = d + "/buffer.sqlite"
            dir = d
        }
        defer { if let dir { try? FileManager.default.removeItem(atPath: dir) } }

        let base = (Date().timeIntervalSince1970 * 1_000).rounded(.down) / 1_000
        let (elapsed, cpu) = try await withPlexus(config) { px -> (Duration, Double) in
            if o.transport == "ws" {
                for _ in 0..<500 where !px.isConnected { try await Task.sleep(for: .milliseconds(10)) }
            }
            let cpu0 = cpuSeconds()
            let start = ContinuousClock.now
            for i in 0..<o.points {
                // Keep at most 40 batches waiting: the client never drops, so this is its pace.
                while px.bufferedPoints > o.batch * 40 { try await Task.sleep(for: .milliseconds(1)) }
                let at = Date(timeIntervalSince1970: base + Double(i) / 1_000_000)
                try px.send("m\(i % 10)", .number(Double(i)), timestamp: at)
            }
            try await px.flush()
            return (start.duration(to: .now), cpuSeconds() - cpu0)
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let stored = try await countStored(url: o.url, key: o.key, source: source, fromMs: Int((base * 1_000).rounded()), points: o.points)
        let perSecond = Int(Double(o.points) / seconds)
        let cpuPer1000 = (cpu / Double(o.points) * 1_000 * 1_000 * 1_000).rounded() / 1_000
        let line: [String: Any] = [
            "bench": "sdk", "transport": o.transport, "disk_buffer": o.disk, "batch": o.batch, "points": o.points,
            "stored": stored, "seconds": (seconds * 1_000).rounded() / 1_000,
            "points_per_s": perSecond, "client_cpu_ms_per_1000_points": cpuPer1000,
        ]
        print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
        if stored != o.points { fatalError("the server stored \(stored) of \(o.points) points") }
    }

    /// User + system CPU of this process, seconds.
    static func cpuSeconds() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }

    /// Counts the points back from the rollups: one 1-day bucket query per metric (its
    /// `count`), instead of paging through every raw point.
    static func countStored(url: String, key: String, source: String, fromMs: Int, points: Int) async throws -> Int {
        var total = 0
        let toMs = fromMs + points / 1_000 + 2
        for m in 0..<10 {
            var request = HTTPClientRequest(
                url: "\(url)/v1/sources/\(source)/metrics/query?metrics=m\(m)&start=\(fromMs)&end=\(toMs)&interval=1d")
            request.headers.add(name: "x-api-key", value: key)
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
            let body = try await response.body.collect(upTo: 1 << 20)
            let object = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
            let series = (object?["series"] as? [String: Any])?["m\(m)"] as? [String: Any]
            total += (series?["count"] as? [Int])?.reduce(0, +) ?? 0
        }
        return total
    }
}
