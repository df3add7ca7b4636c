import PlexusModel
import PlexusPromQL
import PlexusStorage
import Testing

func parse(_ q: String) throws(PromQL.BadData) -> PromQL.Selector { try PromQL.parseSelector(q) }

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
        func refusal(_ q: String) -> String? {
            do {
                _ = try PromQL.parse(q)
                return nil
            } catch {
                return error.message
            }
        }
        let unsupported = [
            "foo(up)", #"count_values("v", up)"#, "holt_winters(up[5m], 0.5, 0.5)", "up @ 100", #""text""#,
        ]
        for q in unsupported { #expect(refusal(q)?.contains("unsupported PromQL") == true, "\(q): \(refusal(q) ?? "accepted")") }
        #expect(refusal("foo(up)")?.contains("foo()") == true)
        let malformed = [
            "", "1 +", "{}", "rate(up[5m]) + up[5m]", #"{job=~".*"}"#, #"{job=""}"#, "1 > 2", "up and 1", "1 or up", "rate(up)",
            "abs(up[5m])",
            "rate(up[5m], 1)", "time(1)", "topk(up)", "topk(up, 3)", "sum(up[5m])", "up + on(a) 1", "up + bool up", "sum by (a (up)",
            "rate(up[0s])", "up offset", "up offset 5", "up offset 9999999999999y", "(up", "up)", "5m", "1 + 5m", "sum(up) by", "0x",
            "\u{0}", #"up{job="x"#, #"up{job}"#, #"up{job=x}"#, #"{"a", "b"}"#, "up{", "abs(", "topk(1,", "-", "up bool",
            "up[5m:0s]", "rate(up[5m])[5m]", "up[5m:1m][5m:1m]", "(up)[5m]", "rate(up[5m:1m]", "up[5m:1m] + 1",
            "up offset 293y", "up[5m1h]", "up[1m1m]", "up offset 1h1h", #"up{a="\d"}"#, #"up{a="\x4"}"#, #"up{a="\uD800"}"#,
            #"up{a=~"(a+)+"}"#, #"up{a=~"(x|xy)*z"}"#, #"up{a=~"(a{2,})+"}"#, "avg_over_time((time() / 3)[30s:10s])",
            "a * group_left b", "a and on(x) group_left b", "a * on(x) group_left(x) b", #"label_replace(up, "a")"#,
            #"label_join(up, 1, "b")"#, #"abs("x")"#, #""a" + 1"#, #"-"a""#, #"label_replace(up, "a", "b", "c", 1)"#,
            String(repeating: "(", count: 100) + "1" + String(repeating: ")", count: 100),
            String(repeating: "-", count: 100) + "1", "1" + String(repeating: " + 1", count: 20_000),
            "1" + String(repeating: " * 1", count: 300),
        ]
        for q in malformed { #expect(refusal(q) != nil, "\(q.prefix(60))") }
    }

    @Test("the parser: precedence and associativity as Prometheus, aggregations with the grouping either side, offsets, comments")
    func parser() throws {
        let none = PromQL.Matching()
        func v(_ name: String) -> PromQL.Expr { .vector(.init(matchers: [.init("__name__", .equal, name)])) }
        #expect(try PromQL.parse("1 + 2 * 3") == .binary(.add, .number(1), .binary(.mul, .number(2), .number(3), none), none))
        #expect(try PromQL.parse("-a ^ 2") == .negate(.binary(.pow, v("a"), .number(2), none)))
        #expect(try PromQL.parse("2 ^ 3 ^ 2") == .binary(.pow, .number(2), .binary(.pow, .number(3), .number(2), none), none))
        #expect(try PromQL.parse("a - b - c") == .binary(.sub, .binary(.sub, v("a"), v("b"), none), v("c"), none))
        #expect(try PromQL.parse("sum by (job) (up)") == (try PromQL.parse("sum(up) by (job)")))
        #expect(try PromQL.parse("SUM BY (job) (up) # total") == (try PromQL.parse("sum(up) by (job,)")))
        #expect(
            try PromQL.parse("sum without (a) (up)")
                == .aggregate(.sum, v("up"), parameter: nil, grouping: .init(without: true, labels: ["a"])))
        #expect(try PromQL.parse("topk(3, up)") == .aggregate(.topk, v("up"), parameter: .number(3), grouping: .init()))
        #expect(
            try PromQL.parse(#"rate({"motor.rpm"}[1m30s] offset 1m)"#)
                == .call(.rate, [.matrix(.init(matchers: [.init("__name__", .equal, "motor.rpm")], offset: 60_000_000), range: 90_000_000)])
        )
        #expect(try PromQL.parse("a > bool on(x) b") == .binary(.gt, v("a"), v("b"), .init(returnBool: true, on: true, labels: ["x"])))
        #expect(try PromQL.parse("a / ignoring(x) b") == .binary(.div, v("a"), v("b"), .init(labels: ["x"])))
        #expect(try PromQL.parse("0x1F + 1e3 + .5") == .binary(.add, .binary(.add, .number(31), .number(1000), none), .number(0.5), none))
        if case .binary(.or, _, .binary(.and, _, _, _), _) = try PromQL.parse("a or b and c") {
        } else {
            Issue.record("and binds tighter than or")
        }
        if case .binary(.and, _, .binary(.gt, _, _, _), _) = try PromQL.parse("a and b > 1") {
        } else {
            Issue.record("> binds tighter than and")
        }
        #expect(try PromQL.parse("time()").type == .scalar)
        #expect(try PromQL.parse("scalar(up) * 2").type == .scalar)
        #expect(try PromQL.parse("sum").type == .vector)  // a metric called sum
        // Go's escapes in strings; regexes that stay linear are accepted.
        #expect(try PromQL.parseSelector(#"up{a="\x41\u00e9\101\t", b='\''}"#).matchers.map(\.value) == ["up", "Aé" + "A\t", "'"])
        for ok in [
            #"up{a=~"(foo|bar).*"}"#, #"up{a=~"(eth|wlan)[0-9]+"}"#, #"up{a=~"[(a+)+]+"}"#, #"up{a=~"(a+)?"}"#, #"up{a=~"\\(a+\\)+"}"#,
        ] {
            #expect(throws: Never.self, "\(ok)") { try PromQL.parse(ok) }
        }
        #expect(PromQL.duration("292y") != nil)
        #expect(
            try PromQL.parse("max_over_time(rate(c[10s])[30s:10s] offset 1m)")
                == .call(
                    .maxOverTime,
                    [
                        .subquery(
                            .call(.rate, [.matrix(.init(matchers: [.init("__name__", .equal, "c")]), range: 10_000_000)]),
                            range: 30_000_000, step: 10_000_000, offset: 60_000_000)
                    ]))
        #expect(
            try PromQL.parse("avg_over_time(up[1m:])") == .call(.avgOverTime, [.subquery(v("up"), range: 60_000_000, step: nil, offset: 0)])
        )
        #expect(try PromQL.parse("min_over_time((up + 1)[5m:1m])").type == .vector)
        #expect(try PromQL.parse("sum_over_time(sum by (job) (up)[5m:30s])").type == .vector)
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
        // 100 s and 150 s see 1; 160 s to 450 s see 2; 700 s to 1,000 s see 3, the last one
        // exactly 300 s old: the lookback includes its far end, as in Prometheus 2.x.
        var want: [Double?] = []
        for t in times {
            switch t / s {
            case 100..<160: want.append(1)
            case 160..<460: want.append(2)
            case 700...1_000: want.append(3)
            default: want.append(nil)
            }
        }
        #expect(got == want)
        #expect(PromQL.evaluate(points, at: [460 * s, 461 * s], offset: 0) == [2, nil])
        #expect(PromQL.evaluate(points, at: [800 * s], offset: 640 * s) == [2])
        #expect(throws: PromQL.BadData.self) { try PromQL.steps(start: 0, end: 20_000 * s, step: s) }
        #expect(throws: PromQL.BadData.self) { try PromQL.steps(start: 0, end: s, step: 0) }
        #expect(throws: PromQL.BadData.self) { try PromQL.steps(start: s, end: 0, step: s) }
        #expect(throws: PromQL.BadData.self) { try PromQL.steps(start: .min, end: .max, step: s) }
    }
}
