import PlexusModel
import Testing

@Suite("Frame vocabulary")
struct FrameVocabularyTests {
    @Test("no word means two things: error codes are upper snake case, and frame types stay apart from commands")
    func wireNames() {
        let codes = FrameErrorCode.allCases.map(\.rawValue)
        #expect(codes.allSatisfy { $0 == $0.uppercased() && !$0.contains(" ") })
        let commands = Set(ControlCommand.allCases.map(\.rawValue))
        // What devices and the server send is never read as a command by the other side.
        #expect(Set(DeviceFrameType.allCases.map(\.rawValue)).isDisjoint(with: commands))
        #expect(Set(ServerFrameType.allCases.map(\.rawValue)).isDisjoint(with: commands))
        // The dashboard's own words never collide with a command, except `ping` (a device's
        // when it names one, the server's when it does not).
        #expect(Set(DashboardFrameType.allCases.map(\.rawValue)).intersection(commands) == ["ping"])
    }

    @Test("an error frame with a typed code is the same bytes as with its wire name")
    func typedError() {
        #expect(
            OutboundFrame.error(.deviceBusy, message: "m", seq: 3, sourceID: "s")
                == OutboundFrame.error(code: "DEVICE_BUSY", message: "m", seq: 3, sourceID: "s"))
    }
}
