import KerasIR

/// A penalty on a weight or an activation, added to the loss as graph ops.
public protocol Regularizer {
    static var className: String { get }
    func penalty(_ x: Value, _ b: GraphBuilder) throws -> Value
    var config: JSON { get }
}

extension Regularizer {
    public var serialized: JSON { Keras.serialized(module: "keras.regularizers", className: Self.className, config: config) }
}

func sumAll(_ x: Value, _ b: GraphBuilder) throws -> Value {
    try b.reduceSum(x, axes: Array(0..<b.type(of: x).rank))
}

/// l1 * sum(|x|) + l2 * sum(x^2).
public struct L1L2: Regularizer {
    public static let className = "L1L2"
    public var l1: Float, l2: Float
    public init(l1: Float = 0, l2: Float = 0) { self.l1 = l1; self.l2 = l2 }
    public func penalty(_ x: Value, _ b: GraphBuilder) throws -> Value {
        var total: Value? = nil
        if l1 != 0 { total = try b.mul(sumAll(b.abs(x), b), l1) }
        if l2 != 0 {
            let t = try b.mul(sumAll(b.square(x), b), l2)
            total = try total.map { try b.add($0, t) } ?? t
        }
        return total ?? b.scalar(0)
    }
    public var config: JSON { ["l1": JSON(l1), "l2": JSON(l2)] }
}

public struct L1: Regularizer {
    public static let className = "L1"
    public var l1: Float
    public init(l1: Float = 0.01) { self.l1 = l1 }
    public func penalty(_ x: Value, _ b: GraphBuilder) throws -> Value { try L1L2(l1: l1).penalty(x, b) }
    public var config: JSON { ["l1": JSON(l1)] }
}

public struct L2: Regularizer {
    public static let className = "L2"
    public var l2: Float
    public init(l2: Float = 0.01) { self.l2 = l2 }
    public func penalty(_ x: Value, _ b: GraphBuilder) throws -> Value { try L1L2(l2: l2).penalty(x, b) }
    public var config: JSON { ["l2": JSON(l2)] }
}

public enum Regularizers {
    public static func get(_ json: JSON?) throws -> Regularizer? {
        guard let json, !json.isNull else { return nil }
        let (cls, c) = try classAndConfig(json, what: "a regularizer")
        var name = canonicalName(cls)
        if name.hasSuffix("regularizer") { name.removeLast("regularizer".count) }  // Keras 1's L1L2Regularizer
        switch name {
        case "l1": return L1(l1: try c.float("l1", default: 0.01))
        case "l2": return L2(l2: try c.float("l2", default: 0.01))
        case "l1l2": return L1L2(l1: try c.float("l1", default: 0), l2: try c.float("l2", default: 0))
        default: throw KerasError("unknown regularizer '\(cls)'")
        }
    }
}

/// A projection applied to a weight after every optimizer update, as graph ops.
public protocol Constraint {
    static var className: String { get }
    func apply(_ w: Value, _ b: GraphBuilder) throws -> Value
    var config: JSON { get }
}

extension Constraint {
    public var serialized: JSON { Keras.serialized(module: "keras.constraints", className: Self.className, config: config) }
}

private func norms(_ w: Value, axes: [Int], _ b: GraphBuilder) throws -> Value {
    let rank = b.type(of: w).rank
    let ax = axes.map { $0 < 0 ? $0 + rank : $0 }
    return try b.sqrt(b.reduceSum(b.square(w), axes: ax, keepDims: true))
}

/// Scales each slice along `axis` down to a norm of at most `maxValue`.
public struct MaxNorm: Constraint {
    public static let className = "MaxNorm"
    public var maxValue: Float, axis: [Int]
    public init(maxValue: Float = 2, axis: [Int] = [0]) { self.maxValue = maxValue; self.axis = axis }
    public func apply(_ w: Value, _ b: GraphBuilder) throws -> Value {
        let n = try norms(w, axes: axis, b)
        let desired = try b.minimum(b.maximum(n, b.scalar(0)), b.scalar(maxValue))
        return try b.mul(w, b.div(desired, b.add(n, 1e-7)))
    }
    public var config: JSON { ["max_value": JSON(maxValue), "axis": axis.count == 1 ? JSON(axis[0]) : JSON(axis)] }
}

public struct NonNeg: Constraint {
    public static let className = "NonNeg"
    public init() {}
    public func apply(_ w: Value, _ b: GraphBuilder) throws -> Value {
        try b.mul(w, b.compare("greater_equal", w, b.scalar(0)))
    }
    public var config: JSON { .object([]) }
}

public struct UnitNorm: Constraint {
    public static let className = "UnitNorm"
    public var axis: [Int]
    public init(axis: [Int] = [0]) { self.axis = axis }
    public func apply(_ w: Value, _ b: GraphBuilder) throws -> Value {
        try b.div(w, b.add(norms(w, axes: axis, b), 1e-7))
    }
    public var config: JSON { ["axis": axis.count == 1 ? JSON(axis[0]) : JSON(axis)] }
}

public struct MinMaxNorm: Constraint {
    public static let className = "MinMaxNorm"
    public var minValue: Float, maxValue: Float, rate: Float, axis: [Int]
    public init(minValue: Float = 0, maxValue: Float = 1, rate: Float = 1, axis: [Int] = [0]) {
        self.minValue = minValue; self.maxValue = maxValue; self.rate = rate; self.axis = axis
    }
    public func apply(_ w: Value, _ b: GraphBuilder) throws -> Value {
        let n = try norms(w, axes: axis, b)
        let clipped = try b.minimum(b.maximum(n, b.scalar(minValue)), b.scalar(maxValue))
        let desired = try b.add(b.mul(clipped, rate), b.mul(n, 1 - rate))
        return try b.mul(w, b.div(desired, b.add(n, 1e-7)))
    }
    public var config: JSON {
        ["min_value": JSON(minValue), "max_value": JSON(maxValue), "rate": JSON(rate), "axis": axis.count == 1 ? JSON(axis[0]) : JSON(axis)]
    }
}

public enum Constraints {
    public static func get(_ json: JSON?) throws -> Constraint? {
        guard let json, !json.isNull else { return nil }
        let (cls, c) = try classAndConfig(json, what: "a constraint")
        let axis = try c.ints("axis") ?? [0]
        switch canonicalName(cls) {
        case "maxnorm": return MaxNorm(maxValue: try c.float("max_value", default: try c.float("m", default: 2)), axis: axis)  // Keras 1: m
        case "nonneg": return NonNeg()
        case "unitnorm": return UnitNorm(axis: axis)
        case "minmaxnorm":
            return MinMaxNorm(minValue: try c.float("min_value", default: 0), maxValue: try c.float("max_value", default: 1),
                              rate: try c.float("rate", default: 1), axis: axis)
        default: throw KerasError("unknown constraint '\(cls)'")
        }
    }
}
