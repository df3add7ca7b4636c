import Foundation
import PlexusModel
import Testing

/// The typed bodies of the cold-path routes: every encoder against its decoder, the wire
/// names, nulls kept, and what hostile clients send.
@Suite("API bodies")
struct APIBodiesTests {
    static func json(_ value: some Encodable) throws -> [String: Any] {
        let data = try JSONEncoder().encode(value)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    static func roundTrip<T: Codable & Equatable>(_ value: T) throws {
        let back = try JSONDecoder().decode(T.self, from: try JSONEncoder().encode(value))
        #expect(back == value)
    }

    @Test("every body decodes what it encodes")
    func roundTrips() throws {
        try Self.roundTrip(LoginBody(email: "a@b.co", password: "pw", name: "Ann", firstName: "Ann", invite: "tok"))
        try Self.roundTrip(PasswordChange(currentPassword: "a", newPassword: "b"))
        try Self.roundTrip(
            SignedIn(user: UserBody(id: 1, email: "a@b.co", name: "", role: "owner"), org: .init(id: 1, name: "a"), csrfToken: "c"))
        try Self.roundTrip(DeviceKeyGrant(apiKey: "plx_x", orgID: "org"))
        try Self.roundTrip(TerminalApproval(state: "s", callback: "http://127.0.0.1:1/cb", name: "n"))
        try Self.roundTrip(InviteBody(token: "t", url: "/invite/t", role: "member", expiresAt: "2026-01-01T00:00:00.000Z"))
        try Self.roundTrip(MemberList(members: [UserBody(id: 2, email: "b@c.de", name: "B", role: "viewer", createdAt: "x")]))
        try Self.roundTrip(ErrorBody(error: "no_account", code: "NO_ACCOUNT", message: "sign up"))
        try Self.roundTrip(KeyRequest(name: "ci", scopes: ["read"], expiresIn: "30d"))
        try Self.roundTrip(
            KeyList(keys: [KeyBody(id: "k", name: "n", prefix: "plx_ab", scopes: ["read"], createdAt: "t", expiresAt: nil, revokedAt: "r")])
        )
        try Self.roundTrip(KeyCheck(orgID: "o", scopes: ["read", "write"]))
        try Self.roundTrip(
            SessionRequest(
                sessionID: "s", name: "run", sourceID: "d", status: "active", tags: .object(["a": .int(1)]),
                metadata: .object([:]), startedAt: .text("2026-01-01T00:00:00Z"), endedAt: .number(1.7e12)))
        try Self.roundTrip(
            SessionList(sessions: [
                SessionBody(
                    sessionID: "s", name: "n", sourceID: "d", status: "completed", tags: .object([:]),
                    metadata: .object(["k": .string("v")]),
                    startedAt: "a", endedAt: nil, createdAt: "c",
                    summary: .init(metrics: ["m"], pointCount: 3, firstTimestampMs: 1.5, lastTimestampMs: nil))
            ]))
        try Self.roundTrip(
            SourceList(devices: [
                SourceBody(sourceID: "d", online: false, lastSeenMs: nil),
                SourceBody(
                    sourceID: "e", online: true, lastSeenMs: 5, platform: nil, agentVersion: "1", sensors: .array([.string("x")]),
                    connectedAtMs: 4),
            ]))
        try Self.roundTrip(CommandRequest(command: "ping", params: .object(["n": .double(0.5)])))
        try Self.roundTrip(CommandQueued(queued: true, frame: .object(["type": .string("ping")])))
        try Self.roundTrip(ClaimList(claims: [ClaimBody(sourceID: "d_2", installID: "i", requested: "d", claimedAt: "t", online: true)]))
        try Self.roundTrip(ClientConfig(wsURL: "ws://h:1/ws/device"))
        try Self.roundTrip(Redirect(redirect: "http://127.0.0.1:9/cb?state=s"))
    }

    @Test("wire names are snake case, as the original platform's API")
    func wireNames() throws {
        #expect(Set(try Self.json(DeviceKeyGrant(apiKey: "k", orgID: "o")).keys) == ["api_key", "org_id"])
        #expect(Set(try Self.json(PasswordChange(currentPassword: "a", newPassword: "b")).keys) == ["current_password", "new_password"])
        #expect(try Self.decode(LoginBody.self, #"{"email":"e","password":"p","first_name":"F"}"#).firstName == "F")
        #expect(Set(try Self.json(ClientConfig(wsURL: "u")).keys) == ["ws_url"])
        #expect(
            Set(try Self.json(ClaimBody(sourceID: "a", installID: "b", requested: "c", claimedAt: "d", online: false)).keys)
                == ["source_id", "install_id", "requested", "claimed_at", "online"])
    }

