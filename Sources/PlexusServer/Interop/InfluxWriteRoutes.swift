import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PlexusCore
import PlexusModel
import PlexusStorage

/// InfluxDB's write endpoints, so that Telegraf (`outputs.influxdb`, `outputs.influxdb_v2`)
/// and the InfluxDB client libraries write into Plexus unchanged (docs/line-protocol.md):
///
/// - `POST /write?db=&precision=` (1.x) and `POST /api/v2/write?org=&bucket=&precision=` (2.x):
///   line protocol, gzip or not; 204 once every accepted line is on disk (as `/ingest`'s 200);
/// - `GET|HEAD /ping`: 204 with `X-Influxdb-Version`, for clients that check the server first.
///
/// The key comes as `Authorization: Token …` or `Bearer …`, basic auth (the key as password),
/// the `u`/`p` query parameters, or `x-api-key`; it needs the write scope. Errors have
/// InfluxDB's bodies. The points go through the one ``Ingestor``, with `/ingest`'s limits.
struct InfluxWriteRoutes {
    let state: ServerState

    static let errorHeader = HTTPField.Name("x-influxdb-error")!
    static let versionHeader = HTTPField.Name("x-influxdb-version")!
    /// The InfluxDB API version these routes follow, for clients that read it.
    static let influxVersion = "1.8.10 (plexus)"

    /// One of InfluxDB's write APIs: its path, error body, precision spellings, and the
    /// parameter that names the source of lines without a source tag.
    struct API: Sendable {
        var path: RouterPath
        var envelope: APIError.Envelope
        var precision: @Sendable (String) -> LineProtocol.Precision?
        var precisions: String
        var target: String
    }

    static let v1 = API(
        path: "/write", envelope: .influxV1, precision: { LineProtocol.Precision(v1: $0) }, precisions: "n, ns, u, us, ms, s, m, h",
        target: "db")
    static let v2 = API(
        path: "/api/v2/write", envelope: .influxV2, precision: { LineProtocol.Precision(v2: $0) }, precisions: "ns, us, ms, s",
        target: "bucket")

    func register(_ router: Router<PlexusRequestContext>) {
        for api in [Self.v1, Self.v2] {
            let group = router.group().add(middleware: ReplyEnvelope(envelope: api.envelope)).add(
                middleware: CollectorKey(auth: state.auth))
            group.post(api.path) { request, context in
                let query = QueryString(request)
                guard let precision = api.precision(query.nonEmpty("precision") ?? "ns") else {
                    throw APIError.badRequest("precision must be one of \(api.precisions)")
                }
                return try await write(request, context.caller, precision: precision, target: query.nonEmpty(api.target))
            }
        }
        // Telegraf's `outputs.influxdb` and the 1.x client's `create_database` send
        // `CREATE DATABASE` first; the key's organisation holds every database, so it is a no-op.
        let query = router.group().add(middleware: ReplyEnvelope(envelope: .influxV1)).add(middleware: CollectorKey(auth: state.auth))
        query.post("/query") { request, _ in try await Self.createDatabase(request) }
        query.get("/query") { request, _ in try await Self.createDatabase(request) }
        router.get("/ping") { _, _ in Self.noContent }
        router.head("/ping") { _, _ in Self.noContent }
    }

    /// `/query` with only `CREATE DATABASE` statements (in `q`, from the URL or a form
    /// body): 200 and one empty result each, as InfluxDB 1.x answers. Anything else is a 400:
    /// Plexus is read through its own API.
    static func createDatabase(_ request: Request) async throws -> Response {
        var text = QueryString(request).get("q")
        if text == nil, request.method == .post {
            let body = try await request.collectBody(upTo: 64 * 1024)
            text = QueryString(String(buffer: body)).get("q")
        }
        let statements = (text ?? "").split(separator: ";").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter {
            !$0.isEmpty
        }
        guard !statements.isEmpty, statements.allSatisfy({ $0.uppercased().hasPrefix("CREATE DATABASE") }) else {
            throw APIError.badRequest(
                "only CREATE DATABASE is answered here (a no-op: the key's organisation holds every database); read data with the Plexus read API"
            )
        }
        let results = InfluxQueryResults(results: statements.indices.map { InfluxQueryResults.Statement(statementID: $0) })
        var response = try Reply.json(results)
        response.headers[versionHeader] = influxVersion
        return response
    }

    static var noContent: Response { Response(status: .noContent, headers: [versionHeader: influxVersion]) }

    /// `target`: the database (1.x) or bucket (2.x), the source of lines that name none
    /// when it is a valid source id.
    func write(_ request: Request, _ principal: Principal, precision: LineProtocol.Precision, target: String?) async throws -> Response {
        let body = try await IngestRoutes.body(of: request)
        let defaultSource = target.flatMap(Identifier.sourceID(fromLabel:))
        let options = LineProtocol.Options(precision: precision, mapping: state.config.lineProtocol, defaultSource: defaultSource)
        let decoded: LineProtocol.Decoded
        do {
            decoded = try Self.decode(body, options)
        } catch {
            // Too many points. Telegraf answers 413 by sending the batch again in halves.
            throw APIError(.contentTooLarge, error.code.rawValue, error.message)
        }
        if !decoded.points.isEmpty {
            try await state.ingestor.ingest(
                Ingestor.Submission(
                    orgID: principal.orgID, points: decoded.points, receivedAt: state.config.now(), transport: .lineProtocol))
        }
        guard decoded.rejected.count == 0 else { throw Self.partialWrite(decoded) }
        return Self.noContent
    }

    static func decode(_ body: ByteBuffer, _ options: LineProtocol.Options) throws(IngestError) -> LineProtocol.Decoded {
        let result = body.withUnsafeReadableBytes { bytes in
            Result { () throws(IngestError) in try LineProtocol.decode(bytes, options: options) }
        }
        return try result.get()
    }

    /// The 400 for rejected lines (the accepted ones are stored): InfluxDB 1.x's
    /// `partial write: … dropped=N`, listing the first lines and why.
    static func partialWrite(_ d: LineProtocol.Decoded) -> APIError {
        APIError(
            .badRequest, "PARTIAL_WRITE",
            "partial write: \(d.rejected.count) line(s) rejected, \(d.points.count) point(s) stored: \(d.rejected.summary) dropped=\(d.rejected.count)"
        )
    }
}
