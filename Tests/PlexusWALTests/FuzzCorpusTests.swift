import Foundation
import PlexusModel
import PlexusWAL
import Testing

/// The committed seed corpus of the `wal-segment` fuzzer (Fuzz/Corpus/wal-segment/) is
/// segments the real WriteAheadLog writes. This test writes them again and compares, so
/// the seeds follow the format; `PLEXUS_UPDATE_FUZZ_CORPUS=1 swift test --filter FuzzCorpus`
/// rewrites them after a deliberate format change.
@Suite("Fuzz seed corpus")
struct FuzzCorpusTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func ingestSeed(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: repository.appendingPathComponent("Fuzz/Corpus/ingest/\(name)")))
    }

    /// The segments, by seed file name.
    static func segments() throws -> [String: [UInt8]] {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try WriteAheadLog(directory: dir, retryInterval: .zero)
        try log.openForAppend(after: .zero)
        let http = WALRecord(orgID: 1, receivedAt: 1_699_900_000_000_000, forcedSource: nil, recordingSession: nil)
        let socket = WALRecord(
            orgID: 2, receivedAt: 1_699_900_000_500_000, forcedSource: "drone-01", recordingSession: "session_1699900000_abc123")
        _ = try log.appendDurably([
            http.encode(json: try ingestSeed("spec-curl.json")),
            http.encode(json: try ingestSeed("value-types.json")),
        ])
        let first = try log.appendDurably([socket.encode(json: try ingestSeed("spec-ws-telemetry.json"))])
        // A failed write, then recovery: the next segment starts with a link.
        try failNextWrite(of: log.segmentPath(first.segment))
        _ = try? log.appendDurably([socket.encode(json: try ingestSeed("spec-ws-session-telemetry.json"))])
        let second = try log.appendDurably([socket.encode(json: try ingestSeed("spec-ws-session-telemetry.json"))])
        // Version-2 records (what the store writes now): the seeds' points as stored.
        let points = try ["spec-curl.json", "value-types.json"].flatMap { name in
            try ingestSeed(name).withUnsafeBytes { try IngestDecoder.decode($0).points }
        }
        let socketPoints = try ingestSeed("spec-ws-session-telemetry.json").withUnsafeBytes {
            try IngestDecoder.decode($0, options: .init(forcedSourceID: "drone-01", recordingSessionID: "session_1699900000_abc123")).points
        }
        try failNextWrite(of: log.segmentPath(second.segment))
        _ = try? log.appendDurably([WALPointsRecord(orgID: 1, receivedAt: 1_699_900_001_000_000).encode(points)])
        let third = try log.appendDurably([
            WALPointsRecord(orgID: 1, receivedAt: 1_699_900_001_000_000).encode(points),
            WALPointsRecord(orgID: 2, receivedAt: 1_699_900_001_500_000).encode(socketPoints),
        ])
        return [
            "segment-http-and-socket.wal": Array(try Data(contentsOf: URL(fileURLWithPath: log.segmentPath(first.segment)))),
            "segment-after-recovery.wal": Array(try Data(contentsOf: URL(fileURLWithPath: log.segmentPath(second.segment)))),
            "segment-v2-points.wal": Array(try Data(contentsOf: URL(fileURLWithPath: log.segmentPath(third.segment)))),
        ]
    }

    @Test("the wal-segment seeds are what WriteAheadLog writes")
    func walSegmentSeeds() throws {
        let corpus = Self.repository.appendingPathComponent("Fuzz/Corpus/wal-segment")
        let update = ProcessInfo.processInfo.environment["PLEXUS_UPDATE_FUZZ_CORPUS"] == "1"
        for (name, bytes) in try Self.segments() {
            let url = corpus.appendingPathComponent(name)
            if update { try Data(bytes).write(to: url) }
            #expect(Array(try Data(contentsOf: url)) == bytes, "\(name) differs from what the log writes now")
        }
    }
}
