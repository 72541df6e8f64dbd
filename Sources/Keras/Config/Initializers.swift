import KerasIR
#if canImport(Glibc)
import Glibc
#endif

/// Produces a weight's initial values. Seeded initializers give the same
/// values every time; unseeded ones draw a seed from `RandomSeed`.
public protocol Initializer {
    static var className: String { get }
    func values(shape: [Int]) throws -> [Float]
    var config: JSON { get }
}

extension Initializer {
    public var serialized: JSON { Keras.serialized(module: "keras.initializers", className: Self.className, config: config) }
}

/// Keras's fan computation: (fan_in, fan_out).
public func computeFans(_ shape: [Int]) -> (Double, Double) {
    switch shape.count {
    case 0: return (1, 1)
    case 1: return (Double(shape[0]), Double(shape[0]))
    case 2: return (Double(shape[0]), Double(shape[1]))
    default:
        let receptive = shape.dropLast(2).reduce(1.0) { $0 * Double($1) }
        return (Double(shape[shape.count - 2]) * receptive, Double(shape[shape.count - 1]) * receptive)
    }
}

/// The number of values for `shape`, checked against overflow and memory
/// before an initializer allocates them.
func valueCount(_ shape: [Int]) throws -> Int {
    try MemoryLimit.check("initial values", shape: shape)
}

/// A generator per call: the seed when given, else a fresh global draw.
func generator(_ seed: Int?) -> SplitMix64 {
    SplitMix64(seed: seed.map { UInt64(bitPattern: Int64($0)) &* 0x2545F4914F6CDD1D &+ 0x1234567 } ?? RandomSeed.next())
}

