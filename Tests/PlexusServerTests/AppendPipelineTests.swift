@testable import PlexusServer
import Synchronization
import Testing

/// The device connection's append pipeline, with appends that are plain closures (the
/// pipeline's rules, not a store, are under test).
/// A gate the test opens to let appends finish.
final class PipelineGate: Sendable {
    private let open = Mutex(false)
    func release() { open.withLock { $0 = true } }
    func wait() async {
        while !open.withLock({ $0 }) { await Task.yield() }
    }
}

/// What the appender did, shared with the test.
final class PipelineLog: Sendable {
    let items = Mutex<[Int]>([])
    func add(_ i: Int) { items.withLock { $0.append(i) } }
    var all: [Int] { items.withLock { $0 } }
}

@Suite("Append pipeline")
struct AppendPipelineTests {
    @Test("appends waiting together run together; acks come in the order the frames came")
    func orderedAcks() async {
        let p = AppendPipeline<Int>(limit: 100)
        let gate = PipelineGate()
        let started = PipelineLog()
        let acked = PipelineLog()
        for i in 0..<20 { #expect(await p.enqueue(i)) }
        p.finish()
        await withTaskGroup(of: Void.self) { g in
            g.addTask {
                await p.run(append: { i in
                    started.add(i)
                    await gate.wait()
                    // Later frames finish first: the acks must still come in order.
                    for _ in 0..<(20 - i) { await Task.yield() }
                }, acknowledge: { i in acked.add(i) }, fail: { _, _ in Issue.record("no failure expected") })
            }
            // All twenty were started before any finished: one batch, one shared sync.
            while started.all.count < 20 { await Task.yield() }
            gate.release()
        }
        #expect(acked.all == Array(0..<20))
    }

    @Test("after the first failure nothing more is acknowledged, and later frames are refused")
    func stopsAtFailure() async {
        struct Boom: Error {}
        let p = AppendPipeline<Int>(limit: 100)
        for i in 0..<5 { await p.enqueue(i) }
        let acked = PipelineLog()
        let failed = PipelineLog()
        await p.run(append: { i in if i == 2 { throw Boom() } }, acknowledge: { i in acked.add(i) },
                    fail: { i, _ in failed.add(i) })
        #expect(acked.all == [0, 1])
        #expect(failed.all == [2])
        #expect(await p.enqueue(9) == false)
        await p.waitUntilIdle()  // returns: a failed pipeline is idle
    }

    @Test("the reader waits for room past the limit, and idleness means everything is acknowledged")
    func backpressure() async {
        let p = AppendPipeline<Int>(limit: 3)
        let gate = PipelineGate()
        let acked = PipelineLog()
        let enqueued = PipelineLog()
        await withTaskGroup(of: Void.self) { g in
            g.addTask {
                await p.run(append: { _ in await gate.wait() }, acknowledge: { i in acked.add(i) },
                            fail: { _, _ in })
            }
            g.addTask {
                for i in 0..<6 {
                    await p.enqueue(i)
                    enqueued.add(i)
                }
                await p.waitUntilIdle()
                #expect(acked.all == Array(0..<6))
                p.finish()
            }
            // Three fit; the fourth waits while the gate is shut.
            while enqueued.all.count < 3 { await Task.yield() }
            for _ in 0..<1_000 { await Task.yield() }
            #expect(enqueued.all.count == 3)
            gate.release()
        }
        #expect(enqueued.all.count == 6)
    }
}
