import KerasIR

/// Per-axis (before, after) amounts from Keras's int, pair or per-side forms.
func sidePairs(_ raw: JSON?, rank: Int, default def: Int, layer: String, what: String) throws -> [(Int, Int)] {
    guard let raw, !raw.isNull else { return [(Int, Int)](repeating: (def, def), count: rank) }
    if let v = raw.intValue { return [(Int, Int)](repeating: (v, v), count: rank) }
    guard let a = raw.arrayValue else { throw KerasError("\(layer): cannot read \(what) from \(raw.serialized())") }
    if a.count == 2, rank == 1, let x = a[0].intValue, let y = a[1].intValue { return [(x, y)] }
    guard a.count == rank else { throw KerasError("\(layer): \(what) needs \(rank) entries, got \(raw.serialized())") }
    return try a.map { e in
        if let v = e.intValue { return (v, v) }
        guard let p = e.arrayValue, p.count == 2, let x = p[0].intValue, let y = p[1].intValue else {
            throw KerasError("\(layer): cannot read \(what) from \(raw.serialized())")
        }
        return (x, y)
    }
}

/// Cropping1D/2D/3D and ZeroPadding1D/2D/3D share one shape: per-axis (before, after).
public class SpatialEdges: Layer {
    public let rank: Int, amounts: [(Int, Int)], dataFormat: String, isCrop: Bool
    init(rank: Int, amounts: [(Int, Int)], dataFormat: String?, isCrop: Bool, name: String?) {
        self.rank = rank; self.amounts = amounts; self.dataFormat = dataFormat ?? ImageDataFormat.current; self.isCrop = isCrop
        super.init(name: name)
    }
    public override func build(_ shapes: [Shape]) throws {
        try ImageDataFormat.validate(dataFormat, layer: name)
        guard shapes[0].count == rank + 2, amounts.count == rank, amounts.allSatisfy({ $0.0 >= 0 && $0.1 >= 0 && $0.0 <= TensorType.maxDimension && $0.1 <= TensorType.maxDimension }) else {
            throw KerasError("\(name): expected an input of rank \(rank + 2) and \(rank) non-negative (before, after) pairs")
        }
        if isCrop {
            for (a, n) in splitShape(shapes[0], format: dataFormat).1.enumerated() {
                if let n, amounts[a].0 + amounts[a].1 >= n {
                    throw KerasError("\(name): cropping \(amounts[a]) leaves nothing of an axis of size \(n)")
                }
            }
        }
    }
    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        let x = inputs[0]
        let r = b.type(of: x).rank
        let spatialAxes = dataFormat == "channels_first" ? Array(2..<r) : Array(1..<(r - 1))
        if isCrop {
            var begin = [Int](repeating: 0, count: r), size = [Int](repeating: -1, count: r)
            let shape = b.type(of: x).shape
            for (k, a) in spatialAxes.enumerated() {
                begin[a] = amounts[k].0
                size[a] = shape[a] - amounts[k].0 - amounts[k].1
            }
            return [try b.emit("slice", [x], ["begin": .ints(begin), "size": .ints(size)])]
        }
        var pads = [Int](repeating: 0, count: 2 * r)
        for (k, a) in spatialAxes.enumerated() { pads[2 * a] = amounts[k].0; pads[2 * a + 1] = amounts[k].1 }
        return [try b.emit("pad", [x], ["pads": .ints(pads), "value": .float(0)])]
    }
    public override var config: JSON {
        var c = super.config
        let key = isCrop ? "cropping" : "padding"
        c.set(key, rank == 1 ? JSON([amounts[0].0, amounts[0].1]) : .array(amounts.map { JSON([$0.0, $0.1]) }))
        if rank > 1 || !isCrop { c.set("data_format", .string(dataFormat)) }
        return c
    }
}

