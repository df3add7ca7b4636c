import PlexusModel

/// The dashboard side of `/ws/browser` as a state machine: frames in, actions out. No I/O,
/// no clock: the socket handler verifies credentials, talks to the hub and the devices,
/// and writes the frames the machine asks for.
struct DashboardSessionMachine: Sendable {
    /// Who is signed in on this socket.
    struct Session: Sendable, Equatable {
        var orgID: Int64
        var orgName: String
        /// Write scope (an owner or member login, or a key with `write`): may send control messages.
        var canControl: Bool
    }

    enum State: Sendable, Equatable {
        case awaitingAuth
        case authenticating
        case active(Session)
        case closed
    }

    /// What the first frame offers to sign in with.
    enum Credential: Sendable, Equatable {
        case apiKey(String)
        /// `browser_auth` without a key: the login cookie of the upgrade request.
        case loginCookie
    }

    enum Action: Sendable {
        case send([UInt8])
        case close(code: UInt16, reason: String)
        /// Check the credential; then call `authenticated` or `authFailed`.
        case authenticate(Credential)
        /// Live telemetry of `source` (nil: every device) limited to `metrics` (empty: all);
        /// once the hub has it, send `confirmation` (or, if the hub refuses, an error).
        case subscribe(source: String?, metrics: Set<String>, confirmation: [UInt8])
        /// Stop live telemetry of `source` (nil: everything).
        case unsubscribe(source: String?)
        /// Send `command` with `fields` (raw JSON texts) to the device; answer `control_sent`
        /// or an error frame naming the device.
        case control(command: String, source: String, fields: [String: String])
    }

    static let closePolicy = CloseCode.policyViolation
    static let authTypes: Set<DashboardFrameType> = [.auth, .dataAPIAuth, .browserAuth]

    private(set) var state: State = .awaitingAuth
    /// The sign-in frame asked for coalesced `telemetry_batch` frames (`"batch": true`).
    private(set) var batches = false

    var session: Session? {
        if case .active(let s) = state { return s }
        return nil
    }

    /// A text frame arrived, already split into its top-level fields (nil: not a JSON object).
    mutating func received(_ f: Frames.Fields?) -> [Action] {
        switch state {
        case .closed, .authenticating:
            return []
        case .awaitingAuth:
            guard let f, let type = f.string("type").flatMap(DashboardFrameType.init(rawValue:)), Self.authTypes.contains(type) else {
                return fail("first message must be auth (with api_key) or browser_auth")
            }
            batches = f.bools["batch"] ?? false
            if let key = f.string("api_key") {
                state = .authenticating
                return [.authenticate(.apiKey(key))]
            }
            guard type == .browserAuth else { return fail("api_key required") }
            state = .authenticating
            return [.authenticate(.loginCookie)]
        case .active(let session):
            guard let f else {
                return [.send(OutboundFrame.error(.invalidJSON, message: "frame is not a JSON object"))]
            }
            if let problem = Frames.problem(f) {
                return [.send(OutboundFrame.error(.invalidMessage, message: problem, sourceID: f.string("source_id")))]
            }
            return active(f, session)
        }
    }

