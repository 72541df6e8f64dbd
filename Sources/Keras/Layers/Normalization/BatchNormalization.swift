import KerasIR

/// Batch normalization as Keras 3 computes it: in training (and when the
/// layer is trainable) the batch's mean and biased variance over every axis
/// but `axis` normalize the input, and the moving statistics become
/// `moving * momentum + batch * (1 - momentum)` at the end of the step; at
/// inference the moving statistics are used. Weights, in Keras's order:
/// gamma, beta (trainable), moving_mean, moving_variance (not trainable).
public final class BatchNormalization: Layer {
    /// In training its statistics are the batch's.
    public override var mixesSamplesInTraining: Bool { trainable }
    public let axis: Int
    public let momentum: Float
    public let epsilon: Float
    public let center: Bool
    public let scale: Bool
    let betaInitSpec: InitializerConvertible
    let gammaInitSpec: InitializerConvertible
    let movingMeanInitSpec: InitializerConvertible
    let movingVarianceInitSpec: InitializerConvertible
    public var betaRegularizer: Regularizer?
    public var gammaRegularizer: Regularizer?
    public var betaConstraint: Constraint?
    public var gammaConstraint: Constraint?
    public private(set) var gamma: Variable?
    public private(set) var beta: Variable?
    public private(set) var movingMean: Variable?
    public private(set) var movingVariance: Variable?

    public init(axis: Int = -1, momentum: Float = 0.99, epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true,
                betaInitializer: InitializerConvertible = "zeros", gammaInitializer: InitializerConvertible = "ones",
                movingMeanInitializer: InitializerConvertible = "zeros", movingVarianceInitializer: InitializerConvertible = "ones",
                betaRegularizer: Regularizer? = nil, gammaRegularizer: Regularizer? = nil,
                betaConstraint: Constraint? = nil, gammaConstraint: Constraint? = nil, inputShape: [Int]? = nil, weights: [Tensor]? = nil, name: String? = nil) {
        self.axis = axis
        self.momentum = momentum
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.betaInitSpec = betaInitializer
        self.gammaInitSpec = gammaInitializer
        self.movingMeanInitSpec = movingMeanInitializer
        self.movingVarianceInitSpec = movingVarianceInitializer
        self.betaRegularizer = betaRegularizer
        self.gammaRegularizer = gammaRegularizer
        self.betaConstraint = betaConstraint
        self.gammaConstraint = gammaConstraint
        super.init(name: name)
        initialWeights = weights  // Keras 2's weights=: set once the layer is built
        declaredInputShape = declaredShape(inputShape: inputShape, inputDim: nil)
        supportsMasking = true
    }

