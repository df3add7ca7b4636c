import Foundation
import PlexusModel
public import PlexusStorage
import Synchronization

extension PromQL {
    /// One evaluated series: its labels and its value, or none, at each evaluation time.
    public struct Series: Sendable, Equatable {
        public var labels: [String: String]
        public var values: [Double?]

        public init(labels: [String: String], values: [Double?]) {
            self.labels = labels
            self.values = values
        }
    }

    /// What an expression evaluates to at every evaluation time.
    public enum Value: Sendable {
        case scalar([Double])
        case vector([Series])
    }

    /// Evaluates an expression at every evaluation time at once, series by series, with
    /// Prometheus 2.x's semantics: its lookback, range windows (both ends included), rate
    /// extrapolation, aggregation arithmetic, one-to-one matching and its errors. It reads
    /// only the samples given for each of the expression's ``Expr/fetches``; no I/O.
    public struct Evaluator: Sendable {
        public let times: [Int64]
        let data: [Fetch: [SeriesPoints]]
        /// The selectors ``ReadPlan`` reads through rollups (only at the top, not in subqueries).
        let rollups: [Fetch: [SeriesRollup]]
        /// Inside subqueries: their offsets and ranges so far (``Fetch/shift``, ``Fetch/lead``).
        let shift: Int64
        let lead: Int64
        /// What the whole query may still spend, shared with nested evaluators.
        let budget: Budget

        /// Work one query may do: values held (series × evaluation times, over all its
        /// selectors and subqueries) and samples visited by range functions' windows.
        final class Budget: Sendable {
            let left: Mutex<(cells: Int, visits: Int)>

            init(cells: Int, visits: Int) { left = Mutex((cells, visits)) }

            func spend(cells: Int = 0, visits: Int = 0) throws(BadData) {
                let ok = left.withLock { l in
                    l.cells -= cells
                    l.visits -= visits
                    return l.cells >= 0 && l.visits >= 0
                }
                guard ok else {
                    throw BadData(
                        "query processing would load too many samples into memory or visit too many: narrow the selectors, shorten the ranges or raise the step"
                    )
                }
            }
        }

        /// The most values one query may hold, and the most samples its windows may visit.
        public static let maxQueryCells = 10_000_000
        public static let maxWindowVisits = 50_000_000

        /// The most values (series × evaluation times) one selector may produce.
        public static let maxCells = 4_000_000
        /// The most evaluation times one subquery may have.
        public static let maxSubquerySteps = 100_000

        /// `data` holds the raw samples of ``ReadPlan/raw``, `rollups` those of
        /// ``ReadPlan/rollups``; `maxCells` and `maxVisits` bound the whole query
        /// (``maxQueryCells``, ``maxWindowVisits``).
        public init(
            times: [Int64], data: [Fetch: [SeriesPoints]], rollups: [Fetch: [SeriesRollup]] = [:],
            maxCells: Int = Evaluator.maxQueryCells, maxVisits: Int = Evaluator.maxWindowVisits
        ) {
            self.init(
                times: times, data: data, rollups: rollups, shift: 0, lead: 0, budget: Budget(cells: maxCells, visits: maxVisits))
        }

        init(
            times: [Int64], data: [Fetch: [SeriesPoints]], rollups: [Fetch: [SeriesRollup]], shift: Int64, lead: Int64,
            budget: Budget
        ) {
            self.times = times
            self.data = data
            self.rollups = rollups
            self.shift = shift
            self.lead = lead
            self.budget = budget
        }

        /// The key under which the caller put a selector's samples, in this evaluator's context.
        func fetch(_ selector: Selector, span: Int64) -> Fetch {
            Fetch(selector: selector, span: span, shift: shift, lead: lead)
        }

        public func evaluate(_ e: Expr) throws(BadData) -> Value {
            switch e {
            case .number(let x):
                return .scalar(Array(repeating: x, count: times.count))
            case .string:
                throw BadData("a string is only accepted as a function's argument")
            case .vector(let s):
                let fetched = try samples(fetch(s, span: PromQL.lookback))
                return .vector(
                    fetched.map { Series(labels: PromQL.labels(of: $0.series), values: PromQL.evaluate($0, at: times, offset: s.offset)) })
            case .matrix, .subquery:
                throw BadData("a range vector (x[5m], x[5m:1m]) is only accepted as a function's argument")
            case .negate(let inner):
                switch try evaluate(inner) {
                case .scalar(let v): return .scalar(v.map { -$0 })
                case .vector(let v):
                    return .vector(
                        try Self.distinct(v.map { Series(labels: Self.droppingName($0.labels), values: $0.values.map { $0.map { -$0 } }) }))
                }
            case .call(let f, let args):
                return try call(f, args)
            case .aggregate(let op, let inner, let parameter, let grouping):
                return try aggregate(op, inner, parameter, grouping)
            case .binary(let op, let l, let r, let matching):
                return try binary(op, l, r, matching)
            }
        }

