import KerasIR

/// Shared arithmetic for convolution and pooling layers: Keras's padding
/// rules, data formats, and the transposes at the channels_first boundary.
enum ConvArithmetic {
    /// (before, after) padding of one spatial axis, as Keras computes it.
    static func padding(_ mode: String, input n: Int, kernel k: Int, stride s: Int, dilation d: Int) -> (Int, Int) {
        let eff = (k - 1) * d + 1
        switch mode {
        case "same":
            let out = (n + s - 1) / s
            let total = max((out - 1) * s + eff - n, 0)
            return (total / 2, total - total / 2)
        case "causal":
            return (d * (k - 1), 0)
        default:
            return (0, 0)
        }
    }

    /// x in channels_first -> channels_last (or back) as a transpose.
    static func toChannelsLast(_ x: Value, _ b: GraphBuilder) throws -> Value {
        let r = b.type(of: x).rank
        return try b.transpose(x, [0] + Array(2..<r) + [1])
    }

    static func toChannelsFirst(_ x: Value, _ b: GraphBuilder) throws -> Value {
        let r = b.type(of: x).rank
        return try b.transpose(x, [0, r - 1] + Array(1..<(r - 1)))
    }

    /// Reads an int or a list of `rank` ints (Keras accepts both).
    static func tuple(_ v: [Int], rank: Int, name: String, layer: String) throws -> [Int] {
        if v.count == 1 { return [Int](repeating: v[0], count: rank) }
        guard v.count == rank else { throw KerasError("\(layer): \(name) must have \(rank) values, got \(v)") }
        return v
    }
}

/// Spatial dimensions of a shape in a data format: (batch, spatial, channels).
func splitShape(_ s: Shape, format: String) -> (Int?, [Int?], Int?) {
    if format == "channels_first" { return (s[0], Array(s.dropFirst(2)), s[1]) }
    return (s[0], Array(s.dropFirst().dropLast()), s.last!)
}
