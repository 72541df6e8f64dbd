import KerasIR

/// Conv1D, Conv2D and Conv3D: `activation(conv(x, kernel) + bias)` with
/// Keras's kernel layout (*kernel_size, in_channels / groups, filters), in
/// either data format.
public class BaseConv: Layer {
    public let rank: Int
    public let filters: Int
    public let kernelSize: [Int]
    public let strides: [Int]
    public let padding: String
    public let dataFormat: String
    public let dilationRate: [Int]
    public let groups: Int
    public let useBias: Bool
    let activationSpec: ActivationConvertible?
    public internal(set) var activation: ActivationFunction = .linear
    let kernelInitSpec: InitializerConvertible
    let biasInitSpec: InitializerConvertible
    public var kernelRegularizer: Regularizer?, biasRegularizer: Regularizer?
    public var kernelConstraint: Constraint?, biasConstraint: Constraint?
    public private(set) var kernel: Variable?
    public internal(set) var bias: Variable?

    init(rank: Int, filters: Int, kernelSize: [Int], strides: [Int], padding: String, dataFormat: String?, dilationRate: [Int],
         groups: Int, activation: ActivationConvertible?, useBias: Bool, kernelInitializer: InitializerConvertible,
         biasInitializer: InitializerConvertible, kernelRegularizer: Regularizer?, biasRegularizer: Regularizer?,
         activityRegularizer: Regularizer?, kernelConstraint: Constraint?, biasConstraint: Constraint?,
         inputShape: [Int]?, name: String?) {
        self.rank = rank
        self.filters = filters
        self.kernelSize = kernelSize.count == 1 ? [Int](repeating: kernelSize[0], count: rank) : kernelSize
        self.strides = strides.count == 1 ? [Int](repeating: strides[0], count: rank) : strides
        self.padding = padding.lowercased()
        self.dataFormat = dataFormat ?? ImageDataFormat.current
        self.dilationRate = dilationRate.count == 1 ? [Int](repeating: dilationRate[0], count: rank) : dilationRate
        self.groups = groups
        self.useBias = useBias
        self.activationSpec = activation
        self.kernelInitSpec = kernelInitializer
        self.biasInitSpec = biasInitializer
        self.kernelRegularizer = kernelRegularizer
        self.biasRegularizer = biasRegularizer
        self.kernelConstraint = kernelConstraint
        self.biasConstraint = biasConstraint
        super.init(name: name)
        self.activityRegularizer = activityRegularizer
        declaredInputShape = inputShape.map { $0.map { Optional($0) } }
        if let a = try? activation?.resolveActivation() { self.activation = a }
    }

    /// Keras's constructor checks, raised when the layer is built.
    func validate(_ shapes: [Shape]) throws {
        guard filters > 0 else {
            throw KerasError("\(name): invalid value for argument `filters`; expected a strictly positive value, received filters=\(filters)")
        }
        guard kernelSize.count == rank, strides.count == rank, dilationRate.count == rank else {
            throw KerasError("\(name): kernel_size \(kernelSize), strides \(strides) and dilation_rate \(dilationRate) must have \(rank) values each")
        }
        let inRange: (Int) -> Bool = { $0 > 0 && $0 <= TensorType.maxDimension }
        guard kernelSize.allSatisfy(inRange), strides.allSatisfy(inRange), dilationRate.allSatisfy(inRange),
              filters <= TensorType.maxDimension, groups <= TensorType.maxDimension else {
            throw KerasError("\(name): kernel_size \(kernelSize), strides \(strides), dilation_rate \(dilationRate), filters \(filters) and groups \(groups) must be positive and at most \(TensorType.maxDimension)")
        }
        if strides.contains(where: { $0 != 1 }) && dilationRate.contains(where: { $0 != 1 }) {
            throw KerasError("\(name): `strides > 1` not supported in conjunction with `dilation_rate > 1`; received strides=\(strides) and dilation_rate=\(dilationRate)")
        }
        guard ["valid", "same"].contains(padding) || (padding == "causal" && rank == 1) else {
            throw KerasError("\(name): padding must be 'valid' or 'same'\(rank == 1 ? " or 'causal'" : ""), got '\(padding)'")
        }
        try ImageDataFormat.validate(dataFormat, layer: name)
        let s = shapes[0]
        guard s.count == rank + 2 else {
            throw KerasError("\(name): expected an input of rank \(rank + 2), got shape \(formatShape(s))")
        }
        let (_, spatial, channels) = splitShape(s, format: dataFormat)
        guard let c = channels else { throw KerasError("\(name): the channel dimension of the input must be known, got \(formatShape(s))") }
        guard groups > 0, c % groups == 0, filters % groups == 0 else {
            throw KerasError("\(name): the number of input channels (\(c)) and filters (\(filters)) must be divisible by groups (\(groups))")
        }
        for (a, n) in spatial.enumerated() {
            guard let n else { continue }
            let eff = (kernelSize[a] - 1) * dilationRate[a] + 1
            let (pb, pa) = ConvArithmetic.padding(padding, input: n, kernel: kernelSize[a], stride: strides[a], dilation: dilationRate[a])
            if n + pb + pa < eff {
                throw KerasError("\(name): the kernel (effective size \(eff) on spatial axis \(a)) is larger than the padded input (\(n + pb + pa)); computed output size would be negative: \((n + pb + pa - eff) / strides[a] + 1)")
            }
        }
    }