        func samples(_ fetch: Fetch) throws(BadData) -> [SeriesPoints] {
            let fetched = data[fetch] ?? []
            try charge(series: fetched.count)
            return fetched
        }

        /// Charges a selector's values, series × evaluation times, to its limit and the query's.
        func charge(series: Int) throws(BadData) {
            guard series * times.count <= Self.maxCells else {
                throw BadData(
                    "query processing would load too many samples into memory: \(series) series × \(times.count) steps; narrow the selector or raise the step"
                )
            }
            try budget.spend(cells: series * times.count)
        }

        func vector(_ e: Expr) throws(BadData) -> [Series] {
            guard case .vector(let v) = try evaluate(e) else { throw BadData("expected an instant vector") }
            return v
        }

        func scalar(_ e: Expr) throws(BadData) -> [Double] {
            guard case .scalar(let v) = try evaluate(e) else { throw BadData("expected a scalar") }
            return v
        }

        static func droppingName(_ labels: [String: String]) -> [String: String] {
            var l = labels
            l["__name__"] = nil
            return l
        }

        /// Series with the same labels made one; two values at one time are Prometheus'
        /// "same labelset" error. Series without any value are left out.
        static func merge(_ series: [Series]) throws(BadData) -> [Series] {
            var index: [[String: String]: Int] = [:]
            var out: [Series] = []
            for s in series where s.values.contains(where: { $0 != nil }) {
                guard let k = index[s.labels] else {
                    index[s.labels] = out.count
                    out.append(s)
                    continue
                }
                for (t, v) in s.values.enumerated() where v != nil {
                    guard out[k].values[t] == nil else { throw BadData("vector cannot contain metrics with the same labelset") }
                    out[k].values[t] = v
                }
            }
            return out
        }

        // MARK: Functions

        func call(_ f: Function, _ args: [Expr]) throws(BadData) -> Value {
            switch f {
            case .time:
                return .scalar(times.map { Double($0) / 1_000_000 })
            case .vector:
                return .vector([Series(labels: [:], values: try scalar(args[0]).map { $0 })])
            case .scalar:
                let v = try vector(args[0])
                return .scalar(
                    times.indices.map { t in
                        let present = v.compactMap { $0.values[t] }
                        return present.count == 1 ? present[0] : .nan
                    })
            case .sort, .sortDesc:
                return .vector(try vector(args[0]))
            case .labelReplace, .labelJoin:
                return .vector(try relabel(f, args))
            case .absent:
                let v = try vector(args[0])
                let values: [Double?] = times.indices.map { t in v.contains { $0.values[t] != nil } ? nil : 1 }
                return .vector(try Self.merge([Series(labels: Self.absentLabels(args[0]), values: values)]))
            case .absentOverTime:
                let (input, range, offset) = try rangeArgument(f, args)
                let values: [Double?] = times.map { t in
                    let end = t - offset
                    let any = input.contains { p in
                        // The first sample at or after the window's start, if inside it.
                        let k = p.timestamps.partitioningIndex { $0 >= end - range }
                        return k < p.timestamps.count && p.timestamps[k] <= end
                    }
                    return any ? nil : 1
                }
                return .vector(try Self.merge([Series(labels: Self.absentLabels(args[0]), values: values)]))
            case .timestamp:
                return .vector(try timestamps(args[0]))
            case .minute, .hour, .month, .year, .dayOfMonth, .dayOfWeek, .dayOfYear, .daysInMonth:
                let v =
                    try args.first.map { (a) throws(BadData) in try vector(a) }
                    ?? [Series(labels: [:], values: times.map { Double($0) / 1_000_000 })]
                let out = v.map { s in
                    Series(
                        labels: Self.droppingName(s.labels), values: s.values.map { $0.flatMap { Calendar.field(f, ofUnixSeconds: $0) } })
                }
                return .vector(try Self.merge(out))
            case .histogramQuantile:
                return .vector(try histogramQuantile(try scalar(args[0]), try vector(args[1])))
            case .abs, .ceil, .floor, .exp, .ln, .log2, .log10, .sqrt, .sgn, .round, .clamp, .clampMin, .clampMax:
                let v = try vector(args[0])
                let params = try args.dropFirst().map { (a) throws(BadData) in try scalar(a) }
                let out = v.map { s in
                    Series(
                        labels: Self.droppingName(s.labels),
                        values: s.values.enumerated().map { t, x in x.flatMap { Self.apply(f, $0, params.map { $0[t] }) } })
                }
                return .vector(try Self.merge(out))
            default:
                // The scalar parameter: quantile_over_time's first argument, predict_linear's second.
                let scalarArgument = args.first { $0.type == .scalar }
                let parameter = try scalarArgument.map { (a) throws(BadData) in try scalar(a) }
                if let fetch = PromQL.rollupFetch(f, args), let input = rollups[fetch] {
                    return .vector(try rollupFunction(f, input, offset: fetch.selector.offset, range: fetch.span))
                }
                let (input, range, offset) = try rangeArgument(f, args)
                return .vector(try rangeFunction(f, input, offset: offset, range: range, parameter: parameter))
            }
        }

