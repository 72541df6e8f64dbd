import KerasIR
import KerasRuntime
#if canImport(Glibc)
import Glibc
#endif

/// The library's one error type for users: a message naming the layer, the
/// op and the shapes involved.
public typealias KerasError = IRError

/// Keras's snake_case of a class name: "PReLU" -> "p_re_lu", "Conv2D" -> "conv2d".
public func kerasSnakeCase(_ name: String) -> String {
    let c = Array(name.filter { $0.isLetter || $0.isNumber || $0 == "_" })
    // (.)([A-Z][a-z]+) -> \1_\2
    var step1: [Character] = []
    for i in c.indices {
        if i > 0, c[i].isUppercase, i + 1 < c.count, c[i + 1].isLowercase { step1.append("_") }
        step1.append(c[i])
    }
    // ([a-z])([A-Z]) -> \1_\2
    var out: [Character] = []
    for i in step1.indices {
        if i > 0, step1[i].isUppercase, step1[i - 1].isLowercase { out.append("_") }
        out.append(step1[i])
    }
    return String(out).lowercased()
}

/// Unique names per base ("dense", "dense_1", ...), as Keras gives them.
public enum Naming {
    nonisolated(unsafe) private static var counts: [String: Int] = [:]
    private static let lock = NSLockLike()

    public static func unique(_ base: String) -> String {
        lock.locked {
            let n = counts[base, default: 0]
            counts[base] = n + 1
            return n == 0 ? base : "\(base)_\(n)"
        }
    }

    /// Forgets the counters (keras.backend.clear_session()).
    public static func reset() { lock.locked { counts = [:] } }
}

/// A pthread mutex with a closure helper (Foundation-free).
final class NSLockLike: @unchecked Sendable {
    private var m = pthread_mutex_t()
    init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return try body()
    }
}

/// Global seeding (keras.utils.set_random_seed): unseeded initializers and
/// layers draw their seeds from here.
public enum RandomSeed {
    nonisolated(unsafe) private static var generator = SplitMix64(seed: UInt64(UInt32(truncatingIfNeeded: time(nil))) ^ 0x5eed)
    private static let lock = NSLockLike()

    public static func set(_ seed: UInt64) { lock.locked { generator = SplitMix64(seed: seed) } }
    public static func next() -> UInt64 { lock.locked { generator.next() } }
}

/// Shapes in the front end: nil is Keras's None (the batch, usually).
public typealias Shape = [Int?]

func irShape(_ s: Shape) -> [Int] { s.map { $0 ?? TensorType.unknown } }
func kerasShape(_ s: [Int]) -> Shape { s.map { $0 == TensorType.unknown ? nil : $0 } }

/// "(None, 3, 4)" as Keras prints shapes.
public func formatShape(_ s: Shape) -> String {
    let parts = s.map { $0.map(String.init) ?? "None" }
    return "(" + parts.joined(separator: ", ") + (s.count == 1 ? ",)" : ")")
}
