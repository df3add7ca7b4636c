import PlexusModel
import PlexusStorage
import PlexusWAL
import Testing

@Suite("WAL record header")
struct WALRecordTests {
    @Test("a header round-trips, with and without forced source and recording session")
    func roundTrip() throws {
        let json = Array(#"{"points":[]}"#.utf8)
        for rec in [
            WALRecord(orgID: 7, receivedAt: 1_700_000_000_000_000, forcedSource: nil, recordingSession: nil),
            WALRecord(orgID: -1, receivedAt: 0, forcedSource: "dev-1", recordingSession: "run é"),
        ] {
            let payload = rec.encode(json: json)
            let (back, body) = try payload.withUnsafeBytes { raw in
                let (r, b) = try WALRecord.decode(raw)
                return (r, Array(b))
            }
            #expect(back == rec)
            #expect(body == json)
        }
    }

    @Test("CRC-32C matches the standard check value")
    func crc() {
        #expect(Array("123456789".utf8).withUnsafeBytes { CRC32C.checksum($0) } == 0xE306_9283)
    }
}