        /// A range function's range-vector argument as samples per series, with its range
        /// and offset: a range selector's samples, or a subquery evaluated.
        func rangeArgument(_ f: Function, _ args: [Expr]) throws(BadData) -> (input: [SeriesSamples], range: Int64, offset: Int64) {
            switch args.first(where: { $0.type == .matrix }) {
            case .matrix(let selector, let range):
                let fetched = try samples(fetch(selector, span: range))
                return (fetched.map { (PromQL.labels(of: $0.series), $0.timestamps, $0.values) }, range, selector.offset)
            case .subquery(let inner, let range, let step, let offset):
                return (try subquery(inner, range: range, step: step ?? 60_000_000, offset: offset), range, offset)
            default:
                throw BadData("\(f.rawValue) expects a range vector")
            }
        }

        /// An instant function of one value, with its scalar parameters at that time.
        static func apply(_ f: Function, _ x: Double, _ p: [Double]) -> Double? {
            switch f {
            case .abs: return Swift.abs(x)
            case .ceil: return x.rounded(.up)
            case .floor: return x.rounded(.down)
            case .exp: return Foundation.exp(x)
            case .ln: return Foundation.log(x)
            case .log2: return Foundation.log2(x)
            case .log10: return Foundation.log10(x)
            case .sqrt: return x.squareRoot()
            case .sgn: return x > 0 ? 1 : x < 0 ? -1 : x
            case .round:
                let inverse = 1 / (p.first ?? 1)
                return (x * inverse + 0.5).rounded(.down) / inverse
            case .clamp:
                if p[1] < p[0] { return nil }  // NaN bounds go on, as in Prometheus: the answer is NaN
                return goMax(p[0], goMin(p[1], x))
            case .clampMin: return goMax(p[0], x)
            case .clampMax: return goMin(p[0], x)
            default: return nil
            }
        }

        /// Go's math.Max and math.Min, which Prometheus uses: NaN wins.
        static func goMax(_ a: Double, _ b: Double) -> Double { a.isNaN || b.isNaN ? .nan : Swift.max(a, b) }
        static func goMin(_ a: Double, _ b: Double) -> Double { a.isNaN || b.isNaN ? .nan : Swift.min(a, b) }

        /// A subquery's inner expression at every `step` (multiples of it) from `range` before
        /// the first evaluation time to the last, less the offset: one series of samples each.
        func subquery(_ inner: Expr, range: Int64, step: Int64, offset: Int64) throws(BadData) -> [SeriesSamples] {
            let (first, o1) = times.first!.subtractingReportingOverflow(offset)
            let (last, o2) = times.last!.subtractingReportingOverflow(offset)
            let (lower, o3) = first.subtractingReportingOverflow(range)
            // Far enough from Int64's ends that the alignment below cannot overflow.
            let bound = Int64.max / 4
            guard !o1, !o2, !o3, abs(lower) < bound, abs(last) < bound, step < bound else {
                throw BadData("subquery offset or range out of range")
            }
            // The first multiple of the step at or after `lower` (division rounding down).
            let below = lower >= 0 ? lower / step : (lower - step + 1) / step
            var start = below * step
            if start < lower { start += step }
            guard start <= last else { return [] }
            guard (last - start) / step < Int64(Self.maxSubquerySteps) else {
                throw BadData("a subquery would be evaluated at more than \(Self.maxSubquerySteps) times; raise its step")
            }
            let subTimes = Array(stride(from: start, through: last, by: Int(step)))
            try budget.spend(cells: subTimes.count)
            let sub = Evaluator(
                times: subTimes, data: data, rollups: [:], shift: PromQL.saturating(shift, offset), lead: PromQL.saturating(lead, range),
                budget: budget)
            let series: [Series]
            switch try sub.evaluate(inner) {
            case .scalar(let v): series = [Series(labels: [:], values: v)]
            case .vector(let v): series = v
            }
            return series.compactMap { s in
                let present = zip(subTimes, s.values).compactMap { t, v in v.map { (t, $0) } }
                return present.isEmpty ? nil : (s.labels, present.map(\.0), present.map(\.1))
            }
        }

        /// A series' labels and samples, whichever way they were got.
        typealias SeriesSamples = (labels: [String: String], timestamps: [Int64], values: [Double])

