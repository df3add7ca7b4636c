public import PlexusStorage

extension PromQL {
    /// The range functions whose value over a window follows from the count, minimum,
    /// maximum and sum of its samples, so that rollups answer them.
    static let rollupFunctions: Set<Function> = [
        .sumOverTime, .countOverTime, .minOverTime, .maxOverTime, .avgOverTime, .presentOverTime,
    ]

    /// The selector a call reads through rollups if it can: a rollup function of a range
    /// selector (not of a subquery).
    public static func rollupFetch(_ f: Function, _ args: [Expr]) -> Fetch? {
        guard rollupFunctions.contains(f), args.count == 1, case .matrix(let s, let range) = args[0] else { return nil }
        return Fetch(selector: s, span: range)
    }

    /// What a query reads to be evaluated at given times: some range functions' selectors
    /// through per-series rollups, the rest as raw samples.
    ///
    /// A rollup bucket holds `[b, b + width)` and, apart, its samples exactly at `b`
    /// (``SeriesRollup``). A window of Prometheus 2.x, `[t − offset − range, t − offset]`
    /// with both ends included, whose ends are bucket starts is then exactly the buckets
    /// from its start up to its end plus the edge at its end: the same samples Prometheus
    /// reads. So a rollup function's selector is read from rollups when every evaluation
    /// time, the range and the offset are multiples of the width (1 h preferred, then 1 m),
    /// outside subqueries, and when no other part of the query needs its raw samples anyway.
    public struct ReadPlan: Sendable, Equatable {
        public var rollups: [Fetch: RollupWidth]
        public var raw: Set<Fetch>
    }

    public static func plan(_ e: Expr, at times: [Int64]) -> ReadPlan {
        var rolled: [Fetch: RollupWidth] = [:]
        e.rollupCandidates(at: times, into: &rolled)
        let raw = e.fetches(besides: Set(rolled.keys))
        for f in raw { rolled[f] = nil }
        return ReadPlan(rollups: rolled, raw: raw)
    }

    /// The widest rollup whose buckets start at every window's two ends.
    static func rollupWidth(range: Int64, offset: Int64, times: [Int64]) -> RollupWidth? {
        guard !times.isEmpty else { return nil }
        return [RollupWidth.hour, .minute].first { w in
            range % w.micros == 0 && offset % w.micros == 0 && times.allSatisfy { $0 % w.micros == 0 }
        }
    }

    /// Whether rollups answer every window at `times` as the raw samples would. Counts,
    /// minima and maxima always do; a bucket's sum was added plainly (in the flush and the
    /// store's merge) where Prometheus adds the samples with compensation, so a window is
    /// answered from rollups only when the worst rounding of its buckets' sums, at most
    /// (n − 1)·u·n·max|v| for n samples, is below 1e-12 of the window's sum, and no sample
    /// comes near the largest double (where a sum saturates and can come back down). Sensor
    /// data passes; sums that cancel (`1, 1e100, 1, −1e100`) or overflow read the samples.
    public static func rollupsAnswerExactly(_ series: [SeriesRollup], times: [Int64], offset: Int64, range: Int64) -> Bool {
        series.allSatisfy { s in
            s.buckets.allSatisfy { $0.magnitude <= 1e300 }
                && RollupWindows(s, ends: times.map { $0 - offset }, range: range).allSatisfy { buckets, edge in
                    let total = WindowTotal(buckets, edge)
                    return total.rounding <= 1e-12 * Swift.abs(total.sum)
                }
        }
    }

    /// What one window's buckets and edge hold together: their aggregate, the sum of their
    /// sums added with compensation, and how far those plainly added bucket sums may be
    /// from the exact sum of the samples, (n − 1)·u·n·max|v| for a bucket of n.
    struct WindowTotal {
        var all: Bucket
        var sum: Double
        var rounding: Double

        init(_ buckets: ArraySlice<Bucket>, _ edge: Bucket?) {
            var all = Bucket(start: 0, min: 0, max: 0, sum: 0, count: 0)
            var sum = Kahan()
            var rounding = 0.0
            func add(_ b: Bucket) {
                all.merge(b)
                sum.add(b.sum)
                let n = Double(b.count)
                rounding += (n - 1) * (Double.ulpOfOne / 2) * n * b.magnitude
            }
            if let edge { add(edge) }
            for b in buckets { add(b) }
            (self.all, self.sum, self.rounding) = (all, sum.value, rounding)
        }
    }

