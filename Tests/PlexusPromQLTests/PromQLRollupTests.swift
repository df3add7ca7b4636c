import PlexusModel
import PlexusPromQL
import PlexusStorage
import Testing

@Suite("PromQL from rollups")
struct PromQLRollupTests {
    static let m = 60_000_000 as Int64
    static let h = 3_600_000_000 as Int64

    func plan(_ q: String, at times: [Int64]) throws -> PromQL.ReadPlan {
        PromQL.plan(try PromQL.parse(q), at: times)
    }

    func rolled(_ q: String, at times: [Int64]) throws -> [String: RollupWidth] {
        Dictionary(uniqueKeysWithValues: try plan(q, at: times).rollups.map { ($0.key.selector.metricName ?? "?", $0.value) })
    }

    @Test("which selectors rollups answer: aligned times, range and offset; not in subqueries; not when raw is read anyway")
    func planning() throws {
        let minutes = [0, Self.m, 2 * Self.m]
        #expect(try rolled("avg_over_time(x[1m])", at: minutes) == ["x": .minute])
        #expect(try plan("avg_over_time(x[1m])", at: minutes).raw.isEmpty)
        #expect(try rolled("sum_over_time(x[2h] offset 1h)", at: [Self.h, 2 * Self.h]) == ["x": .hour])
        #expect(try rolled("sum_over_time(x[2h] offset 1m)", at: [Self.h, 2 * Self.h]) == ["x": .minute])
        #expect(try rolled("count_over_time(x[1h])", at: [Self.h + Self.m]) == ["x": .minute])
        // A step, a start, a range or an offset off the minute: raw samples.
        #expect(try rolled("avg_over_time(x[1m])", at: [0, 30_000_000]).isEmpty)
        #expect(try rolled("avg_over_time(x[1m])", at: [1_000]).isEmpty)
        #expect(try rolled("avg_over_time(x[90s])", at: minutes).isEmpty)
        #expect(try rolled("avg_over_time(x[1m] offset 1s)", at: minutes).isEmpty)
        #expect(try plan("avg_over_time(x[1m] offset 1s)", at: minutes).raw.count == 1)
        // Functions rollups cannot answer, subqueries, and a selector another part reads raw.
        #expect(try rolled("last_over_time(x[1m]) + quantile_over_time(0.5, y[1m]) + rate(z[1m])", at: minutes).isEmpty)
        #expect(try rolled("max_over_time(x[5m:1m])", at: minutes).isEmpty)
        #expect(try rolled("max_over_time(max_over_time(x[1m])[5m:1m])", at: minutes).isEmpty)
        #expect(try rolled("rate(x[1m]) / sum_over_time(x[1m])", at: minutes).isEmpty)
        #expect(try plan("rate(x[1m]) / sum_over_time(x[1m])", at: minutes).raw.count == 1)
        #expect(
            try rolled("sum by (k) (avg_over_time(x[2m])) / on() group_left max(min_over_time(y[1m])) - x", at: minutes)
                == ["x": .minute, "y": .minute])
        #expect(try plan("sum by (k) (avg_over_time(x[2m])) - x", at: minutes).raw.map(\.span) == [PromQL.lookback])
    }

    /// Random series on a 5 s grid (one sample in twelve on a minute's start, some pairs at
    /// the same time), evaluated from rollups and from raw samples.
    static func fixture(seed: UInt64) -> [SeriesPoints] {
        var state = seed
        func next(_ n: UInt64) -> Int64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int64((state >> 33) % n)
        }
        return ["a", "b", "c"].map { source in
            var ts: [Int64] = []
            var t = Self.h - 5 * Self.m
            while t < 4 * Self.h {
                t += (1 + next(40)) * 5_000_000
                ts.append(t)
                if next(20) == 0 { ts.append(t) }  // two samples at one time
            }
            return SeriesPoints(
                series: SeriesIdentity(
                    sourceID: source, metric: "x", tags: [Tag("k", source == "c" ? "2" : "1")],
                    sessionID: nil, numeric: true),
                timestamps: ts, values: ts.map { _ in Double(next(200_001) - 100_000) / 100 })
        }
    }

    static func rollups(_ points: [SeriesPoints], _ width: RollupWidth) -> [SeriesRollup] {
        points.map { p in
            let (buckets, edges) = SeriesRollup.buckets(timestamps: p.timestamps, values: p.values, width: width)
            return SeriesRollup(series: p.series, buckets: buckets, edges: edges)
        }
    }

    static func evaluate(_ q: String, at times: [Int64], _ fixture: [SeriesPoints], rollups: Bool) throws -> PromQL.Value {
        let expr = try PromQL.parse(q)
        let plan = PromQL.plan(expr, at: times)
        func chosen(_ f: PromQL.Fetch) throws -> [SeriesPoints] {
            let ids = Set(try PromQL.select(f.selector, from: fixture.map(\.series)))
            return fixture.filter { ids.contains($0.series) }
        }
        var data: [PromQL.Fetch: [SeriesPoints]] = [:]
        var rolled: [PromQL.Fetch: [SeriesRollup]] = [:]
        for f in expr.fetches { data[f] = try chosen(f) }
        if rollups {
            #expect(!plan.rollups.isEmpty, "\(q): the plan reads no rollups")
            data = [:]
            for f in plan.raw { data[f] = try chosen(f) }
            for (f, w) in plan.rollups { rolled[f] = Self.rollups(try chosen(f), w) }
        }
        return try PromQL.Evaluator(times: times, data: data, rollups: rolled).evaluate(expr)
    }

    @Test(
        "rollups answer as the raw samples do, edges included",
        arguments: [
            "sum_over_time(x[1m])", "count_over_time(x[1m])", "min_over_time(x[2m])", "max_over_time(x[5m])",
            "avg_over_time(x[1m])", "present_over_time(x[1m])", "avg_over_time(x[1h])", "sum_over_time(x[1h] offset 1h)",
            "max_over_time(x[3m] offset 2m)", "sum by (k) (avg_over_time(x[2m])) - on() group_left count(count_over_time(x[1m]))",
            "min_over_time(x{k=\"2\"}[5m]) > bool 0",
        ])
    func sameAnswers(_ q: String) throws {
        for seed in [1, 2, 3] as [UInt64] {
            let fixture = Self.fixture(seed: seed)
            for times in [
                Array(stride(from: Self.h, through: 3 * Self.h, by: Int(Self.m))),
                Array(stride(from: Self.h, through: 4 * Self.h, by: Int(Self.h))), [2 * Self.h + 7 * Self.m],
            ] {
                let raw = try Self.evaluate(q, at: times, fixture, rollups: false)
                let rolled = try Self.evaluate(q, at: times, fixture, rollups: true)
                guard case .vector(let a) = raw, case .vector(let b) = rolled else {
                    Issue.record("\(q): not a vector")
                    return
                }
                let byLabels = Dictionary(uniqueKeysWithValues: b.map { ($0.labels, $0.values) })
                #expect(a.count == b.count && !a.isEmpty, "\(q)")
                for s in a {
                    let mine = try #require(byLabels[s.labels], "\(q): \(s.labels) missing")
                    #expect(mine.count == s.values.count)
                    for (x, y) in zip(mine, s.values) {
                        #expect((x == nil) == (y == nil), "\(q) seed \(seed)")
                        if let x, let y { #expect(abs(x - y) <= 1e-9 * max(1, abs(y)), "\(q) seed \(seed): \(x) vs \(y)") }
                    }
                }
            }
        }
    }

    @Test("a bucket without the edge at a window's end leaves that sample out; with it, it is in")
    func edgeAtTheEnd() throws {
        let series = SeriesIdentity(sourceID: "a", metric: "x", tags: [], sessionID: nil, numeric: true)
        // Samples at 0 s, 30 s and exactly 60 s: the window [0, 60 s] holds all three.
        let points = SeriesPoints(series: series, timestamps: [0, 30_000_000, Self.m], values: [1, 2, 4])
        let (buckets, edges) = SeriesRollup.buckets(timestamps: points.timestamps, values: points.values, width: .minute)
        #expect(edges.map(\.start) == [0, Self.m])
        let expr = try PromQL.parse("sum_over_time(x[1m])")
        let fetch = try #require(PromQL.plan(expr, at: [Self.m]).rollups.first?.key)
        func sum(_ r: SeriesRollup) throws -> Double? {
            guard case .vector(let v) = try PromQL.Evaluator(times: [Self.m], data: [:], rollups: [fetch: [r]]).evaluate(expr) else {
                return nil
            }
            return v.first?.values.first ?? nil
        }
        #expect(try sum(SeriesRollup(series: series, buckets: buckets, edges: edges)) == 7)
        #expect(try sum(SeriesRollup(series: series, buckets: buckets, edges: [edges[0]])) == 3)
    }

    @Test("rollups whose plain sums could differ from Prometheus' compensated ones are not used: saturation, cancellation")
    func inexactSums() {
        let series = SeriesIdentity(sourceID: "a", metric: "x", tags: [], sessionID: nil, numeric: true)
        func exact(_ buckets: [Bucket], edges: [Bucket] = [], range: Int64 = Self.m) -> Bool {
            PromQL.rollupsAnswerExactly(
                [SeriesRollup(series: series, buckets: buckets, edges: edges)], times: [Self.m, 2 * Self.m], offset: 0, range: range)
        }
        // Temperatures, and a window of zeros (nothing to round).
        #expect(
            exact([
                Bucket(start: 0, min: 19.5, max: 31.25, sum: 1_500.5, count: 60), Bucket(start: Self.m, min: 0, max: 0, sum: 0, count: 9),
            ]))
        // M, M, −M: the stored sum saturated at M, then came back to 0; Prometheus says +Inf.
        let m = Double.greatestFiniteMagnitude
        #expect(!exact([Bucket(start: 0, min: -m, max: m, sum: 0, count: 3)]))
        // 1, 1e100, 1, −1e100: a plain sum says 0, Prometheus' compensated sum 2.
        #expect(!exact([Bucket(start: Self.m, min: -1e100, max: 1e100, sum: 0, count: 4)]))
        // The same cancellation across two buckets and an edge.
        #expect(
            !exact(
                [Bucket(start: 0, min: 1, max: 1e100, sum: 1e100, count: 2)],
                edges: [Bucket(start: Self.m, min: -1e100, max: -1e100, sum: -1e100, count: 1)]))
        // Outside every window (the range reaches back one minute from 1 and 2 minutes): no matter.
        #expect(exact([Bucket(start: 10 * Self.m, min: -1e100, max: 1e100, sum: 0, count: 4)]))
    }
}
