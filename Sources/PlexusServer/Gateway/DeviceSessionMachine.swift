import PlexusCore
import PlexusModel

/// The device side of `/ws/device` as a state machine: frames in, actions out. No I/O,
/// no clock: the socket handler feeds it events (with the time) and performs the actions.
struct DeviceSessionMachine: Sendable {
    enum State: Sendable, Equatable {
        case awaitingAuth
        case authenticating
        case active(Active)
        case closed
    }

    struct Active: Sendable, Equatable {
        var orgID: Int64
        var sourceID: String
        var acks: Bool
        var telemetry: TokenBucket
        var control: TokenBucket
    }

    enum Action: Sendable {
        case send([UInt8])
        case close(code: UInt16, reason: String)
        /// Verify the key, claim the name, register; then call `authenticated` or `authFailed`.
        case authenticate(DeviceAuth)
        /// A valid telemetry batch (`frameBytes` long on the wire): fan it out live, store it
        /// durably, then (if `ackSeq`) ack.
        case store(IngestBatch, frameBytes: Int, ackSeq: Int64?)
        /// Over the telemetry rate: stop reading for this long (the device is slowed, its
        /// frame is then stored and acked as usual: told, never dropped).
        case pause(Duration)
        /// A device frame the dashboards watching this device should see (type given).
        case relay(type: DeviceFrameType, frame: [UInt8])
        /// A heartbeat: the device is alive (relayed too).
        case heartbeat([UInt8])
        /// A `device_error`: stored as a `device.error` point and relayed.
        case deviceError(message: String, source: String?, frame: [UInt8])
        /// A `time_sync`: answer with the server's clock now (and the frame's `id`, raw JSON).
        case timeSync(id: String?)
    }

    /// Per-connection limits (the original platform's, told to the device, never silent).
    static let telemetryBurst = 2_000.0, telemetryPerSecond = 500.0
    static let controlBurst = 60.0, controlPerSecond = 20.0
    static let closePolicy = CloseCode.policyViolation
    /// The store cannot take the device's frames now: reconnect and resend later.
    static let closeUnavailable = CloseCode.tryAgainLater

    private(set) var state: State = .awaitingAuth

    var sourceID: String? {
        if case .active(let a) = state { return a.sourceID }
        return nil
    }

    /// A text frame arrived at time `now`. `recording` is the session the server records
    /// this device into, if any.
    mutating func received(_ frame: [UInt8], now: Duration) -> [Action] {
        switch state {
        case .closed, .authenticating:
            return []
        case .awaitingAuth:
            let auth = frame.withUnsafeBytes { DeviceAuth.decode($0) }
            switch auth {
            case .success(let a):
                state = .authenticating
                return [.authenticate(a)]
            case .failure(let problem):
                state = .closed
                let message =
                    switch problem {
                    case .notAuth: "first message must be device_auth"
                    case .missingKey: "device_auth needs api_key"
                    case .badSourceID: "device_auth source_id must match ^[a-z0-9][a-z0-9._-]*$ (at most 256 bytes)"
                    }
                return [.send(OutboundFrame.error(message: message)), .close(code: Self.closePolicy, reason: "auth failed")]
            }
        case .active(var active):
            defer { if case .active = state { state = .active(active) } }
            guard let type = frame.withUnsafeBytes({ Frames.type(of: $0) }) else {
                return [.send(OutboundFrame.error(.invalidJSON, message: "frame is not a JSON object"))]
            }
            let kind = DeviceFrameType(rawValue: type)
            if kind == .telemetry {
                // The recording is the Ingestor's rule, applied after the limits.
                let options = IngestDecoder.Options(forcedSourceID: active.sourceID)
                let decoded = frame.withUnsafeBytes { raw in
                    Result { () throws(IngestError) -> IngestBatch in try IngestDecoder.decode(raw, options: options) }
                }
                switch decoded {
                case .failure(let e):
                    let seq = Self.seq(frame)
                    // Nothing of a rejected frame is stored; the error names the point and the frame.
                    return [.send(OutboundFrame.error(.invalidMessage, message: e.message, seq: seq))]
                case .success(let batch):
                    let store = Action.store(batch, frameBytes: frame.count, ackSeq: active.acks ? batch.seq : nil)
                    let wait = active.telemetry.reserve(at: now)
                    if wait == .zero { return [store] }
                    // No seq on the notice: SDKs treat an error with a seq as "dropped, do not
                    // resend", and cumulative acks must never pass over a frame not stored.
                    return [
                        .send(
                            OutboundFrame.error(
                                .rateLimited,
                                message: "over \(Int(Self.telemetryPerSecond)) frames/s; reading is slowed")),
                        .pause(wait), store,
                    ]
                }
            }
            let allowed = kind == .videoFrame ? active.telemetry.take(at: now) : active.control.take(at: now)
            guard allowed else {
                return [.send(OutboundFrame.error(.rateLimited, message: "too many \(type) frames; slow down"))]
            }
            switch frame.withUnsafeBytes({ DeviceRequest.decode($0) }) {
            case .failure(let p):
                return [.send(OutboundFrame.error(p.code, message: p.message))]
            case .success(.heartbeat):
                return [.heartbeat(frame)]
            case .success(.timeSync(let id)):
                return [.timeSync(id: id)]
            case .success(.deviceError(let message, let source)):
                return [.deviceError(message: message, source: source, frame: frame)]
            case .success(.signInAgain):
                return [.send(OutboundFrame.error(.invalidMessage, message: "already authenticated"))]
            case .success(.reply(let kind)):
                return [.relay(type: kind, frame: frame)]
            }
        }
    }

    /// The shell verified the key and gave the device its name.
    mutating func authenticated(orgID: Int64, sourceID: String, acks: Bool, serverTimeMs: Int64) -> [Action] {
        guard state == .authenticating else { return [] }
        state = .active(
            Active(
                orgID: orgID, sourceID: sourceID, acks: acks,
                telemetry: TokenBucket(capacity: Self.telemetryBurst, refillPerSecond: Self.telemetryPerSecond),
                control: TokenBucket(capacity: Self.controlBurst, refillPerSecond: Self.controlPerSecond)))
        return [.send(OutboundFrame.authenticated(sourceID: sourceID, serverTimeMs: serverTimeMs, acks: acks))]
    }

    mutating func authFailed(_ message: String) -> [Action] {
        guard state == .authenticating else { return [] }
        state = .closed
        return [.send(OutboundFrame.error(message: message)), .close(code: Self.closePolicy, reason: "auth failed")]
    }

    /// No `device_auth` within the deadline.
    mutating func authDeadlinePassed() -> [Action] {
        guard state == .awaitingAuth || state == .authenticating else { return [] }
        state = .closed
        return [.send(OutboundFrame.error(message: "no device_auth within 10 s")), .close(code: Self.closePolicy, reason: "auth timeout")]
    }

    mutating func closed() { state = .closed }

    static func seq(_ frame: [UInt8]) -> Int64? {
        frame.withUnsafeBytes { Frames.fields($0)?.numbers["seq"] }.flatMap { $0.isFinite && abs($0) < 9e15 ? Int64($0) : nil }
    }
}
