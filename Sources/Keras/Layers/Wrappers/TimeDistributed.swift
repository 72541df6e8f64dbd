import KerasIR

/// Applies `layer` to every time step of a [batch, time, ...] input with one
/// set of weights. Keras 3 calls the layer once per step; here the steps are
/// folded into the batch ([batch * time, ...]) and the layer is called once,
/// which gives the same numbers for every layer whose samples are independent
/// (Dense, convolutions, pooling, activations, dropout draws aside) and one
/// kernel call instead of `time`. A wrapped BatchNormalization in training
/// therefore takes its statistics over batch and time together.
public final class TimeDistributed: Layer {
    public let layer: Layer

    public init(_ layer: Layer, name: String? = nil) {
        self.layer = layer
        super.init(name: name)
        supportsMasking = true
    }

    public override var sublayers: [Layer] { [layer] }

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
        let folded = try b.reshape(inputs[0], [-1] + rest)
        let (outs, _) = try layer.emit([folded], masks: [nil], context: context)
        guard outs.count == 1 else { throw KerasError("\(name): the wrapped layer \(layer.name) returns \(outs.count) tensors; TimeDistributed takes one") }
        let out = b.type(of: outs[0]).shape
        guard out.count >= 1, !out.dropFirst().contains(TensorType.unknown) else {
            throw KerasError("\(name): the wrapped layer \(layer.name) gives an output of unknown size \(formatShape(kerasShape(out)))")
        }
        return [try b.reshape(outs[0], [-1, time] + out.dropFirst())]
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
