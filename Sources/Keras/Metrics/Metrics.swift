import KerasIR

/// A Keras metric as per-sample values emitted in the graph; the model sums
/// them per batch and averages over the epoch, like Keras's stateful Mean.
public struct Metric: CustomStringConvertible {
    /// The name in logs and History ("accuracy", "mae").
    public let name: String
    let body: (_ yTrue: Value, _ yPred: Value, _ b: GraphBuilder) throws -> Value
    public var description: String { name }

    public func values(_ yTrue: Value, _ yPred: Value, _ b: GraphBuilder) throws -> Value { try body(yTrue, yPred, b) }

    private static func f32(_ x: Value, _ b: GraphBuilder) throws -> Value { b.type(of: x).dtype == .f32 ? x : try b.cast(x, to: .f32) }

    public static func binaryAccuracy(name: String = "binary_accuracy", threshold: Float = 0.5) -> Metric {
        Metric(name: name) { y, p, b in
            let pred = try b.greater(p, b.scalar(threshold))
            return try b.reduceMean(b.compare("equal", f32(y, b), pred), axes: [b.type(of: p).rank - 1])
        }
    }
    public static func categoricalAccuracy(name: String = "categorical_accuracy") -> Metric {
        Metric(name: name) { y, p, b in
            try f32(b.compare("equal", b.emit("argmax", [f32(y, b)], ["axis": .int(-1)]), b.emit("argmax", [p], ["axis": .int(-1)])), b)
        }
    }
    public static func sparseCategoricalAccuracy(name: String = "sparse_categorical_accuracy") -> Metric {
        Metric(name: name) { y, p, b in
            let pt = b.type(of: p)
            var labels = y
            let lt = b.type(of: y)
            if lt.rank == pt.rank && lt.shape.last == 1 {
                labels = try b.reshape(labels, lt.shape.dropLast().map { $0 == TensorType.unknown ? -1 : $0 })
            }
            let pred = try f32(b.emit("argmax", [p], ["axis": .int(-1)]), b)
            return try b.compare("equal", f32(labels, b), pred)
        }
    }
    public static func topKCategoricalAccuracy(k: Int = 5, name: String = "top_k_categorical_accuracy") -> Metric {
        Metric(name: name) { y, p, b in
            let rank = b.type(of: p).rank
            let truth = try b.reduceSum(b.mul(f32(y, b), p), axes: [rank - 1], keepDims: true)
            let above = try b.reduceSum(b.greater(p, truth), axes: [rank - 1])
            return try b.compare("less", above, b.scalar(Float(k)))
        }
    }
    public static func fromLoss(_ name: String, _ loss: Loss) -> Metric {
        Metric(name: name) { y, p, b in try loss.values(y, p, b) }
    }

    /// A metric by name; "accuracy"/"acc" picks binary, categorical or sparse
    /// accuracy from the loss, as Keras does.
    public static func get(_ name: String, loss: Loss?) throws -> Metric {
        switch canonicalName(name) {
        case "accuracy", "acc":
            switch loss?.name {
            case "binary_crossentropy"?: return .binaryAccuracy(name: name)
            case "sparse_categorical_crossentropy"?: return .sparseCategoricalAccuracy(name: name)
            case "categorical_crossentropy"?: return .categoricalAccuracy(name: name)
            default: return .categoricalAccuracy(name: name)
            }
        case "binaryaccuracy": return .binaryAccuracy(name: name)
        case "categoricalaccuracy": return .categoricalAccuracy(name: name)
        case "sparsecategoricalaccuracy": return .sparseCategoricalAccuracy(name: name)
        case "topkcategoricalaccuracy": return .topKCategoricalAccuracy(name: name)
        case "mse", "meansquarederror": return .fromLoss(name, .meanSquaredError())
        case "mae", "meanabsoluteerror": return .fromLoss(name, .meanAbsoluteError())
        case "mape", "meanabsolutepercentageerror": return .fromLoss(name, .meanAbsolutePercentageError())
        case "msle", "meansquaredlogarithmicerror": return .fromLoss(name, .meanSquaredLogarithmicError())
        case "binarycrossentropy", "categoricalcrossentropy", "sparsecategoricalcrossentropy", "hinge", "squaredhinge",
             "categoricalhinge", "kldivergence", "poisson", "cosinesimilarity", "logcosh":
            return .fromLoss(name, try Loss.get(name))
        default: throw KerasError("unknown metric '\(name)'")
        }
    }
}
