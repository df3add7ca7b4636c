import Foundation
import PlexusServerTesting
import Testing

@Suite("Read API", .timeLimit(.minutes(2)))
struct ReadAPITests {
    @Test("sources, metrics, latest, aggregated and raw queries, tag filters, logs")
    func queries() async throws {
        try await withServer { s in
            let now = Int(Date().timeIntervalSince1970)
            let pts = (0..<120).map { i in
                #"{"metric":"temp","value":\#(Double(i)),"timestamp":\#(now - 7_200 + i * 60),"tags":{"loc":"\#(i % 2 == 0 ? "lab" : "field")"}}"#
            }
            #expect(try await s.ingest(#"{"source_id":"q","points":[\#(pts.joined(separator: ","))]}"#).status == 200)
            #expect(
                try await s.ingest(#"{"source_id":"q","points":[{"metric":"status","value":"idle"},{"metric":"status","value":"busy"}]}"#)
                    .status == 200)

            var r = try await s.get("/v1/sources")
            let dev = (r.object["devices"] as? [[String: Any]])?.first
            #expect(dev?["source_id"] as? String == "q")
            #expect(dev?["online"] as? Bool == false)
            #expect(abs((dev?["last_seen_ms"] as? Double ?? 0) - nowMillis()) < 60_000)
            #expect(try await s.get("/v1/sources/q").object["source_id"] as? String == "q")
            #expect(try await s.get("/v1/sources/none").object["code"] as? String == "NOT_FOUND")
            #expect(try await s.get("/v1/sources/q/metrics").json as? [String] == ["status", "temp"])

            r = try await s.get("/v1/sources/q/metrics/latest")
            #expect((r.object["metrics"] as? [String: Any])?["status"] as? String == "busy")
            #expect((r.object["metrics"] as? [String: Any])?["temp"] as? Double == 119)

            // A 3-hour window picks 1-minute buckets automatically.
            r = try await s.get("/v1/sources/q/metrics/query?metrics=temp&last=3h")
            #expect(r.object["interval"] as? String == "1m")
            #expect(r.object["auto_downsampled"] as? Bool == true)
            var temp = try #require((r.object["series"] as? [String: [String: Any]])?["temp"])
            #expect((temp["count"] as? [Int])?.reduce(0, +) == 120)

            // 1h buckets: avg is Σsum/Σcount, min and max exact.
            r = try await s.get("/v1/sources/q/metrics/query?metrics=temp&last=3h&interval=1h")
            temp = try #require((r.object["series"] as? [String: [String: Any]])?["temp"])
            let counts = temp["count"] as? [Int] ?? []
            let avgs = temp["avg"] as? [Double] ?? []
            let mins = temp["min"] as? [Double] ?? []
            let maxs = temp["max"] as? [Double] ?? []
            #expect(counts.reduce(0, +) == 120)
            #expect(mins.min() == 0 && maxs.max() == 119)
            let total = zip(counts, avgs).map { Double($0) * $1 }.reduce(0, +)
            #expect(abs(total - Double((0..<120).reduce(0, +))) < 1e-6)

            r = try await s.get("/v1/sources/q/metrics/query?metrics=temp&last=3h&interval=raw&tag.loc=lab")
            temp = try #require((r.object["series"] as? [String: [String: Any]])?["temp"])
            #expect((temp["value"] as? [Double]) == stride(from: 0.0, to: 120, by: 2).map { $0 })

            r = try await s.get("/v1/sources/q/metrics/query?interval=5m")
            #expect(r.status == 400)
            #expect(r.object["error"] as? String == "interval must be one of ['raw','1m','10m','1h','1d']")
            #expect(
                try await s.get("/v1/sources/q/metrics/query?last=1y").object["error"] as? String == "invalid last — use e.g. 1h, 30m, 7d")
            #expect(
                try await s.get("/v1/sources/q/metrics/query?start=2024-01-01T00:00:00Z").object["error"] as? String
                    == "start and end must be provided together")

