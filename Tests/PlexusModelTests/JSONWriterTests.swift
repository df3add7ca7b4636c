import PlexusModel
import Testing

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