    public override func build(_ shapes: [Shape]) throws {
        try validate(shapes)
        activation = try activationSpec?.resolveActivation() ?? .linear
        let c = splitShape(shapes[0], format: dataFormat).2!
        kernel = try addWeight(name: "kernel", shape: kernelSize + [c / groups, filters], initializer: kernelInitSpec.resolveInitializer(),
                               regularizer: kernelRegularizer, constraint: kernelConstraint)
        if useBias {
            bias = try addWeight(name: "bias", shape: [filters], initializer: biasInitSpec.resolveInitializer(),
                                 regularizer: biasRegularizer, constraint: biasConstraint)
        }
    }

    /// conv(x, w) in channels-last with this layer's strides, dilation and Keras padding.
    func convolve(_ x: Value, _ w: Value, groups g: Int, _ b: GraphBuilder, strides s: [Int]? = nil, dilation: [Int]? = nil,
                  kernelSize k: [Int]? = nil) throws -> Value {
        let spatial = Array(b.type(of: x).shape.dropFirst().dropLast())
        let st = s ?? strides, dl = dilation ?? dilationRate, ks = k ?? kernelSize
        var pads: [Int] = []
        for a in 0..<spatial.count {
            let (pb, pa) = ConvArithmetic.padding(padding, input: spatial[a], kernel: ks[a], stride: st[a], dilation: dl[a])
            pads += [pb, pa]
        }
        return try b.conv(x, w, ConvGeometry(strides: st, dilation: dl, pads: pads, groups: g))
    }

    /// What every convolution layer does around its own product: channels-first
    /// data in and out through transposes (the optimizer cancels adjacent
    /// pairs), then bias and activation.
    func convolutionFrame(_ input: Value, _ context: CallContext, product: (Value) throws -> Value) throws -> [Value] {
        let b = context.builder
        let x = dataFormat == "channels_first" ? try ConvArithmetic.toChannelsLast(input, b) : input
        var y = try product(x)
        if let bias { y = try b.add(y, context.read(bias)) }
        y = try activation(y, b)
        if dataFormat == "channels_first" { y = try ConvArithmetic.toChannelsFirst(y, b) }
        return [y]
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        try convolutionFrame(inputs[0], context) { x in try convolve(x, context.read(kernel!), groups: groups, context.builder) }
    }

    public override var config: JSON {
        var c = super.config
        c.set("filters", JSON(filters))
        c.set("kernel_size", JSON(kernelSize))
        c.set("strides", JSON(strides))
        c.set("padding", .string(padding))
        c.set("data_format", .string(dataFormat))
        c.set("dilation_rate", JSON(dilationRate))
        c.set("groups", JSON(groups))
        c.set("activation", activationJSON(activation))
        c.set("use_bias", JSON(useBias))
        c.set("kernel_initializer", (try? Initializers.serialize(kernelInitSpec.resolveInitializer())) ?? .null)
        c.set("bias_initializer", (try? Initializers.serialize(biasInitSpec.resolveInitializer())) ?? .null)
        c.set("kernel_regularizer", kernelRegularizer?.serialized ?? .null)
        c.set("bias_regularizer", biasRegularizer?.serialized ?? .null)
        c.set("activity_regularizer", activityRegularizer?.serialized ?? .null)
        c.set("kernel_constraint", kernelConstraint?.serialized ?? .null)
        c.set("bias_constraint", biasConstraint?.serialized ?? .null)
        return c
    }

