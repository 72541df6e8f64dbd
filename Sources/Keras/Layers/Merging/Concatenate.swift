import KerasIR

/// Joins the inputs along `axis` (default the last); every other dimension
/// must match. Masks: an input without one counts as all ones, a mask of
/// lower rank is spread over the features, and the output mask is the
/// concatenation reduced with `any` over the last axis, as Keras does.
public final class Concatenate: Layer, MergingLayer {
    public let axis: Int

    public init(axis: Int = -1, name: String? = nil) {
        self.axis = axis
        super.init(name: name)
        supportsMasking = true
    }

    /// The axis as a non-negative index for inputs of `rank`.
    func resolvedAxis(rank: Int) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 1 && a < rank else {
            throw KerasError("\(name): axis \(axis) is out of range for inputs of rank \(rank) (the batch axis cannot be joined)")
        }
        return a
    }

    public override func build(_ shapes: [Shape]) throws {
        guard !shapes.isEmpty else { throw KerasError("\(name): a `Concatenate` layer should be called on a list of at least 1 input") }
        let rank = shapes[0].count
        let a = try resolvedAxis(rank: rank)
        let matching = shapes.allSatisfy { s in
            s.count == rank && (0..<rank).allSatisfy { i in i == a || s[i] == nil || shapes[0][i] == nil || s[i] == shapes[0][i] }
        }
        guard matching else {
            throw KerasError("\(name): a `Concatenate` layer requires inputs with matching shapes except for the concatenation axis; received: input_shape=[\(shapes.map(formatShape).joined(separator: ", "))]")
        }
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        let a = try resolvedAxis(rank: b.type(of: inputs[0]).rank)
        return inputs.count == 1 ? inputs : [try b.emit("concat", inputs, ["axis": .int(a)])]
    }

    public override func computeMask(_ inputs: [Value], outputs: [Value], masks: [Value?], context: CallContext) throws -> [Value?] {
        guard masks.contains(where: { $0 != nil }) else { return [nil] }
        let b = context.builder
        let a = try resolvedAxis(rank: b.type(of: inputs[0]).rank)
        let full = try zip(inputs, masks).map { x, m -> Value in
            guard let m else { return try b.broadcast(b.scalar(1), like: x) }
            let mt = b.type(of: m), xt = b.type(of: x)
            let mf = try b.cast(m, to: .f32)
            guard mt.rank < xt.rank else { return mf }
            let spec = mt.shape.map { $0 == TensorType.unknown ? -1 : $0 }
            return try b.broadcast(try b.reshape(mf, spec + [Int](repeating: 1, count: xt.rank - mt.rank)), like: x)
        }
        let joined = try b.emit("concat", full, ["axis": .int(a)])
        let rank = b.type(of: joined).rank
        return [try b.reduceMax(joined, axes: [rank - 1])]
    }

    public override var config: JSON {
        var c = super.config
        c.set("axis", JSON(axis))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let (name, trainable) = try baseArguments(c)
        let l = Concatenate(axis: try c.int("axis", default: -1), name: name)
        l.trainable = trainable
        return l
    }
}
