import AsyncHTTPClient
import CompressNIO
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PlexusModel

/// How batches reach the server. HTTP now; the WebSocket transport (the default in the
/// Python SDK) plugs in here.
protocol PlexusTransport: Sendable {
    func deliver(_ points: [[UInt8]], sourceID: String) async -> Result<Void, PlexusError>
}

/// `POST {gateway}/ingest` in the Python SDK's wire format: gzip over 1 KiB, retries on
/// 429/5xx and connection failures with backoff and jitter (honouring Retry-After), no
/// retry on 400/401/403.
struct HTTPTransport: PlexusTransport {
    let configuration: PlexusConfiguration
    static let userAgent = "plexus-swift/0.1.0"

    func body(_ points: [[UInt8]], sourceID: String) -> [UInt8] {
        var w = JSONWriter(capacity: points.reduce(32) { $0 + $1.count + 1 })
        w.raw("{\"source_id\":")
        w.string(sourceID)
        w.pointsAndClose(points)
        return w.bytes
    }

    /// The request body, gzip-compressed when it is larger than `gzipAbove`.
    func prepare(_ points: [[UInt8]], sourceID: String) -> (body: ByteBuffer, gzipped: Bool) {
        var buffer = ByteBuffer(bytes: body(points, sourceID: sourceID))
        if buffer.readableBytes > configuration.gzipAbove, let compressed = try? buffer.compress(with: .gzip()) {
            return (compressed, true)
        }
        return (buffer, false)
    }

    func deliver(_ points: [[UInt8]], sourceID: String) async -> Result<Void, PlexusError> {
        let (buffer, gzipped) = prepare(points, sourceID: sourceID)
        var attempt = 0
        while true {
            var request = HTTPClientRequest(url: configuration.gatewayURL + "/ingest")
            request.method = .POST
            request.headers.add(name: "x-api-key", value: configuration.apiKey)
            request.headers.add(name: "content-type", value: "application/json")
            request.headers.add(name: "user-agent", value: Self.userAgent)
            if gzipped { request.headers.add(name: "content-encoding", value: "gzip") }
            request.body = .bytes(buffer)
            var retryAfter: Duration?
            var failure: PlexusError
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                let body = try await response.body.collect(upTo: 1 << 20)
                let message =
                    (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any])?["error"] as? String
                    ?? "HTTP \(response.status.code)"
                switch response.status.code {
                case 200..<300: return .success(())
                case 400, 413, 422: return .failure(PlexusError(.rejected, message))
                case 401: return .failure(PlexusError(.unauthorized, message))
                case 403: return .failure(PlexusError(.forbidden, message))
                case 429, 500...: failure = PlexusError(.unavailable, message)
                default: return .failure(PlexusError(.rejected, message))
                }
                retryAfter = response.headers.first(name: "retry-after").flatMap(Int.init).map { .seconds($0) }
            } catch {
                failure = PlexusError(.unavailable, "cannot reach \(configuration.gatewayURL): \(error)")
            }
            guard attempt < configuration.retry.maxRetries else { return .failure(failure) }
            let delay = configuration.retry.delay(attempt: attempt, retryAfter: retryAfter, random: .random(in: 0...1))
            attempt += 1
            do { try await Task.sleep(for: delay) } catch { return .failure(failure) }
        }
    }
}
