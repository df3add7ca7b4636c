/// A telemetry value: one of the five value types of the Plexus API.
///
/// Objects and arrays are kept as their validated JSON text, so the server stores and
/// returns them exactly as they were sent without building a tree for every point
/// (a 10,000-sample waveform stays one string). Build them from Swift literals with
/// ``PlexusValue/init(dictionaryLiteral:)`` and ``PlexusValue/init(arrayLiteral:)``.
public enum PlexusValue: Sendable, Hashable {
    /// A finite number. The only type that is aggregated into rollups.
    case number(Double)
    case string(String)
    case bool(Bool)
    /// The JSON text of an object, e.g. `{"x":1.2,"y":3.4}`.
    case object(JSONText)
    /// The JSON text of an array, e.g. `[1.0,2.0,3.0]`.
    case array(JSONText)

    /// The stable name of the type, as used in storage and in docs.
    public var kind: Kind {
        switch self {
        case .number: .number
        case .string: .string
        case .bool: .bool
        case .object: .object
        case .array: .array
        }
    }

    public enum Kind: UInt8, Sendable, Hashable, CaseIterable {
        case number = 0
        case string = 1
        case bool = 2
        case object = 3
        case array = 4
    }

    /// The value rendered as a JSON value (numbers in shortest round-trip form).
    public var jsonText: String {
        var out = JSONWriter()
        out.write(self)
        return out.string
    }
}

/// Validated JSON text (an object or an array), kept verbatim.
public struct JSONText: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    /// Wraps text that the caller has already validated as one JSON value.
    public init(unchecked text: String) { self.text = text }
    public var description: String { text }
}

extension PlexusValue: ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByStringLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: PlexusValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, PlexusValue)...) { self = .object(elements) }

    /// An array value built from elements.
    public static func array(_ elements: [PlexusValue]) -> PlexusValue {
        var out = JSONWriter()
        out.raw("[")
        out.list(elements) { w, e in w.write(e) }
        out.raw("]")
        return .array(JSONText(unchecked: out.string))
    }

    /// An object value built from ordered fields.
    public static func object(_ fields: [(String, PlexusValue)]) -> PlexusValue {
        var out = JSONWriter()
        out.raw("{")
        out.list(fields) { w, kv in
            w.string(kv.0)
            w.raw(":")
            w.write(kv.1)
        }
        out.raw("}")
        return .object(JSONText(unchecked: out.string))
    }

    /// A numeric array (a waveform) without going through `PlexusValue` per sample.
    public static func waveform(_ samples: [Double]) -> PlexusValue {
        var out = JSONWriter()
        out.raw("[")
        out.list(samples) { w, s in w.number(s) }
        out.raw("]")
        return .array(JSONText(unchecked: out.string))
    }
}