        func rangeFunction(_ f: Function, _ input: [SeriesSamples], offset: Int64, range: Int64, parameter: [Double]?)
            throws(BadData) -> [Series]
        {
            var out: [Series] = []
            out.reserveCapacity(input.count)
            var visits = 0
            for s in input {
                var values: [Double?] = []
                values.reserveCapacity(times.count)
                var lo = 0
                var hi = 0
                let ts = s.timestamps
                for (k, t) in times.enumerated() {
                    let end = t - offset
                    let start = end - range
                    while hi < ts.count && ts[hi] <= end { hi += 1 }
                    while lo < hi && ts[lo] < start { lo += 1 }
                    guard lo < hi else {
                        values.append(nil)
                        continue
                    }
                    visits += hi - lo
                    if visits >= 1_000_000 {  // charged as it goes: one huge window must not run to the end first
                        try budget.spend(visits: visits)
                        visits = 0
                    }
                    let window = Window(
                        timestamps: ts[lo..<hi], values: s.values[lo..<hi], start: start, end: end, range: range, at: t)
                    values.append(window.apply(f, parameter: parameter?[k]))
                }
                out.append(Series(labels: Self.rangeFunctionLabels(f, s.labels), values: values))
            }
            try budget.spend(visits: visits)
            return try Self.distinct(out)
        }

        /// A range function's series keep their labels but the metric name (`last_over_time` keeps it too).
        static func rangeFunctionLabels(_ f: Function, _ labels: [String: String]) -> [String: String] {
            var labels = labels
            if f != .lastOverTime { labels["__name__"] = nil }
            return labels
        }

        /// Series that must have distinct labelsets across all steps, as Prometheus checks a
        /// range function's or a negation's whole matrix (not step by step).
        static func distinct(_ series: [Series]) throws(BadData) -> [Series] {
            var seen = Set<[String: String]>()
            let kept = series.filter { $0.values.contains { $0 != nil } }
            for s in kept where !seen.insert(s.labels).inserted {
                throw BadData("vector cannot contain metrics with the same labelset")
            }
            return kept
        }

        // MARK: Aggregations

        func aggregate(_ op: Aggregation, _ inner: Expr, _ parameter: Expr?, _ grouping: Grouping) throws(BadData) -> Value {
            let input = try vector(inner)
            let p = try parameter.map { (e) throws(BadData) in try scalar(e) }
            if op == .topk || op == .bottomk, let bad = p?.first(where: { !$0.isFinite || Swift.abs($0) >= 9.2e18 }) {
                throw BadData("Scalar value \(bad) overflows int64")
            }
            var groups: [[String: String]: [Int]] = [:]
            var order: [[String: String]] = []
            for (k, s) in input.enumerated() {
                let labels: [String: String]
                if grouping.without {
                    labels = s.labels.filter { $0.key != "__name__" && !grouping.labels.contains($0.key) }
                } else {
                    labels = s.labels.filter { grouping.labels.contains($0.key) }
                }
                if groups[labels] == nil { order.append(labels) }
                groups[labels, default: []].append(k)
            }
            var out: [Series] = []
            for labels in order {
                let members = groups[labels]!
                if op == .topk || op == .bottomk {
                    out += select(op, members.map { input[$0] }, k: p!)
                    continue
                }
                var values: [Double?] = []
                values.reserveCapacity(times.count)
                for t in times.indices {
                    let present = members.compactMap { input[$0].values[t] }
                    values.append(present.isEmpty ? nil : Self.aggregate(op, present, parameter: p?[t]))
                }
                out.append(Series(labels: labels, values: values))
            }
            return .vector(try Self.merge(out))
        }

        /// One group's value at one time, with Prometheus' arithmetic for each operator.
        static func aggregate(_ op: Aggregation, _ v: [Double], parameter: Double?) -> Double {
            switch op {
            case .sum: return v.dropFirst().reduce(v[0], +)
            case .avg:
                var mean = v[0]
                for (k, x) in v.enumerated().dropFirst() {
                    let n = Double(k + 1)
                    if mean.isInfinite {
                        if x.isInfinite && (mean > 0) == (x > 0) { continue }
                        if !x.isInfinite && !x.isNaN { continue }
                    }
                    mean += x / n - mean / n
                }
                return mean
            case .min: return v.dropFirst().reduce(v[0]) { m, x in m > x || m.isNaN ? x : m }
            case .max: return v.dropFirst().reduce(v[0]) { m, x in m < x || m.isNaN ? x : m }
            case .count: return Double(v.count)
            case .group: return 1
            case .stddev, .stdvar:
                var mean = v[0]
                var sum = 0.0
                for (k, x) in v.enumerated().dropFirst() {
                    let delta = x - mean
                    mean += delta / Double(k + 1)
                    sum += delta * (x - mean)
                }
                let variance = sum / Double(v.count)
                return op == .stdvar ? variance : variance.squareRoot()
            case .quantile: return quantile(parameter ?? .nan, v)
            case .topk, .bottomk: return .nan  // selected, not computed: see select
            }
        }

