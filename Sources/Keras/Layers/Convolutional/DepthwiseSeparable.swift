import KerasIR

/// One filter bank per input channel (`depth_multiplier` each): a grouped
/// convolution with groups = channels over the kernel reshaped from Keras's
/// (kh, kw, C, depth_multiplier) layout.
public final class DepthwiseConv2D: BaseConv {
    public let depthMultiplier: Int
    public private(set) var depthwiseKernel: Variable?

    public init(kernelSize: [Int], strides: [Int] = [1, 1], padding: String = "valid", depthMultiplier: Int = 1, dataFormat: String? = nil,
                dilationRate: [Int] = [1, 1], activation: ActivationConvertible? = nil, useBias: Bool = true,
                depthwiseInitializer: InitializerConvertible = "glorot_uniform", biasInitializer: InitializerConvertible = "zeros",
                depthwiseRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil, activityRegularizer: Regularizer? = nil,
                depthwiseConstraint: Constraint? = nil, biasConstraint: Constraint? = nil, inputShape: [Int]? = nil, weights: [Tensor]? = nil, name: String? = nil) {
        self.depthMultiplier = depthMultiplier
        super.init(rank: 2, filters: 1, kernelSize: kernelSize, strides: strides, padding: padding, dataFormat: dataFormat,
                   dilationRate: dilationRate, groups: 1, activation: activation, useBias: useBias, kernelInitializer: depthwiseInitializer,
                   biasInitializer: biasInitializer, kernelRegularizer: depthwiseRegularizer, biasRegularizer: biasRegularizer,
                   activityRegularizer: activityRegularizer, kernelConstraint: depthwiseConstraint, biasConstraint: biasConstraint,
                   inputShape: inputShape, name: name)
        initialWeights = weights  // Keras 2's weights=: set once the layer is built
    }

    public override func build(_ shapes: [Shape]) throws {
        guard depthMultiplier > 0, depthMultiplier <= TensorType.maxDimension else { throw KerasError("\(name): depth_multiplier must be in [1, \(TensorType.maxDimension)], got \(depthMultiplier)") }
        try validate(shapes)
        let c = splitShape(shapes[0], format: dataFormat).2!
        depthwiseKernel = try addWeight(name: "kernel", shape: kernelSize + [c, depthMultiplier], initializer: kernelInitSpec.resolveInitializer(),
                                        regularizer: kernelRegularizer, constraint: kernelConstraint)
        if useBias {
            bias = try addWeight(name: "bias", shape: [c * depthMultiplier], initializer: biasInitSpec.resolveInitializer(),
                                         regularizer: biasRegularizer, constraint: biasConstraint)
        }
        activation = try activationSpec?.resolveActivation() ?? .linear
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        return try convolutionFrame(inputs[0], context) { x in
            let c = b.type(of: x).shape.last!
            let w = try b.reshape(context.read(depthwiseKernel!), kernelSize + [1, c * depthMultiplier])
            return try convolve(x, w, groups: c, b)
        }
    }

    /// Keras 3's keys: the kernel is the depthwise kernel, and there are no filters or groups.
    public override var config: JSON {
        var c = super.config
        for k in ["filters", "groups"] { c.remove(k) }
        for k in ["initializer", "regularizer", "constraint"] { c.rename("kernel_" + k, to: "depthwise_" + k) }
        c.set("depth_multiplier", JSON(depthMultiplier))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let a = try ConfigArgs(c, rank: 2)
        let l = DepthwiseConv2D(kernelSize: a.kernelSize, strides: a.strides, padding: a.padding, depthMultiplier: try c.int("depth_multiplier", default: 1),
                                dataFormat: a.dataFormat, dilationRate: a.dilation, activation: a.activation, useBias: a.useBias,
                                depthwiseInitializer: AnyInitializer(try c["depthwise_initializer"].map(Initializers.get) ?? GlorotUniform()),
                                biasInitializer: a.biasInit, depthwiseRegularizer: try Regularizers.get(c["depthwise_regularizer"]),
                                biasRegularizer: a.biasReg, activityRegularizer: a.activityReg,
                                depthwiseConstraint: try Constraints.get(c["depthwise_constraint"]), biasConstraint: a.biasCons, name: a.name)
        try l.applyInputShape(from: c)
        return l
    }
}

