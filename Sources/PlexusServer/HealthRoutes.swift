import Hummingbird
import NIOCore
import PlexusModel
import PlexusStorage

struct HealthRoutes {
    let state: ServerState

    func register(_ router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ -> Response in
            let uptime = state.startedAt.duration(to: .now).components.seconds
            return Reply.json { w in
                w.raw("{\"status\":\"ok\",\"store\":")
                w.string(state.store.engineName)
                w.raw(",\"uptime_s\":")
                w.int(uptime)
                w.raw(",\"devices\":")
                w.int(state.hub.deviceCount)
                w.raw(",\"browsers\":")
                w.int(state.hub.dashboardCount)
                w.raw(",\"version\":")
                w.string(state.config.version)
                w.raw("}")
            }
        }
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: state.config.metricsText())))
        }
    }
}
