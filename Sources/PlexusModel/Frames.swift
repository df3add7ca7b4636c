/// WebSocket frames of the Plexus device and dashboard protocols: the codecs both ends
/// share (docs/websocket-api.md). All frames are JSON text objects with a `type`.
public enum Frames {
    /// The `type` of a frame without decoding the rest; nil when the bytes are not a JSON
    /// object. `""` when the object has no string `type`.
    public static func type(of bytes: UnsafeRawBufferPointer) -> String? {
        var c = JSONCursor(bytes)
        do {
            var found = ""
            try c.readObject { k, c in
                if k == "type" && c.peekKind() == .string {
                    found = try c.readString()
                } else {
                    // The last `type` is the frame's, as in ``fields(_:)``: one that is not a string unsets it.
                    if k == "type" { found = "" }
                    try c.skipValue()
                }
            }
            return c.isAtEndIgnoringWhitespace() ? found : nil
        } catch {
            return nil
        }
    }

    /// A shallow view of a frame: every top-level field as raw JSON text (strings decoded).
    public struct Fields: Sendable {
        public var raw: [String: String] = [:]
        public var strings: [String: String] = [:]
        public var numbers: [String: Double] = [:]
        public var bools: [String: Bool] = [:]

        public func string(_ k: String) -> String? { strings[k] }
    }

    public static func fields(_ bytes: UnsafeRawBufferPointer) -> Fields? {
        var c = JSONCursor(bytes)
        var f = Fields()
        do {
            try c.readObject { k, c in
                // A key given twice: the last one is the field, in every view (the typed
                // views kept the first value of another type beside the last one's raw text).
                (f.strings[k], f.numbers[k], f.bools[k]) = (nil, nil, nil)
                switch c.peekKind() {
                case .string:
                    let start = c.offset
                    f.strings[k] = try c.readString()
                    f.raw[k] = rawText(bytes, start, c.offset)
                case .number:
                    let start = c.offset
                    f.numbers[k] = try c.readNumber()
                    f.raw[k] = rawText(bytes, start, c.offset)
                case .trueLiteral, .falseLiteral:
                    let b = try c.readBool()
                    f.bools[k] = b
                    f.raw[k] = b ? "true" : "false"
                default:
                    f.raw[k] = try c.readRawValue()
                }
            }
            return c.isAtEndIgnoringWhitespace() ? f : nil
        } catch {
            return nil
        }
    }

    /// `{"type":…,"source_id":…,<fields>}`: `type` and each field value are raw JSON text;
    /// a `type` or `source_id` among `fields` is left out (the given ones win).
    public static func compose(typeJSON: String, sourceID: String, fields: [(String, String)]) -> [UInt8] {
        var w = JSONWriter(capacity: 128)
        w.raw("{\"type\":")
        w.rawText(typeJSON)
        w.raw(",\"source_id\":")
        w.string(sourceID)
        for (k, v) in fields where k != "type" && k != "source_id" {
            w.raw(",")
            w.string(k)
            w.raw(":")
            w.rawText(v)
        }
        w.raw("}")
        return w.bytes
    }

    /// A JSON array of strings (a field's raw text, as in ``Fields/raw``); nil for anything
    /// else, including an array with one element that is not a string.
    public static func stringArray(_ raw: String) -> [String]? {
        var text = raw
        return text.withUTF8 { buf -> [String]? in
            var c = JSONCursor(UnsafeRawBufferPointer(buf))
            var out: [String] = []
            do {
                try c.expect(UInt8(ascii: "["))
                if !c.consume(UInt8(ascii: "]")) {
                    repeat {
                        guard c.peekKind() == .string else { return nil }
                        out.append(try c.readString())
                    } while try !c.nextOrEnd(UInt8(ascii: "]"))
                }
                return c.isAtEndIgnoringWhitespace() ? out : nil
            } catch {
                return nil
            }
        }
    }

    private static func rawText(_ b: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> String {
        var s = from
        while s < to && (b[s] == 0x20 || b[s] == 0x0A || b[s] == 0x0D || b[s] == 0x09) { s += 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: b[s..<to]), as: UTF8.self)
    }
}

