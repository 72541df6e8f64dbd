import KerasIR

/// Applies an activation function.
public final class Activation: Layer {
    let spec: ActivationConvertible
    public private(set) var activation: ActivationFunction = .linear

    public init(_ activation: ActivationConvertible, inputShape: [Int]? = nil, name: String? = nil) {
        self.spec = activation
        super.init(name: name)
        self.declaredInputShape = declaredShape(inputShape: inputShape, inputDim: nil)
        if let a = try? activation.resolveActivation() { self.activation = a }
        supportsMasking = true
    }

    public override func build(_ shapes: [Shape]) throws { activation = try spec.resolveActivation() }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        [try activation(inputs[0], context.builder)]
    }

    public override var config: JSON {
        var c = super.config
        c.set("activation", activationJSON(activation))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let l = Activation(try ActivationFunction.get(c["activation"]), name: c["name"]?.stringValue)
        try l.applyInputShape(from: c)
        return l
    }
}

