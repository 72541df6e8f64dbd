/// The YAML subset `model.to_yaml()` needs, over the JSON values configs are
/// made of: block mappings and sequences, flow sequences and mappings,
/// plain, single- and double-quoted scalars, null/true/false and numbers.
/// Anchors, aliases, tags, multi-line scalars and multiple documents are
/// errors naming the line and column.
public enum YAML {
    // MARK: emitting

    /// YAML text for `value` (a mapping at the top, as Keras writes).
    public static func emit(_ value: JSON) -> String {
        var out = ""
        switch value {
        case .object(let pairs) where !pairs.isEmpty: emitMapping(pairs, indent: 0, into: &out)
        case .array(let items) where !items.isEmpty && !isFlat(items): emitSequence(items, indent: 0, into: &out)
        default: out = inline(value) + "\n"
        }
        return out
    }

    static func isScalar(_ v: JSON) -> Bool {
        switch v {
        case .object(let p): return p.isEmpty
        case .array(let a): return a.isEmpty
        default: return true
        }
    }

    /// Sequences of scalars are written in flow style ([null, 6]).
    static func isFlat(_ items: [JSON]) -> Bool { items.allSatisfy { if case .array = $0 { return false }; if case .object(let p) = $0 { return p.isEmpty }; return true } }

    static func emitMapping(_ pairs: [(String, JSON)], indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        for (k, v) in pairs {
            out += pad + scalarText(.string(k)) + ":"
            switch v {
            case .object(let p) where !p.isEmpty:
                out += "\n"
                emitMapping(p, indent: indent + 2, into: &out)
            case .array(let a) where !a.isEmpty && !isFlat(a):
                out += "\n"
                emitSequence(a, indent: indent, into: &out)
            default:
                out += " " + inline(v) + "\n"
            }
        }
    }

    static func emitSequence(_ items: [JSON], indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        for item in items {
            switch item {
            case .object(let p) where !p.isEmpty:
                // The first key shares the dash's line; the rest line up under it.
                var body = ""
                emitMapping(p, indent: indent + 2, into: &body)
                out += pad + "- " + body.dropFirst(indent + 2)
            case .array(let a) where !a.isEmpty && !isFlat(a):
                out += pad + "-\n"
                emitSequence(a, indent: indent + 2, into: &out)
            default:
                out += pad + "- " + inline(item) + "\n"
            }
        }
    }

    /// A scalar, or a flow collection.
    static func inline(_ v: JSON) -> String {
        switch v {
        case .array(let a): return "[" + a.map(inline).joined(separator: ", ") + "]"
        case .object(let p): return "{" + p.map { scalarText(.string($0.0)) + ": " + inline($0.1) }.joined(separator: ", ") + "}"
        default: return scalarText(v)
        }
    }

    static let reserved: Set<String> = ["null", "Null", "NULL", "~", "true", "True", "TRUE", "false", "False", "FALSE",
                                        "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", ""]

