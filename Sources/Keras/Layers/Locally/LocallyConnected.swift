import KerasIR

/// Keras 2's LocallyConnected1D/2D: a convolution whose weights are not
/// shared, one kernel per output position (Keras 3 dropped them; Keras 2
/// configs name them). Padding is "valid", as in Keras 2. Weights: kernel
/// (positions, kernel volume × channels, filters) and bias (output shape),
/// Keras 2's implementation 1 layout; implementations 2 and 3 are accepted
/// and lowered the same way. The patches of every position are gathered
/// with slices, then one batched GEMM applies each position's kernel.
public class LocallyConnected: Layer {
    public let rank: Int
    public let filters: Int
    public let kernelSize: [Int]
    public let strides: [Int]
    public let padding: String
    public let dataFormat: String
    public let implementation: Int
    public private(set) var activation: ActivationFunction = .linear
    public let useBias: Bool
    let activationSpec: ActivationConvertible?
    let kernelInitSpec: InitializerConvertible
    let biasInitSpec: InitializerConvertible
    public var kernelRegularizer: Regularizer?, biasRegularizer: Regularizer?
    public var kernelConstraint: Constraint?, biasConstraint: Constraint?
    public private(set) var kernel: Variable?
    public private(set) var bias: Variable?
    /// Output spatial sizes, known once built.
    public private(set) var outputSpatial: [Int] = []

    init(rank: Int, filters: Int, kernelSize: [Int], strides: [Int], padding: String, dataFormat: String?, activation: ActivationConvertible?,
         useBias: Bool, kernelInitializer: InitializerConvertible, biasInitializer: InitializerConvertible, kernelRegularizer: Regularizer?,
         biasRegularizer: Regularizer?, activityRegularizer: Regularizer?, kernelConstraint: Constraint?, biasConstraint: Constraint?,
         implementation: Int, inputShape: [Int]?, name: String?) {
        self.rank = rank
        self.filters = filters
        self.kernelSize = kernelSize.count == 1 ? [Int](repeating: kernelSize[0], count: rank) : kernelSize
        self.strides = strides.count == 1 ? [Int](repeating: strides[0], count: rank) : strides
        self.padding = padding
        self.dataFormat = dataFormat ?? ImageDataFormat.current
        self.activationSpec = activation
        self.useBias = useBias
        self.kernelInitSpec = kernelInitializer
        self.biasInitSpec = biasInitializer
        self.kernelRegularizer = kernelRegularizer
        self.biasRegularizer = biasRegularizer
        self.kernelConstraint = kernelConstraint
        self.biasConstraint = biasConstraint
        self.implementation = implementation
        super.init(name: name)
        self.activityRegularizer = activityRegularizer
        declaredInputShape = declaredShape(inputShape: inputShape, inputDim: nil)
    }

