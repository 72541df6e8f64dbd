import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Normalizes possibly negative axes against `rank`; errors name the op.
func normalizeAxes(_ axes: [Int], rank: Int, op: String) throws -> [Int] {
    var out: [Int] = []
    for a in axes {
        let n = a < 0 ? a + rank : a
        guard n >= 0 && n < rank else {
            throw ShapeError("\(op) axis \(a) is out of range for rank \(rank)")
        }
        guard !out.contains(n) else { throw ShapeError("\(op) axis \(a) is repeated") }
        out.append(n)
    }
    return out.sorted()
}

func reducedShape(_ shape: [Int], axes: [Int], keepDims: Bool) -> [Int] {
    var out: [Int] = []
    for (i, d) in shape.enumerated() {
        if axes.contains(i) { if keepDims { out.append(1) } } else { out.append(d) }
    }
    return out
}

private func reduceShapeRule(_ ctx: ShapeContext) throws -> TensorType {
    try ctx.requireDType(0, [.f32])
    let x = ctx.inputs[0]
    let axes = try normalizeAxes(try ctx.attrs.ints("axes"), rank: x.rank, op: ctx.op)
    return TensorType(.f32, reducedShape(x.shape, axes: axes, keepDims: try ctx.attrs.bool("keepdims", default: false)))
}

extension GraphBuilder {
    /// Re-inserts reduced axes as size 1 so a reduced value broadcasts
    /// against its input again.
    func keepDims(_ g: Value, inputType: TensorType, axes: [Int], keptAlready: Bool) throws -> Value {
        if keptAlready { return g }
        let kept = reducedShape(inputType.shape, axes: axes, keepDims: true)
        if kept.filter({ $0 == TensorType.unknown }).count > 1 {
            throw IRError.at(layer: currentLayer, "reduction gradient: cannot restore axes of \(inputType) with several unknown dimensions")
        }
        return try reshape(g, kept)
    }
}

private func reductionArgs(_ b: GraphBuilder, _ args: VJPArguments) throws -> (x: Value, axes: [Int], keep: Bool) {
    let x = args.inputs[0]
    let axes = try normalizeAxes(try args.attrs.ints("axes"), rank: b.type(of: x).rank, op: "reduce")
    return (x, axes, try args.attrs.bool("keepdims", default: false))
}

private let sumVJP: VJPRule = { b, args, g in
    let (x, axes, keep) = try reductionArgs(b, args)
    let gk = try b.keepDims(g, inputType: b.type(of: x), axes: axes, keptAlready: keep)
    return [try b.broadcast(gk, like: x)]
}

private let meanVJP: VJPRule = { b, args, g in
    let (x, axes, _) = try reductionArgs(b, args)
    let spread = try sumVJP(b, args, g)[0]!
    return [try b.div(spread, b.dimSize(x, axes: axes))]
}

/// Gradient of max/min: shared equally among the elements equal to the result.
private let extremumVJP: VJPRule = { b, args, g in
    let (x, axes, keep) = try reductionArgs(b, args)
    let xt = b.type(of: x)
    let yk = try b.keepDims(args.output, inputType: xt, axes: axes, keptAlready: keep)
    let gk = try b.keepDims(g, inputType: xt, axes: axes, keptAlready: keep)
    let mask = try b.compare("equal", x, yk)
    let count = try b.reduceSum(mask, axes: axes, keepDims: true)
    return [try b.mul(mask, b.div(gk, count))]
}

private func reduceReference(_ ctx: ReferenceContext, _ kind: ck_reduce_op, mean: Bool) throws -> RefTensor {
    let x = ctx.inputs[0]
    let axes = try normalizeAxes(try ctx.attrs.ints("axes"), rank: x.shape.count, op: "reduce")
    let outKeep = reducedShape(x.shape, axes: axes, keepDims: true)
    let n = outKeep.reduce(1, *)
    let initial: Double = kind == CK_REDUCE_SUM ? 0 : kind == CK_REDUCE_MAX ? -Double.infinity : Double.infinity
    var acc = [Double](repeating: initial, count: n)
    let outStrides = rowMajorStrides(outKeep)
    for (flat, v) in x.data.enumerated() {
        var idx = unflatten(flat, x.shape)
        for a in axes { idx[a] = 0 }
        let o = flatten(idx, outStrides)
        switch kind {
        case CK_REDUCE_SUM: acc[o] += v
        case CK_REDUCE_MAX: if v > acc[o] || v.isNaN { acc[o] = v }
        default: if v < acc[o] || v.isNaN { acc[o] = v }
        }
    }
    if mean {
        let count = Double(axes.map { x.shape[$0] }.reduce(1, *))
        acc = acc.map { $0 / count }
    }
    return RefTensor(.f32, ctx.type.shape, acc)
}

