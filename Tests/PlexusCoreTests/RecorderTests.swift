import PlexusCore
import PlexusModel
import PlexusStorage
import PlexusStorageSQLite
import Testing

/// The Recorder on the real embedded store: the recording in the store and in the live
/// fan-out move together, and a start the device never got leaves nothing behind.
@Suite("Recorder: session rules in one place")
struct RecorderTests {
    struct Undelivered: Error {}

    static func withRecorder(_ body: (Recorder, IngestorTests.Shown, SQLiteStore) async throws -> Void) async throws {
        try await SQLiteStore.withTemporary { store in
            let live = IngestorTests.Shown()
            try await body(Recorder(store: store, live: live), live, store)
        }
    }

    static let t0 = IngestorTests.t0

    @Test("start, a second start, a start the device never got, stop: store and live view agree at every step")
    func recordingSteps() async throws {
        try await Self.withRecorder { recorder, live, store in
            var delivered: [String] = []
            let first = try await recorder.start(orgID: 1, sourceID: "rig", sessionID: nil, name: "Run 1", at: Self.t0) {
                delivered.append($0.sessionID)
            }
            #expect(first.sessionID.hasPrefix("session_1699999980_") && first.name == "Run 1" && delivered == [first.sessionID])
            #expect(live.recording(orgID: 1, sourceID: "rig") == first.sessionID)
            // The device's queue is full: everything goes back as it was.
            await #expect(throws: Undelivered.self) {
                _ = try await recorder.start(orgID: 1, sourceID: "rig", sessionID: "run-2", name: nil, at: Self.t0 + 1_000_000) { _ in
                    throw Undelivered()
                }
            }
            #expect(live.recording(orgID: 1, sourceID: "rig") == first.sessionID)
            #expect(try await store.session(orgID: 1, sessionID: first.sessionID)?.status == .active)
            #expect(try await store.session(orgID: 1, sessionID: "run-2")?.status == .aborted)
            // An id that exists elsewhere is a conflict, before anything is sent.
            await #expect(throws: CoreError.self) {
                _ = try await recorder.start(orgID: 1, sourceID: "other", sessionID: first.sessionID, name: nil, at: Self.t0) { _ in
                    Issue.record("delivered despite the conflict")
                }
            }
            // Another organisation may use the same id and the same source name: its own session.
            let other = try await recorder.start(orgID: 2, sourceID: "rig", sessionID: first.sessionID, name: nil, at: Self.t0) { _ in }
            #expect(other.orgID == 2 && live.recording(orgID: 2, sourceID: "rig") == first.sessionID)
            #expect(try await recorder.stop(orgID: 2, sourceID: "rig", sessionID: nil, at: Self.t0 + 1) == first.sessionID)
            #expect(try await store.session(orgID: 1, sessionID: first.sessionID)?.status == .active)
            #expect(live.recording(orgID: 1, sourceID: "rig") == first.sessionID)
            let reported = try await recorder.stop(orgID: 1, sourceID: "rig", sessionID: nil, at: Self.t0 + 2_000_000)
            #expect(reported == first.sessionID)
            #expect(live.recording(orgID: 1, sourceID: "rig") == nil)
            #expect(try await store.recordings().isEmpty)
            #expect(try await store.session(orgID: 1, sessionID: first.sessionID)?.endedAt == Self.t0 + 2_000_000)
        }
    }

    @Test(
        "session ids from bodies and commands: strings of 1-256 bytes without control characters, nothing else",
        arguments: ["", "a\u{0}b", "tab\there", "del\u{7F}", String(repeating: "x", count: 257), nil])
    func sessionIDs(_ value: String?) throws {
        #expect(throws: CoreError.self) { try Recorder.validSessionID(value) }
        #expect(try Recorder.validSessionID(String(repeating: "x", count: 256)).utf8.count == 256)
        #expect(try Recorder.validSessionID("run 3 · ünïcode") == "run 3 · ünïcode")
    }

    @Test("HTTP sessions: ended before started is refused, a retrospective one moves its provisional start, a repeat is idempotent")
    func httpRules() async throws {
        try await Self.withRecorder { recorder, _, _ in
            let bad = SessionFields(name: "x", sourceID: "rig", status: .completed, startedAt: Self.t0, endedAt: Self.t0 - 1)
            await #expect(throws: CoreError.self) { _ = try await recorder.create(orgID: 1, bad, at: Self.t0) }
            let retro = SessionFields(name: "r", sourceID: "rig", status: .completed, endedAt: Self.t0 - 60_000_000)
            let (r, created) = try await recorder.create(orgID: 1, retro, at: Self.t0)
            #expect(created && r.startedAt == Self.t0 - 60_000_000 && r.endedAt == r.startedAt)
            let fixed = SessionFields(name: "n", sourceID: "rig", sessionID: "fixed")
            #expect(try await recorder.create(orgID: 1, fixed, at: Self.t0).created)
            #expect(try await recorder.create(orgID: 1, fixed, at: Self.t0 + 5).created == false)
            var changed = fixed
            changed.name = "other"
            await #expect(throws: CoreError(.conflict, "CONFLICT", "session fixed already exists with different fields")) {
                _ = try await recorder.create(orgID: 1, changed, at: Self.t0)
            }
            await #expect(throws: CoreError(.notFound, "NOT_FOUND", "session not found")) {
                _ = try await recorder.update(orgID: 2, sessionID: "fixed", SessionFields(name: "x"), at: Self.t0)
            }
        }
    }
}
