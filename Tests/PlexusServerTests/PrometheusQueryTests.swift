import Foundation
import NIOHTTP1
import PlexusModel
import PlexusServerTesting
import Testing

extension TestServer {
    func prometheus(_ path: String, _ params: [(String, String)], key: String? = nil, post: Bool = false) async throws -> Reply {
        var c = URLComponents()
        c.queryItems = params.map { URLQueryItem(name: $0.0, value: $0.1) }
        let encoded = (c.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
        let auth = [("authorization", "Bearer \(key ?? self.key)")]
        if post {
            return try await request(
                .POST, path, key: .some(nil), body: Data(encoded.utf8), headers: auth, contentType: "application/x-www-form-urlencoded")
        }
        return try await request(.GET, path + "?" + encoded, key: .some(nil), headers: auth)
    }
}

@Suite("Prometheus query API", .timeLimit(.minutes(2)))
struct PrometheusQueryTests {
    static let t0: Int64 = 1_700_000_000_000

    @Test("query_range and query over series written by remote write, GET and POST, in Prometheus' envelope")
    func queries() async throws {
        try await withServer { s in
            let w = try await s.remoteWrite([
                series("node_load1", labels: [("job", "node")], [(0.5, Self.t0), (0.75, Self.t0 + 30_000)]),
                series("node_load1", instance: "node-2:9100", labels: [("job", "node")], [(2, Self.t0 + 10_000)]),
            ])
            #expect(w.status == 204)
            for post in [false, true] {
                let r = try await s.prometheus(
                    "/api/v1/query_range",
                    [("query", #"node_load1{job="node"}"#), ("start", "1700000000"), ("end", "1700000060"), ("step", "15s")], post: post)
                #expect(r.status == 200, "\(r.text)")
                #expect(r.object["status"] as? String == "success")
                let data = try #require(r.object["data"] as? [String: Any])
                #expect(data["resultType"] as? String == "matrix")
                let result = try #require(data["result"] as? [[String: Any]])
                #expect(result.count == 2)
                let one = try #require(result.first { ($0["metric"] as? [String: String])?["source_id"] == "node-1-9100" })
                #expect(one["metric"] as? [String: String] == ["__name__": "node_load1", "job": "node", "source_id": "node-1-9100"])
                let values = (one["values"] as? [[Any]])?.map { "\($0[0] as? Double ?? -1)=\($0[1] as? String ?? "")" }
                #expect(values == ["1700000000.0=0.5", "1700000015.0=0.5", "1700000030.0=0.75", "1700000045.0=0.75", "1700000060.0=0.75"])
            }
            let r = try await s.prometheus(
                "/api/v1/query", [("query", #"{"node_load1", source_id="node-2-9100"}"#), ("time", "2023-11-14T22:13:40Z")])
            let vector = ((r.object["data"] as? [String: Any])?["result"] as? [[String: Any]]) ?? []
            #expect(vector.count == 1)
            #expect((vector.first?["value"] as? [Any])?.last as? String == "2")
            let labels = try await s.prometheus("/api/v1/labels", [])
            #expect(labels.object["data"] as? [String] == ["__name__", "job", "source_id"])
            let values = try await s.prometheus("/api/v1/label/source_id/values", [])
            #expect(values.object["data"] as? [String] == ["node-1-9100", "node-2-9100"])
            let found = try await s.prometheus("/api/v1/series", [("match[]", #"{source_id=~"node-2.*"}"#)])
            #expect((found.object["data"] as? [[String: String]])?.count == 1)
            // start/end: only the series with points in the range (Grafana sends the dashboard's).
            let early = try await s.prometheus(
                "/api/v1/label/source_id/values", [("start", "1699999000"), ("end", "1700000005")])
            #expect(early.object["data"] as? [String] == ["node-1-9100"])
            let later = try await s.prometheus("/api/v1/series", [("match[]", "node_load1"), ("start", "1700000100")])
            #expect((later.object["data"] as? [Any])?.isEmpty == true, "\(later.text)")
            let none = try await s.prometheus("/api/v1/labels", [("start", "1600000000"), ("end", "1600000001")])
            #expect(none.object["data"] as? [String] == [])
            let backwards = try await s.prometheus("/api/v1/labels", [("start", "1700000001"), ("end", "1700000000")])
            #expect(backwards.status == 400)
            #expect((try await s.prometheus("/api/v1/status/buildinfo", [])).object["status"] as? String == "success")
            // Values that are not finite are written as Prometheus writes them.
            for (q, want) in [("1/0", "+Inf"), ("-1/0", "-Inf"), ("0/0", "NaN"), ("node_load1 / 0", "+Inf")] {
                let r = try await s.prometheus("/api/v1/query", [("query", q), ("time", "1700000030")])
                let data = r.object["data"] as? [String: Any]
                let result = data?["result"] as? [Any] ?? []
                let pair = (result.first as? [String: Any])?["value"] as? [Any] ?? result  // a vector's sample or a scalar
                #expect(pair.last as? String == want, "\(q): \(r.text)")
            }
            // A form body over 1 MiB: 413 naming the limit.
            let big = try await s.prometheus("/api/v1/query", [("query", String(repeating: "a", count: 1_100_000))], post: true)
            #expect(big.status == 413 && big.text.contains("1048576"), "\(big.text.prefix(200))")
        }
    }

    @Test("minute-aligned *_over_time read the rollups and count the samples at both ends of each window, as Prometheus 2.x")
    func fromRollups() async throws {
        try await withServer { s in
            let m0: Int64 = 1_700_000_040_000  // on a minute's start, in milliseconds
            let points: [(Double, Int64)] = [(1, m0), (2, m0 + 30_000), (4, m0 + 60_000), (8, m0 + 90_000), (16, m0 + 120_000)]
            _ = try await s.remoteWrite([
                series("temp", points), series("big", [(1.7e308, m0), (1.7e308, m0 + 30_000)]),
                series("cancel", [(1, m0 + 1_000), (1e100, m0 + 2_000), (1, m0 + 3_000), (-1e100, m0 + 4_000)]),
            ])
            func values(_ q: String, start: Int64 = m0 / 1000 + 60, end: Int64 = m0 / 1000 + 120) async throws -> [String] {
                let r = try await s.prometheus(
                    "/api/v1/query_range", [("query", q), ("start", "\(start)"), ("end", "\(end)"), ("step", "60")])
                #expect(r.status == 200, "\(q): \(r.text)")
                let result = ((r.object["data"] as? [String: Any])?["result"] as? [[String: Any]]) ?? []
                return ((result.first?["values"] as? [[Any]]) ?? []).map { $0[1] as? String ?? "?" }
            }
            // [m0, m0 + 60 s] holds 1, 2 and 4; [m0 + 60 s, m0 + 120 s] holds 4, 8 and 16.
            #expect(try await values("sum_over_time(temp[1m])") == ["7", "28"])
            #expect(try await values("count_over_time(temp[1m])") == ["3", "3"])
            #expect(try await values("min_over_time(temp[1m])") == ["1", "4"])
            #expect(try await values("max_over_time(temp[2m])") == ["4", "16"])
            #expect(try await values("sum_over_time(temp[1m] offset 1m)", end: m0 / 1000 + 180) == ["1", "7", "28"])
            #expect(try await values("avg_over_time(temp[2m])", start: m0 / 1000 + 120) == ["6.2"])
            #expect(try await values("present_over_time(temp[1m] offset 3m)", end: m0 / 1000 + 240) == ["1", "1"])
            // The same selector read raw by another part of the query: the raw samples answer both.
            #expect(try await values("sum_over_time(temp[1m]) + 0 * last_over_time(temp[1m])") == ["7", "28"])
            // Sums that saturated in the rollup: the raw samples answer (Prometheus' running mean).
            #expect(try await values("avg_over_time(big[1m])", start: m0 / 1000 + 60, end: m0 / 1000 + 60) == ["1.7e+308"])
            #expect(try await values("sum_over_time(big[1m])", start: m0 / 1000 + 60, end: m0 / 1000 + 60) == ["+Inf"])
            // Sums that cancel, which a plain sum loses: the raw samples answer (compensated).
            #expect(try await values("sum_over_time(cancel[1m])", start: m0 / 1000 + 60, end: m0 / 1000 + 60) == ["2"])
            // Hostile aligned queries: ranges and offsets at Prometheus' 292 years, whole hours
            // over 11,000 steps; each answers or is bad_data, and the server goes on.
            for q in [
                "sum_over_time(temp[292y])", "count_over_time(temp[1m] offset -292y)", "avg_over_time(temp[1h] offset 292y)",
                "max_over_time(temp[292y] offset -292y)", "min_over_time(temp[1h])",
            ] {
                for (start, step) in [(m0 / 1000 + 60, "60"), (0, "3600")] {
                    let r = try await s.prometheus(
                        "/api/v1/query_range",
                        [("query", q), ("start", "\(start)"), ("end", "\(start + 11_000 * Int64(step)!)"), ("step", step)])
                    #expect(r.status == 200 || r.object["errorType"] as? String == "bad_data", "\(q): \(r.status) \(r.text.prefix(200))")
                }
            }
            #expect(try await s.get("/health").status == 200)
            // Another organisation's key reads nothing through the rollups.
            _ = try await s.cli(["orgs", "create", "--data-dir", s.dataDir, "other"])
            let other = try await s.createKey(scopes: "read", org: "other")
            let r = try await s.prometheus(
                "/api/v1/query_range",
                [("query", "sum_over_time(temp[1m])"), ("start", "\(m0 / 1000 + 60)"), ("end", "\(m0 / 1000 + 120)"), ("step", "60")],
                key: other)
            #expect(r.status == 200 && ((r.object["data"] as? [String: Any])?["result"] as? [Any])?.isEmpty == true, "\(r.text)")
        }
    }

    @Test("refusals: unsupported PromQL, bad times and steps, no key, a write-only key; another organisation sees nothing")
    func refusals() async throws {
        try await withServer { s in
            _ = try await s.remoteWrite([series("m", [(1, Self.t0)])])
            let bad: [[(String, String)]] = [
                [("query", "holt_winters(m[5m], 0.5, 0.5)"), ("start", "1700000000"), ("end", "1700000060"), ("step", "15")],
                [("query", "m"), ("start", "1700000060"), ("end", "1700000000"), ("step", "15")],
                [("query", "m[5m]"), ("start", "1700000000"), ("end", "1700000060"), ("step", "15")],
                [("query", "m"), ("start", "1700000000"), ("end", "1700000060"), ("step", "0")],
                [("query", "m"), ("start", "0"), ("end", "1700000060"), ("step", "1ms")],
                [("query", "m"), ("start", "NaN"), ("end", "1700000060"), ("step", "15")],
                [("query", "m"), ("start", "-1e300"), ("end", "1e300"), ("step", "15")],
                [("query", "m"), ("start", "yesterday"), ("end", "1700000060"), ("step", "15")],
                [("start", "1700000000"), ("end", "1700000060"), ("step", "15")],
            ]
            // Hostile: times past Int64 as RFC 3339, durations past Prometheus' 292 years,
            // offsets that would overflow when nested, catastrophic regexes.
            let nested = (0..<36).reduce("(m offset -292y)") { e, _ in "last_over_time(\(e)[1ms:1ms] offset -292y)" }
            for q in [
                nested, "last_over_time(m[1s:1s] offset 293y)", #"m{a=~"(a+)+"}"#,
                #"label_replace(m, "x", "y", "__name__", "(.*a){30}")"#,
            ] {
                let r = try await s.prometheus("/api/v1/query", [("query", q), ("time", "1700000000")])
                #expect(r.status == 400 || r.status == 200, "\(q.prefix(60)): \(r.status)")
            }
            for time in ["300000-01-01T00:00:00Z", "9999999999999999999", "-1e20"] {
                let r = try await s.prometheus("/api/v1/query", [("query", "time()"), ("time", time)])
                #expect(r.status == 400, "\(time)")
            }
            // 11,000 intervals (11,001 points) are allowed, as in Prometheus; one more is not.
            var r = try await s.prometheus("/api/v1/query_range", [("query", "1"), ("start", "0"), ("end", "11000"), ("step", "1")])
            #expect(r.status == 200)
            r = try await s.prometheus("/api/v1/query_range", [("query", "1"), ("start", "0"), ("end", "11001"), ("step", "1")])
            #expect(r.status == 400)
            #expect(try await s.get("/health").status == 200)
            for params in bad {
                let r = try await s.prometheus("/api/v1/query_range", params)
                #expect(r.status == 400, "\(params)")
                #expect(r.object["status"] as? String == "error")
                #expect(r.object["errorType"] as? String == "bad_data")
            }
            r = try await s.prometheus("/api/v1/query", [("query", "m")], key: "plx_00000000000000000000000000000000")
            #expect(r.status == 401)
            #expect(r.object["errorType"] as? String == "unauthorized")
            r = try await s.prometheus("/api/v1/query", [("query", "m")], key: try await s.createKey(scopes: "write"))
            #expect(r.status == 403)
            _ = try await s.cli(["orgs", "create", "--data-dir", s.dataDir, "other"])
            let other = try await s.createKey(scopes: "read", org: "other")
            r = try await s.prometheus("/api/v1/query", [("query", "m"), ("time", "1700000000")], key: other)
            #expect(r.status == 200)
            #expect(((r.object["data"] as? [String: Any])?["result"] as? [Any])?.isEmpty == true)
            #expect((try await s.prometheus("/api/v1/labels", [], key: other)).object["data"] as? [String] == [])
        }
    }
}
