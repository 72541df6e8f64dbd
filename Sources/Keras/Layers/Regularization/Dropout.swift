import KerasIR

/// A 0/1 mask keeping each position of `x` with probability `keep`, one draw
/// shared along `sharedAxes` (reduced to size 1): what every dropout draws.
func keepMask(_ x: Value, sharedAxes: [Int], keep: Float, seed: Int?, _ context: CallContext) throws -> Value {
    let b = context.builder
    let template = sharedAxes.isEmpty ? x : try b.reduceMax(x, axes: sharedAxes, keepDims: true)
    return try b.emit("random_bernoulli", [template], ["seed": .int(context.nextSeed(seed)), "p": .float(keep)])
}

/// The axes where a Keras noise_shape has size 1 (one draw shared along them).
func sharedAxes(_ noiseShape: Shape?) -> [Int] {
    noiseShape.map { ns in ns.enumerated().filter { $0.element == 1 }.map(\.offset) } ?? []
}

/// Zeroes a fraction `rate` of the inputs while training and scales the rest
/// by 1/(1-rate); the identity at inference. `noiseShape` (None = the input's
/// dimension) shares one draw across axes of size 1.
public final class Dropout: Layer {
    public let rate: Float
    public let noiseShape: Shape?
    public let seed: Int?

    public init(_ rate: Float, noiseShape: Shape? = nil, seed: Int? = nil, name: String? = nil) {
        self.rate = rate
        self.noiseShape = noiseShape
        self.seed = seed
        super.init(name: name)
        supportsMasking = true
    }

    public override func build(_ shapes: [Shape]) throws {
        guard rate >= 0 && rate <= 1 else { throw KerasError("\(name): rate must be in [0, 1], got \(rate)") }
        if let ns = noiseShape, ns.count != shapes[0].count {
            throw KerasError("\(name): noise_shape \(formatShape(ns)) must have the rank of the input \(formatShape(shapes[0]))")
        }
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let x = inputs[0]
        guard context.training, rate > 0 else { return [x] }
        let b = context.builder
        if rate >= 1 { return [try b.mul(x, b.scalar(0))] }
        let keep = try keepMask(x, sharedAxes: sharedAxes(noiseShape), keep: 1 - rate, seed: seed, context)
        return [try b.mul(x, b.mul(keep, 1 / (1 - rate)))]
    }

    public override var config: JSON {
        var c = super.config
        c.set("rate", JSON(rate))
        c.set("seed", seed.map { JSON($0) } ?? .null)
        c.set("noise_shape", noiseShape.map { JSON(shape: $0) } ?? .null)
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let l = Dropout(try c.float("rate", default: 0.5), noiseShape: try c.shape("noise_shape"), seed: try c.optionalInt("seed"),
                        name: c["name"]?.stringValue)
        try l.applyInputShape(from: c)
        return l
    }
}

/// Adds zero-mean Gaussian noise while training.
public final class GaussianNoise: Layer {
    public let stddev: Float
    public let seed: Int?
    public init(_ stddev: Float, seed: Int? = nil, name: String? = nil) {
        self.stddev = stddev
        self.seed = seed
        super.init(name: name)
        supportsMasking = true
    }
    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        guard context.training, stddev > 0 else { return [inputs[0]] }
        let b = context.builder
        let noise = try b.emit("random_normal", [inputs[0]], ["seed": .int(context.nextSeed(seed)), "mean": .float(0), "stddev": .float(stddev)])
        return [try b.add(inputs[0], noise)]
    }
    public override var config: JSON {
        var c = super.config
        c.set("stddev", JSON(stddev))
        c.set("seed", seed.map { JSON($0) } ?? .null)
        return c
    }
    public override class func from(config c: JSON) throws -> Layer {
        GaussianNoise(try c.float("stddev", default: 0), seed: try c.optionalInt("seed"), name: c["name"]?.stringValue)
    }
}

/// Multiplies by Gaussian noise of mean 1 and variance rate/(1-rate) while training.
public final class GaussianDropout: Layer {
    public let rate: Float
    public let seed: Int?
    public init(_ rate: Float, seed: Int? = nil, name: String? = nil) {
        self.rate = rate
        self.seed = seed
        super.init(name: name)
        supportsMasking = true
    }
    public override func build(_ shapes: [Shape]) throws {
        guard rate >= 0 && rate < 1 else { throw KerasError("\(name): rate must be in [0, 1), got \(rate)") }
    }
    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        guard context.training, rate > 0 else { return [inputs[0]] }
        let b = context.builder
        let sd = (rate / (1 - rate)).squareRoot()
        let noise = try b.emit("random_normal", [inputs[0]], ["seed": .int(context.nextSeed(seed)), "mean": .float(1), "stddev": .float(sd)])
        return [try b.mul(inputs[0], noise)]
    }
    public override var config: JSON {
        var c = super.config
        c.set("rate", JSON(rate))
        c.set("seed", seed.map { JSON($0) } ?? .null)
        return c
    }
    public override class func from(config c: JSON) throws -> Layer {
        GaussianDropout(try c.float("rate", default: 0), seed: try c.optionalInt("seed"), name: c["name"]?.stringValue)
    }
}

/// The identity, adding `(l1 * sum|x| + l2 * sum(x^2)) / batch_size` to the loss.
public final class ActivityRegularization: Layer {
    public let l1: Float
    public let l2: Float
    public init(l1: Float = 0, l2: Float = 0, name: String? = nil) {
        self.l1 = l1
        self.l2 = l2
        super.init(name: name)
        activityRegularizer = L1L2(l1: l1, l2: l2)
        supportsMasking = true
    }
    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] { [inputs[0]] }
    public override var config: JSON {
        var c = super.config
        c.set("l1", JSON(l1))
        c.set("l2", JSON(l2))
        return c
    }
    public override class func from(config c: JSON) throws -> Layer {
        ActivityRegularization(l1: try c.float("l1", default: 0), l2: try c.float("l2", default: 0), name: c["name"]?.stringValue)
    }
}
