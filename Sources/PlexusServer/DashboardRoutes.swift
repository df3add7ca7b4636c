import Crypto
import Foundation
import Hummingbird
import Logging
import NIOCore
import PlexusDashboard
import Synchronization

/// Serves the web dashboard: `index.html` for every page of the app (the page routes
/// itself), and `/assets/*`; and the API's OpenAPI document, `/openapi.json`. Files are read once at start-up and answered from memory
/// with an ETag; with `--dashboard-dir` they are re-read on every request instead.
struct DashboardRoutes {
    /// nil: the binary was copied without its resource bundle and no folder was given.
    let files: StaticFiles?

    init(state: ServerState, logger: Logger) {
        if let dir = state.config.dashboardDirectory {
            files = StaticFiles(root: dir, live: true)
        } else if let dir = DashboardFiles.directory {
            files = StaticFiles(root: dir, live: false)
        } else {
            files = nil
            logger.warning(
                """
                dashboard files not found: keep \(DashboardFiles.bundleName) next to the plexus-server binary, \
                or pass --dashboard-dir; the API works without them
                """)
        }
    }

    /// The app's pages; each answers `index.html`.
    static let pages = ["/", "/signin", "/signup", "/devices", "/sessions", "/explore", "/settings", "/auth/cli"]
    static let pageTrees = ["/devices/**", "/sessions/**", "/settings/**", "/invite/**"]

    func register(_ router: Router<PlexusRequestContext>) {
        // GET and HEAD alike (uptime checks and proxies probe with HEAD).
        for method in [HTTPRequest.Method.get, .head] {
            for page in Self.pages + Self.pageTrees {
                router.on(RouterPath(page), method: method) { request, _ in try serve("index.html", request, page: true) }
            }
            // The OpenAPI 3.1 document of every HTTP endpoint (Public/openapi.json).
            router.on("/openapi.json", method: method) { request, _ in try serve("openapi.json", request, page: false) }
            router.on("/assets/**", method: method) { request, context in
                let parts = context.parameters.getCatchAll()
                guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && !$0.hasPrefix(".") }) else {
                    throw APIError.notFound("no such file")
                }
                return try serve("assets/" + parts.joined(separator: "/"), request, page: false)
            }
        }
    }

    private func serve(_ path: String, _ request: Request, page: Bool) throws -> Response {
        guard let files else {
            throw APIError.unavailable(
                """
                the dashboard's files are not installed: keep \(DashboardFiles.bundleName) next to the plexus-server \
                binary, or pass --dashboard-dir
                """)
        }
        guard let file = files.file(path) else { throw APIError.notFound("no such file") }
        var headers: HTTPFields = [
            .eTag: file.etag,
            // Pages and assets always revalidate by ETag (a 304 costs a round trip and no
            // body): the modules import each other by fixed URLs, so a cached old script
            // must never run beside a new page after an upgrade.
            .cacheControl: page ? "no-cache" : "public, no-cache",
            .init("x-content-type-options")!: "nosniff",
        ]
        if page {
            headers[.contentSecurityPolicy] =
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                + "img-src 'self' data: blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
            headers[.init("x-frame-options")!] = "DENY"
            headers[.init("referrer-policy")!] = "same-origin"
        }
        if request.headers[.ifNoneMatch]?.split(separator: ",").contains(where: { $0.trimmingCharacters(in: " ") == file.etag }) == true {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = file.contentType
        if request.method == .head {
            headers[.contentLength] = String(file.bytes.readableBytes)
            return Response(status: .ok, headers: headers, body: ResponseBody())
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: file.bytes))
    }
}

/// Files under a root folder, with their ETag and content type.
final class StaticFiles: Sendable {
    struct File: Sendable {
        var bytes: ByteBuffer
        var etag: String
        var contentType: String
    }

    let root: String
    let live: Bool
    private let cache: Mutex<[String: File]>

    init(root: String, live: Bool) {
        self.root = root
        self.live = live
        var loaded: [String: File] = [:]
        if !live, let walker = FileManager.default.enumerator(atPath: root) {
            while let rel = walker.nextObject() as? String {
                if let f = Self.load(root + "/" + rel) { loaded[rel] = f }
            }
        }
        cache = Mutex(loaded)
    }

    /// `path` is relative to the root, already checked to contain no `..`.
    func file(_ path: String) -> File? {
        live ? Self.load(root + "/" + path) : cache.withLock { $0[path] }
    }

    private static func load(_ full: String) -> File? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue,
            let data = FileManager.default.contents(atPath: full)
        else { return nil }
        let digest = SHA256.hash(data: data).prefix(12).map { String(format: "%02x", $0) }.joined()
        return File(bytes: ByteBuffer(bytes: data), etag: "\"\(digest)\"", contentType: contentType(full))
    }

    static func contentType(_ path: String) -> String {
        switch path.split(separator: ".").last.map({ $0.lowercased() }) ?? "" {
        case "html": "text/html; charset=utf-8"
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "json", "map": "application/json"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "ico": "image/x-icon"
        case "woff2": "font/woff2"
        case "txt": "text/plain; charset=utf-8"
        default: "application/octet-stream"
        }
    }
}
