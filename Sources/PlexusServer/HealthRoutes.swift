import Hummingbird
import NIOCore
import PlexusModel
import PlexusStorage

struct HealthRoutes {
    let state: ServerState

    func register(_ router: Router<PlexusRequestContext>) {
        // Liveness for load balancers and scripts: nothing about any organisation.
        router.get("/health") { _, _ -> Response in
            let uptime = state.startedAt.duration(to: .now).components.seconds
            return Reply.json { w in
                w.raw("{\"status\":\"ok\",\"store\":")
                w.string(state.store.engineName)
                w.raw(",\"uptime_s\":")
                w.int(uptime)
                w.raw(",\"version\":")
                w.string(state.config.version)
                // The server's default; an organisation may set its own.
                w.raw(",\"retention\":{\"raw\":")
                w.string(state.config.retention.raw.description)
                w.raw(",\"rollups\":")
                w.string(state.config.retention.rollups.description)
                w.raw("}}")
            }
        }
        // Prometheus text, counted across every organisation: for the operator only.
        router.get("/metrics") { request, _ -> Response in
            if !state.config.publicMetrics {
                guard let token = state.config.metricsToken else {
                    throw APIError.notFound("metrics are off: start the server with --metrics-token or --public-metrics")
                }
                let sent = request.headers[.authorization].flatMap { h -> String? in
                    let parts = h.split(separator: " ", maxSplits: 1)
                    return parts.count == 2 && parts[0].lowercased() == "bearer" ? String(parts[1]) : nil
                }
                guard let sent, APIKeys.equal(Array(sent.utf8), Array(token.utf8)) else {
                    throw APIError(
                        .unauthorized, "UNAUTHORIZED", "metrics need the metrics token (Authorization: Bearer …)",
                        headers: [.wwwAuthenticate: "Bearer realm=\"plexus-metrics\""])
                }
            }
            // Live connections, which /health no longer shows: for the operator only.
            let text =
                state.config.metricsText() + """
                    # TYPE plexus_devices_connected gauge
                    plexus_devices_connected \(state.hub.deviceCount)
                    # TYPE plexus_dashboards_connected gauge
                    plexus_dashboards_connected \(state.hub.dashboardCount)

                    """
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
    }
}
