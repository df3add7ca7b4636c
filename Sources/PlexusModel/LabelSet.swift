/// The labels other protocols name a point with (line protocol's tags, Prometheus'
/// labels), turned into the point's source, session and tags by one rule for all of them.
public enum LabelSet {
    /// Resolves `labels` (the metric name already taken out): sorted; no empty or repeated
    /// names; names and values at most ``Limits/maxTagBytes`` without control characters;
    /// the source from the first of `sourceLabels` present (made a source id by
    /// ``Identifier/sourceID(fromLabel:)``, and not kept), else `defaultSource`;
    /// `session_id` as the session; at most ``Limits/maxTags`` left. `noun` ("tag",
    /// "label") words the refusal, which never repeats a value.
    public static func resolve(
        _ labels: [Tag], sourceLabels: [String], defaultSource: String?, noun: String
    ) -> Result<(source: String, session: String?, tags: [Tag]), Refusal> {
        var tags = labels.sorted()
        if tags.first?.key.isEmpty == true { return .failure(Refusal("empty \(noun) name")) }
        for k in tags.indices.dropFirst() where tags[k].key == tags[k - 1].key {
            return .failure(Refusal("duplicate \(noun) name"))
        }
        for t in tags {
            guard t.key.utf8.count <= Limits.maxTagBytes, t.value.utf8.count <= Limits.maxTagBytes else {
                return .failure(Refusal("\(noun) name or value longer than \(Limits.maxTagBytes) bytes"))
            }
            guard !Identifier.hasControlCharacters(t.key), !Identifier.hasControlCharacters(t.value) else {
                return .failure(Refusal("control character in a \(noun)"))
            }
        }
        var source = defaultSource
        if let name = sourceLabels.first(where: { name in tags.contains { $0.key == name } }),
            let k = tags.firstIndex(where: { $0.key == name })
        {
            guard let id = Identifier.sourceID(fromLabel: tags[k].value) else {
                return .failure(Refusal("\(noun) '\(tags[k].key)' names the source and has no letter or digit"))
            }
            source = id
            tags.remove(at: k)
        }
        guard let source else {
            return .failure(Refusal("no source: add a \(sourceLabels.map { "'\($0)'" }.joined(separator: " or ")) \(noun)"))
        }
        var session: String?
        if let k = tags.firstIndex(where: { $0.key == "session_id" }) { session = tags.remove(at: k).value }
        guard tags.count <= Limits.maxTags else {
            return .failure(Refusal("more than \(Limits.maxTags) \(noun)s besides the source"))
        }
        return .success((source, session, tags))
    }

    /// Why a label set was refused.
    public struct Refusal: Error, Sendable, Equatable {
        public var reason: String
        public init(_ reason: String) { self.reason = reason }
    }
}

/// The lines or series of a request that were refused: the first ``maxListed`` with their
/// reasons, and how many in all.
public struct Rejections: Sendable, Equatable {
    public struct Item: Sendable, Equatable, CustomStringConvertible {
        /// "line" (1-based) or "series" (0-based).
        public var unit: String
        public var position: Int
        public var reason: String

        public init(unit: String, position: Int, reason: String) {
            self.unit = unit
            self.position = position
            self.reason = reason
        }

        public var description: String { "\(unit) \(position): \(reason)" }
    }

    public static let maxListed = 100
    public private(set) var listed: [Item] = []
    public private(set) var count = 0

    public init() {}

    mutating func add(_ item: Item) {
        count += 1
        if listed.count < Self.maxListed { listed.append(item) }
    }

    /// The first ten, for a reply: `line 3: …; line 7: …; …`.
    public var summary: String {
        listed.prefix(10).map(\.description).joined(separator: "; ") + (count > 10 ? "; …" : "")
    }
}
