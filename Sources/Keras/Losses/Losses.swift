import KerasIR

/// A Keras loss: per-sample values emitted as graph ops (reduced over the
/// last axis, as Keras does), averaged over the batch by the model with
/// sample weights ("sum_over_batch_size").
public struct Loss: CustomStringConvertible {
    public let name: String
    public let fromLogits: Bool
    let body: (_ yTrue: Value, _ yPred: Value, _ b: GraphBuilder) throws -> Value
    public var config: JSON

    public var description: String { name }

    /// Per-sample (or per-position) loss values.
    public func values(_ yTrue: Value, _ yPred: Value, _ b: GraphBuilder) throws -> Value { try body(yTrue, yPred, b) }
}

let epsilon: Float = 1e-7

private func meanLast(_ x: Value, _ b: GraphBuilder) throws -> Value {
    try b.reduceMean(x, axes: [b.type(of: x).rank - 1])
}
private func sumLast(_ x: Value, _ b: GraphBuilder, keep: Bool = false) throws -> Value {
    try b.reduceSum(x, axes: [b.type(of: x).rank - 1], keepDims: keep)
}
private func clip(_ x: Value, _ lo: Float, _ hi: Float, _ b: GraphBuilder) throws -> Value {
    try b.minimum(b.maximum(x, b.scalar(lo)), b.scalar(hi))
}
private func f32(_ x: Value, _ b: GraphBuilder) throws -> Value { b.type(of: x).dtype == .f32 ? x : try b.cast(x, to: .f32) }

/// Hinge losses take {0, 1} labels as {-1, 1}, as Keras converts them.
private func hingeLabels(_ y: Value, _ b: GraphBuilder) throws -> Value {
    let rank = b.type(of: y).rank
    let isBinary = try b.emit("reduce_min", [b.maximum(b.compare("equal", y, b.scalar(0)), b.compare("equal", y, b.scalar(1)))],
                              ["axes": .ints(Array(0..<rank)), "keepdims": .bool(false)])
    return try b.select(isBinary, b.sub(b.mul(y, 2), b.scalar(1)), y)
}

/// -sum(y * log softmax) over the last axis as one softmax_cross_entropy op
/// (loss and gradient in one kernel) when the prediction is logits, or the
/// output of a softmax over the last axis (then the op starts from that
/// softmax's logits and applies Keras's normalize-and-clip); nil otherwise.
private func fusedSoftmaxCrossEntropy(_ y: Value, _ p: Value, fromLogits: Bool, _ b: GraphBuilder) throws -> Value? {
    let pt = b.type(of: p)
    guard pt.dtype == .f32, pt.rank >= 1, pt.shape.last != TensorType.unknown, b.type(of: y) == pt else { return nil }
    if fromLogits { return try b.emit("softmax_cross_entropy", [p, y], ["from_logits": .bool(true)]) }
    let node = b.graph[p]
    guard node.kind == .softmax, let axis = try? node.attrs.int("axis", default: -1), axis == -1 || axis == pt.rank - 1 else { return nil }
    return try b.emit("softmax_cross_entropy", [node.inputs[0], y], ["from_logits": .bool(false)])
}

/// Binary cross-entropy, the mean over the last axis, as one
/// softmax_cross_entropy op with activation "sigmoid" when the prediction is
/// logits or the output of a sigmoid (then the op starts from its input);
/// nil otherwise.
private func fusedSigmoidCrossEntropy(_ y: Value, _ p: Value, fromLogits: Bool, _ b: GraphBuilder) throws -> Value? {
    let pt = b.type(of: p)
    guard pt.dtype == .f32, pt.rank >= 1, pt.shape.last != TensorType.unknown, b.type(of: y) == pt else { return nil }
    let attrs: Attributes = ["from_logits": .bool(fromLogits), "activation": .string("sigmoid")]
    if fromLogits { return try b.emit("softmax_cross_entropy", [p, y], attrs) }
    let node = b.graph[p]
    guard node.kind == .sigmoid else { return nil }
    return try b.emit("softmax_cross_entropy", [node.inputs[0], y], attrs)
}

/// One-hot of integer labels (any dtype) against `classes`.
func oneHot(_ labels: Value, classes: Int, _ b: GraphBuilder) throws -> Value {
    var l = try f32(labels, b)
    let t = b.type(of: l)
    l = try b.reshape(l, t.shape.map { $0 == TensorType.unknown ? -1 : $0 } + [1])
    let iota = try b.constant((0..<classes).map(Float.init), shape: [classes])
    return try b.compare("equal", l, iota)
}

