import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PlexusCore
import PlexusModel
import PlexusPromQL
import PlexusStorage

/// A Prometheus-compatible HTTP API for reading (docs/prometheus.md), so that Grafana's
/// Prometheus data source, `promtool` and other Prometheus clients read Plexus: `query`,
/// `query_range`, `series`, `labels`, `label/<name>/values`, `metadata`,
/// `status/buildinfo`, GET or POST (form), with Prometheus' envelopes. The key (bearer or
/// basic auth) needs the read scope and decides the organisation. The query language is
/// ``PromQL``'s subset.
struct PrometheusQueryRoutes {
    let state: ServerState

    /// The most series one query may select.
    static let maxSeries = 10_000
    /// The most samples one query may read from the store.
    static let maxSamples = 5_000_000

    func register(_ router: Router<PlexusRequestContext>) {
        let api = router.group("api/v1").add(middleware: ReplyEnvelope(envelope: .prometheus))
            .add(middleware: CollectorKey(auth: state.auth, scope: .read))
        for method in [HTTPRequest.Method.get, .post] {
            api.on("query", method: method) { request, context in try await query(try await Params(request), context.caller) }
            api.on("query_range", method: method) { request, context in try await queryRange(try await Params(request), context.caller) }
            api.on("series", method: method) { request, context in try await series(try await Params(request), context.caller) }
            api.on("labels", method: method) { request, context in try await labels(try await Params(request), context.caller) }
        }
        api.get("label/:name/values") { request, context in
            try await labelValues(try await Params(request), context.caller, name: context.parameters.require("name"))
        }
        // Plexus keeps no exemplars, recording or alerting rules, and no metric metadata
        // (types and help texts): the empty answers Prometheus gives when there are none,
        // which Grafana's data source asks for and expects.
        for method in [HTTPRequest.Method.get, .post] {
            api.on("query_exemplars", method: method) { request, _ in
                _ = try (try await Params(request)).query()
                return Self.success { $0.raw("[]") }
            }
        }
        api.get("rules") { _, _ in Self.success { $0.raw("{\"groups\":[]}") } }
        api.get("alerts") { _, _ in Self.success { $0.raw("{\"alerts\":[]}") } }
        api.get("metadata") { _, _ in Self.success { $0.raw("{}") } }
        api.get("status/buildinfo") { _, _ in
            Self.success { w in
                w.raw(
                    "{\"version\":\"2.42.0\",\"revision\":\"plexus\",\"branch\":\"\",\"buildUser\":\"\",\"buildDate\":\"\",\"goVersion\":\"\",\"application\":\"plexus\",\"plexusVersion\":"
                )
                w.string(state.config.version)
                w.raw("}")
            }
        }
    }

    /// The parameters of a request: its query string, then a form body (POST).
    struct Params {
        var pairs: [(key: String, value: String)]

        init(_ request: Request) async throws {
            pairs = QueryString(request).pairs
            if request.method == .post {
                let body = try await request.collectBody(upTo: 1 << 20)
                pairs += QueryString(String(buffer: body)).pairs
            }
        }

        func get(_ key: String) -> String? { pairs.first { $0.key == key && !$0.value.isEmpty }?.value }
        func all(_ key: String) -> [String] { pairs.filter { $0.key == key }.map(\.value) }

        /// A time: Unix seconds (with a fraction) or RFC 3339, to the millisecond as
        /// Prometheus takes it (a fraction is rounded to whole milliseconds).
        func time(_ key: String, default fallback: Int64? = nil) throws -> Int64 {
            guard let text = get(key) else {
                if let fallback { return fallback }
                throw PromQL.BadData("missing parameter \(key)")
            }
            let seconds: Double
            if let s = Double(text), s.isFinite {
                seconds = s
            } else {
                let f = ISO8601DateFormatter()
                f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                let g = ISO8601DateFormatter()
                guard let date = f.date(from: text) ?? g.date(from: text) else {
                    throw PromQL.BadData("invalid parameter \(key): cannot parse \(text.prefix(40).debugDescription) to a valid timestamp")
                }
                seconds = date.timeIntervalSince1970
            }
            // Checked as a Double first: converting one past Int64's range would trap.
            let ms = (seconds * 1_000).rounded()
            guard ms.isFinite, abs(ms) < 9.2e15, Timestamp.isValid(Int64(ms) * 1_000) else {
                throw PromQL.BadData("\(key) " + Timestamp.rangeMessage)
            }
            return Int64(ms) * 1_000
        }