            let logs = try await s.get("/v1/sources/q/logs?tail=1").json as? [[String: Any]]
            #expect(logs?.map { $0["value"] as? String } == ["busy"])
        }
    }

    @Test("raw queries stop at 10,000 rows and say so")
    func truncation() async throws {
        try await withServer { s in
            for part in 0..<2 {
                let pts = (0..<6_000).map { #"{"metric":"m","value":\#($0),"timestamp":\#(1_700_000_000_000 + part * 6_000 + $0)}"# }
                #expect(try await s.ingest(#"{"source_id":"t","points":[\#(pts.joined(separator: ","))]}"#).status == 200)
            }
            let r = try await s.get("/v1/sources/t/metrics/query?start=1700000000000&end=1700000020000&interval=raw")
            #expect(r.object["truncated"] as? Bool == true)
            let m = (r.object["series"] as? [String: [String: Any]])?["m"]
            #expect((m?["value"] as? [Any])?.count == 10_000)
        }
    }

    @Test("retention: the server's default in /health; an organisation's own set and checked by orgs retention")
    func retentionSettings() async throws {
        try await withServerProcess(environment: ["PLEXUS_RETENTION": "30d", "PLEXUS_ROLLUP_RETENTION": "400d"]) { s in
            let health = try await s.get("/health", key: .some(nil))
            #expect(health.object["retention"] as? [String: String] == ["raw": "30d", "rollups": "400d"])
            func retention(_ args: String...) async throws -> String {
                try await s.cli(["orgs", "retention", "--data-dir", s.dataDir] + args)
            }
            #expect(try await retention("default") == "raw: default\nrollups: default")
            #expect(try await retention("default", "--raw", "24h") == "raw: 1d\nrollups: default")
            #expect(try await retention("default", "--rollups", "36h") == "raw: 1d\nrollups: 36h")
            // Under an hour, rollups shorter than the points (2d, forever), not a duration.
            for bad in [
                ["--raw", "10m"], ["--raw", "2d"], ["--raw", "forever"], ["--rollups", "0.5d"], ["--raw", "-3h"], ["--raw", ""],
            ] {
                await #expect(throws: TestServer.CLIFailure.self, "\(bad)") {
                    try await s.cli(["orgs", "retention", "--data-dir", s.dataDir, "default"] + bad)
                }
            }
            await #expect(throws: TestServer.CLIFailure.self) { try await retention("nobody", "--raw", "1d") }
            // Unchanged by the refusals.
            #expect(try await retention("default") == "raw: 1d\nrollups: 36h")
            #expect(try await retention("default", "--raw", "forever", "--rollups", "forever") == "raw: forever\nrollups: forever")
            #expect(try await retention("default", "--raw", "default", "--rollups", "default") == "raw: default\nrollups: default")
        }
    }

    @Test("health and Prometheus metrics")
    func healthAndMetrics() async throws {
        try await withServerProcess { s in
            var r = try await s.get("/health", key: .some(nil))
            #expect(r.status == 200)
            #expect(r.object["status"] as? String == "ok")
            #expect(r.object["store"] as? String == "sqlite")
            #expect(r.object["uptime_s"] is Int)
            _ = try await s.ingest(#"{"source_id":"h","points":[{"metric":"m","value":1},{"metric":"m","value":2}]}"#)
            _ = try await s.ingest(#"{"source_id":"h","points":[{"metric":"m","value":NaN}]}"#)
            // Sent twice, stored once: the second is counted as a duplicate once a read flushed it.
            let again = #"{"source_id":"h","points":[{"metric":"d","value":1,"timestamp":1700000000}]}"#
            _ = try await s.ingest(again)
            _ = try await s.ingest(again)
            _ = try await s.get("/v1/sources/h/metrics/query?start=1699999999&end=1700000001&interval=raw")
            r = try await s.metrics()
            #expect(r.status == 200)
            #expect(r.text.contains(#"plexus_points_ingested_total{transport="http"} 4"#))
            #expect(r.text.contains("plexus_points_duplicate_total 1"))
            #expect(r.text.contains(#"plexus_rejects_total{reason="INVALID_POINT",transport="http"} 1"#))
            #expect(r.text.contains("plexus_store_seconds"))
            #expect(r.text.contains("hb_requests"))
        }
    }
}
