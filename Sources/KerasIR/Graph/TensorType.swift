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

    /// Largest dimension and element count the compiler accepts; bigger
    /// shapes are user errors, reported before any arithmetic can overflow.
    public static let maxDimension = Int(Int32.max)
    public static let maxElements = 1 << 40

    /// Throws unless every dimension is unknown or in [0, maxDimension] and
    /// the known dimensions multiply to at most maxElements.
    public func checkSize() throws {
        var n = 1
        for d in shape {
            guard d == TensorType.unknown || (d >= 0 && d <= TensorType.maxDimension) else {
                throw ShapeError("dimension \(d) of \(self) is out of range")
            }
            if d > 0 {
                let (p, overflow) = n.multipliedReportingOverflow(by: d)
                guard !overflow, p <= TensorType.maxElements else {
                    throw ShapeError("\(self) has more than \(TensorType.maxElements) elements")
                }
                n = p
            }
        }
    }

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
