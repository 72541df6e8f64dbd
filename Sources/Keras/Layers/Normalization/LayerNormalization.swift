import KerasIR

/// Normalizes each sample over `axis` (Ba et al. 2016), as Keras 3 computes
/// it: `x * inv + (beta - mean * inv)` with `inv = gamma / sqrt(var + eps)`.
/// With `rmsScaling` only the variance and gamma are used. gamma and beta
/// span the normalized axes (in the order given) and are reshaped to
/// broadcast, as Keras does.
public final class LayerNormalization: Layer {
    public let axis: [Int]
    public let epsilon: Float
    public let center: Bool
    public let scale: Bool
    public let rmsScaling: Bool
    let betaInitSpec: InitializerConvertible
    let gammaInitSpec: InitializerConvertible
    public var betaRegularizer: Regularizer?
    public var gammaRegularizer: Regularizer?
    public var betaConstraint: Constraint?
    public var gammaConstraint: Constraint?
    public private(set) var gamma: Variable?
    public private(set) var beta: Variable?
    /// Whether `axis` was given as one integer (the config writes it back so).
    var axisWasInt = false

    public init(axis: [Int] = [-1], epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true, rmsScaling: Bool = false,
                betaInitializer: InitializerConvertible = "zeros", gammaInitializer: InitializerConvertible = "ones",
                betaRegularizer: Regularizer? = nil, gammaRegularizer: Regularizer? = nil,
                betaConstraint: Constraint? = nil, gammaConstraint: Constraint? = nil, weights: [Tensor]? = nil, name: String? = nil) {
        self.axis = axis
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.rmsScaling = rmsScaling
        self.betaInitSpec = betaInitializer
        self.gammaInitSpec = gammaInitializer
        self.betaRegularizer = betaRegularizer
        self.gammaRegularizer = gammaRegularizer
        self.betaConstraint = betaConstraint
        self.gammaConstraint = gammaConstraint
        super.init(name: name)
        initialWeights = weights  // Keras 2's weights=: set once the layer is built
        supportsMasking = true
    }

    public convenience init(axis: Int, epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true, rmsScaling: Bool = false,
                            weights: [Tensor]? = nil, name: String? = nil) {
        self.init(axis: [axis], epsilon: epsilon, center: center, scale: scale, rmsScaling: rmsScaling, weights: weights, name: name)
        axisWasInt = true
    }

    /// The normalized axes as non-negative indices for inputs of `rank`.
    func resolvedAxes(rank: Int) throws -> [Int] {
        let axes = try axis.map { a -> Int in
            let r = a < 0 ? a + rank : a
            guard r >= 1 && r < rank else {
                throw KerasError("\(name): axis \(a) is out of bounds for an input of rank \(rank) (the batch axis cannot be normalized)")
            }
            return r
        }
        guard !axes.isEmpty, Set(axes).count == axes.count else {
            throw KerasError("\(name): axis \(axis) must name distinct axes")
        }
        return axes
    }

    public override func build(_ shapes: [Shape]) throws {
        let s = shapes[0]
        let axes = try resolvedAxes(rank: s.count)
        guard epsilon.isFinite, epsilon >= 0 else { throw KerasError("\(name): epsilon must be a non-negative number, got \(epsilon)") }
        let shape = try axes.map { a -> Int in
            guard let d = s[a] else { throw KerasError("\(name): the normalized axes of the input must be known, got \(formatShape(s))") }
            return d
        }
        if scale || rmsScaling {
            gamma = try addWeight(name: "gamma", shape: shape, initializer: gammaInitSpec.resolveInitializer(),
                                  regularizer: gammaRegularizer, constraint: gammaConstraint)
        }
        if center && !rmsScaling {
            beta = try addWeight(name: "beta", shape: shape, initializer: betaInitSpec.resolveInitializer(),
                                 regularizer: betaRegularizer, constraint: betaConstraint)
        }
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        let x = inputs[0]
        let shape = b.type(of: x).shape
        let axes = try resolvedAxes(rank: shape.count)
        // gamma and beta reshaped to broadcast unless they already align with the last axis.
        var broadcastShape = [Int](repeating: 1, count: shape.count)
        for a in axes { broadcastShape[a] = shape[a] }
        func spread(_ v: Variable?) throws -> Value? {
            guard let v else { return nil }
            let value = try context.read(v)
            return axes == [shape.count - 1] ? value : try b.reshape(value, broadcastShape)
        }
        let g = try spread(gamma), bt = try spread(beta)
        let mean = try b.reduceMean(x, axes: axes, keepDims: true)
        let variance = try b.reduceMean(b.square(b.sub(x, mean)), axes: axes, keepDims: true)
        var inv = try b.div(b.scalar(1), b.sqrt(b.add(variance, epsilon)))
        if rmsScaling {
            return [try b.mul(b.mul(x, inv), g ?? b.scalar(1))]
        }
        if let g { inv = try b.mul(inv, g) }
        var res = try b.neg(b.mul(mean, inv))
        if let bt { res = try b.add(res, bt) }
        return [try b.add(b.mul(x, inv), res)]
    }

    public override var config: JSON {
        var c = super.config
        c.set("axis", axisWasInt && axis.count == 1 ? JSON(axis[0]) : JSON(axis))
        c.set("epsilon", JSON(epsilon))
        c.set("center", .bool(center))
        c.set("scale", .bool(scale))
        c.set("rms_scaling", .bool(rmsScaling))
        c.set("beta_initializer", (try? Initializers.serialize(betaInitSpec.resolveInitializer())) ?? .null)
        c.set("gamma_initializer", (try? Initializers.serialize(gammaInitSpec.resolveInitializer())) ?? .null)
        c.set("beta_regularizer", betaRegularizer?.serialized ?? .null)
        c.set("gamma_regularizer", gammaRegularizer?.serialized ?? .null)
        c.set("beta_constraint", betaConstraint?.serialized ?? .null)
        c.set("gamma_constraint", gammaConstraint?.serialized ?? .null)
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let (name, trainable) = try baseArguments(c)
        let axisIsInt = c["axis"]?.intValue != nil
        let l = LayerNormalization(
            axis: try c.ints("axis") ?? [-1], epsilon: try c.float("epsilon", default: 1e-3),
            center: try c.bool("center", default: true), scale: try c.bool("scale", default: true),
            rmsScaling: try c.bool("rms_scaling", default: false),
            betaInitializer: try c["beta_initializer"].map(Initializers.get).map(AnyInitializer.init) ?? AnyInitializer(Zeros()),
            gammaInitializer: try c["gamma_initializer"].map(Initializers.get).map(AnyInitializer.init) ?? AnyInitializer(Ones()),
            betaRegularizer: try Regularizers.get(c["beta_regularizer"]), gammaRegularizer: try Regularizers.get(c["gamma_regularizer"]),
            betaConstraint: try Constraints.get(c["beta_constraint"]), gammaConstraint: try Constraints.get(c["gamma_constraint"]),
            name: name)
        l.axisWasInt = axisIsInt
        l.trainable = trainable
        try l.applyInputShape(from: c)
        return l
    }
}
