import Hummingbird

/// Errors on another protocol's routes get that protocol's body (InfluxDB 1.x or 2.x,
/// Prometheus); the status is the one ``APIError`` gives, so the mapping from errors to
/// statuses stays in one place.
struct ReplyEnvelope: RouterMiddleware {
    typealias Context = PlexusRequestContext
    let envelope: APIError.Envelope

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            var e = APIError(any: error)
            e.envelope = envelope
            if envelope == .influxV1 || envelope == .influxV2 {
                e.headers[InfluxWriteRoutes.versionHeader] = InfluxWriteRoutes.influxVersion
            }
            throw e
        }
    }
}
