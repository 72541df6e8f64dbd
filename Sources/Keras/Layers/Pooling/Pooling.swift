import KerasIR

/// MaxPooling and AveragePooling in 1 to 3 dimensions; strides default to
/// the pool size; "same" averages divide by the real elements in a window.
public class BasePooling: Layer {
    public let rank: Int
    public let isMax: Bool
    public let poolSize: [Int]
    public let strides: [Int]
    public let padding: String
    public let dataFormat: String

    init(rank: Int, isMax: Bool, poolSize: [Int], strides: [Int]?, padding: String, dataFormat: String?, name: String?) {
        self.rank = rank
        self.isMax = isMax
        self.poolSize = poolSize.count == 1 ? [Int](repeating: poolSize[0], count: rank) : poolSize
        let s = strides ?? self.poolSize
        self.strides = s.count == 1 ? [Int](repeating: s[0], count: rank) : s
        self.padding = padding.lowercased()
        self.dataFormat = dataFormat ?? ImageDataFormat.current
        super.init(name: name)
    }

    public override func build(_ shapes: [Shape]) throws {
        try ImageDataFormat.validate(dataFormat, layer: name)
        guard poolSize.count == rank, strides.count == rank, poolSize.allSatisfy({ $0 > 0 && $0 <= TensorType.maxDimension }), strides.allSatisfy({ $0 > 0 && $0 <= TensorType.maxDimension }) else {
            throw KerasError("\(name): pool_size \(poolSize) and strides \(strides) must hold \(rank) positive values")
        }
        guard padding == "valid" || padding == "same" else { throw KerasError("\(name): padding must be 'valid' or 'same', got '\(padding)'") }
        guard shapes[0].count == rank + 2 else { throw KerasError("\(name): expected an input of rank \(rank + 2), got \(formatShape(shapes[0]))") }
        let spatial = splitShape(shapes[0], format: dataFormat).1
        for (a, n) in spatial.enumerated() where padding == "valid" {
            if let n, n < poolSize[a] {
                throw KerasError("\(name): pool size \(poolSize[a]) is larger than the input (\(n)) on spatial axis \(a); computed output size would be negative")
            }
        }
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        var x = inputs[0]
        if dataFormat == "channels_first" { x = try ConvArithmetic.toChannelsLast(x, b) }
        let spatial = Array(b.type(of: x).shape.dropFirst().dropLast())
        var pads: [Int] = []
        for a in 0..<rank {
            let (pb, pa) = ConvArithmetic.padding(padding, input: spatial[a], kernel: poolSize[a], stride: strides[a], dilation: 1)
            pads += [pb, pa]
        }
        var y = try b.pool(x, max: isMax, PoolWindow(pool: poolSize, strides: strides, pads: pads))
        if dataFormat == "channels_first" { y = try ConvArithmetic.toChannelsFirst(y, b) }
        return [y]
    }

    public override var config: JSON {
        var c = super.config
        c.set("pool_size", JSON(poolSize))
        c.set("padding", .string(padding))
        c.set("strides", JSON(strides))
        c.set("data_format", .string(dataFormat))
        return c
    }

    static func args(_ c: JSON) throws -> ([Int], [Int]?, String, String?, String?) {
        let pool = try c.ints("pool_size") ?? [2], strides = try c.ints("strides")
        // An empty list cannot name a size (a config with pool_size [] was read past its end).
        guard !pool.isEmpty, strides.map({ !$0.isEmpty }) ?? true else {
            throw KerasError("\(c["name"]?.stringValue ?? "pooling"): pool_size \(pool) and strides \(strides.map { "\($0)" } ?? "None") must not be empty")
        }
        return (pool, strides, try c.string("padding", default: "valid"), c["data_format"]?.stringValue, c["name"]?.stringValue)
    }
}

