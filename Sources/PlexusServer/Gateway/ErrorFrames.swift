import HTTPTypes
import PlexusCore
import PlexusModel

extension OutboundFrame {
    /// The one mapping from a domain refusal to a socket's `error` frame (HTTP's is
    /// `APIError.init(_: CoreError)`). A refusal of the frame's content carries its `seq`:
    /// SDKs take that as "handled, not stored, do not resend". A "not now" (rate, store
    /// unavailable) never does, so the frame stays unacknowledged and is resent.
    static func error(_ e: CoreError, seq: Int64?) -> [UInt8] {
        switch e.kind {
        case .rateLimited, .unavailable: error(code: e.code, message: e.message)
        default: error(code: e.code, message: e.message, seq: seq)
        }
    }
}

extension Gateway.ControlError {
    var message: String {
        switch self {
        case .offline(let s): "device \(s) is not connected"
        case .unknown(let s): "no device named \(s) in this organisation"
        case .busy(let s): "device \(s) is not reading its messages"
        case .unknownCommand(let c):
            "command must be one of: " + ControlCommand.allCases.map(\.rawValue).joined(separator: ", ") + " (got \(c.prefix(64)))"
        case .invalid(let m): m
        }
    }

    /// The one mapping of a refused command to its replies. Over HTTP
    /// (`POST /v1/sources/{id}/commands`), docs/http-api.md:
    var apiError: APIError {
        switch self {
        case .offline: APIError(.conflict, FrameErrorCode.deviceOffline.rawValue, message)
        case .unknown: APIError(.notFound, FrameErrorCode.deviceUnknown.rawValue, message)
        case .busy: APIError.unavailable(message)
        case .unknownCommand, .invalid: APIError.badRequest(message)
        }
    }

    /// … and as the `error` frame a dashboard gets, docs/websocket-api.md.
    func frame(source: String) -> [UInt8] {
        let code: FrameErrorCode =
            switch self {
            case .offline: .deviceOffline
            case .unknown: .deviceUnknown
            case .busy: .deviceBusy
            case .unknownCommand, .invalid: .invalidMessage
            }
        return OutboundFrame.error(code, message: message, sourceID: source)
    }
}
