import Foundation
import Logging
import NIOCore
package import NIOWebSocket
import Synchronization
import Testing
import WSClient

/// A WebSocket client for tests: send text, read frames with a timeout, see the close code.
package final class TestSocket: Sendable {
    package enum Out: Sendable {
        case text(String)
        case binary([UInt8])
        /// A text frame with exactly these bytes (may be invalid UTF-8).
        case rawText([UInt8])
        case close
    }

    private let outbound: AsyncStream<Out>.Continuation
    private let task: Task<Void, Never>

    package init(url: String) {
        let (outStream, outCont) = AsyncStream.makeStream(of: Out.self)
        outbound = outCont
        var logger = Logger(label: "test.ws")
        logger.logLevel = .critical
        let box = Box()
        task = Task {
            let frame = try? await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 1 << 24), logger: logger) {
                inbound, outbound, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await o in outStream {
                            switch o {
                            case .text(let s): try await outbound.write(.text(s))
                            case .binary(let b): try await outbound.write(.binary(ByteBuffer(bytes: b)))
                            case .rawText(let b):
                                try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: b))))
                            case .close:
                                try await outbound.close(.normalClosure, reason: nil)
                                return
                            }
                        }
                    }
                    for try await m in inbound.messages(maxSize: 1 << 24) {
                        if case .text(let s) = m { box.append(s) }
                    }
                    group.cancelAll()
                }
            }
            box.finish(code: frame.map { Self.number($0.closeCode) })
        }
        self.box = box
    }

    private let box: Box

    /// Frames and the close, shared with the connection task.
    package final class Box: Sendable {
        let frames = Mutex<[String]>([])
        let done = Mutex<(Bool, Int?)>((false, nil))
        /// Every frame the server wrote that a strict JSON parser refuses (Foundation's
        /// refuses NaN and Infinity, bad escapes and broken UTF-8).
        let notJSON = Mutex<[String]>([])
        func append(_ s: String) {
            if (try? JSONSerialization.jsonObject(with: Data(s.utf8))) == nil { notJSON.withLock { $0.append(s) } }
            frames.withLock { $0.append(s) }
        }
        func finish(code: Int?) { done.withLock { $0 = (true, code) } }
    }

    package static func number(_ c: WebSocketErrorCode) -> Int {
        switch c {
        case .normalClosure: 1000
        case .goingAway: 1001
        case .protocolError: 1002
        case .unacceptableData: 1003
        case .dataInconsistentWithMessage: 1007
        case .policyViolation: 1008
        case .messageTooLarge: 1009
        case .missingExtension: 1010
        case .unexpectedServerError: 1011
        case .unknown(let n): Int(n)
        }
    }

    /// Frames received so far that are not strict JSON (should always be empty).
    package var notJSON: [String] { box.notJSON.withLock { $0 } }

    package func send(_ text: String) { outbound.yield(.text(text)) }
    package func send(json: [String: Any]) { send(String(decoding: try! JSONSerialization.data(withJSONObject: json), as: UTF8.self)) }
    package func close() { outbound.yield(.close) }
    package func send(binary: [UInt8]) { outbound.yield(.binary(binary)) }
    package func send(rawText: [UInt8]) { outbound.yield(.rawText(rawText)) }

    /// The next frame (parsed), or nil if none arrives in time or the socket has closed
    /// with nothing left to read.
    package func next(timeout: Duration = .seconds(20)) async -> [String: Any]? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            // Read `done` first: frames arrive before the close, so a close seen here means
            // the frame list below is complete.
            let closed = box.done.withLock { $0.0 }
            if let s = box.frames.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                return (try? JSONSerialization.jsonObject(with: Data(s.utf8))) as? [String: Any]
            }
            if closed { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    /// The next frame of a type, skipping others.
    package func next(type: String, timeout: Duration = .seconds(20)) async -> [String: Any]? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let f = await next(timeout: deadline - ContinuousClock.now) else { return nil }
            if f["type"] as? String == type { return f }
        }
        return nil
    }

    /// Waits for the server to close; returns the close code (nil if it did not close in time).
    package func closed(timeout: Duration = .seconds(20)) async -> Int? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (done, code) = box.done.withLock { $0 }
            if done { return code ?? -1 }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    deinit { task.cancel() }
}

extension TestServer {
    package var wsURL: String { "ws://127.0.0.1:\(port)" }

    /// A device connected and authenticated as `name`; returns the socket and the reply.
    package func device(_ name: String, key: String? = nil, extra: [String: Any] = [:]) async -> (TestSocket, [String: Any]?) {
        let s = TestSocket(url: wsURL + "/ws/device")
        var auth: [String: Any] = ["type": "device_auth", "api_key": key ?? self.key, "source_id": name, "platform": "test"]
        auth.merge(extra) { $1 }
        s.send(json: auth)
        return (s, await s.next())
    }

    package func dashboard(key: String? = nil) async -> (TestSocket, [String: Any]?) {
        let s = TestSocket(url: wsURL + "/ws/browser")
        s.send(json: ["type": "auth", "api_key": key ?? self.key])
        return (s, await s.next())
    }
}
