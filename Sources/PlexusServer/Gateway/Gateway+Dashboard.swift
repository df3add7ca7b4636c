import Foundation
import HummingbirdWebSocket
import Logging
import NIOWebSocket
import PlexusModel
import PlexusStorage
import Synchronization

extension Gateway {
    final class SessionBox: Sendable {
        private let value = Mutex<DashboardSession?>(nil)
        func withLock<T>(_ body: (inout DashboardSession?) -> T) -> T { value.withLock { body(&$0) } }
    }

    struct DashboardSession: Sendable {
        var orgID: Int64
        var orgName: String
        var canControl: Bool
    }

    /// `loginToken`: the dashboard session cookie of the upgrade request, if it came from
    /// our own origin; a `browser_auth` frame signs in with it.
    func runDashboard(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, loginToken: String?,
                      logger: Logger) async throws {
        let outbox = DashboardOutbox(id: hub.nextID())
        let session = SessionBox()
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
                    if session.withLock({ $0 }) == nil {
                        outbox.enqueue(OutboundFrame.error(message: "no auth frame within 10 s"))
                        outbox.close(code: 1008, reason: "auth timeout")
                    }
                }
                defer { group.cancelAll() }
                try await readDashboard(inbound, session: session, outbox: outbox, loginToken: loginToken, logger: logger)
            }
            outbox.finish()
            try await writer.waitForAll()
        }
    }

    private func readDashboard(_ inbound: WebSocketInboundStream, session: SessionBox, outbox: DashboardOutbox,
                               loginToken: String?, logger: Logger) async throws {
        for try await message in inbound.messages(maxSize: Limits.maxFrameBytes) {
            guard case .text(let text) = message else { continue }
            let bytes = Array(text.utf8)
            let fields = bytes.withUnsafeBytes { Frames.fields($0) }
            guard let current = session.withLock({ $0 }) else {
                if let s = await authenticateDashboard(fields, loginToken: loginToken, outbox: outbox) {
                    session.withLock { $0 = s }
                    hub.register(dashboard: outbox, orgID: s.orgID, canControl: s.canControl)
                    outbox.enqueue(await initFrame(s))
                    continue
                }
                outbox.close(code: 1008, reason: "auth failed")
                break
            }
            guard let fields else {
                outbox.enqueue(OutboundFrame.error(code: "INVALID_JSON", message: "frame is not a JSON object"))
                continue
            }
            await handleDashboardFrame(fields, session: current, outbox: outbox, logger: logger)
        }
    }

    private func authenticateDashboard(_ f: Frames.Fields?, loginToken: String?, outbox: DashboardOutbox) async -> DashboardSession? {
        guard let f, let type = f.string("type"), ["auth", "data_api_auth", "browser_auth"].contains(type) else {
            outbox.enqueue(OutboundFrame.error(message: "first message must be auth (with api_key) or browser_auth"))
            return nil
        }
        guard let key = f.string("api_key") else {
            // A signed-in browser: its session cookie came with the upgrade request.
            if type == "browser_auth", let loginToken, let (_, user) = try? await state.auth.signedIn(token: loginToken) {
                let org = try? await state.store.organization(id: user.orgID)
                return DashboardSession(orgID: user.orgID, orgName: org?.name ?? String(user.orgID),
                                        canControl: user.role.scopes.contains(.write))
            }
            outbox.enqueue(OutboundFrame.error(message: type == "browser_auth" ? "Invalid session" : "api_key required"))
            return nil
        }
        do {
            let p = try await state.auth.verify(key)
            guard p.has(.read) else {
                outbox.enqueue(OutboundFrame.error(message: "API key lacks read scope"))
                return nil
            }
            let org = try await state.store.organization(id: p.orgID)
            return DashboardSession(orgID: p.orgID, orgName: org?.name ?? String(p.orgID), canControl: p.has(.write))
        } catch {
            outbox.enqueue(OutboundFrame.error(message: "Invalid API key"))
            return nil
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

    private func handleDashboardFrame(_ f: Frames.Fields, session: DashboardSession, outbox: DashboardOutbox, logger: Logger) async {
        let type = f.string("type") ?? ""
        let source = f.string("source_id")
        switch type {
        case "subscribe":
            let metrics = Set(Self.stringArray(f.raw["metrics"]).map { name in
                // The original dashboard sends "source:metric"; keep the metric.
                if let source, name.hasPrefix(source + ":") { return String(name.dropFirst(source.count + 1)) }
                return name
            })
            hub.subscribe(dashboard: outbox.id, source: source == "*" ? nil : source, metrics: metrics)
            if source == nil && f.raw["metrics"] == nil { hub.subscribe(dashboard: outbox.id, source: nil, metrics: []) }
            // Confirmed once in effect: everything after this frame is delivered.
            var w = JSONWriter()
            w.raw("{\"type\":\"subscribed\",\"source_id\":")
            w.string(source ?? "*")
            w.raw(",\"metrics\":")
            w.strings(metrics.sorted())
            w.raw("}")
            outbox.enqueue(w.bytes)
        case "unsubscribe":
            hub.unsubscribe(dashboard: outbox.id, source: source)
        case "ping" where source == nil:
            outbox.enqueue(Array(#"{"type":"pong"}"#.utf8))
        case "pong", "ready", "set_throttle":
            break
        case _ where ControlCommand(rawValue: type) != nil:
            guard session.canControl else {
                outbox.enqueue(OutboundFrame.error(code: "FORBIDDEN", message: "this login is read-only; control needs a write key",
                                                   sourceID: source))
                return
            }
            guard let source else {
                outbox.enqueue(OutboundFrame.error(code: "INVALID_MESSAGE", message: "source_id required"))
                return
            }
            var fields = f.raw
            fields["type"] = nil
            fields["source_id"] = nil
            do {
                let sent = try await control(orgID: session.orgID, sourceID: source, command: type, fields: fields)
                hub.watch(dashboard: outbox.id, source: source)  // to see the device's replies
                var w = JSONWriter()
                w.raw("{\"type\":\"control_sent\",\"command\":")
                w.string(type)
                w.raw(",\"source_id\":")
                w.string(source)
                w.raw(",\"frame\":")
                w.rawBytes(sent)
                w.raw("}")
                outbox.enqueue(w.bytes)
            } catch {
                outbox.enqueue(Self.controlErrorFrame(error, source: source))
            }
        default:
            outbox.enqueue(OutboundFrame.error(code: "INVALID_MESSAGE", message: "unknown message type"))
        }
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

    static func stringArray(_ raw: String?) -> [String] {
        guard let raw, let data = raw.data(using: .utf8),
              let arr = try? JSONSerialization.jsonObject(with: data) as? [Any] else { return [] }
        return arr.compactMap { $0 as? String }
    }
}