        /// `topk`/`bottomk`: at each time, the k largest (smallest) members keep their
        /// labels and values; NaN ranks last either way, as in Prometheus.
        func select(_ op: Aggregation, _ members: [Series], k: [Double]) -> [Series] {
            var out = members.map { Series(labels: $0.labels, values: Array(repeating: nil, count: times.count)) }
            for t in times.indices {
                let n = k[t] < 1 ? 0 : k[t] >= Double(members.count) ? members.count : Int(k[t])
                guard n > 0 else { continue }
                let present = members.indices.compactMap { m in members[m].values[t].map { (m, $0) } }
                let ranked = present.sorted { a, b in
                    if a.1.isNaN != b.1.isNaN { return b.1.isNaN }
                    return op == .topk ? a.1 > b.1 : a.1 < b.1
                }
                for (m, v) in ranked.prefix(n) { out[m].values[t] = v }
            }
            return out
        }

        // MARK: Binary operators

        func binary(_ op: BinaryOp, _ l: Expr, _ r: Expr, _ m: Matching) throws(BadData) -> Value {
            switch (try evaluate(l), try evaluate(r)) {
            case (.scalar(let a), .scalar(let b)):
                return .scalar(
                    zip(a, b).map { x, y in
                        let (v, keep) = Self.apply(op, x, y)
                        return m.returnBool ? (keep ? 1 : 0) : v
                    })
            case (.vector(let a), .scalar(let b)):
                return .vector(try Self.merge(a.map { Self.vectorScalar(op, $0, b, swap: false, m.returnBool) }))
            case (.scalar(let a), .vector(let b)):
                return .vector(try Self.merge(b.map { Self.vectorScalar(op, $0, a, swap: true, m.returnBool) }))
            case (.vector(let a), .vector(let b)):
                if op.isSetOperator { return .vector(try Self.merge(setOperation(op, a, b, m))) }
                if m.cardinality != .oneToOne { return .vector(try Self.merge(try grouped(op, a, b, m))) }
                return .vector(try Self.merge(try oneToOne(op, a, b, m)))
            }
        }

        /// The value of `x op y`, and whether a comparison keeps it.
        static func apply(_ op: BinaryOp, _ x: Double, _ y: Double) -> (Double, Bool) {
            switch op {
            case .add: (x + y, true)
            case .sub: (x - y, true)
            case .mul: (x * y, true)
            case .div: (x / y, true)
            case .mod: (x.truncatingRemainder(dividingBy: y), true)
            case .pow: (Foundation.pow(x, y), true)
            case .atan2: (Foundation.atan2(x, y), true)
            case .eq: (x, x == y)
            case .ne: (x, x != y)
            case .gt: (x, x > y)
            case .lt: (x, x < y)
            case .ge: (x, x >= y)
            case .le: (x, x <= y)
            case .and, .or, .unless: (x, true)
            }
        }

        /// Arithmetic drops the metric name; `atan2` does not, in Prometheus 2.x.
        static func dropsName(_ op: BinaryOp) -> Bool { op.precedence >= 4 && op != .atan2 }

        /// A vector's series against a scalar; a comparison keeps the vector's value on either side.
        static func vectorScalar(_ op: BinaryOp, _ s: Series, _ scalar: [Double], swap: Bool, _ returnBool: Bool) -> Series {
            let values: [Double?] = s.values.enumerated().map { t, x in
                guard let x else { return nil }
                var (v, keep) = swap ? apply(op, scalar[t], x) : apply(op, x, scalar[t])
                if op.isComparison && swap { v = x }
                if returnBool { return keep ? 1 : 0 }
                return keep ? v : nil
            }
            return Series(labels: dropsName(op) || returnBool ? droppingName(s.labels) : s.labels, values: values)
        }

        /// The labels two series are matched on: the `on` labels, or all but the `ignoring`
        /// labels and the name.
        static func signature(_ labels: [String: String], _ m: Matching) -> [String: String] {
            m.on ? labels.filter { m.labels.contains($0.key) } : labels.filter { $0.key != "__name__" && !m.labels.contains($0.key) }
        }

        func oneToOne(_ op: BinaryOp, _ a: [Series], _ b: [Series], _ m: Matching) throws(BadData) -> [Series] {
            let left = a.map { Self.signature($0.labels, m) }
            var right: [[String: String]: [Int]] = [:]
            for (j, s) in b.enumerated() { right[Self.signature(s.labels, m), default: []].append(j) }
            var out = a.map { s in
                var labels = Self.dropsName(op) || m.returnBool ? Self.droppingName(s.labels) : s.labels
                labels = m.on ? labels.filter { m.labels.contains($0.key) } : labels.filter { !m.labels.contains($0.key) }
                return Series(labels: labels, values: Array(repeating: nil, count: times.count))
            }
            for t in times.indices {
                try Self.requireUnique(right, b, at: t, side: "right")
                var matched = Set<[String: String]>()
                for (k, s) in a.enumerated() {
                    guard let x = s.values[t], let candidates = right[left[k]] else { continue }
                    var y: Double?
                    for j in candidates {
                        guard let v = b[j].values[t] else { continue }
                        guard y == nil else {
                            throw BadData(
                                "found duplicate series for the match group \(Self.describe(left[k])) on the right hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side"
                            )
                        }
                        y = v
                    }
                    guard let y else { continue }
                    let (v, keep) = Self.apply(op, x, y)
                    guard keep || m.returnBool else { continue }
                    guard matched.insert(left[k]).inserted else {
                        throw BadData("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")
                    }
                    out[k].values[t] = m.returnBool ? (keep ? 1 : 0) : v
                }
            }
            return out
        }

