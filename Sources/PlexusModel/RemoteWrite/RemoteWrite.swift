/// Prometheus remote write 1.0: a snappy-compressed protobuf `WriteRequest`
/// (`prompb/remote.proto`), decoded into Plexus points (docs/prometheus.md).
///
/// ```text
/// WriteRequest { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }
/// TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2;
///                repeated Exemplar exemplars = 3; repeated Histogram histograms = 4; }
/// Label        { string name = 1; string value = 2; }
/// Sample       { double value = 1; int64 timestamp = 2; }   // Unix ms
/// ```
///
/// Each sample becomes a point: metric `__name__`, source from the first label named in
/// ``Mapping/sourceLabels`` (``Identifier/sourceID(fromLabel:)``: `127.0.0.1:9100` is
/// `127.0.0.1-9100`), the other labels as tags. Samples that are not finite (NaN, the
/// staleness marker, ±Inf) are skipped and counted: Prometheus sends them routinely (a
/// summary without observations) and Plexus stores finite numbers only. A series that
/// breaks a rule is rejected whole; the others are kept. Metadata, exemplars and native
/// histograms are read past.
public enum RemoteWrite {
    /// The server's mapping from labels to Plexus (a flag of `plexus-server`).
    public struct Mapping: Sendable, Equatable {
        /// The labels that name a sample's source, in order of preference.
        public var sourceLabels: [String]

        public init(sourceLabels: [String] = ["instance"]) {
            self.sourceLabels = sourceLabels
        }
    }

    public struct Decoded: Sendable {
        public var points: [Point]
        /// The rejected series (0-based), with the reason for each; a reason never repeats
        /// a label value.
        public var rejected: Rejections
        /// Samples skipped because they were NaN (including staleness markers) or infinite.
        public var skippedNonFinite: Int
    }

    /// Decodes an uncompressed `WriteRequest`. Throws when the whole request is refused:
    /// it is not protobuf of that shape (``IngestError/Code/invalidProtobuf``), or it holds
    /// more than ``Limits/maxPointsPerRequest`` finite samples.
    public static func decode(_ bytes: UnsafeRawBufferPointer, mapping: Mapping = .init()) throws(IngestError) -> Decoded {
        var decoded = Decoded(points: [], rejected: Rejections(), skippedNonFinite: 0)
        var request = ProtoReader(bytes)
        var index = 0
        do {
            while let (field, wire) = try request.next() {
                guard field == 1, wire == ProtoReader.lengthDelimited else {
                    try request.skip(wire)
                    continue
                }
                let series = try request.lengthDelimited()
                do {
                    try decodeSeries(series, mapping: mapping, into: &decoded)
                } catch let e as SeriesError {
                    decoded.rejected.add(Rejections.Item(unit: "series", position: index, reason: e.reason))
                }
                index += 1
                if decoded.points.count > Limits.maxPointsPerRequest {
                    throw IngestError(
                        .tooManyPoints,
                        "too many samples: more than \(Limits.maxPointsPerRequest) in one request; lower queue_config.max_samples_per_send")
                }
            }
        } catch let e as IngestError {
            throw e
        } catch {
            throw IngestError(.invalidProtobuf, "body is not a remote-write WriteRequest (protobuf)")
        }
        return decoded
    }

    struct SeriesError: Error {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// One `TimeSeries`: its samples become points, or it throws ``SeriesError`` (and adds
    /// nothing). Malformed protobuf throws ``ProtoReader/Malformed``.
    static func decodeSeries(_ bytes: UnsafeRawBufferPointer, mapping: Mapping, into decoded: inout Decoded) throws {
        var r = ProtoReader(bytes)
        var labels: [Tag] = []
        var samples: [(Double, Int64)] = []
        var problem: String?
        while let (field, wire) = try r.next() {
            switch (field, wire) {
            case (1, ProtoReader.lengthDelimited):
                let label = try label(try r.lengthDelimited())
                if let label {
                    if !label.value.isEmpty { labels.append(label) }
                } else {
                    problem = problem ?? "a label is not valid UTF-8"
                }
            case (2, ProtoReader.lengthDelimited):
                samples.append(try sample(try r.lengthDelimited()))
            default:
                try r.skip(wire)
            }
        }
        if let problem { throw SeriesError(problem) }
        guard labels.count(where: { $0.key == "__name__" }) <= 1 else { throw SeriesError("duplicate label name") }
        guard let nameAt = labels.firstIndex(where: { $0.key == "__name__" }) else { throw SeriesError("no __name__ label") }
        let metric = labels.remove(at: nameAt).value
        guard metric.utf8.count <= Limits.maxMetricBytes else {
            throw SeriesError("metric name longer than \(Limits.maxMetricBytes) bytes")
        }
        guard !Identifier.hasControlCharacters(metric) else { throw SeriesError("control character in a label") }
        let (source, session, tags): (String, String?, [Tag])
        switch LabelSet.resolve(labels, sourceLabels: mapping.sourceLabels, defaultSource: nil, noun: "label") {
        case .success(let r): (source, session, tags) = (r.source, r.session, r.tags)
        case .failure(let refusal): throw SeriesError(refusal.reason)
        }
        var points: [Point] = []
        points.reserveCapacity(samples.count)
        var skipped = 0
        for (value, ms) in samples {
            guard value.isFinite else {
                skipped += 1
                continue
            }
            let (us, overflow) = ms.multipliedReportingOverflow(by: 1_000)
            guard !overflow, Timestamp.isValid(us) else { throw SeriesError("sample timestamp " + Timestamp.rangeMessage) }
            points.append(Point(metric: metric, value: .number(value), timestamp: us, sourceID: source, tags: tags, sessionID: session))
        }
        decoded.points.append(contentsOf: points)
        decoded.skippedNonFinite += skipped
    }

