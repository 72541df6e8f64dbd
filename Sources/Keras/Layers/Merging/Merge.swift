import KerasIR

/// Layers called on a list of tensors that return one tensor (Add, Concatenate,
/// Dot, ...): `Add()([a, b])` is a tensor, as in Keras.
public protocol MergingLayer: Layer {}

extension MergingLayer {
    public func callAsFunction(_ xs: [KerasTensor], training: Bool? = nil) throws -> KerasTensor {
        let outs: [KerasTensor] = try callAsFunction(xs, training: training)
        guard outs.count == 1 else { throw KerasError("\(name): returned \(outs.count) tensors where one was expected") }
        return outs[0]
    }
}

/// The elementwise merge layers (Add, Subtract, Multiply, Average, Maximum,
/// Minimum) share Keras's rules: batch sizes agree; the other dimensions
/// broadcast from the right (a 1 stretches, an unknown matches anything);
/// an input of lower rank is expanded at axis 1 until the ranks agree; the
/// output mask is the OR of the input masks when every input has one.
open class Merge: Layer, MergingLayer {
    /// Fewest and most inputs the layer takes.
    open var inputCountRange: ClosedRange<Int> { 1...Int.max }

    public override init(name: String? = nil, trainable: Bool = true) {
        super.init(name: name, trainable: trainable)
        supportsMasking = true
    }

    /// Combines the inputs, all of one rank, into the output.
    open func merge(_ xs: [Value], masks: [Value?], _ b: GraphBuilder) throws -> Value {
        throw KerasError("\(name): \(kerasClassName) does not define its merge")
    }

    public override func build(_ shapes: [Shape]) throws {
        guard inputCountRange.contains(shapes.count) else {
            let want = inputCountRange.upperBound == inputCountRange.lowerBound ? "exactly \(inputCountRange.lowerBound)"
                : "at least \(inputCountRange.lowerBound)"
            throw KerasError("\(name): a `\(kerasClassName)` layer should be called on a list of \(want) input(s); received \(shapes.count): \(shapes.map(formatShape).joined(separator: ", "))")
        }
        let batches = Set(shapes.compactMap { $0.first ?? nil })
        guard batches.count <= 1 else {
            throw KerasError("\(name): cannot merge tensors with different batch sizes; received tensors with shapes \(shapes.map(formatShape).joined(separator: ", "))")
        }
        var out = Array(shapes[0].dropFirst())
        for s in shapes.dropFirst() { out = try Merge.broadcast(out, Array(s.dropFirst()), layer: name) }
    }

    /// Keras's shape of an elementwise operation on two non-batch shapes.
    static func broadcast(_ a: Shape, _ b: Shape, layer: String) throws -> Shape {
        if a.count < b.count { return try broadcast(b, a, layer: layer) }
        var out = Array(a.prefix(a.count - b.count))
        for (i, j) in zip(a.suffix(b.count), b) {
            switch (i, j) {
            case (nil, _), (_, nil): out.append(nil)
            case (1?, _): out.append(j)
            case (_, 1?): out.append(i)
            default:
                guard i == j else {
                    throw KerasError("\(layer): inputs have incompatible shapes; received shapes \(formatShape(a)) and \(formatShape(b))")
                }
                out.append(i)
            }
        }
        return out
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        let rank = inputs.map { b.type(of: $0).rank }.max() ?? 0
        // Lower-rank inputs gain unit axes at position 1, as Keras's expand_dims(x, 1).
        let xs = try inputs.map { x -> Value in
            let s = b.type(of: x).shape
            if s.count == rank { return x }
            let spec = s.map { $0 == TensorType.unknown ? -1 : $0 }
            return try b.reshape(x, [spec[0]] + [Int](repeating: 1, count: rank - s.count) + spec.dropFirst())
        }
        return [try merge(xs, masks: masks, b)]
    }

    /// The OR of the masks when every input has one (Keras's default).
    open override func computeMask(_ inputs: [Value], outputs: [Value], masks: [Value?], context: CallContext) throws -> [Value?] {
        guard !masks.isEmpty, masks.allSatisfy({ $0 != nil }) else { return [nil] }
        let ms = masks.map { $0! }
        return [try Merge.or(ms, context.builder)]
    }

