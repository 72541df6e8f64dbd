import KerasIR

/// Applies `layer` to every time step of a [batch, time, ...] input with one
/// set of weights. Keras 3 calls the layer once per step; where the layer's
/// samples are independent (Dense, convolutions, pooling, activations, dropout
/// draws aside) the steps are folded into the batch ([batch * time, ...]) and
/// the layer is called once, the same numbers from one kernel call instead of
/// `time`. A layer that mixes samples in training (BatchNormalization) is
/// called once per step there, as Keras does: statistics per step, moving
/// statistics updated step after step.
public final class TimeDistributed: Layer {
    public let layer: Layer

    public init(_ layer: Layer, name: String? = nil) {
        self.layer = layer
        super.init(name: name)
        supportsMasking = true
    }

    public override var sublayers: [Layer] { [layer] }
    public override var weightsTree: WeightsTree { WeightsTree(variables: [], children: [("layer", layer.weightsTree)], name: name) }

    public override func build(_ shapes: [Shape]) throws {
        let s = shapes[0]
        guard s.count >= 3 else {
            throw KerasError("\(name): `TimeDistributed` should be passed an input with at least 3 dimensions, received: \(formatShape(s))")
        }
        guard s[1] != nil, s.dropFirst(2).allSatisfy({ $0 != nil }) else {
            throw KerasError("\(name): the time and feature dimensions must be known, received: \(formatShape(s))")
        }
        try layer.ensureBuilt([[nil] + Array(s.dropFirst(2))])
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        let shape = b.type(of: inputs[0]).shape
        let time = shape[1], rest = Array(shape.dropFirst(2))
        if context.training && layer.mixesSamplesInTraining {
            let steps = try (0..<time).map { t in
                let step = try b.reshape(b.emit("slice", [inputs[0]], ["begin": .ints([0, t] + rest.map { _ in 0 }),
                                                                      "size": .ints([-1, 1] + rest.map { _ in -1 })]), [-1] + rest)
                let out = try checkedOutput(layer.emit([step], masks: [nil], context: context).outputs, b)
                return try b.reshape(out, [-1, 1] + b.type(of: out).shape.dropFirst())
            }
            return [steps.count == 1 ? steps[0] : try b.emit("concat", steps, ["axis": .int(1)])]
        }
        let folded = try b.reshape(inputs[0], [-1] + rest)
        let out = try checkedOutput(layer.emit([folded], masks: [nil], context: context).outputs, b)
        return [try b.reshape(out, [-1, time] + b.type(of: out).shape.dropFirst())]
    }

    /// The wrapped layer's one output, of known size past the batch.
    private func checkedOutput(_ outs: [Value], _ b: GraphBuilder) throws -> Value {
        guard outs.count == 1 else { throw KerasError("\(name): the wrapped layer \(layer.name) returns \(outs.count) tensors; TimeDistributed takes one") }
        let out = b.type(of: outs[0]).shape
        guard out.count >= 1, !out.dropFirst().contains(TensorType.unknown) else {
            throw KerasError("\(name): the wrapped layer \(layer.name) gives an output of unknown size \(formatShape(kerasShape(out)))")
        }
        return outs[0]
    }

    /// The input mask passes through (per sample and step), as in Keras.
    public override func computeMask(_ inputs: [Value], outputs: [Value], masks: [Value?], context: CallContext) throws -> [Value?] {
        [masks.first ?? nil]
    }

    public override var config: JSON {
        var c = super.config
        var inner = serialized(module: "keras.layers", className: layer.kerasClassName, config: layer.config)
        if let shapes = layer.builtInputShapes, let s = shapes.first { inner.set("build_config", ["input_shape": JSON(shape: s)]) }
        c.set("layer", inner)
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let (name, trainable) = try baseArguments(c)
        guard let inner = c["layer"], !inner.isNull else { throw KerasError("TimeDistributed config needs layer") }
        let l = TimeDistributed(try LayerRegistry.deserialize(inner), name: name)
        l.trainable = trainable
        try l.applyInputShape(from: c)
        return l
    }
}
