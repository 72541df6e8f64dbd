import CKernels

/// Numpy broadcasting of two shapes, with unknown dimensions: an unknown
/// against a known k != 1 is taken to be k; two unknowns stay unknown.
func broadcastShapes(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = max(a.count, b.count)
    let pa = [Int](repeating: 1, count: rank - a.count) + a
    let pb = [Int](repeating: 1, count: rank - b.count) + b
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let x = pa[i], y = pb[i]
        if x == y { out[i] = x }
        else if x == 1 { out[i] = y }
        else if y == 1 { out[i] = x }
        else if x == TensorType.unknown { out[i] = y }
        else if y == TensorType.unknown { out[i] = x }
        else { return nil }
    }
    return out
}

func broadcastShapes(_ shapes: [[Int]]) -> [Int]? {
    var out: [Int] = []
    for s in shapes {
        guard let r = broadcastShapes(out, s) else { return nil }
        out = r
    }
    return out
}

extension ShapeContext {
    /// The broadcast of all input shapes, or an error naming them.
    func broadcastInputs(_ indices: [Int]? = nil) throws -> [Int] {
        let which = indices ?? Array(inputs.indices)
        guard let s = broadcastShapes(which.map { inputs[$0].shape }) else {
            throw fail("cannot broadcast " + which.map { inputs[$0].description }.joined(separator: " and "))
        }
        return s
    }
}

extension GraphBuilder {
    /// Sums a cotangent of a broadcast result back to the shape of the operand
    /// that was broadcast: leading axes summed away, size-1 axes kept.
    public func unbroadcast(_ g: Value, to target: TensorType) throws -> Value {
        var v = g
        let extra = type(of: v).rank - target.rank
        if extra > 0 { v = try reduceSum(v, axes: Array(0..<extra)) }
        let shape = type(of: v).shape
        let axes = (0..<target.rank).filter { target.shape[$0] == 1 && shape[$0] != 1 }
        if !axes.isEmpty { v = try reduceSum(v, axes: axes, keepDims: true) }
        return v
    }
}

// MARK: - Lowering: strides for N-d broadcast walks

/// Padded strides of `shape` broadcast into `out` (0 on broadcast axes).
func broadcastStrides(_ shape: [Int], into out: [Int]) -> [Int] {
    let padded = [Int](repeating: 1, count: out.count - shape.count) + shape
    var st = rowMajorStrides(padded)
    for i in 0..<out.count where padded[i] == 1 && out[i] != 1 { st[i] = 0 }
    return st
}

/// Merges adjacent axes that every operand walks contiguously (or
/// broadcasts over together) and drops size-1 axes, so the C walker runs
/// long inner loops. Returns the collapsed shape and per-operand strides.
func collapseAxes(_ shape: [Int], _ strides: [[Int]]) -> ([Int], [[Int]]) {
    var s: [Int] = []
    var st: [[Int]] = strides.map { _ in [] }
    for i in 0..<shape.count where shape[i] != 1 {
        if let last = s.last,
           (0..<strides.count).allSatisfy({ st[$0].last! == strides[$0][i] * shape[i] }) {
            s[s.count - 1] = last * shape[i]
            for j in 0..<strides.count { st[j][st[j].count - 1] = strides[j][i] }
            continue
        }
        s.append(shape[i])
        for j in 0..<strides.count { st[j].append(strides[j][i]) }
    }
    return (s, st)
}

func makeND3(_ shape: [Int], _ a: [Int], _ b: [Int], _ c: [Int]) throws -> ck_nd3 {
    guard shape.count <= Int(CK_MAX_RANK) else {
        throw IRError("broadcast of rank \(shape.count) exceeds the kernels' limit of \(CK_MAX_RANK) after collapsing axes")
    }
    var d = ck_nd3()
    d.rank = Int32(shape.count)
    withUnsafeMutableBytes(of: &d.shape) { p in for (i, v) in shape.enumerated() { p.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self) } }
    withUnsafeMutableBytes(of: &d.stride_a) { p in for (i, v) in a.enumerated() { p.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self) } }
    withUnsafeMutableBytes(of: &d.stride_b) { p in for (i, v) in b.enumerated() { p.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self) } }
    withUnsafeMutableBytes(of: &d.stride_c) { p in for (i, v) in c.enumerated() { p.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self) } }
    return d
}

/// A walk over `out` for binary ops: strides of a, b and the contiguous output.
func binaryWalk(out: [Int], a: [Int], b: [Int]) throws -> ck_nd3 {
    let (s, st) = collapseAxes(out, [broadcastStrides(a, into: out), broadcastStrides(b, into: out), rowMajorStrides(out)])
    return try makeND3(s, st[0], st[1], st[2])
}

/// A walk over `out` for select: strides of cond, a and b (output contiguous).
func ternaryWalk(out: [Int], _ x: [Int], _ y: [Int], _ z: [Int]) throws -> ck_nd3 {
    let (s, st) = collapseAxes(out, [broadcastStrides(x, into: out), broadcastStrides(y, into: out),
                                     broadcastStrides(z, into: out), rowMajorStrides(out)])
    return try makeND3(s, st[0], st[1], st[2])
}

func makeCopyDesc(_ shape: [Int], src: [Int], dst: [Int]) throws -> ck_copy_desc {
    let (s, st) = collapseAxes(shape, [src, dst])
    guard s.count <= Int(CK_MAX_RANK) else {
        throw IRError("copy of rank \(s.count) exceeds the kernels' limit of \(CK_MAX_RANK)")
    }
    var d = ck_copy_desc()
    d.rank = Int32(s.count)
    withUnsafeMutableBytes(of: &d.shape) { p in for (i, v) in s.enumerated() { p.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self) } }
    withUnsafeMutableBytes(of: &d.src_stride) { p in for (i, v) in st[0].enumerated() { p.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self) } }
    withUnsafeMutableBytes(of: &d.dst_stride) { p in for (i, v) in st[1].enumerated() { p.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self) } }
    return d
}

/// Reference: elementwise map over a broadcast of several inputs.
func referenceBroadcast(_ ctx: ReferenceContext, dtype: DType? = nil, _ f: ([Double]) -> Double) -> RefTensor {
    let out = ctx.type.shape
    var data = [Double](repeating: 0, count: out.reduce(1, *))
    var args = [Double](repeating: 0, count: ctx.inputs.count)
    forEachBroadcast(out, ctx.inputs.map(\.shape)) { o, offs in
        for j in 0..<offs.count { args[j] = ctx.inputs[j].data[offs[j]] }
        data[o] = f(args)
    }
    return RefTensor(dtype ?? ctx.type.dtype, out, data)
}