/// Splits the reduced axes into runs of adjacent axes; each run is one call
/// of the [outer, n, inner] kernel, innermost run first.
private func lowerReduce(_ kind: ck_reduce_op, mean: Bool) -> Lowering {
    .kernels { ctx in
        var shape = ctx.inputTypes[0].shape
        let axes = try normalizeAxes(try ctx.node.attrs.ints("axes"), rank: shape.count, op: ctx.node.op)
        var runs: [(Int, Int)] = []  // [start, end)
        for a in axes {
            if let last = runs.last, last.1 == a { runs[runs.count - 1].1 = a + 1 } else { runs.append((a, a + 1)) }
        }
        var dims: [(outer: Int, n: Int, inner: Int)] = []
        for (s, e) in runs.reversed() {
            let outer = shape[..<s].reduce(1, *), n = shape[s..<e].reduce(1, *), inner = shape[e...].reduce(1, *)
            dims.append((outer, n, inner))
            for i in s..<e { shape[i] = 1 }
        }
        if dims.isEmpty { dims.append((ctx.outCount, 1, 1)) }
        let count = axes.map { ctx.inputTypes[0].shape[$0] }.reduce(1, *)
        // Intermediate results ping-pong between two halves of the workspace;
        // the last call writes the result and, for a mean, scales it.
        let inBytes = elementCount(ctx.inputTypes[0]) * 4
        let workspace = dims.count > 1 ? 2 * inBytes : 0
        return try dims.enumerated().map { i, d in
            let last = i == dims.count - 1
            let params = ck_axis_call(outer: Int64(d.outer), n: Int64(d.n), inner: Int64(d.inner),
                                      scale: last && mean ? 1 / Float(Swift.max(count, 1)) : 1, flag: 0)
            let src: KernelOperand = i == 0 ? .input(0) : .workspace(byte: ((i - 1) % 2) * inBytes)
            let dst: KernelOperand = last ? .output : .workspace(byte: (i % 2) * inBytes)
            return try ctx.call(CK_FAMILY_REDUCE, op: Int32(kind.rawValue), params: params, [src, dst], workspace: workspace,
                                detail: last && mean ? "+scale" : "")
        }
    }
}

private func reduceOp(_ name: String, _ kind: ck_reduce_op, mean: Bool = false, vjp: @escaping VJPRule) -> OpDef {
    OpDef(name, arity: .exactly(1), shape: reduceShapeRule, differentiability: .vjp(vjp),
          reference: { try reduceReference($0, kind, mean: mean) },
          lowering: lowerReduce(kind, mean: mean),
          cost: { ins, out, _ in Cost(flops: elementCount(ins[0]), bytes: (elementCount(ins[0]) + elementCount(out)) * 4) })
}

// MARK: - Softmax

