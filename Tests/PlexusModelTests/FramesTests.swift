import PlexusModel
import Testing

@Suite("Frames")
struct FramesTests {
    @Test(
        "a string array is read as one; anything else is not",
        arguments: [
            (#"["a","b:c"]"#, ["a", "b:c"] as [String]?),
            (" [ ] ", []),
            (#"["\u00e9"]"#, ["é"]),
            (#"["a",1]"#, nil),
            (#""a""#, nil),
            (#"["a""#, nil),
            (#"["a"] x"#, nil),
        ])
    func stringArray(_ raw: String, _ expected: [String]?) {
        #expect(Frames.stringArray(raw) == expected)
    }

    @Test("device replies: command_result with and without its id, sensor and error")
    func commandResult() {
        #expect(DeviceFrame.commandResult(command: "ping") == #"{"type":"command_result","command":"ping","status":"ok"}"#)
        #expect(
            DeviceFrame.commandResult(command: "configure", sensor: "BME280", error: "no \"BME280\"")
                == #"{"type":"command_result","command":"configure","sensor":"BME280","status":"error","message":"no \"BME280\""}"#)
        #expect(
            DeviceFrame.deviceError(source: "MPU6050", error: "read failed", severity: "error")
                == #"{"type":"device_error","source":"MPU6050","error":"read failed","severity":"error"}"#)
        #expect(DeviceFrame.timeSync(id: 7) == #"{"type":"time_sync","id":7}"#)
    }
}
