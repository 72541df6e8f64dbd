import KerasIR

/// Flattens everything but the batch. With channels_first input, channels
/// are moved last first, so the result matches a channels_last model.
public final class Flatten: Layer {
    public let dataFormat: String

    public init(dataFormat: String? = nil, inputShape: [Int]? = nil, name: String? = nil) {
        self.dataFormat = dataFormat ?? ImageDataFormat.current
        super.init(name: name)
        declaredInputShape = declaredShape(inputShape: inputShape, inputDim: nil)
    }

    public override func build(_ shapes: [Shape]) throws {
        try ImageDataFormat.validate(dataFormat, layer: name)
        let s = shapes[0]
        guard s.dropFirst().allSatisfy({ $0 != nil }) else {
            throw KerasError("\(name): Flatten needs every non-batch dimension known, got \(formatShape(s))")
        }
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        var x = inputs[0]
        let rank = b.type(of: x).rank
        if dataFormat == "channels_first" && rank > 2 {
            x = try b.transpose(x, [0] + Array(2..<rank) + [1])
        }
        let rest = b.type(of: x).shape.dropFirst().reduce(1, *)
        return [try b.reshape(x, [-1, rest])]
    }

    public override var config: JSON {
        var c = super.config
        c.set("data_format", .string(dataFormat))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let l = Flatten(dataFormat: c["data_format"]?.stringValue, name: c["name"]?.stringValue)
        try l.applyInputShape(from: c)
        return l
    }
}

/// image_data_format: from ~/.keras/keras.json when it exists, else channels_last.
public enum ImageDataFormat {
    nonisolated(unsafe) private static var override: String? = nil

    public static var current: String {
        get {
            if let o = override { return o }
            return fromConfigFile() ?? "channels_last"
        }
        set { override = newValue }
    }

    static func fromConfigFile() -> String? {
        guard let home = getenvString("KERAS_HOME").map({ $0 }) ?? getenvString("HOME").map({ $0 + "/.keras" }) else { return nil }
        guard let text = readTextFile(home + "/keras.json"), let json = try? JSON.parse(text) else { return nil }
        return json["image_data_format"]?.stringValue
    }

    static func validate(_ f: String, layer: String) throws {
        guard f == "channels_last" || f == "channels_first" else {
            throw KerasError("\(layer): data_format must be channels_last or channels_first, got '\(f)'")
        }
    }
}

/// Reshapes to `targetShape` (without the batch); one entry may be -1.
public final class Reshape: Layer {
    public let targetShape: [Int]

    public init(_ targetShape: [Int], inputShape: [Int]? = nil, name: String? = nil) {
        self.targetShape = targetShape
        super.init(name: name)
        declaredInputShape = declaredShape(inputShape: inputShape, inputDim: nil)
    }

    public override func build(_ shapes: [Shape]) throws {
        let inferred = targetShape.filter { $0 == -1 }.count
        guard inferred <= 1, targetShape.allSatisfy({ $0 == -1 || ($0 > 0 && $0 <= TensorType.maxDimension) }) else {
            throw KerasError("\(name): target_shape \(targetShape) may hold positive sizes up to \(TensorType.maxDimension) and at most one -1")
        }
        let rest = shapes[0].dropFirst()
        let known = try MemoryLimit.elementCount(targetShape.filter { $0 != -1 }, "\(name): target_shape")
        if rest.allSatisfy({ $0 != nil }) {
            let n = try MemoryLimit.elementCount(rest.map { $0 ?? 0 }, "\(name): input shape")
            if inferred == 0 ? n != known : n % known != 0 {
                throw KerasError("\(name): total size of the new array must be unchanged, input_shape = \(formatShape(Array(rest))), output_shape = \(formatShape(targetShape.map { Optional($0) }))")
            }
        }
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        let rest = b.type(of: inputs[0]).shape.dropFirst()
        var target = targetShape
        if let i = target.firstIndex(of: -1) {
            target[i] = rest.reduce(1, *) / max(1, target.filter { $0 != -1 }.reduce(1, *))
        }
        return [try b.reshape(inputs[0], [-1] + target)]
    }

    public override var config: JSON {
        var c = super.config
        c.set("target_shape", JSON(targetShape))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        guard let t = try c.ints("target_shape") else { throw KerasError("Reshape config needs target_shape") }
        let l = Reshape(t, name: c["name"]?.stringValue)
        try l.applyInputShape(from: c)
        return l
    }
}

/// Permutes the non-batch axes; `dims` are 1-based, as in Keras.
public final class Permute: Layer {
    public let dims: [Int]

    public init(_ dims: [Int], inputShape: [Int]? = nil, name: String? = nil) {
        self.dims = dims
        super.init(name: name)
        declaredInputShape = declaredShape(inputShape: inputShape, inputDim: nil)
    }

    public override func build(_ shapes: [Shape]) throws {
        guard dims.sorted() == Array(1...max(dims.count, 1)), dims.count == shapes[0].count - 1 else {
            throw KerasError("\(name): invalid permutation argument dims=\(dims) for input shape \(formatShape(shapes[0])); dims should contain every integer from 1 to \(shapes[0].count - 1)")
        }
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        [try context.builder.transpose(inputs[0], [0] + dims)]
    }

    public override var config: JSON {
        var c = super.config
        c.set("dims", JSON(dims))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        guard let d = try c.ints("dims") else { throw KerasError("Permute config needs dims") }
        let l = Permute(d, name: c["name"]?.stringValue)
        try l.applyInputShape(from: c)
        return l
    }
}

/// Repeats a (batch, features) input n times: (batch, n, features).
public final class RepeatVector: Layer {
    public let n: Int

    public init(_ n: Int, name: String? = nil) {
        self.n = n
        super.init(name: name)
    }

    public override func build(_ shapes: [Shape]) throws {
        guard shapes[0].count == 2 else { throw KerasError("\(name): RepeatVector expects a 2D input (batch, features), got \(formatShape(shapes[0]))") }
        guard n > 0 else { throw KerasError("\(name): n must be positive, got \(n)") }
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        let f = b.type(of: inputs[0]).shape[1]
        let x = try b.reshape(inputs[0], [-1, 1, f])
        return [try b.emit("broadcast_to", [x], ["shape": .ints([-1, n, f])])]
    }

    public override var config: JSON {
        var c = super.config
        c.set("n", JSON(n))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        RepeatVector(try c.int("n", default: 1), name: c["name"]?.stringValue)
    }
}
