import PlexusModel
import PlexusPromQL
import PlexusStorage
import Testing

/// Evaluates `query` at `times` (seconds) over `fixture`, selecting for each of the
/// query's fetches the way the server does (the window is the server's concern; here every
/// sample is given).
func evaluate(
    _ query: String, at times: [Int64], _ fixture: [SeriesPoints], maxCells: Int = PromQL.Evaluator.maxQueryCells,
    maxVisits: Int = PromQL.Evaluator.maxWindowVisits
) throws -> PromQL.Value {
    let expr = try PromQL.parse(query)
    var data: [PromQL.Fetch: [SeriesPoints]] = [:]
    for fetch in expr.fetches {
        let chosen = Set(try PromQL.select(fetch.selector, from: fixture.map(\.series)))
        data[fetch] = fixture.filter { chosen.contains($0.series) }
    }
    return try PromQL.Evaluator(times: times.map { $0 * 1_000_000 }, data: data, maxCells: maxCells, maxVisits: maxVisits)
        .evaluate(expr)
}

/// Each result series as "labels=values", values joined by spaces, absent as "_".
func render(_ value: PromQL.Value) -> [String] {
    func number(_ v: Double?) -> String {
        guard let v else { return "_" }
        return v == v.rounded() && Swift.abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
    switch value {
    case .scalar(let v): return ["scalar=" + v.map(number).joined(separator: " ")]
    case .vector(let series):
        return series.map { s in
            s.labels.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",") + "="
                + s.values.map(number).joined(separator: " ")
        }.sorted()
    }
}

func points(_ name: String, source: String = "a", tags: [PlexusModel.Tag] = [], _ samples: [(Int64, Double)]) -> SeriesPoints {
    SeriesPoints(
        series: SeriesIdentity(sourceID: source, metric: name, tags: tags, sessionID: nil, numeric: true),
        timestamps: samples.map { $0.0 * 1_000_000 }, values: samples.map(\.1))
}

@Suite("PromQL evaluation")
struct PromQLEvaluatorTests {
    static let counter = points("c", [(0, 0), (10, 10), (20, 20), (30, 5)])
    static let gauge = points("g", [(10, 10), (20, 20)])

    func run(_ q: String, at times: [Int64], _ fixture: [SeriesPoints] = [counter, gauge]) throws -> [String] {
        render(try evaluate(q, at: times, fixture))
    }

    @Test("scalars: precedence, associativity, bool comparisons, time()")
    func scalars() throws {
        #expect(try run("1 + 2 * 3 - 2 ^ 3 ^ 2 / 512", at: [0]) == ["scalar=6"])
        #expect(try run("-2 ^ 2", at: [0]) == ["scalar=-4"])
        #expect(try run("7 % 3 + (1 > bool 2) + (2 >= bool 2)", at: [0]) == ["scalar=2"])
        #expect(try run("time()", at: [5, 10]) == ["scalar=5 10"])
        #expect(try run("0 / 0", at: [0]) == ["scalar=nan"])
    }

    @Test("rate, increase and delta extrapolate as Prometheus; a counter reset is corrected; irate and idelta use the last two samples")
    func rates() throws {
        // All four samples in [0 s, 30 s]: the change 5 - 0 plus the reset's 20 is 25, over
        // exactly the window; no extrapolation since the samples reach both ends.
        #expect(try run("increase(c[30s])", at: [30]) == ["source_id:a=25"])
        #expect(try run("rate(c[30s])", at: [30]) == ["source_id:a=\(25.0 / 30)"])
        // Two samples 10 s apart, 10 s from each end of a 30 s window (within 1.1 × the
        // interval): extrapolated to the whole window, 10 → 30.
        #expect(try run("delta(g[30s])", at: [30]) == ["source_id:a=30"])
        #expect(try run("rate(g[30s])", at: [30]) == ["source_id:a=1"])
        // Further than 1.1 × the interval from the start: half an interval is added there.
        #expect(try run("delta(g[60s])", at: [30]) == ["source_id:a=25"])
        // A counter is not extrapolated below zero: 10 → 20 over [0, 30] extrapolates to the
        // zero at 0 s (10 s before the first sample), so 20 + 10 s of slope at the end = 30.
        #expect(try run("increase(g[30s])", at: [30]) == ["source_id:a=30"])
        #expect(try run("irate(c[30s])", at: [20, 30]) == ["source_id:a=1 0.5"])
        #expect(try run("idelta(c[30s])", at: [20, 30]) == ["source_id:a=10 -15"])
        // One sample is not enough.
        #expect(try run("rate(c[5s])", at: [12]) == [])
        #expect(try run("resets(c[30s]) + changes(c[30s])", at: [30]) == ["source_id:a=4"])
    }

