import PlexusCore
import PlexusModel
import PlexusStorage
import Testing

func parse(_ q: String) throws(PromQL.BadData) -> PromQL.Selector { try PromQL.parseSelector(q) }

func badData(_ q: String) -> String? {
    do {
        _ = try parse(q)
        return nil
    } catch {
        return error.message
    }
}

@Suite("PromQL subset")
struct PromQLTests {
    @Test("selectors: names, quoted UTF-8 names, the four matchers, quotes and escapes, offset")
    func selectors() throws {
        #expect(try parse("up") == .init(matchers: [.init("__name__", .equal, "up")]))
        #expect(
            try parse(#"node_load1{job="node", instance!='a:1', mode=~"idle|user",x!~`^\d+$`,}"#).matchers == [
                .init("__name__", .equal, "node_load1"), .init("job", .equal, "node"), .init("instance", .notEqual, "a:1"),
                .init("mode", .matches, "idle|user"), .init("x", .notMatches, #"^\d+$"#),
            ])
        #expect(try parse(#"{"motor.rpm", source_id="drone-01"}"#).metricName == "motor.rpm")
        #expect(try parse(#"{__name__="motor.rpm"}"#).metricName == "motor.rpm")
        #expect(try parse(#"{"läbel ok"="v\"q\\"}"#).matchers == [.init("läbel ok", .equal, #"v"q\"#)])
        #expect(try parse("up offset 1h30m").offset == 5_400_000_000)
        #expect(try parse("up offset -5m").offset == -300_000_000)
        #expect(PromQL.duration("500ms") == 500_000)
        #expect(PromQL.duration("1w2d") == Int64(777_600_000_000))
        #expect(PromQL.duration("5") == nil)
        #expect(PromQL.duration("99999999999999999999y") == nil)
    }

    @Test("what is not supported says so; malformed input is bad_data, never a crash")
    func refused() {
        for q in ["rate(up[5m])", "sum by (job) (up)", "up + 1", "up[5m]", "1", "", "{}", #"{job=~".*"}"#, #"{job=""}"#] {
            #expect(badData(q) != nil, "\(q)")
        }
        #expect(badData("rate(up[5m])")?.contains("rate()") == true)
        for q in [
            #"up{job="x"#, #"up{job}"#, #"up{job=x}"#, "up offset", "up offset 5", #"{"a", "b"}"#, "up{", "\u{0}",
            "up offset 9999999999999y",
        ] {
            #expect(badData(q) != nil, "\(q)")
        }
    }