extension SplitMix64 {
    /// Standard normal by Box-Muller.
    mutating func normal() -> Double {
        let u1 = (Double(next() >> 11) + 1) / Double(1 << 53), u2 = unit()
        return (-2 * Foundation_log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
    /// Normal truncated to two standard deviations (resampled), as Keras does.
    mutating func truncatedNormal() -> Double {
        while true {
            let z = normal()
            if abs(z) <= 2 { return z }
        }
    }
}

@inline(__always) func Foundation_log(_ x: Double) -> Double { log(x) }

public struct Zeros: Initializer {
    public static let className = "Zeros"
    public init() {}
    public func values(shape: [Int]) throws -> [Float] { [Float](repeating: 0, count: try valueCount(shape)) }
    public var config: JSON { .object([]) }
}

public struct Ones: Initializer {
    public static let className = "Ones"
    public init() {}
    public func values(shape: [Int]) throws -> [Float] { [Float](repeating: 1, count: try valueCount(shape)) }
    public var config: JSON { .object([]) }
}

public struct Constant: Initializer {
    public static let className = "Constant"
    public var value: Float
    public init(value: Float = 0) { self.value = value }
    public func values(shape: [Int]) throws -> [Float] { [Float](repeating: value, count: try valueCount(shape)) }
    public var config: JSON { ["value": JSON(value)] }
}

public struct RandomUniform: Initializer {
    public static let className = "RandomUniform"
    public var minval: Float, maxval: Float, seed: Int?
    public init(minval: Float = -0.05, maxval: Float = 0.05, seed: Int? = nil) { self.minval = minval; self.maxval = maxval; self.seed = seed }
    public func values(shape: [Int]) throws -> [Float] {
        var g = generator(seed)
        return (0..<(try valueCount(shape))).map { _ in Float(Double(minval) + Double(maxval - minval) * g.unit()) }
    }
    public var config: JSON { ["minval": JSON(minval), "maxval": JSON(maxval), "seed": seed.map { JSON($0) } ?? .null] }
}

public struct RandomNormal: Initializer {
    public static let className = "RandomNormal"
    public var mean: Float, stddev: Float, seed: Int?
    public init(mean: Float = 0, stddev: Float = 0.05, seed: Int? = nil) { self.mean = mean; self.stddev = stddev; self.seed = seed }
    public func values(shape: [Int]) throws -> [Float] {
        var g = generator(seed)
        return (0..<(try valueCount(shape))).map { _ in Float(Double(mean) + Double(stddev) * g.normal()) }
    }
    public var config: JSON { ["mean": JSON(mean), "stddev": JSON(stddev), "seed": seed.map { JSON($0) } ?? .null] }
}

public struct TruncatedNormal: Initializer {
    public static let className = "TruncatedNormal"
    public var mean: Float, stddev: Float, seed: Int?
    public init(mean: Float = 0, stddev: Float = 0.05, seed: Int? = nil) { self.mean = mean; self.stddev = stddev; self.seed = seed }
    public func values(shape: [Int]) throws -> [Float] {
        var g = generator(seed)
        return (0..<(try valueCount(shape))).map { _ in Float(Double(mean) + Double(stddev) * g.truncatedNormal()) }
    }
    public var config: JSON { ["mean": JSON(mean), "stddev": JSON(stddev), "seed": seed.map { JSON($0) } ?? .null] }
}

/// scale / fan, drawn from a truncated normal, a normal or a uniform.
public struct VarianceScaling: Initializer {
    public static let className = "VarianceScaling"
    public var scale: Float, mode: String, distribution: String, seed: Int?
    var name: String = "VarianceScaling"

    public init(scale: Float = 1, mode: String = "fan_in", distribution: String = "truncated_normal", seed: Int? = nil) throws {
        guard scale > 0 else { throw KerasError("VarianceScaling: scale must be positive, got \(scale)") }
        guard ["fan_in", "fan_out", "fan_avg"].contains(mode) else {
            throw KerasError("VarianceScaling: unknown mode '\(mode)' (fan_in, fan_out or fan_avg)")
        }
        guard ["truncated_normal", "untruncated_normal", "normal", "uniform"].contains(distribution) else {
            throw KerasError("VarianceScaling: unknown distribution '\(distribution)'")
        }
        self.scale = scale; self.mode = mode; self.distribution = distribution; self.seed = seed
    }

    public func values(shape: [Int]) throws -> [Float] {
        let (fanIn, fanOut) = computeFans(shape)
        let n = mode == "fan_in" ? fanIn : mode == "fan_out" ? fanOut : (fanIn + fanOut) / 2
        let s = Double(scale) / max(1, n)
        var g = generator(seed)
        let count = try valueCount(shape)
        switch distribution {
        case "truncated_normal":
            let sd = s.squareRoot() / 0.87962566103423978
            return (0..<count).map { _ in Float(sd * g.truncatedNormal()) }
        case "untruncated_normal", "normal":
            let sd = s.squareRoot()
            return (0..<count).map { _ in Float(sd * g.normal()) }
        default:
            let limit = (3 * s).squareRoot()
            return (0..<count).map { _ in Float(-limit + 2 * limit * g.unit()) }
        }
    }

    public var config: JSON {
        ["scale": JSON(scale), "mode": .string(mode), "distribution": .string(distribution), "seed": seed.map { JSON($0) } ?? .null]
    }
}

/// The named variance-scaling family (GlorotUniform, HeNormal, ...).
public struct NamedVarianceScaling: Initializer {
    public static let className = "VarianceScaling"
    public let kerasName: String
    let inner: VarianceScaling
    public var seed: Int? { inner.seed }

    init(_ name: String, scale: Float, mode: String, distribution: String, seed: Int?) {
        kerasName = name
        inner = try! VarianceScaling(scale: scale, mode: mode, distribution: distribution, seed: seed)
    }
    public func values(shape: [Int]) throws -> [Float] { try inner.values(shape: shape) }
    public var config: JSON { ["seed": seed.map { JSON($0) } ?? .null] }
    public var serialized: JSON { Keras.serialized(module: "keras.initializers", className: kerasName, config: config) }
}

public func GlorotUniform(seed: Int? = nil) -> NamedVarianceScaling { .init("GlorotUniform", scale: 1, mode: "fan_avg", distribution: "uniform", seed: seed) }
public func GlorotNormal(seed: Int? = nil) -> NamedVarianceScaling { .init("GlorotNormal", scale: 1, mode: "fan_avg", distribution: "truncated_normal", seed: seed) }
public func HeUniform(seed: Int? = nil) -> NamedVarianceScaling { .init("HeUniform", scale: 2, mode: "fan_in", distribution: "uniform", seed: seed) }
public func HeNormal(seed: Int? = nil) -> NamedVarianceScaling { .init("HeNormal", scale: 2, mode: "fan_in", distribution: "truncated_normal", seed: seed) }
public func LecunUniform(seed: Int? = nil) -> NamedVarianceScaling { .init("LecunUniform", scale: 1, mode: "fan_in", distribution: "uniform", seed: seed) }
public func LecunNormal(seed: Int? = nil) -> NamedVarianceScaling { .init("LecunNormal", scale: 1, mode: "fan_in", distribution: "truncated_normal", seed: seed) }

/// A (semi-)orthogonal matrix from the QR factorization of a normal draw.
public struct Orthogonal: Initializer {
    public static let className = "Orthogonal"
    public var gain: Float, seed: Int?
    public init(gain: Float = 1, seed: Int? = nil) { self.gain = gain; self.seed = seed }

    public func values(shape: [Int]) throws -> [Float] {
        guard shape.count >= 2 else { throw KerasError("Orthogonal initializer needs a shape of rank 2 or more, got \(shape)") }
        let cols = shape[shape.count - 1], rows = try valueCount(shape) / max(cols, 1)
        let m = max(rows, cols), n = min(rows, cols)
        try MemoryLimit.check("Orthogonal initializer of \(shape)", count: m &* n, elementBytes: 8)
        var g = generator(seed)
        // columns of an m x n normal matrix, orthonormalized (modified Gram-Schmidt, twice for stability)
        // (Gram-Schmidt leaves R's diagonal positive, so no sign correction is needed.)
        var q = (0..<n).map { _ in (0..<m).map { _ in g.normal() } }
        for j in 0..<n {
            for _ in 0..<2 {
                for k in 0..<j {
                    let d = zip(q[j], q[k]).reduce(0) { $0 + $1.0 * $1.1 }
                    for i in 0..<m { q[j][i] -= d * q[k][i] }
                }
            }
            let norm = q[j].reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in 0..<m { q[j][i] /= max(norm, 1e-300) }
        }
        // q is m x n (column j = q[j]); the result is rows x cols
        var out = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            for c in 0..<cols {
                let v = rows >= cols ? q[c][r] : q[r][c]
                out[r * cols + c] = Float(Double(gain) * v)
            }
        }
        return out
    }
    public var config: JSON { ["gain": JSON(gain), "seed": seed.map { JSON($0) } ?? .null] }
}

public struct Identity: Initializer {
    public static let className = "Identity"
    public var gain: Float
    public init(gain: Float = 1) { self.gain = gain }
    public func values(shape: [Int]) throws -> [Float] {
        guard shape.count == 2 else { throw KerasError("Identity initializer needs a 2D shape, got \(shape)") }
        var out = [Float](repeating: 0, count: try valueCount(shape))
        for i in 0..<min(shape[0], shape[1]) { out[i * shape[1] + i] = gain }
        return out
    }
    public var config: JSON { ["gain": JSON(gain)] }
}

/// Looks an initializer up by name or serialized form, as keras.initializers.get does.
public enum Initializers {
    public static func get(_ json: JSON) throws -> Initializer {
        let (cls, c) = try classAndConfig(json, what: "an initializer")
        let seed = try c.optionalInt("seed")
        switch canonicalName(cls) {
        case "zeros", "zero": return Zeros()
        case "ones", "one": return Ones()
        case "constant": return Constant(value: try c.float("value", default: 0))
        case "randomuniform", "uniform": return RandomUniform(minval: try c.float("minval", default: -0.05), maxval: try c.float("maxval", default: 0.05), seed: seed)
        case "randomnormal", "normal": return RandomNormal(mean: try c.float("mean", default: 0), stddev: try c.float("stddev", default: 0.05), seed: seed)
        case "truncatednormal": return TruncatedNormal(mean: try c.float("mean", default: 0), stddev: try c.float("stddev", default: 0.05), seed: seed)
        case "glorotuniform": return GlorotUniform(seed: seed)
        case "glorotnormal": return GlorotNormal(seed: seed)
        case "heuniform": return HeUniform(seed: seed)
        case "henormal": return HeNormal(seed: seed)
        case "lecununiform": return LecunUniform(seed: seed)
        case "lecunnormal": return LecunNormal(seed: seed)
        case "orthogonal": return Orthogonal(gain: try c.float("gain", default: 1), seed: seed)
        case "identity": return Identity(gain: try c.float("gain", default: 1))
        case "variancescaling":
            return try VarianceScaling(scale: try c.float("scale", default: 1), mode: try c.string("mode", default: "fan_in"),
                                       distribution: try c.string("distribution", default: "truncated_normal"), seed: seed)
        default:
            throw KerasError("unknown initializer '\(cls)'")
        }
    }

    public static func get(_ name: String) throws -> Initializer { try get(.string(name)) }

    public static func serialize(_ i: Initializer) -> JSON {
        if let n = i as? NamedVarianceScaling { return n.serialized }
        return i.serialized
    }
}
