/// Element types the IR knows. Both are 4 bytes, so data-movement kernels are
/// shared between them.
public enum DType: String, Sendable, CaseIterable, Hashable {
    case f32
    case i32

    public var byteSize: Int { 4 }
}

/// The type of an SSA value: a dtype and a shape whose dimensions may be
/// unknown (`TensorType.unknown`, printed `?`) until the graph is compiled at a
/// concrete batch size.
public struct TensorType: Hashable, Sendable, CustomStringConvertible {
    public static let unknown = -1

    public var dtype: DType
    public var shape: [Int]

    public init(_ dtype: DType, _ shape: [Int]) {
        self.dtype = dtype
        self.shape = shape
    }

    public static func f32(_ shape: [Int]) -> TensorType { TensorType(.f32, shape) }
    public static func i32(_ shape: [Int]) -> TensorType { TensorType(.i32, shape) }

    public var rank: Int { shape.count }
    public var isFullyKnown: Bool { !shape.contains(TensorType.unknown) }

    /// Number of elements, or nil while a dimension is unknown.
    public var elementCount: Int? {
        isFullyKnown ? shape.reduce(1, *) : nil
    }

    public var byteCount: Int? { elementCount.map { $0 * dtype.byteSize } }

    public var description: String {
        "\(dtype.rawValue)[" + shape.map { $0 == TensorType.unknown ? "?" : String($0) }.joined(separator: ",") + "]"
    }
}

/// Row-major strides in elements.
public func rowMajorStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i] = s
        s *= shape[i]
    }
    return strides
}
