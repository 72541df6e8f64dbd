import KerasIR

/// A Keras activation function: a name and the ops it emits. Accepted by
/// name ("relu", "swish", ...) or as a value (`Activations.relu`).
public struct ActivationFunction: CustomStringConvertible {
    public let name: String
    let emit: (Value, GraphBuilder) throws -> Value

    public init(name: String, _ emit: @escaping (Value, GraphBuilder) throws -> Value) {
        self.name = name
        self.emit = emit
    }

    public func callAsFunction(_ x: Value, _ b: GraphBuilder) throws -> Value { try emit(x, b) }
    public var description: String { name }

    static func unary(_ name: String, _ op: String, _ attrs: Attributes = [:]) -> ActivationFunction {
        ActivationFunction(name: name) { x, b in try b.emit(op, [x], attrs) }
    }

    public static let linear = ActivationFunction(name: "linear") { x, _ in x }
    public static let relu = unary("relu", "relu")
    public static let sigmoid = unary("sigmoid", "sigmoid")
    public static let hardSigmoid = unary("hard_sigmoid", "hard_sigmoid")
    public static let tanh = unary("tanh", "tanh")
    public static let elu = unary("elu", "elu", ["alpha": .float(1)])
    public static let selu = unary("selu", "selu")
    public static let softplus = unary("softplus", "softplus")
    public static let softsign = unary("softsign", "softsign")
    public static let exponential = unary("exponential", "exp")
    public static let gelu = unary("gelu", "gelu")
    public static let swish = unary("swish", "swish")
    public static let silu = unary("silu", "swish")
    /// The activation function uses slope 0.2 (the LeakyReLU layer defaults to 0.3).
    public static let leakyRelu = unary("leaky_relu", "leaky_relu", ["alpha": .float(0.2)])
    public static let relu6 = ActivationFunction(name: "relu6") { x, b in try ActivationFunction.reluGeneral(x, b, negativeSlope: 0, maxValue: 6, threshold: 0) }
    public static let softmax = ActivationFunction(name: "softmax") { x, b in try b.softmax(x, axis: -1) }
    public static let logSoftmax = ActivationFunction(name: "log_softmax") { x, b in try b.logSoftmax(x, axis: -1) }
    public static let hardSilu = ActivationFunction(name: "hard_silu") { x, b in try b.mul(x, b.emit("hard_sigmoid", [x])) }
    public static let mish = ActivationFunction(name: "mish") { x, b in try b.mul(x, b.tanh(b.emit("softplus", [x]))) }

    static let all: [ActivationFunction] = [.linear, .relu, .sigmoid, .hardSigmoid, .tanh, .elu, .selu, .softplus, .softsign,
                                    .exponential, .gelu, .swish, .silu, .leakyRelu, .relu6, .softmax, .logSoftmax, .hardSilu, .mish]

    /// By name, as keras.activations.get does (None and "linear" are the identity).
    public static func get(_ name: String?) throws -> ActivationFunction {
        guard let name, !name.isEmpty else { return .linear }
        let key = name == "hard_swish" ? "hard_silu" : name
        if let a = all.first(where: { $0.name == key }) { return a }
        throw KerasError("unknown activation '\(name)' (known: " + all.map(\.name).joined(separator: ", ") + ")")
    }

    public static func get(_ json: JSON?) throws -> ActivationFunction {
        guard let json, !json.isNull else { return .linear }
        if let s = json.stringValue { return try get(s) }
        if let cls = json["config"]?.stringValue ?? json["class_name"]?.stringValue { return try get(cls) }
        throw KerasError("cannot read an activation from \(json.serialized())")
    }

    /// Keras's relu(x, negative_slope, max_value, threshold).
    public static func reluGeneral(_ x: Value, _ b: GraphBuilder, negativeSlope: Float, maxValue: Float?, threshold: Float) throws -> Value {
        if negativeSlope == 0 && maxValue == nil && threshold == 0 { return try b.relu(x) }
        var negativePart: Value? = nil
        if negativeSlope != 0 {
            if maxValue == nil && threshold == 0 { return try b.emit("leaky_relu", [x], ["alpha": .float(negativeSlope)]) }
            negativePart = threshold != 0 ? try b.relu(b.add(b.neg(x), threshold)) : try b.relu(b.neg(x))
        }
        var y: Value
        if threshold != 0 {
            y = try b.mul(x, b.greater(x, b.scalar(threshold)))
        } else {
            y = try b.relu(x)
        }
        if let maxValue {
            y = try b.minimum(b.maximum(y, b.scalar(0)), b.scalar(maxValue))
        }
        if let negativePart { y = try b.sub(y, b.mul(negativePart, negativeSlope)) }
        return y
    }
}

/// keras.activations: `Activations.relu`, `Activations.get("gelu")`.
public typealias Activations = ActivationFunction
