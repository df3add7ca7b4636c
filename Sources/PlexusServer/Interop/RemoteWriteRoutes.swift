import HTTPTypes
import Hummingbird
import NIOCore
import PlexusCore
import PlexusModel
import PlexusStorage

/// Prometheus remote write 1.0 (docs/prometheus.md): `POST /api/v1/write`, a
/// snappy-compressed protobuf `WriteRequest`, so that a Prometheus server or agent (and
/// anything else that remote-writes: Grafana Agent, vmagent, OpenTelemetry's exporter)
/// sends its samples here. 204 once they are on disk; the samples go through the one
/// ``Ingestor`` with `/ingest`'s limits.
struct RemoteWriteRoutes {
    let state: ServerState

    func register(_ router: Router<PlexusRequestContext>) {
        router.group().add(middleware: CollectorKey(auth: state.auth)).post("/api/v1/write") { request, context in
            try await write(request, context.caller)
        }
    }

    func write(_ request: Request, _ principal: Principal) async throws -> Response {
        // Over 5 MiB: 413, by the one mapping from errors to replies.
        let compressed = try await request.collectBody(upTo: Limits.maxBodyBytes)
        // Remote write 1.0 always compresses with snappy's block format.
        let encoding = request.headers[.contentEncoding]?.lowercased() ?? ""
        guard encoding == "snappy" else {
            throw APIError(
                .unsupportedMediaType, "INVALID_ENCODING", "remote write bodies are snappy-compressed (Content-Encoding: snappy)")
        }
        let body: [UInt8]
        switch Self.decompress(compressed) {
        case .success(let bytes): body = bytes
        case .failure(let e) where e.tooLarge: throw APIError.payloadTooLarge(max: Limits.maxBodyBytes)
        case .failure(let e): throw APIError.badRequest("body is not snappy-compressed: \(e.reason)", code: "INVALID_ENCODING")
        }
        let decoded: RemoteWrite.Decoded
        switch Self.decode(body, state.config.remoteWrite) {
        case .success(let d): decoded = d
        case .failure(let e) where e.code == .tooManyPoints: throw APIError(.contentTooLarge, e.code.rawValue, e.message)
        case .failure(let e): throw APIError(e)
        }
        if decoded.skippedNonFinite > 0 {
            ServerMetrics.rejected(
                reason: "NON_FINITE_SAMPLE", transport: Ingestor.Transport.remoteWrite.rawValue, count: decoded.skippedNonFinite)
        }
        if !decoded.points.isEmpty {
            try await state.ingestor.ingest(
                Ingestor.Submission(orgID: principal.orgID, points: decoded.points, receivedAt: state.config.now(), transport: .remoteWrite)
            )
        }
        guard decoded.rejected.count == 0 else {
            // Prometheus does not retry a 400: the stored series stay stored, the rest is dropped.
            throw APIError(
                .badRequest, "PARTIAL_WRITE",
                "\(decoded.rejected.count) series rejected, \(decoded.points.count) sample(s) stored: \(decoded.rejected.summary)")
        }
        return Response(status: .noContent)
    }

    static func decompress(_ body: ByteBuffer) -> Result<[UInt8], Snappy.CorruptInput> {
        body.withUnsafeReadableBytes { raw in
            Result { () throws(Snappy.CorruptInput) in try Snappy.decompress(raw, maxLength: Limits.maxBodyBytes) }
        }
    }

    static func decode(_ body: [UInt8], _ mapping: RemoteWrite.Mapping) -> Result<RemoteWrite.Decoded, IngestError> {
        body.withUnsafeBytes { raw in
            Result { () throws(IngestError) in try RemoteWrite.decode(raw, mapping: mapping) }
        }
    }
}
