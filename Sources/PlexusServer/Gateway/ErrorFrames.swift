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
