// libFuzzer target: the WebSocket frame codecs of PlexusModel (Frames.swift).
//  * The input as a frame goes through every decoder: Frames.type(of:), Frames.fields,
//    Frames.stringArray, DeviceAuth.decode, PlexusValue(jsonText:), numericFields,
//    Tag.parse. They must agree with each other, every raw field must be one JSON value
//    that reads back the same, and what the server would echo of it must be JSON.
//  * The input as values (split into strings and numbers) goes through every encoder
//    (OutboundFrame, DeviceFrame, ControlCommand, Frames.compose, Tag.canonicalJSON,
//    PlexusValue.jsonText): the output must be strict JSON and decode(encode(x)) == x.
import FuzzSupport
import PlexusModel

func requireJSON(_ bytes: [UInt8], _ what: String) {
    switch StrictJSON.check(bytes) {
    case nil: break
    case .nonFinite: Known.finding(Known.nonFiniteTokens, what)
    case .syntax: require(false, "\(what) is not JSON: \(String(decoding: bytes.prefix(300), as: UTF8.self).debugDescription)")
    }
}

func requireJSON(_ s: String, _ what: String) { requireJSON(Array(s.utf8), what) }

func fields(_ s: String) -> Frames.Fields? {
    var s = s
    return s.withUTF8 { Frames.fields(UnsafeRawBufferPointer($0)) }
}

func fields(_ b: [UInt8]) -> Frames.Fields? { b.withUnsafeBytes { Frames.fields($0) } }

/// One JSON value, read back through a PlexusValue where it is not null and strict JSON.
/// PlexusValue(jsonText:) refuses NaN and Infinity, which Frames.fields reads (a known
/// finding), and a number too large for a Double (`1e4000`), which is JSON but not finite.
func requireSingleValue(_ raw: String, _ what: String) {
    requireJSON(raw, what)
    let overflows = Double(String(raw.filter { !$0.isWhitespace })).map { !$0.isFinite } ?? false
    if raw != "null", StrictJSON.check(Array(raw.utf8)) == nil, !overflows {
        require(PlexusValue(jsonText: raw) != nil, "\(what) does not parse as a value: \(raw.prefix(200).debugDescription)")
    }
}

// MARK: decoders

func decoders(_ bytes: UnsafeRawBufferPointer) {
    let type = Frames.type(of: bytes)
    let f = Frames.fields(bytes)
    if let f {
        require(type != nil, "fields accepts what type(of:) refuses")
        require(type == (f.strings["type"] ?? ""), "type(of:) \(type ?? "nil") but fields.type \(f.strings["type"] ?? "nil")")
        // The same object as JSON: what fields accepts, a strict parser accepts.
        switch StrictJSON.check(bytes) {
        case nil: break
        case .nonFinite: Known.finding(Known.nonFiniteTokens, "frame accepted by Frames.fields")
        case .syntax: require(false, "Frames.fields accepts a frame that is not JSON")
        }
        for (k, raw) in f.raw {
            requireSingleValue(raw, "raw field \(k.debugDescription)")
            if let s = f.strings[k] {
                require(PlexusValue(jsonText: raw) == .string(s), "string field \(k.debugDescription) does not read back")
            }
            if let d = f.numbers[k], d.isFinite {
                require(PlexusValue(jsonText: raw) == .number(d), "number field \(k.debugDescription) does not read back")
            }
            if let b = f.bools[k] { require(raw == (b ? "true" : "false"), "bool field \(k.debugDescription)") }
            if let list = Frames.stringArray(raw) {
                var w = JSONWriter()
                w.strings(list)
                require(Frames.stringArray(w.string) == list, "stringArray round trip")
            }
        }
        // What the server echoes: the id of a time_sync (DeviceSessionMachine).
        requireJSON(OutboundFrame.timeSync(idJSON: f.raw["id"], serverTimeMs: 1), "time_sync answer echoing the id")
        // What a device relays to dashboards: a configure frame's config object (Commands.swift).
        if let config = f.raw["config"], config.hasPrefix("{") { _ = fields(config) }
    } else {
        // type(of:) skips the values that fields reads; both must accept the same frames.
        require(type == nil, "type(of:) accepts what fields refuses")
    }
    if case .success(let auth) = DeviceAuth.decode(bytes) {
        require(Identifier.isValidSourceID(auth.sourceID), "device_auth accepted an invalid source_id")
        if let i = auth.installID { require(!i.isEmpty && i.utf8.count <= 128, "install_id length") }
        require((auth.platform?.count ?? 0) <= 64 && (auth.agentVersion?.count ?? 0) <= 64, "platform/agent_version length")
        for raw in [auth.sensors, auth.commands].compactMap({ $0 }) {
            requireJSON(raw, "device_auth sensors/commands")
            require(raw.hasPrefix("["), "sensors/commands not an array")
        }
    }
    // Values and tags read from raw text (stored values, dashboard filters).
    let text = String(decoding: bytes, as: UTF8.self)
    if let v = PlexusValue(jsonText: text) {
        requireJSON(v.jsonText, "PlexusValue.jsonText")
        if case .number(let d) = v, !d.isFinite {
            Known.finding(Known.nonFiniteTokens, "PlexusValue(jsonText:) reads a non-finite number")
        } else {
            require(PlexusValue(jsonText: v.jsonText) == v, "PlexusValue jsonText round trip: \(text.prefix(100).debugDescription)")
        }
        if let numeric = v.numericFields {
            require(numeric.allSatisfy { !$0.0.isEmpty && $0.1.isFinite }, "numericFields")
        }
    }
    if let tags = Tag.parse(json: text) {
        let canonical = Tag.canonicalJSON(tags)
        requireJSON(canonical, "Tag.canonicalJSON")
        require(Tag.parse(json: canonical) == tags, "tags round trip")
        for k in tags.indices.dropFirst() { require(tags[k - 1].key < tags[k].key, "tags not sorted and unique") }
    }
    _ = Frames.stringArray(text)
}

