import PlexusModel
import Testing

@Suite("Frame vocabulary")
struct FrameVocabularyTests {
    @Test("every frame type and error code round-trips through its wire name, and no two share one")
    func wireNames() {
        let device = DeviceFrameType.allCases.map(\.rawValue)
        #expect(Set(device).count == device.count)
        #expect(DeviceFrameType.allCases.allSatisfy { DeviceFrameType(rawValue: $0.rawValue) == $0 })
        let dashboard = DashboardFrameType.allCases.map(\.rawValue)
        #expect(Set(dashboard).count == dashboard.count)
        #expect(DashboardFrameType.allCases.allSatisfy { DashboardFrameType(rawValue: $0.rawValue) == $0 })
        let codes = FrameErrorCode.allCases.map(\.rawValue)
        #expect(Set(codes).count == codes.count && codes.allSatisfy { $0 == $0.uppercased() })
        // The dashboard's own words never collide with a command, except `ping` (a device's
        // when it names one, the server's when it does not).
        let commands = Set(ControlCommand.allCases.map(\.rawValue))
        #expect(Set(dashboard).intersection(commands) == ["ping"])
    }

    @Test("an error frame with a typed code is the same bytes as with its wire name")
    func typedError() {
        #expect(
            OutboundFrame.error(.deviceBusy, message: "m", seq: 3, sourceID: "s")
                == OutboundFrame.error(code: "DEVICE_BUSY", message: "m", seq: 3, sourceID: "s"))
    }
}
