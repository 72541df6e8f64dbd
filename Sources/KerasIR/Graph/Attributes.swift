/// A typed attribute value. Floats are stored at f32 precision, the precision
/// every kernel works in, so printing and parsing round-trip exactly.
public enum AttrValue: Hashable, Sendable, CustomStringConvertible {
    case int(Int)
    case float(Float)
    case bool(Bool)
    case string(String)
    case ints([Int])
    case floats([Float])

    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .float(let v): return formatFloat(v)
        case .bool(let v): return v ? "true" : "false"
        case .string(let s): return quoteString(s)
        case .ints(let v): return "[" + v.map(String.init).joined(separator: ",") + "]"
        case .floats(let v): return "[" + v.map(formatFloat).joined(separator: ",") + "]"
        }
    }
}

/// Shortest text that reads back as the same Float ("0.1", "1e-07", "inf").
public func formatFloat(_ v: Float) -> String {
    if v.isNaN { return "nan" }
    if v.isInfinite { return v < 0 ? "-inf" : "inf" }
    return v.description
}

/// A double-quoted string with quotes, backslashes and control characters
/// escaped: the IR text's form, which is also valid JSON and DOT.
func quoteString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if u.value < 0x20 {
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}

/// An op's attributes: a small map printed in key order.
public struct Attributes: Hashable, Sendable, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    public private(set) var values: [String: AttrValue]

    public init(_ values: [String: AttrValue] = [:]) { self.values = values }
    public init(dictionaryLiteral elements: (String, AttrValue)...) {
        values = Dictionary(elements, uniquingKeysWith: { _, b in b })
    }

    public subscript(key: String) -> AttrValue? {
        get { values[key] }
        set { values[key] = newValue }
    }

    public var isEmpty: Bool { values.isEmpty }
    public var sortedKeys: [String] { values.keys.sorted() }

    public var description: String {
        "{" + sortedKeys.map { "\($0)=\(values[$0]!)" }.joined(separator: ", ") + "}"
    }

    // Typed reads. A missing or mistyped attribute is a user-visible error
    // naming the op (the caller prefixes it), never a trap.

    public func int(_ key: String, default def: Int? = nil) throws -> Int {
        switch values[key] {
        case .int(let v): return v
        case nil: if let def { return def }
        default: break
        }
        throw AttributeError(key: key, expected: "an integer", found: values[key])
    }

    public func float(_ key: String, default def: Float? = nil) throws -> Float {
        switch values[key] {
        case .float(let v): return v
        case .int(let v): return Float(v)
        case nil: if let def { return def }
        default: break
        }
        throw AttributeError(key: key, expected: "a float", found: values[key])
    }

    public func bool(_ key: String, default def: Bool? = nil) throws -> Bool {
        switch values[key] {
        case .bool(let v): return v
        case nil: if let def { return def }
        default: break
        }
        throw AttributeError(key: key, expected: "true or false", found: values[key])
    }

    public func string(_ key: String, default def: String? = nil) throws -> String {
        switch values[key] {
        case .string(let v): return v
        case nil: if let def { return def }
        default: break
        }
        throw AttributeError(key: key, expected: "a string", found: values[key])
    }

    public func ints(_ key: String, default def: [Int]? = nil) throws -> [Int] {
        switch values[key] {
        case .ints(let v): return v
        case .int(let v): return [v]
        case nil: if let def { return def }
        default: break
        }
        throw AttributeError(key: key, expected: "a list of integers", found: values[key])
    }

    public func floats(_ key: String, default def: [Float]? = nil) throws -> [Float] {
        switch values[key] {
        case .floats(let v): return v
        case .float(let v): return [v]
        case .ints(let v): return v.map(Float.init)
        case .int(let v): return [Float(v)]
        case nil: if let def { return def }
        default: break
        }
        throw AttributeError(key: key, expected: "a list of floats", found: values[key])
    }
}

public struct AttributeError: Error, CustomStringConvertible {
    public var key: String
    public var expected: String
    public var found: AttrValue?
    public var description: String {
        if let found { return "attribute '\(key)' must be \(expected), got \(abbreviated(found.description, limit: 200))" }
        return "missing attribute '\(key)' (\(expected))"
    }
}
