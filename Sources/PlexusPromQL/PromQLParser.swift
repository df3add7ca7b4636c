import PlexusModel

extension PromQL {
    /// The longest duration accepted: Int64 nanoseconds, as in Prometheus (about 292 years).
    public static let maxDuration: Int64 = Int64.max / 1_000

    /// The longest query text accepted.
    public static let maxQueryBytes = 64 * 1024
    /// The deepest nesting of parentheses, calls and operators accepted.
    static let maxDepth = 64
    /// The most operators, calls and aggregations in one query: evaluation recurses
    /// through them, and no dashboard query comes near.
    static let maxNodes = 256

    /// Parses an expression of the supported subset (see ``PromQL``). What is not
    /// supported is refused naming it; malformed input is refused saying where. A range
    /// vector (`x[5m]`) is an expression only for an instant query, which returns its samples.
    public static func parse(_ text: String) throws(BadData) -> Expr {
        guard text.utf8.count <= maxQueryBytes else { throw BadData("the query is longer than \(maxQueryBytes) bytes") }
        var p = Parser(Array(text.utf8))
        let e = try p.expression(0, depth: 0)
        p.skipSpace()
        guard p.atEnd else { throw p.unexpected() }
        guard e.type != .string else { throw BadData("unsupported PromQL: a string as the result of a query") }
        return e
    }

    /// Parses one vector selector (`match[]`): `name`, `name{matchers}`, `{matchers}` or
    /// `{"quoted.name", matchers}`, optionally with `offset <duration>`. At least one
    /// matcher must not match the empty string, as in Prometheus.
    public static func parseSelector(_ text: String, allowOffset: Bool = true) throws(BadData) -> Selector {
        guard text.utf8.count <= maxQueryBytes else { throw BadData("the selector is longer than \(maxQueryBytes) bytes") }
        var p = Parser(Array(text.utf8))
        p.skipSpace()
        let name = p.identifier()
        if let name, Parser.keywords.contains(name) || Aggregation(rawValue: name) != nil { throw p.unexpected(name) }
        let e = try p.selector(name: name)
        p.skipSpace()
        guard p.atEnd, case .vector(let selector) = e else { throw BadData("expected a vector selector, e.g. up{job=\"node\"}") }
        guard allowOffset || selector.offset == 0 else { throw BadData("offset is not accepted here") }
        return selector
    }

    static func checkNonEmpty(_ selector: Selector) throws(BadData) {
        guard selector.matchers.contains(where: { !$0.matches("", try? regex($0.value)) }) else {
            throw BadData("vector selector must contain at least one non-empty matcher")
        }
    }

    /// A Prometheus duration (`90s`, `1h30m`, `2d`, `500ms`) in microseconds.
    public static func duration(_ text: String) -> Int64? {
        var p = Parser(Array(text.utf8))
        guard let d = try? p.duration(), p.atEnd else { return nil }
        return d
    }
}

/// A recursive-descent parser with precedence climbing for binary operators, over bytes.
struct Parser {
    let b: [UInt8]
    var i = 0
    /// Operators, calls and aggregations so far (``PromQL/maxNodes``).
    var nodes = 0

    init(_ bytes: [UInt8]) { b = bytes }

    var atEnd: Bool { i >= b.count }
    func peek(_ c: Character) -> Bool { i < b.count && b[i] == c.asciiValue! }

    static let keywords: Set<String> = [
        "offset", "by", "without", "bool", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "atan2",
    ]

    mutating func skipSpace() {
        while i < b.count {
            if b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D {
                i += 1
            } else if b[i] == UInt8(ascii: "#") {  // a comment, to the end of the line
                while i < b.count, b[i] != 0x0A { i += 1 }
            } else {
                return
            }
        }
    }

    static func isNameStart(_ c: UInt8) -> Bool { (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) || c == 0x5F || c == 0x3A }
    static func isNameChar(_ c: UInt8) -> Bool { isNameStart(c) || (c >= 0x30 && c <= 0x39) }