        /// A step: seconds (with a fraction) or a duration (`15s`), in whole milliseconds.
        func step() throws -> Int64 {
            guard let text = get("step") else { throw PromQL.BadData("missing parameter step") }
            if let seconds = Double(text), seconds.isFinite, abs(seconds) < 1e12 { return Int64((seconds * 1_000).rounded()) * 1_000 }
            guard let d = PromQL.duration(text) else { throw PromQL.BadData("invalid parameter step") }
            return d
        }

        func query() throws -> PromQL.Expr {
            guard let q = get("query") else { throw PromQL.BadData("missing parameter query") }
            return try PromQL.parse(q)
        }
    }

    // MARK: Queries

    func query(_ p: Params, _ principal: Principal) async throws -> Response {
        let t = try p.time("time", default: state.config.now())
        let q = try p.query()
        if case .matrix(let selector, let range) = q { return try await rawSamples(selector, range: range, principal, at: t) }
        let result = try await evaluate(q, principal, at: [t])
        switch result {
        case .scalar(let v):
            return Self.success { w in
                w.raw("{\"resultType\":\"scalar\",\"result\":")
                Self.sample(t, v[0], &w)
                w.raw("}")
            }
        case .vector(let series):
            var vector = series.compactMap { s in s.values[0].map { (s.labels, $0) } }
            switch Self.outermost(q) {
            case .descending: vector.sort { $0.1 > $1.1 || ($0.1.isNaN == false && $1.1.isNaN) }
            case .ascending: vector.sort { $0.1 < $1.1 || ($0.1.isNaN == false && $1.1.isNaN) }
            case .labels: vector.sort { Self.labelOrder($0.0, $1.0) }
            }
            return Self.success { w in
                w.raw("{\"resultType\":\"vector\",\"result\":[")
                w.list(vector) { w, item in
                    Self.metric(item.0, &w)
                    w.raw(",\"value\":")
                    Self.sample(t, item.1, &w)
                    w.raw("}")
                }
                w.raw("]}")
            }
        }
    }

    func queryRange(_ p: Params, _ principal: Principal) async throws -> Response {
        let start = try p.time("start")
        let end = try p.time("end")
        let times = try PromQL.steps(start: start, end: end, step: try p.step())
        let q = try p.query()
        guard q.type != .matrix else {
            throw PromQL.BadData("invalid expression type \"range vector\" for range query, must be Scalar or instant Vector")
        }
        let matrix: [([String: String], [(Int64, Double)])]
        switch try await evaluate(q, principal, at: times) {
        case .scalar(let v):
            matrix = [([:], Array(zip(times, v)))]
        case .vector(let series):
            matrix = series.compactMap { s in
                let values = zip(times, s.values).compactMap { t, v in v.map { (t, $0) } }
                return values.isEmpty ? nil : (s.labels, values)
            }.sorted { Self.labelOrder($0.0, $1.0) }
        }
        return Self.matrix(matrix)
    }

    static func matrix(_ matrix: [([String: String], [(Int64, Double)])]) -> Response {
        success { w in
            w.raw("{\"resultType\":\"matrix\",\"result\":[")
            w.list(matrix) { w, item in
                metric(item.0, &w)
                w.raw(",\"values\":[")
                w.list(item.1) { w, tv in sample(tv.0, tv.1, &w) }
                w.raw("]}")
            }
            w.raw("]}")
        }
    }

    /// An instant query of a range vector, `x[5m]`: every sample in [t − offset − range,
    /// t − offset] at its own time, as Prometheus answers it (a matrix).
    func rawSamples(_ selector: PromQL.Selector, range: Int64, _ principal: Principal, at t: Int64) async throws -> Response {
        let fetch = PromQL.Fetch(selector: selector, span: range)
        let all = try await state.store.seriesIdentities(orgID: principal.orgID)
        let data = try await samples(fetch, all, principal, from: t, to: t, budget: Self.maxSamples)
        let matrix = data.map { s in
            (PromQL.labels(of: s.series), Array(zip(s.timestamps, s.values)))
        }.filter { !$0.1.isEmpty }.sorted { Self.labelOrder($0.0, $1.0) }
        return Self.matrix(matrix)
    }

    /// How an instant query's vector is ordered: by value for `sort`, `sort_desc`, `topk`
    /// and `bottomk` at the top, as Prometheus returns them, else by labels.
    enum Order { case labels, ascending, descending }

    static func outermost(_ e: PromQL.Expr) -> Order {
        switch e {
        case .call(.sort, _), .aggregate(.bottomk, _, _, _): .ascending
        case .call(.sortDesc, _), .aggregate(.topk, _, _, _): .descending
        default: .labels
        }
    }