    public override func build(_ shapes: [Shape]) throws {
        try ImageDataFormat.validate(dataFormat, layer: name)
        let inRange: (Int) -> Bool = { $0 > 0 && $0 <= TensorType.maxDimension }
        guard filters > 0, filters <= TensorType.maxDimension, kernelSize.count == rank, strides.count == rank,
              kernelSize.allSatisfy(inRange), strides.allSatisfy(inRange) else {
            throw KerasError("\(name): filters \(filters), kernel_size \(kernelSize) and strides \(strides) must be positive, with \(rank) sizes each")
        }
        guard padding == "valid" else { throw KerasError("\(name): LocallyConnected\(rank)D supports only padding='valid', got '\(padding)'") }
        guard (1...3).contains(implementation) else { throw KerasError("\(name): implementation must be 1, 2 or 3, got \(implementation)") }
        let s = shapes[0]
        guard s.count == rank + 2 else { throw KerasError("\(name): expected an input of rank \(rank + 2), got \(formatShape(s))") }
        let (_, spatial, channels) = splitShape(s, format: dataFormat)
        guard let c = channels, spatial.allSatisfy({ $0 != nil }) else {
            throw KerasError("\(name): the spatial and channel dimensions must be known, got \(formatShape(s))")
        }
        outputSpatial = try spatial.enumerated().map { a, n in
            guard let n, n >= kernelSize[a] else {
                throw KerasError("\(name): the kernel (\(kernelSize[a])) is larger than the input (\(spatial[a].map(String.init) ?? "None")) on spatial axis \(a)")
            }
            return (n - kernelSize[a]) / strides[a] + 1
        }
        activation = try activationSpec?.resolveActivation() ?? .linear
        let positions = try MemoryLimit.elementCount(outputSpatial, name)
        let volume = try MemoryLimit.elementCount(kernelSize + [c], name)
        kernel = try addWeight(name: "kernel", shape: [positions, volume, filters], initializer: kernelInitSpec.resolveInitializer(),
                               regularizer: kernelRegularizer, constraint: kernelConstraint)
        if useBias {
            bias = try addWeight(name: "bias", shape: outputSpatial + [filters], initializer: biasInitSpec.resolveInitializer(),
                                 regularizer: biasRegularizer, constraint: biasConstraint)
        }
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        guard let kernel else { throw KerasError("\(name): the layer is not built") }
        var x = inputs[0]
        if dataFormat == "channels_first" { x = try ConvArithmetic.toChannelsLast(x, b) }
        let c = b.type(of: x).shape.last!
        let volume = kernelSize.reduce(1, *) * c
        // Every output position's patch, flattened in (kernel..., channels) order: [batch, 1, volume] each.
        var patches: [Value] = []
        var index = [Int](repeating: 0, count: rank)
        let positions = outputSpatial.reduce(1, *)
        for _ in 0..<positions {
            let begin = [0] + (0..<rank).map { index[$0] * strides[$0] } + [0]
            let patch = try b.emit("slice", [x], ["begin": .ints(begin), "size": .ints([-1] + kernelSize + [c])])
            patches.append(try b.reshape(patch, [-1, 1, volume]))
            var a = rank - 1
            while a >= 0 { index[a] += 1; if index[a] < outputSpatial[a] { break }; index[a] = 0; a -= 1 }
        }
        let all = patches.count == 1 ? patches[0] : try b.emit("concat", patches, ["axis": .int(1)])   // [batch, positions, volume]
        let perPosition = try b.transpose(all, [1, 0, 2])                                                 // [positions, batch, volume]
        let products = try b.matmul(perPosition, context.read(kernel))                                    // [positions, batch, filters]
        var y = try b.reshape(b.transpose(products, [1, 0, 2]), [-1] + outputSpatial + [filters])
        if let bias { y = try b.add(y, context.read(bias)) }
        y = try activation(y, b)
        if dataFormat == "channels_first" { y = try ConvArithmetic.toChannelsFirst(y, b) }
        return [y]
    }

    public override var config: JSON {
        var c = super.config
        c.set("filters", JSON(filters))
        c.set("kernel_size", JSON(kernelSize))
        c.set("strides", JSON(strides))
        c.set("padding", .string(padding))
        c.set("data_format", .string(dataFormat))
        c.set("activation", activationJSON(activation))
        c.set("use_bias", .bool(useBias))
        c.set("kernel_initializer", (try? Initializers.serialize(kernelInitSpec.resolveInitializer())) ?? .null)
        c.set("bias_initializer", (try? Initializers.serialize(biasInitSpec.resolveInitializer())) ?? .null)
        c.set("kernel_regularizer", kernelRegularizer?.serialized ?? .null)
        c.set("bias_regularizer", biasRegularizer?.serialized ?? .null)
        c.set("activity_regularizer", activityRegularizer?.serialized ?? .null)
        c.set("kernel_constraint", kernelConstraint?.serialized ?? .null)
        c.set("bias_constraint", biasConstraint?.serialized ?? .null)
        c.set("implementation", JSON(implementation))
        return c
    }