/// A depthwise convolution followed by a 1x1 pointwise one (weights:
/// depthwise_kernel, pointwise_kernel, bias).
public final class SeparableConv2D: BaseConv {
    public let depthMultiplier: Int
    let pointwiseInitSpec: InitializerConvertible
    public private(set) var depthwiseKernel: Variable?
    public private(set) var pointwiseKernel: Variable?
    public var pointwiseRegularizer: Regularizer?
    public var pointwiseConstraint: Constraint?

    /// The depthwise kernel's initializer, regularizer and constraint are the
    /// base convolution's kernel ones; the pointwise kernel has its own.
    public init(filters: Int, kernelSize: [Int], strides: [Int] = [1, 1], padding: String = "valid", dataFormat: String? = nil,
                dilationRate: [Int] = [1, 1], depthMultiplier: Int = 1, activation: ActivationConvertible? = nil, useBias: Bool = true,
                depthwiseInitializer: InitializerConvertible = "glorot_uniform", pointwiseInitializer: InitializerConvertible = "glorot_uniform",
                biasInitializer: InitializerConvertible = "zeros", depthwiseRegularizer: Regularizer? = nil, pointwiseRegularizer: Regularizer? = nil,
                biasRegularizer: Regularizer? = nil, activityRegularizer: Regularizer? = nil, depthwiseConstraint: Constraint? = nil,
                pointwiseConstraint: Constraint? = nil, biasConstraint: Constraint? = nil, inputShape: [Int]? = nil, weights: [Tensor]? = nil, name: String? = nil) {
        self.depthMultiplier = depthMultiplier
        self.pointwiseInitSpec = pointwiseInitializer
        self.pointwiseRegularizer = pointwiseRegularizer
        self.pointwiseConstraint = pointwiseConstraint
        super.init(rank: 2, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding, dataFormat: dataFormat,
                   dilationRate: dilationRate, groups: 1, activation: activation, useBias: useBias, kernelInitializer: depthwiseInitializer,
                   biasInitializer: biasInitializer, kernelRegularizer: depthwiseRegularizer, biasRegularizer: biasRegularizer,
                   activityRegularizer: activityRegularizer, kernelConstraint: depthwiseConstraint, biasConstraint: biasConstraint,
                   inputShape: inputShape, name: name)
        initialWeights = weights  // Keras 2's weights=: set once the layer is built
    }

    public override func build(_ shapes: [Shape]) throws {
        guard depthMultiplier > 0, depthMultiplier <= TensorType.maxDimension else { throw KerasError("\(name): depth_multiplier must be in [1, \(TensorType.maxDimension)], got \(depthMultiplier)") }
        try validate(shapes)
        let c = splitShape(shapes[0], format: dataFormat).2!
        depthwiseKernel = try addWeight(name: "depthwise_kernel", shape: kernelSize + [c, depthMultiplier], initializer: kernelInitSpec.resolveInitializer(),
                                        regularizer: kernelRegularizer, constraint: kernelConstraint)
        pointwiseKernel = try addWeight(name: "pointwise_kernel", shape: [1, 1, c * depthMultiplier, filters], initializer: pointwiseInitSpec.resolveInitializer(),
                                        regularizer: pointwiseRegularizer, constraint: pointwiseConstraint)
        if useBias {
            bias = try addWeight(name: "bias", shape: [filters], initializer: biasInitSpec.resolveInitializer(), regularizer: biasRegularizer, constraint: biasConstraint)
        }
        activation = try activationSpec?.resolveActivation() ?? .linear
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        return try convolutionFrame(inputs[0], context) { x in
            let c = b.type(of: x).shape.last!
            let dw = try b.reshape(context.read(depthwiseKernel!), kernelSize + [1, c * depthMultiplier])
            let mid = try convolve(x, dw, groups: c, b)
            return try b.conv(mid, context.read(pointwiseKernel!), ConvGeometry(strides: [1, 1], dilation: [1, 1], pads: [0, 0, 0, 0]))
        }
    }

