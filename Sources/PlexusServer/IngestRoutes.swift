import CompressNIO
import Hummingbird
import NIOCore
import PlexusCore
import PlexusModel
import PlexusStorage

/// `POST /ingest` and `POST /api/ingest` (identical). A 200 means every point is on disk.
struct IngestRoutes {
    let state: ServerState

    func register(_ router: Router<PlexusRequestContext>) {
        let write = router.group(requiring: .write, state.auth)
        write.post("/ingest") { request, context in try await ingest(request, context.caller) }
        write.post("/api/ingest") { request, context in try await ingest(request, context.caller) }
    }

    func ingest(_ request: Request, _ principal: Principal) async throws -> Response {
        let body = try await Self.body(of: request)
        let batch: IngestBatch
        do {
            batch = try body.withUnsafeReadableBytes { try IngestDecoder.decode($0) }
        } catch let e as IngestError {
            throw APIError(e)
        }
        try await state.ingestor.ingest(
            Ingestor.Submission(
                orgID: principal.orgID, batch: batch, receivedAt: state.config.now(),
                transport: .http, pacing: .perRequest))
        let source = batch.singleSourceID
        return Reply.json { w in
            w.raw("{\"success\":true,\"count\":")
            w.int(batch.points.count)
            if let source, !batch.points.isEmpty {
                w.raw(",\"source_id\":")
                w.string(source)
            }
            w.raw("}")
        }
    }

    /// A write's body, gunzipped when `Content-Encoding` says gzip; at most 5 MiB either way.
    static func body(of request: Request) async throws -> ByteBuffer {
        var body = try await request.collectBody(upTo: Limits.maxBodyBytes)
        if let enc = request.headers[.contentEncoding]?.lowercased(), enc != "identity" {
            guard enc == "gzip" || enc == "x-gzip" else {
                throw APIError(.unsupportedMediaType, "INVALID_ENCODING", "unsupported Content-Encoding \(enc.prefix(32))")
            }
            body = try Self.gunzip(&body)
        }
        return body
    }

    /// Decompresses a gzip body, refusing to inflate past the 5 MiB cap (gzip bombs).
    static func gunzip(_ body: inout ByteBuffer) throws -> ByteBuffer {
        do {
            let out = try body.decompress(with: .gzip(), maxSize: Limits.maxBodyBytes + 1)
            guard out.readableBytes <= Limits.maxBodyBytes else { throw APIError.payloadTooLarge }
            return out
        } catch let e as APIError {
            throw e
        } catch let e as CompressNIOError where e == .bufferOverflow {
            throw APIError(
                .contentTooLarge, "PAYLOAD_TOO_LARGE",
                "payload too large (max \(Limits.maxBodyBytes) bytes decompressed)")
        } catch {
            throw APIError.badRequest("invalid gzip body", code: "INVALID_ENCODING")
        }
    }
}
