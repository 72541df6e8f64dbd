import KerasIR

/// A node of the functional graph that applies a fixed function of its
/// inputs: what arithmetic and `ops` functions on KerasTensors record.
final class OperationLayer: Layer {
    override class var kerasClassName: String { "Operation" }
    let body: ([Value], GraphBuilder) throws -> Value
    /// For a node read from a functional config: its entry (module,
    /// class_name, config) and call arguments, written back on serialization.
    var savedEntry: JSON?
    var savedArgs: JSON?

    init(_ opName: String, _ body: @escaping ([Value], GraphBuilder) throws -> Value) {
        self.body = body
        super.init(name: Naming.unique(opName))
        supportsMasking = false
    }

    /// An operation node read from a functional config, under its saved name.
    init(named name: String, _ body: @escaping ([Value], GraphBuilder) throws -> Value) {
        self.body = body
        super.init(name: name)
        supportsMasking = false
    }

    override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        [try body(inputs, context.builder)]
    }
}

func operation(_ name: String, _ xs: [KerasTensor], _ body: @escaping ([Value], GraphBuilder) throws -> Value) throws -> KerasTensor {
    try OperationLayer(name, body)(xs)[0]
}

// MARK: - Operators

extension KerasTensor {
    public static func + (a: KerasTensor, b: KerasTensor) throws -> KerasTensor { try operation("add", [a, b]) { try $1.add($0[0], $0[1]) } }
    public static func - (a: KerasTensor, b: KerasTensor) throws -> KerasTensor { try operation("subtract", [a, b]) { try $1.sub($0[0], $0[1]) } }
    public static func * (a: KerasTensor, b: KerasTensor) throws -> KerasTensor { try operation("multiply", [a, b]) { try $1.mul($0[0], $0[1]) } }
    public static func / (a: KerasTensor, b: KerasTensor) throws -> KerasTensor { try operation("divide", [a, b]) { try $1.div($0[0], $0[1]) } }
    public static func + (a: KerasTensor, s: Float) throws -> KerasTensor { try operation("add", [a]) { try $1.add($0[0], s) } }
    public static func - (a: KerasTensor, s: Float) throws -> KerasTensor { try operation("subtract", [a]) { try $1.add($0[0], -s) } }
    public static func * (a: KerasTensor, s: Float) throws -> KerasTensor { try operation("multiply", [a]) { try $1.mul($0[0], s) } }
    public static func / (a: KerasTensor, s: Float) throws -> KerasTensor { try operation("divide", [a]) { try $1.mul($0[0], 1 / s) } }
    public static func * (s: Float, a: KerasTensor) throws -> KerasTensor { try a * s }
    public static func + (s: Float, a: KerasTensor) throws -> KerasTensor { try a + s }
    public static func - (s: Float, a: KerasTensor) throws -> KerasTensor { try operation("subtract", [a]) { try $1.sub($1.scalar(s), $0[0]) } }
    public static prefix func - (a: KerasTensor) throws -> KerasTensor { try operation("negative", [a]) { try $1.neg($0[0]) } }
}

// MARK: - keras.ops

/// keras.ops for symbolic tensors: each function records one operation in
/// the functional graph. Axes may be negative.
public enum ops {
    static func axes(_ axis: [Int]?, _ x: KerasTensor) -> [Int] {
        let r = x.rank
        return (axis ?? Array(0..<r)).map { $0 < 0 ? $0 + r : $0 }
    }

    static func unary(_ name: String, _ op: String, _ x: KerasTensor, _ attrs: Attributes = [:]) throws -> KerasTensor {
        try operation(name, [x]) { try $1.emit(op, [$0[0]], attrs) }
    }