    /// Keras 3's keys: depthwise_* (the base kernel's) and pointwise_*, no kernel_* or groups.
    public override var config: JSON {
        var c = super.config
        c.remove("groups")
        for k in ["initializer", "regularizer", "constraint"] { c.rename("kernel_" + k, to: "depthwise_" + k) }
        c.set("depth_multiplier", JSON(depthMultiplier))
        c.set("pointwise_initializer", (try? Initializers.serialize(pointwiseInitSpec.resolveInitializer())) ?? .null)
        c.set("pointwise_regularizer", pointwiseRegularizer?.serialized ?? .null)
        c.set("pointwise_constraint", pointwiseConstraint?.serialized ?? .null)
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let a = try ConfigArgs(c, rank: 2)
        let l = SeparableConv2D(filters: a.filters, kernelSize: a.kernelSize, strides: a.strides, padding: a.padding, dataFormat: a.dataFormat,
                                dilationRate: a.dilation, depthMultiplier: try c.int("depth_multiplier", default: 1), activation: a.activation,
                                useBias: a.useBias,
                                depthwiseInitializer: AnyInitializer(try c["depthwise_initializer"].map(Initializers.get) ?? GlorotUniform()),
                                pointwiseInitializer: AnyInitializer(try c["pointwise_initializer"].map(Initializers.get) ?? GlorotUniform()),
                                biasInitializer: a.biasInit, depthwiseRegularizer: try Regularizers.get(c["depthwise_regularizer"]),
                                pointwiseRegularizer: try Regularizers.get(c["pointwise_regularizer"]), biasRegularizer: a.biasReg,
                                activityRegularizer: a.activityReg, depthwiseConstraint: try Constraints.get(c["depthwise_constraint"]),
                                pointwiseConstraint: try Constraints.get(c["pointwise_constraint"]), biasConstraint: a.biasCons, name: a.name)
        try l.applyInputShape(from: c)
        return l
    }
}

/// The transpose of a convolution: kernel (kh, kw, filters, in_channels),
/// computed as the data gradient of the matching forward convolution, with
/// Keras's output sizes and output_padding.
public final class Conv2DTranspose: BaseConv {
    public let outputPadding: [Int]?

    public init(filters: Int, kernelSize: [Int], strides: [Int] = [1, 1], padding: String = "valid", outputPadding: [Int]? = nil,
                dataFormat: String? = nil, dilationRate: [Int] = [1, 1], activation: ActivationConvertible? = nil, useBias: Bool = true,
                kernelInitializer: InitializerConvertible = "glorot_uniform", biasInitializer: InitializerConvertible = "zeros",
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil, activityRegularizer: Regularizer? = nil,
                kernelConstraint: Constraint? = nil, biasConstraint: Constraint? = nil, inputShape: [Int]? = nil, weights: [Tensor]? = nil, name: String? = nil) {
        self.outputPadding = outputPadding
        super.init(rank: 2, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding, dataFormat: dataFormat,
                   dilationRate: dilationRate, groups: 1, activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                   biasInitializer: biasInitializer, kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer,
                   activityRegularizer: activityRegularizer, kernelConstraint: kernelConstraint, biasConstraint: biasConstraint,
                   inputShape: inputShape, name: name)
        initialWeights = weights  // Keras 2's weights=: set once the layer is built
    }

