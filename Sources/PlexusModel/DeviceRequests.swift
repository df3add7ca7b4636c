/// What a signed-in device sends on `/ws/device` besides telemetry (which
/// ``IngestDecoder`` reads: the hot path), decoded and checked: one typed value per
/// frame, or the problem to answer with. Rules of the connection (rates, the recording)
/// stay with the server's session machine.
public enum DeviceRequest: Sendable, Equatable {
    /// The device is alive (relayed to dashboards).
    case heartbeat
    /// Asks for the server's clock; `idJSON` is the frame's `id` as raw JSON, echoed back.
    case timeSync(idJSON: String?)
    /// Something went wrong on the device: stored as a `device.error` point and relayed.
    case deviceError(message: String, source: String?)
    /// An answer or notice for the dashboards watching the device (`pong`,
    /// `session_started`, `command_result`, a JSON `video_frame`, …), relayed as sent.
    case reply(DeviceFrameType)
    /// `device_auth` again on a signed-in connection.
    case signInAgain

    /// Why a frame was refused: the `error` frame to answer with.
    public struct Problem: Error, Sendable, Equatable {
        public var code: FrameErrorCode
        public var message: String

        public init(_ code: FrameErrorCode, _ message: String) {
            self.code = code
            self.message = message
        }
    }

    /// Decodes one text frame that is not `telemetry`. Nothing of a frame that is not strict
    /// JSON, or that carries a time out of range, may be echoed, relayed or stored.
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> Result<DeviceRequest, Problem> {
        guard let f = Frames.fields(bytes) else { return .failure(Problem(.invalidJSON, "frame is not a JSON object")) }
        if let problem = Frames.problem(f) { return .failure(Problem(.invalidMessage, problem)) }
        let type = f.string("type") ?? ""
        guard let kind = DeviceFrameType(rawValue: type) else {
            return .failure(Problem(.invalidMessage, type.isEmpty ? "frame has no type" : "unknown message type"))
        }
        switch kind {
        case .heartbeat: return .success(.heartbeat)
        case .timeSync: return .success(.timeSync(idJSON: f.raw["id"]))
        case .deviceError:
            let message = f.string("error") ?? f.string("message") ?? "device error"
            return .success(.deviceError(message: String(message.prefix(Limits.maxStringValueBytes)), source: f.string("source")))
        case .deviceAuth: return .success(.signInAgain)
        case .telemetry: return .failure(Problem(.invalidMessage, "telemetry is read by IngestDecoder"))
        case .videoFrame, .sessionStarted, .sessionStopped, .pong, .commandResult, .commandStatus, .commandSync, .commandAck:
            return .success(.reply(kind))
        }
    }
}