    /// Logical OR of 0/1 masks of one shape, in the first mask's dtype.
    static func or(_ ms: [Value], _ b: GraphBuilder) throws -> Value {
        let dtype = b.type(of: ms[0]).dtype
        var out = try b.cast(ms[0], to: .f32)
        for m in ms.dropFirst() { out = try b.maximum(out, b.cast(m, to: .f32)) }
        return dtype == .f32 ? out : try b.cast(out, to: dtype)
    }

    public override class func from(config c: JSON) throws -> Layer {
        let (name, trainable) = try baseArguments(c)
        let layer = try make(name: name)
        layer.trainable = trainable
        return layer
    }

    /// A layer of this class with default arguments (the elementwise merges have none).
    open class func make(name: String?) throws -> Merge {
        throw KerasError("\(kerasClassName) cannot be built from a config")
    }
}

/// The sum of the inputs.
public final class Add: Merge {
    public override init(name: String? = nil, trainable: Bool = true) { super.init(name: name, trainable: trainable) }
    public override func merge(_ xs: [Value], masks: [Value?], _ b: GraphBuilder) throws -> Value {
        try xs.dropFirst().reduce(xs[0]) { try b.add($0, $1) }
    }
    public override class func make(name: String?) throws -> Merge { Add(name: name) }
}

/// The first input minus the second.
public final class Subtract: Merge {
    public override var inputCountRange: ClosedRange<Int> { 2...2 }
    public override init(name: String? = nil, trainable: Bool = true) { super.init(name: name, trainable: trainable) }
    public override func merge(_ xs: [Value], masks: [Value?], _ b: GraphBuilder) throws -> Value { try b.sub(xs[0], xs[1]) }
    public override class func make(name: String?) throws -> Merge { Subtract(name: name) }
}

/// The elementwise product of the inputs.
public final class Multiply: Merge {
    public override init(name: String? = nil, trainable: Bool = true) { super.init(name: name, trainable: trainable) }
    public override func merge(_ xs: [Value], masks: [Value?], _ b: GraphBuilder) throws -> Value {
        try xs.dropFirst().reduce(xs[0]) { try b.mul($0, $1) }
    }
    public override class func make(name: String?) throws -> Merge { Multiply(name: name) }
}

/// The mean of the inputs.
public final class Average: Merge {
    public override init(name: String? = nil, trainable: Bool = true) { super.init(name: name, trainable: trainable) }
    public override func merge(_ xs: [Value], masks: [Value?], _ b: GraphBuilder) throws -> Value {
        try b.mul(try xs.dropFirst().reduce(xs[0]) { try b.add($0, $1) }, 1 / Float(xs.count))
    }
    public override class func make(name: String?) throws -> Merge { Average(name: name) }
}

/// Maximum and Minimum: with masks, a masked position takes the other
/// operand's value, as Keras's merge with OR-ed masks does.
public class ExtremumMerge: Merge {
    var isMaximum: Bool { true }
    public override func merge(_ xs: [Value], masks: [Value?], _ b: GraphBuilder) throws -> Value {
        var output = xs[0]
        var outMask = try masks.first.flatMap { $0 }.map { try spread($0, like: xs[0], b) }
        for (x0, m) in zip(xs, masks).dropFirst() {
            var x = x0
            let mask = try m.map { try spread($0, like: x0, b) }
            if let mask { x = try b.select(mask, x, output) }
            if let om = outMask { output = try b.select(om, output, x) }
            outMask = try mask.flatMap { mk in try outMask.map { try Merge.or([$0, mk], b) } }
            output = isMaximum ? try b.maximum(output, x) : try b.minimum(output, x)
        }
        return output
    }

    /// A [batch, steps] mask broadcast over the features of x.
    func spread(_ m: Value, like x: Value, _ b: GraphBuilder) throws -> Value {
        let mt = b.type(of: m), xt = b.type(of: x)
        guard mt.rank < xt.rank else { return m }
        let spec = mt.shape.map { $0 == TensorType.unknown ? -1 : $0 }
        return try b.broadcast(try b.reshape(m, spec + [Int](repeating: 1, count: xt.rank - mt.rank)), like: x)
    }
}

public final class Maximum: ExtremumMerge {
    public override init(name: String? = nil, trainable: Bool = true) { super.init(name: name, trainable: trainable) }
    public override class func make(name: String?) throws -> Merge { Maximum(name: name) }
}

public final class Minimum: ExtremumMerge {
    override var isMaximum: Bool { false }
    public override init(name: String? = nil, trainable: Bool = true) { super.init(name: name, trainable: trainable) }
    public override class func make(name: String?) throws -> Merge { Minimum(name: name) }
}
