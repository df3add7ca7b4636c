// libFuzzer target: PromQL.parse on arbitrary text (the `query` of /api/v1/query and
// query_range), then the evaluator on a fixed set of series. Beyond "no crash" (no trap on
// an overflow, a NaN made an Int, a deep recursion):
//  * a refusal always says why;
//  * an accepted expression evaluates, or is refused as bad_data, at every step: a
//    scalar has one value per step, a vector's series one value or none per step, and no
//    two of its series share a labelset;
//  * parseSelector and duration never crash on the same text;
//  * at minute-aligned times, over samples half of which lie on a minute's start, what the
//    read plan answers from rollups evaluates as well, and a rollup function of a selector
//    (or an aggregation of one) answers as it does from the raw samples.
import FuzzSupport
import PlexusModel
import PlexusPromQL
import PlexusStorage

func series(_ metric: String, _ source: String, _ tags: [Tag], _ values: [Double]) -> SeriesPoints {
    SeriesPoints(
        series: SeriesIdentity(sourceID: source, metric: metric, tags: tags, sessionID: nil, numeric: true),
        timestamps: values.indices.map { Int64($0) * 10_000_000 }, values: values)
}

// Counters with a reset, gauges at the edges of Double, histogram buckets, repeated names
// across sources: what makes the operators, the matching and the functions branch.
let fixture: [SeriesPoints] = [
    series("up", "a", [Tag("job", "x")], [1, 1, 0, 1, 1, 1]),
    series("up", "b", [Tag("job", "x")], [1, 0, 1]),
    series("c_total", "a", [], [0, 5, 10, 2, 4, 1e15]),
    series("c_total", "b", [Tag("job", "y")], [3, 3, 3, 3]),
    series("g", "a", [Tag("le", "1")], [1.7e308, -1.7e308, 0, -0.0, .leastNonzeroMagnitude, 1]),
    series("g", "b", [Tag("le", "+Inf")], [-1, 2, -3, 4, -5, 6]),
    series("h_bucket", "a", [Tag("le", "0.5")], [1, 2, 3, 4, 5, 6]),
    series("h_bucket", "a", [Tag("le", "1")], [2, 4, 6, 8, 10, 12]),
    series("h_bucket", "a", [Tag("le", "+Inf")], [3, 6, 9, 12, 15, 18]),
    series("motor.rpm", "a", [Tag("axis", "x")], [100, 200, 300]),
    // Sums that saturate and come back, and that cancel: plain sums lose what Prometheus' keep.
    series("k", "a", [], [1.7976931348623157e308, 1.7976931348623157e308, -1.7976931348623157e308, 1, 1e100, 1, -1e100]),
]
let identities = fixture.map(\.series)
let times: [Int64] = [0, 10, 25, 50, 60, 400].map { $0 * 1_000_000 }

// The same series with a sample every 30 s (every other one on a minute's start), read at
// whole minutes: what rollups answer.
let spread = fixture.map { p in SeriesPoints(series: p.series, timestamps: p.timestamps.map { $0 * 3 }, values: p.values) }
let minutes: [Int64] = [0, 60, 120, 180].map { $0 * 1_000_000 }
let hours: [Int64] = [0, 3_600, 7_200].map { $0 * 1_000_000 }

func select(_ fetches: some Sequence<PromQL.Fetch>, from points: [SeriesPoints]) -> [PromQL.Fetch: [SeriesPoints]]? {
    var out: [PromQL.Fetch: [SeriesPoints]] = [:]
    for fetch in fetches {
        guard let chosen = try? Set(PromQL.select(fetch.selector, from: identities)) else { return nil }
        out[fetch] = points.filter { chosen.contains($0.series) }
    }
    return out
}

/// Evaluates at whole minutes (or hours) from raw samples and through the read plan's rollups.
func compareWithRollups(_ expr: PromQL.Expr, at minutes: [Int64]) {
    let plan = PromQL.plan(expr, at: minutes)
    guard !plan.rollups.isEmpty, let raw = select(expr.fetches, from: spread), var data = select(plan.raw, from: spread),
        let rolledPoints = select(plan.rollups.keys, from: spread)
    else { return }
    var rollups: [PromQL.Fetch: [SeriesRollup]] = [:]
    for (fetch, width) in plan.rollups {
        let r = rolledPoints[fetch, default: []].map { p in
            let (buckets, edges) = SeriesRollup.buckets(timestamps: p.timestamps, values: p.values, width: width)
            return SeriesRollup(series: p.series, buckets: buckets, edges: edges)
        }
        if PromQL.rollupsAnswerExactly(r, times: minutes, offset: fetch.selector.offset, range: fetch.span) {
            rollups[fetch] = r
        } else {
            data[fetch] = rolledPoints[fetch]
        }
    }
    guard let expected = try? PromQL.Evaluator(times: minutes, data: raw).evaluate(expr) else { return }
    let got: PromQL.Value
    do {
        got = try PromQL.Evaluator(times: minutes, data: data, rollups: rollups).evaluate(expr)
    } catch {
        require(false, "the raw samples evaluate but the rollups fail: \(error.message)")
        return
    }
    // Beyond a rollup function or an aggregation of one, operators may turn the last bit of
    // a sum into a different answer (a comparison, a cancellation): no value check there.
    var direct = false
    switch expr {
    case .call(let f, let args): direct = PromQL.rollupFetch(f, args) != nil
    case .aggregate(let op, .call(let f, let args), nil, _):
        direct = op != .stddev && op != .stdvar && PromQL.rollupFetch(f, args) != nil
    default: break
    }
    guard direct, case .vector(let a) = expected, case .vector(let b) = got else { return }
    let mine = Dictionary(b.map { ($0.labels, $0.values) }, uniquingKeysWith: { x, _ in x })
    require(a.count == b.count, "\(a.count) series from raw samples, \(b.count) from rollups")
    for s in a {
        guard let values = mine[s.labels] else {
            require(false, "series \(s.labels) missing from the rollups' answer")
            return
        }
        for (x, y) in zip(values, s.values) {
            require((x == nil) == (y == nil), "a value from one and not the other: \(String(describing: x)) vs \(String(describing: y))")
            if let x, let y { require(x == y || abs(x - y) <= 1e-9 * max(1, abs(y)), "\(x) from rollups, \(y) from samples") }
        }
    }
}

func fuzzPromQL(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? PromQL.parseSelector(text)
    _ = PromQL.duration(text)
    let expr: PromQL.Expr
    do {
        expr = try PromQL.parse(text)
    } catch {
        require(!error.message.isEmpty, "a refusal without a message")
        return 0
    }
    guard let fetched = select(expr.fetches, from: fixture) else { return 0 }
    guard expr.type != .matrix else { return 0 }
    compareWithRollups(expr, at: minutes)
    compareWithRollups(expr, at: hours)
    let value: PromQL.Value
    do {
        value = try PromQL.Evaluator(times: times, data: fetched).evaluate(expr)
    } catch {
        require(!error.message.isEmpty, "an evaluation error without a message")
        return 0
    }
    switch value {
    case .scalar(let v):
        require(v.count == times.count, "a scalar with \(v.count) values for \(times.count) steps")
    case .vector(let series):
        var seen = Set<[String: String]>()
        for s in series {
            require(s.values.count == times.count, "a series with \(s.values.count) values for \(times.count) steps")
            require(seen.insert(s.labels).inserted, "two series with the labels \(s.labels)")
        }
    }
    return 0
}

runFuzzer(fuzzPromQL)
