/// The words of the WebSocket protocol (docs/websocket-api.md), typed, so that the
/// server, the SDK and their tests dispatch on cases, not on strings that can drift.

/// The `type` of every frame a device sends on `/ws/device`.
public enum DeviceFrameType: String, Sendable, CaseIterable {
    case deviceAuth = "device_auth"
    case telemetry
    case heartbeat
    case timeSync = "time_sync"
    case deviceError = "device_error"
    /// A camera frame as JSON (SDKs before 0.5.1; later ones send binary frames).
    case videoFrame = "video_frame"
    case sessionStarted = "session_started"
    case sessionStopped = "session_stopped"
    case pong
    case commandResult = "command_result"
    case commandStatus = "command_status"
    case commandSync = "command_sync"
    case commandAck = "command_ack"
}

/// The `type` of the frames the server sends a device of its own accord or in answer,
/// besides the control commands (``ControlCommand``) it passes on from dashboards.
public enum ServerFrameType: String, Sendable, CaseIterable {
    case authenticated
    case error
    case telemetryAck = "telemetry_ack"
    case timeSync = "time_sync"
}

/// The `type` of every frame a dashboard sends on `/ws/browser`, besides the control
/// commands (``ControlCommand``).
public enum DashboardFrameType: String, Sendable, CaseIterable {
    case auth
    /// The original platform's name for `auth`.
    case dataAPIAuth = "data_api_auth"
    /// Sign in with the dashboard's session cookie.
    case browserAuth = "browser_auth"
    case subscribe
    case unsubscribe
    case ping
    /// Sent by the original dashboard; accepted and ignored.
    case pong, ready
    case setThrottle = "set_throttle"
}

/// The `type` of the frames the server sends a dashboard of its own accord or in answer,
/// besides the device's own frames it passes on (`pong`, `session_started`,
/// `command_result`, …).
public enum DashboardServerFrameType: String, Sendable, CaseIterable {
    case initial = "init"
    case sourceStatus = "source_status"
    case subscribed
    case controlSent = "control_sent"
    case telemetry
    case telemetryBatch = "telemetry_batch"
    case gap
    case error
    case pong
    case videoFrame = "video_frame"
}

/// The `code` of an `error` frame, on either socket.
public enum FrameErrorCode: String, Sendable, CaseIterable {
    case invalidMessage = "INVALID_MESSAGE"
    case invalidJSON = "INVALID_JSON"
    case rateLimited = "RATE_LIMITED"
    case unavailable = "UNAVAILABLE"
    case unauthorized = "UNAUTHORIZED"
    case forbidden = "FORBIDDEN"
    case tooManySubscriptions = "TOO_MANY_SUBSCRIPTIONS"
    case deviceOffline = "DEVICE_OFFLINE"
    case deviceUnknown = "DEVICE_UNKNOWN"
    case deviceBusy = "DEVICE_BUSY"
    case internalError = "INTERNAL_ERROR"
}

/// The WebSocket close codes Plexus sends itself (RFC 6455 section 7.4); the WebSocket
/// layer sends 1007 for text that is not UTF-8 and 1009 for a frame over the limit.
public enum CloseCode {
    /// The server is stopping: reconnect (to another instance).
    public static let goingAway: UInt16 = 1001
    /// Authentication failed, a credential was revoked, or the connection was replaced.
    public static let policyViolation: UInt16 = 1008
    /// The store cannot take frames now: reconnect and resend later.
    public static let tryAgainLater: UInt16 = 1013
}

extension OutboundFrame {
    /// An `error` frame with one of the protocol's codes.
    public static func error(_ code: FrameErrorCode, message: String, seq: Int64? = nil, sourceID: String? = nil) -> [UInt8] {
        error(code: code.rawValue, message: message, seq: seq, sourceID: sourceID)
    }
}
