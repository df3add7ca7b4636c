// libFuzzer target: PromQL.parse on arbitrary text (the `query` of /api/v1/query and
// query_range), then the evaluator on a fixed set of series. Beyond "no crash" (no trap on
// an overflow, a NaN made an Int, a deep recursion):
//  * a refusal always says why;
//  * an accepted expression evaluates, or is refused as bad_data, at every step: a
//    scalar has one value per step, a vector's series one value or none per step, and no
//    two of its series share a labelset;
//  * parseSelector and duration never crash on the same text.
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
]
let identities = fixture.map(\.series)
let times: [Int64] = [0, 10, 25, 50, 60, 400].map { $0 * 1_000_000 }

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
    var fetched: [PromQL.Fetch: [SeriesPoints]] = [:]
    for fetch in expr.fetches {
        guard let chosen = try? Set(PromQL.select(fetch.selector, from: identities)) else { return 0 }
        fetched[fetch] = fixture.filter { chosen.contains($0.series) }
    }
    guard expr.type != .matrix else { return 0 }
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