        /// `group_left` / `group_right`: each series of the "many" side matched with the one
        /// series of the other side that has its signature; the result keeps the many side's
        /// labels (without the name for arithmetic and `bool`) plus the `group_x(…)` labels
        /// copied from the one side. The value is always `left op right`.
        func grouped(_ op: BinaryOp, _ a: [Series], _ b: [Series], _ m: Matching) throws(BadData) -> [Series] {
            let (many, one) = m.cardinality == .manyToOne ? (a, b) : (b, a)
            let manySig = many.map { Self.signature($0.labels, m) }
            var oneBySig: [[String: String]: [Int]] = [:]
            for (j, s) in one.enumerated() { oneBySig[Self.signature(s.labels, m), default: []].append(j) }
            var out: [Series] = []
            var index: [[String: String]: Int] = [:]
            for t in times.indices {
                try Self.requireUnique(oneBySig, one, at: t, side: m.cardinality == .manyToOne ? "right" : "left")
                var written = Set<[String: String]>()
                for (k, s) in many.enumerated() {
                    guard let x = s.values[t], let candidates = oneBySig[manySig[k]] else { continue }
                    var match: Int?
                    for j in candidates where one[j].values[t] != nil {
                        guard match == nil else {
                            throw BadData(
                                "found duplicate series for the match group \(Self.describe(manySig[k])) on the \(m.cardinality == .manyToOne ? "right" : "left") hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side"
                            )
                        }
                        match = j
                    }
                    guard let j = match, let y = one[j].values[t] else { continue }
                    let (left, right) = m.cardinality == .manyToOne ? (x, y) : (y, x)
                    let (v, keep) = Self.apply(op, left, right)
                    guard keep || m.returnBool else { continue }
                    var labels = Self.dropsName(op) || m.returnBool ? Self.droppingName(s.labels) : s.labels
                    for name in m.include { labels[name] = one[j].labels[name] }
                    guard written.insert(labels).inserted else {
                        throw BadData("multiple matches for labels: grouping labels must ensure unique matches")
                    }
                    let slot: Int
                    if let found = index[labels] {
                        slot = found
                    } else {
                        slot = out.count
                        index[labels] = slot
                        out.append(Series(labels: labels, values: Array(repeating: nil, count: times.count)))
                    }
                    out[slot].values[t] = m.returnBool ? (keep ? 1 : 0) : v
                }
            }
            return out
        }

        // MARK: Label functions, absent, timestamp

        /// `label_replace(v, dst, replacement, src, regex)` and `label_join(v, dst, separator, src…)`.
        func relabel(_ f: Function, _ args: [Expr]) throws(BadData) -> [Series] {
            let v = try vector(args[0])
            let strings = args.dropFirst().map { a -> String in
                if case .string(let s) = a { return s }
                return ""
            }
            let destination = strings[0]
            guard Self.isLabelName(destination) else { throw BadData("invalid destination label name in \(f.rawValue)(): \(destination)") }
            let out: [Series]
            if f == .labelJoin {
                let separator = strings[1]
                let sources = Array(strings.dropFirst(2))
                for name in sources where !Self.isLabelName(name) { throw BadData("invalid source label name in label_join(): \(name)") }
                out = v.map { s in
                    var labels = s.labels
                    let joined = sources.map { s.labels[$0] ?? "" }.joined(separator: separator)
                    labels[destination] = joined.isEmpty ? nil : joined
                    return Series(labels: labels, values: s.values)
                }
            } else {
                let (replacement, source, pattern) = (strings[1], strings[2], strings[3])
                let regex = try PromQL.regex("^(?:" + pattern + ")$")
                out = v.map { s in
                    guard let match = try? regex.wholeMatch(in: s.labels[source] ?? "") else { return s }
                    var labels = s.labels
                    let value = Self.expand(replacement, match)
                    labels[destination] = value.isEmpty ? nil : value
                    return Series(labels: labels, values: s.values)
                }
            }
            return try Self.merge(out)
        }

        static func isLabelName(_ s: String) -> Bool {
            guard let first = s.utf8.first, first == UInt8(ascii: "_") || (first | 0x20 >= 0x61 && first | 0x20 <= 0x7A) else {
                return false
            }
            return s.utf8.allSatisfy { $0 == UInt8(ascii: "_") || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) }
        }

