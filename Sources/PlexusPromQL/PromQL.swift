import PlexusModel
public import PlexusStorage

/// The part of PromQL Plexus answers (docs/prometheus.md), evaluated as Prometheus 2.x
/// does: vector and range selectors with label matchers and `offset`; the range functions
/// (`rate`, `irate`, `increase`, `delta`, `idelta`, `deriv`, `changes`, `resets`, the
/// `*_over_time` family), the common instant functions and `histogram_quantile`; the
/// aggregations `sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`, `topk`,
/// `bottomk` and `quantile` with `by`/`without`; arithmetic, comparison (with `bool`) and
/// set operators between vectors and scalars with `on`/`ignoring`. Anything else is
/// refused with a message that names it.
///
/// Series are labelled `__name__` (the metric), `source_id` (the source), their tags, and
/// `session_id` for points recorded in a session. Metric names that are not legacy
/// Prometheus names (`motor.rpm`) are written in the quoted form: `{"motor.rpm"}`.
public enum PromQL {
    /// Why a query was refused or could not be evaluated: Prometheus' `bad_data`.
    public struct BadData: Error, Sendable, Equatable {
        public var message: String
        public init(_ message: String) { self.message = message }
    }

    public struct Matcher: Sendable, Hashable {
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
    public struct Selector: Sendable, Hashable {
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

    /// A parsed expression (``parse(_:)``).
    public indirect enum Expr: Sendable, Equatable {
        case number(Double)
        /// A string literal: only as a function's argument (`label_replace`, `label_join`).
        case string(String)
        /// An instant vector selector.
        case vector(Selector)
        /// A range vector selector, `x[5m]`: only as a function's argument. Microseconds.
        case matrix(Selector, range: Int64)
        /// `expr[range:step] offset d`: the expression evaluated every `step` (aligned to
        /// multiples of it; nil: one minute, Prometheus' default evaluation interval) over
        /// the range, as a range vector: only as a function's argument. Microseconds.
        case subquery(Expr, range: Int64, step: Int64?, offset: Int64)
        case call(Function, [Expr])
        case aggregate(Aggregation, Expr, parameter: Expr?, grouping: Grouping)
        case binary(BinaryOp, Expr, Expr, Matching)
        case negate(Expr)

        public var type: ValueType {
            switch self {
            case .number: .scalar
            case .string: .string
            case .vector, .aggregate: .vector
            case .matrix, .subquery: .matrix
            case .call(let f, _): f.returns
            case .negate(let e): e.type
            case .binary(_, let l, let r, _): l.type == .scalar && r.type == .scalar ? .scalar : .vector
            }
        }

        /// The data the expression reads: each selector with how far back it looks.
        public var fetches: Set<Fetch> { fetches(besides: []) }

        /// The samples the expression reads when the range functions over the selectors in
        /// `rolled` are answered from rollups instead (``ReadPlan``).
        func fetches(besides rolled: Set<Fetch>) -> Set<Fetch> {
            switch self {
            case .number, .string: []
            case .vector(let s): [Fetch(selector: s, span: PromQL.lookback)]
            case .matrix(let s, let range): [Fetch(selector: s, span: range)]
            case .subquery(let inner, let range, _, let offset):
                // The inner expression runs at times up to `offset` earlier and `range` before
                // the first; never from rollups.
                Set(
                    inner.fetches.map { f in
                        Fetch(
                            selector: f.selector, span: f.span, shift: PromQL.saturating(f.shift, offset),
                            lead: PromQL.saturating(f.lead, range))
                    })
            case .call(let f, let args):
                if let fetch = PromQL.rollupFetch(f, args), rolled.contains(fetch) {
                    []
                } else {
                    args.reduce(into: []) { $0.formUnion($1.fetches(besides: rolled)) }
                }
            case .aggregate(_, let e, let p, _): e.fetches(besides: rolled).union(p?.fetches(besides: rolled) ?? [])
            case .binary(_, let l, let r, _): l.fetches(besides: rolled).union(r.fetches(besides: rolled))
            case .negate(let e): e.fetches(besides: rolled)
            }
        }
    }