    public static func mean(_ x: KerasTensor, axis: Int? = nil, keepdims: Bool = false) throws -> KerasTensor {
        try mean(x, axes: axis.map { [$0] }, keepdims: keepdims)
    }
    public static func mean(_ x: KerasTensor, axes: [Int]?, keepdims: Bool = false) throws -> KerasTensor {
        let ax = Self.axes(axes, x)
        return try operation("mean", [x]) { try $1.reduceMean($0[0], axes: ax, keepDims: keepdims) }
    }
    public static func sum(_ x: KerasTensor, axis: Int? = nil, keepdims: Bool = false) throws -> KerasTensor {
        let ax = Self.axes(axis.map { [$0] }, x)
        return try operation("sum", [x]) { try $1.reduceSum($0[0], axes: ax, keepDims: keepdims) }
    }
    public static func max(_ x: KerasTensor, axis: Int? = nil, keepdims: Bool = false) throws -> KerasTensor {
        let ax = Self.axes(axis.map { [$0] }, x)
        return try operation("max", [x]) { try $1.reduceMax($0[0], axes: ax, keepDims: keepdims) }
    }
    public static func min(_ x: KerasTensor, axis: Int? = nil, keepdims: Bool = false) throws -> KerasTensor {
        let ax = Self.axes(axis.map { [$0] }, x)
        return try operation("min", [x]) { try $1.emit("reduce_min", [$0[0]], ["axes": .ints(ax), "keepdims": .bool(keepdims)]) }
    }
    public static func square(_ x: KerasTensor) throws -> KerasTensor { try unary("square", "square", x) }
    public static func sqrt(_ x: KerasTensor) throws -> KerasTensor { try unary("sqrt", "sqrt", x) }
    public static func exp(_ x: KerasTensor) throws -> KerasTensor { try unary("exp", "exp", x) }
    public static func log(_ x: KerasTensor) throws -> KerasTensor { try unary("log", "log", x) }
    public static func abs(_ x: KerasTensor) throws -> KerasTensor { try unary("absolute", "abs", x) }
    public static func negative(_ x: KerasTensor) throws -> KerasTensor { try -x }
    public static func relu(_ x: KerasTensor) throws -> KerasTensor { try unary("relu", "relu", x) }
    public static func sigmoid(_ x: KerasTensor) throws -> KerasTensor { try unary("sigmoid", "sigmoid", x) }
    public static func tanh(_ x: KerasTensor) throws -> KerasTensor { try unary("tanh", "tanh", x) }
    public static func softmax(_ x: KerasTensor, axis: Int = -1) throws -> KerasTensor {
        try operation("softmax", [x]) { try $1.softmax($0[0], axis: axis) }
    }
    public static func maximum(_ a: KerasTensor, _ b: KerasTensor) throws -> KerasTensor { try operation("maximum", [a, b]) { try $1.maximum($0[0], $0[1]) } }
    public static func minimum(_ a: KerasTensor, _ b: KerasTensor) throws -> KerasTensor { try operation("minimum", [a, b]) { try $1.minimum($0[0], $0[1]) } }
    public static func clip(_ x: KerasTensor, _ lo: Float, _ hi: Float) throws -> KerasTensor {
        try operation("clip", [x]) { try $1.minimum($1.maximum($0[0], $1.scalar(lo)), $1.scalar(hi)) }
    }
    /// x / sqrt(max(sum(x^2, axis), 1e-12)), as keras.ops.normalize / K.l2_normalize.
    public static func l2Normalize(_ x: KerasTensor, axis: Int = -1) throws -> KerasTensor {
        let ax = Self.axes([axis], x)
        return try operation("l2_normalize", [x]) { v, b in
            let ss = try b.reduceSum(b.square(v[0]), axes: ax, keepDims: true)
            return try b.mul(v[0], b.unary("rsqrt", b.maximum(ss, b.scalar(1e-12))))
        }
    }
    public static func concatenate(_ xs: [KerasTensor], axis: Int = -1) throws -> KerasTensor {
        guard let first = xs.first else { throw KerasError("concatenate needs at least one tensor") }
        let a = axis < 0 ? axis + first.rank : axis
        return try operation("concatenate", xs) { try $1.emit("concat", $0, ["axis": .int(a)]) }
    }
    /// The new shape excludes nothing: it is the full shape, -1 allowed once (the batch, usually).
    public static func reshape(_ x: KerasTensor, _ shape: [Int]) throws -> KerasTensor {
        try operation("reshape", [x]) { try $1.reshape($0[0], shape) }
    }
    public static func transpose(_ x: KerasTensor, axes: [Int]? = nil) throws -> KerasTensor {
        let perm = axes ?? Array((0..<x.rank).reversed())
        return try operation("transpose", [x]) { try $1.transpose($0[0], perm) }
    }
    public static func matmul(_ a: KerasTensor, _ b: KerasTensor) throws -> KerasTensor {
        try operation("matmul", [a, b]) { try $1.matmul($0[0], $0[1]) }
    }
    public static func expandDims(_ x: KerasTensor, axis: Int) throws -> KerasTensor {
        var shape = irShape(x.shape)
        let a = axis < 0 ? axis + x.rank + 1 : axis
        shape.insert(1, at: a)
        let spec = shape.map { $0 == TensorType.unknown ? -1 : $0 }
        return try operation("expand_dims", [x]) { try $1.reshape($0[0], spec) }
    }
    public static func squeeze(_ x: KerasTensor, axis: Int) throws -> KerasTensor {
        var shape = irShape(x.shape)
        let a = axis < 0 ? axis + x.rank : axis
        guard a >= 0 && a < shape.count && shape[a] == 1 else {
            throw KerasError("squeeze: axis \(axis) of \(formatShape(x.shape)) is not of size 1")
        }
        shape.remove(at: a)
        return try operation("squeeze", [x]) { try $1.reshape($0[0], shape) }
    }
    public static func stopGradient(_ x: KerasTensor) throws -> KerasTensor { try unary("stop_gradient", "stop_gradient", x) }
    public static func cast(_ x: KerasTensor, _ dtype: DType) throws -> KerasTensor {
        try operation("cast", [x]) { try $1.cast($0[0], to: dtype) }
    }
}