    var transposedKernel: Variable?
    public override func build(_ shapes: [Shape]) throws {
        guard filters > 0 else {
            throw KerasError("\(name): invalid value for argument `filters`; expected a strictly positive value, received filters=\(filters)")
        }
        guard padding == "valid" || padding == "same" else { throw KerasError("\(name): padding must be 'valid' or 'same', got '\(padding)'") }
        let inRange: (Int) -> Bool = { $0 > 0 && $0 <= TensorType.maxDimension }
        guard kernelSize.count == 2, strides.count == 2, dilationRate.count == 2,
              kernelSize.allSatisfy(inRange), strides.allSatisfy(inRange), dilationRate.allSatisfy(inRange), filters <= TensorType.maxDimension else {
            throw KerasError("\(name): kernel_size \(kernelSize), strides \(strides) and dilation_rate \(dilationRate) must hold 2 values each in [1, \(TensorType.maxDimension)], filters \(filters) at most that")
        }
        if let op = outputPadding {
            guard op.count == 2, op.allSatisfy({ $0 >= 0 }) else {
                throw KerasError("\(name): output_padding \(op) must hold 2 non-negative values")
            }
            for a in 0..<2 where op[a] >= strides[a] {
                throw KerasError("\(name): output_padding \(op) must be smaller than the strides \(strides)")
            }
        }
        try ImageDataFormat.validate(dataFormat, layer: name)
        guard shapes[0].count == 4, let c = splitShape(shapes[0], format: dataFormat).2 else {
            throw KerasError("\(name): expected an input of rank 4 with known channels, got \(formatShape(shapes[0]))")
        }
        transposedKernel = try addWeight(name: "kernel", shape: kernelSize + [filters, c], initializer: kernelInitSpec.resolveInitializer(),
                                         regularizer: kernelRegularizer, constraint: kernelConstraint)
        if useBias {
            bias = try addWeight(name: "bias", shape: [filters], initializer: biasInitSpec.resolveInitializer(),
                                         regularizer: biasRegularizer, constraint: biasConstraint)
        }
        activation = try activationSpec?.resolveActivation() ?? .linear
    }

    /// (output length, padding before, padding after) of the equivalent forward convolution.
    func geometry(input n: Int, axis a: Int) throws -> (Int, Int, Int) {
        let k = kernelSize[a], s = strides[a], d = dilationRate[a]
        let eff = (k - 1) * d + 1
        let op = outputPadding?[a]
        let length: Int
        let left: Int
        if padding == "valid" {
            length = op.map { (n - 1) * s + eff + $0 } ?? n * s + max(eff - s, 0)
            left = eff - 1
        } else {
            length = op.map { (n - 1) * s + eff - 2 * (eff / 2) + $0 } ?? n * s
            let padLen = op.map { eff + eff % 2 - 2 + $0 } ?? s + eff - 2
            left = min(padLen / 2 + padLen % 2, eff - 1)
        }
        let pb = eff - 1 - left
        let lo = (n - 1) * s + eff - length - pb, hi = n * s + eff - length - pb - 1
        let pa = max(lo, 0)
        guard pb >= 0, pa <= hi, length > 0 else {
            throw KerasError("\(name): cannot transpose a convolution of kernel \(kernelSize), strides \(strides) over input size \(n) on axis \(a)")
        }
        return (length, pb, pa)
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        return try convolutionFrame(inputs[0], context) { x in
            let spatial = Array(b.type(of: x).shape.dropFirst().dropLast())
            var outSize: [Int] = [], pads: [Int] = []
            for a in 0..<2 {
                let (len, pb, pa) = try geometry(input: spatial[a], axis: a)
                outSize.append(len)
                pads += [pb, pa]
            }
            return try b.convTranspose(x, context.read(transposedKernel!), ConvGeometry(strides: strides, dilation: dilationRate, pads: pads),
                                       outputSize: outSize)
        }
    }

    public override var config: JSON {
        var c = super.config
        c.remove("groups")  // Keras's Conv2DTranspose has none
        c.set("output_padding", outputPadding.map { JSON($0) } ?? .null)
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let a = try ConfigArgs(c, rank: 2)
        let l = Conv2DTranspose(filters: a.filters, kernelSize: a.kernelSize, strides: a.strides, padding: a.padding,
                                outputPadding: try c.ints("output_padding").map { $0.count == 1 ? [$0[0], $0[0]] : $0 },
                                dataFormat: a.dataFormat, dilationRate: a.dilation, activation: a.activation, useBias: a.useBias,
                                kernelInitializer: a.kernelInit, biasInitializer: a.biasInit, kernelRegularizer: a.kernelReg,
                                biasRegularizer: a.biasReg, activityRegularizer: a.activityReg, kernelConstraint: a.kernelCons,
                                biasConstraint: a.biasCons, name: a.name)
        try l.applyInputShape(from: c)
        return l
    }
}