public final class Cropping1D: SpatialEdges {
    public init(cropping: (Int, Int) = (1, 1), name: String? = nil) { super.init(rank: 1, amounts: [cropping], dataFormat: "channels_last", isCrop: true, name: name) }
    public override class func from(config c: JSON) throws -> Layer {
        Cropping1D(cropping: try sidePairs(c["cropping"], rank: 1, default: 1, layer: "cropping1d", what: "cropping")[0], name: c["name"]?.stringValue)
    }
}
public final class Cropping2D: SpatialEdges {
    public init(cropping: [(Int, Int)] = [(0, 0), (0, 0)], dataFormat: String? = nil, name: String? = nil) {
        super.init(rank: 2, amounts: cropping, dataFormat: dataFormat, isCrop: true, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        Cropping2D(cropping: try sidePairs(c["cropping"], rank: 2, default: 0, layer: "cropping2d", what: "cropping"),
                   dataFormat: c["data_format"]?.stringValue, name: c["name"]?.stringValue)
    }
}
public final class Cropping3D: SpatialEdges {
    public init(cropping: [(Int, Int)] = [(1, 1), (1, 1), (1, 1)], dataFormat: String? = nil, name: String? = nil) {
        super.init(rank: 3, amounts: cropping, dataFormat: dataFormat, isCrop: true, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        Cropping3D(cropping: try sidePairs(c["cropping"], rank: 3, default: 1, layer: "cropping3d", what: "cropping"),
                   dataFormat: c["data_format"]?.stringValue, name: c["name"]?.stringValue)
    }
}
public final class ZeroPadding1D: SpatialEdges {
    public init(padding: (Int, Int) = (1, 1), dataFormat: String? = nil, name: String? = nil) {
        super.init(rank: 1, amounts: [padding], dataFormat: dataFormat, isCrop: false, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        ZeroPadding1D(padding: try sidePairs(c["padding"], rank: 1, default: 1, layer: "zero_padding1d", what: "padding")[0],
                      dataFormat: c["data_format"]?.stringValue, name: c["name"]?.stringValue)
    }
}
public final class ZeroPadding2D: SpatialEdges {
    public init(padding: [(Int, Int)] = [(1, 1), (1, 1)], dataFormat: String? = nil, name: String? = nil) {
        super.init(rank: 2, amounts: padding, dataFormat: dataFormat, isCrop: false, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        ZeroPadding2D(padding: try sidePairs(c["padding"], rank: 2, default: 1, layer: "zero_padding2d", what: "padding"),
                      dataFormat: c["data_format"]?.stringValue, name: c["name"]?.stringValue)
    }
}
public final class ZeroPadding3D: SpatialEdges {
    public init(padding: [(Int, Int)] = [(1, 1), (1, 1), (1, 1)], dataFormat: String? = nil, name: String? = nil) {
        super.init(rank: 3, amounts: padding, dataFormat: dataFormat, isCrop: false, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        ZeroPadding3D(padding: try sidePairs(c["padding"], rank: 3, default: 1, layer: "zero_padding3d", what: "padding"),
                      dataFormat: c["data_format"]?.stringValue, name: c["name"]?.stringValue)
    }
}

/// Repeats (nearest) or interpolates (bilinear, 2D, half-pixel centres,
/// edge-clamped) each spatial axis by an integer factor.
public class BaseUpSampling: Layer {
    public let rank: Int, size: [Int], dataFormat: String, interpolation: String
    init(rank: Int, size: [Int], dataFormat: String?, interpolation: String, name: String?) {
        self.rank = rank
        self.size = size.count == 1 ? [Int](repeating: size[0], count: rank) : size
        self.dataFormat = dataFormat ?? ImageDataFormat.current
        self.interpolation = interpolation
        super.init(name: name)
    }
    public override func build(_ shapes: [Shape]) throws {
        try ImageDataFormat.validate(dataFormat, layer: name)
        guard shapes[0].count == rank + 2, size.count == rank, size.allSatisfy({ $0 > 0 && $0 <= TensorType.maxDimension }) else {
            throw KerasError("\(name): expected an input of rank \(rank + 2) and \(rank) positive sizes, got \(formatShape(shapes[0])) and \(size)")
        }
        guard interpolation == "nearest" || (interpolation == "bilinear" && rank == 2) else {
            throw KerasError("\(name): interpolation must be 'nearest'\(rank == 2 ? " or 'bilinear'" : ""), got '\(interpolation)'")
        }
    }