    /// The arguments every conv config carries.
    struct ConfigArgs {
        var filters: Int, kernelSize: [Int], strides: [Int], padding: String, dataFormat: String?, dilation: [Int], groups: Int
        var activation: ActivationFunction, useBias: Bool, kernelInit: AnyInitializer, biasInit: AnyInitializer
        var kernelReg: Regularizer?, biasReg: Regularizer?, activityReg: Regularizer?, kernelCons: Constraint?, biasCons: Constraint?
        var name: String?

        init(_ c: JSON, rank: Int) throws {
            filters = try c.int("filters", default: 0)
            kernelSize = try c.ints("kernel_size") ?? [1]
            strides = try c.ints("strides") ?? [1]
            padding = try c.string("padding", default: "valid")
            dataFormat = c["data_format"]?.stringValue
            dilation = try c.ints("dilation_rate") ?? [1]
            groups = try c.int("groups", default: 1)
            // An empty list names no size (a config with kernel_size [] was read at index 0; found by the fuzzer).
            guard !kernelSize.isEmpty, !strides.isEmpty, !dilation.isEmpty else {
                throw KerasError("\(c["name"]?.stringValue ?? "conv"): kernel_size \(kernelSize), strides \(strides) and dilation_rate \(dilation) must not be empty")
            }
            activation = try ActivationFunction.get(c["activation"])
            useBias = try c.bool("use_bias", default: true)
            kernelInit = AnyInitializer(try c["kernel_initializer"].map(Initializers.get) ?? GlorotUniform())
            biasInit = AnyInitializer(try c["bias_initializer"].map(Initializers.get) ?? Zeros())
            kernelReg = try Regularizers.get(c["kernel_regularizer"]); biasReg = try Regularizers.get(c["bias_regularizer"])
            activityReg = try Regularizers.get(c["activity_regularizer"])
            kernelCons = try Constraints.get(c["kernel_constraint"]); biasCons = try Constraints.get(c["bias_constraint"])
            name = c["name"]?.stringValue
        }
    }
}

public final class Conv1D: BaseConv {
    public init(filters: Int, kernelSize: Int, strides: Int = 1, padding: String = "valid", dataFormat: String? = nil,
                dilationRate: Int = 1, groups: Int = 1, activation: ActivationConvertible? = nil, useBias: Bool = true,
                kernelInitializer: InitializerConvertible = "glorot_uniform", biasInitializer: InitializerConvertible = "zeros",
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil, activityRegularizer: Regularizer? = nil,
                kernelConstraint: Constraint? = nil, biasConstraint: Constraint? = nil, inputShape: [Int]? = nil, weights: [Tensor]? = nil, name: String? = nil) {
        super.init(rank: 1, filters: filters, kernelSize: [kernelSize], strides: [strides], padding: padding, dataFormat: dataFormat,
                   dilationRate: [dilationRate], groups: groups, activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                   biasInitializer: biasInitializer, kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer,
                   activityRegularizer: activityRegularizer, kernelConstraint: kernelConstraint, biasConstraint: biasConstraint,
                   inputShape: inputShape, name: name)
        initialWeights = weights  // Keras 2's weights=: set once the layer is built
    }
    public override class func from(config c: JSON) throws -> Layer {
        let a = try ConfigArgs(c, rank: 1)
        let l = Conv1D(filters: a.filters, kernelSize: a.kernelSize[0], strides: a.strides[0], padding: a.padding, dataFormat: a.dataFormat,
                       dilationRate: a.dilation[0], groups: a.groups, activation: a.activation, useBias: a.useBias, kernelInitializer: a.kernelInit,
                       biasInitializer: a.biasInit, kernelRegularizer: a.kernelReg, biasRegularizer: a.biasReg, activityRegularizer: a.activityReg,
                       kernelConstraint: a.kernelCons, biasConstraint: a.biasCons, name: a.name)
        try l.applyInputShape(from: c)
        return l
    }
}