/// `device_auth`, the first frame a device sends.
public struct DeviceAuth: Sendable, Hashable {
    public var apiKey: String
    /// The name the device asks for.
    public var sourceID: String
    /// Stable per installation (SDK 0.4.1–0.6.2): lets the server give it its name back.
    public var installID: String?
    public var platform: String?
    public var agentVersion: String?
    /// JSON text of the reported sensors (array), if any.
    public var sensors: String?
    /// JSON text of the advertised commands, if any.
    public var commands: String?
    /// The device wants `telemetry_ack` frames (SDK 0.16+).
    public var acks: Bool

    public enum Problem: Error, Equatable { case notAuth, missingKey, badSourceID }

    public init(
        apiKey: String, sourceID: String, installID: String? = nil, platform: String? = nil, agentVersion: String? = nil,
        sensors: String? = nil, commands: String? = nil, acks: Bool = false
    ) {
        self.apiKey = apiKey
        self.sourceID = sourceID
        self.installID = installID
        self.platform = platform
        self.agentVersion = agentVersion
        self.sensors = sensors
        self.commands = commands
        self.acks = acks
    }

    /// The frame as a device sends it (the SDKs, and tests of the decoder).
    public var encoded: [UInt8] {
        var w = JSONWriter(capacity: 256)
        w.raw("{\"type\":\"device_auth\",\"api_key\":")
        w.string(apiKey)
        w.raw(",\"source_id\":")
        w.string(sourceID)
        w.field("install_id", installID)
        w.field("platform", platform)
        w.field("agent_version", agentVersion)
        if let sensors {
            w.raw(",\"sensors\":")
            w.rawText(sensors)
        }
        if let commands {
            w.raw(",\"commands\":")
            w.rawText(commands)
        }
        if acks { w.raw(",\"acks\":true") }
        w.raw("}")
        return w.bytes
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) -> Result<DeviceAuth, Problem> {
        guard let f = Frames.fields(bytes), f.string("type") == "device_auth" else { return .failure(.notAuth) }
        guard let key = f.string("api_key") else { return .failure(.missingKey) }
        guard let source = f.string("source_id"), Identifier.isValidSourceID(source) else { return .failure(.badSourceID) }
        let install = f.string("install_id").flatMap { $0.isEmpty || $0.utf8.count > 128 ? nil : $0 }
        return .success(
            DeviceAuth(
                apiKey: key, sourceID: source, installID: install,
                platform: f.string("platform").map { String($0.prefix(64)) },
                agentVersion: f.string("agent_version").map { String($0.prefix(64)) },
                sensors: f.raw["sensors"].flatMap { $0.hasPrefix("[") ? $0 : nil },
                commands: f.raw["commands"].flatMap { $0.hasPrefix("[") ? $0 : nil },
                acks: f.bools["acks"] ?? false))
    }
}

/// Frames the server writes.
public enum OutboundFrame {
    public static func authenticated(sourceID: String, serverTimeMs: Int64, acks: Bool) -> [UInt8] {
        var w = JSONWriter(capacity: 96)
        w.raw("{\"type\":\"authenticated\",\"source_id\":")
        w.string(sourceID)
        w.raw(",\"server_time_ms\":")
        w.int(serverTimeMs)
        if acks { w.raw(",\"acks\":true") }
        w.raw("}")
        return w.bytes
    }

    /// An error reply. During authentication it carries `message` (what SDKs print);
    /// afterwards `code` and `detail` (and the rejected frame's `seq`).
    public static func error(code: String? = nil, message: String, seq: Int64? = nil, sourceID: String? = nil) -> [UInt8] {
        var w = JSONWriter(capacity: 96)
        w.raw("{\"type\":\"error\"")
        if let code {
            w.raw(",\"code\":")
            w.string(code)
            w.raw(",\"detail\":")
            w.string(message)
        }
        w.raw(",\"message\":")
        w.string(message)
        w.field("seq", seq)
        w.field("source_id", sourceID)
        w.raw("}")
        return w.bytes
    }

