import Testing

@testable import PlexusModel

@Suite("JSON writer")
struct JSONWriterTests {
    @Test("strings round-trip through the decoder", arguments: ["plain", "quote \" back \\ slash", "ctrl \u{01}\u{1F}\t\n\r", "ünï 🚀", ""])
    func stringRoundTrip(_ s: String) throws {
        var w = JSONWriter()
        w.string(s)
        #expect(PlexusValue(jsonText: w.string) == .string(s))
    }

    @Test(
        "numbers: integers without a fraction, shortest round-trip otherwise",
        arguments: [(72.5, "72.5"), (-40, "-40"), (0, "0"), (1e21, "1e+21"), (0.1, "0.1"), (1_699_900_000_123, "1699900000123")])
    func numbers(_ d: Double, _ text: String) {
        var w = JSONWriter()
        w.number(d)
        #expect(w.string == text)
    }

    @Test("a number that is not whole is written as Double.description writes it, whatever its digits and size")
    func numbersAsDescription() {
        var rng = SystemRandomNumberGenerator()
        var samples: [Double] = [
            0.0001, 0.00012, 0.00009, 1e-5, 0.1 + 0.2, 21.37, -21.37, 0.05, 100.5, 999_999_999_999_999.5, 123_456_789.123_4,
        ]
        for _ in 0..<50_000 {
            let digits = Int.random(in: 0...17, using: &rng)
            let m = Int64.random(in: -(1 << 53)...(1 << 53), using: &rng) >> Int64.random(in: 0...52, using: &rng)
            samples.append(Double(m) / (0..<digits).reduce(1.0) { r, _ in r * 10 })
            samples.append(Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &rng)))
        }
        var fast = 0
        for d in samples where d.isFinite && d != d.rounded(.towardZero) {
            var w = JSONWriter()
            w.number(d)
            #expect(w.string == d.description, "\(d.bitPattern)")
            var probe = JSONWriter()
            if probe.decimal(d) { fast += 1 }
        }
        // Sensor readings take the path that makes no String.
        var w = JSONWriter()
        #expect(w.decimal(21.37) && w.decimal(-0.05) && w.string == "21.37-0.05")
        #expect(fast > 20_000, "\(fast) of the samples written without description")
    }

    @Test("literals build the value types")
    func literals() {
        let v: PlexusValue = ["x": 1.2, "y": 3.4]
        #expect(v.jsonText == #"{"x":1.2,"y":3.4}"#)
        let a: PlexusValue = [1, 2.5, "s", true]
        #expect(a.jsonText == #"[1,2.5,"s",true]"#)
        #expect(v.numericFields?.map(\.1) == [1.2, 3.4])
    }

    @Test("PlexusValue(jsonText:) reads JSON only: no NaN or Infinity, also not inside objects and arrays")
    func strictJSONText() {
        for text in ["NaN", "-Infinity", "Infinity", "1e999", "[1, NaN]", #"{"a": Infinity}"#, "[1,", "01", "nul", ""] {
            #expect(PlexusValue(jsonText: text) == nil, "\(text)")
        }
        #expect(PlexusValue(jsonText: " 42 ") == .number(42))
        #expect(PlexusValue(jsonText: "[1, 2]") == .array(JSONText(unchecked: "[1, 2]")))
    }
}