        /// Go's `Regexp.Expand`, which label_replace uses: `$1`, `${1}`, `$name`, `${name}`,
        /// `$$`. A name is the longest run of letters, digits and `_` (so `$1x` is the group
        /// named "1x"); a number with a leading zero is a name; an unknown group is empty; a
        /// `$` not followed by a valid reference (`${}`, `${1-x}`) is kept as it is.
        static func expand(_ template: String, _ match: Regex<AnyRegexOutput>.Match) -> String {
            var out = ""
            var rest = Substring(template)
            while let dollar = rest.firstIndex(of: "$") {
                out += rest[..<dollar]
                rest = rest[rest.index(after: dollar)...]
                if rest.first == "$" {
                    out += "$"
                    rest = rest.dropFirst()
                    continue
                }
                let braced = rest.first == "{"
                var body = braced ? rest.dropFirst() : rest
                let end = body.firstIndex { !($0.isLetter || $0.isNumber || $0 == "_") } ?? body.endIndex
                let name = body[..<end]
                body = body[end...]
                guard !name.isEmpty, !braced || body.first == "}" else {
                    out += "$"  // malformed: the `$` is text
                    continue
                }
                rest = braced ? body.dropFirst() : body
                let number = name.first != "0" || name.count == 1 ? Int(name) : nil
                if let n = number {
                    if n < match.output.count, let sub = match.output[n].substring { out += sub }
                } else if let sub = match.output[String(name)]?.substring {
                    out += sub
                }
            }
            return out + rest
        }

        /// absent's labels, as Prometheus builds them: each label the argument selector pins
        /// with its first `=` matcher to a non-empty value; a label with any other matcher
        /// on it (or a second one) is left out.
        static func absentLabels(_ e: Expr) -> [String: String] {
            let matchers: [Matcher]
            switch e {
            case .vector(let s), .matrix(let s, _): matchers = s.matchers
            default: return [:]
            }
            var out: [String: String] = [:]
            var dropped = Set<String>()
            for m in matchers where m.label != "__name__" {
                if m.op == .equal && out[m.label] == nil && !dropped.contains(m.label) {
                    out[m.label] = m.value
                } else {
                    dropped.insert(m.label)
                }
            }
            for d in dropped { out[d] = nil }
            return out.filter { !$0.value.isEmpty }
        }

        /// `timestamp(v)`: the time of the sample a selector took at each step, else the step.
        func timestamps(_ e: Expr) throws(BadData) -> [Series] {
            guard case .vector(let selector) = e else {
                return try Self.merge(
                    try vector(e).map { s in
                        Series(
                            labels: Self.droppingName(s.labels),
                            values: zip(times, s.values).map { t, v in v.map { _ in Double(t) / 1_000_000 } })
                    })
            }
            let fetched = try samples(fetch(selector, span: PromQL.lookback))
            return try Self.merge(
                fetched.map { p in
                    let taken = PromQL.newest(p.timestamps, at: times, offset: selector.offset)
                    return Series(
                        labels: Self.droppingName(PromQL.labels(of: p.series)),
                        values: taken.map { $0.map { Double(p.timestamps[$0]) / 1_000_000 } })
                })
        }

        /// `and`, `or`, `unless`, matched at each time on the signature.
        func setOperation(_ op: BinaryOp, _ a: [Series], _ b: [Series], _ m: Matching) -> [Series] {
            let left = a.map { Self.signature($0.labels, m) }
            let right = b.map { Self.signature($0.labels, m) }
            var outA = a
            var outB = op == .or ? b : []
            for t in times.indices {
                switch op {
                case .and, .unless:
                    let present = Set(b.indices.filter { b[$0].values[t] != nil }.map { right[$0] })
                    for k in a.indices where present.contains(left[k]) != (op == .and) { outA[k].values[t] = nil }
                default:
                    let present = Set(a.indices.filter { a[$0].values[t] != nil }.map { left[$0] })
                    for j in b.indices where present.contains(right[j]) { outB[j].values[t] = nil }
                }
            }
            return outA + outB
        }

        /// Prometheus refuses a "one" side with two series of one match group at a step,
        /// whether or not anything on the other side matches them.
        static func requireUnique(_ bySignature: [[String: String]: [Int]], _ series: [Series], at t: Int, side: String)
            throws(BadData)
        {
            for (signature, members) in bySignature where members.count > 1 {
                guard members.filter({ series[$0].values[t] != nil }).count <= 1 else {
                    throw BadData(
                        "found duplicate series for the match group \(describe(signature)) on the \(side) hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side"
                    )
                }
            }
        }