    public static func telemetryAck(seq: Int64) -> [UInt8] {
        var w = JSONWriter(capacity: 40)
        w.raw("{\"type\":\"telemetry_ack\",\"seq\":")
        w.int(seq)
        w.raw("}")
        return w.bytes
    }

    /// The answer to a device's `time_sync`: its `id` (raw JSON, as sent) and the server's
    /// clock, so the device can correct its own by the round trip.
    public static func timeSync(idJSON: String?, serverTimeMs: Int64) -> [UInt8] {
        var w = JSONWriter(capacity: 64)
        w.raw("{\"type\":\"time_sync\"")
        if let idJSON {
            w.raw(",\"id\":")
            w.rawText(idJSON)
        }
        w.raw(",\"server_time_ms\":")
        w.int(serverTimeMs)
        w.raw("}")
        return w.bytes
    }
}

/// Frames a device writes besides `device_auth` and telemetry: its answers to control
/// messages, `device_error`, and `time_sync` (the Swift SDK composes them; the server reads
/// them as ``Frames/fields(_:)``).
public enum DeviceFrame {
    public static let pong = #"{"type":"pong"}"#

    public static func sessionStarted(id: String, name: String?) -> String {
        var w = JSONWriter(capacity: 96)
        w.raw("{\"type\":\"session_started\",\"session_id\":")
        w.string(id)
        w.field("session_name", name)
        w.raw("}")
        return w.string
    }

    public static func sessionStopped(id: String) -> String {
        var w = JSONWriter(capacity: 96)
        w.raw("{\"type\":\"session_stopped\",\"session_id\":")
        w.string(id)
        w.raw("}")
        return w.string
    }

    /// `{"type":"command_result","command":…,"id"?:…,"sensor"?:…,"status":"ok"|"error","message"?:…}`;
    /// `error` nil means ok.
    public static func commandResult(command: String, id: String? = nil, sensor: String? = nil, error: String? = nil) -> String {
        var w = JSONWriter(capacity: 128)
        w.raw("{\"type\":\"command_result\",\"command\":")
        w.string(command)
        w.field("id", id)
        w.field("sensor", sensor)
        if let error {
            w.raw(",\"status\":\"error\",\"message\":")
            w.string(error)
            w.raw("}")
        } else {
            w.raw(",\"status\":\"ok\"}")
        }
        return w.string
    }

    /// Something on the device failed (or recovered): the server stores it as `device.error`.
    public static func deviceError(source: String, error: String, severity: String) -> String {
        var w = JSONWriter(capacity: 128)
        w.raw("{\"type\":\"device_error\",\"source\":")
        w.string(source)
        w.raw(",\"error\":")
        w.string(error)
        w.raw(",\"severity\":")
        w.string(severity)
        w.raw("}")
        return w.string
    }

    /// Asks for the server's clock; answered by ``OutboundFrame/timeSync(idJSON:serverTimeMs:)``.
    public static func timeSync(id: Int) -> String { "{\"type\":\"time_sync\",\"id\":\(id)}" }
}

/// Dashboard → device control messages of the spec, relayed as top-level frames (the
/// dialect `plexus start` obeys).
public enum ControlCommand: String, Sendable, CaseIterable {
    case startStream = "start_stream"
    case stopStream = "stop_stream"
    case startSession = "start_session"
    case stopSession = "stop_session"
    case configure
    case ping
    // Passed through for devices that support them (the original platform's set).
    case startCamera = "start_camera"
    case stopCamera = "stop_camera"
    case configureCamera = "configure_camera"
    case startCAN = "start_can"
    case stopCAN = "stop_can"
    case startMAVLink = "start_mavlink"
    case stopMAVLink = "stop_mavlink"
    case mavlinkCommand = "mavlink_command"