    static func labelOrder(_ a: [String: String], _ b: [String: String]) -> Bool {
        let x = a.sorted { $0.key < $1.key }
        let y = b.sorted { $0.key < $1.key }
        for (l, r) in zip(x, y) where l != r { return l.key != r.key ? l.key < r.key : l.value < r.value }
        return x.count < y.count
    }

    /// Reads what the expression's selectors need, from rollups where they answer exactly
    /// (``PromQL/ReadPlan``), then evaluates it at `times`.
    func evaluate(_ q: PromQL.Expr, _ principal: Principal, at times: [Int64]) async throws -> PromQL.Value {
        let plan = PromQL.plan(q, at: times)
        var budget = Self.maxSamples
        // The organisation's series, listed once for every selector of the query.
        let all = q.fetches.isEmpty ? [] : try await state.store.seriesIdentities(orgID: principal.orgID)
        var rollups: [PromQL.Fetch: [SeriesRollup]] = [:]
        var raw = plan.raw
        for (fetch, width) in plan.rollups {
            let read = try await self.rollups(fetch, width, all, principal, from: times.first!, to: times.last!, budget: budget)
            if let read,
                PromQL.rollupsAnswerExactly(read, times: times, offset: fetch.selector.offset, range: fetch.span)
            {
                budget -= read.reduce(0) { $0 + $1.buckets.count }  // an edge is in its bucket's row
                rollups[fetch] = read
            } else {
                raw.insert(fetch)
            }
        }
        ServerMetrics.promqlSelectorReads(from: "rollups", count: rollups.count)
        ServerMetrics.promqlSelectorReads(from: "samples", count: raw.count)
        var data: [PromQL.Fetch: [SeriesPoints]] = [:]
        for fetch in raw {
            let points = try await samples(fetch, all, principal, from: times.first!, to: times.last!, budget: budget)
            budget -= points.reduce(0) { $0 + $1.timestamps.count }
            data[fetch] = points
        }
        return try PromQL.Evaluator(times: times, data: data, rollups: rollups).evaluate(q)
    }

    /// The points of every series a selector selects that can count for evaluation times
    /// in [from, to]: from one lookback (or the range) before, shifted by the offset.
    func samples(_ fetch: PromQL.Fetch, _ all: [SeriesIdentity], _ principal: Principal, from: Int64, to: Int64, budget: Int)
        async throws -> [SeriesPoints]
    {
        guard let range = try Self.window(fetch, from: from, to: to) else { return [] }
        let (selectors, wanted) = try Self.storeSelectors(fetch, all, principal)
        var out: [SeriesPoints] = []
        var left = budget
        for selector in selectors {
            let r = try await state.store.querySeries(selector, range: range, limit: max(0, left))
            guard !r.truncated else { throw Self.tooManySamples }
            let kept = r.series.filter { wanted.contains($0.series) }
            left -= kept.reduce(0) { $0 + $1.timestamps.count }
            out += kept
        }
        return out
    }

    /// The rollups of every series a selector selects for evaluation times in [from, to]:
    /// the buckets starting in the same window as ``samples(_:_:_:from:to:budget:)``'s, in
    /// one read; nil when some bucket there predates edges (``SeriesRollupResult/edgesKnown``).
    func rollups(
        _ fetch: PromQL.Fetch, _ width: RollupWidth, _ all: [SeriesIdentity], _ principal: Principal, from: Int64, to: Int64,
        budget: Int
    ) async throws -> [SeriesRollup]? {
        guard let range = try Self.window(fetch, from: from, to: to) else { return [] }
        let (selectors, wanted) = try Self.storeSelectors(fetch, all, principal)
        let r = try await state.store.querySeriesRollups(selectors, range: range, width: width, limit: max(0, budget))
        guard !r.truncated else { throw Self.tooManySamples }
        return r.edgesKnown ? r.series.filter { wanted.contains($0.series) } : nil
    }

    static let tooManySamples = PromQL.BadData("the query reads more than \(maxSamples) samples; narrow it")

    /// The times a selector's reads cover for evaluation times in [from, to]: one lookback
    /// (or its range) before, shifted by its offset, and inside subqueries their offsets and
    /// ranges (``PromQL/Fetch/shift``, ``PromQL/Fetch/lead``); nil when all of it is before 1970.
    static func window(_ fetch: PromQL.Fetch, from: Int64, to: Int64) throws -> TimeRange? {
        let (shifted, o0) = fetch.selector.offset.addingReportingOverflow(fetch.shift)
        let (before, o1) = shifted.addingReportingOverflow(fetch.span)
        let (back, o2) = before.addingReportingOverflow(fetch.lead)
        let (lo, o3) = from.subtractingReportingOverflow(back)
        let (hi, o4) = to.subtractingReportingOverflow(shifted)
        guard !o0, !o1, !o2, !o3, !o4, hi < Int64.max else { throw PromQL.BadData("offset or range out of range") }
        guard hi >= 0 else { return nil }
        return TimeRange(start: max(0, lo), end: hi + 1)
    }

