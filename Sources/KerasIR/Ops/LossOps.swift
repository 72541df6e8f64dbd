import CKernels
import Foundation

/// Cross-entropy of a softmax or a sigmoid as ops (loss.c), so a
/// classifier's loss and its gradient take one pass over the logits instead
/// of a dozen kernels:
///
///   softmax_cross_entropy(z, y) {from_logits, activation}       -> per-row loss [...]
///   softmax_cross_entropy_grad(z, y, g) {from_logits, activation} -> g * d loss / dz  [..., C]
///   softmax_cross_entropy_fused(z, y, g) {from_logits, activation} -> [rows * C gradient | rows loss]
///
/// With activation "softmax" (the default) the first is Keras's categorical
/// cross-entropy of softmax(z) (from the logits, or on the probabilities
/// normalized and clipped to [1e-7, 1 - 1e-7] as Keras computes it); with
/// "sigmoid" Keras's binary cross-entropy of sigmoid(z), the mean over the
/// last axis. The second is its VJP; the third, made by the loss fusion pass
/// when a training step needs both, computes both in one call, and two views
/// read its parts.
private struct XentShape {
    let rows: Int, classes: Int

    init(_ z: TensorType) {
        classes = z.shape.last ?? 1
        rows = z.shape.dropLast().reduce(1) { $0 * Swift.max($1, 0) }
    }
}

private func checkXent(_ ctx: ShapeContext) throws -> TensorType {
    for i in ctx.inputs.indices { try ctx.requireDType(i, [.f32]) }
    do { _ = try isSigmoid(ctx.attrs) } catch let e as IRError { throw ctx.fail(e.message) }
    let z = ctx.inputs[0], y = ctx.inputs[1]
    guard z.rank >= 1, z.shape.last != TensorType.unknown, y.rank == z.rank,
          zip(y.shape, z.shape).allSatisfy({ $0 == $1 || $0 == TensorType.unknown || $1 == TensorType.unknown }) else {
        throw ctx.fail("expects logits [..., classes] and targets of the same shape, got \(z) and \(y)")
    }
    let rows = TensorType.f32(Array(z.shape.dropLast()))
    if ctx.inputs.count == 3, !(ctx.inputs[2].rank == rows.rank
                                && zip(ctx.inputs[2].shape, rows.shape).allSatisfy { $0 == $1 || $0 == TensorType.unknown || $1 == TensorType.unknown }) {
        throw ctx.fail("expects a cotangent shaped like the per-row loss \(rows), got \(ctx.inputs[2])")
    }
    return rows
}

/// Whether the ops' attributes name the sigmoid form (else softmax), or throw for another name.
private func isSigmoid(_ attrs: Attributes) throws -> Bool {
    let a = try attrs.string("activation", default: "softmax")
    guard a == "softmax" || a == "sigmoid" else { throw IRError("cross-entropy: activation must be softmax or sigmoid, got '\(a)'") }
    return a == "sigmoid"
}

/// Binary cross-entropy of sigmoid(z) per row (mean over the last axis) and its gradient, in double precision.
private func referenceSigmoidXent(_ z: RefTensor, _ y: RefTensor, _ g: RefTensor?, fromLogits: Bool) -> (loss: [Double], dz: [Double]) {
    let c = z.shape.last ?? 1, rows = c == 0 ? 0 : z.data.count / c
    let eps = Double(Float(1e-7)), hi = Double(Float(1) - Float(1e-7))
    var loss = [Double](repeating: 0, count: rows), dz = [Double](repeating: 0, count: g == nil ? 0 : z.data.count)
    for r in 0..<rows {
        var v = 0.0
        for j in 0..<c {
            let i = r * c + j, zi = z.data[i], yi = y.data[i], p = 1 / (1 + exp(-zi))
            let d: Double
            if fromLogits {
                v += Swift.max(zi, 0) - zi * yi + log1p(exp(-abs(zi)))
                d = p - yi
            } else {
                let pc = Swift.min(Swift.max(p, eps), hi)
                v -= yi * log(pc) + (1 - yi) * log(1 - pc)
                d = p >= eps && p <= hi ? ((1 - yi) / (1 - pc) - yi / pc) * p * (1 - p) : 0
            }
            if let g { dz[i] = g.data[r] * d / Double(c) }
        }
        loss[r] = v / Double(c)
    }
    return (loss, dz)
}

/// Loss and gradient in double precision; `g` nil for the loss only.
private func referenceXent(_ z: RefTensor, _ y: RefTensor, _ g: RefTensor?, _ attrs: Attributes) throws -> (loss: [Double], dz: [Double]) {
    let fromLogits = try attrs.bool("from_logits", default: false)
    if try isSigmoid(attrs) { return referenceSigmoidXent(z, y, g, fromLogits: fromLogits) }
    let c = z.shape.last ?? 1, rows = c == 0 ? 0 : z.data.count / c
    let eps = Double(Float(1e-7)), hi = Double(Float(1) - Float(1e-7))
    var loss = [Double](repeating: 0, count: rows), dz = [Double](repeating: 0, count: g == nil ? 0 : z.data.count)
    for r in 0..<rows {
        let zr = Array(z.data[r * c..<(r + 1) * c]), yr = Array(y.data[r * c..<(r + 1) * c])
        let m = zr.max() ?? 0
        let s = zr.reduce(0) { $0 + exp($1 - m) }
        let p = zr.map { exp($0 - m) / s }
        let sp = p.reduce(0, +)
        let q = p.map { $0 / sp }
        if fromLogits {
            loss[r] = -zip(yr, zr).reduce(0) { $0 + $1.0 * ($1.1 - m - log(s)) }
        } else {
            loss[r] = -zip(yr, q).reduce(0) { $0 + $1.0 * log(Swift.min(Swift.max($1.1, eps), hi)) }
        }
        guard let g else { continue }
        let gr = g.data[r]
        if fromLogits {
            let sy = yr.reduce(0, +)
            for j in 0..<c { dz[r * c + j] = gr * (p[j] * sy - yr[j]) }
            continue
        }
        let dq = (0..<c).map { j in q[j] >= eps && q[j] <= hi ? -yr[j] / q[j] * gr : 0 }
        let t = zip(dq, p).reduce(0) { $0 + $1.0 * $1.1 }
        let dp = (0..<c).map { dq[$0] / sp - t / (sp * sp) }
        let u = zip(dp, p).reduce(0) { $0 + $1.0 * $1.1 }
        for j in 0..<c { dz[r * c + j] = p[j] * (dp[j] - u) }
    }
    return (loss, dz)
}

