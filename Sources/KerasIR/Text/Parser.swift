/// A parse error with its line and column (1-based).
public struct ParseError: Error, CustomStringConvertible, Equatable {
    public var line: Int
    public var column: Int
    public var message: String
    public init(line: Int, column: Int, message: String) {
        self.line = line
        self.column = column
        self.message = abbreviated(message, limit: 2000)  // messages quote tokens of any length
    }
    public var description: String { "\(line):\(column): \(message)" }
}

private enum TokenKind: Equatable {
    case word(String)      // op names, dtypes, keywords, attribute keys
    case global(String)    // @name
    case local(String)     // %name
    case int(Int)
    case float(Float)
    case string(String)
    case comment(String)   // "# ..." to the end of the line
    case punct(String)     // ( ) { } [ ] , : = -> ?
    case end
}

private struct Token {
    var kind: TokenKind
    var line: Int
    var column: Int
}

private struct Lexer {
    let chars: [Character]
    var i = 0, line = 1, col = 1

    init(_ text: String) { chars = Array(text) }

    mutating func advance() -> Character {
        let c = chars[i]
        i += 1
        if c == "\n" { line += 1; col = 1 } else { col += 1 }
        return c
    }

    static func isNameChar(_ c: Character) -> Bool {
        c.isLetter || c.isNumber || c == "_" || c == "." || c == "-" || c == "/"
    }

    mutating func tokens() throws -> [Token] {
        var out: [Token] = []
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { _ = advance(); continue }
            let (l, cl) = (line, col)
            func fail(_ m: String) -> ParseError { ParseError(line: l, column: cl, message: m) }
            if c == "#" {
                var s = ""
                _ = advance()
                while i < chars.count && chars[i] != "\n" { s.append(advance()) }
                out.append(Token(kind: .comment(s.trimmingWhitespace()), line: l, column: cl))
                continue
            }
            if c == "@" || c == "%" {
                _ = advance()
                var s = ""
                while i < chars.count && Lexer.isNameChar(chars[i]) { s.append(advance()) }
                if s.isEmpty { throw fail("expected a name after '\(c)'") }
                out.append(Token(kind: c == "@" ? .global(s) : .local(s), line: l, column: cl))
                continue
            }
            if c == "\"" {
                _ = advance()
                var s = ""
                while true {
                    guard i < chars.count, chars[i] != "\n" else { throw fail("unterminated string") }
                    let d = advance()
                    if d == "\"" { break }
                    if d == "\\" {
                        guard i < chars.count else { throw fail("unterminated string") }
                        let e = advance()
                        switch e {
                        case "n": s.append("\n")
                        case "t": s.append("\t")
                        case "r": s.append("\r")
                        case "u":
                            // \uXXXX: the other control characters the printer escapes.
                            guard i + 4 <= chars.count, let v = UInt32(String(chars[i..<i + 4]), radix: 16), let u = Unicode.Scalar(v) else {
                                throw fail("bad \\u escape in a string")
                            }
                            for _ in 0..<4 { _ = advance() }
                            s.unicodeScalars.append(u)
                        default: s.append(e)
                        }
                    } else { s.append(d) }
                }
                out.append(Token(kind: .string(s), line: l, column: cl))
                continue
            }
            if c == "-" && i + 1 < chars.count && chars[i + 1] == ">" {
                _ = advance(); _ = advance()
                out.append(Token(kind: .punct("->"), line: l, column: cl))
                continue
            }
            if c.isNumber || ((c == "-" || c == "+") && i + 1 < chars.count && (chars[i + 1].isNumber || chars[i + 1] == "i" || chars[i + 1] == "n")) {
                var s = String(advance())
                while i < chars.count && (chars[i].isLetter || chars[i].isNumber || chars[i] == "." || chars[i] == "+" || chars[i] == "-") {
                    // a '-' only continues a number as an exponent sign
                    if (chars[i] == "-" || chars[i] == "+"), let last = s.last, last != "e" && last != "E" { break }
                    s.append(advance())
                }
                out.append(Token(kind: try number(s, fail), line: l, column: cl))
                continue
            }
            if c.isLetter || c == "_" {
                var s = ""
                while i < chars.count && (chars[i].isLetter || chars[i].isNumber || chars[i] == "_") { s.append(advance()) }
                if s == "inf" || s == "nan" {
                    out.append(Token(kind: .float(s == "inf" ? .infinity : .nan), line: l, column: cl))
                } else {
                    out.append(Token(kind: .word(s), line: l, column: cl))
                }
                continue
            }
            if "(){}[],:=?".contains(c) {
                _ = advance()
                out.append(Token(kind: .punct(String(c)), line: l, column: cl))
                continue
            }
            throw fail("unexpected character '\(c)'")
        }
        out.append(Token(kind: .end, line: line, column: col))
        return out
    }

    func number(_ s: String, _ fail: (String) -> ParseError) throws -> TokenKind {
        if s == "-inf" { return .float(-.infinity) }
        if s == "+inf" { return .float(.infinity) }
        if s.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) || s.hasSuffix("nan") {
            guard let f = Float(s) else { throw fail("bad number '\(s)'") }
            return .float(f)
        }
        guard let v = Int(s) else { throw fail("bad number '\(s)'") }
        return .int(v)
    }
}

private extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}

/// Reads the dump notation back into a graph, re-running shape inference on
/// every node and checking it against the written type.
public struct GraphParser {
    private var tokens: [Token]
    private var p = 0
    private let registry: OpRegistry

    public static func parse(_ text: String, registry: OpRegistry = .standard) throws -> Graph {
        var lexer = Lexer(text)
        var parser = GraphParser(tokens: try lexer.tokens(), registry: registry)
        return try parser.parseGraph()
    }

    private init(tokens: [Token], registry: OpRegistry) {
        // Whole-line comments are skipped; a comment on a node's line names its layer.
        self.tokens = tokens
        self.registry = registry
    }

    private var tok: Token { tokens[p] }

    private func fail(_ m: String, _ t: Token? = nil) -> ParseError {
        let t = t ?? tok
        return ParseError(line: t.line, column: t.column, message: m)
    }

    private func describe(_ k: TokenKind) -> String {
        switch k {
        case .word(let w): return "'\(w)'"
        case .global(let s): return "'@\(s)'"
        case .local(let s): return "'%\(s)'"
        case .int(let v): return "'\(v)'"
        case .float(let v): return "'\(formatFloat(v))'"
        case .string(let s): return "\"\(abbreviated(s, limit: 80))\""
        case .comment: return "a comment"
        case .punct(let s): return "'\(s)'"
        case .end: return "the end of the text"
        }
    }

    private mutating func skipComments() {
        while case .comment = tok.kind { p += 1 }
    }

    private mutating func next() -> Token {
        skipComments()
        let t = tok
        p += 1
        return t
    }

    private mutating func expect(_ punct: String) throws {
        skipComments()
        guard tok.kind == .punct(punct) else { throw fail("expected '\(punct)', found \(describe(tok.kind))") }
        p += 1
    }

    private mutating func accept(_ punct: String) -> Bool {
        skipComments()
        if tok.kind == .punct(punct) { p += 1; return true }
        return false
    }

    private mutating func word() throws -> String {
        let t = next()
        guard case .word(let w) = t.kind else { throw fail("expected a name, found \(describe(t.kind))", t) }
        return w
    }

    private mutating func local() throws -> (String, Token) {
        let t = next()
        guard case .local(let s) = t.kind else { throw fail("expected a %value, found \(describe(t.kind))", t) }
        return (s, t)
    }

    private mutating func parseType() throws -> TensorType {
        let t = next()
        guard case .word(let w) = t.kind, let dt = DType(rawValue: w) else {
            throw fail("expected a type such as f32[?,784], found \(describe(t.kind))", t)
        }
        try expect("[")
        var dims: [Int] = []
        if !accept("]") {
            repeat {
                let d = next()
                switch d.kind {
                case .punct("?"): dims.append(TensorType.unknown)
                case .int(let v) where v >= 0 && v <= TensorType.maxDimension: dims.append(v)
                default: throw fail("expected a dimension or '?', found \(describe(d.kind))", d)
                }
            } while accept(",")
            try expect("]")
        }
        let type = TensorType(dt, dims)
        do { try type.checkSize() } catch let e as ShapeError { throw fail(e.message, t) }
        return type
    }

    private mutating func parseAttrValue() throws -> AttrValue {
        let t = next()
        switch t.kind {
        case .int(let v): return .int(v)
        case .float(let v): return .float(v)
        case .string(let s): return .string(s)
        case .word("true"): return .bool(true)
        case .word("false"): return .bool(false)
        case .punct("["):
            var ints: [Int] = [], floats: [Float] = [], isFloat = false
            if accept("]") { return .ints([]) }
            repeat {
                let e = next()
                switch e.kind {
                case .int(let v): ints.append(v); floats.append(Float(v))
                case .float(let v): isFloat = true; floats.append(v)
                default: throw fail("expected a number in the list, found \(describe(e.kind))", e)
                }
            } while accept(",")
            try expect("]")
            return isFloat ? .floats(floats) : .ints(ints)
        default:
            throw fail("expected an attribute value, found \(describe(t.kind))", t)
        }
    }