    /// Builds the frame a device receives: `{"type": <command>, "source_id": …, <fields>}`.
    /// `fields` are raw JSON texts by name (already validated JSON values).
    public func frame(sourceID: String, fields: [(String, String)]) -> [UInt8] {
        var type = JSONWriter()
        type.string(rawValue)
        return Frames.compose(typeJSON: type.string, sourceID: sourceID, fields: fields)
    }
}

// MARK: Strictness and times of frames that are echoed

extension Frames {
    /// Whether a value's raw JSON text (as in ``Fields/raw``) is strict JSON: ``JSONCursor``
    /// also accepts `NaN`, `Infinity` and `-Infinity` (Python writes them), which are not
    /// JSON, so text holding them must never be copied into a frame the server writes.
    /// Strings are skipped, escapes and all (the cursor has already validated them).
    public static func isStrictJSON(_ raw: String) -> Bool {
        var inString = false
        var escaped = false
        for c in raw.utf8 {
            if inString {
                if escaped {
                    escaped = false
                } else if c == UInt8(ascii: "\\") {
                    escaped = true
                } else if c == UInt8(ascii: "\"") {
                    inString = false
                }
            } else if c == UInt8(ascii: "\"") {
                inString = true
            } else if c == UInt8(ascii: "N") || c == UInt8(ascii: "I") {
                // Outside a string, a value starting with N or I is NaN or Infinity.
                return false
            }
        }
        return true
    }

    /// Top-level fields that hold a time (a device's or a dashboard's): each must lie in
    /// ``Timestamp/validMicros``. `timestamp`, `time`, `ts` and every `…_at` follow the wire
    /// rule (seconds, or milliseconds from 1e12); `…_ms` names ending in `time_ms` or
    /// `timestamp_ms` are milliseconds. Durations such as `interval_ms` are not times.
    public static func isTimeField(_ key: String) -> Bool {
        ["timestamp", "time", "ts"].contains(key) || key.hasSuffix("_at") || key.hasSuffix("time_ms") || key.hasSuffix("timestamp_ms")
    }

    /// The first field (sorted by name) that breaks the frame rules the server checks before
    /// it echoes or relays a frame: a value that is not strict JSON (`NaN`, `Infinity`), or
    /// a time outside 1970-01-01 ..< 10000-01-01. Nil when the frame is fine.
    public static func problem(_ f: Fields) -> String? {
        for (k, raw) in f.raw.sorted(by: { $0.key < $1.key }) {
            guard isStrictJSON(raw) else { return "\(k) is not JSON (NaN and Infinity are not allowed)" }
            guard isTimeField(k), let t = f.numbers[k] else { continue }
            let ms = k.hasSuffix("_ms")
            let us: Int64? = ms ? (t.isFinite && abs(t) < 9.2e15 ? Int64((t * 1_000).rounded()) : nil) : Timestamp.micros(fromWire: t)
            guard let us, Timestamp.isValid(us) else { return "\(k) \(Timestamp.rangeMessage)" }
        }
        return nil
    }
}

// MARK: Live frames of the dashboard socket

/// The frames that carry live data to a dashboard: `telemetry` (one source),
/// `telemetry_batch` (every source a write has, for dashboards that asked for it), and
/// `gap` (live data the server dropped for a dashboard that fell behind).
public enum LiveFrame {
    /// The points of one source, each already encoded as a point object
    /// (``JSONWriter/point(_:timestamp:)``); several chunks are joined with commas.
    public struct Source: Sendable {
        public var sourceID: String
        public var chunks: [[UInt8]]
        public init(sourceID: String, chunks: [[UInt8]]) {
            self.sourceID = sourceID
            self.chunks = chunks
        }

        var byteCount: Int { chunks.reduce(sourceID.utf8.count + 32) { $0 + $1.count + 1 } }

        func writePoints(_ w: inout JSONWriter) {
            w.raw("\"points\":[")
            w.list(chunks) { w, c in w.rawBytes(c) }
            w.raw("]")
        }
    }

    /// `{"type":"telemetry","source_id":…,"points":[…]}`
    public static func telemetry(_ s: Source) -> [UInt8] {
        var w = JSONWriter(capacity: s.byteCount + 32)
        w.raw("{\"type\":\"telemetry\",\"source_id\":")
        w.string(s.sourceID)
        w.raw(",")
        s.writePoints(&w)
        w.raw("}")
        return w.bytes
    }

