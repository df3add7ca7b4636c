import Testing

@testable import PlexusModel

func remoteWrite(_ series: [RemoteWrite.Series], _ mapping: RemoteWrite.Mapping = .init()) throws(IngestError) -> RemoteWrite.Decoded {
    try remoteWrite(bytes: RemoteWrite.encode(series), mapping)
}

func remoteWrite(bytes: [UInt8], _ mapping: RemoteWrite.Mapping = .init()) throws(IngestError) -> RemoteWrite.Decoded {
    let result = bytes.withUnsafeBytes { raw in
        Result { () throws(IngestError) -> RemoteWrite.Decoded in try RemoteWrite.decode(raw, mapping: mapping) }
    }
    return try result.get()
}

func unsnappy(_ bytes: [UInt8], max: Int = 1 << 20) throws(Snappy.CorruptInput) -> [UInt8] {
    let result = bytes.withUnsafeBytes { raw in
        Result { () throws(Snappy.CorruptInput) -> [UInt8] in try Snappy.decompress(raw, maxLength: max) }
    }
    return try result.get()
}

let nodeSeries = RemoteWrite.Series(
    labels: [("__name__", "node_load1"), ("instance", "Rover-7:9100"), ("job", "node")],
    samples: [(0.5, 1_700_000_000_000), (0.75, 1_700_000_015_000)])

@Suite("Prometheus remote write")
struct RemoteWriteTests {
    @Test("each sample a point: metric __name__, source from instance, other labels as tags")
    func mapping() throws {
        let d = try remoteWrite([nodeSeries])
        #expect(d.rejected.count == 0)
        #expect(d.points.count == 2)
        let p = d.points[0]
        #expect(p.metric == "node_load1")
        #expect(p.sourceID == "rover-7-9100")
        #expect(p.tags == [Tag("job", "node")])
        #expect(p.value == .number(0.5))
        #expect(p.timestamp == 1_700_000_000_000_000)
        #expect(d.points[1].timestamp == 1_700_000_015_000_000)
        let other = try remoteWrite([nodeSeries], .init(sourceLabels: ["job", "instance"]))
        #expect(other.points[0].sourceID == "node")
        #expect(other.points[0].tags == [Tag("instance", "Rover-7:9100")])
    }

    @Test("NaN, the staleness marker and infinities are skipped and counted, not refused")
    func nonFinite() throws {
        let stale = Double(bitPattern: 0x7FF0_0000_0000_0002)
        var s = nodeSeries
        s.samples = [
            (.nan, 1_700_000_000_000), (stale, 1_700_000_001_000), (.infinity, 1_700_000_002_000), (-.infinity, 1), (1, 1_700_000_003_000),
        ]
        let d = try remoteWrite([s])
        #expect(d.points.map(\.value) == [.number(1)])
        #expect(d.skippedNonFinite == 4)
        #expect(d.rejected.count == 0)
    }

    @Test("a series that breaks a rule is rejected whole; the other series are kept")
    func rejectedSeries() throws {
        let name = ("__name__", "m")
        let host = ("instance", "h")
        let bad: [(RemoteWrite.Series, String)] = [
            (.init(labels: [host], samples: [(1, 1_700_000_000_000)]), "no __name__"),
            (.init(labels: [name], samples: [(1, 1_700_000_000_000)]), "no source"),
            (.init(labels: [name, host, ("instance", "x")], samples: [(1, 1)]), "duplicate"),
            (.init(labels: [name, host, ("__name__", "other")], samples: [(1, 1)]), "duplicate"),
            (.init(labels: [name, ("instance", String(repeating: "h", count: 300))], samples: [(1, 1)]), "longer than"),
            // A fuzz finding: a label without a name (field 1 missing) would have become an empty tag key.
            (.init(labels: [name, host, ("", "node")], samples: [(1, 1)]), "empty label name"),
            (.init(labels: [name, host], samples: [(1, 1_700_000_000_000), (2, -1)]), "timestamp"),
            (.init(labels: [name, host], samples: [(1, Int64.max)]), "timestamp"),
            (.init(labels: [name, ("instance", ":::")], samples: [(1, 1)]), "no letter or digit"),
            (.init(labels: [name, host, ("k", "a\u{0}b")], samples: [(1, 1)]), "control character"),
            (.init(labels: [name, host, ("k", String(repeating: "v", count: 300))], samples: [(1, 1)]), "longer than"),
            (.init(labels: [("__name__", String(repeating: "m", count: 300)), host], samples: [(1, 1)]), "longer than"),
            (.init(labels: [name, host] + (0...16).map { ("l\($0)", "v") }, samples: [(1, 1)]), "more than 16"),
        ]
        for (series, reason) in bad {
            let d = try remoteWrite([nodeSeries, series, nodeSeries])
            #expect(d.points.count == 4, "\(reason)")
            #expect(d.rejected.count == 1)
            #expect(d.rejected.listed.first?.position == 1)
            #expect(d.rejected.listed.first?.reason.contains(reason) == true, "\(d.rejected.listed)")
        }
        // An empty label value means no label, as in Prometheus.
        let empty = try remoteWrite([.init(labels: [name, host, ("k", "")], samples: [(1, 1)])])
        #expect(empty.points.first?.tags == [])
    }

