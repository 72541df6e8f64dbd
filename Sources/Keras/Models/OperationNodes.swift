import KerasIR

/// The keras.ops classes Keras 3 writes into functional configs as graph
/// nodes (a mask made with NotEqual and reduced with Any, for instance). Each
/// call becomes an OperationLayer under the saved name; constants among the
/// call's arguments are captured. Unknown ones are an error naming the class.
enum OperationNodes {
    static func isOperation(_ entry: JSON) -> Bool {
        (entry["module"]?.stringValue ?? "").hasPrefix("keras.src.ops")
    }

    /// The layer for call `node` of `entry`, with the call's arguments
    /// (tensor references become inputs, numbers are kept).
    static func layer(_ entry: JSON, args: [JSON], node: Int) throws -> OperationLayer {
        let l = try makeLayer(entry, args: args, node: node)
        l.savedEntry = entry
        l.savedArgs = .array(args)
        return l
    }

    private static func makeLayer(_ entry: JSON, args: [JSON], node: Int) throws -> OperationLayer {
        let cls = entry["class_name"]?.stringValue ?? "?"
        let name = entry["name"]?.stringValue ?? entry["config"]?["name"]?.stringValue ?? cls
        let config = entry["config"] ?? .object([])
        let label = node == 0 ? name : "\(name)_\(node)"
        let constants = args.compactMap(\.doubleValue)
        switch cls {
        case "NotEqual", "Equal", "Greater", "GreaterEqual", "Less", "LessEqual":
            let op = ["NotEqual": "not_equal", "Equal": "equal", "Greater": "greater", "GreaterEqual": "greater_equal",
                      "Less": "less", "LessEqual": "less_equal"][cls]!
            return OperationLayer(named: label) { xs, b in
                let other: Value
                if xs.count >= 2 { other = xs[1] } else {
                    guard let c = constants.first else { throw KerasError("\(name): \(cls) needs two operands") }
                    let dtype = b.type(of: xs[0]).dtype
                    guard dtype == .f32 || Int32(exactly: c) != nil else { throw KerasError("\(name): \(c) is not an int32 for \(cls)") }
                    other = dtype == .f32 ? b.scalar(Float(c)) : try b.constant([Int32(exactly: c) ?? 0], shape: [])
                }
                // Masks are kept as float 0/1 values.
                return try b.cast(b.compare(op, xs[0], other), to: .f32)
            }
        case "Any", "All":
            let keep = try config.bool("keepdims", default: false)
            let axes = try config.ints("axis")
            return OperationLayer(named: label) { xs, b in
                let x = try b.cast(xs[0], to: .f32)
                let rank = b.type(of: x).rank
                let all = try (axes ?? Array(0..<rank)).map { a -> Int in
                    let r = a < 0 ? a + rank : a
                    guard r >= 0 && r < rank else { throw KerasError("\(name): axis \(a) is out of range for rank \(rank)") }
                    return r
                }
                // any = max of 0/1 values; all = min (as -max(-x)).
                return cls == "Any" ? try b.reduceMax(x, axes: all, keepDims: keep)
                                    : try b.neg(b.reduceMax(b.neg(x), axes: all, keepDims: keep))
            }
        default:
            throw KerasError("Functional config: the operation node \(name) of class '\(cls)' is not supported (NotEqual, Equal, Greater, GreaterEqual, Less, LessEqual, Any, All are)")
        }
    }
}
