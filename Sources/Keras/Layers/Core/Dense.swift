import KerasIR

/// `activation(dot(x, kernel) + bias)`; on rank > 2 inputs the last axis is contracted.
public final class Dense: Layer {
    public let units: Int
    public private(set) var activation: ActivationFunction = .linear
    public let useBias: Bool
    let activationSpec: ActivationConvertible?
    let kernelInitSpec: InitializerConvertible
    let biasInitSpec: InitializerConvertible
    public var kernelRegularizer: Regularizer?
    public var biasRegularizer: Regularizer?
    public var kernelConstraint: Constraint?
    public var biasConstraint: Constraint?
    public private(set) var kernel: Variable?
    public private(set) var bias: Variable?

    public init(_ units: Int, activation: ActivationConvertible? = nil, useBias: Bool = true,
                kernelInitializer: InitializerConvertible = "glorot_uniform", biasInitializer: InitializerConvertible = "zeros",
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil, activityRegularizer: Regularizer? = nil,
                kernelConstraint: Constraint? = nil, biasConstraint: Constraint? = nil,
                inputShape: [Int]? = nil, inputDim: Int? = nil, weights: [Tensor]? = nil, name: String? = nil) {
        self.units = units
        self.activationSpec = activation
        self.useBias = useBias
        self.kernelInitSpec = kernelInitializer
        self.biasInitSpec = biasInitializer
        self.kernelRegularizer = kernelRegularizer
        self.biasRegularizer = biasRegularizer
        self.kernelConstraint = kernelConstraint
        self.biasConstraint = biasConstraint
        super.init(name: name)
        initialWeights = weights  // Keras 2's weights=: set once the layer is built
        self.activityRegularizer = activityRegularizer
        self.declaredInputShape = declaredShape(inputShape: inputShape, inputDim: inputDim)
        if let a = try? activation?.resolveActivation() { self.activation = a }
        supportsMasking = true
    }

    public override func build(_ shapes: [Shape]) throws {
        guard units > 0 else { throw KerasError("\(name): units must be positive, got \(units)") }
        activation = try activationSpec?.resolveActivation() ?? .linear
        let s = shapes[0]
        guard s.count >= 2, let last = s.last!, last > 0 else {
            throw KerasError("\(name): Dense expects an input of rank 2 or more with a known last dimension, got \(formatShape(s))")
        }
        kernel = try addWeight(name: "kernel", shape: [last, units], initializer: kernelInitSpec.resolveInitializer(),
                               regularizer: kernelRegularizer, constraint: kernelConstraint)
        if useBias {
            bias = try addWeight(name: "bias", shape: [units], initializer: biasInitSpec.resolveInitializer(),
                                 regularizer: biasRegularizer, constraint: biasConstraint)
        }
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        let x = inputs[0]
        let xt = b.type(of: x)
        guard let k = kernel, xt.shape.last == k.shape[0] else {
            throw KerasError("\(name): expected an input whose last dimension is \(kernel?.shape[0] ?? -1), got \(formatShape(kerasShape(xt.shape)))")
        }
        var y = try b.matmul(x, context.read(k))
        if let bias { y = try b.add(y, context.read(bias)) }
        return [try activation(y, b)]
    }

    public override var config: JSON {
        var c = super.config
        c.set("units", JSON(units))
        c.set("quantization_config", .null)  // Keras 3 writes it; this library does not quantize
        c.set("activation", activationJSON(activation))
        c.set("use_bias", JSON(useBias))
        c.set("kernel_initializer", (try? Initializers.serialize(kernelInitSpec.resolveInitializer())) ?? .null)
        c.set("bias_initializer", (try? Initializers.serialize(biasInitSpec.resolveInitializer())) ?? .null)
        c.set("kernel_regularizer", kernelRegularizer?.serialized ?? .null)
        c.set("bias_regularizer", biasRegularizer?.serialized ?? .null)
        c.set("kernel_constraint", kernelConstraint?.serialized ?? .null)
        c.set("bias_constraint", biasConstraint?.serialized ?? .null)
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        guard let units = try c.optionalInt("units") else { throw KerasError("Dense config needs units") }
        let a = try ActivationFunction.get(c["activation"])
        let l = Dense(units, activation: a, useBias: try c.bool("use_bias", default: true),
                      kernelInitializer: try c["kernel_initializer"].map(Initializers.get).map(AnyInitializer.init) ?? AnyInitializer(GlorotUniform()),
                      biasInitializer: try c["bias_initializer"].map(Initializers.get).map(AnyInitializer.init) ?? AnyInitializer(Zeros()),
                      kernelRegularizer: try Regularizers.get(c["kernel_regularizer"]), biasRegularizer: try Regularizers.get(c["bias_regularizer"]),
                      activityRegularizer: try Regularizers.get(c["activity_regularizer"]),
                      kernelConstraint: try Constraints.get(c["kernel_constraint"]), biasConstraint: try Constraints.get(c["bias_constraint"]),
                      name: c["name"]?.stringValue)
        l.trainable = try c.bool("trainable", default: true)
        try l.applyInputShape(from: c)
        return l
    }
}

/// Wraps any initializer as an InitializerConvertible.
public struct AnyInitializer: InitializerConvertible {
    public let base: Initializer
    public init(_ base: Initializer) { self.base = base }
    public func resolveInitializer() -> Initializer { base }
}
