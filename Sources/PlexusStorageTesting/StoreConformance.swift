public import PlexusModel
public import PlexusStorage
public import Testing

/// The behaviours every `PlexusStore` engine must have. An engine's test target runs
/// each ``Check`` against a fresh, running store:
///
/// ```swift
/// @Test(arguments: StoreConformance.checks)
/// func conformance(_ check: StoreConformance.Check) async throws {
///     try await withTemporarySQLiteStore { try await check.run($0) }
/// }
/// ```
public enum StoreConformance {
    public struct Check: Sendable, CustomTestStringConvertible {
        public let name: String
        public let run: @Sendable (any PlexusStore) async throws -> Void
        public var testDescription: String { name }
    }

    /// Every check, concern by concern (``PlexusStore`` is one protocol per concern).
    public static let checks: [Check] = telemetry + tenants + accounts + sessions + devices

    /// ``TelemetryStore``: appends and reads.
    public static let telemetry: [Check] = [
        Check(name: "telemetry: every value type round-trips", run: valueTypesRoundTrip),
        Check(name: "telemetry: aggregates stay correct across separate writes", run: aggregatesAcrossWrites),
        Check(name: "telemetry: tag filters and session selection", run: tagsAndSessions),
        Check(name: "telemetry: per-series queries keep series with more tags and sessions apart", run: perSeries),
        Check(name: "telemetry: the series with points in a time range", run: seriesInRange),
        Check(name: "telemetry: raw queries cap rows and report truncation", run: rawLimit),
        Check(name: "telemetry: aggregated queries cap buckets across metrics, in metric order", run: aggregatedLimit),
        Check(name: "telemetry: per-series rollups and their edges agree with the points", run: rollupsMatchPoints),
        Check(name: "telemetry: a bucket whose sum overflows still has its points' mean", run: overflowingMean),
        Check(name: "telemetry: ranges are half-open and out-of-order points come back sorted", run: rangesAndOrder),
        Check(name: "telemetry: points without a timestamp get the receive time", run: receiveTime),
        Check(name: "telemetry: batches appended together are all stored, in their order", run: appendTogether),
        Check(name: "telemetry: a point sent again is stored and rolled up once; other values at its time are kept", run: resent),
        Check(
            name: "telemetry: retention removes old points, then old rollups; pinned sessions and organisations' own periods keep theirs",
            run: retention),
    ]

    /// ``TenantStore``: organisations, keys, and that they never see each other's data.
    public static let tenants: [Check] = [
        Check(name: "tenants: organisations never see each other's data", run: tenantIsolation),
        Check(name: "tenants: organisations and keys", run: keysAndOrgs),
    ]

    /// ``AccountStore``: people, login sessions, invites.
    public static let accounts: [Check] = [
        Check(name: "accounts: first owner, new organisations, invites, login sessions", run: accountLifecycle),
        Check(name: "accounts: invite-only sign-up admits only the first person", run: firstOnly),
    ]

    /// ``SessionStore``: sessions and recordings.
    public static let sessions: [Check] = [
        Check(name: "sessions: create, summary, scan, delete", run: sessionLifecycle),
        Check(
            name: "sessions: recordings start, undo and stop in one step each; session and recording never disagree",
            run: recordings),
    ]

    /// ``DeviceStore``: name claims.
    public static let devices: [Check] = [
        Check(name: "devices: claims are per install, suffixed, concurrent-safe", run: deviceClaims)
    ]

    static func firstOnly(_ store: any PlexusStore) async throws {
        // Two strangers race to be first: exactly one becomes the owner of `default`.
        let results = await withTaskGroup(of: Result<UserRecord, any Error>.self) { group in
            for n in 0..<2 {
                group.addTask {
                    do {
                        return .success(
                            try await store.createUser(
                                NewUser(
                                    email: "first\(n)@example.com", name: "F", passwordHash: "h", membership: .firstOnly, createdAt: t0)
                            ).0)
                    } catch {
                        return .failure(error)
                    }
                }
            }
            var all: [Result<UserRecord, any Error>] = []
            for await r in group { all.append(r) }
            return all
        }
        let owners = results.compactMap { try? $0.get() }
        #expect(owners.count == 1 && owners.first?.role == .owner)
        for case .failure(let e) in results { #expect((e as? StoreError)?.code == .forbidden) }
        // After that only an administrator adds people, to an organisation that exists.
        let org = try #require(await store.organization(named: "default"))
        let (viewer, _) = try await store.createUser(
            NewUser(
                email: "v@example.com", name: "V", passwordHash: "h", membership: .organization(id: org.id, role: .viewer), createdAt: t0))
        #expect(viewer.orgID == org.id && viewer.role == .viewer)
        await #expect(throws: StoreError.self) {
            _ = try await store.createUser(
                NewUser(
                    email: "w@example.com", name: "W", passwordHash: "h",
                    membership: .organization(id: 987_654, role: .member), createdAt: t0))
        }
    }

    static func accountLifecycle(_ store: any PlexusStore) async throws {
        // The first person takes the default organisation; the next gets a new one.
        let (ada, adaOrg) = try await store.createUser(
            NewUser(
                email: "Ada@Example.com", name: "Ada", passwordHash: "h1", membership: .firstOrNewOrganization(name: "ada"), createdAt: t0))
        #expect(adaOrg.name == "default" && ada.role == .owner && ada.email == "ada@example.com")
        let (bob, bobOrg) = try await store.createUser(
            NewUser(
                email: "bob@example.com", name: "Bob", passwordHash: "h2", membership: .firstOrNewOrganization(name: "default"),
                createdAt: t0))
        #expect(bobOrg.name == "default-2" && bobOrg.id != adaOrg.id && bob.role == .owner)
        // An email is one account, whatever its case.
        await #expect(throws: StoreError.self) {
            _ = try await store.createUser(
                NewUser(
                    email: "ADA@example.com", name: "x", passwordHash: "h",
                    membership: .firstOrNewOrganization(name: "z"), createdAt: t0))
        }
        #expect(try await store.user(email: "ADA@EXAMPLE.COM")?.id == ada.id)
        #expect(try await store.user(id: bob.id)?.orgID == bobOrg.id)

