import Foundation
import HTTPTypes
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import PlexusCore
import PlexusModel
import PlexusStorage
import Synchronization

/// The WebSocket gateway: `/ws/device` for devices, `/ws/browser` for dashboards, and the
/// control path (start/stop streaming and recording, configure, ping) they share with
/// `POST /v1/sources/{id}/commands`. Protocol: docs/websocket-api.md.
final class Gateway: Sendable {
    let state: ServerState
    var hub: Hub { state.hub }
    static let authDeadline: Duration = .seconds(10)
    /// The close code devices get when the server stops: 1001 "going away" (SDKs reconnect).
    static let shutdownCode = CloseCode.goingAway

    /// For what happens outside one connection's handling (sign-in checks).
    let logger = Logger(label: "plexus.gateway")

    init(state: ServerState) { self.state = state }

    // MARK: Devices

    /// One device connection's state, shared by its reader and its deadline task.
    final class Connection: Sendable {
        let machine = Mutex(DeviceSessionMachine())
        /// (organisation, name) once authenticated.
        let registered = Mutex<(Int64, String)?>(nil)
        /// Frames from elsewhere (dashboards' commands): bounded, refused when full.
        let outbox: DeviceOutbox
        /// Replies to the device's own frames (auth, acks, errors) go through ``responder``,
        /// in frame order, and are written directly: a slow device slows itself and nothing
        /// is dropped.
        let outbound: WebSocketOutboundWriter
        /// The device's frames on their way to disk and their answers, in order.
        let responder = DeviceResponder<AppendEntry>()
        /// The connection guard's way in (a revoked key ends the connection).
        let control = ConnectionControl()
        init(outbox: DeviceOutbox, outbound: WebSocketOutboundWriter) {
            self.outbox = outbox
            self.outbound = outbound
        }

        /// Queues an answer behind everything the device sent before.
        func answer(_ bytes: [UInt8]) async { await responder.enqueue(.send(bytes)) }

        /// Writes at once (the responder's own output, and terminations).
        func reply(_ bytes: [UInt8]) async {
            try? await outbound.write(Gateway.textFrame(bytes))
        }

        func close(_ code: UInt16, _ reason: String) async {
            outbox.finish()
            try? await outbound.close(WebSocketErrorCode(codeNumber: Int(code)), reason: reason)
        }
        var identity: (Int64, String)? { registered.withLock { $0 } }
    }

