import Foundation
import NIOHTTP1
import PlexusServerTesting
import Testing

@Suite("Keys, scopes and tenants", .timeLimit(.minutes(2)))
struct AuthAndTenancyTests {
    @Test("401 for missing, unknown, revoked and expired keys; 403 for a missing scope")
    func keys() async throws {
        try await withServer { s in
            let body = #"{"source_id":"a","points":[{"metric":"m","value":1}]}"#
            var r = try await s.ingest(body, key: .some(nil))
            #expect(r.status == 401)
            #expect(r.object["error"] as? String == "missing x-api-key")
            #expect(r.object["code"] as? String == "UNAUTHORIZED")
            r = try await s.ingest(body, key: "plx_00000000000000000000000000000000")
            #expect((r.status, r.object["error"] as? String) == (401, "invalid API key"))
            // Authorization: Bearer works like x-api-key.
            r = try await s.request(
                .POST, "/ingest", key: .some(nil), body: Data(body.utf8), headers: [("authorization", "Bearer \(s.key)")])
            #expect(r.status == 200)

            let writeOnly = try await s.createKey(scopes: "write")
            #expect(try await s.ingest(body, key: writeOnly).status == 200)
            r = try await s.get("/v1/sources", key: writeOnly)
            #expect(r.status == 403)
            #expect(r.object["error"] as? String == "API key lacks read scope")
            #expect(r.object["code"] as? String == "FORBIDDEN")
            let readOnly = try await s.createKey(scopes: "read")
            r = try await s.ingest(body, key: readOnly)
            #expect((r.status, r.object["error"] as? String) == (403, "API key lacks write scope"))
            #expect(try await s.get("/v1/sources", key: readOnly).status == 200)

            // Revoked from the command line while the server runs: refused within a second or two.
            let list = try await s.cli(["keys", "list", "--data-dir", s.dataDir, "--json"])
            let keys = try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [[String: Any]] ?? []
            #expect(keys.count == 3)
            #expect(!list.contains(readOnly))  // never the secret
            let id = try #require(keys.first { ($0["scopes"] as? [String]) == ["read"] }?["id"] as? String)
            #expect(try await s.cli(["keys", "revoke", "--data-dir", s.dataDir, id]) == "revoked \(id)")
            // Revoked from another process: refused once the server's one-second cache lapses.
            #expect(
                try await eventually {
                    r = try await s.get("/v1/sources", key: readOnly)
                    return r.status == 401
                })
            #expect(r.object["error"] as? String == "API key revoked")

            let shortLived = try await s.createKey(scopes: "read", extra: ["--expires-in", "1s"])
            #expect(
                try await eventually {
                    r = try await s.get("/v1/sources", key: shortLived)
                    return r.status == 401
                })
            #expect(r.object["error"] as? String == "API key expired")
        }
    }

    @Test("a key of organisation B never sees organisation A's data")
    func isolation() async throws {
        try await withServer { s in
            #expect(try await s.cli(["orgs", "create", "--data-dir", s.dataDir, "team-b"]) == "team-b")
            let b = try await s.createKey(scopes: "write,read,admin", org: "team-b")
            #expect(
                try await s.ingest(#"{"source_id":"secret","points":[{"metric":"m","value":1,"session_id":"sa","timestamp":1700000000}]}"#)
                    .status == 200)
            #expect(
                try await s.ingest(#"{"source_id":"mine","points":[{"metric":"m","value":2,"timestamp":1700000000}]}"#, key: b).status
                    == 200)
            let listed = try await s.get("/v1/sources", key: b).object["devices"] as? [[String: Any]]
            #expect(listed?.map { $0["source_id"] as? String } == ["mine"])
            #expect(try await s.get("/v1/sources/secret", key: b).status == 404)
            #expect(try await s.rawValues("secret", "m", key: b).values.isEmpty)
            #expect(try await s.get("/v1/sources/secret/metrics", key: b).text == "[]")
            #expect(try await s.get("/api/sessions/sa", key: b).status == 404)
            #expect((try await s.get("/api/sessions", key: b).object["sessions"] as? [Any])?.isEmpty == true)
            #expect(try await s.request(.DELETE, "/api/sessions/sa", key: b).status == 404)
            #expect(try await s.get("/api/sessions/sa/export?format=csv", key: b).status == 404)
            // A still sees its own.
            #expect(try await s.rawValues("secret", "m").values.first as? Double == 1)
            #expect(try await s.get("/api/sessions/sa").status == 200)
            #expect(await s.createKeyFails(org: "nope"))
        }
    }
}

extension TestServer {
    /// `createKey` for an organisation that does not exist throws; make that a Bool.
    func createKeyFails(org: String) async -> Bool { (try? await createKey(scopes: "read", org: org)) == nil }
}