    /// The layer a Keras 2 (or Keras 1: nb_filter, filter_length, subsample_length, border_mode) config describes.
    static func make(_ c: JSON, rank: Int) throws -> LocallyConnected {
        guard let filters = try c.optionalInt("filters") ?? c.optionalInt("nb_filter") else { throw KerasError("LocallyConnected\(rank)D config needs filters") }
        guard let k = try c.ints("kernel_size") ?? c.ints("filter_length"), !k.isEmpty else {
            throw KerasError("LocallyConnected\(rank)D config needs kernel_size")
        }
        let strides = try c.ints("strides") ?? c.ints("subsample_length") ?? c.ints("subsample") ?? [1]
        guard !strides.isEmpty else { throw KerasError("LocallyConnected\(rank)D config: strides must not be empty") }
        let padding = try c.string("padding", default: try c.string("border_mode", default: "valid"))
        let activation = try ActivationFunction.get(c["activation"])
        let kernelInit = AnyInitializer(try c["kernel_initializer"].map(Initializers.get) ?? GlorotUniform())
        let biasInit = AnyInitializer(try c["bias_initializer"].map(Initializers.get) ?? Zeros())
        let kernelReg = try Regularizers.get(c["kernel_regularizer"]), biasReg = try Regularizers.get(c["bias_regularizer"])
        let activityReg = try Regularizers.get(c["activity_regularizer"])
        let kernelCon = try Constraints.get(c["kernel_constraint"]), biasCon = try Constraints.get(c["bias_constraint"])
        let useBias = try c.bool("use_bias", default: true), implementation = try c.int("implementation", default: 1)
        let name = c["name"]?.stringValue
        let l: LocallyConnected
        if rank == 1 {
            l = LocallyConnected1D(filters: filters, kernelSize: k[0], strides: strides[0], padding: padding, activation: activation,
                                   useBias: useBias, kernelInitializer: kernelInit, biasInitializer: biasInit, kernelRegularizer: kernelReg,
                                   biasRegularizer: biasReg, activityRegularizer: activityReg, kernelConstraint: kernelCon,
                                   biasConstraint: biasCon, implementation: implementation, name: name)
        } else {
            l = LocallyConnected2D(filters: filters, kernelSize: k, strides: strides, padding: padding, dataFormat: c["data_format"]?.stringValue,
                                   activation: activation, useBias: useBias, kernelInitializer: kernelInit, biasInitializer: biasInit,
                                   kernelRegularizer: kernelReg, biasRegularizer: biasReg, activityRegularizer: activityReg,
                                   kernelConstraint: kernelCon, biasConstraint: biasCon, implementation: implementation, name: name)
        }
        l.trainable = try c.bool("trainable", default: true)
        try l.applyInputShape(from: c)
        return l
    }
}

public final class LocallyConnected1D: LocallyConnected {
    public init(filters: Int, kernelSize: Int, strides: Int = 1, padding: String = "valid", activation: ActivationConvertible? = nil,
                useBias: Bool = true, kernelInitializer: InitializerConvertible = "glorot_uniform", biasInitializer: InitializerConvertible = "zeros",
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil, activityRegularizer: Regularizer? = nil,
                kernelConstraint: Constraint? = nil, biasConstraint: Constraint? = nil, implementation: Int = 1,
                inputShape: [Int]? = nil, weights: [Tensor]? = nil, name: String? = nil) {
        super.init(rank: 1, filters: filters, kernelSize: [kernelSize], strides: [strides], padding: padding, dataFormat: "channels_last",
                   activation: activation, useBias: useBias, kernelInitializer: kernelInitializer, biasInitializer: biasInitializer,
                   kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer, activityRegularizer: activityRegularizer,
                   kernelConstraint: kernelConstraint, biasConstraint: biasConstraint, implementation: implementation,
                   inputShape: inputShape, name: name)
        initialWeights = weights  // Keras 2's weights=: set once the layer is built
    }
    public override class func from(config c: JSON) throws -> Layer { try make(c, rank: 1) }
}

public final class LocallyConnected2D: LocallyConnected {
    public init(filters: Int, kernelSize: [Int], strides: [Int] = [1, 1], padding: String = "valid", dataFormat: String? = nil,
                activation: ActivationConvertible? = nil, useBias: Bool = true, kernelInitializer: InitializerConvertible = "glorot_uniform",
                biasInitializer: InitializerConvertible = "zeros", kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil,
                activityRegularizer: Regularizer? = nil, kernelConstraint: Constraint? = nil, biasConstraint: Constraint? = nil,
                implementation: Int = 1, inputShape: [Int]? = nil, weights: [Tensor]? = nil, name: String? = nil) {
        super.init(rank: 2, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding, dataFormat: dataFormat,
                   activation: activation, useBias: useBias, kernelInitializer: kernelInitializer, biasInitializer: biasInitializer,
                   kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer, activityRegularizer: activityRegularizer,
                   kernelConstraint: kernelConstraint, biasConstraint: biasConstraint, implementation: implementation,
                   inputShape: inputShape, name: name)
        initialWeights = weights  // Keras 2's weights=: set once the layer is built
    }
    public override class func from(config c: JSON) throws -> Layer { try make(c, rank: 2) }
}
