import KerasIR

/// A concrete tensor of data: a shape and contiguous row-major values.
public struct Tensor: Equatable, Sendable, CustomStringConvertible {
    public enum Storage: Equatable, Sendable {
        case f32([Float])
        case i32([Int32])
    }

    public private(set) var shape: [Int]
    public private(set) var storage: Storage

    public init(_ values: [Float], shape: [Int]) throws {
        try Tensor.check(values.count, shape)
        self.shape = shape
        self.storage = .f32(values)
    }

    /// Integer data (ids, labels). Literal arrays default to Float.
    @_disfavoredOverload
    public init(_ values: [Int32], shape: [Int]) throws {
        try Tensor.check(values.count, shape)
        self.shape = shape
        self.storage = .i32(values)
    }

    /// A scalar.
    public init(_ value: Float) { shape = []; storage = .f32([value]) }

    public init(zeros type: TensorType) throws {
        let n = try MemoryLimit.check("zeros \(type)", shape: type.shape)
        shape = type.shape
        storage = type.dtype == .f32 ? .f32([Float](repeating: 0, count: n)) : .i32([Int32](repeating: 0, count: n))
    }

    private static func check(_ count: Int, _ shape: [Int]) throws {
        let n = try MemoryLimit.elementCount(shape, "tensor")
        guard n == count else { throw IRError("tensor of shape \(shape) needs \(n) values, got \(count)") }
    }

    public var dtype: DType {
        if case .i32 = storage { return .i32 }
        return .f32
    }
    public var type: TensorType { TensorType(dtype, shape) }
    public var count: Int { shape.reduce(1, *) }

    public var floats: [Float] {
        switch storage {
        case .f32(let v): return v
        case .i32(let v): return v.map(Float.init)
        }
    }

    /// The values as int32; a float that is not a whole int32 (NaN, 3e9, 0.5
    /// truncates, as NumPy's astype does) is an error naming its index.
    public var ints: [Int32] {
        get throws {
            switch storage {
            case .i32(let v): return v
            case .f32(let v):
                var out = [Int32](repeating: 0, count: v.count)
                for i in v.indices {
                    guard v[i].isFinite, let x = Int32(exactly: v[i].rounded(.towardZero)) else {
                        throw IRError("value \(formatFloat(v[i])) at index \(i) of a \(type) tensor is not an int32")
                    }
                    out[i] = x
                }
                return out
            }
        }
    }

    /// The first value, for scalars such as a loss.
    public var scalar: Float { floats.first ?? .nan }

    /// Raw 4-byte elements.
    public func withRawBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .f32(let v): return try v.withUnsafeBytes(body)
        case .i32(let v): return try v.withUnsafeBytes(body)
        }
    }

    init(type: TensorType, copying p: UnsafeRawPointer) {
        let n = type.shape.reduce(1, *)
        shape = type.shape
        switch type.dtype {
        case .f32: storage = .f32(Array(UnsafeBufferPointer(start: p.assumingMemoryBound(to: Float.self), count: n)))
        case .i32: storage = .i32(Array(UnsafeBufferPointer(start: p.assumingMemoryBound(to: Int32.self), count: n)))
        }
    }

    public var description: String {
        let vals: [String]
        switch storage {
        case .f32(let v): vals = v.prefix(8).map { formatFloat($0) }
        case .i32(let v): vals = v.prefix(8).map { String($0) }
        }
        return "\(type) [" + vals.joined(separator: ", ") + (count > 8 ? ", ...]" : "]")
    }
}

/// 64-byte-aligned, zeroed memory.
func alignedAllocate(bytes: Int) -> UnsafeMutableRawPointer {
    let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
    p.initializeMemory(as: UInt8.self, repeating: 0, count: max(bytes, 64))
    return p
}
