import Foundation
import HTTPTypes
import HummingbirdWebSocket
import Logging
import NIOWebSocket
import PlexusModel
import PlexusStorage
import Synchronization

extension Gateway {
    typealias DashboardSession = DashboardSessionMachine.Session

    /// One dashboard socket's machine, shared by its reader and its sign-in deadline.
    final class DashboardMachine: Sendable {
        private let machine = Mutex(DashboardSessionMachine())
        func withLock<T>(_ body: (inout DashboardSessionMachine) -> T) -> T { machine.withLock { body(&$0) } }
    }

    /// `loginToken`: the dashboard session cookie of the upgrade request, if it came from
    /// our own origin; a `browser_auth` frame signs in with it. `forceClose` drops the TCP
    /// connection at once (a consumer that does not read cannot even be sent a close frame).
    func runDashboard(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, loginToken: String?,
        logger: Logger, forceClose: @escaping @Sendable () -> Void = {}
    ) async throws {
        let outbox = DashboardOutbox(id: hub.nextID())
        let machine = DashboardMachine()
        let control = ConnectionControl()
        // As for devices, the writer drains what is queued after reading stops.
        try await withThrowingTaskGroup(of: Void.self) { writer in
            writer.addTask { try await Self.writeDashboard(outbox, outbound) }
            writer.addTask { await Self.watch(control, machine: machine, outbox: outbox, forceClose: forceClose) }
            defer { hub.unregister(dashboard: outbox.id) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await Task.sleep(for: Self.authDeadline)
                    let actions = machine.withLock { $0.authDeadlinePassed() }
                    await self.performDashboard(actions, machine: machine, outbox: outbox, connection: control, loginToken: loginToken)
                }
                defer { group.cancelAll() }
                for try await message in inbound.messages(maxSize: Limits.maxFrameBytes) {
                    guard case .text(let text) = message else { continue }
                    let bytes = Array(text.utf8)
                    let request = bytes.withUnsafeBytes { DashboardRequest.decode($0) }
                    let actions = machine.withLock { $0.received(request) }
                    await performDashboard(actions, machine: machine, outbox: outbox, connection: control, loginToken: loginToken)
                    if machine.withLock({ $0.state }) == .closed { break }
                }
                machine.withLock { $0.closed() }
            }
            control.connectionEnded()
            outbox.finish()
            try await writer.waitForAll()
        }
    }

    /// The dashboard's writer: waits for the bell, keeps drains at least
    /// `LiveQueue.Limits.minDrainInterval` apart (what arrives meanwhile joins the same
    /// frame), and writes each drain: usually a single frame, so a single write and flush.
    static func writeDashboard(_ outbox: DashboardOutbox, _ outbound: WebSocketOutboundWriter) async throws {
        func flush() async throws -> Bool {
            let drain = outbox.drain()
            for f in drain.frames { try await outbound.write(textFrame(f)) }
            outbox.wrote()
            if let (code, reason) = drain.close {
                try await outbound.close(WebSocketErrorCode(codeNumber: Int(code)), reason: reason)
                return true
            }
            return false
        }
        for await _ in outbox.bell {
            let wait = outbox.delayBeforeDrain
            if wait > .zero { try await Task.sleep(for: wait) }
            if try await flush() { return }
        }
        _ = try await flush()
    }

    /// Waits for the connection guard: a revoked credential gets an `UNAUTHORIZED` error and
    /// close 1008 (dropped if the connection has not ended ``closeGrace`` later); a stalled
    /// consumer is dropped at once, since nothing more can be written to it. Returns when the
    /// reader has returned and no termination is under way.
    private static func watch(
        _ control: ConnectionControl, machine: DashboardMachine, outbox: DashboardOutbox,
        forceClose: @escaping @Sendable () -> Void
    ) async {
        for await t in control.terminations {
            machine.withLock { $0.closed() }
            switch t {
            case .credential(let message):
                outbox.enqueue(OutboundFrame.error(.unauthorized, message: message))
                outbox.close(code: DashboardSessionMachine.closePolicy, reason: "credentials revoked")
                if await !control.waitForEnd(upTo: closeGrace) { forceClose() }
            case .stalled:
                forceClose()
            }
            return
        }
    }

    private func performDashboard(
        _ actions: [DashboardSessionMachine.Action], machine: DashboardMachine,
        outbox: DashboardOutbox, connection: ConnectionControl, loginToken: String?
    ) async {
        for action in actions {
            switch action {
            case .send(let frame):
                outbox.enqueue(frame)
            case .close(let code, let reason):
                outbox.close(code: code, reason: reason)
            case .authenticate(let credential):
                switch await verify(credential, loginToken: loginToken) {
                case .success(let (session, credential)):
                    // Registered only if the deadline did not close the socket meanwhile.
                    if machine.withLock({ $0.authenticated(session) }) {
                        let batches = machine.withLock { $0.batches }
                        if batches { outbox.useBatches() }
                        // Registered before `init` is built, so no status change is missed,
                        // but held so that `init` is still the first frame it gets.
                        outbox.hold()
                        hub.register(
                            dashboard: outbox, orgID: session.orgID, canControl: session.canControl, credential: credential,
                            control: connection)
                        outbox.release(first: await initFrame(session, batches: batches))
                    }
                case .failure(let problem):
                    await performDashboard(
                        machine.withLock { $0.authFailed(problem.message) }, machine: machine, outbox: outbox,
                        connection: connection, loginToken: loginToken)
                }
            case .subscribe(let source, let metrics, let confirmation):
                switch hub.subscribe(dashboard: outbox.id, source: source, metrics: metrics) {
                case .subscribed:
                    outbox.enqueue(confirmation)
                case .tooManyForDashboard(let n):
                    outbox.enqueue(
                        OutboundFrame.error(
                            .tooManySubscriptions,
                            message: "at most \(n) source/metric pairs per dashboard socket", sourceID: source))
                case .tooManyForOrganization(let n):
                    outbox.enqueue(
                        OutboundFrame.error(
                            .tooManySubscriptions,
                            message: "at most \(n) source/metric pairs for the whole organisation",
                            sourceID: source))
                }
            case .unsubscribe(let source):
                hub.unsubscribe(dashboard: outbox.id, source: source)
            case .control(let command, let source, let fields):
                guard let session = machine.withLock({ $0.session }) else { continue }
                do {
                    let sent = try await control(orgID: session.orgID, sourceID: source, command: command, fields: fields)
                    hub.watch(dashboard: outbox.id, source: source)  // to see the device's replies
                    let frame = (try? JSONDecoder().decode(JSONValue.self, from: Data(sent))) ?? .null
                    outbox.enqueue(DashboardFrame.controlSent(.init(command: command, sourceID: source, frame: frame)).bytes)
                } catch {
                    outbox.enqueue(Self.controlErrorFrame(error, source: source))
                }
            }
        }
    }

    struct DashboardAuthProblem: Error {
        var message: String
    }

    /// Checks what the first frame signs in with: a key with read scope, or the login cookie.
    private func verify(
        _ credential: DashboardSessionMachine.Credential,
        loginToken: String?
    ) async -> Result<(DashboardSession, LiveCredential), DashboardAuthProblem> {
        do {
            switch credential {
            case .loginCookie:
                guard let loginToken else { return .failure(DashboardAuthProblem(message: "Invalid session")) }
                let user: UserRecord
                do {
                    (_, user) = try await state.auth.signedIn(token: loginToken)
                } catch let e as APIError where e.status == .unauthorized {
                    return .failure(DashboardAuthProblem(message: "Invalid session"))
                }
                let org = try await state.store.organization(id: user.orgID)
                return .success(
                    (
                        DashboardSession(
                            orgID: user.orgID, orgName: org?.name ?? String(user.orgID),
                            canControl: user.role.scopes.contains(.write)),
                        .login(tokenHash: LoginCookie.hash(loginToken))
                    ))
            case .apiKey(let key):
                let p: Principal
                do {
                    p = try await state.auth.verify(key)
                } catch let e as APIError where e.status == .unauthorized {
                    return .failure(DashboardAuthProblem(message: "Invalid API key"))
                }
                guard p.has(.read) else { return .failure(DashboardAuthProblem(message: "API key lacks read scope")) }
                let org = try await state.store.organization(id: p.orgID)
                return .success(
                    (
                        DashboardSession(orgID: p.orgID, orgName: org?.name ?? String(p.orgID), canControl: p.has(.write)),
                        .apiKey(hash: APIKeys.hash(key))
                    ))
            }
        } catch {
            // Not the credential's fault (the store is down, say): say so, and log it.
            logger.error("dashboard sign-in could not check the credential", metadata: ["error": "\(error)"])
            return .failure(DashboardAuthProblem(message: "server error, try again"))
        }
    }

    func initFrame(_ s: DashboardSession, batches: Bool = false) async -> [UInt8] {
        let devices = hub.online(orgID: s.orgID)
        var metrics: [String: [String]] = [:]
        for d in devices { metrics[d.sourceID] = (try? await state.store.metrics(orgID: s.orgID, sourceID: d.sourceID)) ?? [] }
        let sources = devices.map { d in
            DashboardFrame.Initial.Source(
                device: d.status, metrics: metrics[d.sourceID] ?? [], recording: hub.recording(orgID: s.orgID, sourceID: d.sourceID))
        }
        return DashboardFrame.initial(
            .init(
                orgID: s.orgName, canControl: s.canControl, batch: batches, serverTimeMs: state.config.now() / 1_000,
                onlineSources: sources)
        ).bytes
    }

    static func controlErrorFrame(_ error: any Error, source: String) -> [UInt8] {
        guard let e = error as? ControlError else {
            return OutboundFrame.error(.internalError, message: "internal error", sourceID: source)
        }
        return e.frame(source: source)
    }
}
