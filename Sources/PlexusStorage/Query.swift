public import PlexusModel

/// Which series a query reads: one source of one organisation, optionally narrowed.
public struct SeriesSelector: Sendable, Hashable {
    public var orgID: Int64
    public var sourceID: String
    /// Metric names; nil means every metric of the source.
    public var metrics: [String]?
    /// Every tag here must be present with this value.
    public var tags: [Tag]
    /// Only points recorded in this session.
    public var sessionID: String?

    public init(orgID: Int64, sourceID: String, metrics: [String]? = nil, tags: [Tag] = [], sessionID: String? = nil) {
        self.orgID = orgID
        self.sourceID = sourceID
        self.metrics = metrics
        self.tags = tags
        self.sessionID = sessionID
    }
}

/// Half-open time range in Unix microseconds: `start <= t < end`.
public struct TimeRange: Sendable, Hashable {
    public var start: Int64
    public var end: Int64
    public init(start: Int64, end: Int64) {
        self.start = start
        self.end = end
    }
}

/// Aggregation bucket widths. 1m and 10m are served from the 1-minute rollup,
/// 1h and 1d from the 1-hour rollup, so long ranges never scan raw points.
public enum Resolution: String, Sendable, Hashable, CaseIterable {
    case minute = "1m"
    case tenMinutes = "10m"
    case hour = "1h"
    case day = "1d"

    public var micros: Int64 {
        switch self {
        case .minute: 60_000_000
        case .tenMinutes: 600_000_000
        case .hour: 3_600_000_000
        case .day: 86_400_000_000
        }
    }
}

public struct RawSeries: Sendable, Hashable {
    public var metric: String
    public var timestamps: [Int64]
    public var values: [PlexusValue]
    public init(metric: String, timestamps: [Int64] = [], values: [PlexusValue] = []) {
        self.metric = metric
        self.timestamps = timestamps
        self.values = values
    }
}

public struct RawResult: Sendable, Hashable {
    public var series: [RawSeries]
    public var truncated: Bool
    public init(series: [RawSeries], truncated: Bool) {
        self.series = series
        self.truncated = truncated
    }
}

public struct Bucket: Sendable, Hashable {
    /// Bucket start, Unix microseconds.
    public var start: Int64
    public var min: Double
    public var max: Double
    public var sum: Double
    public var count: Int64
    /// The mean of the points when `sum` could not hold their sum (it saturates at
    /// ±`Double.greatestFiniteMagnitude`): set by a store from the points themselves.
    public var mean: Double?
    public var average: Double { mean ?? (count == 0 ? 0 : sum / Double(count)) }
    public init(start: Int64, min: Double, max: Double, sum: Double, count: Int64) {
        self.start = start
        self.min = min
        self.max = max
        self.sum = sum
        self.count = count
    }

    /// The start of the bucket of `width` that holds `t`: floor division, so buckets
    /// before 1970 are aligned too.
    public static func start(of t: Int64, width: Int64) -> Int64 {
        let q = t / width
        return (t % width != 0 && t < 0 ? q - 1 : q) * width
    }

    /// The largest magnitude of the points: every one of them lies within ±this.
    public var magnitude: Double { Swift.max(Swift.abs(min), Swift.abs(max)) }

    /// Whether adding the points could have passed the largest double (so `sum` may have
    /// saturated and `sum / count` is not their mean): count × max|value| beyond it.
    public var sumMayHaveSaturated: Bool { count > 0 && magnitude > .greatestFiniteMagnitude / Double(count) }

    /// The mean of `values` added as Prometheus' `avg_over_time` does (v/n − mean/n), which
    /// stays finite for finite values where their sum would not.
    public static func runningMean(_ values: some Sequence<Double>) -> Double {
        var mean = 0.0
        var n = 0.0
        for v in values {
            n += 1
            mean += v / n - mean / n
        }
        return mean
    }

    /// Adds one value (the sum saturates, ``saturatingAdd(_:_:)``).
    public mutating func add(_ value: Double) {
        merge(Bucket(start: start, min: value, max: value, sum: value, count: 1))
    }

    /// Folds in another bucket's points (an empty one changes nothing).
    public mutating func merge(_ other: Bucket) {
        guard other.count > 0 else { return }
        mean = nil
        if count == 0 {
            (min, max) = (other.min, other.max)
        } else {
            min = Swift.min(min, other.min)
            max = Swift.max(max, other.max)
        }
        sum = Self.saturatingAdd(sum, other.sum)
        count += other.count
    }

    /// `a + b`, held at ±`Double.greatestFiniteMagnitude` instead of overflowing to ±inf,
    /// so a stored aggregate is always finite (`inf + -inf` would be NaN).
    public static func saturatingAdd(_ a: Double, _ b: Double) -> Double {
        let s = a + b
        if s.isFinite { return s }
        return s > 0 ? .greatestFiniteMagnitude : -.greatestFiniteMagnitude
    }
}