    @Test("deriv is the least-squares slope; the *_over_time family over [t - range, t]")
    func overTime() throws {
        let line = points("l", [(0, 1), (10, 21), (20, 41), (30, 61)])
        #expect(try run("deriv(l[30s])", at: [30], [line]) == ["source_id:a=2"])
        #expect(try run("deriv(g[30s])", at: [10], [Self.gauge]) == [])
        let flat = points("f", [(0, 3), (10, 3)])
        #expect(try run("deriv(f[30s])", at: [10], [flat]) == ["source_id:a=0"])
        #expect(try run("count_over_time(c[20s])", at: [5, 10, 29, 30, 50, 51]) == ["source_id:a=1 2 2 3 1 _"])
        #expect(try run("sum_over_time(c[20s])", at: [30]) == ["source_id:a=35"])
        #expect(try run("avg_over_time(g[20s])", at: [20]) == ["source_id:a=15"])
        #expect(try run("min_over_time(c[10s])", at: [30]) == ["source_id:a=5"])
        #expect(try run("max_over_time(c[10s] offset 10s)", at: [30]) == ["source_id:a=20"])
        #expect(try run("last_over_time(c[10s])", at: [25]) == ["__name__:c,source_id:a=20"])
        #expect(try run("present_over_time(g[5s])", at: [10, 15, 16, 20]) == ["source_id:a=1 1 _ 1"])
        #expect(try run("stdvar_over_time(g[20s])", at: [20]) == ["source_id:a=25"])
        #expect(try run("stddev_over_time(g[20s])", at: [20]) == ["source_id:a=5"])
        #expect(try run("quantile_over_time(0.5, c[30s])", at: [30]) == ["source_id:a=7.5"])
        let huge = points("h", [(1, 1.7e308), (2, 1.7e308)])
        #expect(try run("avg_over_time(h[10s])", at: [2], [huge]) == ["source_id:a=1.7e+308"])
    }

    static let fleet: [SeriesPoints] = [
        points("cpu", source: "a", tags: [PlexusModel.Tag("core", "0")], [(0, 1)]),
        points("cpu", source: "a", tags: [PlexusModel.Tag("core", "1")], [(0, 3)]),
        points("cpu", source: "b", tags: [PlexusModel.Tag("core", "0")], [(0, 5)]), points("mem", source: "a", [(0, 100)]),
        points("mem", source: "b", [(0, 300)]),
    ]

