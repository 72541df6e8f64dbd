import KerasIR

/// SpatialDropout1D/2D/3D: Dropout whose draw is shared over the spatial
/// axes, so whole feature maps are dropped (noise shape (batch, 1, ..., 1,
/// channels), channels first or last as `dataFormat` says).
public class SpatialDropout: Layer {
    public let rate: Float
    public let rank: Int
    public let dataFormat: String
    public let seed: Int?

    init(rank: Int, rate: Float, dataFormat: String?, seed: Int?, name: String?) {
        self.rank = rank
        self.rate = rate
        self.dataFormat = dataFormat ?? ImageDataFormat.current
        self.seed = seed
        super.init(name: name)
        supportsMasking = true
    }

    public override func build(_ shapes: [Shape]) throws {
        guard rate >= 0 && rate <= 1 else { throw KerasError("\(name): rate must be in [0, 1], got \(rate)") }
        try ImageDataFormat.validate(dataFormat, layer: name)
        guard shapes[0].count == rank + 2 else {
            throw KerasError("\(name): expected an input of rank \(rank + 2), got \(formatShape(shapes[0]))")
        }
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let x = inputs[0]
        guard context.training, rate > 0 else { return [x] }
        let b = context.builder
        if rate >= 1 { return [try b.mul(x, b.scalar(0))] }
        let spatial = dataFormat == "channels_first" ? Array(2..<(rank + 2)) : Array(1...rank)
        let keep = try keepMask(x, sharedAxes: spatial, keep: 1 - rate, seed: seed, context)
        return [try b.mul(x, b.mul(keep, 1 / (1 - rate)))]
    }

    public override var config: JSON {
        var c = super.config
        c.set("rate", JSON(rate))
        c.set("seed", seed.map { JSON($0) } ?? .null)
        if rank > 1 { c.set("data_format", .string(dataFormat)) }
        return c
    }

    static func arguments(_ c: JSON) throws -> (Float, String?, Int?, String?) {
        (try c.float("rate", default: 0.5), c["data_format"]?.stringValue, try c.optionalInt("seed"), c["name"]?.stringValue)
    }
}

public final class SpatialDropout1D: SpatialDropout {
    public init(_ rate: Float, seed: Int? = nil, name: String? = nil) {
        super.init(rank: 1, rate: rate, dataFormat: "channels_last", seed: seed, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        let (rate, _, seed, name) = try arguments(c)
        return SpatialDropout1D(rate, seed: seed, name: name)
    }
}

public final class SpatialDropout2D: SpatialDropout {
    public init(_ rate: Float, dataFormat: String? = nil, seed: Int? = nil, name: String? = nil) {
        super.init(rank: 2, rate: rate, dataFormat: dataFormat, seed: seed, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        let (rate, format, seed, name) = try arguments(c)
        return SpatialDropout2D(rate, dataFormat: format, seed: seed, name: name)
    }
}

public final class SpatialDropout3D: SpatialDropout {
    public init(_ rate: Float, dataFormat: String? = nil, seed: Int? = nil, name: String? = nil) {
        super.init(rank: 3, rate: rate, dataFormat: dataFormat, seed: seed, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        let (rate, format, seed, name) = try arguments(c)
        return SpatialDropout3D(rate, dataFormat: format, seed: seed, name: name)
    }
}

/// Dropout that keeps SELU's self-normalizing mean and variance: a dropped
/// unit takes SELU's negative saturation value, then an affine map restores
/// mean 0 and variance 1 (Klambauer et al. 2017, as Keras computes it).
public final class AlphaDropout: Layer {
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
        guard rate >= 0 && rate < 1 else { throw KerasError("\(name): rate must be in [0, 1), got \(rate)") }
        if let ns = noiseShape, ns.count != shapes[0].count {
            throw KerasError("\(name): noise_shape \(formatShape(ns)) must have the rank of the input \(formatShape(shapes[0]))")
        }
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let x = inputs[0]
        guard context.training, rate > 0 else { return [x] }
        let b = context.builder
        let alphaP: Float = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
        let kept = try keepMask(x, sharedAxes: sharedAxes(noiseShape), keep: 1 - rate, seed: seed, context)
        let a = 1 / ((1 - rate) * (1 + rate * alphaP * alphaP)).squareRoot()
        let shift = -a * alphaP * rate
        // x * kept + alphaP * (1 - kept), then a * (.) + shift.
        let dropped = try b.add(b.mul(x, kept), b.mul(b.sub(b.scalar(1), kept), alphaP))
        return [try b.add(b.mul(dropped, a), shift)]
    }

    public override var config: JSON {
        var c = super.config
        c.set("rate", JSON(rate))
        c.set("seed", seed.map { JSON($0) } ?? .null)
        c.set("noise_shape", noiseShape.map { JSON(shape: $0) } ?? .null)
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        AlphaDropout(try c.float("rate", default: 0.5), noiseShape: try c.shape("noise_shape"), seed: try c.optionalInt("seed"),
                     name: c["name"]?.stringValue)
    }
}