extension Loss {
    public static func meanSquaredError() -> Loss {
        Loss(name: "mean_squared_error", fromLogits: false, body: { y, p, b in try meanLast(b.square(b.sub(f32(y, b), p)), b) }, config: [:])
    }
    public static func meanAbsoluteError() -> Loss {
        Loss(name: "mean_absolute_error", fromLogits: false, body: { y, p, b in try meanLast(b.abs(b.sub(f32(y, b), p)), b) }, config: [:])
    }
    public static func meanAbsolutePercentageError() -> Loss {
        Loss(name: "mean_absolute_percentage_error", fromLogits: false, body: { y, p, b in
            let yt = try f32(y, b)
            let diff = try b.abs(b.div(b.sub(yt, p), b.maximum(b.abs(yt), b.scalar(epsilon))))
            return try b.mul(meanLast(diff, b), 100)
        }, config: [:])
    }
    public static func meanSquaredLogarithmicError() -> Loss {
        Loss(name: "mean_squared_logarithmic_error", fromLogits: false, body: { y, p, b in
            let a = try b.log(b.add(b.maximum(p, b.scalar(epsilon)), 1))
            let c = try b.log(b.add(b.maximum(f32(y, b), b.scalar(epsilon)), 1))
            return try meanLast(b.square(b.sub(a, c)), b)
        }, config: [:])
    }
    public static func binaryCrossentropy(fromLogits: Bool = false, labelSmoothing: Float = 0) -> Loss {
        Loss(name: "binary_crossentropy", fromLogits: fromLogits, body: { y, p, b in
            var yt = try f32(y, b)
            if labelSmoothing > 0 { yt = try b.add(b.mul(yt, 1 - labelSmoothing), 0.5 * labelSmoothing) }
            if fromLogits {
                if let fused = try fusedSigmoidCrossEntropy(yt, p, fromLogits: true, b) { return fused }
                // relu(x) - x*y + log1p(exp(-|x|)) = x - x*y + softplus(-x)
                let terms = try b.add(b.sub(b.relu(p), b.mul(p, yt)), b.unary("softplus", b.neg(b.abs(p))))
                return try meanLast(terms, b)
            }
            if let fused = try fusedSigmoidCrossEntropy(yt, p, fromLogits: false, b) { return fused }
            let pc = try clip(p, epsilon, 1 - epsilon, b)
            let pos = try b.mul(yt, b.log(pc))
            let neg = try b.mul(b.sub(b.scalar(1), yt), b.log(b.sub(b.scalar(1), pc)))
            return try meanLast(b.neg(b.add(pos, neg)), b)
        }, config: ["from_logits": .bool(fromLogits), "label_smoothing": JSON(labelSmoothing)])
    }
    public static func categoricalCrossentropy(fromLogits: Bool = false, labelSmoothing: Float = 0) -> Loss {
        Loss(name: "categorical_crossentropy", fromLogits: fromLogits, body: { y, p, b in
            var yt = try f32(y, b)
            if labelSmoothing > 0 {
                let k = Float(b.type(of: p).shape.last ?? 1)
                yt = try b.add(b.mul(yt, 1 - labelSmoothing), labelSmoothing / k)
            }
            if let fused = try fusedSoftmaxCrossEntropy(yt, p, fromLogits: fromLogits, b) { return fused }
            let logp: Value
            if fromLogits { logp = try b.logSoftmax(p, axis: -1) } else {
                let norm = try b.div(p, sumLast(p, b, keep: true))
                logp = try b.log(clip(norm, epsilon, 1 - epsilon, b))
            }
            return try b.neg(sumLast(b.mul(yt, logp), b))
        }, config: ["from_logits": .bool(fromLogits), "label_smoothing": JSON(labelSmoothing)])
    }
    public static func sparseCategoricalCrossentropy(fromLogits: Bool = false) -> Loss {
        Loss(name: "sparse_categorical_crossentropy", fromLogits: fromLogits, body: { y, p, b in
            let pt = b.type(of: p)
            var labels = y
            let lt = b.type(of: labels)
            if lt.rank == pt.rank && lt.shape.last == 1 {
                labels = try b.reshape(labels, lt.shape.dropLast().map { $0 == TensorType.unknown ? -1 : $0 })
            }
            let hot = try oneHot(labels, classes: pt.shape.last!, b)
            if let fused = try fusedSoftmaxCrossEntropy(hot, p, fromLogits: fromLogits, b) { return fused }
            let logp: Value
            if fromLogits { logp = try b.logSoftmax(p, axis: -1) } else {
                let norm = try b.div(p, sumLast(p, b, keep: true))
                logp = try b.log(clip(norm, epsilon, 1 - epsilon, b))
            }
            return try b.neg(sumLast(b.mul(hot, logp), b))
        }, config: ["from_logits": .bool(fromLogits)])
    }
    public static func hinge() -> Loss {
        Loss(name: "hinge", fromLogits: false, body: { y, p, b in
            try meanLast(b.relu(b.sub(b.scalar(1), b.mul(hingeLabels(f32(y, b), b), p))), b)
        }, config: [:])
    }
    public static func squaredHinge() -> Loss {
        Loss(name: "squared_hinge", fromLogits: false, body: { y, p, b in
            try meanLast(b.square(b.relu(b.sub(b.scalar(1), b.mul(hingeLabels(f32(y, b), b), p)))), b)
        }, config: [:])
    }
    public static func categoricalHinge() -> Loss {
        Loss(name: "categorical_hinge", fromLogits: false, body: { y, p, b in
            let yt = try f32(y, b)
            let pos = try sumLast(b.mul(yt, p), b)
            let neg = try b.reduceMax(b.mul(b.sub(b.scalar(1), yt), p), axes: [b.type(of: p).rank - 1])
            return try b.relu(b.add(b.sub(neg, pos), 1))
        }, config: [:])
    }
    public static func klDivergence() -> Loss {
        Loss(name: "kl_divergence", fromLogits: false, body: { y, p, b in
            let yt = try clip(f32(y, b), epsilon, 1, b), pc = try clip(p, epsilon, 1, b)
            return try sumLast(b.mul(yt, b.log(b.div(yt, pc))), b)
        }, config: [:])
    }
    public static func poisson() -> Loss {
        Loss(name: "poisson", fromLogits: false, body: { y, p, b in
            try meanLast(b.sub(p, b.mul(f32(y, b), b.log(b.add(p, epsilon)))), b)
        }, config: [:])
    }
    public static func cosineSimilarity(axis: Int = -1) -> Loss {
        Loss(name: "cosine_similarity", fromLogits: false, body: { y, p, b in
            let rank = b.type(of: p).rank
            let a = axis < 0 ? axis + rank : axis
            func normalize(_ v: Value) throws -> Value {
                try b.mul(v, b.unary("rsqrt", b.maximum(b.reduceSum(b.square(v), axes: [a], keepDims: true), b.scalar(1e-12))))
            }
            return try b.neg(b.reduceSum(b.mul(normalize(f32(y, b)), normalize(p)), axes: [a]))
        }, config: ["axis": JSON(axis)])
    }
    public static func huber(delta: Float = 1) -> Loss {
        Loss(name: "huber", fromLogits: false, body: { y, p, b in
            let err = try b.sub(p, f32(y, b))
            let ae = try b.abs(err)
            let quad = try b.mul(b.square(err), 0.5)
            let lin = try b.add(b.mul(ae, delta), -0.5 * delta * delta)
            return try meanLast(b.select(b.compare("less_equal", ae, b.scalar(delta)), quad, lin), b)
        }, config: ["delta": JSON(delta)])
    }
    public static func logCosh() -> Loss {
        Loss(name: "log_cosh", fromLogits: false, body: { y, p, b in
            let x = try b.sub(p, f32(y, b))
            let lc = try b.add(b.add(x, b.unary("softplus", b.mul(x, -2))), Float(-0.6931471805599453))
            return try meanLast(lc, b)
        }, config: [:])
    }