    private mutating func parseAttrs() throws -> Attributes {
        var attrs = Attributes()
        if accept("}") { return attrs }
        repeat {
            let keyTok = tok
            let key = try word()
            try expect("=")
            if attrs[key] != nil { throw fail("attribute '\(key)' is given twice", keyTok) }
            attrs[key] = try parseAttrValue()
        } while accept(",")
        try expect("}")
        return attrs
    }

    private mutating func parseGraph() throws -> Graph {
        guard try word() == "graph" else { throw fail("expected 'graph'", tokens[max(p - 1, 0)]) }
        let nameTok = next()
        guard case .global(let name) = nameTok.kind else { throw fail("expected @name after 'graph'", nameTok) }
        let b = GraphBuilder(name: name, registry: registry)
        var env: [String: Value] = [:]

        func define(_ n: String, _ v: Value, _ t: Token) throws {
            guard env[n] == nil else { throw fail("%\(n) is defined twice", t) }
            env[n] = v
        }

        try expect("(")
        if !accept(")") {
            repeat {
                let (argName, t) = try local()
                try expect(":")
                let type = try parseType()
                skipComments()
                var isParam = false
                if tok.kind == .word("param") { p += 1; isParam = true }
                do {
                    let v = isParam ? try b.parameter(argName, type) : try b.input(argName, type)
                    try define(argName, v, t)
                } catch let e as IRError { throw fail(e.message, t) }
            } while accept(",")
            try expect(")")
        }
        var declaredOutputs: [TensorType]? = nil
        if accept("->") {
            try expect("(")
            var types: [TensorType] = []
            if !accept(")") {
                repeat { types.append(try parseType()) } while accept(",")
                try expect(")")
            }
            declaredOutputs = types
        }
        try expect("{")
        while true {
            skipComments()
            if tok.kind == .word("return") {
                let retTok = next()
                var outs: [Value] = []
                skipComments()
                if case .local = tok.kind {
                    repeat {
                        let (n, t) = try local()
                        guard let v = env[n] else { throw fail("unknown value %\(n)", t) }
                        outs.append(v)
                    } while accept(",")
                }
                try expect("}")
                skipComments()
                guard tok.kind == .end else { throw fail("unexpected \(describe(tok.kind)) after the graph") }
                if let declaredOutputs {
                    let got = outs.map { b.type(of: $0) }
                    guard got == declaredOutputs else {
                        throw fail("the header declares results (\(declaredOutputs.map(\.description).joined(separator: ", "))) but return gives (\(got.map(\.description).joined(separator: ", ")))", retTok)
                    }
                }
                b.setOutputs(outs)
                return b.graph
            }
            let (resultName, resultTok) = try local()
            try expect("=")
            let opTok = tok
            let op = try word()
            guard registry[op] != nil else { throw fail("unknown op '\(op)'", opTok) }
            var inputs: [Value] = []
            if accept("(") {
                if !accept(")") {
                    repeat {
                        let (n, t) = try local()
                        guard let v = env[n] else { throw fail("unknown value %\(n)", t) }
                        inputs.append(v)
                    } while accept(",")
                    try expect(")")
                }
            }
            var attrs = Attributes()
            if accept("{") { attrs = try parseAttrs() }
            try expect(":")
            let type = try parseType()
            // A comment on the same line names the layer.
            var layer: String? = nil
            if case .comment(let c) = tok.kind, tok.line == opTok.line {
                layer = c.isEmpty ? nil : c
                p += 1
            }
            b.currentLayer = layer
            let named = resultName.allSatisfy(\.isNumber) ? nil : resultName
            let v: Value
            do {
                v = try b.emit(op, inputs, attrs, declared: type, name: named)
            } catch let e as IRError {
                throw fail(e.message, opTok)
            }
            if named != nil && b.graph[v].name != named {
                throw fail("%\(resultName) is defined twice", resultTok)
            }
            let inferred = b.type(of: v)
            guard inferred == type else {
                throw fail("%\(resultName) is written as \(type) but \(op) gives \(inferred)", opTok)
            }
            try define(resultName, v, resultTok)
        }
    }
}