    @Test("optional response fields are present as null, not left out")
    func nullsKept() throws {
        let key = try Self.json(KeyBody(id: "k", name: "n", prefix: "p", scopes: [], createdAt: "t", expiresAt: nil, revokedAt: nil))
        #expect(key["expires_at"] is NSNull && key["revoked_at"] is NSNull)
        #expect(key["key"] == nil)  // the secret only where it was created
        let session = try Self.json(
            SessionBody(
                sessionID: "s", name: "n", sourceID: "d", status: "active", tags: .object([:]), metadata: .object([:]), startedAt: "a",
                endedAt: nil, createdAt: "c", summary: .init(metrics: [], pointCount: 0, firstTimestampMs: nil, lastTimestampMs: nil)))
        #expect(session["ended_at"] is NSNull)
        let summary = try #require(session["summary"] as? [String: Any])
        #expect(summary["first_timestamp_ms"] is NSNull && summary["last_timestamp_ms"] is NSNull)
        #expect(
            try Self.json(
                SessionBody(
                    sessionID: "s", name: "n", sourceID: "d", status: "active", tags: .object([:]), metadata: .object([:]), startedAt: "a",
                    endedAt: nil, createdAt: "c"))["summary"] == nil)
        // An offline source has no device fields; an online one has them all, nulls included.
        let offline = try Self.json(SourceBody(sourceID: "d", online: false, lastSeenMs: nil))
        #expect(Set(offline.keys) == ["source_id", "online", "last_seen_ms"] && offline["last_seen_ms"] is NSNull)
        let online = try Self.json(SourceBody(sourceID: "d", online: true, lastSeenMs: 1, connectedAtMs: 1))
        #expect(online["platform"] is NSNull && online["agent_version"] is NSNull && (online["sensors"] as? [Any])?.isEmpty == true)
    }

    @Test("any JSON value keeps its type: 64-bit integers exact, booleans not numbers, nesting")
    func jsonValues() throws {
        let v = try Self.decode(
            JSONValue.self, #"{"big":9007199254740993,"neg":-9223372036854775808,"f":0.1,"t":true,"n":null,"s":"é\"","a":[1,[{}]]}"#)
        let o = try #require(v.objectValue)
        #expect(o["big"] == .int(9_007_199_254_740_993))
        #expect(o["neg"] == .int(Int64.min))
        #expect(o["f"] == .double(0.1))
        #expect(o["t"] == .bool(true))
        #expect(o["n"] == .null)
        #expect(o["s"] == .string("é\""))
        #expect(o["a"] == .array([.int(1), .array([.object([:])])]))
        #expect(try JSONDecoder().decode(JSONValue.self, from: try JSONEncoder().encode(v)) == v)
        // Beyond 64 bits: a double, not an error.
        #expect(try Self.decode(JSONValue.self, "18446744073709551616") == .double(18_446_744_073_709_551_616))
    }

    @Test(
        "hostile request bodies are decoding errors, never a crash or a silent default",
        arguments: [
            #"{"email":5,"password":"p"}"#,
            #"{"email":"e","password":["p"]}"#,
            #"{"email":{"$ne":null},"password":"p"}"#,
            #"{"email":"e","password":true}"#,
            #"{"email":"e","password":1e999}"#,
            #"["email","password"]"#,
            #""email""#,
            #"{"email":"e","password":"p""#,
            #"{"email":"e","password":"p"} trailing"#,
            #"{"email":NaN}"#,
            "",
        ])
    func hostileLogin(_ text: String) {
        #expect(throws: DecodingError.self) { try Self.decode(LoginBody.self, text) }
    }

    @Test("a session body: null is absent, a time is text or a number, never a boolean")
    func sessionRequest() throws {
        let nulls = try Self.decode(SessionRequest.self, #"{"tags":null,"metadata":null,"name":null,"started_at":null}"#)
        #expect(nulls == SessionRequest())
        let times = try Self.decode(SessionRequest.self, #"{"started_at":"2026-01-01T00:00:00Z","ended_at":1767225600}"#)
        #expect(times.startedAt == .text("2026-01-01T00:00:00Z") && times.endedAt == .number(1_767_225_600))
        #expect(throws: DecodingError.self) { try Self.decode(SessionRequest.self, #"{"started_at":true}"#) }
        #expect(throws: DecodingError.self) { try Self.decode(SessionRequest.self, #"{"started_at":[1]}"#) }
        #expect(throws: DecodingError.self) { try Self.decode(SessionRequest.self, #"{"session_id":7}"#) }
        // Tags of any JSON shape decode; the route refuses those that are not objects.
        #expect(try Self.decode(SessionRequest.self, #"{"tags":[1,2]}"#).tags == .array([.int(1), .int(2)]))
        // A huge body of nesting does not blow the stack of the decoder's caller.
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        _ = try? Self.decode(SessionRequest.self, #"{"tags":"# + deep + "}")
    }

    @Test("a key request: scopes are a list of strings, expires_in a string or null")
    func keyRequest() throws {
        #expect(try Self.decode(KeyRequest.self, #"{"name":"n","expires_in":null}"#) == KeyRequest(name: "n"))
        #expect(throws: DecodingError.self) { try Self.decode(KeyRequest.self, #"{"name":"n","scopes":"admin"}"#) }
        #expect(throws: DecodingError.self) { try Self.decode(KeyRequest.self, #"{"name":"n","scopes":[1]}"#) }
        #expect(throws: DecodingError.self) { try Self.decode(KeyRequest.self, #"{"name":"n","expires_in":30}"#) }
    }
}
