import KerasIR

/// relu with Keras's negative_slope, max_value and threshold.
public final class ReLU: Layer {
    public let maxValue: Float?
    public let negativeSlope: Float
    public let threshold: Float

    public init(maxValue: Float? = nil, negativeSlope: Float = 0, threshold: Float = 0, name: String? = nil) {
        self.maxValue = maxValue
        self.negativeSlope = negativeSlope
        self.threshold = threshold
        super.init(name: name)
        supportsMasking = true
    }

    public override func build(_ shapes: [Shape]) throws {
        if let m = maxValue, m < 0 { throw KerasError("\(name): max_value of a ReLU layer cannot be negative, got \(m)") }
        guard negativeSlope >= 0 else { throw KerasError("\(name): negative_slope of a ReLU layer cannot be negative, got \(negativeSlope)") }
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        [try ActivationFunction.reluGeneral(inputs[0], context.builder, negativeSlope: negativeSlope, maxValue: maxValue, threshold: threshold)]
    }

    public override var config: JSON {
        var c = super.config
        c.set("max_value", maxValue.map { JSON($0) } ?? .null)
        c.set("negative_slope", JSON(negativeSlope))
        c.set("threshold", JSON(threshold))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        ReLU(maxValue: try c.optionalFloat("max_value"), negativeSlope: try c.float("negative_slope", default: 0),
             threshold: try c.float("threshold", default: 0), name: c["name"]?.stringValue)
    }
}

public final class ELU: Layer {
    public let alpha: Float
    public init(alpha: Float = 1, name: String? = nil) {
        self.alpha = alpha
        super.init(name: name)
        supportsMasking = true
    }
    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        [try context.builder.emit("elu", [inputs[0]], ["alpha": .float(alpha)])]
    }
    public override var config: JSON {
        var c = super.config
        c.set("alpha", JSON(alpha))
        return c
    }
    public override class func from(config c: JSON) throws -> Layer { ELU(alpha: try c.float("alpha", default: 1), name: c["name"]?.stringValue) }
}

/// Keras 2's ThresholdedReLU: x where x > theta, else 0 (Keras 3 dropped it;
/// configs written by Keras 2 still name it).
public final class ThresholdedReLU: Layer {
    public let theta: Float
    public init(theta: Float = 1, name: String? = nil) {
        self.theta = theta
        super.init(name: name)
        supportsMasking = true
    }
    public override func build(_ shapes: [Shape]) throws {
        guard theta.isFinite, theta >= 0 else { throw KerasError("\(name): theta of a ThresholdedReLU layer must be a non-negative number, got \(theta)") }
    }
    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder, x = inputs[0]
        return [try b.select(b.greater(x, b.scalar(theta)), x, b.scalar(0))]
    }
    public override var config: JSON {
        var c = super.config
        c.set("theta", JSON(theta))
        return c
    }
    public override class func from(config c: JSON) throws -> Layer {
        ThresholdedReLU(theta: try c.float("theta", default: 1), name: c["name"]?.stringValue)
    }
}

/// Leaky relu; the layer's default slope is 0.3 (the activation's is 0.2).
/// Keras 2's `alpha` is accepted for `negative_slope`.
public final class LeakyReLU: Layer {
    public let negativeSlope: Float
    public init(negativeSlope: Float = 0.3, name: String? = nil) {
        self.negativeSlope = negativeSlope
        super.init(name: name)
        supportsMasking = true
    }
    public convenience init(alpha: Float, name: String? = nil) { self.init(negativeSlope: alpha, name: name) }
    public override func build(_ shapes: [Shape]) throws {
        guard negativeSlope >= 0 else { throw KerasError("\(name): negative_slope must be non-negative, got \(negativeSlope)") }
    }
    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        [try context.builder.emit("leaky_relu", [inputs[0]], ["alpha": .float(negativeSlope)])]
    }
    public override var config: JSON {
        var c = super.config
        c.set("negative_slope", JSON(negativeSlope))
        return c
    }
    public override class func from(config c: JSON) throws -> Layer {
        LeakyReLU(negativeSlope: try c.optionalFloat("negative_slope") ?? c.float("alpha", default: 0.3), name: c["name"]?.stringValue)
    }
}