public struct AggregatedSeries: Sendable, Hashable {
    public var metric: String
    public var buckets: [Bucket]
    public init(metric: String, buckets: [Bucket] = []) {
        self.metric = metric
        self.buckets = buckets
    }
}

public struct AggregatedResult: Sendable, Hashable {
    public var series: [AggregatedSeries]
    public var truncated: Bool
    public init(series: [AggregatedSeries], truncated: Bool) {
        self.series = series
        self.truncated = truncated
    }
}

public struct LatestValue: Sendable, Hashable {
    public var metric: String
    public var timestamp: Int64
    public var value: PlexusValue
    public init(metric: String, timestamp: Int64, value: PlexusValue) {
        self.metric = metric
        self.timestamp = timestamp
        self.value = value
    }
}

/// One series' numeric points (``TelemetryStore/querySeries(_:range:limit:)``).
public struct SeriesPoints: Sendable, Hashable {
    public var series: SeriesIdentity
    public var timestamps: [Int64]
    public var values: [Double]

    public init(series: SeriesIdentity, timestamps: [Int64] = [], values: [Double] = []) {
        self.series = series
        self.timestamps = timestamps
        self.values = values
    }
}

public struct SeriesPointsResult: Sendable, Hashable {
    /// Series with points in the range, in the order of (metric, series).
    public var series: [SeriesPoints]
    public var truncated: Bool

    public init(series: [SeriesPoints], truncated: Bool) {
        self.series = series
        self.truncated = truncated
    }
}

/// The widths stores keep per-series rollups at (``TelemetryStore/querySeriesRollups(_:range:width:limit:)``).
public enum RollupWidth: Sendable, Hashable, CaseIterable {
    case minute
    case hour

    public var micros: Int64 {
        switch self {
        case .minute: Resolution.minute.micros
        case .hour: Resolution.hour.micros
        }
    }
}

extension Resolution {
    /// The rollup an aggregated query at this resolution reads: 1-minute for `1m` and
    /// `10m`, 1-hour for `1h` and `1d`.
    public var rollup: RollupWidth { self == .minute || self == .tenMinutes ? .minute : .hour }
}

/// One series' rollup buckets: each bucket aggregates the half-open `[start, start + width)`,
/// and `edges` aggregates apart the points exactly at a bucket's start. Together they
/// answer any closed range `[a, b]` whose ends are bucket starts exactly: the buckets from
/// `a` up to `b`, plus the edge at `b` (what PromQL 2.x's ranges are).
public struct SeriesRollup: Sendable, Hashable {
    public var series: SeriesIdentity
    /// In time order, one per bucket with points.
    public var buckets: [Bucket]
    /// In time order, one per bucket with points exactly at its start (`start` is that time).
    public var edges: [Bucket]

    public init(series: SeriesIdentity, buckets: [Bucket] = [], edges: [Bucket] = []) {
        self.series = series
        self.buckets = buckets
        self.edges = edges
    }
}

extension SeriesRollup {
    /// The rollup of points in time order: per bucket, all its points, and apart those
    /// exactly at its start: what a store keeps, but that a store may add decimal values
    /// exactly where this adds doubles in order (docs/storage.md, *Rollups*). The reference
    /// tests check rollups against.
    public static func buckets(timestamps: [Int64], values: [Double], width: RollupWidth) -> (buckets: [Bucket], edges: [Bucket]) {
        var buckets: [Bucket] = []
        var edges: [Bucket] = []
        for (t, v) in zip(timestamps, values) {
            let start = Bucket.start(of: t, width: width.micros)
            if buckets.last?.start != start { buckets.append(Bucket(start: start, min: v, max: v, sum: 0, count: 0)) }
            buckets[buckets.count - 1].add(v)
            guard t == start else { continue }
            if edges.last?.start != start { edges.append(Bucket(start: start, min: v, max: v, sum: 0, count: 0)) }
            edges[edges.count - 1].add(v)
        }
        return (buckets, edges)
    }
}

public struct SeriesRollupResult: Sendable, Hashable {
    /// Series with buckets in the range, in the order of (metric, series).
    public var series: [SeriesRollup]
    public var truncated: Bool
    /// False when some bucket in the range cannot say which of its points lie exactly at its
    /// start (written before the store kept edges): the raw points must answer instead.
    public var edgesKnown: Bool

    public init(series: [SeriesRollup], truncated: Bool, edgesKnown: Bool) {
        self.series = series
        self.truncated = truncated
        self.edgesKnown = edgesKnown
    }
}