public final class MaxPooling1D: BasePooling {
    public init(poolSize: Int = 2, strides: Int? = nil, padding: String = "valid", dataFormat: String? = nil, name: String? = nil) {
        super.init(rank: 1, isMax: true, poolSize: [poolSize], strides: strides.map { [$0] }, padding: padding, dataFormat: dataFormat, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        let (p, s, pad, f, n) = try args(c)
        return MaxPooling1D(poolSize: p[0], strides: s?[0], padding: pad, dataFormat: f, name: n)
    }
}
public final class MaxPooling2D: BasePooling {
    public init(poolSize: [Int] = [2, 2], strides: [Int]? = nil, padding: String = "valid", dataFormat: String? = nil,
                inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rank: 2, isMax: true, poolSize: poolSize, strides: strides, padding: padding, dataFormat: dataFormat, name: name)
        declaredInputShape = inputShape.map { $0.map { Optional($0) } }
    }
    public convenience init(_ poolSize: Int, strides: Int? = nil, padding: String = "valid", name: String? = nil) {
        self.init(poolSize: [poolSize, poolSize], strides: strides.map { [$0, $0] }, padding: padding, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        let (p, s, pad, f, n) = try args(c)
        return MaxPooling2D(poolSize: p, strides: s, padding: pad, dataFormat: f, name: n)
    }
}
public final class MaxPooling3D: BasePooling {
    public init(poolSize: [Int] = [2, 2, 2], strides: [Int]? = nil, padding: String = "valid", dataFormat: String? = nil, name: String? = nil) {
        super.init(rank: 3, isMax: true, poolSize: poolSize, strides: strides, padding: padding, dataFormat: dataFormat, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        let (p, s, pad, f, n) = try args(c)
        return MaxPooling3D(poolSize: p, strides: s, padding: pad, dataFormat: f, name: n)
    }
}
public final class AveragePooling1D: BasePooling {
    public init(poolSize: Int = 2, strides: Int? = nil, padding: String = "valid", dataFormat: String? = nil, name: String? = nil) {
        super.init(rank: 1, isMax: false, poolSize: [poolSize], strides: strides.map { [$0] }, padding: padding, dataFormat: dataFormat, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        let (p, s, pad, f, n) = try args(c)
        return AveragePooling1D(poolSize: p[0], strides: s?[0], padding: pad, dataFormat: f, name: n)
    }
}
public final class AveragePooling2D: BasePooling {
    public init(poolSize: [Int] = [2, 2], strides: [Int]? = nil, padding: String = "valid", dataFormat: String? = nil, name: String? = nil) {
        super.init(rank: 2, isMax: false, poolSize: poolSize, strides: strides, padding: padding, dataFormat: dataFormat, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        let (p, s, pad, f, n) = try args(c)
        return AveragePooling2D(poolSize: p, strides: s, padding: pad, dataFormat: f, name: n)
    }
}
public final class AveragePooling3D: BasePooling {
    public init(poolSize: [Int] = [2, 2, 2], strides: [Int]? = nil, padding: String = "valid", dataFormat: String? = nil, name: String? = nil) {
        super.init(rank: 3, isMax: false, poolSize: poolSize, strides: strides, padding: padding, dataFormat: dataFormat, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        let (p, s, pad, f, n) = try args(c)
        return AveragePooling3D(poolSize: p, strides: s, padding: pad, dataFormat: f, name: n)
    }
}

/// Max or mean over every spatial axis, keeping them as size 1 with `keepdims`.
public class BaseGlobalPooling: Layer {
    public let rank: Int, isMax: Bool, dataFormat: String, keepdims: Bool
    init(rank: Int, isMax: Bool, dataFormat: String?, keepdims: Bool, name: String?) {
        self.rank = rank; self.isMax = isMax; self.dataFormat = dataFormat ?? ImageDataFormat.current; self.keepdims = keepdims
        super.init(name: name)
    }
    public override func build(_ shapes: [Shape]) throws {
        try ImageDataFormat.validate(dataFormat, layer: name)
        guard shapes[0].count == rank + 2 else { throw KerasError("\(name): expected an input of rank \(rank + 2), got \(formatShape(shapes[0]))") }
    }
    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        let axes = dataFormat == "channels_first" ? Array(2..<(rank + 2)) : Array(1...rank)
        return [isMax ? try b.reduceMax(inputs[0], axes: axes, keepDims: keepdims) : try b.reduceMean(inputs[0], axes: axes, keepDims: keepdims)]
    }
    public override var config: JSON {
        var c = super.config
        c.set("data_format", .string(dataFormat))
        c.set("keepdims", JSON(keepdims))
        return c
    }
    static func args(_ c: JSON) throws -> (String?, Bool, String?) {
        (c["data_format"]?.stringValue, try c.bool("keepdims", default: false), c["name"]?.stringValue)
    }
}

public final class GlobalMaxPooling1D: BaseGlobalPooling {
    public init(dataFormat: String? = nil, keepdims: Bool = false, name: String? = nil) { super.init(rank: 1, isMax: true, dataFormat: dataFormat, keepdims: keepdims, name: name) }
    public override class func from(config c: JSON) throws -> Layer { let (f, k, n) = try args(c); return GlobalMaxPooling1D(dataFormat: f, keepdims: k, name: n) }
}
public final class GlobalMaxPooling2D: BaseGlobalPooling {
    public init(dataFormat: String? = nil, keepdims: Bool = false, name: String? = nil) { super.init(rank: 2, isMax: true, dataFormat: dataFormat, keepdims: keepdims, name: name) }
    public override class func from(config c: JSON) throws -> Layer { let (f, k, n) = try args(c); return GlobalMaxPooling2D(dataFormat: f, keepdims: k, name: n) }
}
public final class GlobalMaxPooling3D: BaseGlobalPooling {
    public init(dataFormat: String? = nil, keepdims: Bool = false, name: String? = nil) { super.init(rank: 3, isMax: true, dataFormat: dataFormat, keepdims: keepdims, name: name) }
    public override class func from(config c: JSON) throws -> Layer { let (f, k, n) = try args(c); return GlobalMaxPooling3D(dataFormat: f, keepdims: k, name: n) }
}
public final class GlobalAveragePooling1D: BaseGlobalPooling {
    public init(dataFormat: String? = nil, keepdims: Bool = false, name: String? = nil) { super.init(rank: 1, isMax: false, dataFormat: dataFormat, keepdims: keepdims, name: name) }
    public override class func from(config c: JSON) throws -> Layer { let (f, k, n) = try args(c); return GlobalAveragePooling1D(dataFormat: f, keepdims: k, name: n) }
}
public final class GlobalAveragePooling2D: BaseGlobalPooling {
    public init(dataFormat: String? = nil, keepdims: Bool = false, name: String? = nil) { super.init(rank: 2, isMax: false, dataFormat: dataFormat, keepdims: keepdims, name: name) }
    public override class func from(config c: JSON) throws -> Layer { let (f, k, n) = try args(c); return GlobalAveragePooling2D(dataFormat: f, keepdims: k, name: n) }
}
public final class GlobalAveragePooling3D: BaseGlobalPooling {
    public init(dataFormat: String? = nil, keepdims: Bool = false, name: String? = nil) { super.init(rank: 3, isMax: false, dataFormat: dataFormat, keepdims: keepdims, name: name) }
    public override class func from(config c: JSON) throws -> Layer { let (f, k, n) = try args(c); return GlobalAveragePooling3D(dataFormat: f, keepdims: k, name: n) }
}
