import Foundation
import Hummingbird
import NIOCore
import PlexusModel

/// Small helpers shared by the routes: JSON replies, times, query parameters.
enum Reply {
    static func json(_ w: JSONWriter, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: w.bytes)))
    }

    static func json(status: HTTPResponse.Status = .ok, _ build: (inout JSONWriter) -> Void) -> Response {
        var w = JSONWriter()
        build(&w)
        return json(w, status: status)
    }
}

extension HTTPRequest {
    /// Whether the request reached us over TLS, directly or through a proxy that says so
    /// (`X-Forwarded-Proto: https`).
    var reachedOverTLS: Bool {
        scheme == "https" || headerFields[.init("x-forwarded-proto")!]?.lowercased() == "https"
    }
}

extension String {
    /// At most `n` bytes of UTF-8, cut at a character boundary.
    func prefix(utf8Bytes n: Int) -> String {
        guard utf8.count > n else { return self }
        var out = ""
        var used = 0
        for ch in self {
            let size = ch.utf8.count
            if used + size > n { break }
            out.append(ch)
            used += size
        }
        return out
    }
}

enum Times {
    static func iso(_ us: Int64) -> String {
        let d = Date(timeIntervalSince1970: Double(us) / 1_000_000)
        return d.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// A time given as ISO-8601, or a Unix number (seconds, or ms when >= 1e12).
    static func parse(_ s: String) -> Int64? {
        if let d = Double(s) { return Timestamp.micros(fromWire: d) }
        if let d = try? Date(s, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) {
            return Int64((d.timeIntervalSince1970 * 1_000_000).rounded())
        }
        if let d = try? Date(s, strategy: .iso8601) { return Int64((d.timeIntervalSince1970 * 1_000_000).rounded()) }
        return nil
    }

    /// `30s`, `30m`, `1h`, `7d` as microseconds.
    static func parseLast(_ s: String) -> Int64? { Timestamp.duration(s) }
}

extension JSONWriter {
    mutating func optionalString(_ s: String?) {
        if let s { string(s) } else { raw("null") }
    }
}

/// Parses a small JSON request body (sessions, commands) with Foundation: not a hot path.
enum JSONBody {
    static func object(_ request: Request, limit: Int = 1 << 20) async throws -> [String: Any] {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError.payloadTooLarge(max: limit)
        }
        guard buffer.readableBytes > 0 else { return [:] }
        guard let obj = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView), options: [.fragmentsAllowed]),
              let dict = obj as? [String: Any]
        else { throw APIError.badRequest("invalid JSON body", code: "INVALID_JSON") }
        return dict
    }

    /// Canonical JSON text (sorted keys) of an object value, for storage and comparison.
    static func canonical(_ v: Any?) throws -> String {
        guard let v, !(v is NSNull) else { return "{}" }
        guard JSONSerialization.isValidJSONObject(v), v is [String: Any] else { throw APIError.badRequest("must be an object") }
        let d = try JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: d, as: UTF8.self)
    }
}
