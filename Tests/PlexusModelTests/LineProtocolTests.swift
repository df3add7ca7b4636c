import Testing

@testable import PlexusModel

func lp(_ text: String, _ options: LineProtocol.Options = .init()) throws(IngestError) -> LineProtocol.Decoded {
    let bytes = Array(text.utf8)
    let result = bytes.withUnsafeBytes { raw in
        Result { () throws(IngestError) -> LineProtocol.Decoded in try LineProtocol.decode(raw, options: options) }
    }
    return try result.get()
}

/// The reason the only line of `text` was rejected, or nil when it was accepted.
func lpRejection(_ text: String, _ options: LineProtocol.Options = .init()) throws -> String? {
    let d = try lp(text, options)
    #expect(d.rejected.count <= 1)
    return d.rejected.listed.first?.reason
}

@Suite("Line protocol")
struct LineProtocolTests {
    @Test("a Telegraf line: each field a point named measurement.field, tags kept, host is the source")
    func telegrafLine() throws {
        let d = try lp("cpu,cpu=cpu-total,host=Drone-01 usage_idle=98.5,usage_user=1.25 1700000000123456789\n")
        #expect(d.rejected.count == 0)
        #expect(d.points.count == 2)
        let p = d.points[0]
        #expect(p.metric == "cpu.usage_idle")
        #expect(p.value == .number(98.5))
        #expect(p.sourceID == "drone-01")
        #expect(p.tags == [Tag("cpu", "cpu-total")])
        #expect(p.timestamp == 1_700_000_000_123_456)
        #expect(d.points[1].metric == "cpu.usage_user")
    }

    @Test("value types: float, integer, unsigned, string, every boolean spelling")
    func valueTypes() throws {
        let d = try lp(
            #"m,host=a f=-1.5e3,i=-42i,u=18446744073709551615u,s="x",t1=t,t2=T,t3=true,t4=True,t5=TRUE,f1=f,f2=F,f3=false,f4=False,f5=FALSE"#
        )
        let values = Dictionary(uniqueKeysWithValues: d.points.map { ($0.metric, $0.value) })
        #expect(values["m.f"] == .number(-1500))
        #expect(values["m.i"] == .number(-42))
        #expect(values["m.u"] == .number(Double(UInt64.max)))
        #expect(values["m.s"] == .string("x"))
        for k in 1...5 {
            #expect(values["m.t\(k)"] == .bool(true))
            #expect(values["m.f\(k)"] == .bool(false))
        }
    }

