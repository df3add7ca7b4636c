import Foundation
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
    /// our own origin; a `browser_auth` frame signs in with it.
    func runDashboard(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, loginToken: String?,
                      logger: Logger) async throws {
        let outbox = DashboardOutbox(id: hub.nextID())
        let machine = DashboardMachine()
        // As for devices, the writer drains what is queued after reading stops.
        try await withThrowingTaskGroup(of: Void.self) { writer in
            writer.addTask {
                func flush() async throws -> Bool {
                    let (frames, close) = outbox.drain()
                    for f in frames { try await outbound.write(.text(String(decoding: f, as: UTF8.self))) }
                    if let (code, reason) = close {
                        try await outbound.close(WebSocketErrorCode(codeNumber: Int(code)), reason: reason)
                        return true
                    }
                    return false
                }
                for await _ in outbox.bell where try await flush() { return }
                _ = try await flush()
            }
            defer { hub.unregister(dashboard: outbox.id) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await Task.sleep(for: Self.authDeadline)
                    let actions = machine.withLock { $0.authDeadlinePassed() }
                    await self.performDashboard(actions, machine: machine, outbox: outbox, loginToken: loginToken)
                }
                defer { group.cancelAll() }
                for try await message in inbound.messages(maxSize: Limits.maxFrameBytes) {
                    guard case .text(let text) = message else { continue }
                    let bytes = Array(text.utf8)
                    let fields = bytes.withUnsafeBytes { Frames.fields($0) }
                    let actions = machine.withLock { $0.received(fields) }
                    await performDashboard(actions, machine: machine, outbox: outbox, loginToken: loginToken)
                    if machine.withLock({ $0.state }) == .closed { break }
                }
                machine.withLock { $0.closed() }
            }
            outbox.finish()
            try await writer.waitForAll()
        }
    }

    private func performDashboard(_ actions: [DashboardSessionMachine.Action], machine: DashboardMachine,
                         outbox: DashboardOutbox, loginToken: String?) async {
        for action in actions {
            switch action {
            case .send(let frame):
                outbox.enqueue(frame)
            case .close(let code, let reason):
                outbox.close(code: code, reason: reason)
            case .authenticate(let credential):
                switch await verify(credential, loginToken: loginToken) {
                case .success(let session):
                    // Registered only if the deadline did not close the socket meanwhile.
                    if machine.withLock({ $0.authenticated(session) }) {
                        hub.register(dashboard: outbox, orgID: session.orgID, canControl: session.canControl)
                        outbox.enqueue(await initFrame(session))
                    }
                case .failure(let problem):
                    await performDashboard(machine.withLock { $0.authFailed(problem.message) }, machine: machine, outbox: outbox,
                                  loginToken: loginToken)
                }
            case .subscribe(let source, let metrics):
                hub.subscribe(dashboard: outbox.id, source: source, metrics: metrics)
            case .unsubscribe(let source):
                hub.unsubscribe(dashboard: outbox.id, source: source)
            case .control(let command, let source, let fields):
                guard let session = machine.withLock({ $0.session }) else { continue }
                do {
                    let sent = try await control(orgID: session.orgID, sourceID: source, command: command, fields: fields)
                    hub.watch(dashboard: outbox.id, source: source)  // to see the device's replies
                    var w = JSONWriter()
                    w.raw("{\"type\":\"control_sent\",\"command\":")
                    w.string(command)
                    w.raw(",\"source_id\":")
                    w.string(source)
                    w.raw(",\"frame\":")
                    w.rawBytes(sent)
                    w.raw("}")
                    outbox.enqueue(w.bytes)
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
    private func verify(_ credential: DashboardSessionMachine.Credential,
                        loginToken: String?) async -> Result<DashboardSession, DashboardAuthProblem> {
        switch credential {
        case .loginCookie:
            guard let loginToken, let (_, user) = try? await state.auth.signedIn(token: loginToken) else {
                return .failure(DashboardAuthProblem(message: "Invalid session"))
            }
            let org = try? await state.store.organization(id: user.orgID)
            return .success(DashboardSession(orgID: user.orgID, orgName: org?.name ?? String(user.orgID),
                                             canControl: user.role.scopes.contains(.write)))
        case .apiKey(let key):
            do {
                let p = try await state.auth.verify(key)
                guard p.has(.read) else { return .failure(DashboardAuthProblem(message: "API key lacks read scope")) }
                let org = try await state.store.organization(id: p.orgID)
                return .success(DashboardSession(orgID: p.orgID, orgName: org?.name ?? String(p.orgID), canControl: p.has(.write)))
            } catch {
                return .failure(DashboardAuthProblem(message: "Invalid API key"))
            }
        }
    }

    func initFrame(_ s: DashboardSession) async -> [UInt8] {
        let devices = hub.online(orgID: s.orgID)
        var metrics: [String: [String]] = [:]
        for d in devices { metrics[d.sourceID] = (try? await state.store.metrics(orgID: s.orgID, sourceID: d.sourceID)) ?? [] }
        var w = JSONWriter(capacity: 512)
        w.raw("{\"type\":\"init\",\"org_id\":")
        w.string(s.orgName)
        w.raw(",\"can_control\":")
        w.bool(s.canControl)
        w.raw(",\"server_time_ms\":")
        w.int(state.config.now() / 1_000)
        w.raw(",\"online_sources\":[")
        w.list(devices) { w, d in
            w.raw("{")
            d.writeFields(&w)
            w.raw(",\"metrics\":")
            w.strings(metrics[d.sourceID] ?? [])
            w.raw(",\"recording\":")
            w.optionalString(hub.recording(orgID: s.orgID, sourceID: d.sourceID))
            w.raw("}")
        }
        w.raw("]}")
        return w.bytes
    }

    static func controlErrorFrame(_ error: any Error, source: String) -> [UInt8] {
        switch error {
        case ControlError.offline(let s):
            return OutboundFrame.error(code: "DEVICE_OFFLINE", message: "device \(s) is not connected", sourceID: source)
        case ControlError.unknown(let s):
            return OutboundFrame.error(code: "DEVICE_UNKNOWN", message: "no device named \(s) in this organisation", sourceID: source)
        case ControlError.busy(let s):
            return OutboundFrame.error(code: "DEVICE_BUSY", message: "device \(s) is not reading its messages", sourceID: source)
        case ControlError.unknownCommand(let c):
            return OutboundFrame.error(code: "INVALID_MESSAGE", message: "unknown command \(c)", sourceID: source)
        case ControlError.invalid(let m):
            return OutboundFrame.error(code: "INVALID_MESSAGE", message: m, sourceID: source)
        default:
            return OutboundFrame.error(code: "INTERNAL_ERROR", message: "internal error", sourceID: source)
        }
    }
}