    /// A loss by Keras name, alias or class name ("mse", "categorical_crossentropy", "CategoricalCrossentropy").
    public static func get(_ name: String, fromLogits: Bool = false) throws -> Loss {
        switch canonicalName(name) {
        case "meansquarederror", "mse": return .meanSquaredError()
        case "meanabsoluteerror", "mae": return .meanAbsoluteError()
        case "meanabsolutepercentageerror", "mape": return .meanAbsolutePercentageError()
        case "meansquaredlogarithmicerror", "msle": return .meanSquaredLogarithmicError()
        case "binarycrossentropy": return .binaryCrossentropy(fromLogits: fromLogits)
        case "categoricalcrossentropy": return .categoricalCrossentropy(fromLogits: fromLogits)
        case "sparsecategoricalcrossentropy": return .sparseCategoricalCrossentropy(fromLogits: fromLogits)
        case "hinge": return .hinge()
        case "squaredhinge": return .squaredHinge()
        case "categoricalhinge": return .categoricalHinge()
        case "kldivergence", "kld", "kullbackleiblerdivergence": return .klDivergence()
        case "poisson": return .poisson()
        case "cosinesimilarity", "cosineproximity": return .cosineSimilarity()
        case "huber", "huberloss": return .huber()
        case "logcosh", "logcoshloss": return .logCosh()
        default: throw KerasError("unknown loss '\(name)'")
        }
    }

    /// From a Keras serialized loss (compile_config) or a name.
    public static func get(_ json: JSON) throws -> Loss {
        if let s = json.stringValue { return try get(s) }
        let (cls, c) = try classAndConfig(json, what: "a loss")
        return try get(cls, fromLogits: try c.bool("from_logits", default: false))
    }
}

/// Something that names or is a loss.
public protocol LossConvertible { func resolveLoss() throws -> Loss }
extension String: LossConvertible { public func resolveLoss() throws -> Loss { try Loss.get(self) } }
extension Loss: LossConvertible { public func resolveLoss() -> Loss { self } }
