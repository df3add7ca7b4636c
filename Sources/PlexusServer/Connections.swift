import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOEmbedded
import PlexusCore
import Synchronization

/// Limits on connections that cost nothing to open: how long one may sit idle, how long a
/// request may take to arrive, and how many one client address may hold.
public struct ConnectionLimits: Sendable {
    /// A connection that has not sent a complete first request head within this time is
    /// closed, and so is a keep-alive connection idle between requests for this long
    /// (Hummingbird's idle handler, which also cuts a later request head that stalls).
    public var idleTimeout: Duration = .seconds(60)
    /// A request body must have arrived in full within this time of the request's start;
    /// otherwise the connection is closed.
    public var bodyTimeout: Duration = .seconds(30)
    /// Open connections (HTTP and WebSocket) one client address may hold; further ones are
    /// closed as soon as they are accepted. 0 turns the cap off.
    public var maxConnectionsPerClient = 1_024

    public init() {}
}

/// Counts open connections per client address.
final class ClientConnections: Sendable {
    private let counts = Mutex([String: Int]())

    /// Takes a place for `client`, or returns false when it holds `limit` already.
    func open(_ client: String, limit: Int) -> Bool {
        counts.withLock { c in
            let n = c[client, default: 0]
            if limit > 0 && n >= limit { return false }
            c[client] = n + 1
            return true
        }
    }

    func close(_ client: String) {
        counts.withLock { c in
            guard let n = c[client] else { return }
            if n <= 1 { c[client] = nil } else { c[client] = n - 1 }
        }
    }

    func count(_ client: String) -> Int { counts.withLock { $0[client, default: 0] } }
}

/// The first handler of every accepted connection: enforces the per-client cap, and closes
/// a connection that goes quiet before its first response: no byte for the idle timeout
/// before the first request head (`\r\n\r\n`) or after it, until the server writes its
/// first response bytes. Hummingbird's own idle handler is only added once a first head has
/// been parsed, and a head its parser refuses (a NUL in a value, a space in a name, bytes
/// that are not HTTP) is neither answered nor closed by it; without this, such a socket, or
/// one that sends nothing or half a header, would stay open forever. After the first
/// response it only passes bytes on.
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    let limits: ConnectionLimits
    let connections: ClientConnections
    private var client: String?
    private var deadline: Scheduled<Void>?
    private var sawHead = false
    /// Set by the first write: from then on Hummingbird's handlers keep time.
    private var answered = false
    /// The last read after the head; the deadline, when it fires, waits on from here.
    private var lastRead = NIODeadline.now()
    /// The last bytes seen, to find `\r\n\r\n` across reads.
    private var tail: UInt32 = 0

    init(limits: ConnectionLimits, connections: ClientConnections) {
        self.limits = limits
        self.connections = connections
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private var idle: TimeAmount { .nanoseconds(limits.idleTimeout.nanoseconds) }

    private func start(_ context: ChannelHandlerContext) {
        guard client == nil else { return }
        let address = context.channel.remoteAddress?.ipAddress ?? "unknown"
        client = address
        guard connections.open(address, limit: limits.maxConnectionsPerClient) else {
            client = ""  // never counted, so never released
            ServerMetrics.rejected(reason: "TOO_MANY_CONNECTIONS", transport: "tcp")
            context.close(promise: nil)
            return
        }
        let connections = self.connections
        context.channel.closeFuture.whenComplete { _ in connections.close(address) }
        schedule(context, in: idle)
    }

    /// Closes the connection at the deadline unless a read after the head moved it on.
    private func schedule(_ context: ChannelHandlerContext, in delay: TimeAmount) {
        let channel = context.channel
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = loopBound.value
            guard !handler.answered else { return }
            let quietUntil = handler.lastRead + handler.idle
            if handler.sawHead, quietUntil > .now() {
                handler.schedule(context, in: quietUntil - .now())
                return
            }
            ServerMetrics.rejected(reason: handler.sawHead ? "NO_RESPONSE" : "IDLE_TIMEOUT", transport: "tcp")
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if sawHead {
            if !answered { lastRead = .now() }
        } else {
            let buffer = unwrapInboundIn(data)
            for byte in buffer.readableBytesView {
                tail = tail << 8 | UInt32(byte)
                if tail == 0x0D0A_0D0A {
                    sawHead = true
                    lastRead = .now()
                    break
                }
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if !answered {
            answered = true
            deadline?.cancel()
            deadline = nil
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, atto) = components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : ns &+ atto / 1_000_000_000
    }
}

/// Sets up one connection's pipeline on an `EmbeddedChannel`, on this thread, before the
/// server listens, so the generic types it uses exist before two event loops can need them
/// at once.
///
/// The Swift 6.3 runtime on Linux can crash (a null dereference in
/// `swift_conformsToProtocolMaybeInstantiateSuperclasses`) when one thread checks a
/// conformance of a generic class without a superclass, NIO's `HTTPDecoder<…>`, while
/// another thread is still completing that class's metadata. Both event loops do exactly
/// that for the first connections they accept at the same moment (seen as a SIGSEGV in
/// `configureUpgradableHTTPServerPipeline` about once in 600 starts, with six clients
/// connecting as the server came up).
func prepareConnectionTypes<Child: ServerChildChannel>(_ child: Child, logger: Logger) {
    let channel = EmbeddedChannel()
    _ = child.setup(channel: channel, logger: logger)
    _ = try? channel.finish(acceptAlreadyClosed: true)
}

/// Wraps a server child channel so every connection passes the ``ConnectionGuardHandler``
/// first.
struct GuardedChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner
    let limits: ConnectionLimits
    let connections: ClientConnections

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            try channel.pipeline.syncOperations.addHandler(ConnectionGuardHandler(limits: limits, connections: connections))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Closes the connection of a request whose body has not arrived in full within the body
/// timeout (slow-body clients hold a socket and a handler otherwise). A request that
/// declares no body is not timed; a handler that answers without reading the body (a
/// 401, say) leaves the timer running, so a body still trickling in is cut all the same.
struct BodyDeadlineMiddleware: RouterMiddleware {
    typealias Context = PlexusRequestContext
    let timeout: Duration

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let declared = request.headers[.contentLength].flatMap { Int($0) }
        let chunked = request.headers[.transferEncoding] != nil
        guard chunked || (declared ?? 0) > 0, let channel = context.channel else { return try await next(request, context) }
        let done = DoneFlag()
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
            if !done.isSet {
                ServerMetrics.rejected(reason: "BODY_TIMEOUT", transport: "http")
                channel.close(promise: nil)
            }
        }
        var request = request
        request.body = RequestBody(
            asyncSequence: SignalledBody(base: request.body) {
                done.set()
                timer.cancel()
            })
        return try await next(request, context)
    }
}

/// A request body that calls `onEnd` once it has been read to its end.
struct SignalledBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let base: RequestBody
    let onEnd: @Sendable () -> Void

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator
        let onEnd: @Sendable () -> Void
        mutating func next() async throws -> ByteBuffer? {
            let b = try await base.next()
            if b == nil { onEnd() }
            return b
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), onEnd: onEnd) }
}

final class DoneFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}