    mutating func identifier() -> String? {
        guard i < b.count, Self.isNameStart(b[i]) else { return nil }
        let start = i
        while i < b.count, Self.isNameChar(b[i]) { i += 1 }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    func unexpected(_ what: String? = nil) -> PromQL.BadData {
        if let what { return PromQL.BadData("parse error at char \(i + 1): unexpected \(what)") }
        guard i < b.count else { return PromQL.BadData("parse error: unexpected end of input") }
        let rest = String(decoding: b[i...].prefix(16), as: UTF8.self)
        return PromQL.BadData("parse error at char \(i + 1): unexpected \(rest.debugDescription)")
    }

    mutating func expect(_ c: Character, _ context: String) throws(PromQL.BadData) {
        skipSpace()
        guard peek(c) else { throw PromQL.BadData("parse error at char \(i + 1): expected \"\(c)\" \(context)") }
        i += 1
    }

    // MARK: Expressions

    /// Operators binding at least as tightly as `minPrecedence`, left-associative except `^`.
    mutating func expression(_ minPrecedence: Int, depth: Int) throws(PromQL.BadData) -> PromQL.Expr {
        guard depth < PromQL.maxDepth else { throw PromQL.BadData("the query nests deeper than \(PromQL.maxDepth) levels") }
        nodes += 1
        guard nodes <= PromQL.maxNodes else {
            throw PromQL.BadData("the query has more than \(PromQL.maxNodes) operators, calls and aggregations")
        }
        var lhs = try unary(depth: depth)
        while true {
            skipSpace()
            let save = i
            guard let op = binaryOperator(), op.precedence >= minPrecedence else {
                i = save
                return lhs
            }
            let matching = try modifiers(op)
            let rhs = try expression(op == .pow ? op.precedence : op.precedence + 1, depth: depth + 1)
            lhs = try Self.binary(op, lhs, rhs, matching)
        }
    }

    mutating func binaryOperator() -> PromQL.BinaryOp? {
        guard i < b.count else { return nil }
        for op in ["==", "!=", ">=", "<="] where b[i...].starts(with: op.utf8) {
            i += 2
            return PromQL.BinaryOp(rawValue: op)
        }
        if !Self.isNameStart(b[i]), let op = PromQL.BinaryOp(rawValue: String(UnicodeScalar(b[i]))) {
            i += 1
            return op
        }
        let save = i
        if let word = identifier(), let op = PromQL.BinaryOp(rawValue: word.lowercased()) {
            return op
        }
        i = save
        return nil
    }

    /// `bool`, then `on(…)` or `ignoring(…)`; `group_left`/`group_right` are refused.
    mutating func modifiers(_ op: PromQL.BinaryOp) throws(PromQL.BadData) -> PromQL.Matching {
        var m = PromQL.Matching()
        skipSpace()
        var save = i
        if identifier()?.lowercased() == "bool" {
            guard op.isComparison else { throw PromQL.BadData("bool modifier can only be used on comparison operators") }
            m.returnBool = true
            skipSpace()
            save = i
        } else {
            i = save
        }
        if let word = identifier()?.lowercased(), word == "on" || word == "ignoring" {
            m.on = word == "on"
            m.labels = try labelList()
            skipSpace()
            save = i
            if let next = identifier()?.lowercased(), next == "group_left" || next == "group_right" {
                guard !op.isSetOperator else { throw PromQL.BadData("no grouping allowed for \"\(op.rawValue)\" operation") }
                m.cardinality = next == "group_left" ? .manyToOne : .oneToMany
                skipSpace()
                if peek("(") { m.include = try labelList() }
                if let both = m.include.first(where: { m.on && m.labels.contains($0) }) {
                    throw PromQL.BadData("label \"\(both)\" must not occur in ON and GROUP clause at once")
                }
                return m
            }
        } else {
            i = save
            if let word = identifier()?.lowercased(), word == "group_left" || word == "group_right" {
                throw PromQL.BadData("\(word) needs on(…) or ignoring(…) before it")
            }
        }
        i = save
        return m
    }

    /// Type rules of binary operators, as Prometheus' parser checks them.
    static func binary(_ op: PromQL.BinaryOp, _ l: PromQL.Expr, _ r: PromQL.Expr, _ m: PromQL.Matching) throws(PromQL.BadData)
        -> PromQL.Expr
    {
        guard l.type == .scalar || l.type == .vector, r.type == .scalar || r.type == .vector else {
            throw PromQL.BadData("binary expression must contain only scalar and instant vector types")
        }
        let scalars = l.type == .scalar && r.type == .scalar
        if op.isSetOperator, l.type == .scalar || r.type == .scalar {
            throw PromQL.BadData("set operator \(op.rawValue) not allowed in binary scalar expression")
        }
        if op.isComparison, scalars, !m.returnBool {
            throw PromQL.BadData("comparisons between scalars must use BOOL modifier")
        }
        if m.on || !m.labels.isEmpty, l.type != .vector || r.type != .vector {
            throw PromQL.BadData("vector matching only allowed between instant vectors")
        }
        return .binary(op, l, r, m)
    }

    mutating func unary(depth: Int) throws(PromQL.BadData) -> PromQL.Expr {
        skipSpace()
        if peek("-") || peek("+") {
            let minus = peek("-")
            i += 1
            let e = try expression(PromQL.BinaryOp.pow.precedence, depth: depth + 1)
            guard e.type == .scalar || e.type == .vector else {
                throw PromQL.BadData("unary expression only allowed on expressions of type scalar or instant vector")
            }
            guard minus else { return e }
            if case .number(let x) = e { return .number(-x) }
            return .negate(e)
        }
        return try primary(depth: depth)
    }

    mutating func primary(depth: Int) throws(PromQL.BadData) -> PromQL.Expr {
        skipSpace()
        guard i < b.count else { throw unexpected() }
        let c = b[i]
        if c == UInt8(ascii: "(") {
            i += 1
            let e = try expression(0, depth: depth + 1)
            try expect(")", "to close the parenthesis")
            return try subquery(of: e)
        }
        if (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: ".") { return .number(try number()) }
        if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") || c == UInt8(ascii: "`") { return .string(try quoted()) }
        if c == UInt8(ascii: "{") { return try selector(name: nil) }
        let start = i
        guard let name = identifier() else { throw unexpected() }
        switch name.lowercased() {
        case "inf": return .number(.infinity)
        case "nan": return .number(.nan)
        default: break
        }
        if Self.keywords.contains(name.lowercased()) {
            i = start
            throw unexpected(name)
        }
        if let aggregation = PromQL.Aggregation(rawValue: name.lowercased()) {
            skipSpace()
            if peek("(") || identifier().map({ ["by", "without"].contains($0.lowercased()) }) == true {
                i = start + name.utf8.count
                return try subquery(of: try aggregate(aggregation, depth: depth))
            }
            i = start + name.utf8.count
        }
        skipSpace()
        if peek("(") {
            guard let function = PromQL.Function(rawValue: name) else {
                throw PromQL.BadData(
                    "unsupported PromQL: function \(name)(); supported: \(PromQL.Function.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            i += 1
            return try subquery(of: try call(function, depth: depth))
        }
        i = start + name.utf8.count
        return try selector(name: name)
    }

    /// A float: decimal with an exponent, or hexadecimal.
    mutating func number() throws(PromQL.BadData) -> Double {
        let start = i
        if b[i...].starts(with: "0x".utf8) || b[i...].starts(with: "0X".utf8) {
            i += 2
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 || (b[i] | 0x20 >= 0x61 && b[i] | 0x20 <= 0x66) { i += 1 }
            guard let v = UInt64(String(decoding: b[(start + 2)..<i], as: UTF8.self), radix: 16) else { throw unexpected() }
            return Double(v)
        }
        while i < b.count, (b[i] >= 0x30 && b[i] <= 0x39) || b[i] == UInt8(ascii: ".") { i += 1 }
        if i < b.count, b[i] | 0x20 == UInt8(ascii: "e") {
            var j = i + 1
            if j < b.count, b[j] == UInt8(ascii: "+") || b[j] == UInt8(ascii: "-") { j += 1 }
            if j < b.count, b[j] >= 0x30, b[j] <= 0x39 {
                i = j
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            }
        }
        guard let v = Double(String(decoding: b[start..<i], as: UTF8.self)) else {
            i = start
            throw unexpected()
        }
        if i < b.count, Self.isNameStart(b[i]) {
            throw PromQL.BadData("parse error at char \(start + 1): a duration is not a number here; write seconds (300, not 5m)")
        }
        return v
    }

    /// `(label, …)` after `by`, `without`, `on` or `ignoring`.
    mutating func labelList() throws(PromQL.BadData) -> [String] {
        try expect("(", "before the label list")
        var labels: [String] = []
        while true {
            skipSpace()
            if peek(")") {
                i += 1
                return labels
            }
            if peek("\"") || peek("'") || peek("`") {
                labels.append(try quoted())
            } else if let name = identifier() {
                labels.append(name)
            } else {
                throw PromQL.BadData("parse error at char \(i + 1): expected a label name in the grouping list")
            }
            skipSpace()
            if peek(",") { i += 1 } else if !peek(")") { throw unexpected() }
        }
    }

    mutating func grouping() throws(PromQL.BadData) -> PromQL.Grouping? {
        skipSpace()
        let save = i
        guard let word = identifier()?.lowercased(), word == "by" || word == "without" else {
            i = save
            return nil
        }
        return PromQL.Grouping(without: word == "without", labels: try labelList())
    }

    /// `sum by (a) (x)`, `sum (x) by (a)`, `topk(3, x)`.
    mutating func aggregate(_ op: PromQL.Aggregation, depth: Int) throws(PromQL.BadData) -> PromQL.Expr {
        var grouping = try grouping()
        try expect("(", "after \(op.rawValue)")
        var parameter: PromQL.Expr?
        if op.hasParameter {
            let p = try expression(0, depth: depth + 1)
            guard p.type == .scalar else { throw PromQL.BadData("expected type scalar in aggregation parameter, got \(p.type.rawValue)") }
            parameter = p
            try expect(",", "after the parameter of \(op.rawValue)")
        }
        let e = try expression(0, depth: depth + 1)
        guard e.type == .vector else {
            throw PromQL.BadData("expected type instant vector in aggregation expression, got \(e.type.rawValue)")
        }
        try expect(")", "to close \(op.rawValue)(…)")
        if grouping == nil { grouping = try self.grouping() }
        return .aggregate(op, e, parameter: parameter, grouping: grouping ?? .init())
    }

    mutating func call(_ f: PromQL.Function, depth: Int) throws(PromQL.BadData) -> PromQL.Expr {
        var args: [PromQL.Expr] = []
        skipSpace()
        if peek(")") {
            i += 1
        } else {
            while true {
                args.append(try expression(0, depth: depth + 1))
                skipSpace()
                if peek(",") {
                    i += 1
                    continue
                }
                try expect(")", "to close \(f.rawValue)(…)")
                break
            }
        }
        let (types, required) = f.arguments
        guard args.count >= required, args.count <= types.count || f.isVariadic else {
            throw PromQL.BadData(
                "expected \(required == types.count ? "\(required)" : "\(required) to \(types.count)") argument(s) in call to function \(f.rawValue), got \(args.count)"
            )
        }
        for (k, a) in args.enumerated() where a.type != types[min(k, types.count - 1)] {
            let t = types[min(k, types.count - 1)]
            throw PromQL.BadData("expected type \(t.rawValue) in call to function \(f.rawValue), got \(a.type.rawValue)")
        }
        return .call(f, args)
    }

    /// A selector after its optional name: braces, then a range and an offset.
    mutating func selector(name: String?) throws(PromQL.BadData) -> PromQL.Expr {
        var matchers: [PromQL.Matcher] = []
        if let name { matchers.append(PromQL.Matcher("__name__", .equal, name)) }
        skipSpace()
        if peek("{") {
            i += 1
            try braces(&matchers)
        }
        guard !matchers.isEmpty else { throw unexpected() }
        for m in matchers where m.op == .matches || m.op == .notMatches { _ = try PromQL.regex(m.value) }
        var selector = PromQL.Selector(matchers: matchers)
        try PromQL.checkNonEmpty(selector)
        skipSpace()
        var range: Int64?
        if peek("[") {
            i += 1
            skipSpace()
            let r = try duration()
            skipSpace()
            if peek(":") {
                try PromQL.checkNonEmpty(selector)
                return try subqueryTail(of: .vector(selector), range: r)
            }
            guard peek("]") else { throw PromQL.BadData("parse error at char \(i + 1): expected ] after the range") }
            guard r > 0 else { throw PromQL.BadData("a range must be positive") }
            i += 1
            range = r
            skipSpace()
        }
        selector.offset = try offsetModifier()
        skipSpace()
        if peek("@") { throw PromQL.BadData("unsupported PromQL: the @ modifier") }
        if let range { return .matrix(selector, range: range) }
        return .vector(selector)
    }

    /// `offset 5m` (or `offset -5m`) if it comes next, else 0.
    mutating func offsetModifier() throws(PromQL.BadData) -> Int64 {
        let save = i
        guard identifier()?.lowercased() == "offset" else {
            i = save
            return 0
        }
        skipSpace()
        let negative = peek("-")
        if negative { i += 1 }
        guard let d = try? duration() else { throw PromQL.BadData("offset needs a duration, e.g. offset 5m") }
        return negative ? -d : d
    }

    /// `[range:step] offset d` after an expression, if there.
    mutating func subquery(of e: PromQL.Expr) throws(PromQL.BadData) -> PromQL.Expr {
        skipSpace()
        guard peek("[") else { return e }
        i += 1
        skipSpace()
        let range = try duration()
        skipSpace()
        guard peek(":") else { throw PromQL.BadData("a range ([5m]) only follows a vector selector; a subquery is expr[5m:1m]") }
        return try subqueryTail(of: e, range: range)
    }

    /// From the `:` of `[range:step]`: the step, `]`, an offset.
    mutating func subqueryTail(of e: PromQL.Expr, range: Int64) throws(PromQL.BadData) -> PromQL.Expr {
        guard e.type == .vector else { throw PromQL.BadData("subquery is only allowed on instant vector, got \(e.type.rawValue)") }
        guard range > 0 else { throw PromQL.BadData("a subquery's range must be positive") }
        i += 1  // ':'
        skipSpace()
        var step: Int64?
        if !peek("]") {
            let d = try duration()
            guard d > 0 else { throw PromQL.BadData("a subquery's step must be positive") }
            step = d
            skipSpace()
        }
        guard peek("]") else { throw PromQL.BadData("parse error at char \(i + 1): expected ] after the subquery's step") }
        i += 1
        skipSpace()
        let offset = try offsetModifier()
        skipSpace()
        if peek("@") { throw PromQL.BadData("unsupported PromQL: the @ modifier") }
        if peek("[") { throw PromQL.BadData("subquery is only allowed on instant vector, got range vector") }
        return .subquery(e, range: range, step: step, offset: offset)
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
                try escape(quote: q, into: &out)
                continue
            }
            out.append(c)
        }
        throw PromQL.BadData("unterminated quoted string")
    }

    /// One escape after a backslash, as PromQL's lexer reads them: the string's own quote,
    /// `\a \b \f \n \r \t \v \\`, three octal digits, `\x` and two hex digits (a byte),
    /// `\u` and four or `\U` and eight hex digits (a character). Anything else is refused.
    mutating func escape(quote q: UInt8, into out: inout [UInt8]) throws(PromQL.BadData) {
        let e = b[i]
        i += 1
        let simple: [UInt8: UInt8] = [
            UInt8(ascii: "a"): 0x07, UInt8(ascii: "b"): 0x08, UInt8(ascii: "f"): 0x0C, UInt8(ascii: "n"): 0x0A,
            UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09, UInt8(ascii: "v"): 0x0B, UInt8(ascii: "\\"): 0x5C, q: q,
        ]
        if let byte = simple[e] {
            out.append(byte)
            return
        }
        let (count, radix): (Int, Int)
        switch e {
        case UInt8(ascii: "0")...UInt8(ascii: "7"):
            (count, radix) = (3, 8)
            i -= 1
        case UInt8(ascii: "x"): (count, radix) = (2, 16)
        case UInt8(ascii: "u"): (count, radix) = (4, 16)
        case UInt8(ascii: "U"): (count, radix) = (8, 16)
        default: throw PromQL.BadData("unknown escape sequence \\\(String(UnicodeScalar(e))) in a string")
        }
        guard i + count <= b.count, let value = UInt32(String(decoding: b[i..<(i + count)], as: UTF8.self), radix: radix) else {
            throw PromQL.BadData("invalid escape sequence in a string")
        }
        i += count
        if e == UInt8(ascii: "x") || radix == 8 {
            guard value <= 255 else { throw PromQL.BadData("octal escape value > 255 in a string") }
            out.append(UInt8(value))
        } else {
            guard let scalar = Unicode.Scalar(value) else { throw PromQL.BadData("escape sequence is an invalid Unicode code point") }
            out += Array(String(Character(scalar)).utf8)
        }
    }

    /// `1h30m`: units y, w, d, h, m, s, ms, in decreasing order, each at most once.
    mutating func duration() throws(PromQL.BadData) -> Int64 {
        let units: [(String, Int64)] = [
            ("y", 365 * 86_400_000_000), ("w", 7 * 86_400_000_000), ("d", 86_400_000_000), ("h", 3_600_000_000),
            ("ms", 1_000), ("m", 60_000_000), ("s", 1_000_000),
        ]
        var total: Int64 = 0
        var any = false
        var lastScale = Int64.max  // units must come largest first, each once
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
            guard scale < lastScale else { throw PromQL.BadData("duration units must be given largest first, each once (1h30m)") }
            lastScale = scale
            let (v, o1) = n.multipliedReportingOverflow(by: scale)
            let (t, o2) = total.addingReportingOverflow(v)
            // Prometheus' durations are nanoseconds in an Int64: about 292 years at most.
            guard !o1, !o2, t <= PromQL.maxDuration else { throw PromQL.BadData("duration out of range") }
            total = t
            any = true
        }
        guard any else { throw PromQL.BadData("expected a duration") }
        return total
    }
}