    /// A `Label`; nil when its name or value is not UTF-8.
    static func label(_ bytes: UnsafeRawBufferPointer) throws -> Tag? {
        var r = ProtoReader(bytes)
        var name: String? = ""
        var value: String? = ""
        while let (field, wire) = try r.next() {
            switch (field, wire) {
            case (1, ProtoReader.lengthDelimited): name = String(utf8: try r.lengthDelimited())
            case (2, ProtoReader.lengthDelimited): value = String(utf8: try r.lengthDelimited())
            default: try r.skip(wire)
            }
        }
        guard let name, let value else { return nil }
        return Tag(name, value)
    }

    /// A `Sample`: its value and Unix milliseconds.
    static func sample(_ bytes: UnsafeRawBufferPointer) throws -> (Double, Int64) {
        var r = ProtoReader(bytes)
        var value = 0.0
        var ms: Int64 = 0
        while let (field, wire) = try r.next() {
            switch (field, wire) {
            case (1, ProtoReader.fixed64): value = Double(bitPattern: try r.fixed64())
            case (2, ProtoReader.varint): ms = Int64(bitPattern: try r.varint())
            default: try r.skip(wire)
            }
        }
        return (value, ms)
    }
}

/// Protocol buffers' wire format, reading only: varints, fixed 32/64-bit values and
/// length-delimited fields, every length checked against the bytes left.
struct ProtoReader {
    struct Malformed: Error {}

    static let varint = 0
    static let fixed64 = 1
    static let lengthDelimited = 2
    static let fixed32 = 5

    let base: UnsafeRawBufferPointer
    var i = 0

    init(_ bytes: UnsafeRawBufferPointer) { base = bytes }

    /// The next field's number and wire type, or nil at the end.
    mutating func next() throws -> (Int, Int)? {
        guard i < base.count else { return nil }
        let key = try varint()
        let field = key >> 3
        guard field > 0, field <= 536_870_911 else { throw Malformed() }
        return (Int(field), Int(key & 7))
    }

    mutating func varint() throws -> UInt64 {
        guard let v = UVarint.read(base, at: &i) else { throw Malformed() }
        return v
    }

    mutating func fixed64() throws -> UInt64 {
        guard base.count - i >= 8 else { throw Malformed() }
        defer { i += 8 }
        return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
    }

    mutating func lengthDelimited() throws -> UnsafeRawBufferPointer {
        let n = try varint()
        guard n <= UInt64(base.count - i) else { throw Malformed() }
        defer { i += Int(n) }
        return UnsafeRawBufferPointer(rebasing: base[i..<(i + Int(n))])
    }

    /// Moves past a field's value of wire type `wire`; groups (3, 4) and unknown types are malformed.
    mutating func skip(_ wire: Int) throws {
        switch wire {
        case Self.varint: _ = try varint()
        case Self.fixed64: _ = try fixed64()
        case Self.lengthDelimited: _ = try lengthDelimited()
        case Self.fixed32:
            guard base.count - i >= 4 else { throw Malformed() }
            i += 4
        default: throw Malformed()
        }
    }
}

extension RemoteWrite {
    /// One series as Prometheus sends it, for encoding (tests, fuzzing and benchmarks:
    /// the server only decodes).
    public struct Series: Sendable, Equatable {
        public var labels: [(name: String, value: String)]
        public var samples: [(value: Double, timestampMs: Int64)]

        public init(labels: [(name: String, value: String)], samples: [(value: Double, timestampMs: Int64)]) {
            self.labels = labels
            self.samples = samples
        }

        public static func == (a: Series, b: Series) -> Bool {
            a.labels.elementsEqual(b.labels) { $0 == $1 }
                && a.samples.elementsEqual(b.samples) { $0.timestampMs == $1.timestampMs && $0.value.bitPattern == $1.value.bitPattern }
        }
    }

    /// A `WriteRequest` holding `series`, uncompressed (``decode(_:mapping:)``'s input).
    public static func encode(_ series: [Series]) -> [UInt8] {
        var out = ProtoWriter()
        for s in series {
            var ts = ProtoWriter()
            for (name, value) in s.labels {
                var label = ProtoWriter()
                label.bytes(1, Array(name.utf8))
                label.bytes(2, Array(value.utf8))
                ts.bytes(1, label.out)
            }
            for (value, ms) in s.samples {
                var sample = ProtoWriter()
                sample.fixed64(1, value.bitPattern)
                sample.varint(2, UInt64(bitPattern: ms))
                ts.bytes(2, sample.out)
            }
            out.bytes(1, ts.out)
        }
        return out.out
    }
}

/// Protocol buffers' wire format, writing the three kinds ``RemoteWrite/encode(_:)`` needs.
struct ProtoWriter {
    var out: [UInt8] = []

    mutating func rawVarint(_ v: UInt64) { UVarint.append(v, to: &out) }

    mutating func varint(_ field: Int, _ v: UInt64) {
        rawVarint(UInt64(field) << 3 | UInt64(ProtoReader.varint))
        rawVarint(v)
    }

    mutating func fixed64(_ field: Int, _ v: UInt64) {
        rawVarint(UInt64(field) << 3 | UInt64(ProtoReader.fixed64))
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    mutating func bytes(_ field: Int, _ b: [UInt8]) {
        rawVarint(UInt64(field) << 3 | UInt64(ProtoReader.lengthDelimited))
        rawVarint(UInt64(b.count))
        out.append(contentsOf: b)
    }
}