    @Test("aggregations: by and without, the metric name dropped, topk and bottomk keep labels")
    func aggregations() throws {
        func agg(_ q: String) throws -> [String] { try run(q, at: [0], Self.fleet) }
        #expect(try agg("sum by (source_id) (cpu)") == ["source_id:a=4", "source_id:b=5"])
        #expect(try agg("sum(cpu) by (source_id)") == ["source_id:a=4", "source_id:b=5"])
        #expect(try agg("avg without (core) (cpu)") == ["source_id:a=2", "source_id:b=5"])
        #expect(try agg("count(cpu)") == ["=3"])
        #expect(try agg("max by (core) (cpu)") == ["core:0=5", "core:1=3"])
        #expect(try agg("min by (__name__) ({source_id=\"a\"})") == ["__name__:cpu=1", "__name__:mem=100"])
        #expect(try agg("group by (source_id) (cpu)") == ["source_id:a=1", "source_id:b=1"])
        #expect(try agg("stddev(cpu)") == ["=\((8.0 / 3).squareRoot())"])
        #expect(try agg("stdvar(mem)") == ["=10000"])
        #expect(try agg("quantile(0.5, cpu)") == ["=3"])
        #expect(try agg("topk(1, cpu)") == ["__name__:cpu,core:0,source_id:b=5"])
        #expect(try agg("bottomk(2, cpu)") == ["__name__:cpu,core:0,source_id:a=1", "__name__:cpu,core:1,source_id:a=3"])
        #expect(try agg("topk by (source_id) (1, cpu)") == ["__name__:cpu,core:0,source_id:b=5", "__name__:cpu,core:1,source_id:a=3"])
        // Hostile parameters: no crash, Prometheus' answers.
        #expect(try agg("topk(0, cpu)") == [])
        #expect(try agg("topk(-1, cpu)") == [])
        #expect(try agg("topk(1e18, cpu)").count == 3)
        // Prometheus: "Scalar value … overflows int64".
        for k in ["NaN", "Inf", "-Inf", "1e300"] { #expect(throws: PromQL.BadData.self, "\(k)") { try agg("topk(\(k), cpu)") } }
        #expect(try agg("quantile(NaN, cpu)") == ["=nan"])
        #expect(try agg("quantile(2, cpu)") == ["=inf"])
    }

    @Test("operators: vector and scalar, one-to-one matching with on and ignoring, bool, and/or/unless, their errors")
    func operators() throws {
        func op(_ q: String) throws -> [String] { try run(q, at: [0], Self.fleet) }
        #expect(try op("mem / 100") == ["source_id:a=1", "source_id:b=3"])
        #expect(try op("mem > 200") == ["__name__:mem,source_id:b=300"])
        #expect(try op("200 < mem") == ["__name__:mem,source_id:b=300"])
        #expect(try op("mem > bool 200") == ["source_id:a=0", "source_id:b=1"])
        #expect(try op("-mem") == ["source_id:a=-100", "source_id:b=-300"])
        #expect(try op("mem / on(source_id) cpu{core=\"0\"}") == ["source_id:a=100", "source_id:b=60"])
        #expect(try op("mem - ignoring(core) cpu{core=\"0\"}") == ["source_id:a=99", "source_id:b=295"])
        #expect(throws: PromQL.BadData.self) { try op("mem / on(source_id) cpu") }  // two cpu series for a
        #expect(throws: PromQL.BadData.self) { try op("cpu / on(source_id) mem") }  // many-to-one needs group_left
        #expect(try op("cpu and on(source_id) mem{source_id=\"b\"}") == ["__name__:cpu,core:0,source_id:b=5"])
        #expect(try op("cpu unless on(source_id) mem{source_id=\"b\"}").count == 2)
        #expect(try op("mem{source_id=\"a\"} or mem").count == 2)
        #expect(try op("sum(mem) + vector(1)") == ["=401"])
        #expect(try op("scalar(mem) + 1") == ["scalar=nan"])
        #expect(try op("scalar(mem{source_id=\"a\"}) + 1") == ["scalar=101"])
        // Dropping the name makes two series one labelset: Prometheus' error.
        #expect(throws: PromQL.BadData.self) {
            try run("abs({source_id=\"a\"})", at: [0], [points("mem", [(0, 1)]), points("swap", [(0, 2)])])
        }
        #expect(throws: PromQL.BadData.self) {
            try run("rate({__name__=~\"c|d\"}[30s])", at: [30], [Self.counter, points("d", [(0, 1), (30, 2)])])
        }
    }

    @Test("instant functions and histogram_quantile as Prometheus: buckets merged, made monotonic, interpolated")
    func functions() throws {
        func f(_ q: String) throws -> [String] { try run(q, at: [0], Self.fleet) }
        #expect(try f("abs(-mem)") == ["source_id:a=100", "source_id:b=300"])
        #expect(try f("sqrt(mem{source_id=\"a\"})") == ["source_id:a=10"])
        #expect(try f("log10(mem{source_id=\"a\"}) + ln(exp(mem{source_id=\"a\"} / 100))") == ["source_id:a=3"])
        #expect(try f("clamp(mem, 150, 200)") == ["source_id:a=150", "source_id:b=200"])
        #expect(try f("clamp(mem, 200, 150)") == [])
        #expect(try f("clamp_max(mem, 150)") == ["source_id:a=100", "source_id:b=150"])
        #expect(try f("round(mem / 7, 0.5)") == ["source_id:a=14.5", "source_id:b=43"])
        #expect(try f("ceil(mem / 7) - floor(mem / 7) + sgn(-mem)") == ["source_id:a=0", "source_id:b=0"])
        let buckets = [("1", 10.0), ("2", 20), ("+Inf", 20), ("2.0", 0)].map { le, n in
            points("h_bucket", tags: [PlexusModel.Tag("le", le)], [(0, n)])
        }
        func hq(_ q: Double) throws -> [String] { try run("histogram_quantile(\(q), h_bucket)", at: [0], buckets) }
        #expect(try hq(0.5) == ["source_id:a=1"])
        #expect(try hq(0.75) == ["source_id:a=1.5"])
        #expect(try hq(1) == ["source_id:a=2"])
        #expect(try hq(-1) == ["source_id:a=-inf"])
        let noInf = buckets.filter { $0.series.tags[0].value != "+Inf" }
        #expect(try run("histogram_quantile(0.5, h_bucket)", at: [0], noInf) == ["source_id:a=nan"])
    }

    @Test("the evaluator refuses more cells than it may hold")
    func limits() throws {
        let many = (0..<100).map { points("m", source: "s\($0)", [(0, 1)]) }
        let times = Array(stride(from: Int64(0), through: 49_999, by: 1))
        #expect(throws: PromQL.BadData.self) { try evaluate("m", at: times, many) }
    }

    static let joined: [SeriesPoints] = [
        points("http_total", source: "a", tags: [PlexusModel.Tag("route", "/x")], [(0, 10)]),
        points("http_total", source: "a", tags: [PlexusModel.Tag("route", "/y")], [(0, 20)]),
        points("http_total", source: "b", tags: [PlexusModel.Tag("route", "/x")], [(0, 30)]),
        points("info", source: "a", tags: [PlexusModel.Tag("version", "1.2")], [(0, 1)]),
        points("info", source: "b", tags: [PlexusModel.Tag("version", "2.0")], [(0, 2)]),
    ]

    @Test("group_left and group_right: many-to-one matching, the one side's labels copied in, Prometheus' errors")
    func manyToOne() throws {
        func j(_ q: String) throws -> [String] { try run(q, at: [0], Self.joined) }
        #expect(
            try j("http_total * on(source_id) group_left(version) info") == [
                "route:/x,source_id:a,version:1.2=10", "route:/x,source_id:b,version:2.0=60", "route:/y,source_id:a,version:1.2=20",
            ])
        // group_right: the right side is the many; the value is still left op right.
        #expect(
            try j("info - on(source_id) group_right http_total") == [
                "route:/x,source_id:a=-9", "route:/x,source_id:b=-28", "route:/y,source_id:a=-19",
            ])
        // A comparison keeps the left value and, without bool, the name.
        #expect(
            try j("http_total > on(source_id) group_left info") == [
                "__name__:http_total,route:/x,source_id:a=10", "__name__:http_total,route:/x,source_id:b=30",
                "__name__:http_total,route:/y,source_id:a=20",
            ])
        // The "one" side must be unique per match group.
        #expect(throws: PromQL.BadData.self) { try j("info * on() group_left http_total") }
        // Two results with one labelset.
        let twoNames = Self.joined + [points("a_total", [(0, 1)]), points("b_total", [(0, 2)])]
        #expect(throws: PromQL.BadData.self) {
            try run(#"{__name__=~"a_total|b_total"} * on(source_id) group_left info"#, at: [0], twoNames)
        }
    }

    @Test("label_replace (Go's $1, ${1}, $name expansion) and label_join; a bad destination or regex is bad_data")
    func labels() throws {
        func l(_ q: String) throws -> [String] { try run(q, at: [0], [points("up", source: "host-7.lab", [(0, 1)])]) }
        #expect(try l(#"label_replace(up, "host", "$1", "source_id", "([a-z]+)-.*")"#) == ["__name__:up,host:host,source_id:host-7.lab=1"])
        #expect(try l(#"label_replace(up, "n", "${2}x$$", "source_id", "(.*)-(\\d+).*")"#) == ["__name__:up,n:7x$,source_id:host-7.lab=1"])
        // `$2x` names the group "2x", which does not exist: empty, so no label.
        #expect(try l(#"label_replace(up, "n", "$2x", "source_id", "(.*)-(\\d+).*")"#) == ["__name__:up,source_id:host-7.lab=1"])
        #expect(try l(#"label_replace(up, "n", "$site", "source_id", ".*\\.(?<site>.*)")"#) == ["__name__:up,n:lab,source_id:host-7.lab=1"])
        #expect(try l(#"label_replace(up, "n", "x", "source_id", "nomatch")"#) == ["__name__:up,source_id:host-7.lab=1"])
        #expect(try l(#"label_replace(up, "source_id", "", "source_id", ".*")"#) == ["__name__:up=1"])
        #expect(
            try l(#"label_join(up, "j", "/", "source_id", "__name__", "missing")"#) == [
                "__name__:up,j:host-7.lab/up/,source_id:host-7.lab=1"
            ])
        #expect(throws: PromQL.BadData.self) { try l(#"label_replace(up, "1bad", "x", "source_id", ".*")"#) }
        #expect(throws: PromQL.BadData.self) { try l(#"label_replace(up, "n", "x", "source_id", "(")"#) }
    }

    @Test("absent and absent_over_time, predict_linear, timestamp and the calendar functions")
    func moreFunctions() throws {
        let line = points("l", [(0, 1), (10, 21), (20, 41), (30, 61)])
        #expect(try run(#"absent(nope{job="x", a=~"y"})"#, at: [0], [line]) == ["job:x=1"])
        #expect(try run("absent(l)", at: [30, 1_000], [line]) == ["=_ 1"])
        #expect(try run("absent_over_time(l[10s])", at: [30, 45], [line]) == ["=_ 1"])
        #expect(try run(#"absent_over_time(nope{job="x"}[10s])"#, at: [30, 45], [line]) == ["job:x=1 1"])
        // The line 2x + 1 at 30 s, 60 s further on: 2 * 90 + 1.
        #expect(try run("predict_linear(l[30s], 60)", at: [30], [line]) == ["source_id:a=181"])
        #expect(try run("timestamp(l)", at: [25, 30], [line]) == ["source_id:a=20 30"])
        #expect(try run("timestamp(l * 2)", at: [25], [line]) == ["source_id:a=25"])
        // 2024-02-29T13:45:00Z, a Thursday in a leap year.
        let t: Int64 = 1_709_214_300
        #expect(try run("hour() + minute() / 100", at: [t]) == ["=13.45"])
        #expect(try run("day_of_week()", at: [t]) == ["=4"])
        #expect(try run("days_in_month()", at: [t]) == ["=29"])
        #expect(try run("day_of_year()", at: [t]) == ["=60"])
        #expect(try run("year() * 100 + month()", at: [t]) == ["=202402"])
        #expect(try run("day_of_month(l - l + 1)", at: [0], [line]) == ["source_id:a=1"])  // 1970-01-01T00:00:01Z
    }

    @Test("subqueries: the inner expression at every step (multiples of it) over the range, then the range function")
    func subqueries() throws {
        // c at 0, 10, 20, 30 s: 0, 10, 20, 5. Sub-steps 0, 10, 20, 30 see those values.
        #expect(try run("max_over_time(c[30s:10s])", at: [30]) == ["source_id:a=20"])
        #expect(try run("sum_over_time(c[30s:10s])", at: [30]) == ["source_id:a=35"])
        // rate over 10 s at 10, 20 and 30 s: 1, 1 and 0.5 (the reset); their max and last.
        #expect(try run("max_over_time(rate(c[10s])[20s:10s])", at: [30]) == ["source_id:a=1"])
        #expect(try run("last_over_time(rate(c[10s])[20s:10s])", at: [30]) == ["source_id:a=0.5"])
        // Offset moves the sub-steps back: at 40 s with offset 10 s, the same as at 30 s.
        #expect(try run("max_over_time(rate(c[10s])[20s:10s] offset 10s)", at: [40]) == ["source_id:a=1"])
        // Sub-steps are multiples of the step, not of the evaluation time: at 35 s over 20 s by
        // 10 s they are 20 and 30 s (c = 20, 5).
        #expect(try run("count_over_time(c[20s:10s])", at: [35]) == ["source_id:a=2"])
        #expect(try run("min_over_time(c[20s:10s])", at: [35]) == ["source_id:a=5"])
        // The default step is a minute; a scalar inner expression is one series without labels.
        #expect(try run("count_over_time(c[2m:])", at: [60]) == ["source_id:a=2"])
        #expect(try run("sum_over_time(vector(2)[30s:10s])", at: [30]) == ["=8"])
        #expect(throws: PromQL.BadData.self) { try run("max_over_time(c[9999d:1ms])", at: [30]) }
        #expect(throws: PromQL.BadData.self) { try run("c[30s:10s]", at: [30]) }
    }

    @Test("what a review against Prometheus 2.42 found: each answer now as Prometheus gives it")
    func reviewFindings() throws {
        // A sample exactly five minutes old still counts.
        let edge = points("edge", [(0, 1), (60, 2)])
        #expect(try run("edge", at: [360, 361], [edge]) == ["__name__:edge,source_id:a=2 _"])
        // sum_over_time is compensated: 1e100 + 1 − 1e100 is 1, not 0.
        let kahan = points("k", [(0, 1e100), (10, 1), (20, -1e100)])
        #expect(try run("sum_over_time(k[30s])", at: [20], [kahan]) == ["source_id:a=1"])
        // avg_over_time stays finite where the plain sum overflows, and infinite once infinite.
        let big = points("big", [(0, 1.5e308), (10, -1.5e308)])
        #expect(try run("avg_over_time(big[30s])", at: [10], [big]) == ["source_id:a=0"])
        #expect(try run("avg_over_time((vector(1) / 0 or vector(1))[30s:10s])", at: [30]) == ["=inf"])
        // histogram_quantile keeps two histograms apart, and then refuses their one labelset.
        let two = [
            points("h_bucket", tags: [PlexusModel.Tag("le", "+Inf")], [(0, 1)]),
            points("h2_bucket", tags: [PlexusModel.Tag("le", "+Inf")], [(0, 1)]),
        ]
        #expect(throws: PromQL.BadData.self) { try run(#"histogram_quantile(0.9, {__name__=~"h_bucket|h2_bucket"})"#, at: [0], two) }
        // atan2 keeps the metric name.
        #expect(try run("mem atan2 0", at: [0], Self.fleet).allSatisfy { $0.hasPrefix("__name__:mem") })
        // A range function's two series with one labelset fail even when they never overlap in time.
        let disjoint = [points("ra", [(0, 1), (10, 2)]), points("rb", [(1_000, 1), (1_010, 2)])]
        #expect(throws: PromQL.BadData.self) { try run(#"rate({__name__=~"ra|rb"}[1m])"#, at: [10, 1_010], disjoint) }
        // absent's labels: only a label's single `=` to a non-empty value.
        #expect(try run(#"absent(nope{job=""})"#, at: [0], Self.fleet) == ["=1"])
        #expect(try run(#"absent(nope{job="a", job!="b", x="y", x="z"})"#, at: [0], Self.fleet) == ["=1"])
        // label_replace's `$`: malformed references are text; `$01` is a (missing) named group.
        func l(_ q: String) throws -> [String] { try run(q, at: [0], [points("up", source: "abc", [(0, 1)])]) }
        #expect(try l(#"label_replace(up, "d", "${1-x}", "source_id", "(.*)")"#) == ["__name__:up,d:${1-x},source_id:abc=1"])
        #expect(try l(#"label_replace(up, "d", "a${}b", "source_id", "(.*)")"#) == ["__name__:up,d:a${}b,source_id:abc=1"])
        #expect(try l(#"label_replace(up, "d", "$01", "source_id", "(.*)")"#) == ["__name__:up,source_id:abc=1"])
        #expect(throws: PromQL.BadData.self) { try l(#"label_replace(up, "d", "x", "source_id", "(a+)+")"#) }
        // A duplicate on the "one" side fails even when nothing on the other side matches it.
        #expect(throws: PromQL.BadData.self) { try run(#"mem + on(zone) label_replace(cpu, "zone", "z", "", "")"#, at: [0], Self.fleet) }
        // quantile sorts NaN first; clamp with a NaN bound answers NaN.
        #expect(try run("quantile(0.5, cpu / 0 * 0 or mem)", at: [0], Self.fleet).count == 1)
        #expect(try run("clamp(mem, NaN, 5)", at: [0], Self.fleet) == ["source_id:a=nan", "source_id:b=nan"])
        // absent_over_time of a subquery.
        #expect(try run("absent_over_time(nope[1m:10s])", at: [60]) == ["=1"])
        // One query's work is bounded across all its selectors, not per selector.
        // (Small budgets here, so the refusals come fast in a debug build.)
        let many = (0..<40).map { points("w", source: "s\($0)", [(0, 1)]) }
        let times = Array(stride(from: Int64(0), through: 100, by: 1))
        #expect(throws: Never.self) { try evaluate("w + (w + w)", at: times, many, maxCells: 20_000) }
        #expect(throws: PromQL.BadData.self) { try evaluate("w + (w + (w + (w + w)))", at: times, many, maxCells: 20_000) }
        #expect(throws: PromQL.BadData.self) { try evaluate("sum_over_time(vector(1)[1000s:1s])", at: times, [], maxVisits: 50_000) }
    }
}
