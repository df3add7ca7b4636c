import Foundation
import NIOHTTP1
import PlexusServer
import PlexusServerTesting
import PlexusStorage
import Testing

@Suite("Sessions", .timeLimit(.minutes(2)))
struct SessionTests {
    @Test("the server applies retention by itself: a point past it goes, a newer one and a pinned session's stay")
    func retentionRuns() async throws {
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        let policy = RetentionPolicy(raw: .micros(3_600_000_000))
        try await withServer(.set(\.retention, policy), .set(\.retentionInterval, Duration.milliseconds(50))) { s in
            #expect(try await s.post("/api/sessions", #"{"session_id":"kept","name":"k","source_id":"rig","pinned":true}"#).status == 201)
            let old = Double(now) / 1_000_000 - 7_200
            let late = #"{"source_id":"rig","points":[{"metric":"m","value":9,"timestamp":\#(old)}]}"#
            // Past the retention: refused at the door (400), nothing stored.
            #expect(try await s.ingest(late).status == 400)
            // The organisation keeps its points forever for a while (read again within a
            // second), so old points go in; then back to the server's hour.
            _ = try await s.cli(["orgs", "retention", "--data-dir", s.dataDir, "default", "--raw", "forever"])
            let accepted = try await eventually { try await s.ingest(late).status == 200 }
            #expect(accepted)
            let body = """
                {"source_id":"rig","points":[{"metric":"m","value":1,"timestamp":\(old)},
                {"metric":"m","value":2,"timestamp":\(old),"session_id":"kept"}]}
                """
            #expect(try await s.ingest(body).status == 200)
            // A read stores what came before apart from what follows (retention removes whole chunks).
            _ = try await s.rawValues("rig", "m")
            #expect(try await s.ingest(#"{"source_id":"rig","points":[{"metric":"m","value":3}]}"#).status == 200)
            _ = try await s.cli(["orgs", "retention", "--data-dir", s.dataDir, "default", "--raw", "default"])
            let removed = try await eventually { try await s.rawValues("rig", "m").values.count == 2 }
            #expect(removed)
            #expect(try await s.rawValues("rig", "m").values.compactMap { $0 as? Double }.sorted() == [2, 3])
        }
    }

