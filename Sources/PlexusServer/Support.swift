import Foundation
import Hummingbird
import NIOCore
import PlexusModel

/// Small helpers shared by the routes: JSON replies, times, query parameters.
enum Reply {
    static func json(_ w: JSONWriter, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: w.bytes)))
    }

    static func json(status: HTTPResponse.Status = .ok, _ build: (inout JSONWriter) -> Void) -> Response {
        var w = JSONWriter()
        build(&w)
        return json(w, status: status)
    }

    /// A typed body (PlexusModel's `API/`), for the cold-path routes.
    static func json(_ body: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: try JSONText.encoder.encode(body))))
    }
}

/// JSON text of typed values, as every reply writes it: keys sorted (one text for equal
/// values, for storage and comparison, and replies that read the same every time), no
/// `\/` escapes.
enum JSONText {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    static func canonical(_ value: some Encodable) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
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

    /// A time given as ISO-8601, or a Unix number (seconds, or ms when >= 1e12), within
    /// `Timestamp.validMicros`; nil for anything else.
    static func parse(_ s: String) -> Int64? {
        guard s.utf8.count <= 64 else { return nil }
        if let d = Double(s) { return Timestamp.micros(fromWire: d) }
        let date =
            (try? Date(s, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
            ?? (try? Date(s, strategy: .iso8601))
        guard let date else { return nil }
        let us = (date.timeIntervalSince1970 * 1_000_000).rounded()
        guard us >= Double(Timestamp.validMicros.lowerBound), us < Double(Timestamp.validMicros.upperBound) else { return nil }
        return Int64(us)
    }

    /// `30s`, `30m`, `1h`, `7d` as microseconds.
    static func parseLast(_ s: String) -> Int64? { Timestamp.duration(s) }
}

/// Reads a small JSON request body (accounts, keys, sessions, commands) into its typed
/// form from PlexusModel's `API/`: not a hot path, so Foundation's decoder does it.
enum JSONBody {
    /// `requireJSON`: refuse a body not sent as `application/json` (415). Routes that sign
    /// people in need it: a page on another site can post a form or `text/plain` to us
    /// without asking, but not JSON (that takes a CORS preflight we never approve).
    ///
    /// An empty body reads as `{}`. Text that is not a JSON object is `INVALID_JSON`; a
    /// member of the wrong type is a 400 that names it.
    static func decode<T: Decodable>(
        _ type: T.Type, from request: Request, limit: Int = 1 << 20, requireJSON: Bool = false
    ) async throws -> T {
        if requireJSON {
            let type = request.headers[.contentType]?.split(separator: ";").first.map { String($0).trimmingSpaces.lowercased() }
            guard type == "application/json" else {
                throw APIError(.unsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json")
            }
        }
        let buffer = try await request.collectBody(upTo: limit)
        return try decode(type, from: buffer.readableBytes > 0 ? Data(buffer.readableBytesView) : Data("{}".utf8))
    }

    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let DecodingError.typeMismatch(expected, context) {
            // An object where we want one, but not at the top: a member of the wrong type.
            guard let field = context.codingPath.first?.stringValue else { throw invalid }
            throw APIError.badRequest("\(Self.path(context.codingPath).prefix(64)) must be \(Self.describe(expected, field: field))")
        } catch DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty {
            throw APIError.badRequest("\(Self.path(context.codingPath).prefix(64)) is invalid")
        } catch {
            throw invalid
        }
    }

    private static let invalid = APIError.badRequest("invalid JSON body", code: "INVALID_JSON")

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    private static func describe(_ type: Any.Type, field: String) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Double.Type, is Int64.Type, is Int.Type: "a number"
        case is [String].Type: "a list of strings"
        case is [Any].Type: "a list"
        default: "of another type"
        }
    }
}

/// A request's query string as a list of decoded pairs, in order, repeats kept.
///
/// Decoding follows HTML forms (`application/x-www-form-urlencoded`), what browsers, curl
/// `--data-urlencode` and Python's `urlencode` send: `+` is a space and `%XX` a byte, in
/// keys as well as values, so every name ingest accepts can be written in a query
/// (`tag.my%20key=a%2Cb`, `metrics=a%2Cb&metrics=c`). Malformed escapes are kept as
/// they are.
struct QueryString: Sendable {
    let pairs: [(key: String, value: String)]

    init(_ query: String?) {
        guard let query, !query.isEmpty else {
            pairs = []
            return
        }
        pairs = query.split(separator: "&", omittingEmptySubsequences: true).map { part in
            if let eq = part.firstIndex(of: "=") {
                return (Self.decode(part[..<eq]), Self.decode(part[part.index(after: eq)...]))
            }
            return (Self.decode(part), "")
        }
    }

    init(_ request: Request) { self.init(request.uri.query) }

    /// The first value of `key`, if present.
    func get(_ key: String) -> String? { pairs.first { $0.key == key }?.value }

    /// The first non-empty value of `key`.
    func nonEmpty(_ key: String) -> String? { pairs.first { $0.key == key && !$0.value.isEmpty }?.value }

    /// Every value of `key`, in order.
    func all(_ key: String) -> [String] { pairs.filter { $0.key == key }.map(\.value) }

    static func decode(_ s: Substring) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = Array(s.utf8)[...]
        while let c = it.first {
            it = it.dropFirst()
            if c == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else if c == UInt8(ascii: "%"), it.count >= 2, let h = hex(it[it.startIndex]), let l = hex(it[it.startIndex + 1]) {
                bytes.append(h << 4 | l)
                it = it.dropFirst(2)
            } else {
                bytes.append(c)
            }
        }
        // Invalid UTF-8 becomes U+FFFD, which no stored name contains, so it matches nothing.
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Cross-site request checks for routes that set or use the login cookie.
enum SameOrigin {
    /// A request a browser sent from a page of another origin carries that `Origin`: refuse
    /// it (403) unless it names this server's own host (`Host`, or `X-Forwarded-Host`
    /// behind a proxy). Requests without `Origin` (curl, SDKs, same-origin GETs) pass.
    static func check(_ request: Request) throws {
        guard let origin = request.headers[.origin], !origin.isEmpty else { return }
        let host = request.headers[.init("x-forwarded-host")!] ?? request.head.authority ?? ""
        guard let url = URLComponents(string: origin), let oh = url.host, !host.isEmpty else {
            throw APIError(.forbidden, "CROSS_ORIGIN", "cross-origin request refused")
        }
        // Browsers and clients both leave out a default port (80, 443), so the two compare as text.
        let originHost = url.port.map { "\(oh):\($0)" } ?? oh
        guard originHost.lowercased() == host.lowercased() else {
            throw APIError(.forbidden, "CROSS_ORIGIN", "cross-origin request refused")
        }
    }
}

extension Request {
    /// The whole body, at most `limit` bytes: over it, 413 naming `limit` (NIO's own error
    /// carries what was left of the limit after the first chunk, not the limit).
    func collectBody(upTo limit: Int) async throws -> ByteBuffer {
        do {
            return try await body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError.payloadTooLarge(max: limit)
        }
    }
}