    public enum ValueType: String, Sendable {
        case scalar, vector, string
        case matrix = "range vector"
    }

    /// A selector and the window of samples it needs before each evaluation time (after
    /// its offset): the lookback or a range, both ends included as in Prometheus 2.x.
    /// Inside subqueries the selector is evaluated at other times: up to `shift` earlier
    /// (their offsets) and from `lead` before the first evaluation time (their ranges).
    public struct Fetch: Sendable, Hashable {
        public var selector: Selector
        public var span: Int64
        public var shift: Int64
        public var lead: Int64

        public init(selector: Selector, span: Int64, shift: Int64 = 0, lead: Int64 = 0) {
            self.selector = selector
            self.span = span
            self.shift = shift
            self.lead = lead
        }
    }

    /// `by (labels)` or `without (labels)`; `by ()` groups everything into one.
    public struct Grouping: Sendable, Equatable {
        public var without: Bool
        public var labels: [String]
        public init(without: Bool = false, labels: [String] = []) {
            self.without = without
            self.labels = labels
        }
    }

    /// How a binary operator between two vectors matches their series, and `bool`.
    public struct Matching: Sendable, Equatable {
        /// One-to-one, or many-to-one (`group_left`: the left side is the many) and
        /// one-to-many (`group_right`).
        public enum Cardinality: Sendable, Equatable {
            case oneToOne, manyToOne, oneToMany
        }
        public var returnBool = false
        /// `on(labels)` when true, else `ignoring(labels)` (empty: every label but the name).
        public var on = false
        public var labels: [String] = []
        public var cardinality = Cardinality.oneToOne
        /// `group_left(labels)`: the labels copied from the "one" side into the result.
        public var include: [String] = []

        public init(
            returnBool: Bool = false, on: Bool = false, labels: [String] = [], cardinality: Cardinality = .oneToOne,
            include: [String] = []
        ) {
            self.returnBool = returnBool
            self.on = on
            self.labels = labels
            self.cardinality = cardinality
            self.include = include
        }
    }

    public enum BinaryOp: String, Sendable, CaseIterable {
        case add = "+"
        case sub = "-"
        case mul = "*"
        case div = "/"
        case mod = "%"
        case pow = "^"
        case atan2
        case eq = "=="
        case ne = "!="
        case gt = ">"
        case lt = "<"
        case ge = ">="
        case le = "<="
        case and
        case or
        case unless

        /// Binding strength, as in Prometheus: `or` < `and unless` < comparisons < `+ -` < `* / % atan2` < `^`.
        var precedence: Int {
            switch self {
            case .or: 1
            case .and, .unless: 2
            case .eq, .ne, .gt, .lt, .ge, .le: 3
            case .add, .sub: 4
            case .mul, .div, .mod, .atan2: 5
            case .pow: 6
            }
        }
        var isComparison: Bool { precedence == 3 }
        var isSetOperator: Bool { self == .and || self == .or || self == .unless }
    }

    public enum Aggregation: String, Sendable, CaseIterable {
        case sum, avg, min, max, count, group, stddev, stdvar, topk, bottomk, quantile
        var hasParameter: Bool { self == .topk || self == .bottomk || self == .quantile }
    }

    /// The functions Plexus evaluates, with their argument types.
    public enum Function: String, Sendable, CaseIterable {
        case rate, irate, increase, delta, idelta, deriv, changes, resets
        case avgOverTime = "avg_over_time"
        case minOverTime = "min_over_time"
        case maxOverTime = "max_over_time"
        case sumOverTime = "sum_over_time"
        case countOverTime = "count_over_time"
        case lastOverTime = "last_over_time"
        case stddevOverTime = "stddev_over_time"
        case stdvarOverTime = "stdvar_over_time"
        case presentOverTime = "present_over_time"
        case quantileOverTime = "quantile_over_time"
        case abs, ceil, floor, exp, ln, log2, log10, sqrt, sgn, round, clamp
        case clampMin = "clamp_min"
        case clampMax = "clamp_max"
        case histogramQuantile = "histogram_quantile"
        case scalar, vector, time, sort
        case sortDesc = "sort_desc"
        case labelReplace = "label_replace"
        case labelJoin = "label_join"
        case absent
        case absentOverTime = "absent_over_time"
        case predictLinear = "predict_linear"
        case timestamp
        case minute, hour, month, year
        case dayOfMonth = "day_of_month"
        case dayOfWeek = "day_of_week"
        case dayOfYear = "day_of_year"
        case daysInMonth = "days_in_month"