        // Invites: used once, not after expiry.
        let token: [UInt8] = Array("invite-token-1".utf8)
        let stale: [UInt8] = Array("invite-token-2".utf8)
        try await store.createInvite(
            InviteRecord(
                tokenHash: token, orgID: adaOrg.id, role: .viewer, createdBy: ada.id,
                createdAt: t0, expiresAt: t0 + 1_000_000))
        try await store.createInvite(
            InviteRecord(
                tokenHash: stale, orgID: adaOrg.id, role: .member, createdBy: ada.id,
                createdAt: t0, expiresAt: t0 + 10))
        #expect(try await store.invite(tokenHash: token)?.role == .viewer)
        let (cy, cyOrg) = try await store.createUser(
            NewUser(
                email: "cy@example.com", name: "Cy", passwordHash: "h3",
                membership: .invite(tokenHash: token), createdAt: t0 + 5))
        #expect(cyOrg.id == adaOrg.id && cy.role == .viewer)
        #expect(try await store.invite(tokenHash: token)?.usedAt == t0 + 5)
        for (t, email) in [(token, "dee@example.com"), (stale, "eve@example.com")] {
            do {
                _ = try await store.createUser(
                    NewUser(
                        email: email, name: "x", passwordHash: "h",
                        membership: .invite(tokenHash: t), createdAt: t0 + 20))
                Issue.record("a used or expired invite was accepted")
            } catch let e as StoreError {
                #expect(e.code == .gone)
            }
        }
        #expect(try await store.user(email: "eve@example.com") == nil)
        #expect(try await store.users(orgID: adaOrg.id).map(\.email) == ["ada@example.com", "cy@example.com"])

