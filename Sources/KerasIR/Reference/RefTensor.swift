/// A concrete tensor in double precision: what reference evaluations compute
/// on. Int32 values are held exactly as doubles.
public struct RefTensor: Equatable, Sendable, CustomStringConvertible {
    public var dtype: DType
    public var shape: [Int]
    public var data: [Double]

    public init(_ dtype: DType, _ shape: [Int], _ data: [Double]) {
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }

    public init(_ type: TensorType, repeating v: Double = 0) {
        self.init(type.dtype, type.shape, [Double](repeating: v, count: type.shape.reduce(1, *)))
    }

    public static func scalar(_ v: Double, _ dtype: DType = .f32) -> RefTensor { RefTensor(dtype, [], [v]) }

    public var type: TensorType { TensorType(dtype, shape) }
    public var count: Int { data.count }

    /// Values rounded the way the dtype stores them.
    public func rounded() -> RefTensor {
        var r = self
        switch dtype {
        case .f32: r.data = data.map { Double(Float($0)) }
        // Truncating and saturating as the cast kernel: NaN is Int32.min, ±inf the ends.
        case .i32: r.data = data.map { $0.isNaN ? Double(Int32.min) : Swift.min(Swift.max($0.rounded(.towardZero), Double(Int32.min)), Double(Int32.max)) }
        }
        return r
    }

    public var description: String { "\(type) \(data.prefix(8).map { String($0) }.joined(separator: ", "))\(data.count > 8 ? ", ..." : "")" }
}

// MARK: - Index helpers

/// Calls `body(outIndex, aIndex, bIndex)` for every element of a numpy-style
/// broadcast of shapes a and b into `out`.
func forEachBroadcast(_ out: [Int], _ shapes: [[Int]], _ body: (Int, [Int]) -> Void) {
    let rank = out.count
    let strides: [[Int]] = shapes.map { s in
        let padded = [Int](repeating: 1, count: rank - s.count) + s
        var st = rowMajorStrides(padded)
        for i in 0..<rank where padded[i] == 1 { st[i] = 0 }
        return st
    }
    let n = out.reduce(1, *)
    var idx = [Int](repeating: 0, count: rank)
    var offs = [Int](repeating: 0, count: shapes.count)
    for o in 0..<n {
        body(o, offs)
        var k = rank - 1
        while k >= 0 {
            idx[k] += 1
            for j in 0..<shapes.count { offs[j] += strides[j][k] }
            if idx[k] < out[k] { break }
            for j in 0..<shapes.count { offs[j] -= strides[j][k] * idx[k] }
            idx[k] = 0
            k -= 1
        }
    }
}

/// Multi-index of flat position `flat` in `shape`.
func unflatten(_ flat: Int, _ shape: [Int]) -> [Int] {
    var idx = [Int](repeating: 0, count: shape.count)
    var r = flat
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        let d = shape[i]
        idx[i] = d == 0 ? 0 : r % d
        r = d == 0 ? 0 : r / d
    }
    return idx
}

func flatten(_ idx: [Int], _ strides: [Int]) -> Int {
    var f = 0
    for i in 0..<idx.count { f += idx[i] * strides[i] }
    return f
}
