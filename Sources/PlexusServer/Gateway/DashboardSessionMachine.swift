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
        /// Live telemetry of `source` (nil: every device) limited to `metrics` (empty: all).
        case subscribe(source: String?, metrics: Set<String>)
        /// Stop live telemetry of `source` (nil: everything).
        case unsubscribe(source: String?)
        /// Send `command` with `fields` (raw JSON texts) to the device; answer `control_sent`
        /// or an error frame naming the device.
        case control(command: String, source: String, fields: [String: String])
    }

    static let closePolicy: UInt16 = 1008
    static let authTypes: Set<String> = ["auth", "data_api_auth", "browser_auth"]

    private(set) var state: State = .awaitingAuth

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
            guard let f, let type = f.string("type"), Self.authTypes.contains(type) else {
                return fail("first message must be auth (with api_key) or browser_auth")
            }
            if let key = f.string("api_key") {
                state = .authenticating
                return [.authenticate(.apiKey(key))]
            }
            guard type == "browser_auth" else { return fail("api_key required") }
            state = .authenticating
            return [.authenticate(.loginCookie)]
        case .active(let session):
            guard let f else {
                return [.send(OutboundFrame.error(code: "INVALID_JSON", message: "frame is not a JSON object"))]
            }
            return active(f, session)
        }
    }

    private func active(_ f: Frames.Fields, _ session: Session) -> [Action] {
        let type = f.string("type") ?? ""
        let source = f.string("source_id")
        switch type {
        case "subscribe":
            let metrics = Set((f.raw["metrics"].flatMap(Frames.stringArray) ?? []).map { name in
                // The original dashboard sends "source:metric"; keep the metric.
                if let source, name.hasPrefix(source + ":") { return String(name.dropFirst(source.count + 1)) }
                return name
            })
            // Confirmed once in effect: everything after this frame is delivered.
            var w = JSONWriter()
            w.raw("{\"type\":\"subscribed\",\"source_id\":")
            w.string(source ?? "*")
            w.raw(",\"metrics\":")
            w.strings(metrics.sorted())
            w.raw("}")
            return [.subscribe(source: source == "*" ? nil : source, metrics: metrics), .send(w.bytes)]
        case "unsubscribe":
            return [.unsubscribe(source: source == "*" ? nil : source)]
        case "ping" where source == nil:
            return [.send(Array(#"{"type":"pong"}"#.utf8))]
        case "pong", "ready", "set_throttle":
            return []
        case _ where ControlCommand(rawValue: type) != nil:
            guard session.canControl else {
                return [.send(OutboundFrame.error(code: "FORBIDDEN", message: "this login is read-only; control needs a write key",
                                                  sourceID: source))]
            }
            guard let source else {
                return [.send(OutboundFrame.error(code: "INVALID_MESSAGE", message: "source_id required"))]
            }
            var fields = f.raw
            fields["type"] = nil
            fields["source_id"] = nil
            return [.control(command: type, source: source, fields: fields)]
        case "":
            return [.send(OutboundFrame.error(code: "INVALID_MESSAGE", message: "frame has no type"))]
        default:
            return [.send(OutboundFrame.error(code: "INVALID_MESSAGE", message: "unknown message type"))]
        }
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