// MARK: encoders

func encoders(_ input: inout FuzzInput) {
    let a = input.string()
    let b = input.string()
    let c = input.string()
    let n = Int64(bitPattern: input.uint64()) >> Int64(input.byte() % 64)
    let flag = input.bool()
    let exact = n.magnitude < 1 << 53

    let authed = OutboundFrame.authenticated(sourceID: a, serverTimeMs: n, acks: flag)
    requireJSON(authed, "authenticated")
    if let f = fields(authed) {
        require(f.strings["type"] == "authenticated" && f.strings["source_id"] == a, "authenticated fields")
        if exact { require(f.numbers["server_time_ms"] == Double(n), "server_time_ms") }
        require(f.bools["acks"] == (flag ? true : nil), "acks")
    } else {
        require(false, "authenticated does not decode")
    }

    let code: String? = flag ? b : nil
    let err = OutboundFrame.error(code: code, message: a, seq: flag ? nil : n, sourceID: c.isEmpty ? nil : c)
    requireJSON(err, "error")
    let ef = fields(err)
    require(ef?.strings["type"] == "error" && ef?.strings["message"] == a && ef?.strings["code"] == code, "error fields")
    if let code { require(ef?.strings["detail"] == a && ef?.strings["code"] == code, "error detail") }
    if !flag && exact { require(ef?.numbers["seq"] == Double(n), "error seq") }
    require(ef?.strings["source_id"] == (c.isEmpty ? nil : c), "error source_id")

    let ack = OutboundFrame.telemetryAck(seq: n)
    requireJSON(ack, "telemetry_ack")
    if exact { require(fields(ack)?.numbers["seq"] == Double(n), "telemetry_ack seq") }

    var id = JSONWriter()
    id.string(b)
    let sync = OutboundFrame.timeSync(idJSON: flag ? id.string : nil, serverTimeMs: n)
    requireJSON(sync, "time_sync")
    require(fields(sync)?.strings["id"] == (flag ? b : nil), "time_sync id")

    let started = DeviceFrame.sessionStarted(id: a, name: flag ? b : nil)
    requireJSON(started, "session_started")
    require(
        fields(started)?.strings["session_id"] == a && fields(started)?.strings["session_name"] == (flag ? b : nil),
        "session_started fields")
    let stopped = DeviceFrame.sessionStopped(id: a)
    requireJSON(stopped, "session_stopped")
    require(fields(stopped)?.strings["session_id"] == a, "session_stopped fields")

    let result = DeviceFrame.commandResult(command: a, id: flag ? b : nil, sensor: c.isEmpty ? nil : c, error: flag ? nil : b)
    requireJSON(result, "command_result")
    let rf = fields(result)
    require(rf?.strings["type"] == "command_result" && rf?.strings["command"] == a, "command_result fields")
    require(rf?.strings["status"] == (flag ? "ok" : "error") && rf?.strings["message"] == (flag ? nil : b), "command_result status")

    let deviceError = DeviceFrame.deviceError(source: a, error: b, severity: c)
    requireJSON(deviceError, "device_error")
    let df = fields(deviceError)
    require(df?.strings["source"] == a && df?.strings["error"] == b && df?.strings["severity"] == c, "device_error fields")

    require(fields(DeviceFrame.pong)?.strings["type"] == "pong", "pong")
    let tsync = DeviceFrame.timeSync(id: Int(truncatingIfNeeded: n))
    requireJSON(tsync, "device time_sync")
    if exact { require(fields(tsync)?.numbers["id"] == Double(n), "device time_sync id") }

    // Control frames: fields are raw JSON values (here strings and numbers from the input).
    var pairs: [(String, String)] = []
    for _ in 0..<Int(input.byte() % 5) {
        let key = input.string(max: 16)
        var v = JSONWriter()
        if input.bool() { v.string(input.string()) } else { v.number(Double(bitPattern: input.uint64())) }
        pairs.append((key, v.string))
    }
    let command = ControlCommand.allCases[Int(input.byte()) % ControlCommand.allCases.count]
    let frame = command.frame(sourceID: a, fields: pairs)
    requireJSON(frame, "control frame")
    guard let cf = fields(frame) else {
        require(false, "control frame does not decode")
        return
    }
    require(cf.strings["type"] == command.rawValue && cf.strings["source_id"] == a, "control frame type/source_id")
    var expected: [String: String] = [:]
    for (k, v) in pairs where k != "type" && k != "source_id" { expected[k] = v }
    for (k, v) in expected {
        require(cf.raw[k] == v, "control frame field \(k.debugDescription): \(v) became \(cf.raw[k] ?? "nil")")
    }

    // The SDK's device_auth (WebSocketTransport.authFrame) read by the server.
    var auth = JSONWriter()
    auth.raw("{\"type\":\"device_auth\",\"api_key\":")
    auth.string(b)
    auth.raw(",\"source_id\":")
    auth.string(a)
    auth.raw(",\"platform\":")
    auth.string(c)
    auth.raw(",\"acks\":true}")
    switch auth.bytes.withUnsafeBytes({ DeviceAuth.decode($0) }) {
    case .success(let d):
        require(d.apiKey == b && d.sourceID == a && d.platform == String(c.prefix(64)) && d.acks, "device_auth fields")
    case .failure(let problem):
        require(problem == .badSourceID && !Identifier.isValidSourceID(a), "device_auth refused: \(problem)")
    }

    // Tags and values.
    let tags = [Tag(a, b), Tag(c, a)].filter { !$0.key.isEmpty }
    let canonical = Tag.canonicalJSON(tags)
    requireJSON(canonical, "canonical tags")
    var sorted: [Tag] = []
    for t in tags.sorted() {
        if let last = sorted.last, last.key == t.key { sorted[sorted.count - 1] = t } else { sorted.append(t) }
    }
    // Tags ingest refuses (an empty session_id, control characters, over 256 bytes) do not parse.
    let refused = tags.contains {
        ($0.key == "session_id" && $0.value.isEmpty) || Identifier.hasControlCharacters($0.key)
            || Identifier.hasControlCharacters($0.value) || $0.key.utf8.count > Limits.maxTagBytes
            || $0.value.utf8.count > Limits.maxTagBytes
    }
    if !refused && (tags.count < 2 || tags[0].key != tags[1].key) {
        require(Tag.parse(json: canonical) == sorted, "Tag canonicalJSON/parse round trip")
    }
    let d = Double(bitPattern: input.uint64())
    let values: [PlexusValue] = [
        .string(a), .bool(flag), .number(d), .object([(b, .number(d)), (c, .string(a))]),
        .array([.string(c), .number(d), .bool(flag)]),
    ]
    for v in values {
        requireJSON(v.jsonText, "PlexusValue.jsonText")
        if case .number(let x) = v, !x.isFinite { continue }  // written as null by design
        require(PlexusValue(jsonText: v.jsonText) == v, "value round trip: \(v.jsonText.prefix(100).debugDescription)")
    }
}

func fuzzFrames(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: size)
    decoders(bytes)
    var input = FuzzInput(bytes)
    encoders(&input)
    return 0
}

runFuzzer(fuzzFrames)