    /// What the store is asked for the series a selector selects: one selector per source
    /// naming their metrics (it may answer more series of those metrics; keep the `wanted`).
    static func storeSelectors(_ fetch: PromQL.Fetch, _ all: [SeriesIdentity], _ principal: Principal) throws
        -> (selectors: [SeriesSelector], wanted: Set<SeriesIdentity>)
    {
        let chosen = try PromQL.select(fetch.selector, from: all)
        guard chosen.count <= Self.maxSeries else {
            throw PromQL.BadData("the query selects \(chosen.count) series, more than \(Self.maxSeries); add matchers")
        }
        let selectors = Dictionary(grouping: chosen, by: \.sourceID).sorted { $0.key < $1.key }.map { source, series in
            SeriesSelector(orgID: principal.orgID, sourceID: source, metrics: Array(Set(series.map(\.metric))).sorted())
        }
        return (selectors, Set(chosen))
    }

    // MARK: Metadata

    func series(_ p: Params, _ principal: Principal) async throws -> Response {
        guard !p.all("match[]").isEmpty else { throw PromQL.BadData("no match[] parameter provided") }
        let found = try await matching(p, principal)
        return Self.success { w in
            w.raw("[")
            w.list(found) { w, s in Self.labelObject(PromQL.labels(of: s), &w) }
            w.raw("]")
        }
    }

    func labels(_ p: Params, _ principal: Principal) async throws -> Response {
        let found = try await matching(p, principal)
        let names = Set(found.flatMap { PromQL.labels(of: $0).keys }).sorted()
        return Self.success { w in w.strings(names) }
    }

    func labelValues(_ p: Params, _ principal: Principal, name: String) async throws -> Response {
        let found = try await matching(p, principal)
        let values = Set(found.compactMap { PromQL.labels(of: $0)[name] }).sorted()
        return Self.success { w in w.strings(values) }
    }

    /// The numeric series any `match[]` selects, or all of them without one; with `start`
    /// or `end`, only those with points in [start, end] (from the store's block bounds, as
    /// Prometheus answers from its blocks).
    func matching(_ p: Params, _ principal: Principal) async throws -> [SeriesIdentity] {
        let matches = p.all("match[]")
        let stored: [SeriesIdentity]
        if p.get("start") != nil || p.get("end") != nil {
            let start = try p.time("start", default: Timestamp.validMicros.lowerBound)
            let end = try p.time("end", default: Timestamp.validMicros.upperBound - 1)
            guard end >= start else { throw PromQL.BadData("end timestamp must not be before start time") }
            stored = try await state.store.seriesIdentities(orgID: principal.orgID, overlapping: TimeRange(start: start, end: end + 1))
        } else {
            stored = try await state.store.seriesIdentities(orgID: principal.orgID)
        }
        let all = stored.filter(\.numeric)
        guard !matches.isEmpty else { return all }
        var seen = Set<SeriesIdentity>()
        var out: [SeriesIdentity] = []
        for m in matches {
            for s in try PromQL.select(try PromQL.parseSelector(m, allowOffset: false), from: all) where seen.insert(s).inserted {
                out.append(s)
            }
        }
        return out
    }

    // MARK: Writing

    static func success(_ data: (inout JSONWriter) -> Void) -> Response {
        Reply.json { w in
            w.raw("{\"status\":\"success\",\"data\":")
            data(&w)
            w.raw("}")
        }
    }

    static func labelObject(_ labels: [String: String], _ w: inout JSONWriter) {
        w.raw("{")
        w.list(labels.sorted { $0.key < $1.key }) { w, kv in
            w.string(kv.key)
            w.raw(":")
            w.string(kv.value)
        }
        w.raw("}")
    }

    static func metric(_ labels: [String: String], _ w: inout JSONWriter) {
        w.raw("{\"metric\":")
        labelObject(labels, &w)
    }

    /// `[<unix seconds>, "<value>"]`; a value that is not finite is `"NaN"`, `"+Inf"` or
    /// `"-Inf"`, as Prometheus writes it (`1/0`, `0/0` and the like are ordinary answers).
    static func sample(_ us: Int64, _ v: Double, _ w: inout JSONWriter) {
        w.raw("[")
        w.number(Double(us) / 1_000_000)
        w.raw(",\"")
        if v.isFinite {
            w.number(v)
        } else {
            w.raw(v.isNaN ? "NaN" : v > 0 ? "+Inf" : "-Inf")
        }
        w.raw("\"]")
    }
}