        static func describe(_ labels: [String: String]) -> String {
            "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.debugDescription)" }.joined(separator: ", ") + "}"
        }

        // MARK: histogram_quantile

        func histogramQuantile(_ q: [Double], _ input: [Series]) throws(BadData) -> [Series] {
            var groups: [[String: String]: [(le: Double, series: Int)]] = [:]
            var order: [[String: String]] = []
            for (k, s) in input.enumerated() {
                guard let text = s.labels["le"], let le = Double(text) else { continue }
                // Grouped with the name (two histograms stay apart), answered without it.
                var labels = s.labels
                labels["le"] = nil
                if groups[labels] == nil { order.append(labels) }
                groups[labels, default: []].append((le, k))
            }
            return try Self.merge(
                order.map { labels in
                    let buckets = groups[labels]!
                    let values: [Double?] = times.indices.map { t in
                        let present = buckets.compactMap { b in input[b.series].values[t].map { (b.le, $0) } }
                        return present.isEmpty ? nil : Self.bucketQuantile(q[t], present)
                    }
                    return Series(labels: Self.droppingName(labels), values: values)
                })
        }

        /// Prometheus' bucketQuantile: buckets sorted and merged by bound, counts made
        /// monotonic, the rank interpolated linearly inside its bucket.
        static func bucketQuantile(_ q: Double, _ input: [(le: Double, count: Double)]) -> Double {
            if q.isNaN { return .nan }
            if q < 0 { return -.infinity }
            if q > 1 { return .infinity }
            let sorted = input.sorted { $0.le < $1.le }
            guard sorted.last!.le == .infinity else { return .nan }
            var buckets: [(le: Double, count: Double)] = []
            for b in sorted {
                if let last = buckets.last, last.le == b.le {
                    buckets[buckets.count - 1].count += b.count
                } else {
                    buckets.append(b)
                }
            }
            var maximum = -Double.infinity
            for k in buckets.indices {
                if buckets[k].count > maximum {
                    maximum = buckets[k].count
                } else if buckets[k].count < maximum {
                    buckets[k].count = maximum
                }
            }
            guard buckets.count >= 2 else { return .nan }
            let observations = buckets[buckets.count - 1].count
            guard observations != 0 else { return .nan }
            var rank = q * observations
            let b = buckets.dropLast().firstIndex { $0.count >= rank } ?? buckets.count - 1
            if b == buckets.count - 1 { return buckets[buckets.count - 2].le }
            if b == 0 && buckets[0].le <= 0 { return buckets[0].le }
            var start = 0.0
            var count = buckets[b].count
            if b > 0 {
                start = buckets[b - 1].le
                count -= buckets[b - 1].count
                rank -= buckets[b - 1].count
            }
            return start + (buckets[b].le - start) * (rank / count)
        }
    }

    /// Prometheus' quantile of values: linear interpolation between the closest ranks.
    static func quantile(_ q: Double, _ values: [Double]) -> Double {
        guard !values.isEmpty, !q.isNaN else { return .nan }
        if q < 0 { return -.infinity }
        if q > 1 { return .infinity }
        let v = values.sorted { a, b in a.isNaN ? !b.isNaN : a < b }  // NaN first, as Prometheus sorts
        let n = Double(v.count)
        let rank = q * (n - 1)
        let lower = Swift.max(0, rank.rounded(.down))
        let upper = Swift.min(n - 1, lower + 1)
        let weight = rank - rank.rounded(.down)
        return v[Int(lower)] * (1 - weight) + v[Int(upper)] * weight
    }
}

extension Array where Element == Int64 {
    /// The first index whose element satisfies `belongs` (a predicate false then true along
    /// the sorted array), by binary search.
    func partitioningIndex(where belongs: (Int64) -> Bool) -> Int {
        var lo = 0
        var hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if belongs(self[mid]) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}

/// The calendar fields of PromQL's time functions, in UTC, from Unix seconds (Howard
/// Hinnant's days-to-civil algorithm: no time zone database, exact for every valid time).
enum Calendar {
    static func field(_ f: PromQL.Function, ofUnixSeconds seconds: Double) -> Double? {
        guard seconds.isFinite, Swift.abs(seconds) < 1e15 else { return nil }
        let s = Int64(seconds.rounded(.down))
        let days = s >= 0 ? s / 86_400 : (s - 86_399) / 86_400
        let secondOfDay = s - days * 86_400
        let (year, month, day) = civil(fromDays: days)
        switch f {
        case .minute: return Double(secondOfDay / 60 % 60)
        case .hour: return Double(secondOfDay / 3_600)
        case .month: return Double(month)
        case .year: return Double(year)
        case .dayOfMonth: return Double(day)
        case .dayOfWeek: return Double(((days % 7) + 11) % 7)  // 1970-01-01 was a Thursday (4)
        case .dayOfYear: return Double(days - daysFromCivil(year, 1, 1) + 1)
        case .daysInMonth:
            let next = month == 12 ? daysFromCivil(year + 1, 1, 1) : daysFromCivil(year, month + 1, 1)
            return Double(next - daysFromCivil(year, month, 1))
        default: return nil
        }
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
