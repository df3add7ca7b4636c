/// What a dashboard sends on `/ws/browser` (docs/websocket-api.md, "Dashboard protocol"),
/// decoded and checked against the protocol's rules: one typed value per frame, or the
/// problem to answer with. Rules of the session (signed in or not, allowed to control)
/// stay with the server's session machine.
public enum DashboardRequest: Sendable, Equatable {
    /// `auth` or `data_api_auth` (with `api_key`), or `browser_auth` (the login cookie of
    /// the upgrade, or a key). `batch`: the dashboard wants `telemetry_batch` frames.
    case signIn(DashboardFrameType, apiKey: String?, batch: Bool)
    /// Live telemetry of `source` (nil: every device), limited to `metrics` (empty: all).
    case subscribe(source: String?, metrics: Set<String>)
    /// Stop live telemetry of `source` (nil: everything).
    case unsubscribe(source: String?)
    /// A ping for the server (a `ping` with a `source_id` is a command to that device).
    case ping
    /// Sent by the original dashboard and ignored: `pong`, `ready`, `set_throttle`.
    case ignored(DashboardFrameType)
    /// A command for a device, with the frame's other fields as raw JSON texts.
    case control(ControlCommand, source: String?, fields: [String: String])

    /// Why a frame was refused: the `error` frame to answer with.
    public struct Problem: Error, Sendable, Equatable {
        public var code: FrameErrorCode
        public var message: String
        /// The device the frame named, for the dashboard to match the answer.
        public var sourceID: String?

        public init(_ code: FrameErrorCode, _ message: String, sourceID: String? = nil) {
            self.code = code
            self.message = message
            self.sourceID = sourceID
        }
    }

    /// Metric names in one `subscribe` (the server also bounds the pairs of a socket).
    public static let maxMetricsPerSubscribe = 1_000

    /// Decodes one text frame.
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> Result<DashboardRequest, Problem> {
        guard let f = Frames.fields(bytes) else { return .failure(Problem(.invalidJSON, "frame is not a JSON object")) }
        do {
            return .success(try decode(f))
        } catch {
            return .failure(error)
        }
    }

    static func decode(_ f: Frames.Fields) throws(Problem) -> DashboardRequest {
        let type = f.string("type") ?? ""
        let kind = DashboardFrameType(rawValue: type)
        if let kind, [.auth, .dataAPIAuth, .browserAuth].contains(kind) {
            return .signIn(kind, apiKey: f.string("api_key"), batch: f.bools["batch"] ?? false)
        }
        let source = f.string("source_id")
        if let problem = Frames.problem(f) { throw Problem(.invalidMessage, problem, sourceID: source) }
        // `ping` with a `source_id` is a command to that device; without one, the server answers.
        if let command = ControlCommand(rawValue: type), command != .ping || source != nil {
            var fields = f.raw
            fields["type"] = nil
            fields["source_id"] = nil
            return .control(command, source: source, fields: fields)
        }
        switch kind {
        case nil: throw Problem(.invalidMessage, type.isEmpty ? "frame has no type" : "unknown message type")
        case .subscribe: return .subscribe(source: try allOrOne(f), metrics: try metrics(f, source: source))
        case .unsubscribe: return .unsubscribe(source: try allOrOne(f))
        case .ping: return .ping
        case .pong, .ready, .setThrottle: return .ignored(kind!)
        case .auth, .dataAPIAuth, .browserAuth: preconditionFailure("handled above")
        }
    }

    /// The `source_id` of `subscribe`/`unsubscribe`: absent, `null` or `"*"` (every device,
    /// nil), or a valid source id (the ingest syntax).
    static func allOrOne(_ f: Frames.Fields) throws(Problem) -> String? {
        guard let raw = f.raw["source_id"], raw != "null" else { return nil }
        guard let s = f.string("source_id"), s == "*" || Identifier.isValidSourceID(s) else {
            throw Problem(.invalidMessage, "source_id must be \"*\" or match ^[a-z0-9][a-z0-9._-]*$ (at most 256 bytes)")
        }
        return s == "*" ? nil : s
    }

    /// `metrics`: absent or null (all), or an array of names; the original dashboard's
    /// `source:metric` form is trimmed to the metric.
    static func metrics(_ f: Frames.Fields, source: String?) throws(Problem) -> Set<String> {
        guard let raw = f.raw["metrics"], raw != "null" else { return [] }
        guard let names = Frames.stringArray(raw) else {
            throw Problem(.invalidMessage, "metrics must be an array of strings", sourceID: source)
        }
        guard names.count <= maxMetricsPerSubscribe else {
            throw Problem(.tooManySubscriptions, "at most \(maxMetricsPerSubscribe) metrics per subscribe", sourceID: source)
        }
        var metrics: Set<String> = []
        for name in names {
            var metric = name
            if let source, name.hasPrefix(source + ":") { metric = String(name.dropFirst(source.count + 1)) }
            guard isValidMetric(metric) else {
                throw Problem(
                    .invalidMessage, "metric names must be 1-\(Limits.maxMetricBytes) bytes without control characters",
                    sourceID: source)
            }
            metrics.insert(metric)
        }
        return metrics
    }

    /// Like ingest: 1-256 bytes; and no control characters.
    static func isValidMetric(_ m: String) -> Bool {
        !m.isEmpty && m.utf8.count <= Limits.maxMetricBytes
            && !m.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }

    /// The frame as a dashboard sends it: for clients, and to test the decoder against.
    public var encoded: [UInt8] {
        var w = JSONWriter()
        switch self {
        case .signIn(let type, let key, let batch):
            w.raw("{\"type\":")
            w.string(type.rawValue)
            w.field("api_key", key)
            if batch { w.raw(",\"batch\":true") }
        case .subscribe(let source, let metrics):
            w.raw("{\"type\":\"subscribe\",\"source_id\":")
            w.string(source ?? "*")
            if !metrics.isEmpty {
                w.raw(",\"metrics\":")
                w.strings(metrics.sorted())
            }
        case .unsubscribe(let source):
            w.raw("{\"type\":\"unsubscribe\",\"source_id\":")
            w.string(source ?? "*")
        case .ping:
            w.raw("{\"type\":\"ping\"")
        case .ignored(let type):
            w.raw("{\"type\":")
            w.string(type.rawValue)
        case .control(let command, let source, let fields):
            w.raw("{\"type\":")
            w.string(command.rawValue)
            w.field("source_id", source)
            for (k, v) in fields.sorted(by: { $0.key < $1.key }) where k != "type" && k != "source_id" {
                w.raw(",")
                w.string(k)
                w.raw(":")
                w.rawText(v)
            }
        }
        w.raw("}")
        return w.bytes
    }
}
