import Foundation
import PlexusServerTesting
import Testing

@testable import Plexus

@Suite("Swift SDK: the on-disk buffer", .serialized, .timeLimit(.minutes(2)))
struct SDKDurabilityTests {
    func tempPath() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("plexus-sdk-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d + "/buffer.sqlite"
    }

    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test("bounded: past the capacity the oldest are dropped and counted; what is kept survives reopening")
    func bound() async throws {
        let path = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        var buffer: DiskBuffer? = try DiskBuffer(path: path, capacity: 5)
        var r = try buffer!.append((0..<3).map { bytes("p\($0)") })
        #expect(r == (3, 0))
        r = try buffer!.append((3..<8).map { bytes("p\($0)") })
        #expect(r == (5, 3))
        buffer = nil
        let reopened = try DiskBuffer(path: path, capacity: 5)
        #expect(reopened.count == 5)
        let rows = try reopened.oldest(2)
        #expect(rows.map { String(decoding: $0.body, as: UTF8.self) } == ["p3", "p4"])
        #expect(try reopened.remove(rows.map(\.id)) == 2)
        #expect(reopened.count == 3)
        #expect(try reopened.oldest(10).map { String(decoding: $0.body, as: UTF8.self) } == ["p5", "p6", "p7"])
    }

    @Test("points the server never acknowledged stay on disk through a restart, and go first, with their original timestamps, after it")
    func replayAfterRestart() async throws {
        let path = try tempPath()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        try await withServer { s in
            // 1. The server cannot be reached: 50 sends, bound 30 → the newest 30 are kept, 20 dropped.
            var down = PlexusConfiguration(apiKey: s.key, sourceID: "dur-1", gatewayURL: "http://127.0.0.1:1", installID: "d1")
            down.bufferPath = path
            down.maxBufferedPoints = 30
            down.flushInterval = .milliseconds(10)
            down.retry = RetryPolicy(maxRetries: 0)
            // This device's clock is an hour behind (it never reaches the server to learn
            // better), so points stamped when sent and points stamped when replayed differ.
            let hour = 3_600_000.0
            down.wallClockOffset = .seconds(-3_600)
            let sentBefore = nowMillis() - hour
            var sendsDone = 0.0
            do {
                let px = Plexus(configuration: down)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await px.run() }
                    for i in 0..<50 {
                        try px.send("m", .number(Double(i)))
                        try await Task.sleep(for: .milliseconds(2))
                    }
                    sendsDone = nowMillis() - hour
                    _ = await eventually(timeout: .seconds(2)) { px.bufferedPoints == 30 && px.droppedPoints == 20 }
                    #expect(px.bufferedPoints == 30)
                    #expect(px.droppedPoints == 20)
                    group.cancelAll()  // the program ends without the server having seen any of them
                }
            }
            #expect(Plexus.bufferedPoints(inBuffer: path) == 30)
            #expect(try await s.rawValues("dur-1", "m").values.isEmpty)

            // 2. A new process, the server reachable: the 30 go first, then what is sent now.
            var up = PlexusConfiguration(apiKey: s.key, sourceID: "dur-1", gatewayURL: s.url, installID: "d1")
            up.bufferPath = path
            up.maxBatchPoints = 10
            up.flushInterval = .milliseconds(20)
            let (dash, _) = await s.dashboard()
            dash.send(json: ["type": "subscribe", "source_id": "dur-1"])
            #expect(await dash.next(type: "subscribed") != nil)
            try await withPlexus(up) { px in
                #expect(px.bufferedPoints == 30)
                #expect(await eventually(timeout: .seconds(5)) { px.isConnected })
                try px.send("m", 1_000)
                try await px.flush()
                #expect(px.bufferedPoints == 0)
            }
            #expect(Plexus.bufferedPoints(inBuffer: path) == 0)
            let first = try #require(await dash.next(type: "telemetry"))
            let firstValues = (first["points"] as? [[String: Any]] ?? []).compactMap { $0["value"] as? Double }
            #expect(firstValues.sorted() == (20..<30).map(Double.init), "the oldest kept points go first")

            let stored = try await s.rawValues("dur-1", "m")
            let values = stored.values.compactMap { $0 as? Double }
            #expect(values.sorted() == (20..<50).map(Double.init) + [1_000])
            // Their timestamps are those of the first process's sends, not of the replay.
            let replayed = zip(stored.ts, values).filter { $0.1 < 1_000 }.map(\.0)
            #expect(replayed.count == 30)
            #expect(replayed.allSatisfy { $0 >= sentBefore - 5 && $0 <= sendsDone + 5 }, "\(replayed) vs \(sentBefore)…\(sendsDone)")
        }
    }
}
