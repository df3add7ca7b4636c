import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import PlexusCore
import PlexusServer
import PlexusServerTesting
import Testing

/// A browser's view of the server: a session cookie and the CSRF token it was given.
struct Browser {
    let server: TestServer
    var cookie = ""
    var csrf = ""

    init(_ server: TestServer) { self.server = server }

    /// Signs up or in; keeps the cookie and CSRF token of a 200/201.
    @discardableResult
    mutating func auth(_ path: String, _ json: String) async throws -> TestServer.Reply {
        let r = try await server.post(path, json, key: .some(nil))
        if r.status == 200 || r.status == 201 {
            let set = r.headers["set-cookie"].first ?? ""
            cookie = String(set.split(separator: ";")[0])
            csrf = r.object["csrf_token"] as? String ?? ""
        }
        return r
    }

    func call(_ method: HTTPMethod, _ path: String, _ json: String? = nil, csrf sendCSRF: Bool = true) async throws -> TestServer.Reply {
        var headers = [("cookie", cookie)]
        if sendCSRF { headers.append(("x-csrf-token", csrf)) }
        return try await server.request(method, path, key: .some(nil), body: json.map { Data($0.utf8) }, headers: headers)
    }
}

@Suite("Accounts, sign-in and the dashboard's files", .timeLimit(.minutes(3)))
struct AccountTests {
    @Test("sign up, sign in, me, password change, sign out")
    func signUpAndIn() async throws {
        try await withServer { s in
            var ada = Browser(s)
            var r = try await ada.auth("/api/auth/signup", #"{"email":"Ada@Example.com","password":"short","name":"Ada"}"#)
            #expect((r.status, r.object["code"] as? String) == (400, "INVALID_PASSWORD"))
            r = try await ada.auth("/api/auth/signup", #"{"email":"not-an-email","password":"long enough"}"#)
            #expect((r.status, r.object["code"] as? String) == (400, "INVALID_EMAIL"))
            r = try await ada.auth("/api/auth/signup", #"{"email":"Ada@Example.com","password":"correct horse","name":"Ada"}"#)
            #expect(r.status == 201)
            let setCookie = r.headers["set-cookie"].first ?? ""
            #expect(setCookie.hasPrefix("plexus_session=") && setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Lax"))
            #expect(!setCookie.contains("Secure"))
            // The first person owns the default organisation (where CLI-made keys live).
            #expect((r.object["org"] as? [String: Any])?["name"] as? String == "default")
            #expect((r.object["user"] as? [String: Any])?["role"] as? String == "owner")
            #expect((r.object["user"] as? [String: Any])?["email"] as? String == "ada@example.com")

            r = try await ada.call(.GET, "/api/auth/me")
            #expect(r.status == 200 && r.object["csrf_token"] as? String == ada.csrf)
            // The cookie works on the read API like a key of the organisation.
            _ = try await s.ingest(#"{"source_id":"rig","points":[{"metric":"t","value":1}]}"#)
            r = try await ada.call(.GET, "/v1/sources")
            #expect(r.status == 200 && r.text.contains("\"rig\""))
            // The same email again is a conflict.
            var again = Browser(s)
            #expect(try await again.auth("/api/auth/signup", #"{"email":"ada@example.com","password":"other password"}"#).status == 409)

            // Wrong password; right password from another browser.
            var other = Browser(s)
            r = try await other.auth("/api/auth/signin", #"{"email":"ada@example.com","password":"wrong horse"}"#)
            #expect((r.status, r.object["code"] as? String) == (401, "INVALID_CREDENTIALS"))
            r = try await other.auth("/api/auth/signin", #"{"email":"ADA@example.com","password":"correct horse"}"#)
            #expect(r.status == 200 && other.cookie != ada.cookie)

            // Changing the password needs the current one and CSRF, and signs out other browsers.
            r = try await ada.call(.POST, "/api/auth/password", #"{"current_password":"nope nope","new_password":"battery staple"}"#)
            #expect(r.status == 403)
            r = try await ada.call(
                .POST, "/api/auth/password", #"{"current_password":"correct horse","new_password":"battery staple"}"#,
                csrf: false)
            #expect((r.status, r.object["code"] as? String) == (403, "CSRF_TOKEN_INVALID"))
            r = try await ada.call(.POST, "/api/auth/password", #"{"current_password":"correct horse","new_password":"battery staple"}"#)
            #expect(r.status == 204)
            #expect(try await ada.call(.GET, "/api/auth/me").status == 200)
            #expect(try await other.call(.GET, "/api/auth/me").status == 401)
            #expect(try await other.auth("/api/auth/signin", #"{"email":"ada@example.com","password":"battery staple"}"#).status == 200)

            r = try await ada.call(.POST, "/api/auth/signout")
            #expect(r.status == 204 && (r.headers["set-cookie"].first ?? "").contains("Max-Age=0"))
            #expect(try await ada.call(.GET, "/api/auth/me").status == 401)
            #expect(try await ada.call(.GET, "/v1/sources").status == 401)
        }
    }

    @Test("failed sign-ins are rate limited per address")
    func throttle() async throws {
        try await withServer { s in
            var b = Browser(s)
            _ = try await b.auth("/api/auth/signup", #"{"email":"t@example.com","password":"the password"}"#)
            var statuses: [Int] = []
            for _ in 0..<11 {
                statuses.append(
                    try await Browser(s).call(.POST, "/api/auth/signin", #"{"email":"t@example.com","password":"wrong one"}"#).status)
            }
            #expect(statuses.prefix(10).allSatisfy { $0 == 401 })
            let r = try await b.call(.POST, "/api/auth/signin", #"{"email":"t@example.com","password":"the password"}"#)
            #expect(statuses.last == 429 && r.status == 429 && r.headers["retry-after"].first != nil)
        }
    }

    @Test("keys, invites, roles and tenants (with open sign-up)")
    func keysInvitesRoles() async throws {
        try await withServer(.set(\.openSignup, true)) { s in
            var owner = Browser(s)
            _ = try await owner.auth("/api/auth/signup", #"{"email":"owner@example.com","password":"owner password"}"#)
            // A key made in the dashboard: the secret once, then only its prefix.
            var r = try await owner.call(.POST, "/api/keys", #"{"name":"drone-7","scopes":["write","read"],"expires_in":"30d"}"#)
            #expect(r.status == 201)
            let secret = try #require(r.object["key"] as? String)
            let keyID = try #require(r.object["id"] as? String)
            #expect(secret.hasPrefix("plx_") && r.object["expires_at"] is String)
            // An expiry past 9999-12-31 is refused, not written as a year-10005 date.
            for far in ["2914000d", "999999999999d"] {
                r = try await owner.call(.POST, "/api/keys", #"{"name":"far","expires_in":"\#(far)"}"#)
                #expect(r.status == 400, "\(far)")
            }
            #expect(try await s.ingest(#"{"source_id":"drone-7","points":[{"metric":"alt","value":12}]}"#, key: secret).status == 200)
            r = try await owner.call(.GET, "/api/keys")
            #expect(r.text.contains("drone-7") && !r.text.contains(secret))
            #expect(try await owner.call(.POST, "/api/keys", #"{"name":"x"}"#, csrf: false).status == 403)

            // Invite a viewer; the link works once.
            r = try await owner.call(.POST, "/api/invites", #"{"role":"viewer"}"#)
            #expect(r.status == 201)
            let token = try #require(r.object["token"] as? String)
            r = try await s.get("/api/invites/\(token)", key: .some(nil))
            #expect(r.status == 200 && r.object["role"] as? String == "viewer")
            var viewer = Browser(s)
            r = try await viewer.auth(
                "/api/auth/signup", "{\"email\":\"v@example.com\",\"password\":\"viewer password\",\"invite\":\"\(token)\"}")
            #expect(r.status == 201 && (r.object["org"] as? [String: Any])?["name"] as? String == "default")
            r = try await s.get("/api/invites/\(token)", key: .some(nil))
            #expect((r.status, r.object["code"] as? String) == (410, "GONE"))
            var late = Browser(s)
            r = try await late.auth(
                "/api/auth/signup", "{\"email\":\"late@example.com\",\"password\":\"late password\",\"invite\":\"\(token)\"}")
            #expect(r.status == 410)
            #expect(try await s.get("/api/invites/nonexistent", key: .some(nil)).status == 404)

            // A viewer reads but changes nothing.
            #expect(try await viewer.call(.GET, "/v1/sources").text.contains("drone-7"))
            #expect(try await viewer.call(.POST, "/api/keys", #"{"name":"mine"}"#).status == 403)
            #expect(try await viewer.call(.POST, "/api/invites", #"{"role":"member"}"#).status == 403)
            #expect(try await viewer.call(.POST, "/v1/sources/drone-7/commands", #"{"command":"ping"}"#).status == 403)
            r = try await owner.call(.GET, "/api/members")
            #expect((r.object["members"] as? [[String: Any]])?.compactMap { $0["role"] as? String } == ["owner", "viewer"])

            // Someone who signs up without an invite gets an organisation of their own.
            var stranger = Browser(s)
            r = try await stranger.auth("/api/auth/signup", #"{"email":"owner@elsewhere.org","password":"stranger password"}"#)
            #expect((r.object["org"] as? [String: Any])?["name"] as? String == "owner")
            #expect(try await stranger.call(.GET, "/v1/sources").text == #"{"devices":[]}"#)
            #expect(try await stranger.call(.GET, "/api/keys").text == #"{"keys":[]}"#)
            #expect(try await stranger.call(.DELETE, "/api/keys/\(keyID)").status == 404)
            #expect(try await stranger.call(.GET, "/v1/sources/drone-7/metrics/query?metrics=alt&last=1h").text.contains("12") == false)

            // Revoked from the dashboard: refused at once.
            #expect(try await owner.call(.DELETE, "/api/keys/\(keyID)").status == 204)
            #expect(try await s.ingest(#"{"source_id":"drone-7","points":[{"metric":"alt","value":13}]}"#, key: secret).status == 401)
        }
    }

    @Test("terminal logins: plexus start's sign-up and sign-in, and browser approval")
    func terminalLogins() async throws {
        try await withServer { s in
            // An unknown email and a wrong password get the same answer: no account enumeration.
            var r = try await s.post("/api/auth/cli/signin", #"{"email":"dev@example.com","password":"device password"}"#, key: .some(nil))
            #expect(r.status == 401 && r.object["error"] as? String == "invalid_credentials")
            r = try await s.post(
                "/api/auth/cli/signup", #"{"email":"dev@example.com","password":"device password","first_name":"Dev"}"#,
                key: .some(nil))
            #expect(r.status == 201 && r.object["org_id"] as? String == "default")
            let key = try #require(r.object["api_key"] as? String)
            #expect(try await s.ingest(#"{"source_id":"pi","points":[{"metric":"t","value":1}]}"#, key: key).status == 200)
            r = try await s.post("/api/auth/cli/signup", #"{"email":"dev@example.com","password":"device password"}"#, key: .some(nil))
            #expect(r.status == 409 && r.object["error"] as? String == "account_exists" && r.object["code"] as? String == "ACCOUNT_EXISTS")
            r = try await s.post("/api/auth/cli/signin", #"{"email":"dev@example.com","password":"wrong password"}"#, key: .some(nil))
            #expect(r.status == 401 && r.object["error"] as? String == "invalid_credentials")
            r = try await s.post("/api/auth/cli/signin", #"{"email":"dev@example.com","password":"device password"}"#, key: .some(nil))
            #expect(r.status == 200 && (r.object["api_key"] as? String)?.hasPrefix("plx_") == true && r.object["api_key"] as? String != key)

            var b = Browser(s)
            _ = try await b.auth("/api/auth/signin", #"{"email":"dev@example.com","password":"device password"}"#)
            r = try await b.call(.POST, "/api/auth/cli/approve", #"{"state":"abc","callback":"http://evil.example/cb","name":"x"}"#)
            #expect(r.status == 400)
            r = try await b.call(
                .POST, "/api/auth/cli/approve", #"{"state":"abc","callback":"http://127.0.0.1:5123/callback","name":"laptop"}"#)
            let redirect = try #require(r.object["redirect"] as? String)
            let items = URLComponents(string: redirect)?.queryItems ?? []
            #expect(redirect.hasPrefix("http://127.0.0.1:5123/callback?state=abc&key=plx_"))
            let approved = try #require(items.first { $0.name == "key" }?.value)
            #expect(try await s.get("/api/auth/verify-key", key: approved).status == 200)
        }
    }

    @Test("the dashboard: pages and assets with ETags")
    func dashboardFiles() async throws {
        try await withServer { s in
            var r = try await s.get("/devices/rig-1", key: .some(nil))
            #expect(r.status == 200 && r.text.contains("<html") && r.headers["cache-control"].first == "no-cache")
            #expect(r.headers["content-security-policy"].first?.contains("script-src 'self'") == true)
            let index = r.text
            #expect(try await s.get("/", key: .some(nil)).text == index)
            // Every asset the page names is served, and a repeat with its ETag is a 304.
            let names = index.components(separatedBy: "\"/assets/").dropFirst().compactMap { $0.split(separator: "\"").first }
            #expect(!names.isEmpty)
            for name in names {
                r = try await s.get("/assets/\(name)", key: .some(nil))
                #expect(r.status == 200, "\(name)")
                let etag = try #require(r.headers["etag"].first)
                let again = try await s.request(.GET, "/assets/\(name)", key: .some(nil), headers: [("if-none-match", etag)])
                #expect(again.status == 304 && again.body.isEmpty)
                // HEAD answers the same headers and no body.
                let head = try await s.request(.HEAD, "/assets/\(name)", key: .some(nil))
                #expect(head.status == 200 && head.body.isEmpty && head.headers["etag"].first == etag)
                #expect(head.headers["content-length"].first == String(r.body.count), "\(name)")
            }
            let headPage = try await s.request(.HEAD, "/sessions/abc", key: .some(nil))
            #expect(
                headPage.status == 200 && headPage.body.isEmpty && headPage.headers["content-type"].first?.hasPrefix("text/html") == true)
            #expect(try await s.get("/assets/../Package.swift", key: .some(nil)).status == 404)
            #expect(try await s.get("/assets/nope.js", key: .some(nil)).status == 404)
            #expect(try await s.get("/api/nothing-here", key: .some(nil)).status == 404)

            // (The dashboard socket's sign-in by cookie is tested in Tests/compat/test_accounts.py,
            // with a client that sends exactly the Origin a browser would.)
        }
    }

}
