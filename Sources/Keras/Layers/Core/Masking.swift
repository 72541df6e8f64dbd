import KerasIR

/// Masks timesteps whose features all equal `maskValue`: they come out as
/// zeros and the mask (`any(x != maskValue, axis: -1)`) flows to later layers.
public final class Masking: Layer {
    public let maskValue: Float

    public init(maskValue: Float = 0, inputShape: [Int]? = nil, name: String? = nil) {
        self.maskValue = maskValue
        super.init(name: name)
        declaredInputShape = declaredShape(inputShape: inputShape, inputDim: nil)
        supportsMasking = true
    }

    private func keep(_ x: Value, _ b: GraphBuilder) throws -> Value {
        let rank = b.type(of: x).rank
        return try b.reduceMax(b.compare("not_equal", x, b.scalar(maskValue)), axes: [rank - 1], keepDims: true)
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        return [try b.mul(inputs[0], keep(inputs[0], b))]
    }

    public override func computeMask(_ inputs: [Value], outputs: [Value], masks: [Value?], context: CallContext) throws -> [Value?] {
        let b = context.builder
        let k = try keep(inputs[0], b)
        let shape = b.type(of: k).shape.dropLast()
        return [try b.reshape(k, shape.map { $0 == TensorType.unknown ? -1 : $0 })]
    }

    public override var config: JSON {
        var c = super.config
        c.set("mask_value", JSON(maskValue))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let l = Masking(maskValue: try c.float("mask_value", default: 0), name: c["name"]?.stringValue)
        try l.applyInputShape(from: c)
        return l
    }
}