    /// Each window `[end − range, end]` of one series' rollups, in the order of `ends`
    /// (ascending): the buckets that start in `[end − range, end)` and the edge at `end`.
    struct RollupWindows: Sequence, IteratorProtocol {
        let buckets: [Bucket]
        let edges: [Bucket]
        let ends: [Int64]
        let range: Int64
        var k = 0
        var lo = 0
        var hi = 0
        var edge = 0

        init(_ s: SeriesRollup, ends: [Int64], range: Int64) {
            (buckets, edges, self.ends, self.range) = (s.buckets, s.edges, ends, range)
        }

        mutating func next() -> (buckets: ArraySlice<Bucket>, edge: Bucket?)? {
            guard k < ends.count else { return nil }
            let end = ends[k]
            k += 1
            while hi < buckets.count && buckets[hi].start < end { hi += 1 }
            while lo < hi && buckets[lo].start < end - range { lo += 1 }
            while edge < edges.count && edges[edge].start < end { edge += 1 }
            return (buckets[lo..<hi], edge < edges.count && edges[edge].start == end ? edges[edge] : nil)
        }
    }
}

extension PromQL.Expr {
    /// The rollup functions' selectors rollups can answer at `times`, with their width.
    func rollupCandidates(at times: [Int64], into found: inout [PromQL.Fetch: RollupWidth]) {
        switch self {
        case .call(let f, let args):
            if let fetch = PromQL.rollupFetch(f, args),
                let w = PromQL.rollupWidth(range: fetch.span, offset: fetch.selector.offset, times: times)
            {
                found[fetch] = w
            }
            for a in args { a.rollupCandidates(at: times, into: &found) }
        case .aggregate(_, let e, let p, _):
            e.rollupCandidates(at: times, into: &found)
            p?.rollupCandidates(at: times, into: &found)
        case .binary(_, let l, let r, _):
            l.rollupCandidates(at: times, into: &found)
            r.rollupCandidates(at: times, into: &found)
        case .negate(let e):
            e.rollupCandidates(at: times, into: &found)
        case .number, .string, .vector, .matrix, .subquery:
            break
        }
    }
}

extension PromQL.Evaluator {
    /// A rollup function over each series' rollups (``PromQL/ReadPlan``): at every time, the
    /// buckets starting in `[end − range, end)` and the edge at `end` (`end` is the time
    /// less the offset), combined as Prometheus combines the samples: a compensated sum,
    /// the mean of that sum.
    func rollupFunction(_ f: PromQL.Function, _ input: [SeriesRollup], offset: Int64, range: Int64) throws(PromQL.BadData)
        -> [PromQL.Series]
    {
        try charge(series: input.count)
        var out: [PromQL.Series] = []
        out.reserveCapacity(input.count)
        let ends = times.map { $0 - offset }
        var visits = 0
        for s in input {
            var values: [Double?] = []
            values.reserveCapacity(times.count)
            for (buckets, edge) in PromQL.RollupWindows(s, ends: ends, range: range) {
                visits += buckets.count + 1
                if visits >= 1_000_000 {  // charged as it goes, as the samples' windows are
                    try budget.spend(visits: visits)
                    visits = 0
                }
                values.append(Self.combine(f, buckets, edge))
            }
            out.append(PromQL.Series(labels: Self.rangeFunctionLabels(f, PromQL.labels(of: s.series)), values: values))
        }
        try budget.spend(visits: visits)
        return try Self.distinct(out)
    }

    /// A rollup function's value over the buckets of one window and the edge at its end;
    /// nil when they hold no sample.
    static func combine(_ f: PromQL.Function, _ buckets: ArraySlice<Bucket>, _ edge: Bucket?) -> Double? {
        let total = PromQL.WindowTotal(buckets, edge)
        guard total.all.count > 0 else { return nil }
        switch f {
        case .countOverTime: return Double(total.all.count)
        case .presentOverTime: return 1
        case .minOverTime: return total.all.min
        case .maxOverTime: return total.all.max
        case .sumOverTime: return total.sum
        case .avgOverTime: return total.sum / Double(total.all.count)
        default: return nil
        }
    }
}