public final class Conv2D: BaseConv {
    public init(filters: Int, kernelSize: [Int], strides: [Int] = [1, 1], padding: String = "valid", dataFormat: String? = nil,
                dilationRate: [Int] = [1, 1], groups: Int = 1, activation: ActivationConvertible? = nil, useBias: Bool = true,
                kernelInitializer: InitializerConvertible = "glorot_uniform", biasInitializer: InitializerConvertible = "zeros",
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil, activityRegularizer: Regularizer? = nil,
                kernelConstraint: Constraint? = nil, biasConstraint: Constraint? = nil, inputShape: [Int]? = nil,
                weights: [Tensor]? = nil, name: String? = nil) {
        super.init(rank: 2, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding, dataFormat: dataFormat,
                   dilationRate: dilationRate, groups: groups, activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                   biasInitializer: biasInitializer, kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer,
                   activityRegularizer: activityRegularizer, kernelConstraint: kernelConstraint, biasConstraint: biasConstraint,
                   inputShape: inputShape, name: name)
        initialWeights = weights  // Keras 2's weights=: set once the layer is built
    }
    /// `Conv2D(32, 3, activation: "relu")`: one size for both axes.
    public convenience init(_ filters: Int, _ kernelSize: Int, strides: Int = 1, padding: String = "valid", dataFormat: String? = nil,
                            activation: ActivationConvertible? = nil, useBias: Bool = true, inputShape: [Int]? = nil, name: String? = nil) {
        self.init(filters: filters, kernelSize: [kernelSize, kernelSize], strides: [strides, strides], padding: padding, dataFormat: dataFormat,
                  activation: activation, useBias: useBias, inputShape: inputShape, name: name)
    }
    public convenience init(_ filters: Int, _ kernelSize: [Int], padding: String = "valid", dataFormat: String? = nil,
                            activation: ActivationConvertible? = nil, inputShape: [Int]? = nil, name: String? = nil) {
        self.init(filters: filters, kernelSize: kernelSize, padding: padding, dataFormat: dataFormat, activation: activation,
                  inputShape: inputShape, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        let a = try ConfigArgs(c, rank: 2)
        let l = Conv2D(filters: a.filters, kernelSize: a.kernelSize, strides: a.strides, padding: a.padding, dataFormat: a.dataFormat,
                       dilationRate: a.dilation, groups: a.groups, activation: a.activation, useBias: a.useBias, kernelInitializer: a.kernelInit,
                       biasInitializer: a.biasInit, kernelRegularizer: a.kernelReg, biasRegularizer: a.biasReg, activityRegularizer: a.activityReg,
                       kernelConstraint: a.kernelCons, biasConstraint: a.biasCons, name: a.name)
        try l.applyInputShape(from: c)
        return l
    }
}

public final class Conv3D: BaseConv {
    public init(filters: Int, kernelSize: [Int], strides: [Int] = [1, 1, 1], padding: String = "valid", dataFormat: String? = nil,
                dilationRate: [Int] = [1, 1, 1], groups: Int = 1, activation: ActivationConvertible? = nil, useBias: Bool = true,
                kernelInitializer: InitializerConvertible = "glorot_uniform", biasInitializer: InitializerConvertible = "zeros",
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil, activityRegularizer: Regularizer? = nil,
                kernelConstraint: Constraint? = nil, biasConstraint: Constraint? = nil, inputShape: [Int]? = nil, weights: [Tensor]? = nil, name: String? = nil) {
        super.init(rank: 3, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding, dataFormat: dataFormat,
                   dilationRate: dilationRate, groups: groups, activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                   biasInitializer: biasInitializer, kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer,
                   activityRegularizer: activityRegularizer, kernelConstraint: kernelConstraint, biasConstraint: biasConstraint,
                   inputShape: inputShape, name: name)
        initialWeights = weights  // Keras 2's weights=: set once the layer is built
    }
    public override class func from(config c: JSON) throws -> Layer {
        let a = try ConfigArgs(c, rank: 3)
        let l = Conv3D(filters: a.filters, kernelSize: a.kernelSize, strides: a.strides, padding: a.padding, dataFormat: a.dataFormat,
                       dilationRate: a.dilation, groups: a.groups, activation: a.activation, useBias: a.useBias, kernelInitializer: a.kernelInit,
                       biasInitializer: a.biasInit, kernelRegularizer: a.kernelReg, biasRegularizer: a.biasReg, activityRegularizer: a.activityReg,
                       kernelConstraint: a.kernelCons, biasConstraint: a.biasCons, name: a.name)
        try l.applyInputShape(from: c)
        return l
    }
}

/// Keras 2's `Convolution2D(64, 3, 3, border_mode: "same")`.
public func Convolution2D(_ filters: Int, _ rows: Int, _ cols: Int, borderMode: String = "valid", subsample: [Int] = [1, 1],
                          activation: ActivationConvertible? = nil, dimOrdering: String? = nil, inputShape: [Int]? = nil,
                          name: String? = nil) -> Conv2D {
    let format = dimOrdering.map { $0 == "th" ? "channels_first" : $0 == "tf" ? "channels_last" : $0 }
    return Conv2D(filters: filters, kernelSize: [rows, cols], strides: subsample, padding: borderMode, dataFormat: format,
                  activation: activation, inputShape: inputShape, name: name)
}