    @Test("escapes: spaces, commas and equals signs in names, quotes and backslashes in strings")
    func escapes() throws {
        let d = try lp(
            #"my\ meas\,ure,host=a,tag\ key\=x=val\,ue\ 1 field\,k\=y="say \"hi\" \\ C:\path",f2=1"#)
        #expect(d.rejected.count == 0)
        #expect(d.points[0].metric == "my meas,ure.field,k=y")
        #expect(d.points[0].tags == [Tag("tag key=x", "val,ue 1")])
        #expect(d.points[0].value == .string(#"say "hi" \ C:\path"#))
        #expect(d.points[1].metric == "my meas,ure.f2")
    }

    @Test("a backslash before any other character is itself")
    func literalBackslash() throws {
        let d = try lp(#"a\b,host=h,k=v\x f\y=1"#)
        #expect(d.points[0].metric == #"a\b.f\y"#)
        #expect(d.points[0].tags == [Tag("k", #"v\x"#)])
        // The source tag's value becomes a source id: `H\x` is `h-x`.
        #expect(try lp(#"m,host=H\x f=1"#).points.first?.sourceID == "h-x")
    }

    @Test("a string value may span lines; line numbers still count them")
    func multilineString() throws {
        let d = try lp("m,host=a s=\"one\ntwo\"\nbad\n")
        #expect(d.points.first?.value == .string("one\ntwo"))
        #expect(d.rejected.listed == [Rejections.Item(unit: "line", position: 3, reason: "missing fields")])
    }

    @Test("blank lines, comments, CRLF and repeated spaces are accepted")
    func layout() throws {
        let d = try lp("# a comment\r\n\r\n  m,host=a f=1   1700000000000000000  \r\nm,host=a g=2\r\n\n")
        #expect(d.rejected.count == 0)
        #expect(d.points.map(\.metric) == ["m.f", "m.g"])
        #expect(d.points[0].timestamp == 1_700_000_000_000_000)
        #expect(d.points[1].timestamp == nil)
    }

    @Test("precision: every unit scales to microseconds, with overflow refused")
    func precision() throws {
        let cases: [(LineProtocol.Precision, String, Int64)] = [
            (.nanoseconds, "1700000000123456789", 1_700_000_000_123_456),
            (.microseconds, "1700000000123456", 1_700_000_000_123_456),
            (.milliseconds, "1700000000123", 1_700_000_000_123_000),
            (.seconds, "1700000000", 1_700_000_000_000_000),
            (.minutes, "28333333", 1_699_999_980_000_000),
            (.hours, "472222", 1_699_999_200_000_000),
        ]
        for (precision, text, us) in cases {
            let d = try lp("m,host=a f=1 \(text)", .init(precision: precision))
            #expect(d.points.first?.timestamp == us, "\(precision)")
        }
        #expect(try lpRejection("m,host=a f=1 9223372036854775807", .init(precision: .seconds))?.contains("out of range") == true)
        #expect(LineProtocol.Precision(v1: "n") == .nanoseconds)
        #expect(LineProtocol.Precision(v1: "u") == .microseconds)
        #expect(LineProtocol.Precision(v2: "h") == nil)
        #expect(LineProtocol.Precision(v2: "") == nil)
    }

    @Test("hostile values: NaN, infinity, overflow, huge, empty and wrong types reject the line only")
    func hostile() throws {
        let bad = [
            "m,host=a f=NaN", "m,host=a f=nan", "m,host=a f=inf", "m,host=a f=-Infinity", "m,host=a f=1e999",
            "m,host=a f=0x10", "m,host=a f=9223372036854775808i", "m,host=a f=-9223372036854775809i",
            "m,host=a f=18446744073709551616u", "m,host=a f=-1u", "m,host=a f=1.5i", "m,host=a f=", "m,host=a f",
            "m,host=a =1", "m,host= f=1", "m,=a f=1", "m,host=a", "m,host=a  ",
            ",host=a f=1", "m,host=a f=1 12x", "m,host=a f=1 -1", "m,host=a f=1 -9223372036854775808", "m,host=a f=1 9223372036854775808",
            "m,host=a f=1 1 2", "m,host=a f=yes",
            "m,host=a,host=b f=1", "m,host=-._ f=1", "m f=1",
            "m,host=a,t=\u{1}x f=1", "m\u{7F},host=a f=1",
            "m,host=a " + String(repeating: "x", count: 300) + "=1",
            "m,host=a,k=" + String(repeating: "v", count: 300) + " f=1",
            "m,host=a f=\"" + String(repeating: "s", count: Limits.maxStringValueBytes + 1) + "\"",
            "m,host=a," + (0...16).map { "t\($0)=v" }.joined(separator: ",") + " f=1",
        ]
        for line in bad {
            let d = try lp(line + "\nok,host=a f=1\n")
            #expect(d.rejected.count == 1, "\(line.prefix(60))")
            #expect(d.rejected.listed.first?.position == 1)
            #expect(d.points.map(\.metric) == ["ok.f"], "\(line.prefix(60))")
        }
    }

    @Test("an unterminated string takes the rest of the body with it")
    func unterminated() throws {
        let d = try lp("ok,host=a f=1\nm,host=a s=\"open\nok,host=a f=2\n")
        #expect(d.points.map(\.value) == [.number(1)])
        #expect(d.rejected.listed == [Rejections.Item(unit: "line", position: 2, reason: "unterminated string field")])
    }

    @Test("a rejected line stores none of its fields, and the reason never repeats a value")
    func wholeLines() throws {
        let d = try lp("m,host=a good=1,secret=\"hunter2\",bad=NaN\n")
        #expect(d.points.isEmpty)
        #expect(d.rejected.count == 1)
        #expect(d.rejected.listed[0].reason.contains("hunter2") == false)
    }

    @Test("the source: the first configured tag, else the default, else the line is rejected")
    func source() throws {
        let mapping = LineProtocol.Mapping(sourceTags: ["device", "host"])
        let d = try lp("m,host=h,device=dev-1 f=1", .init(mapping: mapping))
        #expect(d.points[0].sourceID == "dev-1")
        #expect(d.points[0].tags == [Tag("host", "h")])
        #expect(try lp("m f=1", .init(defaultSource: "fleet")).points[0].sourceID == "fleet")
        #expect(try lpRejection("m f=1")?.contains("no source") == true)
        #expect(Identifier.sourceID(fromLabel: "Rover-7") == "rover-7")
        #expect(Identifier.sourceID(fromLabel: "my host") == "my-host")
        #expect(Identifier.sourceID(fromLabel: "") == nil)
        #expect(Identifier.sourceID(fromLabel: "127.0.0.1:9100") == "127.0.0.1-9100")
        #expect(Identifier.sourceID(fromLabel: "--_.Ünïcode héllo") == "n-code-h-llo")
        #expect(Identifier.sourceID(fromLabel: "-._:/") == nil)
        #expect(Identifier.sourceID(fromLabel: String(repeating: "a", count: 300))?.utf8.count == Limits.maxSourceIDBytes)
    }

    @Test("repeated tag sections are reused only when byte for byte the same")
    func tagSetReuse() throws {
        let d = try lp(
            """
            a,host=x,k=1 f=1
            b,host=x,k=1 f=2
            c,host=x,k=2 f=3
            d,host=x,k=2,k=3 f=4
            e,host=x,k=2,k=3 f=5
            f,host=y,k=2 f=6
            g f=7
            h f=8
            i,host=y,k=2 f=9
            """, .init(defaultSource: "dflt"))
        #expect(d.points.map(\.metric) == ["a.f", "b.f", "c.f", "f.f", "g.f", "h.f", "i.f"])
        #expect(d.points.map { $0.sourceID ?? "" } == ["x", "x", "x", "y", "dflt", "dflt", "y"])
        #expect(d.points.map(\.tags) == [[Tag("k", "1")], [Tag("k", "1")], [Tag("k", "2")], [Tag("k", "2")], [], [], [Tag("k", "2")]])
        #expect(d.rejected.listed.map(\.position) == [4, 5])
    }

    @Test("metric names: measurement.field, or field alone when configured")
    func metricNames() throws {
        let d = try lp("cpu,host=a usage=1", .init(mapping: .init(metricNames: .field)))
        #expect(d.points[0].metric == "usage")
    }

    @Test("a session_id tag puts the points in that session, as in the JSON API")
    func session() throws {
        let d = try lp("m,host=a,session_id=run-1,k=v f=1")
        #expect(d.points[0].sessionID == "run-1")
        #expect(d.points[0].tags == [Tag("k", "v")])
    }

    @Test("a key repeated in one line: the last one wins")
    func repeatedField() throws {
        let d = try lp("m,host=a f=1,f=2")
        #expect(d.points.count == 1)
        #expect(d.points[0].value == .number(2))
    }

    @Test("more than 10,000 fields in the accepted lines refuse the whole request")
    func tooManyPoints() {
        let body = (0...Limits.maxPointsPerRequest).map { "m,host=a f=\($0)" }.joined(separator: "\n")
        #expect(throws: IngestError.self) { try lp(body) }
        let exactly = (1...Limits.maxPointsPerRequest).map { "m,host=a f=\($0)" }.joined(separator: "\n")
        #expect((try? lp(exactly))?.points.count == Limits.maxPointsPerRequest)
    }

    @Test("only the first 100 rejections are listed; the count is complete")
    func rejectionCap() throws {
        let d = try lp(String(repeating: "bad\n", count: 250))
        #expect(d.rejected.count == 250)
        #expect(d.rejected.listed.count == Rejections.maxListed)
    }

    @Test("what is decoded is what the write-ahead log replays: IngestEncoder then IngestDecoder give the same points")
    func roundTrip() throws {
        let text = """
            cpu,host=a,z=1,a=2 f=0.1,i=-9007199254740993i,u=12345678901234567890u,s="line\\nbreak \\"q\\" \u{1}",b=f 1700000000123456789
            m,host=b,session_id=s-1 f=-0.0 1
            m,host=b f=1e-300 999999999999999
            m,host=b f=5e300 253402300799999999
            m,host=b f=3 253402300799999
            m,host=b f=4
            """
        for precision in [LineProtocol.Precision.nanoseconds, .microseconds, .milliseconds] {
            let d = try lp(text, .init(precision: precision))
            let body = IngestEncoder.body(d.points)
            let back = try decode(String(decoding: body, as: UTF8.self))
            #expect(back.points == d.points, "\(precision)")
        }
    }

    @Test("exact timestamps: every microsecond up to 2242, whole milliseconds after, survive the JSON form")
    func exactTimestamps() throws {
        let samples: [Int64] = [
            0, 1, 999_999, 1_000_000, 999_999_999_999_999, 1_000_000_000_000_000, 1_700_000_000_123_456,
            Timestamp.exactMicrosecondLimit - 1, Timestamp.exactMicrosecondLimit + 1, Timestamp.validMicros.upperBound - 1,
        ]
        for us in samples {
            let t = Timestamp.representableOnTheWire(us)
            #expect(abs(t - us) < 1_000)
            var w = JSONWriter()
            w.raw("{\"points\":[{\"metric\":\"m\",\"value\":1,\"source_id\":\"a\",\"timestamp\":")
            w.exactTimestamp(t)
            w.raw("}]}")
            #expect(try decode(w.string).points[0].timestamp == t, "\(us)")
        }
    }
}