    static func scalarText(_ v: JSON) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let d) where d.isNaN: return ".nan"
        case .number(let d) where d.isInfinite: return d > 0 ? ".inf" : "-.inf"
        case .string(let s):
            let plainSafe = s.unicodeScalars.allSatisfy { ($0.value >= 0x30 && $0.value <= 0x39) || ($0.value >= 0x41 && $0.value <= 0x5a)
                || ($0.value >= 0x61 && $0.value <= 0x7a) || "_./-".unicodeScalars.contains($0) }
            let first = s.unicodeScalars.first.map { !"-./0123456789".unicodeScalars.contains($0) } ?? false
            if plainSafe && first && !reserved.contains(s) { return s }
            // Double quotes with JSON's escapes cover every string.
            return JSON.string(s).serialized()
        default:
            return v.serialized()
        }
    }

    // MARK: parsing

    /// The value of a YAML document in the subset above.
    public static func parse(_ text: String) throws -> JSON {
        var p = Parser(text)
        return try p.document()
    }

    struct Line {
        var number: Int
        var indent: Int
        var text: Substring
    }

    struct Parser {
        var lines: [Line] = []
        var i = 0

        init(_ text: String) {
            for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                var s = raw
                if s.last == "\r" { s = s.dropLast() }
                let indent = s.prefix { $0 == " " }.count
                let body = stripComment(s.dropFirst(indent))
                if body.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
                lines.append(Line(number: n + 1, indent: indent, text: body))
            }
        }

        func fail(_ l: Line?, column: Int? = nil, _ message: String) -> KerasError {
            guard let l else { return KerasError("YAML: \(message) at the end of the document") }
            return KerasError("YAML line \(l.number), column \((column ?? 0) + l.indent + 1): \(message)")
        }

        mutating func document() throws -> JSON {
            if let f = lines.first, f.text.hasPrefix("---") {
                let rest = f.text.dropFirst(3).drop { $0 == " " }
                if rest.isEmpty { lines.removeFirst() } else { lines[0].text = rest }
            }
            if let l = lines.last, l.text == "..." { lines.removeLast() }
            guard let first = lines.first else { return .null }
            let v = try node(indent: first.indent)
            if i < lines.count {
                if lines[i].text == "---" { throw fail(lines[i], "more than one document") }
                throw fail(lines[i], "unexpected content (indentation \(lines[i].indent))")
            }
            return v
        }

        /// The node starting at line i, whose lines are indented `indent`.
        mutating func node(indent: Int) throws -> JSON {
            let l = lines[i]
            if l.text == "-" || l.text.hasPrefix("- ") { return try sequence(indent: indent) }
            if let colon = keyColon(l.text) { _ = colon; return try mapping(indent: indent) }
            i += 1
            return try inlineValue(l.text, l)
        }

        mutating func sequence(indent: Int) throws -> JSON {
            var items: [JSON] = []
            while i < lines.count, lines[i].indent == indent, lines[i].text == "-" || lines[i].text.hasPrefix("- ") {
                let l = lines[i]
                let rest = l.text.dropFirst(1).drop { $0 == " " }
                if rest.isEmpty {
                    i += 1
                    guard i < lines.count, lines[i].indent > indent else { items.append(.null); continue }
                    items.append(try node(indent: lines[i].indent))
                } else {
                    // The item's content starts on the dash's line, at this column.
                    let column = indent + (l.text.count - rest.count)
                    lines[i] = Line(number: l.number, indent: column, text: rest)
                    items.append(try node(indent: column))
                }
            }
            return .array(items)
        }

        mutating func mapping(indent: Int) throws -> JSON {
            var pairs: [(String, JSON)] = []
            while i < lines.count, lines[i].indent == indent {
                let l = lines[i]
                guard let colon = keyColon(l.text) else {
                    if l.text.hasPrefix("- ") { break }
                    throw fail(l, "expected 'key: value' in a mapping")
                }
                let keyText = l.text[..<colon]
                let key: String
                switch try inlineValue(keyText, l) {
                case .string(let s): key = s
                case .null: key = "null"
                case let other: key = other.serialized()
                }
                if pairs.contains(where: { $0.0 == key }) { throw fail(l, "duplicate key '\(key)'") }
                let rest = l.text[l.text.index(after: colon)...].drop { $0 == " " }
                i += 1
                if !rest.isEmpty {
                    pairs.append((key, try flowOrScalar(rest, l, column: l.text.distance(from: l.text.startIndex, to: rest.startIndex))))
                } else if i < lines.count, lines[i].indent > indent {
                    pairs.append((key, try node(indent: lines[i].indent)))
                } else if i < lines.count, lines[i].indent == indent, lines[i].text == "-" || lines[i].text.hasPrefix("- ") {
                    pairs.append((key, try sequence(indent: indent)))  // PyYAML's "key:\n- item" at the key's indentation
                } else {
                    pairs.append((key, .null))
                }
            }
            if i < lines.count, lines[i].indent > indent { throw fail(lines[i], "unexpected indentation") }
            return .object(pairs)
        }

        /// A flow collection, possibly continued on more indented lines, or a scalar.
        mutating func flowOrScalar(_ text: Substring, _ l: Line, column: Int) throws -> JSON {
            guard text.first == "[" || text.first == "{" else { return try inlineValue(text, l, column: column) }
            var joined = String(text)
            while !balanced(joined) {
                guard i < lines.count else { throw fail(l, "unclosed \(text.first!)") }
                joined += " " + lines[i].text
                i += 1
            }
            return try inlineValue(Substring(joined), l, column: column)
        }

        func balanced(_ s: String) -> Bool {
            var depth = 0
            var quote: Character? = nil
            for c in s {
                if let q = quote { if c == q { quote = nil }; continue }
                switch c {
                case "'", "\"": quote = c
                case "[", "{": depth += 1
                case "]", "}": depth -= 1
                default: break
                }
            }
            return depth <= 0
        }

        /// The value of inline text: a flow collection or a scalar.
        func inlineValue(_ text: Substring, _ l: Line, column: Int = 0) throws -> JSON {
            var f = Flow(chars: Array(text), line: l, parser: self, column: column)
            let v = try f.value()
            f.skipSpaces()
            guard f.pos == f.chars.count else { throw fail(l, column: column + f.pos, "unexpected '\(f.chars[f.pos])'") }
            return v
        }
    }

    /// The position of a mapping's ": " (or a line-ending ":") outside quotes and brackets.
    static func keyColon(_ s: Substring) -> Substring.Index? {
        var quote: Character? = nil
        var depth = 0
        var idx = s.startIndex
        if let f = s.first, f == "[" || f == "{" { return nil }
        while idx < s.endIndex {
            let c = s[idx]
            if let q = quote { if c == q { quote = nil } } else {
                switch c {
                case "'", "\"": if idx == s.startIndex { quote = c }
                case "[", "{": depth += 1
                case "]", "}": depth -= 1
                case ":" where depth == 0:
                    let next = s.index(after: idx)
                    if next == s.endIndex || s[next] == " " { return idx }
                default: break
                }
            }
            idx = s.index(after: idx)
        }
        return nil
    }

    static func stripComment(_ s: Substring) -> Substring {
        var quote: Character? = nil
        var prev: Character = " "
        for idx in s.indices {
            let c = s[idx]
            if let q = quote { if c == q { quote = nil } } else if c == "'" || c == "\"" { quote = c } else if c == "#" && prev == " " {
                var r = s[..<idx]
                while r.last == " " { r = r.dropLast() }
                return r
            }
            prev = c
        }
        return s
    }

    /// Flow collections and scalars on one logical line.
    struct Flow {
        var chars: [Character]
        var pos = 0
        let line: Line
        let parser: Parser
        /// Where the text starts in its line.
        let column: Int

        init(chars: [Character], line: Line, parser: Parser, column: Int) {
            self.chars = chars
            self.line = line
            self.parser = parser
            self.column = column
        }

        func fail(_ m: String) -> KerasError { parser.fail(line, column: column + pos, m) }

        mutating func skipSpaces() { while pos < chars.count, chars[pos] == " " || chars[pos] == "\t" { pos += 1 } }

        mutating func value(inFlow: Bool = false) throws -> JSON {
            skipSpaces()
            guard pos < chars.count else { return .null }
            switch chars[pos] {
            case "[":
                pos += 1
                var items: [JSON] = []
                skipSpaces()
                if pos < chars.count, chars[pos] == "]" { pos += 1; return .array(items) }
                while true {
                    items.append(try value(inFlow: true))
                    skipSpaces()
                    guard pos < chars.count else { throw fail("unclosed [") }
                    if chars[pos] == "," { pos += 1; skipSpaces(); if pos < chars.count, chars[pos] == "]" { pos += 1; return .array(items) }; continue }
                    if chars[pos] == "]" { pos += 1; return .array(items) }
                    throw fail("expected ',' or ']'")
                }
            case "{":
                pos += 1
                var pairs: [(String, JSON)] = []
                skipSpaces()
                if pos < chars.count, chars[pos] == "}" { pos += 1; return .object(pairs) }
                while true {
                    let k = try value(inFlow: true)
                    skipSpaces()
                    guard pos < chars.count, chars[pos] == ":" else { throw fail("expected ':' in a flow mapping") }
                    pos += 1
                    let v = try value(inFlow: true)
                    let key: String
                    if case .string(let s) = k { key = s } else { key = k.serialized() }
                    pairs.append((key, v))
                    skipSpaces()
                    guard pos < chars.count else { throw fail("unclosed {") }
                    if chars[pos] == "," { pos += 1; continue }
                    if chars[pos] == "}" { pos += 1; return .object(pairs) }
                    throw fail("expected ',' or '}'")
                }
            case "'":
                pos += 1
                var s = ""
                while true {
                    guard pos < chars.count else { throw fail("unclosed single quote") }
                    if chars[pos] == "'" {
                        if pos + 1 < chars.count, chars[pos + 1] == "'" { s.append("'"); pos += 2; continue }
                        pos += 1
                        return .string(s)
                    }
                    s.append(chars[pos]); pos += 1
                }
            case "\"":
                let start = pos
                pos += 1
                while pos < chars.count, chars[pos] != "\"" { pos += chars[pos] == "\\" ? 2 : 1 }
                guard pos < chars.count else { throw fail("unclosed double quote") }
                pos += 1
                // YAML's double-quoted escapes are JSON's for the strings configs hold.
                do { return try JSON.parse(String(chars[start..<pos])) } catch { throw fail("bad double-quoted string") }
            case "&", "*", "!", "|", ">", "%", "@", "`":
                throw fail("'\(chars[pos])' (anchors, aliases, tags and block scalars) is outside the YAML subset read here")
            default:
                let start = pos
                while pos < chars.count {
                    let c = chars[pos]
                    if inFlow && (c == "," || c == "]" || c == "}" || (c == ":" && (pos + 1 == chars.count || chars[pos + 1] == " "))) { break }
                    pos += 1
                }
                var text = String(chars[start..<pos])
                while text.last == " " { text.removeLast() }
                return plainScalar(text)
            }
        }
    }

    /// YAML 1.1's core resolution of a plain scalar.
    static func plainScalar(_ s: String) -> JSON {
        switch s {
        case "null", "Null", "NULL", "~", "": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf": return .number(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .number(-.infinity)
        case ".nan", ".NaN", ".NAN": return .number(.nan)
        default: break
        }
        let numeric = s.unicodeScalars.allSatisfy { "0123456789+-.eE".unicodeScalars.contains($0) }
        if numeric, s.unicodeScalars.contains(where: { ("0"..."9").contains($0) }), let d = Double(s) { return .number(d) }
        return .string(s)
    }
}
