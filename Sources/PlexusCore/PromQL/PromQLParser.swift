import PlexusModel

extension PromQL {
    /// Parses an instant vector selector: `name`, `name{matchers}`, `{matchers}` or
    /// `{"quoted.name", matchers}`, then optionally `offset <duration>`. Matchers are
    /// `label op "value"` with `=`, `!=`, `=~`, `!~`; labels may be quoted; values take
    /// double, single or back quotes. At least one matcher must not match the empty string,
    /// as in Prometheus. Anything else is refused, naming what is not supported.
    public static func parseSelector(_ text: String, allowOffset: Bool = true) throws(BadData) -> Selector {
        var p = SelectorParser(Array(text.utf8))
        let (selector, _) = try p.selector(allowOffset: allowOffset, inFunction: false)
        try checkNonEmpty(selector)
        return selector
    }

    /// Parses a query: an instant vector selector (``parseSelector(_:allowOffset:)``) or
    /// `<avg|min|max|sum|count>_over_time(<selector>[<duration>] [offset <duration>])`.
    public static func parseQuery(_ text: String) throws(BadData) -> Query {
        var p = SelectorParser(Array(text.utf8))
        p.skipSpace()
        let save = p.i
        if let name = p.identifier() {
            p.skipSpace()
            if p.i < p.b.count, p.b[p.i] == UInt8(ascii: "(") {
                guard let function = OverTime(rawValue: name) else {
                    throw BadData(
                        "unsupported PromQL: function or aggregation \(name)(): only vector selectors and avg_over_time, min_over_time, max_over_time, sum_over_time, count_over_time are supported so far"
                    )
                }
                p.i += 1
                let (selector, range) = try p.selector(allowOffset: true, inFunction: true)
                guard let range, range > 0 else { throw BadData("\(name) expects a range vector: \(name)(metric[5m])") }
                try checkNonEmpty(selector)
                return Query(selector: selector, function: function, range: range)
            }
        }
        p.i = save
        return Query(selector: try parseSelector(text))
    }

    static func checkNonEmpty(_ selector: Selector) throws(BadData) {
        guard selector.matchers.contains(where: { !$0.matches("", try? Regex<AnyRegexOutput>($0.value)) }) else {
            throw BadData("vector selector must contain at least one non-empty matcher")
        }
    }

    /// A Prometheus duration (`90s`, `1h30m`, `2d`, `500ms`) in microseconds.
    public static func duration(_ text: String) -> Int64? {
        var p = SelectorParser(Array(text.utf8))
        guard let d = try? p.duration(), p.atEnd else { return nil }
        return d
    }
}

struct SelectorParser {
    let b: [UInt8]
    var i = 0

    init(_ bytes: [UInt8]) { b = bytes }

    var atEnd: Bool { i >= b.count }

    mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
    }

    static func isNameStart(_ c: UInt8) -> Bool { (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) || c == 0x5F || c == 0x3A }
    static func isNameChar(_ c: UInt8) -> Bool { isNameStart(c) || (c >= 0x30 && c <= 0x39) }

    mutating func identifier() -> String? {
        guard i < b.count, Self.isNameStart(b[i]) else { return nil }
        let start = i
        while i < b.count, Self.isNameChar(b[i]) { i += 1 }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    /// A selector, with a range (`[5m]`) only `inFunction`, where it then ends at `)`.
    mutating func selector(allowOffset: Bool, inFunction: Bool) throws(PromQL.BadData) -> (PromQL.Selector, Int64?) {
        skipSpace()
        var matchers: [PromQL.Matcher] = []
        if let name = identifier() {
            if ["offset", "by", "without", "bool", "on", "ignoring"].contains(name) { throw unsupported() }
            skipSpace()
            if i < b.count, b[i] == UInt8(ascii: "(") {
                throw PromQL.BadData("unsupported PromQL: function or aggregation \(name)(): only vector selectors are supported so far")
            }
            matchers.append(PromQL.Matcher("__name__", .equal, name))
        }
        if i < b.count, b[i] == UInt8(ascii: "{") {
            i += 1
            try braces(&matchers)
        }
        guard !matchers.isEmpty else { throw unsupported() }
        skipSpace()
        var offset: Int64 = 0
        var range: Int64?
        if i < b.count, b[i] == UInt8(ascii: "[") {
            guard inFunction else { throw PromQL.BadData("unsupported PromQL: a range vector selector ([…]) needs a function around it") }
            i += 1
            skipSpace()
            range = try duration()
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: "]") else {
                throw PromQL.BadData("expected ] after the range (subqueries are not supported)")
            }
            i += 1
            skipSpace()
        }
        let save = i
        if let word = identifier(), word == "offset" {
            guard allowOffset else { throw unsupported() }
            skipSpace()
            var negative = false
            if i < b.count, b[i] == UInt8(ascii: "-") {
                negative = true
                i += 1
            }
            guard let d = try? duration() else { throw PromQL.BadData("offset needs a duration, e.g. offset 5m") }
            offset = negative ? -d : d
            skipSpace()
        } else {
            i = save
        }
        if inFunction {
            guard i < b.count, b[i] == UInt8(ascii: ")") else { throw unsupported() }
            i += 1
            skipSpace()
        }
        guard atEnd else { throw unsupported() }
        return (PromQL.Selector(matchers: matchers, offset: offset), range)
    }

    func unsupported() -> PromQL.BadData {
        PromQL.BadData(
            "unsupported PromQL: only vector selectors (name{label=\"value\"}, =, !=, =~, !~, offset) and the *_over_time functions (avg, min, max, sum, count) are supported so far; other functions, operators and aggregations are not"
        )
    }

    mutating func braces(_ matchers: inout [PromQL.Matcher]) throws(PromQL.BadData) {
        while true {
            skipSpace()
            guard i < b.count else { throw PromQL.BadData("unexpected end of input inside braces") }
            if b[i] == UInt8(ascii: "}") {
                i += 1
                return
            }
            let label: String
            var quotedLabel = false
            if b[i] == UInt8(ascii: "\"") || b[i] == UInt8(ascii: "'") || b[i] == UInt8(ascii: "`") {
                label = try quoted()
                quotedLabel = true
            } else if let name = identifier() {
                label = name
            } else {
                throw PromQL.BadData("expected a label name in braces")
            }
            skipSpace()
            if quotedLabel, i < b.count, b[i] == UInt8(ascii: ",") || b[i] == UInt8(ascii: "}") {
                // `{"motor.rpm", …}`: a quoted metric name on its own.
                guard !matchers.contains(where: { $0.label == "__name__" }) else { throw PromQL.BadData("metric name given twice") }
                matchers.append(PromQL.Matcher("__name__", .equal, label))
            } else {
                let op = try matchOp()
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: "\"") || b[i] == UInt8(ascii: "'") || b[i] == UInt8(ascii: "`") else {
                    throw PromQL.BadData("expected a quoted label value for \(label)")
                }
                matchers.append(PromQL.Matcher(label, op, try quoted()))
            }
            skipSpace()
            if i < b.count, b[i] == UInt8(ascii: ",") { i += 1 }
        }
    }

    mutating func matchOp() throws(PromQL.BadData) -> PromQL.Matcher.Op {
        func at(_ s: String) -> Bool { b[i...].starts(with: s.utf8) }
        for op in [PromQL.Matcher.Op.matches, .notMatches, .notEqual, .equal] where at(op.rawValue) {
            i += op.rawValue.utf8.count
            return op
        }
        throw PromQL.BadData("expected =, !=, =~ or !~ in a label matcher")
    }

    /// A string in double, single or back quotes; backslash escapes in the first two.
    mutating func quoted() throws(PromQL.BadData) -> String {
        let q = b[i]
        i += 1
        var out: [UInt8] = []
        while i < b.count {
            let c = b[i]
            i += 1
            if c == q { return String(decoding: out, as: UTF8.self) }
            if c == UInt8(ascii: "\\"), q != UInt8(ascii: "`"), i < b.count {
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"): out.append(e)
                default:
                    out.append(c)
                    out.append(e)
                }
                continue
            }
            out.append(c)
        }
        throw PromQL.BadData("unterminated quoted string")
    }

    /// `1h30m`: units y, w, d, h, m, s, ms, in decreasing order, each at most once.
    mutating func duration() throws(PromQL.BadData) -> Int64 {
        let units: [(String, Int64)] = [
            ("y", 365 * 86_400_000_000), ("w", 7 * 86_400_000_000), ("d", 86_400_000_000), ("h", 3_600_000_000),
            ("ms", 1_000), ("m", 60_000_000), ("s", 1_000_000),
        ]
        var total: Int64 = 0
        var any = false
        while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
            var n: Int64 = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                let (m, o1) = n.multipliedReportingOverflow(by: 10)
                let (s, o2) = m.addingReportingOverflow(Int64(b[i] - 0x30))
                guard !o1, !o2 else { throw PromQL.BadData("duration out of range") }
                n = s
                i += 1
            }
            guard let (unit, scale) = units.first(where: { b[i...].starts(with: $0.0.utf8) }) else {
                throw PromQL.BadData("duration needs a unit (ms, s, m, h, d, w, y)")
            }
            i += unit.utf8.count
            let (v, o1) = n.multipliedReportingOverflow(by: scale)
            let (t, o2) = total.addingReportingOverflow(v)
            guard !o1, !o2, t <= Timestamp.validMicros.upperBound else { throw PromQL.BadData("duration out of range") }
            total = t
            any = true
        }
        guard any else { throw PromQL.BadData("expected a duration") }
        return total
    }
}
