import KerasIR

/// The dot product of two inputs along one axis of each (Keras's batch_dot):
/// the output keeps the first input's other axes, then the second's other
/// non-batch axes, and has at least rank 2. With `normalize` the inputs are
/// L2-normalized along those axes first (cosine proximity).
public final class Dot: Layer, MergingLayer {
    public let axes: [Int]
    public let normalize: Bool

    /// `axes`: one axis for both inputs, or one per input; negative counts from the end.
    public init(axes: [Int], normalize: Bool = false, name: String? = nil) {
        self.axes = axes
        self.normalize = normalize
        super.init(name: name)
        supportsMasking = true
    }

    public convenience init(axes: Int, normalize: Bool = false, name: String? = nil) {
        self.init(axes: [axes], normalize: normalize, name: name)
    }

    /// The contracted axis of each input, checked against their ranks.
    func resolvedAxes(_ ranks: [Int]) throws -> (Int, Int) {
        guard axes.count == 1 || axes.count == 2 else {
            throw KerasError("\(name): invalid format for argument `axes`: it should contain one or two integers; received axes=\(axes)")
        }
        guard ranks.count == 2 else {
            throw KerasError("\(name): a `Dot` layer should be called on a list of 2 inputs; received \(ranks.count)")
        }
        func resolve(_ a: Int, _ rank: Int) throws -> Int {
            guard rank >= 2 else { throw KerasError("\(name): cannot do batch_dot on inputs with rank < 2; received ranks \(ranks)") }
            let r = a < 0 ? ((a % rank) + rank) % rank : a
            guard r >= 1 && r < rank else {
                throw KerasError("\(name): axes \(axes) are out of range for inputs of ranks \(ranks) (axis 0, the batch, cannot be contracted)")
            }
            return r
        }
        return (try resolve(axes[0], ranks[0]), try resolve(axes.count == 2 ? axes[1] : axes[0], ranks[1]))
    }

    public override func build(_ shapes: [Shape]) throws {
        let (a0, a1) = try resolvedAxes(shapes.map(\.count))
        if let d0 = shapes[0][a0], let d1 = shapes[1][a1], d0 != d1 {
            throw KerasError("\(name): incompatible input shapes: axis values \(d0) (at axis \(a0)) != \(d1) (at axis \(a1)). Full input shapes: \(formatShape(shapes[0])), \(formatShape(shapes[1]))")
        }
        if let n0 = shapes[0][0], let n1 = shapes[1][0], n0 != n1 {
            throw KerasError("\(name): cannot do batch_dot on inputs with different batch sizes: \(formatShape(shapes[0])) and \(formatShape(shapes[1]))")
        }
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        var x = inputs[0], y = inputs[1]
        let (a0, a1) = try resolvedAxes([b.type(of: x).rank, b.type(of: y).rank])
        if normalize {
            x = try l2Normalize(x, axis: a0, b)
            y = try l2Normalize(y, axis: a1, b)
        }
        // x -> [B, M, K] with K its contracted axis; y -> [B, K, N].
        let xs = b.type(of: x).shape, ys = b.type(of: y).shape
        let xRest = (1..<xs.count).filter { $0 != a0 }, yRest = (1..<ys.count).filter { $0 != a1 }
        let xt = try b.transpose(x, [0] + xRest + [a0]), yt = try b.transpose(y, [0, a1] + yRest)
        let m = try product(xRest.map { xs[$0] }), n = try product(yRest.map { ys[$0] })
        let x3 = try b.reshape(xt, [-1, m, xs[a0]]), y3 = try b.reshape(yt, [-1, ys[a1], n])
        let z = try b.matmul(x3, y3)
        var outShape = xRest.map { xs[$0] } + yRest.map { ys[$0] }
        if outShape.isEmpty { outShape = [1] }
        return [try b.reshape(z, [-1] + outShape)]
    }

    private func product(_ dims: [Int]) throws -> Int {
        guard !dims.contains(TensorType.unknown) else {
            throw KerasError("\(name): Dot needs known non-batch dimensions, got \(dims.map { $0 == TensorType.unknown ? "None" : String($0) })")
        }
        return try MemoryLimit.elementCount(dims, name)
    }

    /// x / max(|x|, 1e-7) along `axis` (Keras's normalize with its epsilon).
    private func l2Normalize(_ x: Value, axis: Int, _ b: GraphBuilder) throws -> Value {
        let norm = try b.sqrt(b.reduceSum(b.square(x), axes: [axis], keepDims: true))
        return try b.div(x, b.maximum(norm, b.scalar(1e-7)))
    }

    /// Dot passes no mask on, as in Keras.
    public override func computeMask(_ inputs: [Value], outputs: [Value], masks: [Value?], context: CallContext) throws -> [Value?] { [nil] }

    public override var config: JSON {
        var c = super.config
        c.set("axes", axes.count == 1 ? JSON(axes[0]) : JSON(axes))
        c.set("normalize", .bool(normalize))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let (name, trainable) = try baseArguments(c)
        guard let axes = try c.ints("axes") else { throw KerasError("Dot config needs axes") }
        let l = Dot(axes: axes, normalize: try c.bool("normalize", default: false), name: name)
        l.trainable = trainable
        return l
    }
}