    /// A text frame straight from JSON bytes (one copy into the buffer, no `String`).
    static func textFrame(_ bytes: [UInt8]) -> WebSocketOutboundWriter.OutboundFrame {
        .custom(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(bytes: bytes)))
    }

    /// How long a connection told to end (revoked credential) may take to finish its close
    /// handshake before the server drops it.
    static let closeGrace: Duration = .seconds(1)

    /// `forceClose` drops the TCP connection at once (for a peer that does not answer).
    func runDevice(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, logger: Logger,
        forceClose: @escaping @Sendable () -> Void = {}
    ) async throws {
        let outbox = DeviceOutbox(id: hub.nextID()) { code, reason in
            try? await outbound.close(WebSocketErrorCode(codeNumber: Int(code)), reason: reason)
        }
        let conn = Connection(outbox: outbox, outbound: outbound)
        let epoch = ContinuousClock.now
        // The writer outlives the reader: what is queued when reading stops (an error and
        // the close frame, say) still goes out.
        try await withThrowingTaskGroup(of: Void.self) { writer in
            writer.addTask { try await Self.writeLoop(outbox.stream, outbound) }
            // Beside the writer, not the reader: a termination in progress is never cut short
            // by the reader returning (its error frame would be lost).
            writer.addTask { await Self.watch(conn, forceClose: forceClose) }
            // The responder also outlives the reader: frames read before the end are stored
            // and answered.
            writer.addTask { await self.respond(conn, logger: logger) }
            defer {
                conn.machine.withLock { $0.closed() }
                if let (org, source) = conn.identity { hub.unregister(outbox, orgID: org, sourceID: source) }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await Task.sleep(for: Self.authDeadline)
                    let actions = conn.machine.withLock { $0.authDeadlinePassed() }
                    await self.perform(actions, conn, logger: logger)
                }
                defer { group.cancelAll() }
                try await readDevice(inbound, conn, epoch: epoch, logger: logger)
            }
            conn.control.connectionEnded()
            conn.responder.finish()
            outbox.finish()
            try await writer.waitForAll()
        }
    }

    private func readDevice(
        _ inbound: WebSocketInboundStream, _ conn: Connection, epoch: ContinuousClock.Instant,
        logger: Logger
    ) async throws {
        for try await message in inbound.messages(maxSize: Limits.maxFrameBytes) {
            // Shutting down: a frame not begun is left to the device to resend.
            guard conn.outbox.beginFrame() else { break }
            let now = epoch.duration(to: .now)
            let actions: [DeviceSessionMachine.Action]
            switch message {
            case .text(let text):
                actions = conn.machine.withLock { $0.received(Array(text.utf8), now: now) }
            case .binary(let buffer):
                actions = binaryVideo(buffer, registered: conn.identity)
            }
            await perform(actions, conn, logger: logger)
            let answered = await conn.responder.enqueue(.frameDone)
            if case .closed = conn.machine.withLock({ $0.state }) { break }
            if !answered { break }
        }
    }

    /// Stores the connection's telemetry and answers its frames, in order (``DeviceResponder``).
    /// The first failed append answers `UNAVAILABLE` (without a seq: the device keeps
    /// everything unacknowledged and resends it after reconnecting) and closes with 1013.
    private func respond(_ conn: Connection, logger: Logger) async {
        let ingestor = state.ingestor
        await conn.responder.run(
            store: { try await ingestor.store($0, transport: .ws) },
            send: { await conn.reply($0) },
            close: { await conn.close($0, $1) },
            frameDone: { conn.outbox.endFrame() ? (Self.shutdownCode, "server shutting down") : nil },
            failed: { error in
                logger.error("device frame not stored", metadata: ["error": "\(error)", "source_id": "\(conn.identity?.1 ?? "")"])
                await conn.reply(OutboundFrame.error(.unavailable("could not store the frame; resend later"), seq: nil))
                await conn.close(DeviceSessionMachine.closeUnavailable, "store unavailable")
            })
    }

    /// The `code` of an error frame composed by `OutboundFrame.error` (for the rejects
    /// metric); `AUTH_FAILED` for the code-less errors sent before authentication.
    static func errorCode(_ frame: [UInt8]) -> String? {
        let head = Array(#"{"type":"error""#.utf8)
        let key = Array(#","code":""#.utf8)
        guard frame.starts(with: head) else { return nil }
        let rest = frame[head.count...]
        guard rest.starts(with: key) else { return "AUTH_FAILED" }
        let code = rest.dropFirst(key.count).prefix { $0 != UInt8(ascii: "\"") }
        return String(decoding: code, as: UTF8.self)
    }

    /// Writes the frames dashboards queued for the device (commands).
    static func writeLoop(_ stream: AsyncStream<[UInt8]>, _ outbound: WebSocketOutboundWriter) async throws {
        for await bytes in stream { try await outbound.write(textFrame(bytes)) }
    }

    /// Waits for the connection guard to end the connection (its key was revoked or has
    /// expired): no more frames are handled, the device gets an `UNAUTHORIZED` error and
    /// close 1008, and if the connection has not ended ``closeGrace`` later (the device did
    /// not answer the close, or does not read), it is dropped. Returns when the reader has
    /// returned and no termination is under way.
    private static func watch(_ conn: Connection, forceClose: @escaping @Sendable () -> Void) async {
        for await t in conn.control.terminations {
            conn.machine.withLock { $0.closed() }
            if case .credential(let message) = t {
                await boundedByGrace(forceClose) {
                    await conn.reply(OutboundFrame.error(.unauthorized, message: message))
                    await conn.close(DeviceSessionMachine.closePolicy, "credentials revoked")
                }
            }
            if await !conn.control.waitForEnd(upTo: closeGrace) { forceClose() }
            return
        }
    }

    /// Runs `writes`; if they have not finished within ``closeGrace`` (a peer that does not
    /// read blocks them), drops the connection, which fails them.
    static func boundedByGrace(_ forceClose: @escaping @Sendable () -> Void, _ writes: @escaping @Sendable () async -> Void) async {
        await withTaskGroup(of: Void.self) { g in
            g.addTask { await writes() }
            g.addTask {
                try? await Task.sleep(for: closeGrace)
                if !Task.isCancelled { forceClose() }
            }
            await g.next()
            g.cancelAll()
        }
    }

    /// SDK ≥0.5.1 binary video: relayed live to dashboards as a JSON `video_frame`.
    func binaryVideo(_ buffer: ByteBuffer, registered: (Int64, String)?) -> [DeviceSessionMachine.Action] {
        guard registered != nil else { return [] }
        let bytes = Array(buffer.readableBytesView)
        guard bytes.count > 19, bytes[0] == 1 else { return [] }
        var i = 1
        let sourceLen = Int(bytes[i])
        i += 1 + sourceLen
        guard i < bytes.count else { return [] }
        let camLen = Int(bytes[i])
        i += 1
        guard i + camLen + 16 <= bytes.count else { return [] }
        let camera = String(decoding: bytes[i..<(i + camLen)], as: UTF8.self)
        i += camLen
        func be(_ n: Int) -> UInt64 { bytes[i..<(i + n)].reduce(0) { $0 << 8 | UInt64($1) } }
        let width = be(4)
        i += 4
        let height = be(4)
        i += 4
        let ts = Int64(bitPattern: be(8))
        i += 8
        guard ts.multipliedReportingOverflow(by: 1_000).overflow == false, Timestamp.isValid(ts * 1_000) else {
            return [.send(OutboundFrame.error(.invalidMessage, message: "video frame timestamp \(Timestamp.rangeMessage)"))]
        }
        var w = JSONWriter(capacity: bytes.count * 4 / 3 + 200)
        w.raw("{\"type\":\"video_frame\",\"camera_id\":")
        w.string(camera)
        w.raw(",\"width\":")
        w.int(Int64(width))
        w.raw(",\"height\":")
        w.int(Int64(height))
        w.raw(",\"timestamp\":")
        w.int(ts)
        w.raw(",\"frame\":")
        w.string(Data(bytes[i...]).base64EncodedString())
        w.raw("}")
        return [.relay(type: .videoFrame, frame: w.bytes)]
    }

    private func perform(_ actions: [DeviceSessionMachine.Action], _ conn: Connection, logger: Logger) async {
        for action in actions {
            switch action {
            case .send(let bytes):
                if let code = Self.errorCode(bytes) { ServerMetrics.rejected(reason: code, transport: "ws") }
                await conn.answer(bytes)
            case .close(let code, let reason):
                await conn.responder.enqueue(.close(code, reason))
            case .pause(let wait):
                try? await Task.sleep(for: wait)
            case .authenticate(let auth):
                let next = await authenticate(auth, conn, logger: logger)
                await perform(next, conn, logger: logger)
            case .store(let batch, let frameBytes, let ackSeq):
                guard let (org, source) = conn.identity else { continue }
                let receivedAt = state.config.now()
                hub.touch(orgID: org, sourceID: source, at: receivedAt)
                // Limits, recording and live now; the append and the ack follow in the
                // responder while the next frame is read.
                let admitted: Ingestor.Admitted
                do {
                    admitted = try await state.ingestor.admit(
                        Ingestor.Submission(
                            orgID: org, batch: batch, receivedAt: receivedAt, transport: .ws,
                            pacing: .pacedByConnection))
                } catch let e as CoreError {
                    // Refused: nothing of it is shown or stored.
                    await perform([.send(OutboundFrame.error(e, seq: batch.seq))], conn, logger: logger)
                    continue
                } catch {
                    logger.error("device frame not admitted", metadata: ["error": "\(error)", "source_id": "\(source)"])
                    await perform(
                        [.send(OutboundFrame.error(.unavailable("could not store the frame; resend later"), seq: nil))],
                        conn, logger: logger)
                    await conn.responder.enqueue(.close(DeviceSessionMachine.closeUnavailable, "store unavailable"))
                    continue
                }
                if let entry = admitted.entry { await conn.responder.enqueue(.append(entry, bytes: frameBytes)) }
                if let seq = ackSeq { await conn.answer(OutboundFrame.telemetryAck(seq: seq)) }
            case .timeSync(let id):
                await conn.answer(OutboundFrame.timeSync(idJSON: id, serverTimeMs: state.config.now() / 1_000))
            case .heartbeat(let frame):
                guard let (org, source) = conn.identity else { continue }
                hub.touch(orgID: org, sourceID: source, at: state.config.now())
                hub.relay(orgID: org, sourceID: source, frame: Self.tagged(frame, source: source))
            case .relay(_, let frame):
                guard let (org, source) = conn.identity else { continue }
                hub.touch(orgID: org, sourceID: source, at: state.config.now())
                hub.relay(orgID: org, sourceID: source, frame: Self.tagged(frame, source: source))
            case .deviceError(let message, let errorSource, let frame):
                guard let (org, source) = conn.identity else { continue }
                hub.relay(orgID: org, sourceID: source, frame: Self.tagged(frame, source: source))
                await storeDeviceError(org: org, source: source, message: message, errorSource: errorSource, logger: logger)
            }
        }
    }

    private func authenticate(_ auth: DeviceAuth, _ conn: Connection, logger: Logger) async -> [DeviceSessionMachine.Action] {
        let outbox = conn.outbox
        let principal: Principal
        do {
            principal = try await state.auth.verify(auth.apiKey)
        } catch let e as APIError where e.status == .unauthorized {
            return conn.machine.withLock { $0.authFailed("Invalid API key") }
        } catch {
            // Not the device's fault (the store is down, say): say so, and log it.
            logger.error("device sign-in could not check the key", metadata: ["error": "\(error)"])
            return conn.machine.withLock { $0.authFailed("server error, try again") }
        }
        guard principal.has(.write) else { return conn.machine.withLock { $0.authFailed("API key lacks write scope") } }
        let now = state.config.now()
        var name = auth.sourceID
        if let install = auth.installID {
            do {
                name = try await state.store.claimDeviceName(
                    orgID: principal.orgID, installID: install, requested: auth.sourceID,
                    at: now)
            } catch {
                logger.error("device name claim failed", metadata: ["error": "\(error)"])
                return conn.machine.withLock { $0.authFailed("server error, try again") }
            }
        }
        let info = DeviceInfo(
            orgID: principal.orgID, sourceID: name, platform: auth.platform, agentVersion: auth.agentVersion,
            sensors: auth.sensors, commands: auth.commands, installID: auth.installID, connectedAt: now,
            lastSeen: now)
        conn.registered.withLock { $0 = (principal.orgID, name) }
        if let old = hub.register(outbox, info: info, credential: .apiKey(hash: APIKeys.hash(auth.apiKey)), control: conn.control) {
            old.finish()
            await old.closeNow(CloseCode.policyViolation, "replaced by a newer connection for \(name)")
        }
        logger.info("device connected", metadata: ["source_id": "\(name)", "platform": "\(auth.platform ?? "")"])
        return conn.machine.withLock {
            $0.authenticated(orgID: principal.orgID, sourceID: name, acks: auth.acks, serverTimeMs: now / 1_000)
        }
    }

    private func storeDeviceError(org: Int64, source: String, message: String, errorSource: String?, logger: Logger) async {
        var w = JSONWriter()
        w.raw("{\"points\":[{\"metric\":\"device.error\",\"value\":")
        w.string(message.prefix(utf8Bytes: Limits.maxStringValueBytes))
        if let errorSource, !errorSource.isEmpty {
            w.raw(",\"tags\":{\"error_source\":")
            w.string(errorSource.prefix(utf8Bytes: Limits.maxTagBytes))
            w.raw("}")
        }
        w.raw("}]}")
        let options = IngestDecoder.Options(forcedSourceID: source)
        let bytes = w.bytes
        do {
            let batch = try bytes.withUnsafeBytes { try IngestDecoder.decode($0, options: options) }
            try await state.store.append(
                batch,
                context: AppendContext(orgID: org, receivedAt: state.config.now()))
        } catch {
            logger.warning("device_error not stored", metadata: ["error": "\(error)"])
        }
    }

    /// The device frame with `source_id` set to the connection's name, replacing any the
    /// device wrote (a device cannot speak for another). `type` first, then the rest.
    static func tagged(_ frame: [UInt8], source: String) -> [UInt8] {
        guard let f = frame.withUnsafeBytes({ Frames.fields($0) }) else { return frame }
        return Frames.compose(
            typeJSON: f.raw["type"] ?? "null", sourceID: source,
            fields: f.raw.sorted(by: { $0.key < $1.key }).map { ($0.key, $0.value) })
    }

    // MARK: Control (dashboards and HTTP)

    enum ControlError: Error {
        case unknownCommand(String)
        /// A device the organisation has (data or a name claim) that is not connected.
        case offline(String)
        /// A name the organisation has never seen.
        case unknown(String)
        case busy(String)
        case invalid(String)
    }

    /// Sends a spec control message to a device as a top-level frame. Recording commands
    /// also create and complete the session on the server (``Recorder``), so recording does
    /// not depend on the device confirming. Returns the frame that was sent.
    @discardableResult
    func control(orgID: Int64, sourceID: String, command: String, fields: [String: String]) async throws -> [UInt8] {
        guard let cmd = ControlCommand(rawValue: command) else { throw ControlError.unknownCommand(command) }
        var fields = fields
        guard hub.isOnline(orgID: orgID, sourceID: sourceID) else {
            var known = try await state.store.source(orgID: orgID, sourceID: sourceID) != nil
            if !known { known = try await state.store.deviceClaims(orgID: orgID).contains { $0.sourceID == sourceID } }
            throw known ? ControlError.offline(sourceID) : ControlError.unknown(sourceID)
        }
        let now = state.config.now()
        // A session_id the command names must be valid whatever the command.
        var named: String?
        if let raw = fields["session_id"] {
            do {
                let value = PlexusValue(jsonText: raw)
                named = try Recorder.validSessionID(value.flatMap { if case .string(let s) = $0 { s } else { nil } })
            } catch let e as CoreError {
                throw ControlError.invalid(e.message)
            }
        }
        switch cmd {
        case .startSession:
            var name: String?
            if let raw = fields["session_name"], case .string(let n)? = PlexusValue(jsonText: raw), !n.isEmpty { name = n }
            var sent: [UInt8] = []
            do {
                _ = try await state.recorder.start(orgID: orgID, sourceID: sourceID, sessionID: named, name: name, at: now) { session in
                    fields["session_id"] = Self.jsonString(session.sessionID)
                    sent = try self.send(cmd, orgID: orgID, sourceID: sourceID, fields: fields)
                }
            } catch let e as CoreError {
                throw ControlError.invalid(e.message)
            }
            return sent
        case .stopSession:
            let reported = try await state.recorder.stop(orgID: orgID, sourceID: sourceID, sessionID: named, at: now)
            if fields["session_id"] == nil, let reported { fields["session_id"] = Self.jsonString(reported) }
        default:
            break
        }
        return try send(cmd, orgID: orgID, sourceID: sourceID, fields: fields)
    }

    /// Queues the command for the device; `offline` or `busy` when it cannot be queued.
    private func send(_ cmd: ControlCommand, orgID: Int64, sourceID: String, fields: [String: String]) throws -> [UInt8] {
        let frame = cmd.frame(sourceID: sourceID, fields: fields.sorted { $0.key < $1.key })
        switch hub.sendToDevice(orgID: orgID, sourceID: sourceID, frame) {
        case .sent: return frame
        case .offline: throw ControlError.offline(sourceID)
        case .busy: throw ControlError.busy(sourceID)
        }
    }

    static func jsonString(_ s: String) -> String {
        var w = JSONWriter()
        w.string(s)
        return w.string
    }
}