    /// Repeats axis `axis` of x `factor` times (nearest).
    func repeatAxis(_ x: Value, axis: Int, factor: Int, _ b: GraphBuilder) throws -> Value {
        if factor == 1 { return x }
        let s = b.type(of: x).shape.map { $0 == TensorType.unknown ? -1 : $0 }
        var expanded = s
        expanded.insert(1, at: axis + 1)
        var target = s
        target.insert(factor, at: axis + 1)
        let y = try b.emit("broadcast_to", [b.reshape(x, expanded)], ["shape": .ints(target)])
        var merged = s
        merged[axis] = s[axis] * factor
        return try b.reshape(y, merged)
    }

    /// Bilinear resize along `axis` as a product with a constant interpolation matrix.
    func interpolateAxis(_ x: Value, axis: Int, factor: Int, _ b: GraphBuilder) throws -> Value {
        let t = b.type(of: x)
        let n = t.shape[axis], m = n * factor
        let count = try MemoryLimit.check("\(name): bilinear interpolation matrix", shape: [m, n])
        var w = [Float](repeating: 0, count: count)
        for i in 0..<m {
            let src = max((Double(i) + 0.5) / Double(factor) - 0.5, 0)
            let lo = min(Int(src), n - 1), hi = min(lo + 1, n - 1)
            let frac = Float(src - Double(lo))
            w[i * n + lo] += 1 - frac
            w[i * n + hi] += frac
        }
        let r = t.rank
        var perm = Array(0..<r)
        perm.remove(at: axis)
        perm.append(axis)
        let moved = try b.transpose(x, perm)  // axis last
        let wt = try b.constant(w, shape: [m, n])
        let y = try b.matmul(moved, wt, transposeB: true)
        var inverse = [Int](repeating: 0, count: r)
        for (i, p) in perm.enumerated() { inverse[p] = i }
        return try b.transpose(y, inverse)
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        var x = inputs[0]
        if dataFormat == "channels_first" { x = try ConvArithmetic.toChannelsLast(x, b) }
        for a in 0..<rank {
            x = interpolation == "bilinear" ? try interpolateAxis(x, axis: 1 + a, factor: size[a], b)
                                            : try repeatAxis(x, axis: 1 + a, factor: size[a], b)
        }
        if dataFormat == "channels_first" { x = try ConvArithmetic.toChannelsFirst(x, b) }
        return [x]
    }
    public override var config: JSON {
        var c = super.config
        c.set("size", rank == 1 && size.count == 1 ? JSON(size[0]) : JSON(size))
        if rank > 1 { c.set("data_format", .string(dataFormat)) }
        if rank == 2 { c.set("interpolation", .string(interpolation)) }
        return c
    }
}

public final class UpSampling1D: BaseUpSampling {
    public init(size: Int = 2, name: String? = nil) { super.init(rank: 1, size: [size], dataFormat: "channels_last", interpolation: "nearest", name: name) }
    public override class func from(config c: JSON) throws -> Layer { UpSampling1D(size: try c.ints("size")?.first ?? 2, name: c["name"]?.stringValue) }
}
public final class UpSampling2D: BaseUpSampling {
    public init(size: [Int] = [2, 2], dataFormat: String? = nil, interpolation: String = "nearest", name: String? = nil) {
        super.init(rank: 2, size: size, dataFormat: dataFormat, interpolation: interpolation, name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        UpSampling2D(size: try c.ints("size") ?? [2, 2], dataFormat: c["data_format"]?.stringValue,
                     interpolation: try c.string("interpolation", default: "nearest"), name: c["name"]?.stringValue)
    }
}
public final class UpSampling3D: BaseUpSampling {
    public init(size: [Int] = [2, 2, 2], dataFormat: String? = nil, name: String? = nil) {
        super.init(rank: 3, size: size, dataFormat: dataFormat, interpolation: "nearest", name: name)
    }
    public override class func from(config c: JSON) throws -> Layer {
        UpSampling3D(size: try c.ints("size") ?? [2, 2, 2], dataFormat: c["data_format"]?.stringValue, name: c["name"]?.stringValue)
    }
}