    func resolvedAxis(rank: Int) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 1 && a < rank else {
            throw KerasError("\(name): axis \(axis) is out of bounds for an input of rank \(rank) (the batch axis cannot be normalized)")
        }
        return a
    }

    public override func build(_ shapes: [Shape]) throws {
        let s = shapes[0]
        let a = try resolvedAxis(rank: s.count)
        guard let c = s[a] else { throw KerasError("\(name): axis \(axis) of the input must be known, got \(formatShape(s))") }
        guard epsilon.isFinite, epsilon >= 0, momentum.isFinite else {
            throw KerasError("\(name): epsilon (\(epsilon)) must be a non-negative number and momentum (\(momentum)) a number")
        }
        if scale {
            gamma = try addWeight(name: "gamma", shape: [c], initializer: gammaInitSpec.resolveInitializer(),
                                  regularizer: gammaRegularizer, constraint: gammaConstraint)
        }
        if center {
            beta = try addWeight(name: "beta", shape: [c], initializer: betaInitSpec.resolveInitializer(),
                                 regularizer: betaRegularizer, constraint: betaConstraint)
        }
        movingMean = try addWeight(name: "moving_mean", shape: [c], initializer: movingMeanInitSpec.resolveInitializer(), trainable: false)
        movingVariance = try addWeight(name: "moving_variance", shape: [c], initializer: movingVarianceInitSpec.resolveInitializer(),
                                       trainable: false)
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        let x = inputs[0]
        let shape = b.type(of: x).shape
        let a = try resolvedAxis(rank: shape.count)
        guard let movingMean, let movingVariance else { throw KerasError("\(name): the layer is not built") }
        let reduction = (0..<shape.count).filter { $0 != a }
        // [C] statistics and weights as [1, ..., C, ..., 1].
        var spread = [Int](repeating: 1, count: shape.count)
        spread[a] = shape[a]
        func asInput(_ v: Value) throws -> Value { a == shape.count - 1 ? v : try b.reshape(v, spread) }
        let mean: Value, variance: Value
        if context.training && trainable {
            mean = try b.reduceMean(x, axes: reduction, keepDims: true)
            variance = try b.reduceMean(b.square(b.sub(x, mean)), axes: reduction, keepDims: true)
            let c = [shape[a]]
            let batchMean = try b.reshape(mean, c), batchVariance = try b.reshape(variance, c)
            let keep = momentum, take = 1 - momentum
            try context.addUpdate(movingMean, try b.add(b.mul(context.currentValue(movingMean), keep), b.mul(batchMean, take)))
            try context.addUpdate(movingVariance, try b.add(b.mul(context.currentValue(movingVariance), keep), b.mul(batchVariance, take)))
        } else {
            mean = try asInput(context.read(movingMean))
            variance = try asInput(context.read(movingVariance))
        }
        // x * inv + (beta - mean * inv), inv = gamma / sqrt(variance + epsilon): Keras's batch_normalization.
        var inv = try b.div(b.scalar(1), b.sqrt(b.add(variance, epsilon)))
        if let gamma { inv = try b.mul(inv, asInput(context.read(gamma))) }
        var res = try b.neg(b.mul(mean, inv))
        if let beta { res = try b.add(res, asInput(context.read(beta))) }
        return [try b.add(b.mul(x, inv), res)]
    }

    public override var config: JSON {
        var c = super.config
        c.set("axis", JSON(axis))
        c.set("momentum", JSON(momentum))
        c.set("epsilon", JSON(epsilon))
        c.set("center", .bool(center))
        c.set("scale", .bool(scale))
        // Keras 3's batch renormalization keys, at their defaults (renormalization is refused when read).
        c.set("renorm", false)
        c.set("renorm_clipping", .null)
        c.set("renorm_momentum", 0.99)
        for (key, spec) in [("beta_initializer", betaInitSpec), ("gamma_initializer", gammaInitSpec),
                            ("moving_mean_initializer", movingMeanInitSpec), ("moving_variance_initializer", movingVarianceInitSpec)] {
            c.set(key, (try? Initializers.serialize(spec.resolveInitializer())) ?? .null)
        }
        c.set("beta_regularizer", betaRegularizer?.serialized ?? .null)
        c.set("gamma_regularizer", gammaRegularizer?.serialized ?? .null)
        c.set("beta_constraint", betaConstraint?.serialized ?? .null)
        c.set("gamma_constraint", gammaConstraint?.serialized ?? .null)
        c.set("synchronized", .bool(false))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let (name, trainable) = try baseArguments(c)
        // Keras 2 wrote the axis as a list of one.
        let axes = try c.ints("axis") ?? [-1]
        guard axes.count == 1 else { throw KerasError("BatchNormalization config: axis must be one integer, got \(axes)") }
        guard try !c.bool("renorm", default: false) else {
            throw KerasError("BatchNormalization config \(name ?? ""): renorm (batch renormalization) is not supported")
        }
        if try c.bool("renorm", default: false) { throw KerasError("BatchNormalization config: renorm is not supported (Keras 3 dropped it)") }
        func initializer(_ key: String, _ def: Initializer) throws -> AnyInitializer {
            try c[key].flatMap { $0.isNull ? nil : $0 }.map(Initializers.get).map(AnyInitializer.init) ?? AnyInitializer(def)
        }
        let l = BatchNormalization(
            axis: axes[0], momentum: try c.float("momentum", default: 0.99), epsilon: try c.float("epsilon", default: 1e-3),
            center: try c.bool("center", default: true), scale: try c.bool("scale", default: true),
            betaInitializer: try initializer("beta_initializer", Zeros()), gammaInitializer: try initializer("gamma_initializer", Ones()),
            movingMeanInitializer: try initializer("moving_mean_initializer", Zeros()),
            movingVarianceInitializer: try initializer("moving_variance_initializer", Ones()),
            betaRegularizer: try Regularizers.get(c["beta_regularizer"]), gammaRegularizer: try Regularizers.get(c["gamma_regularizer"]),
            betaConstraint: try Constraints.get(c["beta_constraint"]), gammaConstraint: try Constraints.get(c["gamma_constraint"]),
            name: name)
        l.trainable = trainable
        try l.applyInputShape(from: c)
        return l
    }
}