/// Parametric relu: `relu(x) - alpha * relu(-x)` with a learned alpha per
/// element, shared along `sharedAxes` (1-based, excluding the batch).
public final class PReLU: Layer {
    let initSpec: InitializerConvertible
    public var alphaRegularizer: Regularizer?
    public var alphaConstraint: Constraint?
    public let sharedAxes: [Int]?
    public private(set) var alpha: Variable?

    public init(alphaInitializer: InitializerConvertible = "zeros", alphaRegularizer: Regularizer? = nil,
                alphaConstraint: Constraint? = nil, sharedAxes: [Int]? = nil, weights: [Tensor]? = nil, name: String? = nil) {
        self.initSpec = alphaInitializer
        self.alphaRegularizer = alphaRegularizer
        self.alphaConstraint = alphaConstraint
        self.sharedAxes = sharedAxes
        super.init(name: name)
        initialWeights = weights  // Keras 2's weights=: set once the layer is built
        supportsMasking = true
    }

    public override func build(_ shapes: [Shape]) throws {
        var shape = Array(shapes[0].dropFirst())
        for a in sharedAxes ?? [] {
            guard a >= 1 && a <= shape.count else { throw KerasError("\(name): shared axis \(a) is out of range for input \(formatShape(shapes[0]))") }
            shape[a - 1] = 1
        }
        guard shape.allSatisfy({ $0 != nil }) else {
            throw KerasError("\(name): PReLU needs known non-batch dimensions (or shared_axes over unknown ones), got \(formatShape(shapes[0]))")
        }
        alpha = try addWeight(name: "alpha", shape: shape.map { $0! }, initializer: initSpec.resolveInitializer(),
                              regularizer: alphaRegularizer, constraint: alphaConstraint)
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        let x = inputs[0]
        let neg = try b.mul(context.read(alpha!), b.relu(b.neg(x)))
        return [try b.sub(b.relu(x), neg)]
    }

    public override var config: JSON {
        var c = super.config
        c.set("alpha_initializer", (try? Initializers.serialize(initSpec.resolveInitializer())) ?? .null)
        c.set("alpha_regularizer", alphaRegularizer?.serialized ?? .null)
        c.set("alpha_constraint", alphaConstraint?.serialized ?? .null)
        c.set("shared_axes", sharedAxes.map { JSON($0) } ?? .null)
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        PReLU(alphaInitializer: AnyInitializer(try c["alpha_initializer"].map(Initializers.get) ?? Zeros()),
              alphaRegularizer: try Regularizers.get(c["alpha_regularizer"]), alphaConstraint: try Constraints.get(c["alpha_constraint"]),
              sharedAxes: try c.ints("shared_axes"), name: c["name"]?.stringValue)
    }
}

/// Softmax over one axis or jointly over several.
public final class Softmax: Layer {
    public let axis: [Int]
    public init(axis: Int = -1, name: String? = nil) { self.axis = [axis]; super.init(name: name); supportsMasking = true }
    public init(axes: [Int], name: String? = nil) { self.axis = axes; super.init(name: name); supportsMasking = true }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        let x = inputs[0]
        if axis.count == 1 { return [try b.softmax(x, axis: axis[0])] }
        let rank = b.type(of: x).rank
        let axes = axis.map { $0 < 0 ? $0 + rank : $0 }
        let shifted = try b.sub(x, b.stopGradient(b.reduceMax(x, axes: axes, keepDims: true)))
        let e = try b.exp(shifted)
        return [try b.div(e, b.reduceSum(e, axes: axes, keepDims: true))]
    }

    public override var config: JSON {
        var c = super.config
        c.set("axis", axis.count == 1 ? JSON(axis[0]) : JSON(axis))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let a = try c.ints("axis") ?? [-1]
        return a.count == 1 ? Softmax(axis: a[0], name: c["name"]?.stringValue) : Softmax(axes: a, name: c["name"]?.stringValue)
    }
}

extension GraphBuilder {
    public func stopGradient(_ x: Value) throws -> Value { try emit("stop_gradient", [x]) }
}
