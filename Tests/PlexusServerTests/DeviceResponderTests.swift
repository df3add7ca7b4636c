import Synchronization
import Testing

@testable import PlexusServer

/// The device connection's responder with effects that only write to a log: its rules
/// (order, grouping, failure, close, room), not a store or a socket, are under test.
@Suite("Device responder")
struct DeviceResponderTests {
    /// What the responder did, in order.
    final class Log: Sendable {
        let entries = Mutex<[String]>([])
        func add(_ s: String) { entries.withLock { $0.append(s) } }
        var all: [String] { entries.withLock { $0 } }
    }

    struct Failure: Error {}

    static func run(_ r: DeviceResponder<Int>, _ log: Log, failOn: Int? = nil, closeAfterFrame: Int? = nil) async {
        let frames = Mutex(0)
        await r.run(
            store: { items in
                log.add("store \(items.map(String.init).joined(separator: ","))")
                if let failOn, items.contains(failOn) { throw Failure() }
            },
            send: { log.add("send \(String(decoding: $0, as: UTF8.self))") },
            close: { code, _ in log.add("close \(code)") },
            frameDone: {
                let n = frames.withLock { n in
                    n += 1
                    return n
                }
                return n == closeAfterFrame ? (1001, "going away") : nil
            },
            failed: { _ in log.add("failed") })
    }

    @Test("appends waiting together are stored together, and every answer waits for the appends before it")
    func orderAndGroups() async {
        let r = DeviceResponder<Int>()
        let log = Log()
        for step: DeviceResponder<Int>.Step in [
            .append(1, bytes: 10), .send(Array("ack1".utf8)), .frameDone,
            .append(2, bytes: 10), .append(3, bytes: 10), .send(Array("ack3".utf8)),
            .frameDone, .send(Array("pong".utf8)), .frameDone,
        ] {
            #expect(await r.enqueue(step))
        }
        r.finish()
        await Self.run(r, log)
        #expect(log.all == ["store 1", "send ack1", "store 2,3", "send ack3", "send pong"])
    }

    @Test("after a failed append nothing more is answered, and the reader is told to stop")
    func stopsAtFailure() async {
        let r = DeviceResponder<Int>()
        let log = Log()
        for step: DeviceResponder<Int>.Step in [
            .append(1, bytes: 1), .send(Array("ack1".utf8)), .append(2, bytes: 1),
            .send(Array("ack2".utf8)), .append(3, bytes: 1), .send(Array("ack3".utf8)),
        ] {
            #expect(await r.enqueue(step))
        }
        await Self.run(r, log, failOn: 2)
        #expect(log.all == ["store 1", "send ack1", "store 2", "failed"])
        #expect(await r.enqueue(.send(Array("late".utf8))) == false)
    }

    @Test("a close is the last thing performed; a frame that finishes while draining closes")
    func closes() async {
        let r = DeviceResponder<Int>()
        let log = Log()
        for step: DeviceResponder<Int>.Step in [.send(Array("err".utf8)), .close(1008, "bad"), .send(Array("never".utf8))] {
            #expect(await r.enqueue(step))
        }
        await Self.run(r, log)
        #expect(log.all == ["send err", "close 1008"])

        let d = DeviceResponder<Int>()
        let dlog = Log()
        for step: DeviceResponder<Int>.Step in [
            .append(1, bytes: 1), .send(Array("ack1".utf8)), .frameDone,
            .append(2, bytes: 1), .send(Array("ack2".utf8)), .frameDone,
        ] {
            #expect(await d.enqueue(step))
        }
        await Self.run(d, dlog, closeAfterFrame: 2)
        #expect(dlog.all == ["store 1", "send ack1", "store 2", "send ack2", "close 1001"])
    }

    @Test("a cancelled connection stops its responder (no spin, no hang)", .timeLimit(.minutes(1)))
    func cancelled() async {
        let r = DeviceResponder<Int>()
        let log = Log()
        await withTaskGroup(of: Void.self) { g in
            g.addTask { await Self.run(r, log) }
            #expect(await r.enqueue(.send(Array("one".utf8))))
            while log.all.isEmpty { await Task.yield() }
            g.cancelAll()
        }
        #expect(log.all == ["send one"])
    }

    @Test(
        "a full queue makes the reader wait for room, by steps and by bytes; nothing is lost or reordered",
        arguments: [DeviceResponder<Int>.Limits(steps: 1, bytes: 1 << 20), .init(steps: 1_000, bytes: 100)])
    func room(_ limits: DeviceResponder<Int>.Limits) async {
        let r = DeviceResponder<Int>(limits: limits)
        let log = Log()
        await withTaskGroup(of: Void.self) { g in
            g.addTask { await Self.run(r, log) }
            g.addTask {
                for i in 0..<50 {
                    // Each append is as big as the byte limit: one at a time, but admitted.
                    #expect(await r.enqueue(.append(i, bytes: 100)))
                    #expect(await r.enqueue(.send(Array("ack\(i)".utf8))))
                }
                r.finish()
            }
        }
        let stored = log.all.filter { $0.hasPrefix("store") }.flatMap { $0.dropFirst(6).split(separator: ",").map { Int($0)! } }
        #expect(stored == Array(0..<50))
        #expect(log.all.filter { $0.hasPrefix("send") } == (0..<50).map { "send ack\($0)" })
        // Every ack comes after its own append.
        for i in 0..<50 {
            let ack = log.all.firstIndex(of: "send ack\(i)")!
            let store = log.all.firstIndex { $0.hasPrefix("store") && $0.dropFirst(6).split(separator: ",").contains("\(i)") }!
            #expect(store < ack)
        }
    }
}