    @Test("not protobuf, truncated, a group wire type, a huge length: INVALID_PROTOBUF, never a crash")
    func malformed() {
        let good = RemoteWrite.encode([nodeSeries])
        let bad: [[UInt8]] = [
            [0xFF], Array(good.dropLast()), [0x0B], [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
            [0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
            [0x00, 0x00], Array("not protobuf at all".utf8),
        ]
        for bytes in bad {
            #expect(throws: IngestError.self, "\(bytes.prefix(8))") { try remoteWrite(bytes: bytes) }
        }
        #expect((try? remoteWrite(bytes: []))?.points.isEmpty == true)
    }

    @Test("metadata, exemplars and histograms are read past")
    func unknownFields() throws {
        var w = ProtoWriter()
        w.bytes(3, [0x08, 0x01, 0x12, 0x01, 0x6D])  // metadata
        var ts = ProtoWriter()
        ts.bytes(1, ProtoWriter.label("__name__", "m"))
        ts.bytes(1, ProtoWriter.label("instance", "h"))
        ts.bytes(3, [0x11, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F])  // an exemplar
        ts.bytes(4, [0x08, 0x05])  // a native histogram
        var sample = ProtoWriter()
        sample.fixed64(1, Double(2.5).bitPattern)
        sample.varint(2, 1_700_000_000_000)
        sample.varint(9, 7)  // a field from a later version
        ts.bytes(2, sample.out)
        w.bytes(1, ts.out)
        let d = try remoteWrite(bytes: w.out)
        #expect(d.points.map(\.value) == [.number(2.5)])
    }

    @Test("more than 10,000 samples refuse the request")
    func tooMany() {
        let many = RemoteWrite.Series(
            labels: [("__name__", "m"), ("instance", "h")], samples: (0...10_000).map { (Double($0), 1_700_000_000_000 + Int64($0)) })
        #expect(throws: IngestError.self) { try remoteWrite([many]) }
    }

    @Test("the WAL's JSON for the samples decodes back to the same points")
    func roundTrip() throws {
        let d = try remoteWrite([
            nodeSeries,
            .init(
                labels: [("__name__", "x"), ("instance", "a"), ("session_id", "run")], samples: [(-0.0, 0), (1e-300, 253_402_300_799_999)]),
        ])
        let back = try decode(String(decoding: IngestEncoder.body(d.points), as: UTF8.self))
        #expect(back.points == d.points)
        #expect(d.points.last?.sessionID == "run")
    }
}

@Suite("Snappy")
struct SnappyTests {
    @Test("literals and every copy form decode; literal blocks round-trip")
    func vectors() throws {
        // "abc" then a 1-byte-offset copy of 9 bytes from 3 back: the copy overlaps itself.
        #expect(try unsnappy([12, 0x08, 0x61, 0x62, 0x63, 0x15, 0x03]) == Array("abcabcabcabc".utf8))
        // A 2-byte-offset copy (tag 2) and a 4-byte-offset copy (tag 3) of 2 bytes each.
        #expect(try unsnappy([7, 0x08, 0x78, 0x79, 0x7A, 0x06, 0x03, 0x00, 0x07, 0x02, 0x00, 0x00, 0x00]) == Array("xyzxyxy".utf8))
        for n in [0, 1, 60, 61, 255, 256, 65_536, 100_000] {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            #expect(try unsnappy(Snappy.literalBlock(bytes)) == bytes, "\(n)")
        }
    }

    @Test("corrupt input: offsets before the start, lengths past either end, a header that lies, a bomb")
    func corrupt() {
        let bad: [[UInt8]] = [
            [], [0x80], [3, 0x08, 0x61], [3, 0x0D, 0x05], [3, 0x08, 0x61, 0x62, 0x63, 0x08, 0x64], [2, 0x08, 0x61, 0x62, 0x63],
            [12, 0x08, 0x61, 0x62, 0x63, 0x15, 0x04], [12, 0x08, 0x61, 0x62, 0x63, 0x15, 0x00], [5, 0xF0, 0xFF],
            [5, 0xFC, 0xFF, 0xFF, 0xFF, 0xFF],
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        ]
        for bytes in bad {
            #expect(throws: Snappy.CorruptInput.self, "\(bytes)") { try unsnappy(bytes) }
        }
        // Declares 2 MiB: refused before anything is allocated.
        #expect(throws: Snappy.CorruptInput.self) { try unsnappy([0x80, 0x80, 0x80, 0x01], max: 1 << 20) }
    }
}

extension ProtoWriter {
    static func label(_ name: String, _ value: String) -> [UInt8] {
        var w = ProtoWriter()
        w.bytes(1, Array(name.utf8))
        w.bytes(2, Array(value.utf8))
        return w.out
    }
}
