public import Hummingbird
public import NIOCore

/// The context of every HTTP request Plexus serves: Hummingbird's core context plus the
/// address of the peer, for limits kept per client (sign-in throttling, connections).
public struct PlexusRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The connection the request came on (to close it when a body stalls).
    public let channel: (any Channel)?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }

    /// The peer's IP address as text ("unknown" when the transport has none).
    public var clientAddress: String { remoteAddress?.ipAddress ?? "unknown" }
}
