import PlexusModel
import Testing

/// What devices send besides telemetry, and their sign-in: encoders against decoders.
@Suite("Device requests")
struct DeviceRequestTests {
    static func decode(_ text: String) -> Result<DeviceRequest, DeviceRequest.Problem> {
        Array(text.utf8).withUnsafeBytes { DeviceRequest.decode($0) }
    }

    @Test(
        "device_auth as the SDK encodes it decodes to the same sign-in",
        arguments: [
            DeviceAuth(apiKey: "plx_k", sourceID: "drone-01"),
            DeviceAuth(
                apiKey: "plx_k", sourceID: "rig.2", installID: "abc", platform: "Linux", agentVersion: "1.2",
                sensors: #"[{"name":"IMU","metrics":["accel_x"]}]"#, commands: #"[{"name":"reboot"}]"#, acks: true),
            DeviceAuth(apiKey: "plx_\"quoted\"", sourceID: "x", platform: "é\n"),
        ])
    func deviceAuth(_ auth: DeviceAuth) {
        let back = auth.encoded.withUnsafeBytes { DeviceAuth.decode($0) }
        #expect(back == .success(auth))
    }

    @Test("the device's own encoders (DeviceFrame) decode to their requests")
    func deviceFrames() {
        #expect(Self.decode(DeviceFrame.timeSync(id: 7)) == .success(.timeSync(idJSON: "7")))
        #expect(
            Self.decode(DeviceFrame.deviceError(source: "MPU6050", error: "read failed", severity: "error"))
                == .success(.deviceError(message: "read failed", source: "MPU6050")))
        #expect(Self.decode(DeviceFrame.commandResult(command: "ping")) == .success(.reply(.commandResult)))
        #expect(Self.decode(DeviceFrame.sessionStarted(id: "s", name: nil)) == .success(.reply(.sessionStarted)))
        #expect(Self.decode(DeviceFrame.sessionStopped(id: "s")) == .success(.reply(.sessionStopped)))
        #expect(Self.decode(#"{"type":"heartbeat"}"#) == .success(.heartbeat))
        #expect(Self.decode(#"{"type":"device_auth","api_key":"k"}"#) == .success(.signInAgain))
        #expect(Self.decode(#"{"type":"device_error","message":"m"}"#) == .success(.deviceError(message: "m", source: nil)))
    }

    @Test(
        "refusals name the problem",
        arguments: [
            ("nope", FrameErrorCode.invalidJSON, "frame is not a JSON object"),
            (#"{"id":1}"#, .invalidMessage, "frame has no type"),
            (#"{"type":"launch"}"#, .invalidMessage, "unknown message type"),
            (#"{"type":"pong","latency":NaN}"#, .invalidMessage, "latency is not JSON"),
            (#"{"type":"heartbeat","timestamp":-1}"#, .invalidMessage, "timestamp out of range"),
            (#"{"type":"command_result","ended_at":1e300}"#, .invalidMessage, "ended_at out of range"),
        ])
    func refused(_ text: String, _ code: FrameErrorCode, _ message: String) {
        guard case .failure(let p) = Self.decode(text) else {
            Issue.record("\(text) was accepted")
            return
        }
        #expect(p.code == code && p.message.hasPrefix(message), "\(p.message)")
    }

    @Test("a device_error message is cut to the string limit, never echoed whole")
    func longError() {
        let long = String(repeating: "e", count: Limits.maxStringValueBytes + 100)
        guard case .success(.deviceError(let m, _)) = Self.decode(#"{"type":"device_error","error":"\#(long)"}"#) else {
            Issue.record("not decoded")
            return
        }
        #expect(m.utf8.count == Limits.maxStringValueBytes)
    }
}