    private func active(_ f: Frames.Fields, _ session: Session) -> [Action] {
        let type = f.string("type") ?? ""
        let source = f.string("source_id")
        // `ping` with a `source_id` is a command to that device; without one, the server answers.
        if let command = ControlCommand(rawValue: type), command != .ping || source != nil { return control(command, f, session) }
        guard let kind = DashboardFrameType(rawValue: type) else {
            return [.send(OutboundFrame.error(.invalidMessage, message: type.isEmpty ? "frame has no type" : "unknown message type"))]
        }
        switch kind {
        case .subscribe:
            if let problem = Self.sourceProblem(f) { return [.send(problem)] }
            var metrics: Set<String> = []
            if let raw = f.raw["metrics"], raw != "null" {
                guard let names = Frames.stringArray(raw) else {
                    return [
                        .send(
                            OutboundFrame.error(
                                .invalidMessage, message: "metrics must be an array of strings",
                                sourceID: source))
                    ]
                }
                guard names.count <= Self.maxMetricsPerSubscribe else {
                    return [
                        .send(
                            OutboundFrame.error(
                                .tooManySubscriptions,
                                message: "at most \(Self.maxMetricsPerSubscribe) metrics per subscribe",
                                sourceID: source))
                    ]
                }
                for name in names {
                    // The original dashboard sends "source:metric"; keep the metric.
                    var metric = name
                    if let source, name.hasPrefix(source + ":") { metric = String(name.dropFirst(source.count + 1)) }
                    guard Self.isValidMetric(metric) else {
                        return [
                            .send(
                                OutboundFrame.error(
                                    .invalidMessage,
                                    message: "metric names must be 1-\(Limits.maxMetricBytes) bytes without control characters",
                                    sourceID: source))
                        ]
                    }
                    metrics.insert(metric)
                }
            }
            // Confirmed once in effect: everything after this frame is delivered.
            let confirmation = DashboardFrame.subscribed(.init(sourceID: source ?? "*", metrics: metrics.sorted())).bytes
            return [.subscribe(source: source == "*" ? nil : source, metrics: metrics, confirmation: confirmation)]
        case .unsubscribe:
            if let problem = Self.sourceProblem(f) { return [.send(problem)] }
            return [.unsubscribe(source: source == "*" ? nil : source)]
        case .ping:
            return [.send(Array(#"{"type":"pong"}"#.utf8))]
        case .pong, .ready, .setThrottle:
            return []
        case .auth, .dataAPIAuth, .browserAuth:
            return [.send(OutboundFrame.error(.invalidMessage, message: "already authenticated"))]
        }
    }

    /// A control command for a device (`start_stream`, `ping` with a `source_id`, …).
    private func control(_ command: ControlCommand, _ f: Frames.Fields, _ session: Session) -> [Action] {
        let source = f.string("source_id")
        guard session.canControl else {
            return [
                .send(
                    OutboundFrame.error(
                        .forbidden, message: "this login is read-only; control needs a write key",
                        sourceID: source))
            ]
        }
        guard let source else {
            return [.send(OutboundFrame.error(.invalidMessage, message: "source_id required"))]
        }
        var fields = f.raw
        fields["type"] = nil
        fields["source_id"] = nil
        return [.control(command: command.rawValue, source: source, fields: fields)]
    }

    /// Metric names in one `subscribe` (the hub also bounds the pairs of a socket).
    static let maxMetricsPerSubscribe = 1_000

    /// A `source_id` of `subscribe`/`unsubscribe` must be absent, `null`, `"*"` or a valid
    /// source id (the ingest syntax): an error frame otherwise.
    static func sourceProblem(_ f: Frames.Fields) -> [UInt8]? {
        guard let raw = f.raw["source_id"], raw != "null" else { return nil }
        if let s = f.string("source_id"), s == "*" || Identifier.isValidSourceID(s) { return nil }
        return OutboundFrame.error(
            .invalidMessage,
            message: "source_id must be \"*\" or match ^[a-z0-9][a-z0-9._-]*$ (at most 256 bytes)")
    }

    /// Like ingest: 1-256 bytes; and no control characters.
    static func isValidMetric(_ m: String) -> Bool {
        !m.isEmpty && m.utf8.count <= Limits.maxMetricBytes
            && !m.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }

    /// The shell accepted the credential. False if the socket was closed meanwhile (the
    /// deadline passed while the credential was checked): then nothing may be registered.
    mutating func authenticated(_ session: Session) -> Bool {
        guard state == .authenticating else { return false }
        state = .active(session)
        return true
    }

    mutating func authFailed(_ message: String) -> [Action] {
        guard state == .authenticating else { return [] }
        return fail(message)
    }

    /// No sign-in within the deadline (also while a credential is still being checked).
    mutating func authDeadlinePassed() -> [Action] {
        guard state == .awaitingAuth || state == .authenticating else { return [] }
        state = .closed
        return [.send(OutboundFrame.error(message: "no auth frame within 10 s")), .close(code: Self.closePolicy, reason: "auth timeout")]
    }

    mutating func closed() { state = .closed }

    private mutating func fail(_ message: String) -> [Action] {
        state = .closed
        return [.send(OutboundFrame.error(message: message)), .close(code: Self.closePolicy, reason: "auth failed")]
    }
}
