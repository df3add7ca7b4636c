import PlexusModel

/// How long one kind of data is kept.
public enum RetentionPeriod: Sendable, Hashable, Codable, CustomStringConvertible {
    case forever
    /// Microseconds, at least ``RetentionPolicy/minimum``.
    case micros(Int64)

    /// `forever`, or a duration as `--retention` takes it (`30d`, `12h`, `90m`).
    public init?(_ text: String) {
        if text == "forever" || text == "0" {
            self = .forever
        } else if let us = Timestamp.duration(text) {
            self = .micros(us)
        } else {
            return nil
        }
    }

    /// `forever`, or the largest whole unit (`30d`, `36h`).
    public var description: String {
        guard case .micros(let us) = self else { return "forever" }
        for (unit, scale) in [("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000)] as [(String, Int64)]
        where us % scale == 0 {
            return "\(us / scale)\(unit)"
        }
        return "\(us / 1_000_000)s"
    }

    /// Data older than this at `now` is no longer kept; nil when kept forever.
    public func cutoff(at now: Int64) -> Int64? {
        guard case .micros(let us) = self else { return nil }
        return now.subtractingReportingOverflow(us).partialValue
    }

    /// Whether this keeps data at least as long as `other`.
    public func keepsAtLeast(_ other: RetentionPeriod) -> Bool {
        switch (self, other) {
        case (.forever, _): true
        case (.micros, .forever): false
        case (.micros(let a), .micros(let b)): a >= b
        }
    }
}

/// How long an organisation's data is kept: its raw points, and its minute and hour
/// rollups (what aggregated queries read), which may outlive the points. Points recorded
/// in a pinned session are kept whatever the policy.
public struct RetentionPolicy: Sendable, Hashable, Codable {
    public var raw: RetentionPeriod
    public var rollups: RetentionPeriod

    public init(raw: RetentionPeriod = .forever, rollups: RetentionPeriod = .forever) {
        self.raw = raw
        self.rollups = rollups
    }

    /// The shortest period a policy may name: one hour, as InfluxDB's shortest retention.
    public static let minimum: Int64 = 3_600_000_000

    /// Why the policy cannot be used, or nil. Rollups must be kept at least as long as
    /// the points they summarise, or aggregated queries over data that is still there
    /// would come back empty.
    public var problem: String? { Self.problem(raw: raw, rollups: rollups) }

    /// The rules for the parts named (nil: not set here): each at least ``minimum``, and
    /// the rollups at least the points when both are named.
    static func problem(raw: RetentionPeriod?, rollups: RetentionPeriod?) -> String? {
        for (name, period) in [("retention", raw), ("rollup retention", rollups)] {
            if case .micros(let us) = period, us < minimum { return "\(name) must be at least 1h (or forever)" }
        }
        if let raw, let rollups, !rollups.keepsAtLeast(raw) {
            return "rollup retention (\(rollups)) must be at least the retention (\(raw))"
        }
        return nil
    }

    /// The policy with an organisation's overrides applied. Rollups are kept at least as
    /// long as the points (an organisation keeping its points forever under a server
    /// default of 90 days of rollups keeps its rollups forever too).
    public func overridden(by o: RetentionOverride) -> RetentionPolicy {
        let raw = o.raw ?? raw
        let rollups = o.rollups ?? rollups
        return RetentionPolicy(raw: raw, rollups: rollups.keepsAtLeast(raw) ? rollups : raw)
    }
}

/// An organisation's own retention; nil keeps the server's default for that part.
public struct RetentionOverride: Sendable, Hashable, Codable {
    public var raw: RetentionPeriod?
    public var rollups: RetentionPeriod?

    /// Why the override cannot be set, or nil: ``RetentionPolicy/problem``'s rules for the
    /// parts it names (a part left to the server's default is checked when applied:
    /// ``RetentionPolicy/overridden(by:)`` keeps rollups at least as long as the points).
    public var problem: String? { RetentionPolicy.problem(raw: raw, rollups: rollups) }

    public init(raw: RetentionPeriod? = nil, rollups: RetentionPeriod? = nil) {
        self.raw = raw
        self.rollups = rollups
    }
}

/// What one retention run removed.
public struct RetentionSweep: Sendable, Hashable {
    /// Raw points, and the storage blocks (chunks, rows) that held them.
    public var points: Int64 = 0
    public var blocks: Int64 = 0
    /// Minute and hour rollup buckets.
    public var rollupBuckets: Int64 = 0

    public init(points: Int64 = 0, blocks: Int64 = 0, rollupBuckets: Int64 = 0) {
        self.points = points
        self.blocks = blocks
        self.rollupBuckets = rollupBuckets
    }
}
