import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import PlexusModel
import PlexusStorage

/// HTTP routes of the real-time half: device commands, the SDKs' key check and config,
/// device-name claims; and the WebSocket upgrade routes.
struct GatewayRoutes {
    let state: ServerState
    let gateway: Gateway

    func register(_ router: Router<PlexusRequestContext>) {
        router.group(requiring: .write, state.auth).post("/v1/sources/:id/commands") { request, context in
            let p = try context.caller
            let source = try context.parameters.require("id")
            let body = try await JSONBody.decode(CommandRequest.self, from: request)
            guard let command = body.command else { throw APIError.badRequest("command is required") }
            var fields: [String: String] = [:]
            if let params = body.params, params != .null {
                guard let members = params.objectValue else { throw APIError.badRequest("params must be an object") }
                for (k, v) in members { fields[k] = String(decoding: try JSONText.encoder.encode(v), as: UTF8.self) }
            }
            do {
                let frame = try await gateway.control(orgID: p.orgID, sourceID: source, command: command, fields: fields)
                return try Reply.json(CommandQueued(queued: true, frame: try JSONBody.decode(JSONValue.self, from: Data(frame))))
            } catch let e as Gateway.ControlError {
                throw e.apiError
            }
        }
        // plexus-python's `plexus whoami` and `plexus start` (0.1.0) check keys here.
        router.get("/api/auth/verify-key") { request, _ in
            guard let key = Authenticator.presentedKey(request.headers) else { throw APIError.unauthorized("missing x-api-key") }
            let p = try await state.auth.verify(key)
            let org = try await state.store.organization(id: p.orgID)
            return try Reply.json(KeyCheck(orgID: org?.name ?? String(p.orgID), scopes: p.scopes.map(\.rawValue).sorted()))
        }
        // `plexus start` (0.1.0) asks where to open its WebSocket.
        router.get("/api/config") { request, _ in
            let host = request.head.authority ?? "\(state.config.host):\(state.config.port)"
            let secure = request.head.reachedOverTLS
            return try Reply.json(ClientConfig(wsURL: (secure ? "wss://" : "ws://") + host + "/ws/device"))
        }
        router.group(requiring: .read, state.auth).get("/api/devices/claims") { _, context in
            let p = try context.caller
            let claims = try await state.store.deviceClaims(orgID: p.orgID)
            return try Reply.json(
                ClaimList(
                    claims: claims.map { c in
                        ClaimBody(
                            sourceID: c.sourceID, installID: c.installID, requested: c.requested, claimedAt: Times.iso(c.claimedAt),
                            online: state.hub.isOnline(orgID: p.orgID, sourceID: c.sourceID))
                    }))
        }
        router.group(requiring: .admin, state.auth).delete("/api/devices/claims/:source_id") { _, context in
            let p = try context.caller
            guard try await state.store.releaseDeviceClaim(orgID: p.orgID, sourceID: context.parameters.require("source_id")) else {
                throw APIError.notFound("no claim for that name")
            }
            return Response(status: .noContent)
        }
    }

    /// The session cookie of a WebSocket upgrade, unless a browser sent it from another
    /// site's page (cross-site WebSocket hijacking: browsers attach cookies to such
    /// upgrades, and always send `Origin` with them).
    static func sameOriginLoginToken(_ head: HTTPRequest) -> String? {
        guard let token = LoginCookie.token(in: head.headerFields) else { return nil }
        guard let origin = head.headerFields[.origin] else { return token }
        guard let host = head.authority, let url = URLComponents(string: origin), let oh = url.host else { return nil }
        let originAuthority = url.port.map { "\(oh):\($0)" } ?? oh
        return originAuthority.lowercased() == host.lowercased() ? token : nil
    }

    func register(webSocket router: Router<GatewayWebSocketContext>) {
        // Devices: any Origin is accepted (they are not browsers).
        router.ws("/ws/device") { _, _ in
            .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            let channel = context.requestContext.channel
            try await gateway.runDevice(
                inbound: inbound, outbound: outbound, logger: context.logger,
                forceClose: { channel.close(promise: nil) })
        }
        router.ws("/ws/browser") { _, _ in
            .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            let channel = context.requestContext.channel
            try await gateway.runDashboard(
                inbound: inbound, outbound: outbound,
                loginToken: Self.sameOriginLoginToken(context.request.head), logger: context.logger,
                forceClose: { channel.close(promise: nil) })
        }
    }
}

/// The request context of the WebSocket routes: Hummingbird's basic one plus the channel,
/// so the gateway can drop a connection whose peer does not read (no close frame can reach
/// it: every write, the close frame's included, waits for the peer to read).
struct GatewayWebSocketContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        channel = source.channel
    }
}