        // Login sessions expire, and a password change ends all but the one kept.
        let s1: [UInt8] = Array("session-1".utf8)
        let s2: [UInt8] = Array("session-2".utf8)
        for s in [s1, s2] {
            try await store.createLoginSession(
                LoginSessionRecord(
                    tokenHash: s, userID: ada.id, csrfToken: "c", createdAt: t0,
                    expiresAt: t0 + 100))
        }
        #expect(try await store.loginSession(tokenHash: s1, now: t0 + 1)?.1.id == ada.id)
        #expect(try await store.loginSession(tokenHash: s1, now: t0 + 100) == nil)
        try await store.updatePassword(userID: ada.id, passwordHash: "h1b", keeping: s1)
        #expect(try await store.loginSession(tokenHash: s1, now: t0 + 1)?.1.passwordHash == "h1b")
        #expect(try await store.loginSession(tokenHash: s2, now: t0 + 1) == nil)
        try await store.deleteLoginSession(tokenHash: s1)
        #expect(try await store.loginSession(tokenHash: s1, now: t0 + 1) == nil)
    }

    static func recordings(_ store: any PlexusStore) async throws {
        func active(_ id: String, _ source: String = "arm", at: Int64 = t0) -> SessionRecord {
            SessionRecord(orgID: 1, sessionID: id, name: id, sourceID: source, status: .active, startedAt: at, createdAt: at)
        }
        let first = try await store.startRecording(active("rec-1"))
        #expect(first.created && first.previous == nil && !first.completedPrevious)
        _ = try await store.startRecording(active("rec-2", "leg"))
        // A second start moves the recording and completes the first session, in one step.
        let second = try await store.startRecording(active("rec-3", at: t0 + 5_000_000))
        #expect(second.previous == "rec-1" && second.completedPrevious)
        let rec1 = try await store.session(orgID: 1, sessionID: "rec-1")
        #expect(rec1?.status == .completed && rec1?.endedAt == t0 + 5_000_000)
        #expect(try await store.recordings().map { "\($0.orgID)/\($0.sourceID)/\($0.sessionID)" } == ["1/arm/rec-3", "1/leg/rec-2"])
        // The same id again is the same recording (idempotent); another source's or an
        // ended session's id is a conflict, and nothing changes.
        let again = try await store.startRecording(active("rec-3", at: t0 + 6_000_000))
        #expect(!again.created && again.previous == nil && again.session.startedAt == t0 + 5_000_000)
        await #expect(throws: StoreError.self) { _ = try await store.startRecording(active("rec-2")) }
        await #expect(throws: StoreError.self) { _ = try await store.startRecording(active("rec-1")) }
        #expect(try await store.recordings().map(\.sessionID) == ["rec-3", "rec-2"])
        // A start whose command never arrived is undone: the previous recording is back,
        // reopened, and the new session is aborted.
        let failed = try await store.startRecording(active("rec-4", at: t0 + 7_000_000))
        try await store.undoRecordingStart(failed, at: t0 + 7_000_001)
        #expect(try await store.session(orgID: 1, sessionID: "rec-4")?.status == .aborted)
        let reopened = try await store.session(orgID: 1, sessionID: "rec-3")
        #expect(reopened?.status == .active && reopened?.endedAt == nil)
        #expect(try await store.recordings().map(\.sessionID) == ["rec-3", "rec-2"])
        // Stop: clears the recording, completes it and a named session of the same source,
        // never another source's.
        _ = try await store.createSession(active("manual"))
        let stop = try await store.stopRecording(orgID: 1, sourceID: "arm", alsoSessionID: "manual", at: t0 + 9_000_000)
        #expect(stop == RecordingStop(stopped: "rec-3", completed: ["manual", "rec-3"]))
        let other = try await store.stopRecording(orgID: 1, sourceID: "arm", alsoSessionID: "rec-2", at: t0 + 9_000_000)
        #expect(other == RecordingStop(stopped: nil, completed: []))
        #expect(try await store.session(orgID: 1, sessionID: "rec-2")?.status == .active)
        #expect(try await store.recordings().map(\.sessionID) == ["rec-2"])
        // Another organisation's source of the same name is its own.
        #expect(try await store.stopRecording(orgID: 2, sourceID: "leg", alsoSessionID: nil, at: t0).stopped == nil)
    }

    static func deviceClaims(_ store: any PlexusStore) async throws {
        let a = try await store.claimDeviceName(orgID: 1, installID: "install-a", requested: "drone-01", at: t0)
        #expect(a == "drone-01")
        #expect(try await store.claimDeviceName(orgID: 1, installID: "install-a", requested: "drone-01", at: t0) == "drone-01")
        #expect(try await store.claimDeviceName(orgID: 1, installID: "install-b", requested: "drone-01", at: t0) == "drone-01_2")
        // B persisted its new name and asks for it next time; or asks for the base name again.
        #expect(try await store.claimDeviceName(orgID: 1, installID: "install-b", requested: "drone-01_2", at: t0) == "drone-01_2")
        #expect(try await store.claimDeviceName(orgID: 1, installID: "install-b", requested: "drone-01", at: t0) == "drone-01_2")
        #expect(try await store.claimDeviceName(orgID: 1, installID: "install-c", requested: "drone-01", at: t0) == "drone-01_3")
        // Another organisation has its own names.
        let org = try await store.createOrganization(name: "claims-\(UInt32.random(in: 0...UInt32.max))", at: t0)
        #expect(try await store.claimDeviceName(orgID: org.id, installID: "install-z", requested: "drone-01", at: t0) == "drone-01")
        // Concurrent connects never get one name twice.
        let names = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<20 {
                group.addTask { try await store.claimDeviceName(orgID: 1, installID: "race-\(i)", requested: "rover", at: t0) }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(Set(names).count == 20)
        #expect(Set(names) == Set(["rover"] + (2...20).map { "rover_\($0)" }))
        let claims = try await store.deviceClaims(orgID: 1)
        #expect(claims.first { $0.sourceID == "drone-01_2" }?.installID == "install-b")
        // Released names go to the next asker.
        #expect(try await store.releaseDeviceClaim(orgID: 1, sourceID: "drone-01"))
        #expect(try await store.releaseDeviceClaim(orgID: 1, sourceID: "drone-01") == false)
        #expect(try await store.claimDeviceName(orgID: 1, installID: "install-d", requested: "drone-01", at: t0) == "drone-01")
    }

    /// 2023-11-14T22:13:00Z, on a minute boundary: the receive time tests use.
    public static let t0: Int64 = 1_699_999_980_000_000

    /// Decodes `json` like the server does and appends it.
    public static func append(
        _ store: any PlexusStore, org: Int64 = 1, receivedAt: Int64 = t0, _ json: String,
        options: IngestDecoder.Options = .init()
    ) async throws {
        let bytes = Array(json.utf8)
        let batch = try bytes.withUnsafeBytes { try IngestDecoder.decode($0, options: options) }
        try await store.append(batch, context: AppendContext(orgID: org, receivedAt: receivedAt))
    }

    static func secs(_ us: Int64) -> String { String(Double(us) / 1_000_000) }

    /// Points (time, value) of metric `v` of `source` in two writes with a read between
    /// them, so an engine that flushes on reads merges the second into what the first left.
    static func appendInTwoWrites(
        _ store: any PlexusStore, source: String, _ first: [(Int64, Double)], then second: [(Int64, Double)]
    ) async throws {
        for (k, points) in [first, second].enumerated() {
            if k == 1 { _ = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: source), range: all, limit: 10) }
            let list = points.map { #"{"metric":"v","value":\#($0.1),"timestamp":\#(secs($0.0))}"# }.joined(separator: ",")
            try await append(store, #"{"source_id":"\#(source)","points":[\#(list)]}"#)
        }
    }
    static let all = TimeRange(start: 0, end: Int64.max / 4)

    static func valueTypesRoundTrip(_ store: any PlexusStore) async throws {
        try await append(
            store,
            """
            {"source_id":"dev","points":[
            {"metric":"n","value":72.5,"timestamp":\(secs(t0))},
            {"metric":"s","value":"running","timestamp":\(secs(t0 + 1))},
            {"metric":"b","value":true,"timestamp":\(secs(t0 + 2))},
            {"metric":"o","value":{"x":1.2,"y":3.4,"z":5.6},"timestamp":\(secs(t0 + 3))},
            {"metric":"a","value":[1.0,2.5,-3],"timestamp":\(secs(t0 + 4))},
            {"metric":"n","value":-1e-9,"timestamp":\(secs(t0 + 5))}]}
            """)
        let raw = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "dev"), range: all, limit: 100)
        let byMetric = Dictionary(uniqueKeysWithValues: raw.series.map { ($0.metric, $0) })
        #expect(byMetric["n"]?.values == [.number(72.5), .number(-1e-9)])
        #expect(byMetric["n"]?.timestamps == [t0, t0 + 5])
        #expect(byMetric["s"]?.values == [.string("running")])
        #expect(byMetric["b"]?.values == [.bool(true)])
        #expect(byMetric["o"]?.values == [.object(JSONText(unchecked: #"{"x":1.2,"y":3.4,"z":5.6}"#))])
        #expect(byMetric["a"]?.values == [.array(JSONText(unchecked: "[1.0,2.5,-3]"))])
        // A vector object is also queryable per field.
        #expect(byMetric["o.y"]?.values == [.number(3.4)])
        #expect(try await store.metrics(orgID: 1, sourceID: "dev") == ["a", "b", "n", "o", "o.x", "o.y", "o.z", "s"])
        let logs = try await store.logs(SeriesSelector(orgID: 1, sourceID: "dev"), range: all, limit: 10, newestFirst: false)
        #expect(logs.map(\.metric) == ["s", "b", "o", "a"])
        let latest = try await store.latest(orgID: 1, sourceID: "dev", since: t0)
        #expect(latest.first { $0.metric == "n" }?.value == .number(-1e-9))
        #expect(latest.first { $0.metric == "s" }?.value == .string("running"))
        let sources = try await store.sources(orgID: 1)
        #expect(sources.map(\.sourceID) == ["dev"])
        #expect(try await store.source(orgID: 1, sourceID: "nope") == nil)
    }

    static func aggregatesAcrossWrites(_ store: any PlexusStore) async throws {
        // Two writes into the same minute, with a read in between, must merge exactly.
        try await appendInTwoWrites(
            store, source: "agg", [(t0, 1), (t0 + 10_000_000, 5)], then: [(t0 + 20_000_000, -3), (t0 + 61_000_000, 9)])
        let sel = SeriesSelector(orgID: 1, sourceID: "agg", metrics: ["v"])
        let m = try await store.queryAggregated(sel, range: all, resolution: .minute, limit: 100)
        let b = try #require(m.series.first?.buckets)
        #expect(b.count == 2)
        #expect(b[0] == Bucket(start: t0, min: -3, max: 5, sum: 3, count: 3))
        #expect(b[0].average == 1)
        #expect(b[1] == Bucket(start: t0 + 60_000_000, min: 9, max: 9, sum: 9, count: 1))
        for res in [Resolution.tenMinutes, .hour, .day] {
            let r = try await store.queryAggregated(sel, range: all, resolution: res, limit: 100)
            let only = try #require(r.series.first?.buckets.first)
            #expect(r.series.first?.buckets.count == 1)
            #expect((only.min, only.max, only.sum, only.count) == (-3, 9, 12, 4), "\(res)")
            #expect(only.start % res.micros == 0)
        }
    }

    static func tagsAndSessions(_ store: any PlexusStore) async throws {
        try await append(
            store,
            """
            {"source_id":"tg","points":[
            {"metric":"t","value":1,"timestamp":\(secs(t0)),"tags":{"loc":"lab"}},
            {"metric":"t","value":2,"timestamp":\(secs(t0 + 1)),"tags":{"loc":"field"}},
            {"metric":"t","value":3,"timestamp":\(secs(t0 + 2)),"session_id":"run-1"}]}
            """)
        let lab = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "tg", tags: [Tag("loc", "lab")]), range: all, limit: 10)
        #expect(lab.series.first?.values == [.number(1)])
        let every = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "tg"), range: all, limit: 10)
        #expect(every.series.first?.values == [.number(1), .number(2), .number(3)])
        let run = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "tg", sessionID: "run-1"), range: all, limit: 10)
        #expect(run.series.first?.values == [.number(3)])
        // A session named only by points exists, active, for that source.
        let s = try #require(try await store.session(orgID: 1, sessionID: "run-1"))
        #expect(s.status == .active)
        #expect(s.sourceID == "tg")
        #expect(s.startedAt == t0 + 2)
    }

    static func perSeries(_ store: any PlexusStore) async throws {
        try await append(
            store,
            """
            {"source_id":"ps","points":[
            {"metric":"t","value":1,"timestamp":\(secs(t0)),"tags":{"loc":"lab"}},
            {"metric":"t","value":2,"timestamp":\(secs(t0 + 1)),"tags":{"loc":"lab","rack":"7"}},
            {"metric":"t","value":3,"timestamp":\(secs(t0 + 2)),"tags":{"loc":"lab"},"session_id":"run-9"},
            {"metric":"t","value":4,"timestamp":\(secs(t0 + 3)),"tags":{"loc":"lab"}},
            {"metric":"t","value":"text","timestamp":\(secs(t0 + 4)),"tags":{"loc":"lab"}},
            {"metric":"u","value":5,"timestamp":\(secs(t0 + 5))}]}
            """)
        let r = try await store.querySeries(SeriesSelector(orgID: 1, sourceID: "ps", metrics: ["t"]), range: all, limit: 100)
        #expect(!r.truncated)
        #expect(r.series.count == 3)
        let lab = [Tag("loc", "lab")]
        #expect(r.series.first { $0.series.tags == lab && $0.series.sessionID == nil }?.values == [1, 4])
        #expect(r.series.first { $0.series.tags == lab && $0.series.sessionID == "run-9" }?.values == [3])
        #expect(r.series.first { $0.series.tags.count == 2 }?.timestamps == [t0 + 1])
        #expect(r.series.allSatisfy { $0.series.sourceID == "ps" && $0.series.metric == "t" })
        let capped = try await store.querySeries(SeriesSelector(orgID: 1, sourceID: "ps"), range: all, limit: 2)
        #expect(capped.truncated)
        #expect(capped.series.reduce(0) { $0 + $1.values.count } == 2)
        let other = try await store.querySeries(SeriesSelector(orgID: 2, sourceID: "ps"), range: all, limit: 100)
        #expect(other.series.isEmpty)
    }

    static func seriesInRange(_ store: any PlexusStore) async throws {
        try await append(
            store,
            """
            {"source_id":"ar","points":[
            {"metric":"early","value":1,"timestamp":\(secs(t0))},
            {"metric":"early","value":2,"timestamp":\(secs(t0 + 10))},
            {"metric":"late","value":3,"timestamp":\(secs(t0 + 100))},
            {"metric":"words","value":"text","timestamp":\(secs(t0 + 100))}]}
            """)
        func names(_ start: Int64, _ end: Int64, org: Int64 = 1) async throws -> [String] {
            try await store.seriesIdentities(orgID: org, overlapping: TimeRange(start: start, end: end)).map(\.metric).sorted()
        }
        #expect(try await names(t0, t0 + 1) == ["early"])
        #expect(try await names(t0 + 10, t0 + 11) == ["early"])
        #expect(try await names(t0 + 11, t0 + 100) == [])  // half-open: late's first point is at the end
        #expect(try await names(t0 + 100, t0 + 101) == ["late", "words"])
        #expect(try await names(0, .max) == ["early", "late", "words"])
        #expect(try await names(t0 - 100, t0) == [])
        #expect(try await names(0, .max, org: 2) == [])
    }

    static func tenantIsolation(_ store: any PlexusStore) async throws {
        let other = try await store.createOrganization(name: "other-\(UInt32.random(in: 0...UInt32.max))", at: t0)
        try await append(store, org: 1, #"{"source_id":"same","points":[{"metric":"x","value":1,"timestamp":\#(secs(t0))}]}"#)
        try await append(store, org: other.id, #"{"source_id":"same","points":[{"metric":"x","value":2,"timestamp":\#(secs(t0))}]}"#)
        let a = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "same"), range: all, limit: 10)
        let b = try await store.queryRaw(SeriesSelector(orgID: other.id, sourceID: "same"), range: all, limit: 10)
        #expect(a.series.first?.values == [.number(1)])
        #expect(b.series.first?.values == [.number(2)])
        try await append(store, org: other.id, #"{"source_id":"only-b","points":[{"metric":"y","value":1,"session_id":"sb"}]}"#)
        #expect(try await store.sources(orgID: 1).contains { $0.sourceID == "only-b" } == false)
        #expect(try await store.session(orgID: 1, sessionID: "sb") == nil)
        #expect(try await store.sessions(orgID: 1, sourceID: nil, status: nil).contains { $0.sessionID == "sb" } == false)
        #expect(try await store.metrics(orgID: 1, sourceID: "only-b").isEmpty)
        #expect(try await store.deleteSession(orgID: 1, sessionID: "sb") == false)
        #expect(try await store.session(orgID: other.id, sessionID: "sb") != nil)
    }

    static func keysAndOrgs(_ store: any PlexusStore) async throws {
        #expect(try await store.organization(named: "default")?.id == 1)
        let org = try await store.createOrganization(name: "acme", at: t0)
        await #expect(throws: StoreError.self) { _ = try await store.createOrganization(name: "acme", at: t0) }
        #expect(try await store.organization(id: org.id)?.name == "acme")
        let hash = (0..<32).map { UInt8($0) }
        let key = APIKeyRecord(
            id: "key_test", orgID: org.id, name: "dev", hash: hash, prefix: "plx_abcd",
            scopes: [.write, .read], createdAt: t0)
        try await store.createAPIKey(key)
        #expect(try await store.apiKey(hash: hash) == key)
        #expect(try await store.apiKeys(orgID: org.id).map(\.id) == ["key_test"])
        #expect(try await store.apiKeys(orgID: 1).isEmpty)
        #expect(try await store.revokeAPIKey(id: "key_test", at: t0 + 1))
        #expect(try await store.apiKey(hash: hash)?.revokedAt == t0 + 1)
        #expect(try await store.revokeAPIKey(id: "missing", at: t0) == false)
    }

    static func aggregatedLimit(_ store: any PlexusStore) async throws {
        // Three metrics, 10 one-minute buckets each, written out of name order.
        var points: [String] = []
        for metric in ["c", "a", "b"] {
            for i in 0..<10 { points.append(#"{"metric":"\#(metric)","value":\#(i),"timestamp":\#(secs(t0 + Int64(i) * 60_000_000))}"#) }
        }
        try await append(store, #"{"source_id":"agg","points":[\#(points.joined(separator: ","))]}"#)
        let sel = SeriesSelector(orgID: 1, sourceID: "agg")
        let full = try await store.queryAggregated(sel, range: all, resolution: .minute, limit: 30)
        #expect(!full.truncated)
        #expect(full.series.map(\.metric) == ["a", "b", "c"] && full.series.allSatisfy { $0.buckets.count == 10 })
        let cut = try await store.queryAggregated(sel, range: all, resolution: .minute, limit: 25)
        #expect(cut.truncated)
        #expect(cut.series.map(\.buckets.count) == [10, 10, 5])
        #expect(cut.series.last?.buckets.map(\.count) == [1, 1, 1, 1, 1])
        // Each bucket is exact: one point per minute.
        #expect(cut.series.first?.buckets.map(\.sum) == (0..<10).map(Double.init))
    }

    static func rollupsMatchPoints(_ store: any PlexusStore) async throws {
        // Two series of one metric (tags apart), three writes with a read between each (an
        // engine that flushes then merges buckets across writes), times on a 5 s grid so
        // that one in twelve falls exactly on a minute's start, none twice in a series.
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ n: UInt64) -> Int64 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int64((seed >> 33) % n)
        }
        var used: [String: Set<Int64>] = [:]
        let sel = SeriesSelector(orgID: 1, sourceID: "roll", metrics: ["v"])
        for _ in 0..<3 {
            var points: [String] = []
            for tag in ["a", "b"] {
                for _ in 0..<60 {
                    let t = t0 + next(1_440) * 5_000_000
                    guard used[tag, default: []].insert(t).inserted else { continue }
                    let value = Double(next(10_000) - 5_000) / 100
                    points.append(#"{"metric":"v","value":\#(value),"timestamp":\#(secs(t)),"tags":{"k":"\#(tag)"}}"#)
                }
            }
            try await append(store, #"{"source_id":"roll","points":[\#(points.joined(separator: ","))]}"#)
            _ = try await store.querySeriesRollups([sel], range: all, width: .minute, limit: 1)
        }
        let raw = try await store.querySeries(sel, range: all, limit: 1_000)
        #expect(raw.series.count == 2)
        for width in RollupWidth.allCases {
            let got = try await store.querySeriesRollups([sel], range: all, width: width, limit: 10_000)
            #expect(!got.truncated && got.edgesKnown)
            #expect(got.series.map(\.series) == raw.series.map(\.series))
            for (r, p) in zip(got.series, raw.series) {
                // The reference, from the points by hand (times here are after 1970).
                func adding(_ v: Double, to b: Bucket?, at start: Int64) -> Bucket {
                    guard let b else { return Bucket(start: start, min: v, max: v, sum: v, count: 1) }
                    return Bucket(start: start, min: min(b.min, v), max: max(b.max, v), sum: b.sum + v, count: b.count + 1)
                }
                var buckets: [Int64: Bucket] = [:]
                var edges: [Int64: Bucket] = [:]
                for (t, v) in zip(p.timestamps, p.values) {
                    let start = t - t % width.micros
                    buckets[start] = adding(v, to: buckets[start], at: start)
                    if t == start { edges[start] = adding(v, to: edges[start], at: start) }
                }
                #expect(Self.same(r.buckets, buckets.values.sorted { $0.start < $1.start }), "\(width) buckets")
                #expect(Self.same(r.edges, edges.values.sorted { $0.start < $1.start }), "\(width) edges")
                #expect(r.buckets.count > 1)
                if width == .minute { #expect(!r.edges.isEmpty) }
            }
        }
        // Only buckets starting in the range; a cap is reported; other organisations see none.
        let part = try await store.querySeriesRollups(
            [sel], range: TimeRange(start: t0 + 60_000_000, end: t0 + 180_000_000), width: .minute, limit: 100)
        #expect(part.series.allSatisfy { $0.buckets.map(\.start) == [t0 + 60_000_000, t0 + 120_000_000] })
        #expect(part.series.allSatisfy { $0.edges.allSatisfy { [t0 + 60_000_000, t0 + 120_000_000].contains($0.start) } })
        let total = try await store.querySeriesRollups([sel], range: all, width: .minute, limit: 10_000).series.reduce(0) {
            $0 + $1.buckets.count
        }
        let cut = try await store.querySeriesRollups([sel], range: all, width: .minute, limit: total - 1)
        #expect(cut.truncated && cut.series.reduce(0) { $0 + $1.buckets.count } == total - 1)
        #expect(try await store.querySeriesRollups([sel], range: all, width: .minute, limit: total).truncated == false)
        // Several selectors are one read, selector by selector; another organisation's selects nothing.
        let both = try await store.querySeriesRollups(
            [SeriesSelector(orgID: 2, sourceID: "roll"), sel, SeriesSelector(orgID: 1, sourceID: "none")], range: all, width: .hour,
            limit: 10_000)
        #expect(both == (try await store.querySeriesRollups([sel], range: all, width: .hour, limit: 10_000)))
        let other = try await store.querySeriesRollups([SeriesSelector(orgID: 2, sourceID: "roll")], range: all, width: .minute, limit: 100)
        #expect(other.series.isEmpty)
    }

    static func overflowingMean(_ store: any PlexusStore) async throws {
        // 1.7e308 twice, then −1.7e308 in another write: the sum passes the largest double
        // on the way (it saturates); the mean is 1.7e308 / 3. And a bucket far from it.
        let m = 1.7e308
        try await appendInTwoWrites(
            store, source: "huge", [(t0, m), (t0 + 1_000_000, m)], then: [(t0 + 2_000_000, -m), (t0 + 7_200_000_000, 2.5)])
        let sel = SeriesSelector(orgID: 1, sourceID: "huge", metrics: ["v"])
        for res in Resolution.allCases {
            let b = try #require(try await store.queryAggregated(sel, range: all, resolution: res, limit: 10).series.first?.buckets)
            #expect(b.count == 2, "\(res)")
            #expect(abs(b[0].average - m / 3) <= 1e-12 * m, "\(res): \(b[0].average)")
            #expect((b[0].min, b[0].max, b[0].count) == (-m, m, 3))
            #expect(b[1].average == 2.5 && b[1].mean == nil, "\(res)")
        }
        // The mean is of the points the bucket's rows hold: a range that ends inside a 10-minute
        // bucket reads its 1-minute rows up to the end, and not the point in the next minute.
        try await appendInTwoWrites(store, source: "huge", [(t0 + 61_000_000, m)], then: [])
        let cut = try await store.queryAggregated(sel, range: TimeRange(start: 0, end: t0 + 30_000_000), resolution: .tenMinutes, limit: 10)
        let b = try #require(cut.series.first?.buckets.first)
        #expect(b.count == 3 && abs(b.average - m / 3) <= 1e-12 * m, "\(b)")
    }

    /// Buckets equal but for the order their sums were added in.
    static func same(_ a: [Bucket], _ b: [Bucket]) -> Bool {
        a.count == b.count
            && zip(a, b).allSatisfy { x, y in
                (x.start, x.min, x.max, x.count) == (y.start, y.min, y.max, y.count) && abs(x.sum - y.sum) <= 1e-9 * max(1, abs(y.sum))
            }
    }

    static func rawLimit(_ store: any PlexusStore) async throws {
        let pts = (0..<30).map { #"{"metric":"m\#($0 % 3)","value":\#($0),"timestamp":\#(secs(t0 + Int64($0)))}"# }
        try await append(store, #"{"source_id":"lim","points":[\#(pts.joined(separator: ","))]}"#)
        let r = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "lim"), range: all, limit: 25)
        #expect(r.truncated)
        #expect(r.series.map(\.metric) == ["m0", "m1", "m2"])
        #expect(r.series.map(\.values.count) == [10, 10, 5])
        let exact = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "lim"), range: all, limit: 30)
        #expect(!exact.truncated)
    }

    static func appendTogether(_ store: any PlexusStore) async throws {
        // Three frames of one device with the same timestamp, then one of another org:
        // arrival order is kept for equal times, and each entry keeps its own context.
        let bodies =
            (0..<3).map { #"{"source_id":"grp","points":[{"metric":"m","value":\#($0),"timestamp":\#(secs(t0))}]}"# }
            + [#"{"source_id":"grp","points":[{"metric":"m","value":9}]}"#]
        let entries = try bodies.enumerated().map { i, json in
            let bytes = Array(json.utf8)
            let batch = try bytes.withUnsafeBytes { try IngestDecoder.decode($0, options: .init()) }
            return AppendEntry(batch: batch, context: AppendContext(orgID: i == 3 ? 2 : 1, receivedAt: t0 + 5_000))
        }
        try await store.append(contentsOf: entries)
        try await store.append(contentsOf: [])
        let r = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "grp"), range: all, limit: 10)
        #expect(r.series.first?.values == [.number(0), .number(1), .number(2)])
        let other = try await store.queryRaw(SeriesSelector(orgID: 2, sourceID: "grp"), range: all, limit: 10)
        #expect(other.series.first?.timestamps == [t0 + 5_000])
    }

    static func resent(_ store: any PlexusStore) async throws {
        let body = """
            {"source_id":"again","points":[
            {"metric":"v","value":1.5,"timestamp":\(secs(t0))},
            {"metric":"v","value":2.5,"timestamp":\(secs(t0 + 1_000))},
            {"metric":"s","value":"on","timestamp":\(secs(t0))},
            {"metric":"o","value":{"x":1,"y":2},"timestamp":\(secs(t0))}]}
            """
        let sel = SeriesSelector(orgID: 1, sourceID: "again")
        // Sent three times: twice back to back (one flush may hold both), once after a read.
        try await append(store, body)
        try await append(store, body)
        _ = try await store.queryRaw(sel, range: all, limit: 1)
        try await append(store, body)
        // A resend that overlaps what is stored, with a new point twice in one request.
        try await append(
            store,
            """
            {"source_id":"again","points":[
            {"metric":"v","value":2.5,"timestamp":\(secs(t0 + 1_000))},
            {"metric":"v","value":4,"timestamp":\(secs(t0 + 2_000))},
            {"metric":"v","value":4,"timestamp":\(secs(t0 + 2_000))}]}
            """)
        // Other values at a time already held are other readings, kept in arrival order;
        // -0.0 is not 0.
        try await append(
            store,
            """
            {"source_id":"again","points":[
            {"metric":"v","value":7,"timestamp":\(secs(t0))},
            {"metric":"z","value":0,"timestamp":\(secs(t0))},
            {"metric":"z","value":-0.0,"timestamp":\(secs(t0))},
            {"metric":"s","value":"off","timestamp":\(secs(t0))},
            {"metric":"u","value":"caf\\u00e9","timestamp":\(secs(t0))},
            {"metric":"u","value":"cafe\\u0301","timestamp":\(secs(t0))},
            {"metric":"u","value":"caf\\u00e9","timestamp":\(secs(t0))}]}
            """)
        let raw = try await store.queryRaw(sel, range: all, limit: 100)
        let by = Dictionary(uniqueKeysWithValues: raw.series.map { ($0.metric, $0) })
        #expect(by["v"]?.timestamps == [t0, t0, t0 + 1_000, t0 + 2_000])
        #expect(by["v"]?.values == [.number(1.5), .number(7), .number(2.5), .number(4)])
        #expect(by["s"]?.values == [.string("on"), .string("off")])
        // Two spellings of one text (é precomposed, then e and a combining accent) are two
        // values, byte for byte, though Swift's == calls them equal.
        let spellings = by["u"]?.values.map { v -> [UInt8] in if case .string(let s) = v { Array(s.utf8) } else { [] } }
        #expect(spellings == [Array("caf\u{e9}".utf8), Array("cafe\u{301}".utf8)])
        #expect(by["o"]?.values == [.object(JSONText(unchecked: #"{"x":1,"y":2}"#))])
        #expect(by["o.y"]?.values == [.number(2)])
        let signs = by["z"]?.values.map { v -> FloatingPointSign? in
            if case .number(let d) = v, d == 0 { return d.sign }
            return nil
        }
        #expect(signs == [.plus, .minus])
        let v = SeriesSelector(orgID: 1, sourceID: "again", metrics: ["v"])
        let m = try await store.queryAggregated(v, range: all, resolution: .minute, limit: 10)
        #expect(m.series.first?.buckets == [Bucket(start: t0, min: 1.5, max: 7, sum: 15, count: 4)])
        let r = try await store.querySeriesRollups([v], range: all, width: .minute, limit: 10)
        #expect(r.series.first?.edges == [Bucket(start: t0, min: 1.5, max: 7, sum: 8.5, count: 2)])
        #expect(try await store.latest(orgID: 1, sourceID: "again", since: t0).first { $0.metric == "v" }?.value == .number(4))
    }

    static func retention(_ store: any PlexusStore) async throws {
        let hour: Int64 = 3_600_000_000
        let day = 24 * hour
        let now = t0 + 10 * day
        let forever = try await store.createOrganization(name: "keeps-forever", at: t0)
        #expect(try await store.setRetention(orgID: forever.id, RetentionOverride(raw: .forever)))
        #expect(try await store.setRetention(orgID: 9_999, RetentionOverride()) == false)
        #expect(try await store.organization(id: forever.id)?.retention == RetentionOverride(raw: .forever))
        #expect(try await store.organization(id: 1)?.retention == RetentionOverride())
        _ = try await store.createSession(
            SessionRecord(
                orgID: 1, sessionID: "keep", name: "keep", sourceID: "ret", status: .completed, startedAt: t0,
                endedAt: t0 + hour, createdAt: t0, pinned: true))
        func write(org: Int64 = 1, _ at: Int64, _ values: [Double], session: String? = nil, text: String? = nil) async throws {
            var points = values.enumerated().map { #"{"metric":"v","value":\#($1),"timestamp":\#(secs(at + Int64($0) * 60_000_000))}"# }
            if let text { points.append(#"{"metric":"s","value":"\#(text)","timestamp":\#(secs(at))}"#) }
            let sessionField = session.map { #","session_id":"\#($0)""# } ?? ""
            try await append(store, org: org, #"{"source_id":"ret"\#(sessionField),"points":[\#(points.joined(separator: ","))]}"#)
            // Read, so an engine that keeps recent points in memory stores these apart from later ones.
            _ = try await store.queryRaw(SeriesSelector(orgID: org, sourceID: "ret"), range: all, limit: 1)
        }
        try await write(t0, [1, 2, 3], text: "old")  // day 0: past both periods
        try await write(t0, [10], session: "keep")  // day 0, in a pinned session
        try await write(org: forever.id, t0, [20])  // day 0, an organisation keeping points forever
        // The rollups' edge: the minute bucket that ends at their cutoff goes, the next stays.
        try await write(now - 5 * day - 60_000_000, [100, 1_000])
        try await write(now - 3 * day, [4, 5])  // day 7: past the raw period, within the rollups'
        try await write(now - 2 * day, [7])  // exactly at the raw cutoff: kept
        try await write(now - 12 * hour, [6])  // within both
        let policy = RetentionPolicy(raw: .micros(2 * day), rollups: .micros(5 * day))
        let sweep = try await store.applyRetention(policy, at: now)
        #expect(sweep.points == 8 && sweep.blocks > 0 && sweep.rollupBuckets > 0, "\(sweep)")

        let plain = SeriesSelector(orgID: 1, sourceID: "ret", metrics: ["v"], sessionID: "")
        #expect(try await store.queryRaw(plain, range: all, limit: 100).series.first?.values == [.number(7), .number(6)])
        #expect(try await store.logs(SeriesSelector(orgID: 1, sourceID: "ret"), range: all, limit: 10, newestFirst: false).isEmpty)
        let hours = try await store.queryAggregated(plain, range: all, resolution: .hour, limit: 100)
        #expect(hours.series.first?.buckets.map(\.sum) == [1_100, 9, 7, 6])
        let minutes = try await store.queryAggregated(plain, range: all, resolution: .minute, limit: 100)
        #expect(minutes.series.first?.buckets.map(\.sum) == [1_000, 4, 5, 7, 6])
        let pinned = SeriesSelector(orgID: 1, sourceID: "ret", sessionID: "keep")
        #expect(try await store.queryRaw(pinned, range: all, limit: 10).series.first?.values == [.number(10)])
        #expect(try await store.queryAggregated(pinned, range: all, resolution: .minute, limit: 10).series.first?.buckets.count == 1)
        let other = SeriesSelector(orgID: forever.id, sourceID: "ret")
        #expect(try await store.queryRaw(other, range: all, limit: 10).series.first?.values == [.number(20)])
        // Its rollups are kept as long as its points, though the default says 5 days.
        #expect(try await store.queryAggregated(other, range: all, resolution: .minute, limit: 10).series.first?.buckets.count == 1)
        // Nothing left to remove; a later run removes what has aged since.
        #expect(try await store.applyRetention(policy, at: now) == RetentionSweep())
        let later = try await store.applyRetention(policy, at: now + 3 * day)
        #expect(later.points == 2)
        #expect(try await store.queryRaw(plain, range: all, limit: 100).series.isEmpty)
        #expect(
            try await store.queryAggregated(plain, range: all, resolution: .hour, limit: 100).series.first?.buckets.map(\.sum) == [7, 6])
        #expect(
            try await store.queryAggregated(plain, range: all, resolution: .minute, limit: 100).series.first?.buckets.map(\.sum) == [7, 6])
    }

    static func rangesAndOrder(_ store: any PlexusStore) async throws {
        try await append(
            store,
            """
            {"source_id":"ord","points":[{"metric":"m","value":3,"timestamp":\(secs(t0 + 3_000))},
            {"metric":"m","value":1,"timestamp":\(secs(t0 + 1_000))},{"metric":"m","value":2,"timestamp":\(secs(t0 + 2_000))}]}
            """)
        try await append(store, #"{"source_id":"ord","points":[{"metric":"m","value":0,"timestamp":\#(secs(t0))}]}"#)
        let sel = SeriesSelector(orgID: 1, sourceID: "ord")
        let r = try await store.queryRaw(sel, range: TimeRange(start: t0 + 1_000, end: t0 + 3_000), limit: 10)
        #expect(r.series.first?.timestamps == [t0 + 1_000, t0 + 2_000])
        let all = try await store.queryRaw(sel, range: Self.all, limit: 10)
        #expect(all.series.first?.values == [.number(0), .number(1), .number(2), .number(3)])
    }

    static func sessionLifecycle(_ store: any PlexusStore) async throws {
        let rec = SessionRecord(
            orgID: 1, sessionID: "motor-1", name: "Motor test", sourceID: "rig", status: .active,
            tags: #"{"op":"ana"}"#, startedAt: t0, createdAt: t0)
        let (created, isNew) = try await store.createSession(rec)
        #expect(isNew)
        #expect(created == rec)
        let (again, isNew2) = try await store.createSession(
            SessionRecord(
                orgID: 1, sessionID: "motor-1", name: "Other", sourceID: "rig", status: .active, startedAt: t0, createdAt: t0))
        #expect(!isNew2)
        #expect(again.name == "Motor test")
        let pts = (0..<50).map {
            #"{"metric":"\#($0 % 2 == 0 ? "rpm" : "state")","value":\#($0 % 2 == 0 ? "\($0)" : "\"on\""),"timestamp":\#(secs(t0 + Int64($0) * 1_000))}"#
        }
        try await append(store, #"{"source_id":"rig","session_id":"motor-1","points":[\#(pts.joined(separator: ","))]}"#)
        try await append(store, #"{"source_id":"rig","points":[{"metric":"rpm","value":1,"timestamp":\#(secs(t0))}]}"#)
        let summary = try await store.sessionSummary(orgID: 1, sessionID: "motor-1")
        #expect(summary == SessionSummary(metrics: ["rpm", "state"], pointCount: 50, firstTimestamp: t0, lastTimestamp: t0 + 49_000))
        var seen: [StoredPoint] = []
        var batches = 0
        try await store.scanSession(orgID: 1, sessionID: "motor-1", batchSize: 7) { b in
            #expect(b.count <= 7)
            batches += 1
            seen.append(contentsOf: b)
        }
        #expect(seen.count == 50)
        #expect(batches >= 8)
        #expect(seen.map(\.timestamp) == (0..<50).map { t0 + Int64($0) * 1_000 })
        #expect(seen.allSatisfy { $0.sourceID == "rig" && $0.sessionID == "motor-1" })
        var ended = created
        ended.status = .completed
        ended.endedAt = t0 + 60_000_000
        try await store.updateSession(ended)
        #expect(try await store.sessions(orgID: 1, sourceID: "rig", status: .completed).map(\.sessionID) == ["motor-1"])
        #expect(try await store.sessions(orgID: 1, sourceID: "rig", status: .active).isEmpty)
        #expect(try await store.deleteSession(orgID: 1, sessionID: "motor-1"))
        #expect(try await store.session(orgID: 1, sessionID: "motor-1") == nil)
        // Its data is gone; the point outside the session stays.
        let left = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "rig"), range: all, limit: 100)
        #expect(left.series.map(\.metric) == ["rpm"])
        #expect(left.series.first?.values == [.number(1)])
        // Writing into the same session id again works (fresh series).
        try await append(store, #"{"source_id":"rig","session_id":"motor-1","points":[{"metric":"rpm","value":7}]}"#)
        #expect(try await store.sessionSummary(orgID: 1, sessionID: "motor-1").pointCount == 1)
    }

    static func receiveTime(_ store: any PlexusStore) async throws {
        try await append(store, receivedAt: t0 + 123_456, #"{"source_id":"rt","points":[{"metric":"m","value":1}]}"#)
        let r = try await store.queryRaw(SeriesSelector(orgID: 1, sourceID: "rt"), range: all, limit: 10)
        #expect(r.series.first?.timestamps == [t0 + 123_456])
    }
}
