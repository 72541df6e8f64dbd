import KerasIR

/// Keras 1's `Merge` layer and `merge` function: one class with a `mode`
/// (sum, mul, concat, ave, dot, cos, max). Each mode is the Keras 2/3 layer
/// it became; `Merge` configs deserialize to that layer.
public enum LegacyMerge {
    /// The layer for a Keras 1 merge mode.
    public static func layer(mode: String, concatAxis: Int = -1, dotAxes: [Int] = [-1], name: String? = nil) throws -> Layer {
        switch mode {
        case "sum": return Add(name: name)
        case "mul": return Multiply(name: name)
        case "ave": return Average(name: name)
        case "max": return Maximum(name: name)
        case "concat": return Concatenate(axis: concatAxis, name: name)
        case "dot": return Dot(axes: dotAxes, name: name)
        case "cos": return Dot(axes: dotAxes, normalize: true, name: name)
        default:
            throw KerasError("merge: unknown mode '\(mode)' (sum, mul, concat, ave, dot, cos, max)")
        }
    }

    /// A Keras 1 `Merge` config ({"mode", "concat_axis", "dot_axes", "name"}).
    static func from(config c: JSON) throws -> Layer {
        let mode = try c.string("mode", default: "sum")
        return try layer(mode: mode, concatAxis: try c.int("concat_axis", default: -1), dotAxes: try c.ints("dot_axes") ?? [-1],
                         name: c["name"]?.stringValue)
    }
}

/// Keras 1's `merge([a, b], mode: "sum")`: the tensor a merge of that mode gives.
public func merge(_ xs: [KerasTensor], mode: String = "sum", concatAxis: Int = -1, dotAxes: [Int] = [-1], name: String? = nil) throws -> KerasTensor {
    let l = try LegacyMerge.layer(mode: mode, concatAxis: concatAxis, dotAxes: dotAxes, name: name)
    let outs: [KerasTensor] = try l(xs)
    guard outs.count == 1 else { throw KerasError("merge: mode \(mode) returned \(outs.count) tensors") }
    return outs[0]
}