    /// `{"type":"telemetry_batch","sources":[{"source_id":…,"points":[…]},…]}`: every
    /// source's points in one frame. Each element of `sources` is itself a valid ingest body.
    public static func telemetryBatch(_ sources: [Source]) -> [UInt8] {
        var w = JSONWriter(capacity: sources.reduce(64) { $0 + $1.byteCount })
        w.raw("{\"type\":\"telemetry_batch\",\"sources\":[")
        w.list(sources) { w, s in
            w.raw("{\"source_id\":")
            w.string(s.sourceID)
            w.raw(",")
            s.writePoints(&w)
            w.raw("}")
        }
        w.raw("]}")
        return w.bytes
    }

    /// The elements of a `telemetry_batch`'s `sources`, each as its JSON text (an object with
    /// `source_id` and `points`, decodable by ``IngestDecoder``); nil if `bytes` is not one.
    public static func batchSources(_ bytes: UnsafeRawBufferPointer) -> [String]? {
        var c = JSONCursor(bytes)
        var type: String?
        var out: [String]?
        do {
            try c.readObject { k, c in
                if k == "type", c.peekKind() == .string {
                    type = try c.readString()
                } else if k == "sources", c.peekKind() == .array {
                    try c.expect(UInt8(ascii: "["))
                    var list: [String] = []
                    if !c.consume(UInt8(ascii: "]")) {
                        repeat { list.append(try c.readRawValue()) } while try !c.nextOrEnd(UInt8(ascii: "]"))
                    }
                    out = list
                } else {
                    try c.skipValue()
                }
            }
            guard c.isAtEndIgnoringWhitespace(), type == "telemetry_batch" else { return nil }
            return out ?? []
        } catch {
            return nil
        }
    }

    /// What a dashboard missed: live points and frames the server dropped because the
    /// dashboard did not read fast enough (too much queued, or queued too long).
    public struct Gap: Sendable, Equatable {
        public struct Source: Sendable, Equatable {
            public var sourceID: String
            public var points: Int
            /// The dropped points' own timestamps (Unix µs): the hole in the live chart.
            public var fromMicros: Int64
            public var toMicros: Int64
            public init(sourceID: String, points: Int, fromMicros: Int64, toMicros: Int64) {
                self.sourceID = sourceID
                self.points = points
                self.fromMicros = fromMicros
                self.toMicros = toMicros
            }
        }

        public var droppedPoints = 0
        /// Other live frames dropped (relayed device frames, video).
        public var droppedFrames = 0
        /// Sorted by source id.
        public var sources: [Source] = []
        public init(droppedPoints: Int = 0, droppedFrames: Int = 0, sources: [Source] = []) {
            self.droppedPoints = droppedPoints
            self.droppedFrames = droppedFrames
            self.sources = sources
        }

        public var isEmpty: Bool { droppedPoints == 0 && droppedFrames == 0 }
    }

    /// `{"type":"gap","dropped_points":N,"dropped_frames":M,"sources":[{"source_id":…,"points":n,"from_ms":…,"to_ms":…}]}`
    public static func gap(_ g: Gap) -> [UInt8] {
        var w = JSONWriter(capacity: 96 + g.sources.count * 96)
        w.raw("{\"type\":\"gap\",\"dropped_points\":")
        w.int(g.droppedPoints)
        w.raw(",\"dropped_frames\":")
        w.int(g.droppedFrames)
        w.raw(",\"sources\":[")
        w.list(g.sources) { w, s in
            w.raw("{\"source_id\":")
            w.string(s.sourceID)
            w.raw(",\"points\":")
            w.int(s.points)
            w.raw(",\"from_ms\":")
            w.millis(s.fromMicros)
            w.raw(",\"to_ms\":")
            w.millis(s.toMicros)
            w.raw("}")
        }
        w.raw("]}")
        return w.bytes
    }
}