        /// Argument types; the arguments after `required` may be left out; `label_join` takes
        /// any number more of its last type.
        var arguments: (types: [ValueType], required: Int) {
            switch self {
            case .labelReplace: ([.vector, .string, .string, .string, .string], 5)
            case .labelJoin: ([.vector, .string, .string, .string], 3)
            case .absent, .timestamp: ([.vector], 1)
            case .absentOverTime: ([.matrix], 1)
            case .predictLinear: ([.matrix, .scalar], 2)
            case .minute, .hour, .month, .year, .dayOfMonth, .dayOfWeek, .dayOfYear, .daysInMonth: ([.vector], 0)
            case .rate, .irate, .increase, .delta, .idelta, .deriv, .changes, .resets, .avgOverTime, .minOverTime, .maxOverTime,
                .sumOverTime, .countOverTime, .lastOverTime, .stddevOverTime, .stdvarOverTime, .presentOverTime:
                ([.matrix], 1)
            case .quantileOverTime: ([.scalar, .matrix], 2)
            case .abs, .ceil, .floor, .exp, .ln, .log2, .log10, .sqrt, .sgn, .scalar, .sort, .sortDesc: ([.vector], 1)
            case .round: ([.vector, .scalar], 1)
            case .clamp: ([.vector, .scalar, .scalar], 3)
            case .clampMin, .clampMax: ([.vector, .scalar], 2)
            case .histogramQuantile: ([.scalar, .vector], 2)
            case .vector: ([.scalar], 1)
            case .time: ([], 0)
            }
        }

        var returns: ValueType { self == .scalar || self == .time ? .scalar : .vector }
        var isVariadic: Bool { self == .labelJoin }
    }

    /// `a + b`, held at Int64's ends instead of trapping (the server refuses what is out of range).
    static func saturating(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }

    /// How far back an instant selector looks for a sample (Prometheus' default, 5 m); a
    /// sample exactly that old still counts, as in Prometheus 2.x.
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

    /// A regular expression of a query. Prometheus' engine (RE2) runs in linear time;
    /// Swift's backtracks, so a repeated group that itself repeats or alternates (`(a+)+`,
    /// `(a|aa)*`), which can take exponential time, is refused, as is a pattern over 4 KiB.
    public static func regex(_ pattern: String) throws(BadData) -> Regex<AnyRegexOutput> {
        guard pattern.utf8.count <= 4_096 else { throw BadData("regular expression longer than 4096 bytes") }
        guard !hasNestedRepetition(Array(pattern.utf8)) else {
            throw BadData(
                "unsupported regular expression: a repeated group that repeats or alternates inside (like (a+)+) can take exponential time here"
            )
        }
        do {
            return try Regex(pattern)
        } catch {
            throw BadData("invalid regular expression \(pattern.prefix(80).debugDescription)")
        }
    }