    @Test("pinned: set by POST or PATCH, shown everywhere, null or absent changes nothing; wrong types 400; other tenants 404")
    func pinned() async throws {
        try await withServer { s in
            var r = try await s.post("/api/sessions", #"{"session_id":"p","name":"p","source_id":"rig","pinned":true}"#)
            #expect(r.status == 201 && r.object["pinned"] as? Bool == true)
            r = try await s.post("/api/sessions", #"{"session_id":"q","name":"q","source_id":"rig"}"#)
            #expect(r.object["pinned"] as? Bool == false)
            func patch(_ id: String, _ body: String, key: String?? = .none) async throws -> TestServer.Reply {
                try await s.request(.PATCH, "/api/sessions/\(id)", key: key, body: Data(body.utf8))
            }
            #expect(try await patch("q", #"{"pinned":true}"#).object["pinned"] as? Bool == true)
            #expect(try await patch("q", #"{"pinned":null,"name":"renamed"}"#).object["pinned"] as? Bool == true)
            #expect(try await patch("q", #"{"name":"again"}"#).object["pinned"] as? Bool == true)
            #expect(try await patch("p", #"{"pinned":false}"#).object["pinned"] as? Bool == false)
            for bad in [#"{"pinned":"yes"}"#, #"{"pinned":1}"#, #"{"pinned":[true]}"#, #"{"pinned":{}}"#] {
                r = try await patch("p", bad)
                #expect(r.status == 400, "\(bad)")
            }
            #expect(try await s.get("/api/sessions/p").object["pinned"] as? Bool == false)
            let listed = try await s.get("/api/sessions?source_id=rig").object["sessions"] as? [[String: Any]]
            #expect(Set(listed?.compactMap { $0["pinned"] as? Bool } ?? []) == [true, false])
            // Another organisation can neither see nor pin them.
            _ = try await s.cli(["orgs", "create", "--data-dir", s.dataDir, "team-b"])
            let b = try await s.createKey(scopes: "write,read,admin", org: "team-b")
            #expect(try await patch("p", #"{"pinned":true}"#, key: b).status == 404)
            #expect(try await s.get("/api/sessions/p").object["pinned"] as? Bool == false)
        }
    }

    @Test("create is idempotent for the same body, 409 otherwise; PATCH ends; 404 for unknown")
    func lifecycle() async throws {
        try await withServer { s in
            let body = #"{"session_id":"test-001","name":"Motor Test Run","source_id":"sensor-001","status":"active"}"#
            var r = try await s.post("/api/sessions", body)
            #expect(r.status == 201)
            #expect(r.object["session_id"] as? String == "test-001")
            #expect(r.object["status"] as? String == "active")
            #expect(try await s.post("/api/sessions", body).status == 200)
            r = try await s.post("/api/sessions", #"{"session_id":"test-001","name":"Other","source_id":"sensor-001"}"#)
            #expect((r.status, r.object["code"] as? String) == (409, "CONFLICT"))
            #expect(r.object["error"] as? String == "session test-001 already exists with different fields")
            r = try await s.post("/api/sessions", #"{"name":"auto","source_id":"sensor-001"}"#)
            #expect(r.status == 201)
            let generated = try #require(r.object["session_id"] as? String)
            #expect(generated.range(of: #"^session_\d+_[a-z0-9]+$"#, options: .regularExpression) != nil)
            r = try await s.post("/api/sessions", #"{"source_id":"sensor-001"}"#)
            #expect((r.status, r.object["code"] as? String) == (400, "VALIDATION_ERROR"))

            // An explicit start is strict.
            r = try await s.post(
                "/api/sessions", #"{"session_id":"strict","name":"s","source_id":"x","started_at":"2024-01-15T10:00:00Z"}"#)
            #expect(r.status == 201)
            r = try await s.request(
                .PATCH, "/api/sessions/strict", body: Data(#"{"status":"completed","ended_at":"2024-01-15T09:00:00Z"}"#.utf8))
            #expect((r.status, r.object["error"] as? String) == (400, "ended_at must be after started_at"))
            r = try await s.request(.PATCH, "/api/sessions/strict", body: Data(#"{"ended_at":"2024-01-15T11:00:00Z"}"#.utf8))
            #expect(r.status == 200)
            #expect(r.object["status"] as? String == "completed")  // ended_at alone completes an active session
            // A defaulted start with data: ended_at may not precede the first point.
            #expect(
                try await s.ingest(
                    #"{"source_id":"y","points":[{"metric":"m","value":1,"timestamp":1705312800,"session_id":"with-data"}]}"#
                ).status == 200)
            r = try await s.request(
                .PATCH, "/api/sessions/with-data", body: Data(#"{"status":"completed","ended_at":"2024-01-15T09:00:00Z"}"#.utf8))
            #expect(r.status == 400)
            // The spec's own example: a just-created session ended at a past date (a retrospective session).
            r = try await s.request(
                .PATCH, "/api/sessions/test-001", body: Data(#"{"status":"completed","ended_at":"2024-01-15T10:30:00Z"}"#.utf8))
            #expect(r.status == 200)
            #expect(r.object["status"] as? String == "completed")
            #expect(r.object["ended_at"] as? String == "2024-01-15T10:30:00.000Z")
            #expect(r.object["started_at"] as? String == "2024-01-15T10:30:00.000Z")
            r = try await s.request(.PATCH, "/api/sessions/\(generated)", body: Data(#"{"status":"aborted"}"#.utf8))
            #expect(r.status == 200)
            #expect(r.object["ended_at"] is String)  // ending without ended_at uses now
            r = try await s.request(.PATCH, "/api/sessions/nope", body: Data(#"{"status":"completed"}"#.utf8))
            #expect((r.status, r.object["code"] as? String) == (404, "NOT_FOUND"))
            #expect(r.object["error"] as? String == "session not found")
            #expect(try await s.get("/api/sessions/nope").status == 404)

            let done = try await s.get("/api/sessions?source_id=sensor-001&status=completed").object["sessions"] as? [[String: Any]]
            #expect(done?.map { $0["session_id"] as? String } == ["test-001"])
            let active = try await s.get("/api/sessions?status=active").object["sessions"] as? [[String: Any]]
            #expect(active?.map { $0["session_id"] as? String } == ["with-data"])
            let aborted = try await s.get("/api/sessions?status=aborted").object["sessions"] as? [[String: Any]]
            #expect(aborted?.map { $0["session_id"] as? String } == [generated])
        }
    }

    @Test("points with an unknown session_id create it; data, summary, export and delete")
    func data() async throws {
        try await withServer { s in
            let pts = (0..<20).map { i in
                i % 2 == 0
                    ? #"{"metric":"rpm","value":\#(i * 100),"timestamp":\#(1_700_000_000 + i)}"#
                    : #"{"metric":"state","value":"spin, \"fast\"","timestamp":\#(1_700_000_000 + i)}"#
            }
            #expect(
                try await s.ingest(#"{"source_id":"rig","session_id":"run-7","points":[\#(pts.joined(separator: ","))]}"#).status == 200)
            #expect(try await s.ingest(#"{"source_id":"rig","points":[{"metric":"rpm","value":1,"timestamp":1700000005}]}"#).status == 200)
            var r = try await s.get("/api/sessions/run-7")
            #expect(r.status == 200)
            #expect(r.object["status"] as? String == "active")
            #expect(r.object["source_id"] as? String == "rig")
            let summary = try #require(r.object["summary"] as? [String: Any])
            #expect(summary["point_count"] as? Int == 20)
            #expect(summary["metrics"] as? [String] == ["rpm", "state"])
            #expect(summary["first_timestamp_ms"] as? Int == 1_700_000_000_000)
            #expect(summary["last_timestamp_ms"] as? Int == 1_700_000_019_000)

            r = try await s.get("/api/sessions/run-7/data?metrics=rpm&interval=raw")
            let rpm = (r.object["series"] as? [String: [String: Any]])?["rpm"]
            #expect((rpm?["value"] as? [Double])?.count == 10)  // the point outside the session is not included

            r = try await s.get("/api/sessions/run-7/export?format=csv")
            #expect(r.status == 200)
            #expect(r.headers["content-type"].first?.hasPrefix("text/csv") == true)
            let lines = r.text.split(separator: "\n")
            #expect(lines.count == 21)
            #expect(lines[0] == "timestamp,timestamp_ms,source_id,metric,value,tags")
            #expect(lines[1] == "2023-11-14T22:13:20.000Z,1700000000000,rig,rpm,0,")
            #expect(lines[2] == #"2023-11-14T22:13:21.000Z,1700000001000,rig,state,"spin, ""fast""","#)
            r = try await s.get("/api/sessions/run-7/export?format=jsonl")
            let rows = r.text.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(rows.count == 20)
            #expect(rows[1]?["value"] as? String == #"spin, "fast""#)
            #expect(try await s.get("/api/sessions/run-7/export?format=xml").status == 400)

            // Deleting needs the admin scope, and takes the data with it.
            let writer = try await s.createKey(scopes: "write,read")
            r = try await s.request(.DELETE, "/api/sessions/run-7", key: writer)
            #expect((r.status, r.object["code"] as? String) == (403, "FORBIDDEN"))
            #expect(try await s.request(.DELETE, "/api/sessions/run-7").status == 204)
            #expect(try await s.get("/api/sessions/run-7").status == 404)
            #expect(try await s.rawValues("rig", "rpm").values.compactMap { $0 as? Double } == [1])
            #expect(try await s.request(.DELETE, "/api/sessions/run-7").status == 404)
        }
    }
}

@Suite("Sessions: edge cases", .timeLimit(.minutes(2)))
struct SessionEdgeTests {
    @Test("a session first named by points can be claimed by POST; PATCH edits tags and metadata")
    func claimAndEdit() async throws {
        try await withServer { s in
            #expect(try await s.ingest(#"{"source_id":"arm","points":[{"metric":"m","value":1,"session_id":"calib"}]}"#).status == 200)
            var r = try await s.post("/api/sessions", #"{"session_id":"calib","name":"Calibration","source_id":"arm","tags":{"op":"ana"}}"#)
            #expect(r.status == 200)
            #expect(r.object["name"] as? String == "Calibration")
            #expect((r.object["tags"] as? [String: String]) == ["op": "ana"])
            // Once claimed, a different body is a conflict again.
            r = try await s.post("/api/sessions", #"{"session_id":"calib","name":"Other","source_id":"arm"}"#)
            #expect(r.status == 409)
            // Another source cannot claim it.
            #expect(try await s.ingest(#"{"source_id":"arm2","points":[{"metric":"m","value":1,"session_id":"auto2"}]}"#).status == 200)
            #expect(try await s.post("/api/sessions", #"{"session_id":"auto2","name":"x","source_id":"arm"}"#).status == 409)

            r = try await s.request(.PATCH, "/api/sessions/calib", body: Data(#"{"tags":{"op":"bo"},"metadata":{"rig":3}}"#.utf8))
            #expect(r.status == 200)
            #expect((r.object["tags"] as? [String: String]) == ["op": "bo"])
            #expect((r.object["metadata"] as? [String: Int]) == ["rig": 3])
            r = try await s.request(.PATCH, "/api/sessions/calib", body: Data(#"{"source_id":"other"}"#.utf8))
            #expect(r.status == 400)
            r = try await s.request(
                .PATCH, "/api/sessions/calib", body: Data(#"{"status":"active","ended_at":"2030-01-01T00:00:00Z"}"#.utf8))
            #expect(r.status == 400)
            r = try await s.post("/api/sessions", #"{"name":"n","source_id":"arm","status":"active","ended_at":1700000000}"#)
            #expect((r.status, r.object["error"] as? String) == (400, "an active session has no ended_at"))
            // Numbers are accepted as times, like everywhere else.
            r = try await s.post(
                "/api/sessions",
                #"{"session_id":"num","name":"n","source_id":"arm","started_at":1700000000,"ended_at":1700000060000,"status":"completed"}"#)
            #expect(r.status == 201)
            #expect(r.object["started_at"] as? String == "2023-11-14T22:13:20.000Z")
            #expect(r.object["ended_at"] as? String == "2023-11-14T22:14:20.000Z")
            #expect(
                try await s.post(
                    "/api/sessions",
                    #"{"session_id":"num","name":"n","source_id":"arm","started_at":1700000000,"ended_at":1700000060000,"status":"completed"}"#
                ).status == 200)
        }
    }

    @Test("export: one row per point sent (vectors once), each with its own source")
    func exportSources() async throws {
        try await withServer { s in
            #expect(
                try await s.ingest(
                    #"{"points":[{"metric":"accel","value":{"x":1,"y":2},"source_id":"a","session_id":"mix","timestamp":1700000000},{"metric":"t","value":5,"source_id":"b","session_id":"mix","timestamp":1700000001}]}"#
                ).status == 200)
            let lines = try await s.get("/api/sessions/mix/export?format=csv").text.split(separator: "\n")
            #expect(lines.count == 3)
            #expect(lines[1] == #"2023-11-14T22:13:20.000Z,1700000000000,a,accel,"{""x"":1,""y"":2}","#)
            #expect(lines[2] == "2023-11-14T22:13:21.000Z,1700000001000,b,t,5,")
            let summary = try await s.get("/api/sessions/mix").object["summary"] as? [String: Any]
            #expect(summary?["point_count"] as? Int == 2)
        }
    }
}

@Suite("Routing errors", .timeLimit(.minutes(1)))
struct RoutingTests {
    @Test("unknown routes and methods answer in the same JSON error shape")
    func unknown() async throws {
        try await withServer { s in
            var r = try await s.get("/nope")
            #expect((r.status, r.object["code"] as? String) == (404, "NOT_FOUND"))
            // Hummingbird's router answers an unsupported method like an unknown path.
            r = try await s.request(.PUT, "/ingest")
            #expect((r.status, r.object["code"] as? String) == (404, "NOT_FOUND"))
            r = try await s.request(.POST, "/api/sessions", body: Data(String(repeating: " ", count: 2 << 20).utf8))
            #expect((r.status, r.object["code"] as? String) == (413, "PAYLOAD_TOO_LARGE"))
        }
    }

    @Test("typed bodies: a member of the wrong type is a 400 naming it, bad JSON is INVALID_JSON, and nothing is stored")
    func wrongTypes() async throws {
        try await withServer { s in
            let refused: [(path: String, body: String, names: String)] = [
                ("/api/sessions", #"{"name":5,"source_id":"d"}"#, "name must be a string"),
                ("/api/sessions", #"{"name":"n","source_id":["d"]}"#, "source_id must be a string"),
                ("/api/sessions", #"{"session_id":{"$gt":""},"source_id":"d"}"#, "session_id must be a string"),
                ("/api/sessions", #"{"source_id":"d","started_at":true}"#, "started_at must be a number"),
                ("/api/sessions", #"{"source_id":"d","started_at":1e400}"#, "invalid JSON body"),
                ("/api/sessions", #"{"source_id":"d","tags":[1]}"#, "tags and metadata must be objects"),
                ("/api/sessions", #"{"source_id":"d","metadata":"x"}"#, "tags and metadata must be objects"),
                ("/api/sessions", #"{"source_id":"d","started_at":"9999999999999999999"}"#, "started_at must be ISO-8601"),
                ("/api/sessions", "[1,2]", "invalid JSON body"),
                ("/api/sessions", #"{"source_id":"d""#, "invalid JSON body"),
                ("/api/keys", #"{"name":"k","scopes":"admin"}"#, "scopes must be a list"),
                ("/api/keys", #"{"name":"k","expires_in":30}"#, "expires_in must be a string"),
                ("/api/keys", #"{"name":["k"]}"#, "name must be a string"),
                ("/v1/sources/d/commands", #"{"command":1}"#, "command must be a string"),
            ]
            for r in refused {
                let reply = try await s.post(r.path, r.body)
                #expect(reply.status == 400, "\(r.body) -> \(reply.status) \(reply.text)")
                #expect((reply.object["error"] as? String)?.hasPrefix(r.names) == true, "\(r.body) -> \(reply.text)")
            }
            #expect((try await s.get("/api/sessions").object["sessions"] as? [Any])?.isEmpty == true)
            let keys = try await s.get("/api/keys").object["keys"] as? [Any]
            #expect(keys?.count == 1)  // the test's own key only
            // Null is absent; an empty body is an empty object.
            #expect(try await s.post("/api/sessions", #"{"name":"n","source_id":"d","tags":null,"ended_at":null}"#).status == 201)
            #expect(try await s.post("/api/keys", "").object["error"] as? String == "name is required (1-128 bytes)")
        }
    }
}
