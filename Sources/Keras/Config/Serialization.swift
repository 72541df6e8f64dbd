import KerasIR

/// Keras's serialized object form: {"module", "class_name", "config", "registered_name"}.
func serialized(module: String, className: String, config: JSON) -> JSON {
    ["module": .string(module), "class_name": .string(className), "config": config, "registered_name": .null]
}

/// The class name and config of a serialized object, or of a bare name
/// string ("glorot_uniform", "GlorotUniform").
func classAndConfig(_ json: JSON, what: String) throws -> (String, JSON) {
    if let s = json.stringValue { return (s, .object([])) }
    // Keras 1 wrote the class as "name" beside the arguments: {"name": "L1L2Regularizer", "l2": 0.01}.
    if json["class_name"] == nil, json["config"] == nil, let cls = json["name"]?.stringValue { return (cls, json) }
    guard let cls = json["class_name"]?.stringValue else {
        throw KerasError("cannot read \(what) from \(json.serialized())")
    }
    return (cls, json["config"] ?? .object([]))
}

/// Name matching that accepts Keras 3 class names, snake_case names and Keras 2 aliases.
func canonicalName(_ s: String) -> String {
    s.lowercased().replacingOccurrences(of: "_", with: "")
}

extension JSON {
    public func float(_ key: String, default d: Float) throws -> Float {
        guard let v = self[key], !v.isNull else { return d }
        guard let x = v.doubleValue else { throw KerasError("config key '\(key)' must be a number, got \(v)") }
        return Float(x)
    }
    public func optionalFloat(_ key: String) throws -> Float? {
        guard let v = self[key], !v.isNull else { return nil }
        guard let x = v.doubleValue else { throw KerasError("config key '\(key)' must be a number, got \(v)") }
        return Float(x)
    }
    public func int(_ key: String, default d: Int) throws -> Int {
        guard let v = self[key], !v.isNull else { return d }
        guard let x = v.intValue else { throw KerasError("config key '\(key)' must be an integer, got \(v)") }
        return x
    }
    public func optionalInt(_ key: String) throws -> Int? {
        guard let v = self[key], !v.isNull else { return nil }
        guard let x = v.intValue else { throw KerasError("config key '\(key)' must be an integer, got \(v)") }
        return x
    }
    public func bool(_ key: String, default d: Bool) throws -> Bool {
        guard let v = self[key], !v.isNull else { return d }
        guard let x = v.boolValue else { throw KerasError("config key '\(key)' must be true or false, got \(v)") }
        return x
    }
    public func string(_ key: String, default d: String) throws -> String {
        guard let v = self[key], !v.isNull else { return d }
        guard let x = v.stringValue else { throw KerasError("config key '\(key)' must be a string, got \(v)") }
        return x
    }
    /// An int or a list of ints (Keras accepts both for axes, sizes, ...).
    public func ints(_ key: String) throws -> [Int]? {
        guard let v = self[key], !v.isNull else { return nil }
        if let i = v.intValue { return [i] }
        guard let a = v.arrayValue else { throw KerasError("config key '\(key)' must be an integer or a list, got \(v)") }
        return try a.map { e in
            guard let i = e.intValue else { throw KerasError("config key '\(key)' must hold integers, got \(v)") }
            return i
        }
    }
    /// A shape list where null is an unknown dimension.
    public func shape(_ key: String) throws -> Shape? {
        guard let v = self[key], !v.isNull else { return nil }
        guard let a = v.arrayValue else { throw KerasError("config key '\(key)' must be a list, got \(v)") }
        return try a.map { e in
            if e.isNull { return nil }
            guard let i = e.intValue else { throw KerasError("config key '\(key)' must hold integers or null, got \(v)") }
            return i
        }
    }
}