    @Test("the *_over_time functions: parsed with their range and offset; a range over the samples in [t - range, t]")
    func overTime() throws {
        let q = try PromQL.parseQuery(#"avg_over_time(cpu{core="0"}[1m30s] offset 1m)"#)
        #expect(q.function == .avg)
        #expect(q.range == 90_000_000)
        #expect(q.selector.offset == 60_000_000)
        #expect(try PromQL.parseQuery("up").function == nil)
        for bad in [
            "avg_over_time(up)", "avg_over_time(up[0s])", "avg_over_time(up[5m]", "avg_over_time(up[5m]) + 1", "rate(up[5m])",
            "avg_over_time(up[5m:1m])", "avg_over_time({job=\"\"}[5m])", "last_over_time(up[5m])",
        ] {
            #expect(throws: PromQL.BadData.self, "\(bad)") { try PromQL.parseQuery(bad) }
        }
        let s = 1_000_000 as Int64
        let points = SeriesPoints(
            series: SeriesIdentity(sourceID: "a", metric: "m", tags: [], sessionID: nil, numeric: true),
            timestamps: [10 * s, 20 * s, 30 * s], values: [1, 5, 3])
        func run(_ f: PromQL.OverTime, range: Int64, at: [Int64]) -> [Double?] {
            PromQL.evaluate(points, PromQL.Query(selector: .init(matchers: []), function: f, range: range * s), at: at.map { $0 * s })
        }
        // Both ends included: at 30 s over 20 s, the samples of 10, 20 and 30 s.
        #expect(run(.count, range: 20, at: [5, 10, 29, 30, 50, 51]) == [nil, 1, 2, 3, 1, nil])
        #expect(run(.sum, range: 20, at: [30]) == [9])
        #expect(run(.avg, range: 20, at: [30]) == [3])
        #expect(run(.min, range: 10, at: [30]) == [3])
        #expect(run(.max, range: 10, at: [30]) == [5])
        let huge = SeriesPoints(series: points.series, timestamps: [1, 2], values: [1.7e308, 1.7e308])
        #expect(PromQL.evaluate(huge, PromQL.Query(selector: .init(matchers: []), function: .avg, range: 10), at: [2]) == [1.7e308])
        #expect(PromQL.labels(of: points.series, for: q)["__name__"] == nil)
    }

    @Test("matching: missing labels are empty, regexes are anchored, only numeric series")
    func matching() throws {
        let all = [
            SeriesIdentity(sourceID: "a", metric: "cpu", tags: [Tag("core", "0")], sessionID: nil, numeric: true),
            SeriesIdentity(sourceID: "a", metric: "cpu", tags: [Tag("core", "10")], sessionID: "run", numeric: true),
            SeriesIdentity(sourceID: "b", metric: "cpu", tags: [], sessionID: nil, numeric: true),
            SeriesIdentity(sourceID: "b", metric: "log", tags: [], sessionID: nil, numeric: false),
        ]
        func pick(_ q: String) throws -> [String] {
            try PromQL.select(try parse(q), from: all).map { "\($0.sourceID)/\($0.tags.first?.value ?? "-")" }
        }
        #expect(try pick(#"cpu{core=~"1"}"#) == [])
        #expect(try pick(#"cpu{core=~"1.*"}"#) == ["a/10"])
        #expect(try pick(#"cpu{core=""}"#) == ["b/-"])
        #expect(try pick(#"cpu{core!=""}"#) == ["a/0", "a/10"])
        #expect(try pick(#"cpu{session_id="run"}"#) == ["a/10"])
        #expect(try pick(#"{source_id="b"}"#) == ["b/-"])
        #expect(throws: PromQL.BadData.self) { try pick(#"cpu{core=~"("}"#) }
        #expect(PromQL.labels(of: all[1]) == ["__name__": "cpu", "source_id": "a", "core": "10", "session_id": "run"])
    }

    @Test("evaluation: the newest sample within the 5-minute lookback, as Prometheus, with offset")
    func evaluation() throws {
        let s = 1_000_000 as Int64
        let points = SeriesPoints(
            series: SeriesIdentity(sourceID: "a", metric: "m", tags: [], sessionID: nil, numeric: true),
            timestamps: [100 * s, 160 * s, 700 * s], values: [1, 2, 3])
        let times = try PromQL.steps(start: 50 * s, end: 1_000 * s, step: 50 * s)
        let got = PromQL.evaluate(points, at: times, offset: 0)
        // 100 s and 150 s see 1; 160 s to 450 s see 2; at 460 s the sample of 160 s is exactly
        // 300 s old and out of the lookback; 700 s on see 3 until 1,000 s.
        var want: [Double?] = []
        for t in times {
            switch t / s {
            case 100..<160: want.append(1)
            case 160..<460: want.append(2)
            case 700..<1_000: want.append(3)
            default: want.append(nil)
            }
        }
        #expect(got == want)
        #expect(PromQL.evaluate(points, at: [800 * s], offset: 640 * s) == [2])
        #expect(throws: PromQL.BadData.self) { try PromQL.steps(start: 0, end: 20_000 * s, step: s) }
        #expect(throws: PromQL.BadData.self) { try PromQL.steps(start: 0, end: s, step: 0) }
        #expect(throws: PromQL.BadData.self) { try PromQL.steps(start: s, end: 0, step: s) }
        #expect(throws: PromQL.BadData.self) { try PromQL.steps(start: .min, end: .max, step: s) }
    }
}
