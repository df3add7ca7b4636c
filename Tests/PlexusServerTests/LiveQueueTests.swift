import Foundation
import PlexusModel
import Testing

@testable import PlexusServer

/// The dashboard outbox policy without sockets or clocks: times are plain durations.
@Suite("Live queue: coalescing, byte and age bounds, gap notices, stalls")
struct LiveQueueTests {
    static func chunk(_ source: String, _ values: ClosedRange<Int>, at ms: Int64 = 1_000) -> LiveChunk {
        var w = JSONWriter()
        var n = 0
        for v in values {
            if n > 0 { w.raw(",") }
            w.raw("{\"metric\":\"m\",\"value\":")
            w.int(v)
            w.raw(",\"timestamp\":")
            w.int(ms + Int64(v))
            w.raw("}")
            n += 1
        }
        return LiveChunk(
            sourceID: source, bytes: w.bytes, count: n, firstMicros: (ms + Int64(values.lowerBound)) * 1_000,
            lastMicros: (ms + Int64(values.upperBound)) * 1_000)
    }

    static func json(_ frame: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(frame)) as? [String: Any])
    }

    static func ms(_ n: Int) -> Duration { .milliseconds(n) }

    @Test("a drain coalesces every source's points into one telemetry_batch frame, oldest first")
    func coalescesIntoOneFrame() throws {
        var q = LiveQueue()
        q.batch = true
        let accepted = [
            q.enqueue(.points(Self.chunk("a", 1...1)), now: Self.ms(0)),
            q.enqueue(.points(Self.chunk("b", 1...2)), now: Self.ms(1)),
            q.enqueue(.points(Self.chunk("a", 2...3)), now: Self.ms(2)),
        ]
        #expect(accepted == [true, true, true])
        let d = q.drain(now: Self.ms(3))
        #expect(d.frames.count == 1 && d.close == nil)
        let f = try Self.json(d.frames[0])
        #expect(f["type"] as? String == "telemetry_batch")
        let sources = try #require(f["sources"] as? [[String: Any]])
        #expect(sources.map { $0["source_id"] as? String } == ["a", "b"])
        #expect((sources[0]["points"] as? [[String: Any]])?.map { $0["value"] as? Int } == [1, 2, 3])
        #expect((sources[1]["points"] as? [[String: Any]])?.count == 2)
        // Each element is an ingest body: the typed decoder splits it back.
        let elements = try #require(d.frames[0].withUnsafeBytes { LiveFrame.batchSources($0) })
        #expect(elements.count == 2)
        #expect(q.isEmpty && q.bytes == 0)
        #expect(q.drain(now: Self.ms(4)).frames.isEmpty)
    }

    @Test("without batches: one telemetry frame per source; the server's frames and relays go first")
    func perSourceFramesAndOrder() throws {
        var q = LiveQueue()
        _ = q.enqueue(.points(Self.chunk("a", 1...1)), now: .zero)
        _ = q.enqueue(.frame(Array(#"{"type":"heartbeat","source_id":"a"}"#.utf8)), now: .zero)
        _ = q.enqueue(control: Array(#"{"type":"pong"}"#.utf8))
        _ = q.enqueue(.points(Self.chunk("b", 1...1)), now: .zero)
        let types = try q.drain(now: Self.ms(1)).frames.map { try Self.json($0)["type"] as? String }
        #expect(types == ["pong", "heartbeat", "telemetry", "telemetry"])
    }

    @Test("drains are at least the minimum interval apart; a close is not held back")
    func drainInterval() {
        var q = LiveQueue(limits: .init(minDrainInterval: .milliseconds(2)))
        #expect(q.delayBeforeDrain(now: Self.ms(10)) == .zero)
        _ = q.drain(now: Self.ms(10))
        #expect(q.delayBeforeDrain(now: .microseconds(10_500)) == .microseconds(1_500))
        #expect(q.delayBeforeDrain(now: Self.ms(13)) == .zero)
        q.close(code: 1008, reason: "x")
        #expect(q.delayBeforeDrain(now: .microseconds(10_500)) == .zero)
    }

    @Test("the byte bound drops the oldest live data first and the next drain starts with a gap notice")
    func byteBound() throws {
        let chunks = (0..<5).map { i in Self.chunk(i < 2 ? "old" : "new", (i * 10 + 1)...(i * 10 + 10)) }
        // Room for the last three (the largest: their values have more digits).
        var q = LiveQueue(limits: .init(maxBytes: chunks[2...].reduce(0) { $0 + LiveQueue.Live.points($1).byteCount }))
        q.batch = true
        for c in chunks { _ = q.enqueue(.points(c), now: .zero) }
        #expect(q.bytes <= q.limits.maxBytes)
        #expect(q.pendingGap.droppedPoints == 20 && q.pendingGap.sources.map(\.sourceID) == ["old"])
        let d = q.drain(now: Self.ms(1))
        #expect(d.frames.count == 2)
        let gap = try Self.json(d.frames[0])
        #expect(gap["type"] as? String == "gap" && gap["dropped_points"] as? Int == 20 && gap["dropped_frames"] as? Int == 0)
        let s = try #require((gap["sources"] as? [[String: Any]])?.first)
        #expect(s["source_id"] as? String == "old" && s["points"] as? Int == 20)
        #expect(s["from_ms"] as? Int == 1_001 && s["to_ms"] as? Int == 1_020)
        let kept = try #require((try Self.json(d.frames[1])["sources"] as? [[String: Any]])?.first?["points"] as? [Any])
        #expect(kept.count == 30)
        // Reported once.
        _ = q.enqueue(.points(Self.chunk("new", 99...99)), now: Self.ms(2))
        #expect(try q.drain(now: Self.ms(3)).frames.map { try Self.json($0)["type"] as? String } == ["telemetry_batch"])
    }

    @Test("the age bound: nothing that waited longer than max age is sent, and the drop is reported")
    func ageBound() throws {
        var q = LiveQueue(limits: .init(maxAge: .seconds(1)))
        _ = q.enqueue(.points(Self.chunk("a", 1...5)), now: Self.ms(0))
        _ = q.enqueue(.frame(Array(#"{"type":"video_frame","source_id":"a"}"#.utf8)), now: Self.ms(100))
        _ = q.enqueue(control: Array(#"{"type":"source_status","source_id":"a","status":"offline"}"#.utf8))
        _ = q.enqueue(.points(Self.chunk("a", 6...7)), now: Self.ms(900))
        // At 1.5 s the first two have waited too long; the server's own frame is kept.
        let d = q.drain(now: Self.ms(1_500))
        let frames = try d.frames.map(Self.json)
        #expect(frames.map { $0["type"] as? String } == ["gap", "source_status", "telemetry"])
        #expect(frames[0]["dropped_points"] as? Int == 5 && frames[0]["dropped_frames"] as? Int == 1)
        #expect((frames[2]["points"] as? [[String: Any]])?.map { $0["value"] as? Int } == [6, 7])
        // Expired while a write was stuck: dropped on the next enqueue too, not only at drain.
        _ = q.enqueue(.points(Self.chunk("a", 8...8)), now: Self.ms(2_000))
        _ = q.enqueue(.points(Self.chunk("a", 9...9)), now: Self.ms(3_500))
        #expect(q.pendingGap.droppedPoints == 1)
    }

    @Test("signing in: while held nothing is sent, then init goes first, ahead of status frames and gap notices")
    func holdUntilInit() throws {
        var q = LiveQueue(limits: .init(maxAge: .seconds(1)))
        q.hold()
        _ = q.enqueue(control: Array(#"{"type":"source_status","source_id":"a","status":"online"}"#.utf8))
        _ = q.enqueue(.frame(Array(#"{"type":"heartbeat","source_id":"a"}"#.utf8)), now: Self.ms(0))
        #expect(q.drain(now: Self.ms(10)).frames.isEmpty)
        q.release(first: Array(#"{"type":"init"}"#.utf8))
        // The heartbeat waited past max age while held: a gap, reported after init.
        let frames = try q.drain(now: Self.ms(1_500)).frames.map(Self.json)
        #expect(frames.map { $0["type"] as? String } == ["init", "gap", "source_status"])
        // Released once: later frames queue as usual.
        q.release(first: Array(#"{"type":"error"}"#.utf8))
        #expect(try q.drain(now: Self.ms(1_600)).frames.map { try Self.json($0)["type"] as? String } == ["error"])
        // A close while held still goes out (a sign-in that failed).
        var closing = LiveQueue()
        closing.hold()
        closing.close(code: 1008, reason: "no")
        #expect(closing.drain(now: .zero).close?.code == 1008)
    }

    @Test("the server's own frames are capped by count, oldest dropped and counted")
    func controlCap() {
        var q = LiveQueue(limits: .init(maxControlFrames: 3))
        for i in 0..<5 { _ = q.enqueue(control: Array("{\"type\":\"error\",\"n\":\(i)}".utf8)) }
        #expect(q.pendingGap.droppedFrames == 2)
        #expect(q.drain(now: .zero).frames.count == 4)  // the gap notice and three frames
    }

    @Test("stall detection: a write that does not finish within stallAfter marks the consumer stalled")
    func stall() {
        var q = LiveQueue(limits: .init(stallAfter: .seconds(5)))
        #expect(!q.stalled(now: .seconds(100)))  // nothing written, nothing stuck
        _ = q.enqueue(.points(Self.chunk("a", 1...1)), now: .seconds(1))
        _ = q.drain(now: .seconds(1))
        #expect(!q.stalled(now: .seconds(6)))
        #expect(q.stalled(now: .seconds(6) + .milliseconds(1)))
        q.wrote()
        #expect(!q.stalled(now: .seconds(60)))
        // An empty drain starts no write.
        _ = q.drain(now: .seconds(61))
        #expect(!q.stalled(now: .seconds(100)))
    }

    @Test("after close nothing is queued; the close comes after what was queued before it")
    func closeOrder() {
        var q = LiveQueue()
        _ = q.enqueue(control: Array(#"{"type":"error"}"#.utf8))
        q.close(code: 1008, reason: "credentials revoked")
        let accepted = q.enqueue(.points(Self.chunk("a", 1...1)), now: .zero)
        #expect(!accepted)
        let d = q.drain(now: .zero)
        #expect(d.frames.count == 1 && d.close?.code == 1008)
    }

    @Test("FIFO keeps order across compaction")
    func fifo() {
        var f = FIFO<Int>()
        var expected = 0
        for i in 0..<5_000 {
            f.append(i)
            if i % 3 == 0, let x = f.popFirst() {
                #expect(x == expected)
                expected += 1
            }
        }
        while let x = f.popFirst() {
            #expect(x == expected)
            expected += 1
        }
        #expect(expected == 5_000 && f.isEmpty)
    }
}

/// The hub's fan-out and subscription bounds, without sockets.
@Suite("Hub: shared chunks, metric filters, subscription bounds")
struct HubLiveTests {
    static func batch(_ json: String) throws -> IngestBatch {
        try Array(json.utf8).withUnsafeBytes { try IngestDecoder.decode($0) }
    }

    @Test("publish: one chunk per source; a filtered dashboard gets only its metrics")
    func publishFilters() throws {
        let hub = Hub()
        let all = DashboardOutbox(id: 1)
        let some = DashboardOutbox(id: 2)
        let other = DashboardOutbox(id: 3)
        for (o, org) in [(all, Int64(1)), (some, 1), (other, 2)] {
            hub.register(dashboard: o, orgID: org, canControl: false, credential: .apiKey(hash: [1]))
            o.useBatches()
        }
        #expect(hub.subscribe(dashboard: 1, source: nil, metrics: []) == .subscribed)
        #expect(hub.subscribe(dashboard: 2, source: "rig", metrics: ["b"]) == .subscribed)
        #expect(hub.subscribe(dashboard: 3, source: nil, metrics: []) == .subscribed)
        hub.publish(
            orgID: 1,
            batch: try Self.batch(
                #"{"source_id":"rig","points":[{"metric":"a","value":1,"timestamp":1700000000000},{"metric":"b","value":2,"timestamp":1700000000001}]}"#
            ),
            receivedAt: 0)
        func points(_ o: DashboardOutbox) throws -> [String] {
            guard let f = o.drain().frames.first else { return [] }
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(f)) as? [String: Any])
            let s = (obj["sources"] as? [[String: Any]])?.first
            return (s?["points"] as? [[String: Any]])?.compactMap { $0["metric"] as? String } ?? []
        }
        #expect(try points(all) == ["a", "b"])
        #expect(try points(some) == ["b"])
        #expect(try points(other).isEmpty)
    }

    @Test("subscriptions are bounded per dashboard and per organisation; a refusal changes nothing")
    func bounds() {
        let hub = Hub(limits: .init(pairsPerDashboard: 3, pairsPerOrganization: 4))
        for id in 1...3 {
            hub.register(dashboard: DashboardOutbox(id: id), orgID: 1, canControl: false, credential: .apiKey(hash: [1]))
        }
        #expect(hub.subscribe(dashboard: 1, source: "a", metrics: ["x", "y"]) == .subscribed)
        #expect(hub.subscribe(dashboard: 1, source: "b", metrics: []) == .subscribed)
        #expect(hub.subscribe(dashboard: 1, source: "c", metrics: []) == .tooManyForDashboard(3))
        // Replacing a list with a shorter one, or watching everything (one pair), is allowed.
        #expect(hub.subscribe(dashboard: 1, source: "a", metrics: ["x"]) == .subscribed)
        #expect(hub.subscribe(dashboard: 1, source: "c", metrics: []) == .subscribed)
        #expect(hub.subscribe(dashboard: 2, source: "a", metrics: ["x", "y"]) == .tooManyForOrganization(4))
        #expect(hub.subscribe(dashboard: 2, source: "a", metrics: ["x"]) == .subscribed)
        #expect(hub.subscribe(dashboard: 3, source: nil, metrics: []) == .tooManyForOrganization(4))
        hub.unregister(dashboard: 1)
        #expect(hub.subscribe(dashboard: 3, source: nil, metrics: []) == .subscribed)
    }
}