/// One call of the loss kernel, writing the loss and/or the gradient.
private func xentCall(_ ctx: LoweringContext, name: String, loss: KernelOperand, dz: KernelOperand, g: KernelOperand) throws -> KernelCall {
    let shape = XentShape(ctx.inputTypes[0])
    let params = ck_xent_call(rows: Int64(shape.rows), classes: Int64(shape.classes),
                              from_logits: try ctx.node.attrs.bool("from_logits", default: false) ? 1 : 0)
    return try ctx.call(CK_FAMILY_SOFTMAX, op: try isSigmoid(ctx.node.attrs) ? 2 : 1, params: params,
                        [.input(0), .input(1), g, loss, dz], detail: name)
}

private func xentCost(_ ins: [TensorType], _ out: TensorType, _ attrs: Attributes) -> Cost {
    let n = elementCount(ins[0])
    return Cost(flops: 30 * n, bytes: (ins.map(elementCount).reduce(0, +) + elementCount(out)) * 4)
}

let lossOps: [OpDef] = [
    OpDef("softmax_cross_entropy", arity: .exactly(2),
          shape: checkXent,
          differentiability: .vjp { b, args, g in
              [try b.emit("softmax_cross_entropy_grad", [args.inputs[0], args.inputs[1], g], args.attrs), nil]
          },
          reference: { ctx in
              let r = try referenceXent(ctx.inputs[0], ctx.inputs[1], nil, ctx.attrs)
              return RefTensor(.f32, Array(ctx.inputs[0].shape.dropLast()), r.loss)
          },
          lowering: .kernel { ctx in try xentCall(ctx, name: " loss", loss: .output, dz: .absent, g: .absent) },
          cost: xentCost),
    OpDef("softmax_cross_entropy_grad", arity: .exactly(3),
          shape: { ctx in _ = try checkXent(ctx); return ctx.inputs[0] },
          differentiability: .notDifferentiable(reason: "second derivatives of the fused softmax cross-entropy are not supported"),
          reference: { ctx in
              let r = try referenceXent(ctx.inputs[0], ctx.inputs[1], ctx.inputs[2], ctx.attrs)
              return RefTensor(.f32, ctx.inputs[0].shape, r.dz)
          },
          lowering: .kernel { ctx in try xentCall(ctx, name: " gradient", loss: .absent, dz: .output, g: .input(2)) },
          cost: xentCost),
    OpDef("softmax_cross_entropy_fused", arity: .exactly(3),
          shape: { ctx in
              _ = try checkXent(ctx)
              guard ctx.inputs[0].isFullyKnown else { throw ctx.fail("needs known logits to pack its results, got \(ctx.inputs[0])") }
              let s = XentShape(ctx.inputs[0])
              return .f32([s.rows * s.classes + s.rows])
          },
          differentiability: .notDifferentiable(reason: "made by the loss fusion pass after differentiation"),
          reference: { ctx in
              let r = try referenceXent(ctx.inputs[0], ctx.inputs[1], ctx.inputs[2], ctx.attrs)
              return RefTensor(.f32, [r.dz.count + r.loss.count], r.dz + r.loss)
          },
          lowering: .kernel { ctx in
              let s = XentShape(ctx.inputTypes[0])
              return try xentCall(ctx, name: " loss+gradient", loss: .output(element: s.rows * s.classes), dz: .output, g: .input(2))
          },
          cost: xentCost).fusing { _ in ["softmax_cross_entropy", "softmax_cross_entropy_grad"] },
    OpDef("view", arity: .exactly(1),
          shape: { ctx in
              let shape = try ctx.attrs.ints("shape"), offset = try ctx.attrs.int("offset", default: 0)
              let x = ctx.inputs[0]
              guard let total = x.elementCount, shape.allSatisfy({ $0 >= 0 }), offset >= 0,
                    offset + shape.reduce(1, *) <= total else {
                  throw ctx.fail("of \(shape) at element \(offset) does not fit in \(x)")
              }
              return TensorType(x.dtype, shape)
          },
          differentiability: .notDifferentiable(reason: "reads one result of a packed op made after differentiation"),
          reference: { ctx in
              let shape = try ctx.attrs.ints("shape"), offset = try ctx.attrs.int("offset", default: 0)
              return RefTensor(ctx.inputs[0].dtype, shape, Array(ctx.inputs[0].data[offset..<(offset + shape.reduce(1, *))]))
          },
          lowering: .view(offset: { node in try node.attrs.int("offset", default: 0) }),
          cost: { _, _, _ in Cost(flops: 0, bytes: 0) }),
]
