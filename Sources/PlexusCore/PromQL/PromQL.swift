import PlexusModel
public import PlexusStorage

/// The part of PromQL Plexus answers so far (docs/prometheus.md): instant vector selectors
/// with label matchers and `offset`, evaluated exactly as Prometheus does (the newest
/// sample within the 5-minute lookback before each evaluation time), and the
/// `*_over_time` functions of a range of them. Other functions, operators and aggregations
/// are refused with a message that says so.
///
/// Series are labelled `__name__` (the metric), `source_id` (the source), their tags, and
/// `session_id` for points recorded in a session. Metric names that are not legacy
/// Prometheus names (`motor.rpm`) are written in the quoted form: `{"motor.rpm"}`.
public enum PromQL {
    /// Why a query was refused: Prometheus' `bad_data`.
    public struct BadData: Error, Sendable, Equatable {
        public var message: String
        public init(_ message: String) { self.message = message }
    }

    public struct Matcher: Sendable, Equatable {
        public enum Op: String, Sendable {
            case equal = "="
            case notEqual = "!="
            case matches = "=~"
            case notMatches = "!~"
        }
        public var label: String
        public var op: Op
        public var value: String

        public init(_ label: String, _ op: Op, _ value: String) {
            self.label = label
            self.op = op
            self.value = value
        }

        /// Whether `actual` (`""` for a missing label) satisfies the matcher; regular
        /// expressions are anchored at both ends, as in Prometheus.
        func matches(_ actual: String, _ regex: Regex<AnyRegexOutput>?) -> Bool {
            switch op {
            case .equal: actual == value
            case .notEqual: actual != value
            case .matches: (try? regex?.wholeMatch(in: actual)) != nil
            case .notMatches: (try? regex?.wholeMatch(in: actual)) == nil
            }
        }
    }

    /// `name{matchers} offset d`.
    public struct Selector: Sendable, Equatable {
        public var matchers: [Matcher]
        /// Microseconds; evaluation looks this far back.
        public var offset: Int64

        public init(matchers: [Matcher], offset: Int64 = 0) {
            self.matchers = matchers
            self.offset = offset
        }

        /// The metric name, when a matcher pins it.
        public var metricName: String? { matchers.first { $0.label == "__name__" && $0.op == .equal }?.value }
    }

    /// A query: an instant vector selector, or a `<aggregation>_over_time` of a range of it.
    public struct Query: Sendable, Equatable {
        public var selector: Selector
        /// `avg_over_time(x[5m])` and the like; nil for a plain selector.
        public var function: OverTime?
        /// The range of the range selector, microseconds (with `function` only).
        public var range: Int64

        public init(selector: Selector, function: OverTime? = nil, range: Int64 = 0) {
            self.selector = selector
            self.function = function
            self.range = range
        }

        /// How far before an evaluation time (after the offset) samples can count, and
        /// whether that end is included: a selector's lookback excludes it, a range includes it.
        public var window: (span: Int64, inclusive: Bool) { function == nil ? (PromQL.lookback, false) : (range, true) }
    }

    /// The `*_over_time` functions: one value per series from the samples in its range.
    public enum OverTime: String, Sendable, CaseIterable {
        case avg = "avg_over_time"
        case min = "min_over_time"
        case max = "max_over_time"
        case sum = "sum_over_time"
        case count = "count_over_time"

        func apply(_ v: ArraySlice<Double>) -> Double {
            switch self {
            case .avg:
                // Prometheus' running mean, which stays finite where a plain sum would overflow.
                var mean = 0.0
                for (k, x) in v.enumerated() { mean += (x - mean) / Double(k + 1) }
                return mean
            case .min: return v.min()!
            case .max: return v.max()!
            case .sum: return v.reduce(0, +)
            case .count: return Double(v.count)
            }
        }
    }

    /// The labels of a query's result for a series: a function drops the metric name, as in Prometheus.
    public static func labels(of s: SeriesIdentity, for query: Query) -> [String: String] {
        var l = labels(of: s)
        if query.function != nil { l["__name__"] = nil }
        return l
    }

    /// One series' values of `query` at each evaluation time (microseconds).
    public static func evaluate(_ points: SeriesPoints, _ query: Query, at times: [Int64]) -> [Double?] {
        guard let function = query.function else { return evaluate(points, at: times, offset: query.selector.offset) }
        var out: [Double?] = []
        out.reserveCapacity(times.count)
        var lo = 0
        var hi = 0
        let ts = points.timestamps
        for t in times {
            let at = t - query.selector.offset
            while hi < ts.count && ts[hi] <= at { hi += 1 }
            while lo < hi && ts[lo] < at - query.range { lo += 1 }
            out.append(lo < hi ? function.apply(points.values[lo..<hi]) : nil)
        }
        return out
    }

    /// How far back an instant selector looks for a sample (Prometheus' default, 5 m).
    public static let lookback: Int64 = 300_000_000
    /// The most evaluation steps a range query may have (Prometheus' limit).
    public static let maxSteps = 11_000

    /// The labels of a stored series.
    public static func labels(of s: SeriesIdentity) -> [String: String] {
        var out: [String: String] = ["__name__": s.metric, "source_id": s.sourceID]
        for t in s.tags where t.key != "__name__" && t.key != "source_id" { out[t.key] = t.value }
        if let session = s.sessionID { out["session_id"] = session }
        return out
    }

    /// The series of `all` that `selector` selects (numeric series only).
    public static func select(_ selector: Selector, from all: [SeriesIdentity]) throws(BadData) -> [SeriesIdentity] {
        var regexes: [Regex<AnyRegexOutput>?] = []
        for m in selector.matchers {
            guard m.op == .matches || m.op == .notMatches else {
                regexes.append(nil)
                continue
            }
            do {
                regexes.append(try Regex(m.value))
            } catch {
                throw BadData("invalid regular expression in matcher for \(m.label)")
            }
        }
        return all.filter { s in
            guard s.numeric else { return false }
            let labels = labels(of: s)
            for (k, m) in selector.matchers.enumerated() where !m.matches(labels[m.label] ?? "", regexes[k]) { return false }
            return true
        }
    }

    /// One series' values at each evaluation time `times` (microseconds): the newest
    /// sample in (t − offset − lookback, t − offset]; nil where there is none.
    public static func evaluate(_ points: SeriesPoints, at times: [Int64], offset: Int64) -> [Double?] {
        var out: [Double?] = []
        out.reserveCapacity(times.count)
        var k = 0  // first sample after the current time
        for t in times {
            let at = t - offset
            while k < points.timestamps.count && points.timestamps[k] <= at { k += 1 }
            if k > 0, points.timestamps[k - 1] > at - lookback {
                out.append(points.values[k - 1])
            } else {
                out.append(nil)
            }
        }
        return out
    }

    /// Evaluation times of a range query, `start` to `end` by `step` (microseconds).
    public static func steps(start: Int64, end: Int64, step: Int64) throws(BadData) -> [Int64] {
        guard step > 0 else { throw BadData("zero or negative query resolution step widths are not accepted. Try a positive integer") }
        guard end >= start else { throw BadData("end timestamp must not be before start time") }
        let (span, overflow) = end.subtractingReportingOverflow(start)
        guard !overflow, span / step < Int64(maxSteps) else {
            throw BadData(
                "exceeded maximum resolution of \(maxSteps) points per timeseries. Try decreasing the query resolution (?step=XX)")
        }
        return Array(stride(from: start, through: end, by: Int(step)))
    }
}