private func axisSplit(_ shape: [Int], _ axisAttr: Int, op: String) throws -> (outer: Int, n: Int, inner: Int) {
    let axis = try normalizeAxes([axisAttr], rank: shape.count, op: op)[0]
    return (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
}

private func softmaxReference(_ ctx: ReferenceContext, log logOut: Bool) throws -> RefTensor {
    let x = ctx.inputs[0]
    let (outer, n, inner) = try axisSplit(x.shape, try ctx.attrs.int("axis", default: -1), op: "softmax")
    var y = x.data
    for o in 0..<outer {
        for i in 0..<inner {
            let at = { (j: Int) in (o * n + j) * inner + i }
            let m = (0..<n).map { x.data[at($0)] }.max() ?? 0
            let s = (0..<n).reduce(0.0) { $0 + exp(x.data[at($1)] - m) }
            for j in 0..<n {
                y[at(j)] = logOut ? x.data[at(j)] - m - log(s) : exp(x.data[at(j)] - m) / s
            }
        }
    }
    return RefTensor(.f32, x.shape, y)
}

private func softmaxOp(_ name: String, log logOut: Bool, vjp: @escaping VJPRule) -> OpDef {
    OpDef(name, arity: .exactly(1),
          shape: { ctx in
              try ctx.requireDType(0, [.f32])
              _ = try normalizeAxes([try ctx.attrs.int("axis", default: -1)], rank: ctx.inputs[0].rank, op: ctx.op)
              return ctx.inputs[0]
          },
          differentiability: .vjp(vjp),
          reference: { try softmaxReference($0, log: logOut) },
          lowering: .kernel { ctx in
              let (outer, n, inner) = try axisSplit(ctx.inputTypes[0].shape, try ctx.node.attrs.int("axis", default: -1), op: name)
              return try ctx.call(CK_FAMILY_SOFTMAX, params: ck_axis_call(outer: Int64(outer), n: Int64(n), inner: Int64(inner), scale: 1, flag: logOut ? 1 : 0),
                                  [.input(0), .output], detail: logOut ? "(log)" : "")
          },
          cost: elementwiseCost(14))
}

/// argmax {axis}: the index (i32) of the first maximum along one axis.
private let argmaxOp = OpDef(
    "argmax", arity: .exactly(1),
    shape: { ctx in
        try ctx.requireDType(0, [.f32])
        let x = ctx.inputs[0]
        let axis = try normalizeAxes([try ctx.attrs.int("axis", default: -1)], rank: x.rank, op: ctx.op)[0]
        return .i32(reducedShape(x.shape, axes: [axis], keepDims: try ctx.attrs.bool("keepdims", default: false)))
    },
    differentiability: .notDifferentiable(reason: "an index is piecewise constant"),
    reference: { ctx in
        let x = ctx.inputs[0]
        let (outer, n, inner) = try axisSplit(x.shape, try ctx.attrs.int("axis", default: -1), op: "argmax")
        var out = [Double](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                var best = x.data[o * n * inner + i], arg = 0
                for j in 1..<max(n, 1) {
                    let v = x.data[(o * n + j) * inner + i]
                    if v > best || (v.isNaN && !best.isNaN) { best = v; arg = j }
                }
                out[o * inner + i] = Double(arg)
            }
        }
        return RefTensor(.i32, ctx.type.shape, out)
    },
    lowering: .kernel { ctx in
        let (outer, n, inner) = try axisSplit(ctx.inputTypes[0].shape, try ctx.node.attrs.int("axis", default: -1), op: "argmax")
        return try ctx.call(CK_FAMILY_ARGMAX, params: ck_axis_call(outer: Int64(outer), n: Int64(n), inner: Int64(inner), scale: 1, flag: 0),
                            [.input(0), .output])
    },
    cost: { ins, out, _ in Cost(flops: elementCount(ins[0]), bytes: (elementCount(ins[0]) + elementCount(out)) * 4) })

let reductionOps: [OpDef] = [
    argmaxOp,
    reduceOp("reduce_sum", CK_REDUCE_SUM, vjp: sumVJP),
    reduceOp("reduce_mean", CK_REDUCE_SUM, mean: true, vjp: meanVJP),
    reduceOp("reduce_max", CK_REDUCE_MAX, vjp: extremumVJP),
    reduceOp("reduce_min", CK_REDUCE_MIN, vjp: extremumVJP),
    softmaxOp("softmax", log: false) { b, args, g in
        let axis = try args.attrs.int("axis", default: -1)
        let y = args.output
        let dot = try b.reduceSum(b.mul(g, y), axes: [axis], keepDims: true)
        return [try b.mul(y, b.sub(g, dot))]
    },
    softmaxOp("log_softmax", log: true) { b, args, g in
        let axis = try args.attrs.int("axis", default: -1)
        let total = try b.reduceSum(g, axes: [axis], keepDims: true)
        return [try b.sub(g, b.mul(b.exp(args.output), total))]
    },
]