    /// Whether a group followed by `*`, `+` or `{n,}`/`{n,m}` (m > 1) contains a repetition
    /// or an alternation: the shapes that make a backtracking engine exponential.
    static func hasNestedRepetition(_ p: [UInt8]) -> Bool {
        var stack: [Bool] = []  // per open group: whether it contains a repetition or `|`
        var i = 0
        func repeats(at j: Int) -> (Bool, Int) {  // a repetition operator at j, and its length
            guard j < p.count else { return (false, 0) }
            switch p[j] {
            case UInt8(ascii: "*"), UInt8(ascii: "+"): return (true, 1)
            case UInt8(ascii: "?"): return (false, 1)
            case UInt8(ascii: "{"):
                guard let close = p[j...].firstIndex(of: UInt8(ascii: "}")) else { return (false, 0) }
                let body = String(decoding: p[(j + 1)..<close], as: UTF8.self).split(separator: ",", omittingEmptySubsequences: false)
                guard (1...2).contains(body.count), body.allSatisfy({ $0.isEmpty || Int($0) != nil }) else { return (false, 0) }
                let many = body.count == 2 ? (body[1].isEmpty || Int(body[1])! > 1) : Int(body[0]) ?? 0 > 1
                return (many, close - j + 1)
            default: return (false, 0)
            }
        }
        while i < p.count {
            switch p[i] {
            case UInt8(ascii: "\\"):
                i += 2  // an escaped character, then whatever repeats it (below)
            case UInt8(ascii: "["):
                var j = i + 1
                if j < p.count, p[j] == UInt8(ascii: "^") { j += 1 }
                if j < p.count, p[j] == UInt8(ascii: "]") { j += 1 }
                while j < p.count, p[j] != UInt8(ascii: "]") { j += p[j] == UInt8(ascii: "\\") ? 2 : 1 }
                i = j + 1
            case UInt8(ascii: "("):
                stack.append(false)
                i += 1
                if i < p.count, p[i] == UInt8(ascii: "?") {  // (?:…), (?P<name>…), (?i)
                    while i < p.count, p[i] != UInt8(ascii: ":"), p[i] != UInt8(ascii: ">"), p[i] != UInt8(ascii: ")") { i += 1 }
                    if i < p.count, p[i] != UInt8(ascii: ")") { i += 1 }
                }
                continue
            case UInt8(ascii: ")"):
                let inner = stack.popLast() ?? false
                i += 1
                let (r, n) = repeats(at: i)
                if r && inner { return true }
                if r || inner, !stack.isEmpty { stack[stack.count - 1] = true }
                i += n
                continue
            case UInt8(ascii: "|"):
                if !stack.isEmpty { stack[stack.count - 1] = true }
                i += 1
            default:
                i += 1
            }
            let (r, n) = repeats(at: i)
            if r, !stack.isEmpty { stack[stack.count - 1] = true }
            i += n
        }
        return false
    }

    /// The series of `all` that `selector` selects (numeric series only).
    public static func select(_ selector: Selector, from all: [SeriesIdentity]) throws(BadData) -> [SeriesIdentity] {
        let regexes = try selector.matchers.map { (m) throws(BadData) in
            m.op == .matches || m.op == .notMatches ? try regex(m.value) : nil
        }
        return all.filter { s in
            guard s.numeric else { return false }
            let labels = labels(of: s)
            for (k, m) in selector.matchers.enumerated() where !m.matches(labels[m.label] ?? "", regexes[k]) { return false }
            return true
        }
    }

    /// One series' values at each evaluation time `times` (microseconds): the newest
    /// sample in [t − offset − lookback, t − offset]; nil where there is none.
    public static func evaluate(_ points: SeriesPoints, at times: [Int64], offset: Int64) -> [Double?] {
        newest(points.timestamps, at: times, offset: offset).map { $0.map { points.values[$0] } }
    }

    /// The index of the sample an instant selector takes at each time (Prometheus' lookback,
    /// both ends included), or nil.
    static func newest(_ timestamps: [Int64], at times: [Int64], offset: Int64) -> [Int?] {
        var out: [Int?] = []
        out.reserveCapacity(times.count)
        var k = 0  // first sample after the current time
        for t in times {
            let at = t - offset
            while k < timestamps.count && timestamps[k] <= at { k += 1 }
            out.append(k > 0 && timestamps[k - 1] >= at - lookback ? k - 1 : nil)
        }
        return out
    }

    /// Evaluation times of a range query, `start` to `end` by `step` (microseconds).
    public static func steps(start: Int64, end: Int64, step: Int64) throws(BadData) -> [Int64] {
        guard step > 0 else { throw BadData("zero or negative query resolution step widths are not accepted. Try a positive integer") }
        guard end >= start else { throw BadData("end timestamp must not be before start time") }
        let (span, overflow) = end.subtractingReportingOverflow(start)
        guard !overflow, span / step <= Int64(maxSteps) else {
            throw BadData(
                "exceeded maximum resolution of \(maxSteps) points per timeseries. Try decreasing the query resolution (?step=XX)")
        }
        return Array(stride(from: start, through: end, by: Int(step)))
    }
}
