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

    private(set) var state: State = .awaitingAuth
    /// The sign-in frame asked for coalesced `telemetry_batch` frames (`"batch": true`).
    private(set) var batches = false

    var session: Session? {
        if case .active(let s) = state { return s }
        return nil
    }

    /// A text frame arrived, decoded (or the problem it has).
    mutating func received(_ request: Result<DashboardRequest, DashboardRequest.Problem>) -> [Action] {
        switch state {
        case .closed, .authenticating:
            return []
        case .awaitingAuth:
            guard case .success(.signIn(let type, let key, let batch)) = request else {
                return fail("first message must be auth (with api_key) or browser_auth")
            }
            batches = batch
            if let key {
                state = .authenticating
                return [.authenticate(.apiKey(key))]
            }
            guard type == .browserAuth else { return fail("api_key required") }
            state = .authenticating
            return [.authenticate(.loginCookie)]
        case .active(let session):
            switch request {
            case .failure(let p): return [.send(OutboundFrame.error(p.code, message: p.message, sourceID: p.sourceID))]
            case .success(let r): return active(r, session)
            }
        }
    }

    private func active(_ request: DashboardRequest, _ session: Session) -> [Action] {
        switch request {
        case .subscribe(let source, let metrics):
            // Confirmed once in effect: everything after this frame is delivered.
            let confirmation = DashboardFrame.subscribed(.init(sourceID: source ?? "*", metrics: metrics.sorted())).bytes
            return [.subscribe(source: source, metrics: metrics, confirmation: confirmation)]
        case .unsubscribe(let source):
            return [.unsubscribe(source: source)]
        case .ping:
            return [.send(Array(#"{"type":"pong"}"#.utf8))]
        case .ignored:
            return []
        case .signIn:
            return [.send(OutboundFrame.error(.invalidMessage, message: "already authenticated"))]
        case .control(let command, let source, let fields):
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
            return [.control(command: command.rawValue, source: source, fields: fields)]
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
